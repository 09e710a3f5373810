"""The Dataset page's messages that survive a rerun, and its hand-over of a dataset just made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from facecore.data import EditResult
from facecore.errors import FacecoreError


def flash(kind: str, text: str, warnings: list[str] | None = None) -> None:
    """Keep a message for the next run (edits run in callbacks, before the page is drawn)."""
    st.session_state["dataset-flash"] = {"kind": kind, "text": text, "warnings": warnings or []}


def show_flash() -> None:
    msg = st.session_state.pop("dataset-flash", None)
    if msg:
        (st.success if msg["kind"] == "success" else st.error)(msg["text"])
        for w in msg["warnings"]:
            st.warning(w)


def act(fn: Callable[..., EditResult], *args: Any) -> EditResult | None:
    """Run a library edit; its message (or the error's) is shown at the top of the next run."""
    try:
        result = fn(*args)
    except FacecoreError as exc:
        flash("error", str(exc))
        return None
    flash("success", result.message, result.warnings)
    return result


def select_dataset_next_run(name: str) -> None:
    st.session_state["dataset-pending"] = name


def apply_pending_dataset() -> None:
    """Point the dataset picker at a dataset just made (before the picker is drawn)."""
    name = st.session_state.pop("dataset-pending", None)
    if name:
        st.session_state["dataset"] = name
        st.session_state["dataset-select"] = name
