"""The wheel: built from the checkout, installed into a fresh venv, used from another folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from facecore.pretrained import BUNDLED
from tests.api.test_api import check_readme_output, readme_example, readme_folder
from tests.helpers import LFW, ROOT

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel`` builds from a copy of the checkout (no build isolation: offline)."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns(".git", ".venv", "test-artifacts", "__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT, src / "facecore-src", ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), "."]
    run(cmd, src / "facecore-src", dict(os.environ))
    (whl,) = dist.glob("facecore-*.whl")
    return whl


def test_the_wheel_holds_every_subpackage_and_the_model_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "facecore").rglob("__init__.py")}
    assert len(packages) >= 9
    for package in packages:
        assert f"{package}/__init__.py" in names, package
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "facecore").rglob("*.py")}
    assert modules <= names
    for spec in BUNDLED.values():
        assert f"facecore/model_files/{spec.filename}" in names
        assert f"facecore/model_files/{spec.licence_file}" in names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(meta).decode()
    requirements = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    for req in requirements:
        name = req.split("=")[0].split("<")[0].split(">")[0]
        assert f"Requires-Dist: {name}" in metadata, req
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "facecore = facecore.cli.main:run" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_wheel_works_from_another_folder(wheel: Path, tmp_path: Path, trained_home: Path) -> None:
    venv = tmp_path / "fresh"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ))
    bin_dir = venv / "bin"
    py = str(bin_dir / "python")
    # the dependencies come from the test venv's site-packages (offline), facecore from the wheel
    fresh_site = run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, {}
    ).stdout
    Path(fresh_site.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FACECORE_PRETRAINED", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp_path, env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env["FACECORE_HOME"] = str(elsewhere)
    help_text = run(["facecore", "--help"], elsewhere, env).stdout
    assert help_text.startswith("usage: facecore") and "gallery" in help_text
    where = run(
        [py, "-c", "import facecore; print(facecore.__file__); print(facecore.list_models())"], elsewhere, env
    )
    file, models = where.stdout.splitlines()
    assert Path(file).is_relative_to(venv) and "custom_cnn" in models

    photos = [str(p) for p in sorted((LFW / "Colin_Powell").glob("*.jpg"))[:4]]
    run(["facecore", "gallery", "create", "g"], elsewhere, env)
    enrolled = run(
        ["facecore", "gallery", "enroll", "g", "--person", "Colin_Powell", *photos], elsewhere, env
    )
    assert "Colin_Powell +4" in enrolled.stdout
    held_out = str(sorted((LFW / "Colin_Powell").glob("*.jpg"))[8])
    predicted = run(["facecore", "predict", held_out, "--gallery", "g", "--json"], elsewhere, env).stdout
    assert '"label": "Colin_Powell"' in predicted
    # the bundled models were read (and sha256-checked) from the installed package
    shown = run(["facecore", "detect", held_out], elsewhere, env).stdout
    assert str(venv) in shown and "face_detection_yunet" in shown

    # the README's Python example, as written, against the installed package
    work = readme_folder(tmp_path / "work", trained_home)
    (work / "example.py").write_text(readme_example())
    env["FACECORE_HOME"] = str(trained_home)
    check_readme_output(run([py, "example.py"], work, env).stdout)
