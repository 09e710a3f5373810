"""``python -m facecore demo``: pack a workspace into a demo bundle, and unpack one."""

from __future__ import annotations

import argparse
import sys

from facecore.cli.common import command, print_json


def cmd_bundle(args: argparse.Namespace) -> int:
    from facecore.bundle.pack import make_bundle

    report = make_bundle(
        args.out, datasets=args.dataset, runs=args.run, galleries=args.gallery, all_faces=args.all_faces
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.summary("packed"))
    return 0


def cmd_unpack(args: argparse.Namespace) -> int:
    from facecore import workspace
    from facecore.bundle.unpack import unpack_bundle

    report = unpack_bundle(args.bundle, force=args.force)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"{report.summary('unpacked')}\ninto {workspace.home()}")
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="demo bundles: pack a workspace for a hosted demo, unpack one")
    dsub = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")

    p = command(dsub, "bundle", cmd_bundle, "pack datasets (test faces), runs and galleries into a zip",
                json=True)
    p.add_argument("out", help="the bundle to write (a .zip)")
    p.add_argument("--dataset", action="append", help="a dataset to pack (repeat); default: all")
    p.add_argument("--run", action="append", help="a finished run to pack (repeat); its dataset comes too")
    p.add_argument("--gallery", action="append", help="a gallery to pack (repeat)")
    p.add_argument("--all-faces", action="store_true",
                   help="every split's faces, not only the test faces (closest training images, int8)")

    p = command(dsub, "unpack", cmd_unpack, "restore a bundle into FACECORE_HOME", json=True)
    p.add_argument("bundle", help="a zip made by `demo bundle`")
    p.add_argument("--force", action="store_true", help="replace datasets, runs or galleries that differ")
