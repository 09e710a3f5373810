"""``python -m facecore`` bench (training and inference images/s): its options, and the figures
printed as Markdown or JSON. The measuring is :mod:`facecore.evaluate.bench`."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the bench with the parsed options and print it."""
    from facecore.evaluate.bench.report import format_markdown
    from facecore.evaluate.bench.run import run_bench

    result = run_bench(
        models=args.models,
        batch=args.batch,
        images=args.images,
        device=args.device,
        quick=args.quick,
        threads=args.threads,
        source=args.source,
        progress=lambda m: print(f"bench: {m}", file=sys.stderr, flush=True),
        ranks=args.ranks,
    )
    print(json.dumps(result, indent=2) if args.json else format_markdown(result))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser("bench", help="training and inference images/s per model against compute-bound rates")
    p.add_argument("--models", nargs="+", metavar="MODEL", help="default: the three compared models")
    p.add_argument("--batch", type=int, default=32, help="training batch size (default 32)")
    p.add_argument("--images", type=int, help="training faces in the bench dataset (default 96, quick 24)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: every core)")
    p.add_argument("--source", help="people-folder tree for the dataset (default: LFW assets/download)")
    p.add_argument("--quick", action="store_true", help="few steps and images (about a minute)")
    p.add_argument("--json", action="store_true", help="print every figure as JSON")
    p.add_argument("--ranks", type=int, nargs="+", default=[], metavar="N",
                   help="also train with N DDP processes each (e.g. --ranks 1 2), for the scaling table")
    p.set_defaults(func=cmd_bench)
