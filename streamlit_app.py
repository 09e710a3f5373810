"""facecore dashboard: builds the navigation and nothing else."""

import pages.widgets.torch_first  # noqa: F401  # before any page imports part of torch

# isort: split

import streamlit as st

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
