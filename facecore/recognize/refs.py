"""References to recognizers, parsed once, and the registry of the kinds other than trained runs.

A recognizer is named by a string: a trained run (its name, folder, ``.pt`` file or exported
``.onnx``) or ``gallery:NAME``. :meth:`RecognizerRef.parse` reads that string into a ``kind`` and a
``name`` instead of each caller checking the prefix itself. This layer never imports the
galleries: :mod:`facecore.gallery` registers its loader and stamp with
:func:`register_recognizer_kind` when it is imported (as module paths, imported on first use,
so ``import facecore.gallery`` stays cheap).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecore.constants import GALLERY_PREFIX
from facecore.errors import ConfigError

#: The kind of a reference to a trained run (no prefix).
RUN = "run"
#: The kind of a reference to a gallery (``gallery:NAME``).
GALLERY = GALLERY_PREFIX.removesuffix(":")


@dataclass(frozen=True)
class RecognizerRef:
    """A parsed reference: ``kind`` (``run``, or a prefix such as ``gallery``) and ``name`` (the
    run's name, folder or file; the gallery's name). ``str()`` gives the reference back."""

    kind: str
    name: str

    @classmethod
    def parse(cls, spec: str | Path | RecognizerRef) -> RecognizerRef:
        """``gallery:X`` -> ``RecognizerRef("gallery", "X")``; anything else (a ``Path`` always)
        names a trained run. A prefix counts when its kind is ``gallery`` or registered."""
        if isinstance(spec, RecognizerRef):
            return spec
        if isinstance(spec, str):
            kind, sep, name = spec.partition(":")
            if sep and kind != RUN and (kind == GALLERY or kind in _KINDS):
                return cls(kind, name)
        return cls(RUN, str(spec))

    @classmethod
    def gallery(cls, name: str) -> RecognizerRef:
        """The reference to gallery ``name`` (``str()`` gives ``gallery:NAME``)."""
        return cls(GALLERY, str(name))

    @property
    def is_run(self) -> bool:
        return self.kind == RUN

    @property
    def is_gallery(self) -> bool:
        return self.kind == GALLERY

    def __str__(self) -> str:
        return self.name if self.is_run else f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class RecognizerKind:
    """How a kind of recognizer is loaded: ``load(name)`` gives the recognizer, ``stamp(name)`` an
    int that changes when it changes on disk (``"module:function"`` strings are imported on use)."""

    load_path: str
    stamp_path: str

    @staticmethod
    def _resolve(path: str) -> Callable[[str], Any]:
        module, _, attr = path.partition(":")
        return getattr(importlib.import_module(module), attr)

    def load(self, name: str) -> Any:
        return self._resolve(self.load_path)(name)

    def stamp(self, name: str) -> int:
        return self._resolve(self.stamp_path)(name)


_KINDS: dict[str, RecognizerKind] = {}


def register_recognizer_kind(kind: str, *, load: str, stamp: str) -> None:
    """Let references ``KIND:NAME`` load through ``load`` and be stamped by ``stamp`` (each
    ``"package.module:function"``, imported the first time it is used)."""
    if not kind or ":" in kind or kind == RUN:
        raise ValueError(f"{kind!r} cannot be a recognizer kind.")
    _KINDS[kind] = RecognizerKind(load, stamp)


def recognizer_kind(kind: str) -> RecognizerKind:
    """The registered :class:`RecognizerKind` of ``kind``."""
    found = _KINDS.get(kind)
    if found is None:
        raise ConfigError(
            f"No recognizer kind {kind!r} is registered (galleries register theirs when "
            "facecore.gallery is imported)."
        )
    return found


__all__ = ["GALLERY", "RUN", "RecognizerKind", "RecognizerRef", "recognizer_kind", "register_recognizer_kind"]
