"""``python -m facecore detect IMAGE`` (the faces in one image) and ``detectors download`` (the
YuNet model)."""

from __future__ import annotations

import argparse

from facecore.cli.common import command, print_json, progress


def cmd_detect(args: argparse.Namespace) -> int:
    from facecore.data.images import load_rgb
    from facecore.detect.detectors import create_detector

    det = create_detector(args.detector)
    faces = det.detect(load_rgb(args.image))
    if args.json:
        print_json({"detector": det.name, "faces": [f.to_dict() for f in faces]})
    else:
        model = getattr(det, "model_path", None)
        print(f"{len(faces)} face(s) found by {det.name}" + (f" ({model})" if model else ""))
        for f in faces:
            print(
                f"  box x={f.box[0]} y={f.box[1]} w={f.box[2]} h={f.box[3]} "
                f"score={f.score:.3f} angle={f.angle:g}"
            )
    return 0


def cmd_detectors_download(args: argparse.Namespace) -> int:
    from facecore.detect.yunet import YUNET_URL, download_yunet

    path = download_yunet(url=args.url or YUNET_URL, progress=lambda d, t: progress("YuNet")(d, t, ""))
    print(f"YuNet saved to {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``detect`` and ``detectors download`` to the top-level parser."""
    p = command(sub, "detect", cmd_detect, "detect faces in one image", json=True)
    p.add_argument("image")
    p.add_argument("--detector", default="auto", choices=["auto", "haar", "yunet", "none"])

    dets = sub.add_parser("detectors", help="detector model files")
    dsub = dets.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command(
        dsub, "download", cmd_detectors_download,
        "download the YuNet model from OpenCV Zoo into FACECORE_HOME/detectors",
    )
    p.add_argument("--url", help="download from this URL instead")
