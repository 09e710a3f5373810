"""Crashes and concurrent users: a killed import, two imports into one dataset at once, and two
browser sessions training at once (a queue both of them see)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from facecore.data.dataset import import_dataset, load_dataset
from facecore.train import jobs
from tests.helpers import APP, ROOT, make_people_tree, snapshot, wait_for


def cli(*args: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "FACECORE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "facecore", *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_killing_an_import_midway_keeps_the_saved_dataset(trained_home: Path, tmp_path: Path) -> None:
    folder = trained_home / "datasets" / "faces"
    before = snapshot(folder)
    big = make_people_tree(tmp_path / "big", {"George_W_Bush": 40, "Colin_Powell": 40}, unknown=20)
    proc = cli(
        "dataset", "import", str(big), "--name", "faces", "--replace", "--detector", "haar", home=trained_home
    )

    def staged_files() -> int:
        return sum(1 for s in folder.parent.glob(".staging-faces-*") for p in s.rglob("*.jpg"))

    wait_for(lambda: staged_files() >= 5 or proc.poll() is not None, 180, "the import to write faces")
    assert proc.poll() is None, "the import finished before it could be killed:\n" + proc.stdout.read()
    assert load_dataset("faces").classes  # a reader meanwhile (a page load) sees the old dataset...
    assert staged_files() >= 5  # ...and leaves the running import's work alone
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(folder) == before  # the saved dataset, byte for byte
    assert load_dataset("faces").classes == ["Colin_Powell", "Hugo_Chavez", "Tony_Blair", "Unknown"]
    assert list(folder.parent.glob(".staging-faces-*")), "the killed import's leftovers are there"

    more = make_people_tree(tmp_path / "more", {"Gerhard_Schroeder": 5})
    report = import_dataset(more, "faces", mode="append")  # the next writer tidies up first
    assert report.classes["Gerhard_Schroeder"]["stored"] == 5
    assert not list(folder.parent.glob(".staging-faces-*")) and not list(folder.parent.glob(".old-faces-*"))
    after = snapshot(folder)
    assert all(after.get(k) == v for k, v in before.items() if k.endswith(".jpg"))


@pytest.mark.timeout(300)
def test_two_imports_into_one_dataset_at_once_both_land(trained_home: Path, tmp_path: Path) -> None:
    """Each append copies the dataset, adds its faces and swaps the copy in. Without the file lock
    the second swap would drop the first one's faces; with it both people are there."""
    a = make_people_tree(tmp_path / "a", {"George_W_Bush": 12})
    b = make_people_tree(tmp_path / "b", {"Gerhard_Schroeder": 12})
    procs = [
        cli("dataset", "import", str(src), "--name", "faces", "--append", home=trained_home) for src in (a, b)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out
    ds = load_dataset("faces")
    counts = ds.counts()
    assert sum(counts["George_W_Bush"].values()) == 12 and sum(counts["Gerhard_Schroeder"].values()) == 12
    assert {"Colin_Powell", "Hugo_Chavez", "Tony_Blair", "Unknown"} <= set(ds.classes)


def train_tab() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, at.exception
    at.number_input(key="train-custom_cnn-epochs").set_value(1)
    at.number_input(key="train-custom_cnn-batch").set_value(8)
    return at.run()


@pytest.mark.timeout(400)
def test_two_tabs_training_at_once_share_one_queue(trained_home: Path) -> None:
    tab_a, tab_b = train_tab(), train_tab()
    tab_a.button(key="train-custom_cnn-start").click().run()
    tab_b.button(key="train-custom_cnn-start").click().run()
    assert not tab_a.exception and not tab_b.exception
    first, second = sorted(jobs.list_jobs(), key=lambda j: j.created)
    assert jobs.read_job(second.id).status == "queued"
    for tab in (tab_a, tab_b):  # both people see both jobs, and which one waits
        tab.run()
        shown = "\n".join(m.value for m in tab.markdown)
        assert first.id in shown and second.id in shown
        assert any("Queued" in i.value and "one at a time" in i.value for i in tab.info)
    done = [jobs.wait_job(j.id, timeout=300) for j in (first, second)]
    assert [d.status for d in done] == ["done", "done"], [jobs.read_log(j.id) for j in (first, second)]
    assert done[1].started >= done[0].finished - 0.5  # one after the other
    runs = [d.runs[0] for d in done]
    assert runs[0] != runs[1]  # each its own run folder
    for run in runs:
        assert (trained_home / "models" / run / "best.pt").is_file()


def test_recovering_one_dataset_leaves_a_longer_named_ones_work_alone(home: Path) -> None:
    """``faces`` and ``faces-b``: tidying up after ``faces`` must not touch ``faces-b``'s staging
    folder (an import of it may be running) nor restore ``faces-b``'s old copy as ``faces``."""
    from facecore import workspace

    root = workspace.datasets_dir()
    theirs_staging = root / ".staging-faces-b-0123abcd"
    theirs_old = root / ".old-faces-b-89abcdef"
    ours_staging = root / ".staging-faces-fedcba98"
    for folder in (theirs_staging, theirs_old, ours_staging):
        folder.mkdir(parents=True)
        (folder / "dataset.json").write_text("{}")
    workspace.recover(root / "faces")
    assert theirs_staging.is_dir() and theirs_old.is_dir()
    assert not ours_staging.exists() and not (root / "faces").exists()
