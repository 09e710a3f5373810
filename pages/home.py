"""Home: where the workspace stands, and the next step."""

from __future__ import annotations

import pages.widgets.torch_first  # noqa: F401  # first: see there

# isort: split

import streamlit as st

from facecore import workspace
from facecore.data import UNKNOWN, build_sample, list_datasets, load_dataset
from facecore.detect import find_yunet_model
from facecore.device import device_summary
from facecore.errors import FacecoreError
from facecore.mode import read_only
from facecore.models import weights_status
from pages.common import setup_page

setup_page()


def guided_start() -> None:
    st.subheader("Start here")
    left, right = st.columns(2)
    with left, st.container(border=True):
        st.markdown("**Add yourself with the camera, or upload a zip**")
        st.caption("One folder per person, plus an `Unknown` folder of other people's faces.")
        st.page_link("pages/dataset.py", label="Open the Dataset page", icon=":material/photo_library:")
    with right, st.container(border=True):
        st.markdown("**Try the LFW sample**")
        st.caption("Seven people from Labeled Faces in the Wild plus an Unknown class (~200 MB, once).")
        if st.button("Build the LFW sample", type="primary"):
            build_lfw_sample()


def build_lfw_sample() -> None:
    bar = st.progress(0.0, text="Preparing the LFW sample")

    def progress(done: int, total: int, message: str) -> None:
        bar.progress(min(done / total, 1.0) if total else 0.0, text=f"{message[:60]} ({done}/{total})")

    try:
        report = build_sample("lfw-sample", people=7, unknown=60, max_per_person=40, progress=progress)
    except FacecoreError as exc:
        st.error(str(exc))
        return
    bar.empty()
    # shown after the rerun that swaps the guided start for the dataset summary
    st.session_state["home-built"] = (
        f"Built 'lfw-sample': {report.count('stored')} faces of {len(report.classes)} classes. "
        "Next: train the models on the Train page."
    )
    st.rerun()


def datasets_section(names: list[str]) -> None:
    st.subheader("Datasets")
    for name in names:
        s = load_dataset(name).summary()
        split = s["split"]
        people = [c for c in s["classes"] if c != UNKNOWN]
        others = " + Unknown" if len(people) < len(s["classes"]) else ""
        st.markdown(
            f"**{name}**: {len(people)} people{others}, {s['images']} images "
            f"(train {split['train']}, val {split['val']}, test {split['test']})"
        )


def models_section() -> None:
    from facecore.train import list_runs

    runs = list_runs()
    st.subheader("Trained models")
    if not runs:
        st.info("No trained model yet.")
        if read_only():
            return
        st.page_link("pages/train.py", label="Train the three models", icon=":material/model_training:")
        return
    rows = [
        {
            "run": r.run,
            "model": r.model,
            "dataset": r.dataset,
            "state": r.state,
            "val accuracy": r.val_acc,
            "test accuracy": r.test_acc,
        }
        for r in runs
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    st.page_link("pages/compare.py", label="Compare them", icon=":material/compare:")


def system_section() -> None:
    st.subheader("This machine")
    st.write(device_summary())
    try:
        st.write(f"Face detection: YuNet (`{find_yunet_model()}`).")
    except FacecoreError as exc:
        st.error(f"Face detection cannot use YuNet: {exc}")
    status = weights_status()
    if status["available"]:
        st.success(f"ImageNet weights for the pretrained ResNet50 are present: `{status['path']}`")
    else:
        st.warning(
            "ImageNet weights for `resnet50_pretrained` are not on this machine. Run "
            f"`python -m facecore weights download`, or place `{status['path'].split('/')[-1]}` "
            f"from {status['url']} at `{status['path']}`. The other two models work without them."
        )


st.title("facecore")
st.caption(f"Workspace: `{workspace.home()}`")
names = list_datasets()
if "home-built" in st.session_state:
    st.success(st.session_state.pop("home-built"), icon=":material/check_circle:")
if names:
    datasets_section(names)
    models_section()
else:
    if read_only():
        st.info("There is no dataset or trained model on this server yet.")
    else:
        st.info("No dataset yet. Add faces to get started.")
        guided_start()
system_section()
