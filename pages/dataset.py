"""Dataset: bring faces in (a zip, images of one person, the camera, the LFW sample), look through
them, and fix what needs fixing.

Everything here is also on the command line: ``python -m facecore dataset import | sample |
add-images | enroll | rename | remove-class | remove-image | noface | info | delete``.
"""

from __future__ import annotations

import pages.widgets.torch_first  # noqa: F401  # first: see there

# isort: split

import streamlit as st

from facecore.data import list_datasets, load_dataset
from facecore.errors import FacecoreError
from facecore.mode import read_only
from pages.common import choose_dataset, setup_page
from pages.widgets.dataset_add import add_faces, lfw_sample, show_report
from pages.widgets.dataset_browse import augmentation, faces, noface, overview
from pages.widgets.dataset_camera import enroll
from pages.widgets.dataset_common import apply_pending_dataset, show_flash
from pages.widgets.gallery_panel import gallery_section

setup_page()

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
    n_noface = len(ds.no_face)
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
