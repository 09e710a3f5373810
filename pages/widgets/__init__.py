"""Widget modules of single pages, kept out of ``pages/`` itself so Streamlit never lists one as a page.

Each module holds the widgets of one section of one page; the page files in ``pages/`` (those
``streamlit_app.py`` names in ``st.navigation``) import them.
"""
