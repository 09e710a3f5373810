"""The Live page's WebRTC video: the player and, beside it, the faces in view, the names recognised
so far and the recogniser's figures, redrawn while the video plays."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from facecore.live import LiveRecognizer, LiveResult
from pages.common import ice_config

NO_FRAMES_S = 10.0
UI_REFRESH_S = 0.5  # the tables and stats beside the video; the video itself is drawn on every frame
KEEPALIVE_S = 3.0  # the stats line is redrawn at least this often (see show_results)


def guidance(source: str) -> None:
    """What to check when the video does not start."""
    st.caption(f"ICE: {source}.")
    with st.expander("Video not starting? What to check"):
        st.markdown(
            "- **Camera permission**: allow the camera for this site (the icon in the address bar), "
            "and close other apps that use it.\n"
            "- **Secure page**: browsers give the camera only to `https://` pages or `localhost`.\n"
            "- **Network**: away from this computer's network the video needs a STUN/TURN server. "
            "Set `FACECORE_ICE_SERVERS` to a JSON list such as "
            '`[{"urls": ["turn:turn.example.org:3478"], "username": "U", "credential": "P"}]`, '
            "or add `[ice]` with `servers = [...]` to `.streamlit/secrets.toml`; firewalls must "
            "let UDP (or TURN over TCP/TLS) through.\n"
            "- **Still stuck**: choose *Snapshot* above: it recognises a photo without WebRTC."
        )


def percent(rows: list[dict[str, Any]], column: str) -> pd.DataFrame:
    """Rows as a table with ``column`` shown as a percentage."""
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame[column] = frame[column].map(lambda v: f"{v:.0%}")
    return frame


def seen_rows(recognizer: LiveRecognizer) -> list[dict[str, Any]]:
    """The names recognised so far: name, model, times, best confidence."""
    return [{k: r[k] for k in ("name", "model", "times", "best")} for r in recognizer.seen()]


def seen_table(slot: Any, rows: list[dict[str, Any]]) -> None:
    """The "Recognised so far" table in ``slot``."""
    slot.table(percent(rows, "best"), hide_index=True)


def show_results(
    recognizer: LiveRecognizer, now: Any, seen: Any, stats: Any, on_tick: Callable[[], None] | None = None
) -> None:
    """While the video plays: the faces of the newest result, the names seen so far, the stats
    (and ``on_tick()`` each time round, e.g. the Add me progress).

    Redrawn at most every ``UI_REFRESH_S`` and only where something changed: each redraw costs the
    server and the browser CPU time that recognition on a small machine needs.
    """
    started = time.monotonic()
    shown: dict[str, Any] = {}
    drawn = started

    def draw(slot: Any, key: str, value: Any, render: Any) -> None:
        nonlocal drawn
        # the stats line is also redrawn every few seconds: the call is where Streamlit ends this
        # loop once the viewer has gone (closed tab, STOP), so it must not wait for a change
        if shown.get(key) != value or (key == "stats" and time.monotonic() - drawn > KEEPALIVE_S):
            shown[key] = value
            render(slot, value)
            drawn = time.monotonic()

    while True:
        time.sleep(UI_REFRESH_S)
        try:
            result: LiveResult | None = recognizer.results.get(timeout=1.0)
        except queue.Empty:
            result = None
        figures = recognizer.stats()
        line = figures.line() + (f"  \nError: {figures.error}" if figures.error else "")
        draw(stats, "stats", line, lambda slot, v: slot.caption(v))
        if on_tick is not None:
            on_tick()
        if result is not None and result.faces:
            rows = [{**r, "confidence": round(r["confidence"], 2)} for r in result.rows()]
            draw(now, "now", rows, lambda slot, v: slot.table(percent(v, "confidence"), hide_index=True))
        elif result is not None:
            draw(now, "now", "none", lambda slot, _v: slot.caption("No face in view."))
        names = seen_rows(recognizer)
        if names:
            draw(seen, "seen", names, seen_table)
        if figures.frames == 0 and time.monotonic() - started > NO_FRAMES_S:
            stats.warning("Connected, but no video frames arrive: see *Video not starting?* by the player.")


def live_video(recognizer: LiveRecognizer, on_tick: Callable[[], None] | None = None) -> None:
    """The WebRTC player (SENDRECV) and, beside it, what is recognised; ``on_tick`` is called
    while the video plays (see :func:`show_results`)."""
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    servers, source = ice_config()
    player, side = st.columns([3, 2])
    with player:
        try:
            ctx = webrtc_streamer(
                key="live-webrtc",
                mode=WebRtcMode.SENDRECV,
                rtc_configuration={"iceServers": servers},
                media_stream_constraints={"video": {"width": 640, "height": 480}, "audio": False},
                video_frame_callback=recognizer.av_callback,
                async_processing=True,
            )
        except (AttributeError, RuntimeError) as exc:  # no Streamlit server session (a script runner)
            st.info(f"Live video is not available in this session ({exc}); choose Snapshot above.")
            ctx = None
        guidance(source)
    if ctx is None:
        return
    with side:
        st.subheader("In view")
        now = st.empty()
        st.subheader("Recognised so far")
        seen = st.empty()
        stats = st.empty()
        if ctx.state.signalling and not ctx.state.playing:
            now.info("Connecting... if this takes more than a few seconds, see *Video not starting?*.")
        elif not ctx.state.playing:
            now.info("Press START and allow the camera.")
            names = seen_rows(recognizer)
            if names:  # kept after STOP, until the models or settings change
                seen_table(seen, names)
    if ctx.state.playing:
        show_results(recognizer, now, seen, stats, on_tick)
