"""Face detection, cropping and downloads, on the real offline assets (no mocks of OpenCV)."""

from __future__ import annotations

import hashlib
import http.server
import math
import os
import shutil
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecore.detect.crop import centre_crop, crop_face
from facecore.detect.detection import Detection, Detector, iou, match_boxes
from facecore.detect.detectors import NoneDetector, create_detector, list_detectors
from facecore.detect.haar import HaarDetector
from facecore.detect.yunet import YUNET_URL, YuNetDetector, download_yunet, find_yunet_model
from facecore.download import download_file
from facecore.errors import DetectorError, DownloadError

YUNET_NAME = "face_detection_yunet_2026may.onnx"


# --------------------------------------------------------------------------------------------
# Helpers and fixtures


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def labelled_boxes(detection_dir: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(detection_dir / name).getroot().iter("image"):
            boxes.setdefault(image.get("file"), []).extend(
                (int(b.get("left")), int(b.get("top")), int(b.get("width")), int(b.get("height")))
                for b in image.iter("box")
            )
    return boxes


def matched(truth: list, found: list[Detection], threshold: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by IoU: (truth index, detection index) pairs."""
    return match_boxes(truth, [d.box for d in found], threshold)


def recall_on_voc(detector: Detector, detection_dir: Path) -> tuple[int, int, list[Detection]]:
    hits, total, true_positives = 0, 0, []
    for file, truth in labelled_boxes(detection_dir).items():
        found = detector.detect(load_rgb(detection_dir / file))
        pairs = matched(truth, found)
        hits += len(pairs)
        total += len(truth)
        true_positives.extend(found[j] for _, j in pairs)
    return hits, total, true_positives


def rotate_on_canvas(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate counter-clockwise about the centre onto a canvas big enough; also the matrix."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    rad = math.radians(angle)
    new_w = int(math.ceil(abs(w * math.cos(rad)) + abs(h * math.sin(rad))))
    new_h = int(math.ceil(abs(w * math.sin(rad)) + abs(h * math.cos(rad))))
    m[0, 2] += new_w / 2.0 - w / 2.0
    m[1, 2] += new_h / 2.0 - h / 2.0
    return cv2.warpAffine(image, m, (new_w, new_h), flags=cv2.INTER_LINEAR), m


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64).ravel()
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64).ravel()
    return float(np.corrcoef(ga, gb)[0, 1])


@pytest.fixture(scope="module")
def detection_dir(assets: Path) -> Path:
    return assets / "detection"


@pytest.fixture(scope="module")
def yunet_path(assets: Path) -> Path:
    return assets / "models" / YUNET_NAME


@pytest.fixture(scope="module")
def yunet(yunet_path: Path) -> YuNetDetector:
    return YuNetDetector(yunet_path)


@pytest.fixture(scope="module")
def lfw_bush(assets: Path) -> np.ndarray:
    return load_rgb(assets / "lfw-deepfunneled" / "George_W_Bush" / "George_W_Bush_0001.jpg")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A loopback-only HTTP server over a temp folder: (base URL, folder)."""
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Detection quality on the 43 labelled VOC faces


def test_yunet_finds_labelled_faces_with_landmarks(yunet: YuNetDetector, detection_dir: Path) -> None:
    hits, total, true_positives = recall_on_voc(yunet, detection_dir)
    assert total == 43
    assert hits >= 40, f"YuNet found {hits}/43"
    for det in true_positives:
        assert det.landmarks is not None and len(det.landmarks) == 5
        x, y, w, h = det.box
        for px, py in det.landmarks:
            assert x <= px <= x + w and y <= py <= y + h, det
        assert 0.0 < det.score <= 1.0
        assert det.angle == 0.0


def test_haar_with_rotation_finds_labelled_faces(detection_dir: Path) -> None:
    hits, total, true_positives = recall_on_voc(HaarDetector(rotate=True), detection_dir)
    assert total == 43
    assert hits >= 34, f"Haar found {hits}/43"
    assert all(d.landmarks is None for d in true_positives)


def test_detections_are_sorted_best_first(yunet: YuNetDetector, detection_dir: Path) -> None:
    found = yunet.detect(load_rgb(detection_dir / "2007_007763.jpg"))
    keys = [d.area * d.score for d in found]
    assert len(found) >= 5 and keys == sorted(keys, reverse=True)


def test_yunet_finds_no_face_on_dogs_at_full_resolution(yunet_path: Path, detection_dir: Path) -> None:
    dogs = load_rgb(detection_dir / "dogs.jpg")  # 900x916
    assert YuNetDetector(yunet_path, max_side=1024).detect(dogs) == []


def test_yunet_downscales_large_images_and_maps_back(yunet_path: Path, detection_dir: Path) -> None:
    image = load_rgb(detection_dir / "bald_guys.jpg")  # 1986x1545: detected at 640 px
    small = YuNetDetector(yunet_path, max_side=640).detect(image)
    full = YuNetDetector(yunet_path, max_side=4000).detect(image)
    assert len(small) >= 20
    # Boxes come back in original pixels: each matches a full-resolution box.
    assert len(matched([d.box for d in full], small)) >= len(small) - 2


# --------------------------------------------------------------------------------------------
# Rotation retry


def test_haar_rotation_retry_finds_tilted_face(lfw_bush: np.ndarray) -> None:
    upright = HaarDetector(rotate=False).detect(lfw_bush)
    assert len(upright) == 1
    face = upright[0]
    tilted, m = rotate_on_canvas(lfw_bush, 40.0)
    true_centre = m @ np.array([*face.centre, 1.0])

    assert HaarDetector(rotate=False).detect(tilted) == []
    found = HaarDetector(rotate=True).detect(tilted)
    assert len(found) == 1
    det = found[0]
    # Image turned 40 deg counter-clockwise: turning it clockwise (negative) makes it upright.
    assert det.angle in (-15.0, -30.0, -45.0)
    assert np.hypot(*(np.array(det.centre) - true_centre)) < 15.0

    reference = crop_face(lfw_bush, face, size=128)
    straightened = crop_face(tilted, det, size=128)
    unrotated = crop_face(tilted, replace(det, angle=0.0), size=128)
    assert correlation(straightened, reference) > correlation(unrotated, reference) + 0.1


def test_haar_rotation_is_not_tried_when_upright_face_found(lfw_bush: np.ndarray) -> None:
    found = HaarDetector(rotate=True).detect(lfw_bush)
    assert len(found) == 1 and found[0].angle == 0.0


# --------------------------------------------------------------------------------------------
# Cropping


def test_crop_face_shape_and_dtype(yunet: YuNetDetector, detection_dir: Path) -> None:
    image = load_rgb(detection_dir / "2008_002506.jpg")
    det = yunet.detect(image)[0]
    crop = crop_face(image, det)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    assert crop_face(image, det, size=112, margin=0.0).shape == (112, 112, 3)


def test_crop_face_off_the_edge_replicates_edge(detection_dir: Path) -> None:
    image = load_rgb(detection_dir / "2008_002506.jpg")
    # Box centred at x=-50: the crop spans x in [-125, 25); image x=0 lands at crop x ~213.
    crop = crop_face(image, Detection((-100, 50, 100, 100), 1.0), margin=0.25, size=256)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    outside = crop[:, :200].astype(np.int16)
    assert np.abs(outside - outside[:, :1]).max() <= 1  # each row repeats the edge pixel
    assert crop.std() > 5


def test_crop_face_of_whole_image_is_identity(lfw_bush: np.ndarray) -> None:
    (det,) = NoneDetector().detect(lfw_bush)
    assert det.box == (0, 0, 250, 250) and det.score == 1.0
    assert np.array_equal(crop_face(lfw_bush, det, margin=0.0, size=250), lfw_bush)
    crop = crop_face(lfw_bush, det)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8


@pytest.mark.parametrize("angle", [0.0, 20.0])
def test_crop_face_strong_shrink_does_not_alias(angle: float) -> None:
    # A 1-pixel checkerboard shrunk ~10x must come out flat grey, not as aliasing patterns
    # (plain bilinear sampling of it gives a standard deviation of about 40).
    yy, xx = np.mgrid[0:1000, 0:1200]
    board = np.dstack([((xx + yy) % 2 * 255).astype(np.uint8)] * 3)
    crop = crop_face(board, Detection((100, 100, 800, 800), 1.0, angle=angle), margin=0.1, size=100)
    assert crop.shape == (100, 100, 3)
    assert abs(crop.mean() - 127.5) < 2 and crop.std() < 3


def test_crop_face_strong_shrink_keeps_geometry(detection_dir: Path) -> None:
    image = load_rgb(detection_dir / "bald_guys.jpg")
    crop = crop_face(image, Detection((200, 100, 1200, 1200), 1.0), margin=0.0, size=128)
    expected = cv2.resize(image[100:1300, 200:1400], (128, 128), interpolation=cv2.INTER_AREA)
    gray = [cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64) for a in (crop, expected)]
    (dx, dy), _ = cv2.phaseCorrelate(gray[1], gray[0])
    assert abs(dx) < 0.25 and abs(dy) < 0.25
    assert correlation(crop, expected) > 0.97


def test_centre_crop_and_input_checks(detection_dir: Path) -> None:
    image = load_rgb(detection_dir / "dogs.jpg")
    out = centre_crop(image, size=256)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    with pytest.raises(ValueError, match="RGB uint8"):
        crop_face(image.astype(np.float32), Detection((0, 0, 10, 10), 1.0))
    with pytest.raises(ValueError, match="RGB uint8"):
        NoneDetector().detect(image[:, :, 0])


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_detection_to_dict() -> None:
    det = Detection((1, 2, 3, 4), 0.5, ((1.0, 2.0),) * 5, angle=-15.0)
    assert det.area == 12
    assert det.to_dict() == {
        "box": [1, 2, 3, 4],
        "score": 0.5,
        "landmarks": [[1.0, 2.0]] * 5,
        "angle": -15.0,
    }


# --------------------------------------------------------------------------------------------
# Choosing detectors


def test_list_detectors() -> None:
    assert list_detectors() == ["auto", "haar", "yunet", "none"]


def test_auto_picks_yunet_from_env(home: Path, yunet_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACECORE_YUNET", str(yunet_path))
    detector = create_detector("auto")
    assert isinstance(detector, YuNetDetector) and detector.name == "yunet"
    assert isinstance(detector, Detector)


def test_auto_is_the_bundled_yunet_on_a_fresh_workspace_and_haar_when_asked(home: Path) -> None:
    from facecore.pretrained import BUNDLED, pretrained_dir

    assert not (home / "detectors").exists()
    assert find_yunet_model() == pretrained_dir() / BUNDLED["yunet"].filename
    assert isinstance(create_detector("auto"), YuNetDetector)
    detector = create_detector("haar")
    assert isinstance(detector, HaarDetector) and detector.rotate
    assert not create_detector("haar", rotate=False).rotate


def test_auto_finds_newest_model_in_detectors_dir(home: Path, yunet_path: Path) -> None:
    folder = home / "detectors"
    folder.mkdir()
    old = shutil.copy(yunet_path, folder / "face_detection_yunet_2023mar.onnx")
    new = shutil.copy(yunet_path, folder / "face_detection_yunet_2026may.onnx")
    now = time.time()
    os.utime(old, (now, now))
    os.utime(new, (now - 100, now - 100))
    assert find_yunet_model() == Path(old)
    assert find_yunet_model(yunet_path) == yunet_path
    assert create_detector("yunet").name == "yunet"


def test_a_missing_bundled_yunet_is_an_error_not_a_switch_to_haar(
    home: Path, tmp_path: Path, monkeypatch
) -> None:
    from facecore.errors import ModelFileError

    monkeypatch.setenv("FACECORE_PRETRAINED", str(tmp_path / "nothing"))
    for name in ("auto", "yunet"):
        with pytest.raises(ModelFileError, match="face_detection_yunet_2026may.onnx is missing; restore it"):
            create_detector(name)


def test_an_explicit_yunet_path_that_is_missing_says_how_to_get_it(home: Path) -> None:
    with pytest.raises(DetectorError, match="detectors download") as info:
        create_detector("yunet", yunet_model=home / "nope.onnx")
    assert str(home / "detectors") in str(info.value)


def test_unknown_detector_name(home: Path) -> None:
    with pytest.raises(DetectorError, match="auto, haar, yunet, none"):
        create_detector("mtcnn")
    assert create_detector(" None ").name == "none"


def test_broken_model_files_raise_detector_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(DetectorError, match="nope.onnx"):
        YuNetDetector(missing)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model" * 100)
    with pytest.raises(DetectorError, match="junk.onnx"):
        YuNetDetector(junk)
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(DetectorError, match="empty.xml"):
        HaarDetector(cascade_path=empty)


# --------------------------------------------------------------------------------------------
# Downloads (loopback HTTP server only)


def test_download_file(served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    payload = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    (root / "blob.bin").write_bytes(payload)
    calls: list[tuple[int, int]] = []
    dest = tmp_path / "out" / "blob.bin"
    sha = hashlib.sha256(payload).hexdigest()
    got = download_file(
        f"{base}/blob.bin", dest, progress=lambda d, t: calls.append((d, t)), expected_sha256=sha
    )
    assert got == dest and dest.read_bytes() == payload
    assert len(calls) > 2 and calls[-1] == (len(payload), len(payload))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert os.listdir(dest.parent) == ["blob.bin"]


def test_download_failures_leave_nothing(served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    (root / "blob.bin").write_bytes(b"x" * 1000)
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match="404"):
        download_file(f"{base}/missing.bin", out / "missing.bin")
    with pytest.raises(DownloadError, match="checksum"):
        download_file(f"{base}/blob.bin", out / "blob.bin", expected_sha256="0" * 64)
    assert os.listdir(out) == []


def test_download_offline_raises(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="Could not download"):
        download_file(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", timeout=5)
    with pytest.raises(DownloadError, match="put it at"):
        download_yunet(tmp_path, url=f"http://127.0.0.1:{port}/face_detection_yunet_2023mar.onnx")
    assert os.listdir(tmp_path) == []


def test_download_yunet_from_loopback(
    served: tuple[str, Path], tmp_path: Path, yunet_path: Path, assets: Path
) -> None:
    base, root = served
    shutil.copy(yunet_path, root / "face_detection_yunet_2023mar.onnx")
    (root / "face_detection_yunet_bad.onnx").write_bytes(b"\x08\x01" * 5000)
    dest_dir = tmp_path / "detectors"
    with pytest.raises(DownloadError, match="not a usable model"):
        download_yunet(dest_dir, url=f"{base}/face_detection_yunet_bad.onnx")
    assert not dest_dir.exists() or os.listdir(dest_dir) == []

    sizes: list[int] = []
    path = download_yunet(
        dest_dir,
        url=f"{base}/face_detection_yunet_2023mar.onnx",
        progress=lambda d, t: sizes.append(t),
    )
    assert path == dest_dir / "face_detection_yunet_2023mar.onnx"
    assert path.read_bytes() == yunet_path.read_bytes()
    assert os.listdir(dest_dir) == [path.name]
    assert sizes[-1] == yunet_path.stat().st_size
    faces = YuNetDetector(path).detect(load_rgb(assets / "detection" / "Tom_Cruise_avp_2014_4.jpg"))
    assert len(faces) == 1


def test_yunet_url_is_opencv_zoo() -> None:
    assert YUNET_URL.startswith("https://github.com/opencv/opencv_zoo/")
    assert YUNET_URL.endswith("/face_detection_yunet_2023mar.onnx")
