"""Demo bundles on real data: a trained run and a gallery packed, unpacked elsewhere, evaluated alike."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from facecore.errors import BundleError
from tests.helpers import fc, snapshot

#: keys of an evaluation's JSON that name this machine's files or time it, not the result
VOLATILE = {"run_dir", "checkpoint", "dataset_path", "predictions_csv", "metrics_json", "latency_ms",
            "evaluated_at", "seconds", "eval_seconds"}


def figures(stdout: str) -> dict:
    """The evaluation's JSON without the keys that depend on where and when it ran."""
    data = json.loads(stdout)
    return {k: v for k, v in data.items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def demo_template(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained workspace plus gallery ``team`` enrolled from the training faces of ``faces``,
    with the run and the gallery evaluated (as a presenter prepares a demo); built once."""
    from facecore.gallery.enroll import enroll_dataset

    home = tmp_path_factory.mktemp("demo") / "home"
    shutil.copytree(trained_template, home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACECORE_HOME", str(home))
        mp.delenv("FACECORE_MODE", raising=False)
        enroll_dataset("team", "faces")
    fc("evaluate", "--model", "tiny-cnn", home=home)
    fc("gallery", "evaluate", "team", "--dataset", "faces", home=home)
    return home


@pytest.fixture
def demo_home(demo_template: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """:func:`home` filled with a private copy of :func:`demo_template` (file times kept)."""
    shutil.copytree(demo_template, home, dirs_exist_ok=True)
    monkeypatch.delenv("FACECORE_MODE", raising=False)
    monkeypatch.delenv("FACECORE_BUNDLE", raising=False)
    return home


def test_bundle_then_unpack_gives_the_same_evaluations(
    demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_run = figures(fc("evaluate", "--model", "tiny-cnn", "--json", home=demo_home).stdout)
    before_gal = figures(
        fc("gallery", "evaluate", "team", "--dataset", "faces", "--json", home=demo_home).stdout
    )
    bundle = tmp_path / "out" / "demo.zip"
    packed = fc("demo", "bundle", str(bundle), home=demo_home).stdout
    assert "1 dataset(s) faces" in packed and "1 run(s) tiny-cnn" in packed and "team" in packed
    assert " MB," in packed or " KB," in packed

    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("facecore-bundle.json"))
        names = set(zf.namelist())
    assert manifest["facecore_version"] and manifest["created"] and manifest["faces"] == "test"
    chosen = (manifest["datasets"], manifest["runs"], manifest["galleries"])
    assert chosen == (["faces"], ["tiny-cnn"], ["team"])
    assert {f["path"] for f in manifest["files"]} | {"facecore-bundle.json"} == names
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert "models/tiny-cnn/best.pt" in names and "models/tiny-cnn/last.pt" not in names
    assert "models/tiny-cnn/eval_test/metrics.json" in names
    # of the dataset: only the test faces, and a manifest of only their rows
    faces = [n for n in names if n.startswith("datasets/faces/") and n.endswith(".jpg")]
    with zipfile.ZipFile(bundle) as zf:
        rows = zf.read("datasets/faces/manifest.csv").decode().splitlines()[1:]
    assert len(faces) == len(rows) == 4  # 1 test face of each of 3 people and Unknown
    assert all(",test," in r for r in rows)

    other = tmp_path / "elsewhere"
    unpacked = fc("demo", "unpack", str(bundle), home=other).stdout
    assert "written: datasets/faces, galleries/team, models/tiny-cnn" in unpacked
    assert "last.pt" not in {p.name for p in other.rglob("*")}

    # the saved evaluations are still valid there (file times kept): visitors never wait
    monkeypatch.setenv("FACECORE_HOME", str(other))
    from facecore.evaluate.locate import cached_evaluation

    assert cached_evaluation("tiny-cnn") is not None

    after_run = figures(fc("evaluate", "--model", "tiny-cnn", "--json", home=other).stdout)
    after_gal = figures(fc("gallery", "evaluate", "team", "--dataset", "faces", "--json", home=other).stdout)
    assert after_run == before_run
    assert after_gal == before_gal

    # unpacking the same bundle again changes nothing
    again = fc("demo", "unpack", str(bundle), home=other).stdout
    assert "written: nothing; already there: datasets/faces, galleries/team, models/tiny-cnn" in again


def test_env_bundle_unpacks_once_and_runs_read_only(demo_home: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "demo.zip"
    fc("demo", "bundle", str(bundle), "--run", "tiny-cnn", home=demo_home)
    other = tmp_path / "served"
    env = {"FACECORE_BUNDLE": str(bundle), "FACECORE_MODE": ""}
    first = fc("runs", "list", "--json", home=other, env=env)
    assert "unpacked" in first.stderr and [r["run"] for r in json.loads(first.stdout)] == ["tiny-cnn"]
    second = fc("runs", "list", "--json", home=other, env=env)
    assert "already; nothing to do" in second.stderr
    refused = fc("dataset", "delete", "faces", "--yes", home=other, env=env, check=False)
    assert refused.returncode == 2 and "presentation mode" in refused.stderr
    assert (other / "datasets" / "faces" / "dataset.json").is_file()
    missing = fc("runs", "list", home=other, env={"FACECORE_BUNDLE": str(tmp_path / "nope.zip")}, check=False)
    assert missing.returncode == 2 and "nope.zip: no such file" in missing.stderr


def test_unpack_refuses_and_keeps_what_was_there(demo_home: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from facecore.bundle import make_bundle, unpack_bundle

    bundle = tmp_path / "demo.zip"
    make_bundle(bundle, runs=["tiny-cnn"])
    # the workspace it came from holds other data under the same names (last.pt, all faces)
    def data() -> dict[str, str]:  # the workspace's files; lock files come and go
        return {k: v for k, v in snapshot(demo_home).items() if not k.endswith(".lock")}

    before = data()
    with pytest.raises(BundleError, match="already has different data under datasets/faces, models/tiny-cnn"):
        unpack_bundle(bundle)
    assert data() == before

    other = tmp_path / "other"
    monkeypatch.setenv("FACECORE_HOME", str(other))
    # a zip with an entry escaping its folder, and one whose file does not match its sha256
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("../escaped.txt", b"x")
    with pytest.raises(BundleError, match="would be written outside its folder"):
        unpack_bundle(evil)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "models/tiny-cnn/config.json":
                data = data.replace(b"custom_cnn", b"custom_cnm")
            dst.writestr(info, data)
    with pytest.raises(BundleError, match="does not match its sha256"):
        unpack_bundle(tampered)
    notzip = tmp_path / "notzip.zip"
    notzip.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a zip archive"):
        unpack_bundle(notzip)
    assert not (tmp_path / "escaped.txt").exists()
    assert not other.exists() or not [p for p in other.rglob("*") if p.is_file() and ".lock" not in p.name]

    # --force replaces the differing data of the original workspace with the bundle's
    monkeypatch.setenv("FACECORE_HOME", str(demo_home))
    report = unpack_bundle(bundle, force=True)
    assert report.written == ["datasets/faces", "models/tiny-cnn"]
    assert not (demo_home / "models" / "tiny-cnn" / "last.pt").exists()
    # and in presentation mode, unpacking by hand is refused
    monkeypatch.setenv("FACECORE_MODE", "demo")
    from facecore.errors import ReadOnlyModeError

    with pytest.raises(ReadOnlyModeError):
        unpack_bundle(bundle)


def test_a_chosen_gallery_brings_the_dataset_it_was_evaluated_on(demo_home: Path, tmp_path: Path) -> None:
    from facecore.bundle import make_bundle

    report = make_bundle(tmp_path / "g.zip", galleries=["team"])
    assert (report.galleries, report.datasets, report.runs) == (["team"], ["faces"], [])
    assert report.notes == ["dataset 'faces' added: gallery 'team' was evaluated on it"]


def test_bundle_refuses_unknown_names(demo_home: Path, tmp_path: Path) -> None:
    out = fc("demo", "bundle", str(tmp_path / "x.zip"), "--run", "nope", home=demo_home, check=False)
    assert out.returncode == 2 and "No run 'nope'" in out.stderr and "tiny-cnn" in out.stderr
    assert not (tmp_path / "x.zip").exists()


def test_the_app_unpacks_the_bundle_and_presents_it(demo_home: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """FACECORE_BUNDLE where the pages start: unpacked once, then the app is read-only."""
    from streamlit.testing.v1 import AppTest

    from facecore.bundle import pack, unpack
    from facecore.mode import current_mode
    from tests.helpers import APP

    out = tmp_path / "demo.zip"
    pack.make_bundle(out)
    served = tmp_path / "served"
    monkeypatch.setenv("FACECORE_HOME", str(served))
    monkeypatch.setenv("FACECORE_BUNDLE", str(out))
    monkeypatch.setattr(unpack, "_DONE", set())
    assert current_mode() == "demo"  # a bundle is a presentation unless FACECORE_MODE=full
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert any("Presentation mode" in i.value for i in at.info)
    assert (served / "models" / "tiny-cnn" / "best.pt").is_file()
    assert (served / "galleries" / "team" / "gallery.json").is_file()
    assert "tiny-cnn" in " ".join(str(m.value) for m in at.markdown) + " ".join(
        str(df.value) for df in at.dataframe
    )
    monkeypatch.setenv("FACECORE_MODE", "full")
    assert current_mode() == "full"


def test_a_newer_bundle_replaces_the_previous_one_unless_changed_since(
    demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facecore.bundle import pack, unpack

    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    pack.make_bundle(first, runs=["tiny-cnn"])
    pack.make_bundle(second, runs=["tiny-cnn"], all_faces=True)  # the same run, every face
    served = tmp_path / "served"
    monkeypatch.setenv("FACECORE_HOME", str(served))
    for zip_path in (first, second):
        monkeypatch.setattr(unpack, "_DONE", set())  # a new process
        monkeypatch.setenv("FACECORE_BUNDLE", str(zip_path))
        report = unpack.ensure_env_bundle()
        assert report is not None and "datasets/faces" in report.written
    assert len(list((served / "datasets" / "faces").glob("*/*.jpg"))) == 32  # every face now
    # data changed by hand since is not replaced by a newer bundle without --force
    (served / "models" / "tiny-cnn" / "config.json").write_text("{}")
    monkeypatch.setattr(unpack, "_DONE", set())
    monkeypatch.setenv("FACECORE_BUNDLE", str(first))
    with pytest.raises(BundleError, match="different data under models/tiny-cnn"):
        unpack.ensure_env_bundle()
    assert (served / "models" / "tiny-cnn" / "config.json").read_text() == "{}"
