"""``python -m facecore`` models list, weights status|download."""

from __future__ import annotations

import argparse

from facecore.cli.common import command, print_json


def cmd_models_list(args: argparse.Namespace) -> int:
    from facecore.models.registry import get_model_spec, list_models

    specs = [get_model_spec(n) for n in list_models()]
    rows = [
        {
            "name": s.name,
            "description": s.description,
            "input_size": s.input_size,
            "mean": list(s.mean),
            "std": list(s.std),
            "pretrained": s.pretrained,
        }
        for s in specs
    ]
    if args.json:
        print_json(rows)
    for r in [] if args.json else rows:
        print(f"{r['name']:<22}{'ImageNet' if r['pretrained'] else 'scratch':<10}{r['description']}")
    return 0


def cmd_weights_status(args: argparse.Namespace) -> int:
    from facecore.models.weights import weights_status

    status = weights_status()
    if args.json:
        print_json(status)
    elif status["available"]:
        print(f"ImageNet weights present: {status['path']}")
    else:
        print(
            f"ImageNet weights missing: expected at {status['path']}\n"
            f"Fetch them with: python -m facecore weights download   (from {status['url']})"
        )
    return 0


def cmd_weights_download(args: argparse.Namespace) -> int:
    from facecore.models.weights import download_weights

    path = download_weights()
    print(f"ImageNet weights saved to {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    models = sub.add_parser("models", help="the model registry")
    msub = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(msub, "list", cmd_models_list, "list the models that can be trained", json=True)

    weights = sub.add_parser("weights", help="ImageNet weights for the pretrained model")
    wsub = weights.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(
        wsub, "status", cmd_weights_status,
        "say whether the weights file is present, and where it goes", json=True,
    )
    command(wsub, "download", cmd_weights_download, "download the ImageNet weights ahead of time")
