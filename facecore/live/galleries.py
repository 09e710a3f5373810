"""The galleries a live recognizer recognises with: finding one by name for "Add me", and reading
it again once someone was added (:mod:`facecore.live.addme`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facecore.errors import GalleryError
from facecore.recognize.protocol import Recognizer
from facecore.recognize.refs import RecognizerRef


def gallery_name(gallery: str | RecognizerRef) -> str:
    """The gallery's name in ``gallery:NAME`` or ``NAME``."""
    return RecognizerRef.parse(gallery).name


def find_gallery(models: Sequence[Recognizer], name: str) -> Any:
    """The gallery model named ``name`` among ``models``; raises
    :class:`~facecore.errors.GalleryError` (saying which galleries they are) when there is none."""
    for model in models:
        if model.ref.is_gallery and model.ref.name == name:
            return model
    using = [m.ref.name for m in models if m.ref.is_gallery]
    raise GalleryError(
        f"This live video does not recognise with gallery {name!r}"
        + (f" (it uses {', '.join(using)})." if using else " (it uses trained runs, no gallery).")
        + " Choose that gallery to add someone to it."
    )


def with_gallery_reloaded(models: Sequence[Recognizer], name: str) -> list[Recognizer]:
    """``models`` with gallery ``name`` read again from disk (after an enrollment), keeping the
    embedder and the threshold of the model it replaces."""
    from facecore.gallery.match import load_gallery_model  # torch: only when a gallery is reloaded

    fresh_models = list(models)
    for i, model in enumerate(fresh_models):
        if model.ref.is_gallery and model.ref.name == name:
            fresh = load_gallery_model(name, embedder=model.embedder)  # type: ignore[attr-defined]
            fresh.threshold = model.threshold
            fresh_models[i] = fresh
    return fresh_models


__all__ = ["find_gallery", "gallery_name", "with_gallery_reloaded"]
