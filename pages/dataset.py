"""Dataset: bring faces in (a zip, images of one person, the camera, the LFW sample), look through
them, and fix what needs fixing.

Everything here is also on the command line: ``python -m facecore dataset import | sample |
add-images | enroll | rename | remove-class | remove-image | noface | info | delete``.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from facecore.data.dataset import (
    FaceDataset,
    ManifestRow,
    delete_dataset,
    import_dataset,
    list_datasets,
    load_dataset,
)
from facecore.data.edit import (
    EditResult,
    add_crops,
    check_class_name,
    delete_class,
    delete_image,
    person_listing,
    rename_class,
    resolve_noface,
)
from facecore.data.enroll import EnrollSession
from facecore.data.images import IMAGE_EXTENSIONS, load_rgb
from facecore.data.sample import build_sample
from facecore.data.splits import SPLITS
from facecore.data.transforms import AugmentConfig, augment_image, is_deterministic
from facecore.detect.detectors import create_detector, find_yunet_model
from facecore.errors import FacecoreError
from facecore.mode import read_only
from pages.common import choose_dataset, ice_servers, setup_page
from pages.gallery_panel import gallery_section

setup_page()

GRID_COLUMNS = 6
PAGE_SIZE = 24
NOFACE_PAGE_SIZE = 8
AUG_VERSIONS = 5
SECTIONS = ("overview", "faces", "noface", "augment", "add", "gallery")
#: Sections that only change the dataset: absent in presentation mode.
EDIT_SECTIONS = ("noface", "add", "gallery")
SECTION_LABELS = {
    "overview": "Overview",
    "faces": "Faces",
    "noface": "No face found",
    "augment": "Augmentation",
    "add": "Add faces",
    "gallery": "Enroll into a gallery",
}
DETECTORS = ("auto", "yunet", "haar", "none")
SPLIT_LABELS = {"train": "Train", "val": "Validation", "test": "Test"}
NOFACE_BUTTONS = (("keep", "Keep as is"), ("centre_crop", "Centre crop"), ("delete", "Delete"))


# --- messages that survive a rerun --------------------------------------------------------------


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


# --- importing -------------------------------------------------------------------------------------


def progress_bar(label: str) -> Callable[[int, int, str], None]:
    """An ``st.progress`` bar fed by a library progress callback (at most ~10 updates a second)."""
    bar = st.progress(0.0, text=label)
    last = [0.0]

    def update(done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and done < total:
            return
        last[0] = now
        fraction = min(done / total, 1.0) if total else 0.0
        count = f"{done:,}/{total:,} " if total and total < 1_000_000 else ""
        bar.progress(fraction, text=f"{label}: {count}{message[-70:]}")

    return update


def with_status(titles: tuple[str, str, str], bar: str, work: Callable[[Callable], Any]) -> None:
    """Run ``work(progress)`` in a live status box (``titles``: running, failed, done), then keep
    its import report and show the dataset; a FacecoreError is shown in the box instead."""
    running, failed, done = titles
    with st.status(running, expanded=True) as box:
        try:
            report = work(progress_bar(bar))
        except FacecoreError as exc:
            box.update(label=failed, state="error")
            st.error(str(exc))
            return
        box.update(label=done, state="complete")
    st.session_state["dataset-report"] = report.to_dict()
    select_dataset_next_run(report.dataset)
    st.rerun()


def run_import(source: Any, name: str, mode: str, options: dict, label: str) -> None:
    """Import with a live status box, then keep the report and show the dataset."""
    with_status(
        (
            f"Importing {label} into {name!r}: detecting and cropping faces",
            f"Import into {name!r} failed",
            f"Imported {label} into {name!r}",
        ),
        "Faces",
        lambda progress: import_dataset(
            source, name, mode=mode, progress=progress, source_label=label, **options
        ),
    )


def import_zip(upload: Any, name: str, mode: str, options: dict) -> None:
    """The upload goes to a temporary file for ``zipfile`` and is deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="facecore-upload-") as tmp:
        path = Path(tmp) / "upload.zip"
        path.write_bytes(upload.getvalue())
        run_import(path, name, mode, options, upload.name)


def import_images(uploads: list[Any], person: str, name: str, mode: str, options: dict) -> None:
    """Uploaded images of one person, imported from memory (nothing is written before the crops)."""
    try:
        listing = person_listing(person, [(u.name, u.getvalue()) for u in uploads])
    except FacecoreError as exc:
        st.error(str(exc))
        return
    run_import(listing, name, mode, options, f"{len(uploads)} images of {person}")


def show_report(report: dict) -> None:
    """The last import's report: per-class counts, no-face images, duplicates, problems."""
    classes = report["classes"]
    stored = sum(c.get("stored", 0) for c in classes.values())
    with st.container(border=True):
        head, close = st.columns([6, 1])
        head.success(
            f"Import into **{report['dataset']}** ({report['mode']}, detector {report['detector']}, "
            f"{report['seconds']:.1f} s): {stored} faces stored, {len(report['no_face'])} without a face, "
            f"{len(report['duplicates'])} duplicates, {len(report['problems'])} problems."
        )
        close.button(
            "Dismiss", key="report-dismiss", on_click=lambda: st.session_state.pop("dataset-report", None)
        )
        rows = [
            {
                "person": cls,
                "stored": c.get("stored", 0),
                "faces found": c.get("faces_found", 0),
                "no face": c.get("no_face", 0),
                "centre crop": c.get("centre_crop", 0),
                "duplicates": c.get("duplicate", 0),
                "errors": c.get("error", 0),
                **{s: report["split"].get(cls, {}).get(s, 0) for s in SPLITS},
            }
            for cls, c in classes.items()
        ]
        st.dataframe(rows, hide_index=True, width="stretch")
        for w in report["warnings"]:
            st.warning(w)
        dupes = [f"{d['path']} (same as {d['same_as']})" for d in report["duplicates"]]
        lists = [
            ("No face found (review them under 'No face found')", report["no_face"]),
            ("Duplicates (stored once)", dupes),
            ("Problems (skipped)", [f"{p['path']}: {p['message']}" for p in report["problems"]]),
        ]
        for title, items in lists:
            if items:
                with st.expander(f"{title}: {len(items)}"):
                    st.markdown("\n".join(f"- `{i}`" for i in items[:200]))


def target_dataset(default: str) -> tuple[str, str]:
    """The dataset name to add to, and the import mode (create, or append / replace when it exists)."""
    name = st.text_input("Dataset name", value=default, key="add-name").strip()
    if name in list_datasets():
        mode = st.radio(
            f"Dataset {name!r} exists",
            ["append", "replace", "create"],
            format_func={
                "append": "Add to it (its split is kept)",
                "replace": "Replace it",
                "create": "Create a new one (pick another name)",
            }.get,
            horizontal=True,
            key="add-mode",
        )
    else:
        mode = "create"
        st.caption(f"A new dataset {name!r} will be created." if name else "Type a name for the dataset.")
    return name, mode


def import_options() -> dict:
    with st.expander("Detection options"):
        detector = st.selectbox(
            "Face detector",
            DETECTORS,
            key="add-detector",
            help="auto: YuNet when its model file is present, else the Haar cascade with rotation; "
            "none: the images are already face crops.",
        )
        centre = st.checkbox("Keep a centre crop when no face is found", key="add-centre")
    return {"detector": detector, "no_face": "centre_crop" if centre else "report"}


def zip_form(name: str, mode: str, options: dict) -> None:
    upload = st.file_uploader(
        "A zip with one folder per person (and an `Unknown` folder of other people's faces)",
        type=["zip"],
        key="zip-upload",
    )
    if st.button("Import the zip", type="primary", key="zip-import", disabled=upload is None or not name):
        import_zip(upload, name, mode, options)


def images_form(ds: FaceDataset | None, name: str, mode: str, options: dict) -> None:
    people = ds.classes if ds and ds.name == name else []
    existing = bool(people) and st.radio(
        "Whose photos",
        [False, True],
        format_func=lambda e: "An existing person" if e else "A new person",
        horizontal=True,
        key="images-existing",
    )
    if existing:
        person = st.selectbox("Person", people, key="images-person-pick")
    else:
        person = st.text_input("New person's name", key="images-person", placeholder="e.g. Ada Lovelace")
    uploads = st.file_uploader(
        "Photos of this person",
        type=[e.lstrip(".") for e in sorted(IMAGE_EXTENSIONS)],
        accept_multiple_files=True,
        key="images-upload",
    )
    ready = bool(uploads and person and name)
    if st.button("Import the photos", type="primary", key="images-import", disabled=not ready):
        import_images(uploads, person, name, mode, options)


def add_faces(ds: FaceDataset | None) -> None:
    """The three ways in: a zip, photos of one person, the camera."""
    name, mode = target_dataset(ds.name if ds else "faces")
    how = st.segmented_control(
        "How",
        ["zip", "images", "camera"],
        default="zip",
        required=True,
        format_func={"zip": "Upload a zip", "images": "Upload photos of one person", "camera": "Camera"}.get,
        key="add-how",
    )
    if how == "camera":
        enroll(name)
        return
    options = import_options()
    if how == "zip":
        zip_form(name, mode, options)
    else:
        images_form(ds, name, mode, options)


def lfw_sample() -> None:
    """Build a sample dataset from LFW ($FACECORE_LFW_SOURCE, or downloaded once with scikit-learn)."""
    st.markdown("**Try the LFW sample**")
    st.caption(
        "The people with the most photos in Labeled Faces in the Wild, plus an Unknown class of "
        "other people (downloaded once, about 200 MB)."
    )
    with st.expander("Sample size"):
        people = st.number_input("People", 2, 20, 7, key="lfw-people")
        per_person = st.number_input("Photos per person (at most)", 3, 600, 40, key="lfw-per-person")
        unknown = st.number_input("Unknown faces", 0, 250, 60, key="lfw-unknown")
    name = st.text_input("Dataset name", "lfw-sample", key="lfw-name").strip()
    if not st.button("Build the LFW sample", type="primary", key="lfw-build", disabled=not name):
        return
    with_status(
        (f"Building {name!r} from LFW", "The LFW sample could not be built", f"Built {name!r}"),
        "LFW",
        lambda progress: build_sample(
            name, people=int(people), max_per_person=int(per_person), unknown=int(unknown), progress=progress
        ),
    )


# --- webcam enrollment -----------------------------------------------------------------------------


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


# --- looking at a dataset --------------------------------------------------------------------------


def overview(ds: FaceDataset) -> None:
    """Counts, the class-balance chart and the train/val/test table."""
    s = ds.summary()
    cols = st.columns(6)
    for col, (label, value) in zip(
        cols,
        [
            ("People", len(s["classes"])),
            ("Faces", s["images"]),
            ("No face found", s["no_face"]),
            *((SPLIT_LABELS[split], s["split"][split]) for split in SPLITS),
        ],
        strict=True,
    ):
        col.metric(label, value)
    for msg in ds.split_messages():
        st.warning(msg)
    counts = ds.counts()
    if not counts:
        st.info("This dataset has no faces; add some under 'Add faces'.")
        return
    st.plotly_chart(balance_figure(counts), width="stretch", key="balance")
    noface = {c: sum(r.class_name == c and r.status == "no_face" for r in ds.rows) for c in counts}
    table = [{"person": c, **n, "total": sum(n.values()), "no face": noface[c]} for c, n in counts.items()]
    st.dataframe(table, hide_index=True, width="stretch")
    if not read_only():
        danger_zone(ds)


def balance_figure(counts: dict[str, dict[str, int]]) -> go.Figure:
    """Images per person, stacked by split."""
    people = list(counts)
    colours = {"train": "#4C78A8", "val": "#F58518", "test": "#54A24B", "unsplit": "#BAB0AC"}
    fig = go.Figure(
        [
            go.Bar(name=split, x=people, y=[counts[p][split] for p in people], marker_color=colours[split])
            for split in (*SPLITS, "unsplit")
            if any(counts[p][split] for p in people)
        ]
    )
    fig.update_layout(
        barmode="stack",
        height=340,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title="Class balance: images per person",
        yaxis_title="images",
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right", "traceorder": "normal"},
    )
    return fig


def danger_zone(ds: FaceDataset) -> None:
    with st.expander("Delete this dataset"):
        sure = st.checkbox(f"Yes, delete {ds.name!r} and all its images", key=f"drop-{ds.name}")
        if st.button("Delete dataset", disabled=not sure, key="drop-dataset"):
            try:
                delete_dataset(ds.name)
            except FacecoreError as exc:
                st.error(str(exc))
                return
            flash("success", f"Deleted dataset {ds.name!r}.")
            st.session_state.pop("dataset", None)
            st.session_state.pop("dataset-select", None)
            st.rerun()


def stored_rows(ds: FaceDataset, person: str) -> list[ManifestRow]:
    return sorted((r for r in ds.stored if r.class_name == person), key=lambda r: r.file)


def page_of(items: list, size: int, key: str) -> list:
    """One page of ``items``, with a pager when there is more than one page."""
    pages = max(1, math.ceil(len(items) / size))
    number = st.pagination(pages, key=key) if pages > 1 else 1
    return items[(number - 1) * size : number * size]


def faces(ds: FaceDataset) -> None:
    """A paged grid of one person's face crops, with rename / delete for the person and each image."""
    if not ds.classes:
        st.info("This dataset has no faces yet.")
        return
    if st.session_state.get("faces-person") not in ds.classes:
        st.session_state.pop("faces-person", None)
    person = st.selectbox("Person", ds.classes, key="faces-person")
    rows = stored_rows(ds, person)
    n = {s: sum(r.split == s for r in rows) for s in SPLITS}
    st.caption(f"{len(rows)} faces: train {n['train']}, val {n['val']}, test {n['test']}.")
    if not read_only():
        person_actions(ds, person, len(rows))
    grid = st.columns(GRID_COLUMNS)
    for i, row in enumerate(page_of(rows, PAGE_SIZE, f"faces-page-{ds.name}-{person}")):
        with grid[i % GRID_COLUMNS]:
            st.image(str(ds.path / row.file), caption=row.split or "unsplit", width="stretch")
            if read_only():
                continue
            st.button(
                "Delete",
                key=f"del-{row.file}",
                icon=":material/delete:",
                type="tertiary",
                help=f"Delete {row.file} from the dataset",
                on_click=act,
                args=(delete_image, ds.name, row.file),
            )


def person_actions(ds: FaceDataset, person: str, count: int) -> None:
    with st.expander(f"Rename or delete {person}"):
        left, right = st.columns(2)
        left.text_input("New name", value=person, key="rename-to")
        left.button("Rename", key="rename", on_click=rename_person, args=(ds.name, person))
        right.checkbox(f"Yes, delete {person} and {count} faces", key="delete-person-sure")
        right.button(
            "Delete person",
            key="delete-person",
            disabled=not st.session_state.get("delete-person-sure"),
            on_click=delete_person,
            args=(ds.name, person),
        )


def rename_person(name: str, person: str) -> None:
    new = st.session_state.get("rename-to", "")
    if act(rename_class, name, person, new) is not None:
        st.session_state["faces-person"] = check_class_name(new)
        st.session_state.pop("rename-to", None)


def delete_person(name: str, person: str) -> None:
    if act(delete_class, name, person) is not None:
        st.session_state.pop("faces-person", None)
        st.session_state["delete-person-sure"] = False


def noface(ds: FaceDataset) -> None:
    """The images where no face was found, each with keep / centre crop / delete."""
    rows = sorted((r for r in ds.rows if r.status == "no_face"), key=lambda r: r.file)
    if not rows:
        st.success("Every image in this dataset has a face.")
        return
    st.caption(
        "No face was found in these images, so they are in no split. Keep one as it is (the whole "
        "image, padded to a square and resized), keep a centre crop, or delete it."
    )
    cols = st.columns(4)
    for i, row in enumerate(page_of(rows, NOFACE_PAGE_SIZE, f"noface-page-{ds.name}")):
        with cols[i % 4], st.container(border=True):
            st.image(str(ds.path / row.file), caption=row.source.split("::")[-1])
            for action, label in NOFACE_BUTTONS:
                st.button(
                    label,
                    key=f"nf-{action}-{row.file}",
                    width="stretch",
                    on_click=act,
                    args=(resolve_noface, ds.name, row.file, action),
                )


def augmentation(ds: FaceDataset) -> None:
    """One face next to random augmented versions under the chosen transforms."""
    if not ds.stored:
        st.info("This dataset has no faces yet.")
        return
    default = AugmentConfig()
    st.caption("The random transforms training applies to each face; switch each one on or off.")
    cols = st.columns(3)
    switches = {
        "rotation": cols[0].checkbox(f"Rotation ±{default.rotation:g}°", True, key="aug-rotation"),
        "crop": cols[1].checkbox("Random resized crop", True, key="aug-crop"),
        "noise": cols[2].checkbox(
            f"Gaussian noise σ={default.gaussian_noise_sigma:g}", True, key="aug-noise"
        ),
        "flip": cols[0].checkbox("Horizontal flip", True, key="aug-flip"),
        "jitter": cols[1].checkbox("Colour jitter", True, key="aug-jitter"),
        "translate": cols[2].checkbox(f"Translation ±{default.translate:.0%}", True, key="aug-translate"),
    }
    aug = AugmentConfig(
        rotation=default.rotation if switches["rotation"] else 0.0,
        random_resized_crop=switches["crop"],
        gaussian_noise_sigma=default.gaussian_noise_sigma if switches["noise"] else 0.0,
        hflip=switches["flip"],
        color_jitter=switches["jitter"],
        translate=default.translate if switches["translate"] else 0.0,
    )
    buttons = st.container(horizontal=True)
    if buttons.button("Another face", key="aug-another", icon=":material/shuffle:"):
        st.session_state["aug-pick"] = random.randrange(len(ds.stored))
    if buttons.button("New random versions", key="aug-reroll", icon=":material/refresh:"):
        st.session_state["aug-seed"] = st.session_state.get("aug-seed", 0) + 1
    row = ds.stored[st.session_state.get("aug-pick", 0) % len(ds.stored)]
    seed = st.session_state.get("aug-seed", 0)
    image = load_rgb(ds.path / row.file)
    versions = [augment_image(image, aug, seed=seed * 1000 + i) for i in range(AUG_VERSIONS)]
    if is_deterministic(aug):
        st.info("Every augmentation is off: the versions equal the original.")
    captions = [f"{row.class_name} (original)", *(f"augmented {i + 1}" for i in range(AUG_VERSIONS))]
    for col, picture, caption in zip(st.columns(AUG_VERSIONS + 1), [image, *versions], captions, strict=True):
        col.image(picture, caption=caption, width="stretch")


# --- the page --------------------------------------------------------------------------------------


def empty_state() -> None:
    if read_only():
        st.info("There is no dataset on this server (presentation mode adds none).")
        return
    st.info("No dataset yet. Add yourself with the camera or upload a zip, or try the LFW sample.")
    left, right = st.columns([3, 2])
    with left, st.container(border=True):
        st.markdown("**Add yourself with the camera or upload a zip**")
        add_faces(None)
    with right, st.container(border=True):
        lfw_sample()
    with st.expander("Or enroll people into a gallery: recognised from a few photos each, no training"):
        gallery_section(None, None)


def dataset_view(name: str) -> None:
    try:
        ds = load_dataset(name)
    except FacecoreError as exc:
        st.error(str(exc))
        return
    n_noface = sum(r.status == "no_face" for r in ds.rows)
    section = st.segmented_control(
        "Section",
        [s for s in SECTIONS if s not in EDIT_SECTIONS] if read_only() else SECTIONS,
        default="overview",
        required=True,
        format_func=lambda s: f"{SECTION_LABELS[s]} ({n_noface})" if s == "noface" else SECTION_LABELS[s],
        key="dataset-section",
        label_visibility="collapsed",
    )
    views = {"overview": overview, "faces": faces, "noface": noface, "augment": augmentation}
    if section == "gallery":
        gallery_section(ds, enroll)
    elif section == "add":
        add_faces(ds)
        with st.expander("Or build the LFW sample"):
            lfw_sample()
    else:
        views[section](ds)


st.title("Dataset")
show_flash()
apply_pending_dataset()
if "dataset-report" in st.session_state:
    show_report(st.session_state["dataset-report"])
if list_datasets():
    current = choose_dataset()
    if current:
        dataset_view(current)
else:
    empty_state()
