"""Live: recognise faces in the webcam stream (WebRTC) or in a snapshot, with one model or all three.

The frame work lives in :class:`facecore.live.recognizer.LiveRecognizer`; this page picks the runs, the
threshold and the mode, and :mod:`pages.widgets.live_video` hands the recognizer's frame callback to
streamlit-webrtc and shows the names it publishes.
"""

from __future__ import annotations

import pages.widgets.torch_first  # noqa: F401  # first: see there

# isort: split

import streamlit as st

from facecore.data import load_rgb
from facecore.device import gpu_available
from facecore.errors import FacecoreError
from facecore.gallery import GalleryModel, list_galleries, load_gallery, load_gallery_model
from facecore.live import DEFAULT_WORKERS, LiveConfig, LiveRecognizer, default_runs, setting
from facecore.models import list_models
from facecore.recognize import (
    GALLERY,
    LoadedModel,
    RecognizerRef,
    ThresholdScale,
    export_threshold,
    exported_models,
)
from facecore.train import Run, list_runs
from pages.common import loaded_run, say_uncalibrated, setup_page
from pages.widgets.live_addme import add_me
from pages.widgets.live_video import live_video, percent

setup_page()

NEWEST = "newest run of each model"
BY_GALLERY = "A gallery (enrolled people)"


def choose_runs(runs: list[Run], galleries: list[str]) -> list[str]:
    """A gallery, one run, or one run of each of the three models (default: the newest, or a group's)."""
    modes = ([BY_GALLERY] if galleries else []) + (["One model", "All three models"] if runs else [])
    mode = st.radio("Recognise with", modes, horizontal=True, key="live-models")
    if mode == BY_GALLERY:
        return [str(RecognizerRef(GALLERY, st.selectbox("Gallery", galleries, key="live-gallery")))]
    if mode == "One model":
        labels = {r.run: f"{r.run}  ({r.model}, dataset {r.dataset})" for r in runs}
        labels |= exported_models([r.path for r in runs])  # ONNX exports of runs: "RUN · onnx"
        return [st.selectbox("Run", list(labels), format_func=labels.get, key="live-run")]
    groups = sorted({r.group or "" for r in runs} - {""})
    group = st.selectbox("Runs", [NEWEST, *groups], key="live-group") if groups else NEWEST
    defaults = default_runs(runs, None if group == NEWEST else group)
    chosen = []
    for column, model in zip(st.columns(3), list_models(compared=True), strict=True):
        options = [r.run for r in runs if r.model == model]
        if not options:
            column.caption(f"No `{model}` run yet: train one on the Train page.")
            continue
        index = options.index(defaults[model]) if model in defaults else 0
        chosen.append(column.selectbox(model, options, index=index, key=f"live-{model}-{group}"))
    return chosen


def choose_threshold(runs: list[Run], chosen: list[str]) -> float:
    """The Unknown threshold slider, set to the first run's (or the gallery's) calibrated threshold
    when the choice changes."""
    if RecognizerRef.parse(chosen[0]).is_gallery:
        return gallery_threshold(chosen[0])
    calibrated = {r.run: r.threshold for r in runs if r.run in chosen}
    first = calibrated.get(chosen[0], export_threshold(chosen[0]))
    if st.session_state.get("live-threshold-runs") != chosen:
        st.session_state["live-threshold-runs"] = list(chosen)
        st.session_state["live-threshold"] = round(float(first), 2) if first is not None else 0.5
    value = threshold_slider(
        LoadedModel.threshold_scale, "A face whose top class has a lower probability is labelled Unknown."
    )
    known = [f"{run} {t:.2f}" for run, t in calibrated.items() if t is not None]
    if known:
        st.caption("Calibrated on the validation split: " + ", ".join(known))
    return value


def gallery_threshold(spec: str) -> float:
    """The gallery's similarity threshold slider, starting at its stored (calibrated) threshold."""
    gallery = load_gallery(RecognizerRef.parse(spec).name)
    if st.session_state.get("live-threshold-runs") != [spec]:
        st.session_state["live-threshold-runs"] = [spec]
        st.session_state["live-threshold"] = round(GalleryModel.threshold_scale.clamp(gallery.threshold), 3)
    value = threshold_slider(
        GalleryModel.threshold_scale,
        "A face whose best match in the gallery is less similar (cosine) is labelled Unknown.",
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
        say_uncalibrated([gallery])
    return float(value)


def threshold_slider(scale: ThresholdScale, help_text: str) -> float:
    """The Unknown threshold slider (key ``live-threshold``) on ``scale``: its label, step and range."""
    return st.slider(
        scale.label,
        scale.low,
        scale.high,
        step=scale.step,
        key="live-threshold",
        help=help_text,
    )


PRECISION_LABELS = {
    "auto": "Auto: the faster of float32 and int8 for each model, timed on this machine",
    "float32": "float32",
    "int8": "int8 (CPU)",
}


def performance() -> tuple[int, int, int, str]:
    """Workers, torch threads, the detection size and the precision (advanced settings)."""
    with st.expander("Performance"):
        spec = setting("workers")  # a slider needs two values, even on one core
        workers = st.slider(
            spec.label, int(spec.low), max(2, spec.high), DEFAULT_WORKERS, key="live-workers", help=spec.tip
        )
        spec = setting("threads")
        threads = st.slider(spec.label, int(spec.low), spec.high, spec.default, key="live-threads")
        spec = setting("detect_side")
        side = st.select_slider(spec.label, list(spec.options), spec.default, key="live-detect-side")
        spec = setting("precision")
        precision = st.radio(
            spec.label,
            list(spec.choices),
            format_func=PRECISION_LABELS.get,
            key="live-precision",
            help=spec.tip,
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
            models = [
                load_gallery_model(r) if RecognizerRef.parse(r).is_gallery else loaded_run(r) for r in runs
            ]
            config = LiveConfig(threads=threads, detect_side=side, precision=precision, workers=workers)
            recognizer = LiveRecognizer(models, config)
        st.session_state["live-recognizer"] = (key, recognizer)
    recognizer.set_threshold(threshold)
    return recognizer


def precision_note(recognizer: LiveRecognizer) -> None:
    """Which precision each model runs in, with the timings ``auto`` chose by."""
    parts = [f"{name}: {note}" for name, note in recognizer.precision_notes().items()]
    st.caption("Classifying in " + "; ".join(parts) + ".")
    for name, problem in recognizer.int8_problems.items():
        st.caption(f"{name} runs in float32: {problem}")


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
    runs = [r for r in list_runs() if r.ready and r.model]
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
        tick = add_me(recognizer, chosen[0]) if RecognizerRef.parse(chosen[0]).is_gallery else None
        live_video(recognizer, on_tick=tick)
    else:
        snapshot(recognizer)


main()
