"""Live: recognise faces in the webcam stream (WebRTC) or in a snapshot, with one model or all three.

The frame work lives in :class:`facecore.live.recognizer.LiveRecognizer`; this page picks the runs, the
threshold and the mode, hands the recognizer's frame callback to streamlit-webrtc, and shows the
names it publishes.
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

import pandas as pd
import streamlit as st

from facecore.data.images import load_rgb
from facecore.device import gpu_available
from facecore.errors import FacecoreError
from facecore.gallery.match import load_gallery_model
from facecore.gallery.store import list_galleries, load_gallery
from facecore.live.recognizer import LiveRecognizer, LiveResult, default_runs
from facecore.models.registry import list_models
from pages.common import ice_config, list_runs, loaded_run, setup_page

setup_page()

NEWEST = "newest run of each model"
NO_FRAMES_S = 10.0
#: two frames at once: ResNet-50 int8 went from 8.8 to 15.7 recognitions/s on 2 cores (README)
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
UI_REFRESH_S = 0.5  # the tables and stats beside the video; the video itself is drawn on every frame
KEEPALIVE_S = 3.0  # the stats line is redrawn at least this often (see show_results)


GALLERY = "A gallery (enrolled people)"


def choose_runs(runs: list[dict[str, Any]], galleries: list[str]) -> list[str]:
    """A gallery, one run, or one run of each of the three models (default: the newest, or a group's)."""
    modes = ([GALLERY] if galleries else []) + (["One model", "All three models"] if runs else [])
    mode = st.radio("Recognise with", modes, horizontal=True, key="live-models")
    if mode == GALLERY:
        return [f"gallery:{st.selectbox('Gallery', galleries, key='live-gallery')}"]
    if mode == "One model":
        labels = {r["run"]: f"{r['run']}  ({r['model']}, dataset {r.get('dataset')})" for r in runs}
        return [st.selectbox("Run", list(labels), format_func=labels.get, key="live-run")]
    groups = sorted({r.get("group") or "" for r in runs} - {""})
    group = st.selectbox("Runs", [NEWEST, *groups], key="live-group") if groups else NEWEST
    defaults = default_runs(runs, None if group == NEWEST else group)
    chosen = []
    for column, model in zip(st.columns(3), list_models(compared=True), strict=True):
        options = [r["run"] for r in runs if r["model"] == model]
        if not options:
            column.caption(f"No `{model}` run yet: train one on the Train page.")
            continue
        index = options.index(defaults[model]) if model in defaults else 0
        chosen.append(column.selectbox(model, options, index=index, key=f"live-{model}-{group}"))
    return chosen


def choose_threshold(runs: list[dict[str, Any]], chosen: list[str]) -> float:
    """The Unknown threshold slider, set to the first run's (or the gallery's) calibrated threshold
    when the choice changes."""
    if chosen[0].startswith("gallery:"):
        return gallery_threshold(chosen[0])
    calibrated = {r["run"]: (r.get("threshold") or {}).get("threshold") for r in runs if r["run"] in chosen}
    first = calibrated.get(chosen[0])
    if st.session_state.get("live-threshold-runs") != chosen:
        st.session_state["live-threshold-runs"] = list(chosen)
        st.session_state["live-threshold"] = round(float(first), 2) if first is not None else 0.5
    value = st.slider(
        "Unknown below this confidence",
        0.0,
        1.0,
        step=0.01,
        key="live-threshold",
        help="A face whose top class has a lower probability is labelled Unknown.",
    )
    known = [f"{run} {t:.2f}" for run, t in calibrated.items() if t is not None]
    if known:
        st.caption("Calibrated on the validation split: " + ", ".join(known))
    return value


def gallery_threshold(spec: str) -> float:
    """The gallery's similarity threshold slider, starting at its stored (calibrated) threshold."""
    gallery = load_gallery(spec.removeprefix("gallery:"))
    if st.session_state.get("live-threshold-runs") != [spec]:
        st.session_state["live-threshold-runs"] = [spec]
        st.session_state["live-threshold"] = round(gallery.threshold, 3)
    value = st.slider(
        "Unknown below this similarity",
        0.0,
        1.0,
        step=0.005,
        key="live-threshold",
        help="A face whose best match in the gallery is less similar (cosine) is labelled Unknown.",
    )
    info = gallery.threshold_info
    if info.get("calibrated"):
        far = info.get("far")
        st.caption(
            f"Stored threshold {gallery.threshold:.3f}: calibrated on {info.get('source')} for a "
            f"false-accept rate of {info.get('target_far', 0):.1%}"
            + (f" (measured {far:.1%} of {info.get('n_strangers')} strangers)" if far is not None else "")
            + "."
        )
    else:
        st.caption(
            f"Stored threshold {gallery.threshold:.3f}: {info.get('reason', 'not calibrated')}. "
            "Calibrate it on the Dataset page."
        )
    return float(value)


PRECISION_LABELS = {
    "auto": "Auto: the faster of float32 and int8 for each model, timed on this machine",
    "float32": "float32",
    "int8": "int8 (CPU)",
}


def performance() -> tuple[int, int, int, str]:
    """Workers, torch threads, the detection size and the precision (advanced settings)."""
    with st.expander("Performance"):
        cores = os.cpu_count() or 1
        workers = st.slider(
            "Frames recognised at once",
            1,
            max(2, cores),
            DEFAULT_WORKERS,
            key="live-workers",
            help="Each in its own worker thread: a slow model (ResNet-50) names faces more often when "
            "a second frame is classified while the first one still is.",
        )
        threads = st.slider("Torch threads per frame", 1, cores, 1, key="live-threads")
        side = st.select_slider(
            "Detect faces at (longer side, pixels)", [240, 320, 480, 640], 320, key="live-detect-side"
        )
        precision = st.radio(
            "Precision",
            list(PRECISION_LABELS),
            format_func=PRECISION_LABELS.get,
            key="live-precision",
            help="int8: each model's int8 copy, calibrated on its own training faces, with the same top "
            "answer on nearly every face; the checkpoint is not changed. On a CPU it is about twice as "
            "fast for a ResNet-50, but slower than float32 for the small custom CNN.",
        )
        st.caption("One thread per frame leaves the other cores to video decoding and encoding.")
    return int(workers), int(threads), int(side), str(precision)


def get_recognizer(runs: list[str], settings: tuple[int, int, int, str], threshold: float) -> LiveRecognizer:
    """This session's recognizer, rebuilt when the runs or settings change (models load once)."""
    workers, threads, side, precision = settings
    key = (tuple(runs), *settings)
    held = st.session_state.get("live-recognizer")
    if held is not None and held[0] == key:
        recognizer = held[1]
    else:
        if held is not None:
            held[1].close()
        busy = " and timing float32 against int8" if precision == "auto" and not gpu_available() else ""
        with st.spinner(f"Loading the models{busy}..."):
            models = [load_gallery_model(r) if r.startswith("gallery:") else loaded_run(r) for r in runs]
            recognizer = LiveRecognizer(
                models, threads=threads, detect_side=side, precision=precision, workers=workers
            )
        st.session_state["live-recognizer"] = (key, recognizer)
    recognizer.threshold = threshold
    for model in recognizer.models:  # a gallery keeps its own threshold, on the similarity scale
        if model.score_kind == "cosine":
            model.threshold = threshold
    return recognizer


def precision_note(recognizer: LiveRecognizer) -> None:
    """Which precision each model runs in, with the timings ``auto`` chose by."""
    parts = [f"{name}: {note}" for name, note in recognizer.precision_notes().items()]
    st.caption("Classifying in " + "; ".join(parts) + ".")
    for name, problem in recognizer.int8_problems.items():
        st.caption(f"{name} runs in float32: {problem}")


def guidance(source: str) -> None:
    """What to check when the video does not start."""
    st.caption(f"ICE: {source}.")
    with st.expander("Video not starting? What to check"):
        st.markdown(
            "- **Camera permission**: allow the camera for this site (the icon in the address bar), "
            "and close other apps that use it.\n"
            "- **Secure page**: browsers give the camera only to `https://` pages or `localhost`.\n"
            "- **Network**: away from this computer's network the video needs a STUN/TURN server. "
            "Set `FACECORE_ICE_SERVERS` to a JSON list such as "
            '`[{"urls": ["turn:turn.example.org:3478"], "username": "U", "credential": "P"}]`, '
            "or add `[ice]` with `servers = [...]` to `.streamlit/secrets.toml`; firewalls must "
            "let UDP (or TURN over TCP/TLS) through.\n"
            "- **Still stuck**: choose *Snapshot* above: it recognises a photo without WebRTC."
        )


def percent(rows: list[dict[str, Any]], column: str) -> pd.DataFrame:
    """Rows as a table with ``column`` shown as a percentage."""
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame[column] = frame[column].map(lambda v: f"{v:.0%}")
    return frame


def seen_rows(recognizer: LiveRecognizer) -> list[dict[str, Any]]:
    """The names recognised so far: name, model, times, best confidence."""
    return [{k: r[k] for k in ("name", "model", "times", "best")} for r in recognizer.seen()]


def seen_table(slot: Any, rows: list[dict[str, Any]]) -> None:
    """The "Recognised so far" table in ``slot``."""
    slot.table(percent(rows, "best"), hide_index=True)


def show_results(recognizer: LiveRecognizer, now: Any, seen: Any, stats: Any) -> None:
    """While the video plays: the faces of the newest result, the names seen so far, the stats.

    Redrawn at most every ``UI_REFRESH_S`` and only where something changed: each redraw costs the
    server and the browser CPU time that recognition on a small machine needs.
    """
    started = time.monotonic()
    shown: dict[str, Any] = {}
    drawn = started

    def draw(slot: Any, key: str, value: Any, render: Any) -> None:
        nonlocal drawn
        # the stats line is also redrawn every few seconds: the call is where Streamlit ends this
        # loop once the viewer has gone (closed tab, STOP), so it must not wait for a change
        if shown.get(key) != value or (key == "stats" and time.monotonic() - drawn > KEEPALIVE_S):
            shown[key] = value
            render(slot, value)
            drawn = time.monotonic()

    while True:
        time.sleep(UI_REFRESH_S)
        try:
            result: LiveResult | None = recognizer.results.get(timeout=1.0)
        except queue.Empty:
            result = None
        figures = recognizer.stats()
        line = figures.line() + (f"  \nError: {figures.error}" if figures.error else "")
        draw(stats, "stats", line, lambda slot, v: slot.caption(v))
        if result is not None and result.faces:
            rows = [{**r, "confidence": round(r["confidence"], 2)} for r in result.rows()]
            draw(now, "now", rows, lambda slot, v: slot.table(percent(v, "confidence"), hide_index=True))
        elif result is not None:
            draw(now, "now", "none", lambda slot, _v: slot.caption("No face in view."))
        names = seen_rows(recognizer)
        if names:
            draw(seen, "seen", names, seen_table)
        if figures.frames == 0 and time.monotonic() - started > NO_FRAMES_S:
            stats.warning("Connected, but no video frames arrive: see *Video not starting?* by the player.")


def live_video(recognizer: LiveRecognizer) -> None:
    """The WebRTC player (SENDRECV) and, beside it, what is recognised."""
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    servers, source = ice_config()
    player, side = st.columns([3, 2])
    with player:
        try:
            ctx = webrtc_streamer(
                key="live-webrtc",
                mode=WebRtcMode.SENDRECV,
                rtc_configuration={"iceServers": servers},
                media_stream_constraints={"video": {"width": 640, "height": 480}, "audio": False},
                video_frame_callback=recognizer.av_callback,
                async_processing=True,
            )
        except (AttributeError, RuntimeError) as exc:  # no Streamlit server session (a script runner)
            st.info(f"Live video is not available in this session ({exc}); choose Snapshot above.")
            ctx = None
        guidance(source)
    if ctx is None:
        return
    with side:
        st.subheader("In view")
        now = st.empty()
        st.subheader("Recognised so far")
        seen = st.empty()
        stats = st.empty()
        if ctx.state.signalling and not ctx.state.playing:
            now.info("Connecting... if this takes more than a few seconds, see *Video not starting?*.")
        elif not ctx.state.playing:
            now.info("Press START and allow the camera.")
            names = seen_rows(recognizer)
            if names:  # kept after STOP, until the models or settings change
                seen_table(seen, names)
    if ctx.state.playing:
        show_results(recognizer, now, seen, stats)


def snapshot(recognizer: LiveRecognizer) -> None:
    """A photo from the camera, recognised once (no WebRTC needed)."""
    shot = st.camera_input("Take a photo", key="live-snapshot")
    if shot is None:
        return
    try:
        image = load_rgb(shot.getvalue(), name="camera photo")
    except FacecoreError as exc:
        st.error(str(exc))
        return
    result, annotated = recognizer.recognize_image(image)
    st.image(annotated, caption="Recognised faces")
    if result.faces:
        st.table(percent(result.rows(), "confidence"), hide_index=True)
    else:
        st.info("No face found in this photo.")


def main() -> None:
    st.title("Live")
    runs = [r for r in list_runs() if r.get("model")]
    galleries = list_galleries()
    if not runs and not galleries:
        st.info(
            "Nobody to recognise yet. Enroll people into a gallery on the Dataset page (a few photos "
            "each, no training), or train a model on the Train page (or run "
            "`python -m facecore train --dataset NAME --model custom_cnn`), then come back to see it "
            "recognise faces live. No dataset either? Add faces on the Dataset page."
        )
        return
    chosen = choose_runs(runs, galleries)
    if not chosen:
        st.info("None of the three models has a trained run yet.")
        return
    try:
        threshold = choose_threshold(runs, chosen)
        recognizer = get_recognizer(chosen, performance(), threshold)
    except FacecoreError as exc:
        st.error(str(exc))
        return
    precision_note(recognizer)
    mode = st.radio("Camera", ["Live video", "Snapshot"], horizontal=True, key="live-camera")
    if mode == "Live video":
        live_video(recognizer)
    else:
        snapshot(recognizer)


main()
