"""facecore: face datasets, detection, three models compared, training and live recognition.

The public API (see :mod:`facecore.api` and the README's "Use it from Python")::

    import facecore
    facecore.list_models(); facecore.create_model("custom_cnn", num_classes=8)
    facecore.detect_faces(image)
    gallery = facecore.Gallery.create("team"); gallery.enroll("Ada", photos); gallery.identify(image)
    facecore.load_run("my-run").predict(image)

Names are imported on first use, so ``import facecore`` itself is quick and loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "create_model": "facecore.models.registry",
    "list_models": "facecore.models.registry",
    "get_model_spec": "facecore.models.registry",
    "load_run": "facecore.api",
    "LoadedRun": "facecore.api",
    "Gallery": "facecore.api",
    "Identity": "facecore.api",
    "detect_faces": "facecore.api",
    "FacecoreError": "facecore.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'facecore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
