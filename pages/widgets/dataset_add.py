"""The Dataset page's ways in: a zip, photos of one person, the camera, the LFW sample, and the
report of the last import."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from facecore.data import (
    IMAGE_EXTENSIONS,
    SPLITS,
    FaceDataset,
    build_sample,
    import_dataset,
    import_zip_bytes,
    list_datasets,
    person_listing,
)
from facecore.errors import FacecoreError
from pages.widgets.dataset_camera import enroll
from pages.widgets.dataset_common import select_dataset_next_run

DETECTORS = ("auto", "yunet", "haar", "none")


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


def run_import(name: str, label: str, work: Callable[[Callable], Any]) -> None:
    """Import ``label`` into ``name`` with a live status box (``work(progress)`` imports and returns
    the report), then keep the report and show the dataset."""
    with_status(
        (
            f"Importing {label} into {name!r}: detecting and cropping faces",
            f"Import into {name!r} failed",
            f"Imported {label} into {name!r}",
        ),
        "Faces",
        work,
    )


def import_zip(upload: Any, name: str, mode: str, options: dict) -> None:
    """An uploaded zip, imported from its bytes (:func:`import_zip_bytes`)."""
    run_import(
        name,
        upload.name,
        lambda progress: import_zip_bytes(
            upload.getvalue(), name, label=upload.name, mode=mode, progress=progress, **options
        ),
    )


def import_images(uploads: list[Any], person: str, name: str, mode: str, options: dict) -> None:
    """Uploaded images of one person, imported from memory (nothing is written before the crops)."""
    try:
        listing = person_listing(person, [(u.name, u.getvalue()) for u in uploads])
    except FacecoreError as exc:
        st.error(str(exc))
        return
    label = f"{len(uploads)} images of {person}"
    run_import(
        name,
        label,
        lambda progress: import_dataset(
            listing, name, mode=mode, progress=progress, source_label=label, **options
        ),
    )


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
            help="auto: YuNet (its model ships with facecore); haar: the Haar cascade with "
            "rotation; none: the images are already face crops.",
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
