"""Shared pytest fixtures: the real offline assets and an isolated FACECORE_HOME."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
LFW = ASSETS / "lfw-deepfunneled"
YUNET = ASSETS / "models" / "face_detection_yunet_2026may.onnx"


@pytest.fixture(scope="session")
def assets() -> Path:
    """The offline real assets (``../shared/assets`` from the repo root).

    Missing assets skip the test on a developer's machine, but fail it in CI (``CI=true``),
    where they are always laid beside the clone.
    """
    if not ASSETS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real test assets not found at {ASSETS}")
        pytest.skip(f"real test assets not found at {ASSETS}")
    return ASSETS


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace: FACECORE_HOME points at a fresh folder; no YuNet unless a test adds it."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("FACECORE_HOME", str(root))
    monkeypatch.delenv("FACECORE_YUNET", raising=False)
    return root


@pytest.fixture
def yunet_home(home: Path, assets: Path) -> Path:
    """A workspace whose detectors/ holds the real YuNet model (as after `detectors download`)."""
    (home / "detectors").mkdir()
    shutil.copy(YUNET, home / "detectors" / YUNET.name)
    return home


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


@pytest.fixture
def people_tree(tmp_path: Path, assets: Path) -> Path:
    """Three real people with 8 images each and an Unknown class of 8 other people."""
    return make_people_tree(
        tmp_path / "src", {"Colin_Powell": 8, "Tony_Blair": 8, "Hugo_Chavez": 8}, unknown=8
    )


@pytest.fixture
def small_dataset(yunet_home: Path, people_tree: Path) -> str:
    """A real imported dataset: 3 people + Unknown, 8 faces each (6 train, 1 val, 1 test)."""
    from facecore.data.dataset import import_dataset

    import_dataset(people_tree, "small")
    return "small"


@pytest.fixture
def noface_dataset(yunet_home: Path, people_tree: Path, assets: Path) -> str:
    """``small`` plus one real photo without a human face (the sky above dogs.jpg) in Colin_Powell."""
    from facecore.data.dataset import import_dataset
    from facecore.data.images import encode_jpeg, load_rgb

    sky = load_rgb(assets / "detection" / "dogs.jpg")[:400]
    (people_tree / "Colin_Powell" / "sky.jpg").write_bytes(encode_jpeg(sky))
    import_dataset(people_tree, "small")
    return "small"


@pytest.fixture
def fake_imagenet_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A seeded ResNet50 state dict at the exact path torchvision's real loader reads offline."""
    import torch
    from torchvision.models import ResNet50_Weights, resnet50

    torch_home = tmp_path / "torch_home"
    target = torch_home / "hub" / "checkpoints" / Path(ResNet50_Weights.IMAGENET1K_V2.url).name
    target.parent.mkdir(parents=True)
    torch.manual_seed(123)
    torch.save(resnet50(weights=None).state_dict(), target)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return target


# --- the app in a real browser ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(home: Path) -> Iterator[str]:
    """`streamlit run streamlit_app.py` on loopback, as the README says, in the test's workspace."""
    port = free_port()
    env = {**os.environ, "FACECORE_HOME": str(home)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("streamlit did not start:\n" + proc.stdout.read1().decode())
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def page(browser_args: list[str]):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", *browser_args],
        )
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


@pytest.fixture
def browser_args() -> list[str]:
    """Extra Chromium flags; override in a test module (e.g. a fake camera video)."""
    return []


# --- a trained workspace, built once per session ----------------------------------------------

TRAINED_PEOPLE = {"Colin_Powell": 8, "Tony_Blair": 8, "Hugo_Chavez": 8}


@pytest.fixture(scope="session")
def trained_template(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace built once: YuNet, the real dataset ``faces`` (3 people + Unknown, 8 faces each)
    and ``tiny-cnn``, a custom_cnn trained 3 epochs on it. Use :func:`trained_home` for a copy."""
    from facecore.data.dataset import import_dataset
    from facecore.data.transforms import AugmentConfig
    from facecore.live.inference import clear_cache
    from facecore.train.config import TrainConfig
    from facecore.train.loop import train

    root = tmp_path_factory.mktemp("trained")
    home = yunet_workspace(root / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACECORE_HOME", str(home))
        mp.delenv("FACECORE_YUNET", raising=False)
        mp.delenv("FACECORE_MODE", raising=False)
        src = make_people_tree(root / "src", TRAINED_PEOPLE, unknown=8)
        import_dataset(src, "faces")
        cfg = TrainConfig.for_model(
            "custom_cnn", "faces", epochs=3, batch_size=8, lr=1e-3, workers=0,
            augment=AugmentConfig.none(), run_name="tiny-cnn",
        )  # fmt: skip
        train(cfg)
        clear_cache()
    return home


@pytest.fixture
def trained_home(trained_template: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """:func:`home` filled with a private copy of :func:`trained_template` (the test may change it)."""
    shutil.copytree(trained_template, home, dirs_exist_ok=True)
    monkeypatch.delenv("FACECORE_MODE", raising=False)
    return home


def wait_for(predicate, timeout: float = 120.0, what: str = "condition", poll: float = 0.2):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def yunet_workspace(home: Path) -> Path:
    """Create ``home`` with the real YuNet model in its ``detectors/`` (as after `detectors download`)."""
    (home / "detectors").mkdir(parents=True, exist_ok=True)
    shutil.copy(YUNET, home / "detectors" / YUNET.name)
    return home


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
