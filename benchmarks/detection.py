"""Benchmark facecore's face detectors on the real labelled photos.

    python benchmarks/detection.py [--assets DIR] [--json]

For Haar (upright only), Haar with the rotation retry, and YuNet: recall and precision at
IoU >= 0.5 over the 43 labelled faces of the 9 PASCAL VOC photos (greedy one-to-one matching
by IoU), false detections on ``dogs.jpg`` (no human face), and the median milliseconds per
640x480 frame. Prints a Markdown table (or JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from facecore.detect.detection import Detector, match_boxes  # noqa: E402
from facecore.detect.haar import HaarDetector  # noqa: E402
from facecore.detect.yunet import YuNetDetector  # noqa: E402

DEFAULT_ASSETS = ROOT.parent / "shared" / "assets"
YUNET_MODEL = Path("models") / "face_detection_yunet_2026may.onnx"
TIMING_PHOTO = "2008_002506.jpg"
TIMING_RUNS = 20

Box = tuple[int, int, int, int]


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def labelled_boxes(detection_dir: Path) -> dict[str, list[Box]]:
    """``{file name: [(x, y, w, h), ...]}`` from dlib imglab's training.xml and testing.xml."""
    out: dict[str, list[Box]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(detection_dir / name).getroot().iter("image"):
            out.setdefault(image.get("file", ""), []).extend(
                (int(b.get("left")), int(b.get("top")), int(b.get("width")), int(b.get("height")))
                for b in image.iter("box")
            )
    return out


def evaluate(
    detector: Detector, detection_dir: Path, faces_frame: np.ndarray, faceless_frame: np.ndarray
) -> dict:
    truth = labelled_boxes(detection_dir)
    hits = n_truth = n_found = 0
    for file, boxes in truth.items():
        found = [d.box for d in detector.detect(load_rgb(detection_dir / file))]
        hits += len(match_boxes(boxes, found))
        n_truth += len(boxes)
        n_found += len(found)
    dogs_image = load_rgb(detection_dir / "dogs.jpg")
    dogs = len(detector.detect(dogs_image))
    dog_photos = sum(len(detector.detect(q)) for q in quadrants(dogs_image))
    return {
        "faces": n_truth,
        "found": hits,
        "detections": n_found,
        "recall": hits / n_truth if n_truth else 0.0,
        "precision": hits / n_found if n_found else 0.0,
        "dogs_false_detections": dogs,
        "dog_quadrants_false_detections": dog_photos,
        "ms_per_640x480": median_ms(detector, faces_frame),
        "ms_per_640x480_no_face": median_ms(detector, faceless_frame),
    }


def quadrants(image: np.ndarray) -> list[np.ndarray]:
    """The four photos of a 2x2 collage (dogs.jpg is one)."""
    h, w = image.shape[:2]
    return [image[y : y + h // 2, x : x + w // 2] for y in (0, h // 2) for x in (0, w // 2)]


def median_ms(detector: Detector, frame: np.ndarray) -> float:
    detector.detect(frame)  # warm-up
    times = []
    for _ in range(TIMING_RUNS):
        start = time.perf_counter()
        detector.detect(frame)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="assets folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args(argv)
    detection_dir = args.assets / "detection"
    if not (detection_dir / "training.xml").is_file():
        parser.error(f"no detection/training.xml under {args.assets}")

    faces_frame = cv2.resize(
        load_rgb(detection_dir / TIMING_PHOTO), (640, 480), interpolation=cv2.INTER_AREA
    )
    # The two upper dog photos of dogs.jpg: the upright Haar pass finds nothing there, so the
    # rotation retry does its extra passes (the cost when a frame shows no face).
    dogs = load_rgb(detection_dir / "dogs.jpg")
    faceless_frame = cv2.resize(
        dogs[: dogs.shape[0] // 2], (640, 480), interpolation=cv2.INTER_AREA
    )
    detectors: dict[str, Detector] = {
        "Haar (upright)": HaarDetector(rotate=False),
        "Haar + rotation retry": HaarDetector(rotate=True),
        "YuNet": YuNetDetector(args.assets / YUNET_MODEL),
    }
    results = {
        name: evaluate(det, detection_dir, faces_frame, faceless_frame)
        for name, det in detectors.items()
    }
    meta = {
        "opencv": cv2.__version__,
        "cv2_threads": cv2.getNumThreads(),
        "timing": f"median of {TIMING_RUNS} runs on 640x480 frames: {TIMING_PHOTO} (3 faces) "
        "resized, and the upper half of dogs.jpg resized (no human face)",
    }

    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return 0
    print(
        f"OpenCV {meta['opencv']}, cv2.getNumThreads() = {meta['cv2_threads']}; "
        f"timing: {meta['timing']}\n"
    )
    print(
        "| detector | recall (IoU>=0.5) | precision | false det. dogs.jpg "
        "| false det. 4 dog photos | ms / 640x480 (faces) | ms / 640x480 (no face) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['recall']:.3f} ({r['found']}/{r['faces']}) "
            f"| {r['precision']:.3f} ({r['found']}/{r['detections']}) "
            f"| {r['dogs_false_detections']} | {r['dog_quadrants_false_detections']} "
            f"| {r['ms_per_640x480']:.1f} | {r['ms_per_640x480_no_face']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
