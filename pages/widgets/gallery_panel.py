"""The Dataset page's "Enroll into a gallery" section: widgets over :mod:`facecore.gallery`.

Enroll people from this dataset's training faces, from photos of one person, or from the
webcam (the dataset's own capture, with its quality checks); look at a gallery's people, remove
or rename one; calibrate and see the threshold curve; evaluate it on this dataset's test split.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from facecore.data import UNKNOWN, FaceDataset
from facecore.errors import CalibrationError, FacecoreError
from facecore.evaluate import threshold_curve_figure
from facecore.gallery import (
    DEFAULT_EMBEDDER,
    list_embedders,
    list_galleries,
    load_gallery,
    remove_person,
    rename_person,
)
from facecore.gallery.store import Gallery
from facecore.mode import read_only
from pages.common import say_uncalibrated

NEW = "New gallery…"
SOURCES = ("This dataset's training faces", "Photos of one person", "Webcam")


#: How long the outcome of an action stays on the page: reruns that the user did not cause (the
#: camera's capture starting again after a save) must not wipe it before it is read.
FLASH_SECONDS = 10.0


def _say(kind: str, text: str) -> None:
    st.session_state["gallery-flash"] = (kind, text, time.monotonic())


def _flash() -> None:
    kind, text, said = st.session_state.get("gallery-flash", ("", "", 0.0))
    if time.monotonic() - said > FLASH_SECONDS:
        st.session_state.pop("gallery-flash", None)
    elif text:
        getattr(st, kind)(text)


def _do(work: Callable[[], Any], done: Callable[[Any], str]) -> None:
    """Run ``work``; keep a message for the rerun (its result, or the error it raised)."""
    try:
        result = work()
    except FacecoreError as exc:
        _say("error", str(exc))
    else:
        _say("success", done(result))
    st.rerun()


def choose_gallery(ds: FaceDataset | None) -> str | None:
    names = list_galleries()
    options = names if read_only() else [*names, NEW]
    if not options:
        st.info("No gallery on this server.")
        return None
    index = options.index(ds.name) if ds is not None and ds.name in options else 0
    picked = st.selectbox("Gallery", options, index=index, key=f"gallery-select-{ds.name if ds else ''}")
    if picked != NEW:
        return picked
    default = ds.name if ds is not None and ds.name not in names else ""
    name = st.text_input(
        "New gallery name", value=default, key="gallery-new-name", placeholder="e.g. my-team"
    )
    return name.strip() or None


def choose_embedder(name: str) -> str | None:
    """For a new gallery, the embedder (the pretrained ones, then trained runs); None for an
    existing gallery, which keeps its own."""
    if name in list_galleries():
        return None
    every = list_embedders()
    for i in every:
        if not i.available:
            st.warning(f"The {i.name} embedder is not available: {i.problem}")
    infos = [i for i in every if i.available]
    names = [i.name for i in infos]
    if not names:
        return None
    about = {i.name: i.description for i in infos}
    choice = st.selectbox(
        "Embedder",
        names,
        index=names.index(DEFAULT_EMBEDDER) if DEFAULT_EMBEDDER in names else 0,
        key="gallery-embedder",
        help="How faces are turned into vectors. sface is the default: the more accurate of the two "
        "pretrained embedders at 1% false accepts on held-out LFW faces (README, Galleries).",
    )
    st.caption(about[choice])
    return choice


def enroll_section(name: str, ds: FaceDataset | None, capture: Callable[..., None] | None) -> None:
    """The three ways in; ``capture(name, saver=...)`` is the Dataset page's webcam capture."""
    # imported here: they load PyTorch, which the rest of the Dataset page does not need
    from facecore.gallery import enroll_dataset, enroll_photos, enroll_webcam_crops

    embedder = choose_embedder(name)

    sources = [s for s in SOURCES if (ds is not None or s != SOURCES[0]) and (capture or s != SOURCES[2])]
    how = st.radio("Enroll from", sources, horizontal=True, key="gallery-source")
    if how == SOURCES[0]:
        people = [c for c in ds.classes if c != UNKNOWN]
        n = sum(1 for _, i in ds.items("train") if ds.classes[i] != UNKNOWN)
        st.caption(
            f"{n} training faces of {len(people)} people (the {UNKNOWN} class is left out: "
            "strangers are for calibrating the threshold)."
        )
        if st.button(
            f"Enroll {len(people)} people into '{name}'", type="primary", key="gallery-enroll-dataset"
        ):
            with st.spinner("Embedding faces..."):
                _do(lambda: enroll_dataset(name, ds.name, embedder=embedder), str)
    elif how == SOURCES[1]:
        person = st.text_input("Person", key="gallery-person", placeholder="e.g. Ada Lovelace")
        files = st.file_uploader(
            "Photos (their face alone, or clearly the largest)",
            type=["jpg", "jpeg", "png", "bmp", "webp"],
            accept_multiple_files=True,
            key="gallery-photos",
        )
        if st.button(
            "Enroll these photos",
            type="primary",
            key="gallery-enroll-photos",
            disabled=not (files and person.strip()),
        ):
            photos = [(f.name, f.getvalue()) for f in files]
            with st.spinner("Finding and embedding faces..."):
                _do(lambda: enroll_photos(name, person.strip(), photos, embedder=embedder), str)
    else:

        def save(person: str, crops: list, _detector: str) -> None:
            st.session_state.pop("enroll", None)
            _do(lambda: enroll_webcam_crops(name, person.strip(), crops, embedder=embedder), str)

        capture(name, saver=save)  # type: ignore[misc]


def people_section(g: Gallery) -> None:
    counts = g.counts()
    st.dataframe(
        [{"person": p, "faces": n} for p, n in counts.items()], hide_index=True, use_container_width=True
    )
    if read_only() or not counts:
        return
    with st.expander("Remove or rename a person"):
        person = st.selectbox("Person", list(counts), key="gallery-edit-person")
        new = st.text_input("New name", key="gallery-new-person")
        left, right = st.columns(2)
        if left.button("Rename", key="gallery-rename", disabled=not new.strip()):
            _do(
                lambda: rename_person(g.name, person, new.strip()),
                lambda _r: f"Renamed {person} to {new.strip()}.",
            )
        if right.button(f"Remove {person}", key="gallery-remove"):
            _do(lambda: remove_person(g.name, person), lambda _r: f"Removed {person} from {g.name}.")


def threshold_section(g: Gallery, ds: FaceDataset | None) -> None:
    info = g.threshold_info
    if info.get("calibrated"):
        far, kept = info.get("far"), info.get("known_accepted")
        st.markdown(
            f"**Threshold {g.threshold:.3f}**: calibrated on {info.get('source')} for a false-accept rate of "
            f"{info.get('target_far', 0):.1%}; measured {far or 0:.1%} of {info.get('n_strangers')} "
            "strangers accepted"
            + (
                f", {kept:.1%} of {info.get('n_known')} enrolled people's faces accepted."
                if kept is not None
                else "."
            )
        )
    else:
        say_uncalibrated([g])
    if info.get("reason") and info.get("calibrated"):
        st.caption(info["reason"])
    curve = g.calibration()
    if curve and curve.get("sweep"):
        st.plotly_chart(
            threshold_curve_figure(
                curve["sweep"],
                g.threshold,
                target_far=info.get("target_far"),
                title=f"Calibration of {g.name}",
            ),
            use_container_width=True,
        )
    if not read_only():
        calibrate_section(g, ds)


def calibrate_section(g: Gallery, ds: FaceDataset | None) -> None:
    """Calibrate on a dataset split's strangers and/or an uploaded zip of strangers' photos; too
    few strangers for the target is refused with the count, unless the box below is ticked."""
    from facecore.gallery import calibrate_gallery, min_strangers

    left, right = st.columns([1, 2])
    far = left.number_input("False-accept target (%)", 0.1, 50.0, 1.0, 0.1, key="gallery-far") / 100
    splits = ["val", "train"] if ds is not None else []
    source = right.radio(
        "Strangers from",
        [*splits, "upload"],
        horizontal=True,
        key="gallery-cal-split",
        format_func=lambda s: (
            "a zip of strangers' photos" if s == "upload"
            else f"{ds.name}: {s} split ({UNKNOWN} and people not enrolled)"
        ),
    )
    upload = None
    if source == "upload":
        upload = st.file_uploader(
            "Photos of people not in the gallery (a zip: flat, or one folder per person)",
            type=["zip"],
            key="gallery-strangers-zip",
        )
    few = st.checkbox(
        f"Calibrate even with fewer than {min_strangers(far)} strangers (the threshold then sits just "
        "above the most similar one)",
        key="gallery-allow-few",
    )
    waiting = source == "upload" and not upload
    if st.button("Calibrate the threshold", key="gallery-calibrate", disabled=waiting):
        kwargs = {"strangers": upload.getvalue()} if upload else {"dataset": ds.name, "split": source}

        def work() -> dict:
            try:
                return calibrate_gallery(g.name, target_far=far, allow_few=few, **kwargs)
            except CalibrationError as exc:
                ways = "upload a zip of strangers' photos" + (
                    ", raise the target, or tick 'Calibrate even with fewer'" if exc.found else ""
                )
                raise CalibrationError(f"{exc} On this page: {ways}.", found=exc.found) from exc

        with st.spinner("Scoring strangers' faces..."):
            _do(
                work,
                lambda r: (
                    f"Threshold {r['threshold']:.3f} stored: {r.get('far') or 0:.1%} of "
                    f"{r['n_strangers']} strangers accepted"
                    + (f" ({r['reason']})" if r.get("reason") else "")
                    + "."
                ),
            )


def evaluate_section(g: Gallery, ds: FaceDataset) -> None:
    if read_only():
        return
    if st.button(f"Evaluate on {ds.name}'s test split", key="gallery-evaluate"):
        from facecore.gallery.evaluate import evaluate_gallery

        with st.spinner("Embedding the test faces..."):
            try:
                r = evaluate_gallery(g.name, ds.name, latency=False)
            except FacecoreError as exc:
                st.error(str(exc))
                return
        at = r.open_set.at_model_threshold
        cols = st.columns(4)
        cols[0].metric("Accuracy", f"{r.accuracy:.1%}")
        cols[1].metric("Macro F1", f"{r.macro_f1:.3f}")
        far = at.get("false_accept_rate")
        cols[2].metric("Strangers accepted", "n/a" if far is None else f"{far:.1%}")
        cols[3].metric("Known faces accepted", f"{at.get('known_accepted') or 0:.1%}")
        st.caption("Shown on the Compare page beside the trained models.")


def gallery_section(ds: FaceDataset | None, capture: Callable[..., None] | None) -> None:
    """Enroll people into a gallery (recognised by face embeddings, no training) and manage it.

    ``capture``: the Dataset page's webcam capture, called as ``capture(name, saver=...)``; None
    where that capture is on the page already (its widgets cannot be drawn twice)."""
    st.caption(
        "A gallery recognises the people enrolled in it by comparing face embeddings (a pretrained "
        "face embedder: SFace or dlib's descriptor): no training, a few photos a person, and a "
        "threshold calibrated on strangers' faces. Use it on the Live and Compare pages."
    )
    _flash()
    name = choose_gallery(ds)
    if not name:
        return
    try:
        g = load_gallery(name) if name in list_galleries() else None
    except FacecoreError as exc:
        st.error(str(exc))
        g = None
    if not read_only():
        with st.container(border=True):
            enroll_section(name, ds, capture)
    if g is None:
        return
    st.subheader(f"{g.name}: {len(g.people)} people, {len(g.files)} faces ({g.embedder_name})")
    people_section(g)
    threshold_section(g, ds)
    if ds is not None:
        evaluate_section(g, ds)
