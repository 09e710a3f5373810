"""``python -m facecore`` export: a run as ONNX (checked against PyTorch), a gallery as portable npz."""

from __future__ import annotations

import argparse

from facecore.cli.common import command, print_json
from facecore.errors import ExportError
from facecore.recognize.refs import RecognizerRef


def cmd_export(args: argparse.Namespace) -> int:
    target = RecognizerRef.parse(args.target)
    if target.is_gallery:
        if args.format not in (None, "npz") or args.int8:
            raise ExportError("A gallery exports as --format npz (embeddings and names); --int8 is for runs.")
        from facecore.gallery.export import export_gallery

        meta = export_gallery(target.name, out=args.out)
        if args.json:
            print_json(meta)
            return 0
        people = meta["people"]
        print(f"gallery {meta['gallery']}: {meta['faces']} faces of {len(people)} people, {meta['embedder']} "
              f"embeddings ({meta['dim']}-d), threshold {meta['threshold']:.3f}"
              f"{'' if meta['calibrated'] else ' (not calibrated)'}")
        print(f"wrote {meta['npz_path']}\nwrote {meta['json_path']}")
        return 0
    if args.format not in (None, "onnx"):
        raise ExportError("A run exports as --format onnx; npz is for galleries (export gallery:NAME).")
    from facecore.live.export import export_run

    meta = export_run(args.target, out=args.out, int8=args.int8)
    if args.json:
        print_json(meta)
        return 0
    check = meta["check"]
    kind = "int8 (dynamic quantization)" if meta["int8"] else "float32"
    top1 = (
        "top-1 equal on all" if check["top1_equal"]
        else f"top-1 agreement {check['top1_agreement']:.1%} ({check['top1_disagreements']} differ)"
    )
    print(f"{meta['source_run']} -> ONNX {kind}, opset {meta['opset']}, {meta['bytes'] / 2**20:.1f} MB")
    print(f"checked on {check['crops']} faces ({check['source']}) against PyTorch: "
          f"max abs logit difference {check['max_abs_logit_diff']:.3g}, {top1}")
    print(f"wrote {meta['onnx_path']}\nwrote {meta['json_path']}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = command(
        sub, "export", cmd_export,
        "write a run as ONNX (checked against PyTorch) or a gallery as a portable npz", json=True,
    )
    p.add_argument("target", metavar="RUN_OR_GALLERY",
                   help="a run name, folder or .pt file, or gallery:NAME")
    p.add_argument("--format", choices=["onnx", "npz"],
                   help="onnx for a run, npz for a gallery (the default for each)")
    p.add_argument("--int8", action="store_true",
                   help="a run: dynamic int8 quantization of the ONNX model (onnxruntime)")
    p.add_argument("--out", metavar="PATH",
                   help="a .onnx/.npz file or a folder (default: RUN/export/ or the gallery's export/)")
