"""Shared pytest fixtures: the real offline assets and an isolated FACECORE_HOME.

Plain helpers and constants (paths, data builders, polling) are in :mod:`tests.helpers`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    ASSETS,
    CHROMIUM,
    PERSON,
    ROOT,
    YUNET,
    face_y4m,
    free_port,
    make_people_tree,
    yunet_workspace,
)


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
    """An empty workspace: FACECORE_HOME points at a fresh folder (YuNet is the bundled model)."""
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


@pytest.fixture
def camera_video(tmp_path: Path, people_tree: Path) -> Path:
    """Colin Powell's 8 photos, 8 frames each at 15 frames per second (about 4 s, looped).

    A module that streams it overrides ``browser_args`` with ``fake_camera_args(camera_video)``."""
    return face_y4m(tmp_path / "camera.y4m", people_tree / PERSON, fps=15, frames_per_image=8)


# --- a trained workspace, built once per session ----------------------------------------------

TRAINED_PEOPLE = {"Colin_Powell": 8, "Tony_Blair": 8, "Hugo_Chavez": 8}


@pytest.fixture(scope="session")
def trained_template(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace built once: YuNet, the real dataset ``faces`` (3 people + Unknown, 8 faces each)
    and ``tiny-cnn``, a custom_cnn trained 3 epochs on it. Use :func:`trained_home` for a copy."""
    from facecore.data.dataset import import_dataset
    from facecore.data.transforms import AugmentConfig
    from facecore.recognize.models import clear_cache
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
