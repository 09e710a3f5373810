"""The ``python -m facecore`` command line: one subcommand per thing the dashboard does.

Each handler parses nothing itself: argparse builds the arguments, the handler calls the
library and prints. A :class:`~facecore.errors.FacecoreError` becomes a one-line message and
exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from facecore.cli import bench, data, demo, detect, evaluate, export, gallery, live, models, train
from facecore.errors import FacecoreError


def build_parser(prog: str = "python -m facecore") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="facecore: face datasets, detection, three models compared, training and recognition.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module in (data, detect, models, train, evaluate, live, gallery, export, bench, demo):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m facecore") -> int:
    parser = build_parser(prog)
    args, extra = parser.parse_known_args(argv)
    # argparse gives a list positional (``gallery enroll NAME --person P PHOTO...``) only the words
    # before the first option; the photos after it come back here and are taken as what they are.
    takes_photos = isinstance(getattr(args, "photos", None), list)
    if extra and takes_photos and not any(e.startswith("-") for e in extra):
        args.photos += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command != "demo" and os.environ.get("FACECORE_BUNDLE"):  # unpacked once, at the start
            from facecore.bundle.unpack import ensure_env_bundle

            ensure_env_bundle()
        return args.func(args)
    except FacecoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``facecore`` console script (installed with the package): ``python -m facecore``."""
    raise SystemExit(main(prog="facecore"))
