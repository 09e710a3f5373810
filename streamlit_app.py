"""facecore dashboard: builds the navigation and nothing else."""

# PyTorch and torchvision are imported here, before any page: two sessions whose first pages
# import torchvision's submodules at the same moment (a cold server, several tabs) can otherwise
# meet its circular imports half-done ("cannot import name 'InterpolationMode' from partially
# initialized module"). Here every run waits for one whole import of the package.
import streamlit as st
import torch  # noqa: F401
import torchvision  # noqa: F401

st.set_page_config(page_title="facecore", page_icon=":material/face:", layout="wide")
st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("pages/live.py", title="Live", icon=":material/videocam:"),
    ]
).run()
