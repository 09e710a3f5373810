"""Shared widgets and cached resources for the pages (the only UI module besides the pages)."""

from __future__ import annotations

import streamlit as st

from facecore.dataset import list_datasets


def choose_dataset(key: str = "dataset", label: str = "Dataset") -> str | None:
    """A dataset picker remembered across pages (``st.session_state['dataset']``)."""
    names = list_datasets()
    if not names:
        st.info("No dataset yet: add one on the Dataset page.")
        return None
    current = st.session_state.get("dataset")
    index = names.index(current) if current in names else 0
    name = st.selectbox(label, names, index=index, key=f"{key}-select")
    st.session_state["dataset"] = name
    return name
