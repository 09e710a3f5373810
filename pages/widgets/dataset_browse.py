"""The Dataset page's views of one dataset: the overview, the faces of each person, the images with
no face, and the augmentation preview; with the edits each offers (rename, delete, resolve)."""

from __future__ import annotations

import math
import random

import streamlit as st

from facecore.data import (
    SPLITS,
    AugmentConfig,
    FaceDataset,
    augment_from_switches,
    augment_preview,
    check_class_name,
    count_splits,
    delete_class,
    delete_dataset,
    delete_image,
    is_deterministic,
    rename_class,
    resolve_noface,
)
from facecore.errors import FacecoreError
from facecore.evaluate import balance_figure
from facecore.mode import read_only
from pages.widgets.dataset_common import act, flash

GRID_COLUMNS = 6
PAGE_SIZE = 24
NOFACE_PAGE_SIZE = 8
AUG_VERSIONS = 5
SPLIT_LABELS = {"train": "Train", "val": "Validation", "test": "Test"}
NOFACE_BUTTONS = (("keep", "Keep as is"), ("centre_crop", "Centre crop"), ("delete", "Delete"))


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
    st.dataframe(ds.class_table(), hide_index=True, width="stretch")
    if not read_only():
        danger_zone(ds)


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
    rows = ds.faces_of(person)
    n = count_splits(rows)
    st.caption(f"{len(rows)} faces: train {n['train']}, val {n['val']}, test {n['test']}.")
    if not read_only():
        person_actions(ds, person, len(rows))
    grid = st.columns(GRID_COLUMNS)
    for i, row in enumerate(page_of(rows, PAGE_SIZE, f"faces-page-{ds.name}-{person}")):
        with grid[i % GRID_COLUMNS]:
            st.image(str(ds.image_path(row)), caption=row.split or "unsplit", width="stretch")
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
    rows = ds.no_face
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
            st.image(str(ds.image_path(row)), caption=row.source.split("::")[-1])
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
        "random_resized_crop": cols[1].checkbox("Random resized crop", True, key="aug-crop"),
        "gaussian_noise_sigma": cols[2].checkbox(
            f"Gaussian noise σ={default.gaussian_noise_sigma:g}", True, key="aug-noise"
        ),
        "hflip": cols[0].checkbox("Horizontal flip", True, key="aug-flip"),
        "color_jitter": cols[1].checkbox("Colour jitter", True, key="aug-jitter"),
        "translate": cols[2].checkbox(f"Translation ±{default.translate:.0%}", True, key="aug-translate"),
    }
    aug = augment_from_switches(switches)
    buttons = st.container(horizontal=True)
    if buttons.button("Another face", key="aug-another", icon=":material/shuffle:"):
        st.session_state["aug-pick"] = random.randrange(len(ds.stored))
    if buttons.button("New random versions", key="aug-reroll", icon=":material/refresh:"):
        st.session_state["aug-seed"] = st.session_state.get("aug-seed", 0) + 1
    pick, seed = st.session_state.get("aug-pick", 0), st.session_state.get("aug-seed", 0)
    row, image, versions = augment_preview(ds, pick, aug, seed=seed, count=AUG_VERSIONS)
    if is_deterministic(aug):
        st.info("Every augmentation is off: the versions equal the original.")
    captions = [f"{row.class_name} (original)", *(f"augmented {i + 1}" for i in range(AUG_VERSIONS))]
    for col, picture, caption in zip(st.columns(AUG_VERSIONS + 1), [image, *versions], captions, strict=True):
        col.image(picture, caption=caption, width="stretch")
