"""Presentation mode: a read-only server for hosted demos.

``FACECORE_MODE=demo`` (environment, or ``FACECORE_MODE = "demo"`` at the top of
``.streamlit/secrets.toml``) turns off everything that adds, changes or deletes saved data:
imports, enrollment, edits, training, stopping or deleting jobs and runs, downloads. Visitors can
still upload a photo to see the models' predictions, and use the Live page; neither writes the
photo or the frames anywhere.

The library enforces it (:func:`require_writable` raises
:class:`~facecore.errors.ReadOnlyModeError`), so a page that forgot to hide a button still cannot
change anything. Any value other than ``full`` or nothing counts as read-only, to fail safe.

A demo bundle given by ``FACECORE_BUNDLE`` (:mod:`facecore.bundle`) makes the default read-only
too: a server started to show a bundle is a presentation unless ``FACECORE_MODE=full`` says
otherwise (to edit the bundled data).
"""

from __future__ import annotations

import os

from facecore.errors import ReadOnlyModeError

MODE_ENV = "FACECORE_MODE"
BUNDLE_ENV = "FACECORE_BUNDLE"
FULL, DEMO = "full", "demo"


def current_mode() -> str:
    """``"full"`` (the default; ``"demo"`` when ``FACECORE_BUNDLE`` is set) or ``"demo"``."""
    value = os.environ.get(MODE_ENV, "").strip().lower()
    if not value and os.environ.get(BUNDLE_ENV, "").strip():
        return DEMO
    return FULL if value in ("", FULL) else DEMO


def read_only() -> bool:
    """True in presentation mode."""
    return current_mode() == DEMO


def mode_problem() -> str | None:
    """A message when ``FACECORE_MODE`` holds something that is not a mode (read-only is used)."""
    value = os.environ.get(MODE_ENV, "").strip().lower()
    if value in ("", FULL, DEMO):
        return None
    return f"{MODE_ENV}={value!r} is not a mode (use 'demo' or 'full'); running read-only to be safe."


def require_writable(action: str) -> None:
    """Raise :class:`ReadOnlyModeError` naming ``action`` when the server is read-only."""
    if read_only():
        raise ReadOnlyModeError(
            f"{action} is turned off: this server runs in presentation mode ({MODE_ENV}=demo), "
            "which is read-only. Visitors can upload a photo on the Compare page and use the Live page."
        )


#: lets a presenter allow "Add me" (enrolling the person in front of the live camera) on a
#: read-only server: ``FACECORE_ALLOW_ENROLL=1`` or ``FACECORE_ALLOW_ENROLL = true`` in
#: ``.streamlit/secrets.toml``
ALLOW_ENROLL_ENV = "FACECORE_ALLOW_ENROLL"
_YES = ("1", "true", "yes", "on")


def enroll_allowed() -> bool:
    """Whether the person in front of the live camera may be added to a gallery ("Add me").

    Always in full mode; in presentation mode only when the presenter set ``FACECORE_ALLOW_ENROLL``
    to ``1``/``true``/``yes``/``on``. It allows this one kind of change only: enrolling camera
    faces into an existing gallery. Every other change stays refused.
    """
    if not read_only():
        return True
    return os.environ.get(ALLOW_ENROLL_ENV, "").strip().lower() in _YES


def require_enroll_allowed(action: str = "Adding a person from the live camera") -> None:
    """Raise :class:`ReadOnlyModeError` saying why and how to allow it, unless :func:`enroll_allowed`."""
    if not enroll_allowed():
        raise ReadOnlyModeError(
            f"{action} is turned off: this server runs in presentation mode ({MODE_ENV}=demo), which is "
            f"read-only. The presenter can allow it: set {ALLOW_ENROLL_ENV}=1 in the server's environment, "
            f"or put {ALLOW_ENROLL_ENV} = true in .streamlit/secrets.toml, and restart the server."
        )
