"""The Dataset page's camera: capture good face crops of one person (live video, or photos one by
one), then save them into the dataset or, through a ``saver``, into a gallery."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import streamlit as st

from facecore.data import EnrollSession, add_crops, check_class_name, load_rgb
from facecore.detect import create_detector, find_yunet_model
from facecore.errors import FacecoreError
from pages.common import ice_servers
from pages.widgets.dataset_common import act, select_dataset_next_run


@st.cache_resource(show_spinner=False)
def enroll_detector(yunet: str) -> Any:
    """The face detector for enrollment, built once (again when the YuNet model file changes)."""
    return create_detector("auto")


def enroll_state(target: int) -> dict:
    """This browser session's capture: the :class:`EnrollSession` and the crops taken so far."""
    state = st.session_state.get("enroll")
    if state is None:
        detector = enroll_detector(str(find_yunet_model() or ""))
        state = {"session": EnrollSession(detector, target=target), "crops": []}
        st.session_state["enroll"] = state
    state["session"].target = target
    return state


def enroll(name: str, saver: Callable[[str, list, str], None] | None = None) -> None:
    """Capture N good face crops of one person from the browser camera, then save them (into the
    dataset ``name``, or with ``saver(person, crops, detector)``, e.g. into a gallery)."""
    left, right = st.columns(2)
    person = left.text_input("Your name", key="enroll-person", placeholder="e.g. Ada Lovelace")
    target = int(right.number_input("Faces to capture", 3, 200, 20, key="enroll-target"))
    if person.strip():
        try:
            check_class_name(person)
        except FacecoreError as exc:
            left.error(str(exc))
    try:
        state = enroll_state(target)
    except FacecoreError as exc:
        st.error(str(exc))
        return
    live = st.toggle("Live video (WebRTC)", True, key="enroll-live", help="Off: take photos one by one.")
    playing = webrtc_capture(state["session"]) if live else None
    if playing is None:
        snapshot_capture(state["session"])
    save = saver or partial(save_enrollment, name)
    st.fragment(enroll_progress, run_every=0.7 if playing else None)(name, person, save)


def webrtc_capture(session: EnrollSession) -> bool | None:
    """The live camera: every frame goes through ``session`` in the video thread (no st.* there).

    Returns whether the camera is streaming, or ``None`` when live video cannot run here (then
    the page offers photos instead).
    """
    try:
        import av
        from streamlit_webrtc import WebRtcMode, webrtc_streamer
    except ImportError as exc:
        st.info(f"Live video needs streamlit-webrtc ({exc}); take photos instead.")
        return None

    def callback(frame: av.VideoFrame) -> av.VideoFrame:
        image = frame.to_ndarray(format="rgb24")
        return av.VideoFrame.from_ndarray(session.process(image), format="rgb24")

    st.caption("Press START, allow the camera, and look at it; turn your head a little between faces.")
    try:
        ctx = webrtc_streamer(
            key="enroll-webrtc",
            mode=WebRtcMode.SENDRECV,
            rtc_configuration={"iceServers": ice_servers()},
            media_stream_constraints={"video": True, "audio": False},
            video_frame_callback=callback,
        )
    except (AttributeError, RuntimeError) as exc:  # no Streamlit server session (e.g. a script runner)
        st.info(f"Live video is not available in this session ({exc}); take photos instead.")
        return None
    return bool(ctx.state.playing)


def snapshot_capture(session: EnrollSession) -> None:
    """The fallback: ``st.camera_input`` photos, each checked once."""
    shot = st.camera_input("Take a photo", key="enroll-snapshot")
    if shot is None or st.session_state.get("enroll-last-shot") == shot.file_id:
        return
    st.session_state["enroll-last-shot"] = shot.file_id
    try:
        image = load_rgb(shot.getvalue(), name="camera photo")
    except FacecoreError as exc:
        st.error(str(exc))
        return
    verdict = session.offer(image, force=True)
    (st.success if verdict.accepted else st.warning)(f"This photo: {verdict.reason}.")


def enroll_progress(name: str, person: str, saver: Callable[[str, list, str], None]) -> None:
    """The counter, the last rejection, the crops so far, and Save (polls the session's queue)."""
    state = st.session_state.get("enroll")
    if state is None:
        return
    session: EnrollSession = state["session"]
    state["crops"].extend(session.take_new())
    crops = state["crops"]
    st.progress(min(len(crops) / session.target, 1.0), text=f"{len(crops)} of {session.target} faces")
    last = session.last
    if last is not None and not last.accepted and last.code != "full":
        st.caption(f"Last frame skipped: {last.reason}.")
    skipped = ", ".join(f"{n} {code.replace('_', ' ')}" for code, n in session.rejected.items() if n)
    if skipped:
        st.caption(f"Frames skipped so far: {skipped}.")
    if session.done:
        st.success(f"{len(crops)} faces captured: stop the camera and save them.")
    if crops:
        st.image(crops[-12:], width=72)
    save, again = st.columns(2)
    ready = bool(crops and person.strip() and name)
    label = f"Save {len(crops)} face{'s' if len(crops) != 1 else ''} as {person.strip() or '…'}"
    if save.button(label, type="primary", key="enroll-save", disabled=not ready):
        saver(person, crops, session.detector.name)
    if again.button("Start over", key="enroll-reset", disabled=not crops):
        st.session_state.pop("enroll", None)
        st.rerun(scope="app")


def save_enrollment(name: str, person: str, crops: list, detector: str) -> None:
    """Add the captured crops to dataset ``name`` as ``person``."""
    result = act(partial(add_crops, source="webcam", detector=detector), name, person, crops)
    if result is not None:
        st.session_state.pop("enroll", None)
        select_dataset_next_run(result.dataset)
    st.rerun(scope="app")
