"""Snapshot every ``python -m facecore ... --json`` output on one fixed workspace, to check that a
refactor leaves the CLI's JSON byte-for-byte unchanged.

    python scripts/cli_json_check.py build /tmp/jsonhome      # once, with the code before
    python scripts/cli_json_check.py snapshot /tmp/jsonhome /tmp/before
    ... change the code ...
    python scripts/cli_json_check.py snapshot /tmp/jsonhome /tmp/after
    diff -r /tmp/before /tmp/after                             # must print nothing

``build`` makes the workspace through the CLI alone (real LFW faces from ``../shared/assets``):
a dataset, a trained ``custom_cnn`` run, a job record, an evaluation and a calibrated gallery.
``snapshot`` runs each command on a private copy of that workspace, so commands that write
(import, augment, evaluate, compare, gallery enroll) start from the same state every time.
Measured latencies are switched off (``--no-latency``); the few fields that are wall-clock
readings by nature (``created``, ``seconds``, ``images_per_s``) are blanked, and the script
prints which ones it blanked so nothing else is hidden.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
LFW = ASSETS / "lfw-deepfunneled"
PHOTO = ASSETS / "detection" / "2008_001322.jpg"
PEOPLE = {"Colin_Powell": 8, "Tony_Blair": 8, "Hugo_Chavez": 8}
#: Keys whose values are wall-clock readings (dates, durations, rates): blanked, and reported.
CLOCK_KEYS = {
    "created", "created_at", "evaluated_at", "finished", "started", "updated", "modified",
    "seconds", "elapsed_s", "duration_s", "images_per_s", "mtime", "age_s", "time_s",
    "enrolled_at", "calibrated_at",
}  # fmt: skip


def fc(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACECORE_HOME": str(home), "PYTHONHASHSEED": "0"}
    env.pop("FACECORE_MODE", None)
    out = subprocess.run(
        [sys.executable, "-m", "facecore", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if check and out.returncode != 0:
        raise SystemExit(f"facecore {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def people_tree(root: Path) -> Path:
    for person, n in PEOPLE.items():
        (root / person).mkdir(parents=True)
        for f in sorted((LFW / person).glob("*.jpg"))[:n]:
            shutil.copy(f, root / person / f.name)
    singles = sorted(p for p in LFW.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) == 1)
    (root / "Unknown").mkdir()
    for p in singles[:8]:
        shutil.copy(next(p.glob("*.jpg")), root / "Unknown")
    return root


def build(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "detectors").mkdir()
    shutil.copy(ASSETS / "models" / "face_detection_yunet_2026may.onnx", home / "detectors")
    src = people_tree(home.parent / (home.name + "-src"))
    fc(home, "dataset", "import", str(src), "--name", "faces")
    fc(home, "train", "--dataset", "faces", "--model", "custom_cnn", "--epochs", "2",
       "--batch-size", "8", "--workers", "0", "--no-augment", "--run-name", "tiny-cnn")  # fmt: skip
    fc(home, "evaluate", "--model", "tiny-cnn", "--no-latency")
    fc(home, "gallery", "create", "g")
    fc(home, "gallery", "enroll", "g", "--dataset", "faces")
    fc(home, "gallery", "calibrate", "g", "--dataset", "faces", "--allow-few")
    print(f"built {home}")


def commands(src: Path, tmp: str) -> dict[str, list[str]]:
    """Every command with ``--json`` whose output depends on the workspace alone."""
    return {
        "dataset-list": ["dataset", "list", "--json"],
        "dataset-info": ["dataset", "info", "faces", "--json"],
        "dataset-import": ["dataset", "import", str(src), "--name", "again", "--json"],
        "dataset-augment": ["dataset", "augment", "faces", "--copies", "1", "--out", "aug", "--json"],
        "dataset-noface": ["dataset", "noface", "faces", "--json"],
        "dataset-rename": ["dataset", "rename", "faces", "Tony_Blair", "Tony", "--json"],
        "detect": ["detect", str(PHOTO), "--detector", "yunet", "--json"],
        "detect-haar": ["detect", str(PHOTO), "--detector", "haar", "--json"],
        "models-list": ["models", "list", "--json"],
        "weights-status": ["weights", "status", "--json"],
        "runs-list": ["runs", "list", "--json"],
        "jobs-list": ["jobs", "list", "--json"],
        "evaluate": ["evaluate", "--model", "tiny-cnn", "--no-latency", "--json"],
        "evaluate-val": ["evaluate", "--model", "tiny-cnn", "--split", "val", "--no-latency", "--json"],
        "compare": ["compare", "tiny-cnn", "--gallery", "g", "--out", f"{tmp}/cmp", "--no-latency", "--json"],
        "predict": ["predict", str(PHOTO), "--model", "tiny-cnn", "--gallery", "g", "--json"],
        "gallery-embedders": ["gallery", "embedders", "--json"],
        "gallery-list": ["gallery", "list", "--json"],
        "gallery-show": ["gallery", "show", "g", "--json"],
        "gallery-evaluate": ["gallery", "evaluate", "g", "--dataset", "faces", "--no-latency", "--json"],
        "gallery-calibrate": ["gallery", "calibrate", "g", "--dataset", "faces", "--allow-few", "--json"],
    }


def blank(value, blanked: set[str], path: str = ""):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in CLOCK_KEYS and v is not None:
                blanked.add(f"{path}.{k}".lstrip("."))
                out[k] = "<clock>"
            else:
                out[k] = blank(v, blanked, f"{path}.{k}")
        return out
    if isinstance(value, list):
        return [blank(v, blanked, f"{path}[]") for v in value]
    return value


def snapshot(home: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    src = home.parent / (home.name + "-src")
    blanked: set[str] = set()
    for name in commands(src, ""):
        with tempfile.TemporaryDirectory() as tmp:
            args = commands(src, tmp)[name]
            work = Path(tmp) / "home"
            shutil.copytree(home, work)
            res = fc(work, *args, check=False)
        text = res.stdout
        mine: set[str] = set()
        try:
            cleaned = blank(json.loads(text), mine)
        except json.JSONDecodeError:
            cleaned = None  # not JSON (an error): kept as printed, with the exit status
        if mine:  # re-serialised only where a clock field was blanked; otherwise the raw bytes
            text = json.dumps(cleaned, indent=1) + "\n"
            blanked |= {f"{name}:{k}" for k in mine}
        text = text.replace(str(work), "$HOME").replace(tmp, "$TMP")
        err = res.stderr[-2000:] if res.returncode else ""
        (out / f"{name}.json").write_text(f"# exit {res.returncode}\n{text}{err}")
        print(f"{name}: exit {res.returncode}, {len(text)} bytes")
    print("blanked (wall-clock fields):", ", ".join(sorted(blanked)) or "none")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "build":
        build(Path(sys.argv[2]).resolve())
    elif len(sys.argv) >= 4 and sys.argv[1] == "snapshot":
        snapshot(Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve())
    else:
        raise SystemExit(__doc__)
