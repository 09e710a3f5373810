"""Plain helpers and constants shared by the test modules (the pytest fixtures are in conftest.py).

Import them as ``from tests.helpers import ...``: the repository root is on ``sys.path`` when the
suite runs from it (``python -m pytest``), and ``tests`` is a namespace package (no ``__init__.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

# --- paths ------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]  # the repository root
APP = str(ROOT / "streamlit_app.py")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"

ASSETS = ROOT.parent / "shared" / "assets"  # the offline real assets, laid beside the clone
LFW = ASSETS / "lfw-deepfunneled"
YUNET = ASSETS / "models" / "face_detection_yunet_2026may.onnx"
PHOTO = ASSETS / "detection" / "2007_007763.jpg"  # a real group photo with 7 faces

PERSON = "Colin_Powell"  # the person the live and browser tests look for


# --- workspaces and data ----------------------------------------------------------------------


def make_people_tree(root: Path, people: dict[str, int], unknown: int = 0) -> Path:
    """Copy real LFW faces into ``root/<person>/`` (``n`` images each) and ``root/Unknown``."""
    root.mkdir(parents=True, exist_ok=True)
    for person, n in people.items():
        files = sorted((LFW / person).glob("*.jpg"))[:n]
        assert len(files) == n, f"{person} has only {len(files)} images in the assets"
        (root / person).mkdir()
        for f in files:
            shutil.copy(f, root / person / f.name)
    if unknown:
        singles = sorted(p for p in LFW.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) == 1)
        (root / "Unknown").mkdir()
        for p in singles[:unknown]:
            f = next(p.glob("*.jpg"))
            shutil.copy(f, root / "Unknown" / f.name)
    return root


def enroll_team(name: str = "team") -> str:
    """Gallery ``name`` (default embedder): 5 real photos each of Colin Powell and Tony Blair."""
    from facecore.gallery.enroll import enroll_photos

    for person in ("Colin_Powell", "Tony_Blair"):
        photos = sorted((LFW / person).glob("*.jpg"))[:5]
        enroll_photos(name, person, [(p.name, p) for p in photos])
    return name


def yunet_workspace(home: Path) -> Path:
    """Create ``home`` with the real YuNet model in its ``detectors/`` (as after `detectors download`)."""
    (home / "detectors").mkdir(parents=True, exist_ok=True)
    shutil.copy(YUNET, home / "detectors" / YUNET.name)
    return home


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its sha256: equal snapshots mean nothing changed."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def fake_job(home: Path, job_id: str, status: str, **fields) -> Path:
    """A job record as the job process writes it, owned by this (live) process."""
    from facecore.train.config import TrainConfig

    record = {
        "id": job_id,
        "status": status,
        "pid": os.getpid(),
        "created": time.time() - 5,
        "started": time.time() - 5,
        "finished": None,
        "group": "",
        "configs": [TrainConfig.for_model("custom_cnn", "small").to_dict()],
        "runs": [],
        "resume_run": None,
        "message": "",
        **fields,
    }
    folder = home / "jobs" / job_id
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps(record))
    return folder


# --- training -----------------------------------------------------------------------------------


def train_tiny(dataset: str, run_name: str = "live-cnn", epochs: int = 3) -> str:
    """A custom_cnn run that has learnt ``dataset``'s faces (no augmentation, lr 1e-3); its name."""
    from facecore.data.transforms import AugmentConfig
    from facecore.train.config import TrainConfig
    from facecore.train.loop import train

    cfg = TrainConfig.for_model(
        "custom_cnn",
        dataset,
        epochs=epochs,
        batch_size=8,
        lr=1e-3,
        workers=0,
        augment=AugmentConfig.none(),
        run_name=run_name,
    )
    return train(cfg)["run"]


def train_two_runs(dataset: str) -> list[str]:
    """Two real one-epoch custom_cnn runs of ``dataset``, trained together as group g1."""
    from facecore.train.config import TrainConfig
    from facecore.train.loop import train

    for name, seed in (("run-a", 0), ("run-b", 1)):
        train(
            TrainConfig.for_model(
                "custom_cnn", dataset, epochs=1, batch_size=8, run_name=name, group="g1", seed=seed
            )
        )
    return ["run-a", "run-b"]


# --- video and the browser --------------------------------------------------------------------


def face_y4m(path: Path, person_dir: Path, *, fps: int = 15, frames_per_image: int = 8) -> Path:
    """A 640x480 ``.y4m`` of the person's photos (each held ``frames_per_image`` frames)."""
    from facecore.data.images import load_rgb
    from facecore.live.video import face_video_frames, write_y4m

    photos = [load_rgb(p) for p in sorted(person_dir.glob("*.jpg"))]
    write_y4m(path, face_video_frames(photos, frames_per_image=frames_per_image), fps=fps)
    return path


def fake_camera_args(video: Path) -> list[str]:
    """Chromium flags: a fake camera that plays ``video`` (looped), permission prompts accepted."""
    return [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 120.0, what: str = "condition", poll: float = 0.2):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


TABLES = """[...document.querySelectorAll('[data-testid=stTable] table')].map(
    t => [...t.rows].map(r => [...r.cells].map(c => c.innerText.trim())))"""


def seen_names(page) -> list[str]:
    """The names in the Live page's "Recognised so far" table, most often recognised first."""
    for rows in page.evaluate(TABLES):
        if rows and rows[0][:2] == ["name", "model"]:
            return [cells[0] for cells in rows[1:]]
    return []


def shot(page, name: str) -> None:
    """A screenshot of the whole page (Streamlit scrolls inside the app, so grow the viewport)."""
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": max(900, min(int(height) + 40, 4000))})
    page.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size({"width": 1280, "height": 900})


def fc(*args: str, home: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m facecore ARGS`` in workspace ``home``; asserts success unless ``check=False``."""
    full_env = {**os.environ, "FACECORE_HOME": str(home), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "facecore", *args], capture_output=True, text=True, env=full_env, timeout=600
    )
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def press_start(player, tries: int = 3) -> None:
    """Press a streamlit-webrtc player's START until it streams (its STOP shows).

    A press that lands while the page reruns can be lost (the player is drawn again); a user
    presses again, and so does this. Raises when ``tries`` presses did not start it.
    """
    for _ in range(tries):
        player.get_by_role("button", name="START").click()
        try:
            player.get_by_role("button", name="STOP").wait_for(timeout=20_000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError
            continue
    raise AssertionError(f"the camera did not start after {tries} presses of START")


# --- Streamlit pages in the browser -------------------------------------------------------------

#: True while the page is settled: the script is not running, no element waits to be drawn
#: (skeleton) and none is stale (kept from the previous run until this one ends). Remembers when
#: it last saw the page busy in ``window.__facecoreBusyAt``, so a wait can ask for a quiet spell.
SETTLED = """quiet => {
  const app = document.querySelector('[data-testid="stApp"]');
  const busy = !app || app.getAttribute('data-test-script-state') !== 'notRunning'
    || document.querySelector('[data-testid="stSkeleton"], [data-stale="true"]') !== null;
  const now = performance.now();
  if (busy || window.__facecoreBusyAt === undefined) window.__facecoreBusyAt = now;
  return !busy && now - window.__facecoreBusyAt >= quiet;
}"""


def settle(page, quiet_ms: int = 1500, timeout_s: float = 180.0) -> None:
    """Wait until the page's script has finished and stayed idle for ``quiet_ms``.

    One rerun can start another (a component that mounts afresh sends its value, and that
    reruns the script), and a click that lands during a rerun can hit an element that is then
    replaced: wait for this before reading the page or pressing anything on it.
    """
    page.evaluate("() => { window.__facecoreBusyAt = undefined; }")  # the spell starts now
    page.wait_for_function(SETTLED, arg=quiet_ms, polling=50, timeout=timeout_s * 1000)


def key_class(key: str) -> str:
    """The CSS class Streamlit gives the element container of a widget created with ``key``."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())


def webrtc_player(page, key: str):
    """The frame of the ``webrtc_streamer(key=key)`` player on the page (a Playwright FrameLocator).

    Only the player of that key, and not a stale copy: when a rerun moves the player (an element
    above it appears or goes), Streamlit mounts a new one and keeps the old one, faded, until the
    run ends, so two players of the same key can be on the page for a moment.
    """
    try:  # streamlit-webrtc registers its frontend under a key of its own, made from ``key``
        from streamlit_webrtc.component import generate_frontend_component_key
    except ImportError:  # an older streamlit-webrtc: the component has ``key`` itself
        container = f"div.{key_class(key)}"
    else:
        container = f"div.{key_class(generate_frontend_component_key(key))}"
    return page.frame_locator(f"{container}:not([data-stale='true']) iframe")
