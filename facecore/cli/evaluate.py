"""``python -m facecore`` evaluate, compare, predict."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facecore.cli.common import command, print_json, recognizers
from facecore.errors import ConfigError


def cmd_evaluate(args: argparse.Namespace) -> int:
    from facecore.evaluate.evaluation import evaluate_run

    r = evaluate_run(
        args.model,
        split=args.split,
        target_far=args.target_far,
        save_threshold=args.save_threshold,
        latency=not args.no_latency,
        device=args.device,
    )
    if args.json:
        print_json(r.to_dict())
        return 0
    print(f"{r.run} ({r.model}, epoch {r.epoch}) on {r.dataset}/{r.split}: ", end="")
    print(f"{r.n_images} images")
    print(f"accuracy {r.accuracy:.4f}  macro F1 {r.macro_f1:.4f}  weighted F1 {r.weighted_f1:.4f}")
    print(f"{'class':<28}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}")
    for cls, m in r.per_class.items():
        print(f"{cls[:27]:<28}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9}")
    op = r.open_set
    at, sug = op.at_model_threshold, op.suggested
    far = "n/a" if at["false_accept_rate"] is None else f"{at['false_accept_rate']:.3f}"
    known = "n/a" if at["known_accuracy"] is None else f"{at['known_accuracy']:.3f}"
    print(f"model threshold {op.threshold_in_model:.2f}: false-accept rate {far}, known accuracy {known}")
    print(
        f"threshold for FAR <= {op.target_far:g} on {r.split}: {sug['threshold']:.2f}"
        + (f" ({sug['reason']})" if sug.get("reason") else "")
    )
    if r.threshold_saved:
        saved = r.threshold_saved
        print(f"saved threshold {saved['threshold']:.2f} into {', '.join(saved['files'])}")
    if r.latency_ms:
        lat = r.latency_ms
        print(
            f"latency on {r.device}: {lat['batch1']:.2f} ms/image (batch 1), "
            f"{lat['batch32']:.2f} ms/image (batch 32)"
        )
    for w in r.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"predictions: {r.predictions_csv}\nmetrics: {r.metrics_json}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from facecore.cli.common import say_uncalibrated
    from facecore.evaluate.compare import compare_runs

    say_uncalibrated(args.gallery)
    result = compare_runs(
        args.runs, out=Path(args.out), split=args.split, device=args.device, latency=not args.no_latency,
        galleries=args.gallery,
    )
    if args.json:
        print_json(result)
        return 0
    print(f"{'run':<32}{'model':<22}{'accuracy':>9}{'macro F1':>9}{'FAR@thr':>9}")
    for row in result["runs"]:
        far = "n/a" if row["far_at_threshold"] is None else f"{row['far_at_threshold']:.3f}"
        print(
            f"{row['label'][:31]:<32}{row['model']:<22}{row['accuracy']:>9.4f}{row['macro_f1']:>9.4f}{far:>9}"
        )
    if len(result["runs"]) > 1:
        print(f"{len(result['disagreements'])} images where the models disagree")
    for key in ("report_md", "report_html", "comparison_json"):
        print(result["files"][key])
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from facecore.data.images import load_rgb
    from facecore.live.inference import Predictor

    if args.nearest < 0:
        raise ConfigError(f"--nearest must be 0 or more, got {args.nearest}.")
    predictor = Predictor(
        recognizers(args),
        detector=args.detector,
        threshold=args.threshold,
        max_faces=args.max_faces,
        device=args.device,
    )
    faces = predictor.predict(load_rgb(args.image), nearest=args.nearest)
    if args.json:
        models = [
            {"run": m.run, "model": m.model_name, "threshold": predictor.threshold_for(m)}
            for m in predictor.models
        ]
        print_json(
            {
                "image": str(args.image),
                "detector": predictor.detector.name,
                "models": models,
                "faces": [f.to_dict() for f in faces],
            }
        )
        return 0
    print(f"{len(faces)} face(s) found by {predictor.detector.name}")
    for i, face in enumerate(faces, 1):
        x, y, w, h = face.box
        print(f"face {i}: box x={x} y={y} w={w} h={h} score={face.score:.3f}")
        for p in face.predictions:
            shown = p.label if p.label == p.raw_label else f"{p.label} (top: {p.raw_label})"
            top3 = ", ".join(f"{c} {q:.2f}" for c, q in p.top3)
            print(f"  {p.run}: {shown}  conf {p.confidence:.3f} (threshold {p.threshold:.2f})  top3: {top3}")
        for n in face.nearest or []:
            if n.get("error"):
                print(f"  nearest in {n['run']}: unavailable ({n['error']})")
            for im in n["images"]:
                print(f"  nearest in {n['run']}: {im['class']} {im['similarity']:.3f} {im['file']}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    splits = ["train", "val", "test"]
    p = command(
        sub, "evaluate", cmd_evaluate, "evaluate a run on a split: metrics, predictions, latency, open set"
    )
    p.add_argument("--model", required=True, help="run name (under FACECORE_HOME/models), folder or .pt file")
    p.add_argument("--split", default="test", choices=splits, help="split to evaluate (default test)")
    p.add_argument(
        "--target-far", type=float, help="FAR the suggested threshold aims at (default: the run's)"
    )
    p.add_argument(
        "--save-threshold",
        action="store_true",
        help="write the suggested threshold into best.pt and last.pt (training already calibrated one on "
        "the validation split; choosing it on test makes test results optimistic)",
    )
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    p.add_argument("--json", action="store_true", help="print the whole evaluation as JSON")

    p = command(
        sub, "compare", cmd_compare, "compare 1-6 runs of one dataset: report.md, .html, comparison.json"
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run names, run folders or .pt files")
    p.add_argument("--out", required=True, help="folder to write the reports into")
    p.add_argument("--gallery", action="append", default=[], metavar="NAME",
                   help="a gallery to compare beside the runs, on their dataset and split; repeatable")
    p.add_argument("--split", default="test", choices=splits, help="split to compare on (default test)")
    p.add_argument("--no-latency", action="store_true", help="skip latency (ms/image columns show n/a)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    p.add_argument("--json", action="store_true", help="print comparison.json to stdout")

    p = command(
        sub, "predict", cmd_predict,
        "recognise the faces in one image with trained runs and galleries", json=True,
    )
    p.add_argument("image")
    p.add_argument("--gallery", action="append", default=[], metavar="NAME",
                   help="a gallery to recognise with (beside or instead of runs); repeatable")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="RUN",
        help="run name, run folder or .pt checkpoint; repeat to compare runs",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="unknown threshold for every run (default: each run's calibrated threshold)",
    )
    p.add_argument("--nearest", type=int, default=0, metavar="K", help="also list K closest training images")
    p.add_argument("--detector", default="auto", choices=["auto", "haar", "yunet", "none"])
    p.add_argument("--max-faces", type=int, default=20, help="classify at most this many faces (default 20)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
