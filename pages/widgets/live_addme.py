"""The Live page's "Add me": a name, a button, and how the capture goes, over
:meth:`facecore.live.recognizer.LiveRecognizer.start_add_me` (the library captures, enrolls and
reloads the gallery; this only asks and shows). The same from a terminal:
``python -m facecore live CAMERA_OR_VIDEO --gallery G --enroll NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from facecore.errors import FacecoreError, ReadOnlyModeError
from facecore.live import LiveRecognizer
from facecore.mode import enroll_allowed, require_enroll_allowed
from facecore.recognize import RecognizerRef


def _show(slot: Any, recognizer: LiveRecognizer) -> str | None:
    """The newest Add me's progress in ``slot``; returns its line (None when there is none)."""
    add_me = recognizer.add_me
    if add_me is None:
        return None
    progress = add_me.progress()
    line = progress.line()
    if progress.state == "done":
        slot.success(line, icon=":material/person_add:")
    elif progress.state == "failed":
        slot.error(line)
    elif progress.state == "enrolling":
        slot.info(line, icon=":material/person_add:")
    else:
        slot.info(line + ". Look at the camera, alone in view.", icon=":material/photo_camera:")
    return line


def add_me(recognizer: LiveRecognizer, spec: str) -> Callable[[], None]:
    """The control, for the gallery ``spec`` (``gallery:NAME``) the video recognises with.

    Returns a tick for the video's result loop: it redraws the progress ("3/5") while the
    video plays, when it changed.
    """
    gallery = RecognizerRef.parse(spec).name
    allowed = enroll_allowed()
    with st.container(border=True, key="live-addme-box"):
        st.markdown(f"**Add me** to gallery '{gallery}': type your name, face the camera alone, click.")
        name_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
        name = name_col.text_input(
            "Your name", key="live-addme-name", placeholder="e.g. Ada Lovelace", disabled=not allowed
        )
        clicked = button_col.button("Add me", key="live-addme", type="primary", disabled=not allowed)
        slot = st.empty()
        if not allowed:
            try:
                require_enroll_allowed()
            except ReadOnlyModeError as exc:
                slot.warning(str(exc), icon=":material/lock:")
            return lambda: None
        st.caption(
            "Takes 5 photos of the one face in view over a couple of seconds and adds them to the "
            "gallery; the video names you from then on. Same in a terminal: `python -m facecore live "
            f"CAMERA --gallery {gallery} --enroll NAME`."
        )
    if clicked:
        try:
            recognizer.start_add_me(gallery, name)
        except FacecoreError as exc:
            slot.error(str(exc))
            return lambda: None
    shown = [_show(slot, recognizer)]

    def tick() -> None:
        add = recognizer.add_me
        line = add.progress().line() if add is not None else None
        if line != shown[0]:
            shown[0] = _show(slot, recognizer)

    return tick
