"""facecore dashboard: builds the navigation and nothing else."""

import streamlit as st

st.set_page_config(page_title="facecore", page_icon=":material/face:", layout="wide")
st.navigation([st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)]).run()
