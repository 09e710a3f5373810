"""Home: where the workspace stands and the next step."""

import streamlit as st

from facecore import workspace
from facecore.dataset import list_datasets, load_dataset
from facecore.weights import weights_status

st.title("facecore")
st.caption(f"Workspace: `{workspace.home()}`")

names = list_datasets()
if not names:
    st.info(
        "No dataset yet. Import one from the command line:\n\n"
        "`python -m facecore dataset import FOLDER_OR_ZIP --name NAME`\n\n"
        "or build the LFW sample: `python -m facecore dataset sample --name lfw-sample`"
    )
for name in names:
    summary = load_dataset(name).summary()
    split = summary["split"]
    st.subheader(name)
    st.write(
        f"{len(summary['classes'])} people, {summary['images']} images "
        f"(train {split['train']}, val {split['val']}, test {split['test']})"
    )

status = weights_status()
if status["available"]:
    st.success(f"ImageNet weights for the pretrained ResNet50 are present: `{status['path']}`")
else:
    st.warning(
        "ImageNet weights for `resnet50_pretrained` are not on this machine. Run "
        f"`python -m facecore weights download`, or place `{status['path'].split('/')[-1]}` "
        f"from {status['url']} at `{status['path']}`. The other two models work without them."
    )
