"""Fuzzing the importers with hypothesis: generated archives and image bytes.

Every input ends as an imported image or a reported error: never a crash, never an exception that
is not a :class:`~facecore.errors.FacecoreError`, and never a file written outside the dataset.
The example counts are bounded so the run stays short in CI.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from facecore.data.dataset import import_dataset, load_dataset
from facecore.data.images import load_rgb
from facecore.errors import FacecoreError, ImageError
from tests.helpers import LFW

FACES = [p.read_bytes() for p in sorted((LFW / "Colin_Powell").glob("*.jpg"))[:4]]


def _png(mode: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Image-ish bytes: a real face, truncated, with flipped bytes, random, empty, or odd PNGs."""
    kind = draw(st.sampled_from(["face", "truncated", "flipped", "random", "empty", "png", "text"]))
    face = draw(st.sampled_from(FACES))
    if kind == "face":
        return face
    if kind == "truncated":
        return face[: draw(st.integers(0, len(face) - 1))]
    if kind == "flipped":
        data = bytearray(face)
        for pos in draw(st.lists(st.integers(0, len(face) - 1), min_size=1, max_size=20)):
            data[pos] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "random":
        return draw(st.binary(max_size=2048))
    if kind == "png":
        mode = draw(st.sampled_from(["1", "L", "P", "RGB", "RGBA", "I;16", "CMYK"]))
        fmt_mode = "RGB" if mode == "CMYK" else mode  # PNG cannot hold CMYK
        return _png(fmt_mode, (draw(st.integers(1, 40)), draw(st.integers(1, 40))))
    if kind == "text":
        return draw(st.text(max_size=200)).encode()
    return b""


SEGMENT = st.sampled_from(["Alice", "Bob", "Unknown", "Zoë Ünal", "a b", "CON", "..", ".", "", "x:y", "ok"])
NAME = st.one_of(
    st.builds(lambda c, f, ext: f"{c}/{f}{ext}", SEGMENT, st.text("abc123 ._-", min_size=1, max_size=8),
              st.sampled_from([".jpg", ".png", ".JPG"])),
    st.sampled_from(["../escape.jpg", "Alice/../../escape.jpg", "/tmp/facecore-fuzz-abs.jpg",
                     "C:/facecore-fuzz-drive.jpg", "C:\\facecore-fuzz\\x.jpg", "loose.jpg",
                     "Alice/sub/deep.jpg", "Alice/inner.zip"]),
)  # fmt: skip


@st.composite
def archives(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A zip of 1-8 generated entries; returns the bytes and the file entry names."""
    entries = draw(st.lists(st.tuples(NAME, mutated()), min_size=1, max_size=8, unique_by=lambda e: e[0]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            if name.endswith(".zip"):
                inner = io.BytesIO()
                with zipfile.ZipFile(inner, "w") as z2:
                    z2.writestr("Bob/in.jpg", FACES[0])
                data = inner.getvalue()
            zf.writestr(name, data)
    return buf.getvalue(), [name for name, _ in entries]


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
@given(archive=archives())
def test_generated_archives_import_or_report(
    assets: Path, archive: tuple[bytes, list[str]], monkeypatch
) -> None:
    data, names = archive
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        monkeypatch.setenv("FACECORE_HOME", str(home))
        (root / "in.zip").write_bytes(data)
        try:
            report = import_dataset(root / "in.zip", "fuzz", detector="none")
        except FacecoreError as exc:
            assert str(exc)  # a reported error with a message
            report = None
        written = _all_files(root) - {root / "in.zip"}
        dataset = home / "datasets" / "fuzz"
        outside = [p for p in written if dataset not in p.parents and p.suffix != ".lock"]
        assert outside == [], outside
        assert not any(Path(p).exists() for p in ("/tmp/facecore-fuzz-abs.jpg", "C:/facecore-fuzz-drive.jpg"))
        if report is None:
            assert not dataset.exists()
            return
        accounted = {r.source.split("::", 1)[-1] for r in load_dataset("fuzz").rows}
        accounted |= {p["path"] for p in report.problems}
        missing = [n for n in names if not _accounted(n, accounted)]
        assert missing == [], (missing, report.problems)


def _accounted(name: str, seen: set[str]) -> bool:
    """Is entry ``name`` among the rows or problems (as given, normalised, or unwrapped)?"""
    parts = [p for p in name.replace("\\", "/").split("/") if p and p != "."]
    if not parts or parts[-1].startswith("."):
        return True  # hidden files are skipped on purpose
    norm = "/".join(parts)
    return bool({name, norm, "/".join(parts[1:])} & seen)


@settings(max_examples=200, deadline=None, database=None)
@given(data=mutated())
def test_generated_image_bytes_decode_or_report(assets: Path, data: bytes) -> None:
    try:
        image = load_rgb(data)
    except ImageError as exc:
        assert str(exc)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] >= 1 and image.shape[1] >= 1


@pytest.fixture(autouse=True)
def _no_leftovers() -> None:
    yield
    for p in ("/tmp/facecore-fuzz-abs.jpg",):
        Path(p).unlink(missing_ok=True)
    shutil.rmtree("C:", ignore_errors=True)
