"""``python -m facecore`` bench (training and inference images/s)."""

from __future__ import annotations

import argparse


def cmd_bench(args: argparse.Namespace) -> int:
    from facecore.evaluate.bench import run_from_args

    return run_from_args(args)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser("bench", help="training and inference images/s per model against compute-bound rates")
    from facecore.evaluate.bench import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_bench)
