"""Shared widgets and cached resources for the pages (the only UI module besides the pages)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from facecore.data import list_datasets
from facecore.detect import find_yunet_model
from facecore.mode import ALLOW_ENROLL_ENV, MODE_ENV, mode_problem, read_only
from facecore.recognize import RecognizerRef

if TYPE_CHECKING:  # torch is imported only by the pages that predict
    from facecore.gallery.store import Gallery
    from facecore.live import Predictor
    from facecore.recognize import LoadedModel


def setup_page() -> None:
    """Every page calls this first: the app's navigation on deep links, then the mode banner."""
    _deep_link_navigation()
    _apply_mode_secret()
    _unpack_env_bundle()
    if read_only():
        problem = mode_problem()
        st.info(
            problem
            or "**Presentation mode**: this server is read-only. Upload a photo on the Compare page to see "
            "the models' predictions, or use the Live page. Photos and camera frames are not stored.",
            icon=":material/co_present:",
        )


def _apply_mode_secret() -> None:
    """``FACECORE_MODE = "demo"`` (and ``FACECORE_ALLOW_ENROLL = true``, the presenter's leave for
    Add me) in ``.streamlit/secrets.toml`` count like the environment variables."""
    for key in (MODE_ENV, ALLOW_ENROLL_ENV):
        if key in os.environ:
            continue
        try:
            value = st.secrets.get(key)
        except Exception:  # no secrets file, or one that does not parse: Streamlit says so itself
            return
        if value:
            os.environ[key] = str(value)


def _unpack_env_bundle() -> None:
    """``FACECORE_BUNDLE`` (environment, or a root-level secret): the demo bundle is unpacked into
    the workspace once, before any page reads it (:func:`facecore.bundle.unpack.ensure_env_bundle`;
    later runs return at once). It also makes the server read-only unless FACECORE_MODE=full."""
    if "FACECORE_BUNDLE" not in os.environ:
        try:
            value = st.secrets.get("FACECORE_BUNDLE")
        except Exception:  # no secrets file, or one that does not parse: Streamlit says so itself
            value = None
        if value:
            os.environ["FACECORE_BUNDLE"] = str(value)
    if not os.environ.get("FACECORE_BUNDLE"):
        return
    from facecore.bundle import ensure_env_bundle
    from facecore.errors import FacecoreError

    try:
        ensure_env_bundle()
    except FacecoreError as exc:
        st.error(f"The demo bundle could not be unpacked: {exc}")
        st.stop()


def _deep_link_navigation() -> None:
    """Make a deep link (``/dataset`` as a fresh server's first request) open the real app.

    Streamlit keeps a legacy mode for apps with a ``pages/`` folder: until some session has run
    ``st.navigation``, a URL naming a file in ``pages/`` runs that file alone, without our
    navigation, title or layout. In that mode this switches the legacy mode off (what
    ``st.navigation`` itself does) and runs ``streamlit_app.py`` in its place, in this same run
    (so a button press is not lost), which builds the navigation and runs the page.
    """
    import runpy

    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if not PagesManager.uses_pages_directory or ctx is None:
        return
    PagesManager.uses_pages_directory = False
    runpy.run_path(str(ctx.pages_manager.main_script_path), run_name="__main__")
    st.stop()


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


@st.cache_resource(max_entries=4, show_spinner=False)
def _predictor(checkpoints: tuple[str, ...], stamps: tuple[int, ...], detector: str, yunet: str) -> Predictor:
    from facecore.live import Predictor

    return Predictor(list(checkpoints), detector=detector)


def get_predictor(runs: Sequence[str | Path], detector: str = "auto") -> Predictor:
    """A :class:`Predictor` for ``runs`` (and ``gallery:NAME`` galleries), kept across reruns until a
    checkpoint file or gallery (its modification time) or the YuNet model file changes."""
    from facecore.recognize import model_stamp

    keys = [model_stamp(r) for r in runs]
    paths, stamps = tuple(k[0] for k in keys), tuple(k[1] for k in keys)
    return _predictor(paths, stamps, detector, str(find_yunet_model() or ""))


@st.cache_resource(max_entries=8, show_spinner=False)
def _loaded_run(checkpoint: str, mtime_ns: int) -> LoadedModel:
    from facecore.recognize import load_run

    return load_run(checkpoint)


def loaded_run(run: str | Path) -> LoadedModel:
    """A run loaded once for inference, kept across reruns and sessions until its checkpoint changes."""
    from facecore.recognize import model_stamp

    return _loaded_run(*model_stamp(run))


def ice_config() -> tuple[list[dict], str]:
    """WebRTC ICE servers and where they came from, in words (for guidance next to a player).

    ``$FACECORE_ICE_SERVERS`` (a JSON list of RTCIceServer objects, e.g.
    ``[{"urls": ["stun:stun.l.google.com:19302"]}]``, or ``{"iceServers": [...]}``) wins; else
    ``servers`` in the ``[ice]`` table of ``.streamlit/secrets.toml``; else none (loopback and LAN).
    A malformed value is reported on the page and ignored.
    """
    from facecore.errors import FacecoreError
    from facecore.live import ICE_ENV, rtc_configuration

    try:
        secret = st.secrets.get("ice", {}).get("servers")
    except (FileNotFoundError, KeyError, AttributeError):  # no secrets.toml, or no [ice] table
        secret = None
    try:
        config, source = rtc_configuration(env=os.environ.get(ICE_ENV), secret=secret)
    except FacecoreError as exc:
        st.warning(f"{exc} Using no ICE servers.")
        return [], "no STUN/TURN servers (the configured ones are invalid)"
    return config["iceServers"], source


def ice_servers() -> list[dict]:
    """WebRTC ICE servers (see :func:`ice_config`), e.g. for ``{"iceServers": ice_servers()}``."""
    return ice_config()[0]


def say_uncalibrated(galleries: Sequence[str | Gallery]) -> None:
    """One line for each gallery used here (a name, ``gallery:NAME``, or a gallery the page has
    loaded already) that is not calibrated, naming the button that calibrates it."""
    from facecore.gallery import load_gallery

    for item in galleries:
        g = load_gallery(RecognizerRef.parse(item).name) if isinstance(item, str) else item
        if not g.calibrated:
            st.warning(
                f"Gallery '{g.name}' is not calibrated: its threshold {g.threshold:.3f} is the "
                f"{g.embedder_name} default. Calibrate it on the Dataset page (Enroll into a gallery, "
                "**Calibrate the threshold**) or with `python -m facecore gallery calibrate "
                f"{g.name} --strangers FOLDER_OR_ZIP`.",
                icon=":material/tune:",
            )
