"""``python -m facecore gallery ...``: create, enroll, list, remove, rename, calibrate, evaluate.

:func:`add_parser` adds the command group to the main parser; each handler calls the library
and prints (``--json`` for machine-readable output). Errors are raised as
:class:`~facecore.errors.FacecoreError` and printed by the main CLI as one line, exit status 2.
"""

from __future__ import annotations

import argparse

from facecore.cli.common import command, print_json, say_uncalibrated


def cmd_embedders(args: argparse.Namespace) -> int:
    from facecore.gallery.embedder_registry import list_embedders

    infos = list_embedders()
    if args.json:
        print_json([i.to_dict() for i in infos])
        return 0
    for i in infos:
        state = "ready" if i.available else f"unavailable: {i.problem}"
        print(f"{i.name:<40} {'trained here' if i.trained_here else 'pretrained':<13} {state}")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    from facecore.gallery.edit import create_gallery

    g = create_gallery(args.name, embedder=args.embedder, match=args.match)
    print(f"Created gallery {g.name!r} ({g.embedder_name}, match {g.match}, threshold {g.threshold:.3f}).")
    say_uncalibrated([g])
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from facecore.errors import ConfigError
    from facecore.gallery import enroll

    kinds = [bool(args.dataset), bool(args.source), bool(args.photos)]
    if sum(kinds) != 1:
        raise ConfigError(
            "Enroll from one of: --dataset NAME, --source FOLDER_OR_ZIP, or --person NAME PHOTO..."
        )
    common = {"embedder": args.embedder}
    if args.dataset:
        report = enroll.enroll_dataset(
            args.name, args.dataset, split=args.split, people=args.people, **common
        )
    elif args.source:
        report = enroll.enroll_source(
            args.name, args.source, detector=args.detector, largest=args.largest, **common
        )
    else:
        if not args.person:
            raise ConfigError("Name the person the photos show: --person NAME.")
        photos = [(str(p), p) for p in args.photos]
        report = enroll.enroll_photos(
            args.name, args.person, photos, detector=args.detector, largest=args.largest, **common
        )
    if args.json:
        print_json(report.to_dict())
    else:
        print(report)
    say_uncalibrated([report.gallery])
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from facecore.errors import FacecoreError
    from facecore.gallery.store import list_galleries, load_gallery

    rows = []
    for name in list_galleries():
        try:
            rows.append(load_gallery(name).summary())
        except FacecoreError as exc:
            rows.append({"name": name, "error": str(exc)})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No galleries yet: python -m facecore gallery enroll NAME --dataset DATASET")
    for r in rows:
        if "error" in r:
            print(f"{r['name']}: {r['error']}")
            continue
        state = "calibrated" if r["calibrated"] else "not calibrated: the embedder's default"
        print(
            f"{r['name']}: {len(r['people'])} people, {r['faces']} faces, {r['embedder']}, "
            f"threshold {r['threshold']:.3f} ({state})"
        )
    say_uncalibrated([r["name"] for r in rows if "error" not in r and not r["calibrated"]])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from facecore.gallery.store import load_gallery

    g = load_gallery(args.name)
    summary = g.summary() | {"threshold_info": g.threshold_info}
    if args.json:
        print_json(summary)
        return 0
    print(f"{g.name}: {g.embedder_name}, match {g.match}, threshold {g.threshold:.3f}")
    info = g.threshold_info
    print(
        "  threshold: "
        + (f"calibrated on {info.get('source')}" if info.get("calibrated") else "not calibrated")
        + (f" ({info['reason']})" if info.get("reason") else "")
    )
    for person, n in g.counts().items():
        print(f"  {person}: {n} face(s)")
    say_uncalibrated([g])
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from facecore.gallery.edit import remove_person

    g = remove_person(args.name, args.person)
    print(f"Removed {args.person!r} from {g.name!r}; {len(g.people)} people left.")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    from facecore.gallery.edit import rename_person

    rename_person(args.name, args.old, args.new)
    print(f"Renamed {args.old!r} to {args.new!r} in {args.name!r}.")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from facecore.errors import ConfigError
    from facecore.gallery.edit import delete_gallery

    if not args.yes:
        raise ConfigError(
            f"Deleting gallery {args.name!r} removes its enrolled faces; add --yes to confirm."
        )
    delete_gallery(args.name)
    print(f"Deleted gallery {args.name!r}.")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from facecore.gallery.edit import rebuild_gallery

    g = rebuild_gallery(args.name, embedder=args.embedder)
    print(
        f"Rebuilt {g.name!r} with {g.embedder_name}: {len(g.files)} faces of {len(g.people)} people; "
        f"threshold {g.threshold:.3f}."
    )
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from facecore.gallery.calibrate import calibrate_gallery

    out = calibrate_gallery(
        args.name,
        dataset=args.dataset,
        split=args.split,
        strangers=args.strangers,
        target_far=args.target_far,
        allow_few=args.allow_few,
        keep_default=args.keep_default,
    )
    if args.json:
        print_json(out)
        return 0
    if out.get("calibrated"):
        far, kept = out.get("far"), out.get("known_accepted")
        print(
            f"Threshold {out['threshold']:.3f} for {args.name!r}: false accepts {far:.1%} of "
            f"{out['n_strangers']} strangers"
            + (f", known faces accepted {kept:.1%} of {out['n_known']}" if kept is not None else "")
            + f" ({out['source']})."
        )
    else:
        print(f"Threshold {out['threshold']:.3f} for {args.name!r}, not calibrated: {out['reason']}.")
    if out.get("reason") and out.get("calibrated"):
        print(f"note: {out['reason']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from facecore.gallery.evaluate import evaluate_gallery

    say_uncalibrated([args.name])
    r = evaluate_gallery(args.name, args.dataset, split=args.split, latency=not args.no_latency)
    if args.json:
        print_json(r.to_dict())
        return 0
    at = r.open_set.at_model_threshold
    lat = r.latency_ms or {}
    print(
        f"{r.run} on {r.dataset} ({r.split}, {r.n_images} faces): accuracy {r.accuracy:.3f}, "
        f"macro F1 {r.macro_f1:.3f}, rank-1 on known faces {r.rank1_known:.3f}"
    )
    far = at.get("false_accept_rate")
    print(
        f"  at threshold {r.open_set.threshold_in_model:.3f}: FAR "
        + (f"{far:.3f}" if far is not None else "n/a (no Unknown faces)")
        + f", known faces accepted {at.get('known_accepted') or 0:.3f}"
    )
    if lat:
        print(f"  {lat.get('batch1')} ms/face at batch 1, {lat.get('batch32')} at batch 32")
    for w in r.warnings:
        print(f"  warning: {w}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``gallery`` and its subcommands to the main CLI's subparsers."""
    gal = sub.add_parser(
        "gallery", help="galleries of enrolled people, recognised by face embeddings (no training)"
    )
    gsub = gal.add_subparsers(dest="gallery_command", required=True)

    command(
        gsub, "embedders", cmd_embedders,
        "list the face embedders (pretrained, and every trained run)", json=True,
    )
    _add_create(gsub)
    _add_enroll(gsub)
    _add_people(gsub)
    _add_calibrate(gsub)
    _add_evaluate(gsub)


def _add_create(gsub: argparse._SubParsersAction) -> None:
    from facecore.gallery.embedders import DEFAULT_EMBEDDER, DLIB_NAME, SFACE_NAME
    from facecore.gallery.store import DEFAULT_MATCH, MATCH_RULES

    p = command(gsub, "create", cmd_create, "create an empty gallery")
    p.add_argument("name")
    p.add_argument(
        "--embedder",
        default=DEFAULT_EMBEDDER,
        help=f"{SFACE_NAME} or {DLIB_NAME} (pretrained), or run:RUN (default {DEFAULT_EMBEDDER})",
    )
    p.add_argument(
        "--match",
        default=DEFAULT_MATCH,
        choices=MATCH_RULES,
        help="a person's score: their best face (max, default) or the mean of their 3 best",
    )


def _add_enroll(gsub: argparse._SubParsersAction) -> None:
    from facecore.gallery.embedders import DEFAULT_EMBEDDER, DLIB_NAME, SFACE_NAME

    p = command(
        gsub, "enroll", cmd_enroll,
        "enroll people from a dataset, a folder or zip, or photos of one person", json=True,
    )
    p.add_argument("name", help="the gallery (created when new)")
    p.add_argument("--dataset", help="enroll the faces of a dataset's split (not its Unknown class)")
    p.add_argument(
        "--split", default="train", choices=["train", "val", "test"], help="with --dataset (default train)"
    )
    p.add_argument("--people", nargs="+", metavar="PERSON", help="with --dataset: only these people")
    p.add_argument("--source", metavar="FOLDER_OR_ZIP", help="one subfolder per person")
    p.add_argument("--person", help="the person the photos show")
    p.add_argument("photos", nargs="*", help="photos of --person")
    p.add_argument("--largest", action="store_true", help="a photo with several faces: take the largest")
    p.add_argument("--detector", default="auto", choices=["auto", "yunet", "haar"])
    p.add_argument(
        "--embedder",
        help=f"for a new gallery: {SFACE_NAME}, {DLIB_NAME} or run:RUN (default {DEFAULT_EMBEDDER}); "
        "an existing gallery keeps its own",
    )


def _add_people(gsub: argparse._SubParsersAction) -> None:
    """``list``, ``show``, ``remove``, ``rename``, ``delete`` and ``rebuild``."""
    command(gsub, "list", cmd_list, "list galleries", json=True)

    p = command(gsub, "show", cmd_show, "a gallery's people, faces and threshold", json=True)
    p.add_argument("name")

    p = command(gsub, "remove", cmd_remove, "remove a person and their faces")
    p.add_argument("name")
    p.add_argument("person")

    p = command(gsub, "rename", cmd_rename, "rename a person")
    p.add_argument("name")
    p.add_argument("old")
    p.add_argument("new")

    p = command(gsub, "delete", cmd_delete, "delete a gallery")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true")

    p = command(
        gsub, "rebuild", cmd_rebuild,
        "embed the enrolled faces again (repairs a hand-edited gallery; --embedder moves it to another "
        "embedder)",
    )
    p.add_argument("name")
    p.add_argument("--embedder")


def _add_calibrate(gsub: argparse._SubParsersAction) -> None:
    from facecore.gallery.calibrate import DEFAULT_TARGET_FAR

    p = command(
        gsub, "calibrate", cmd_calibrate,
        "choose the threshold at a false-accept target on strangers' faces", json=True,
    )
    p.add_argument("name")
    p.add_argument(
        "--dataset",
        help="faces of a dataset split: its Unknown class (and people not enrolled) "
        "are the strangers; enrolled people give the known-accepted rate",
    )
    p.add_argument(
        "--split", default="val", choices=["train", "val", "test"], help="with --dataset (default val)"
    )
    p.add_argument(
        "--strangers",
        metavar="FOLDER_OR_ZIP",
        help="photos of people not in the gallery: a flat folder, one folder per person, or a zip of either",
    )
    few = p.add_mutually_exclusive_group()
    few.add_argument(
        "--allow-few",
        action="store_true",
        help="calibrate even with fewer strangers than the target needs (1/target: 100 for 1%%); "
        "the threshold then sits just above the most similar stranger",
    )
    few.add_argument(
        "--keep-default",
        action="store_true",
        help="with fewer strangers than the target needs, keep the embedder's default threshold "
        "(the gallery stays not calibrated) instead of failing",
    )
    p.add_argument(
        "--target-far",
        type=float,
        default=DEFAULT_TARGET_FAR,
        help=f"false-accept rate to hold (default {DEFAULT_TARGET_FAR})",
    )


def _add_evaluate(gsub: argparse._SubParsersAction) -> None:
    p = command(
        gsub, "evaluate", cmd_evaluate,
        "accuracy, F1, FAR and confusion on a dataset split, as for a run", json=True,
    )
    p.add_argument("name")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--no-latency", action="store_true", help="skip the timing")
