"""``python -m facecore dataset ...``: import, sample, list, info, delete, augment, edits,
enroll."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facecore.cli.common import command, print_json, progress, refused_without_yes

# --- dataset ---------------------------------------------------------------------------------


def _import_kwargs(args: argparse.Namespace) -> dict:
    mode = "append" if args.append else "replace" if args.replace else "create"
    return {
        "mode": mode,
        "detector": args.detector,
        "no_face": "centre_crop" if args.centre_crop else "report",
        "seed": args.seed,
        "ratios": tuple(args.split),
        "progress": None if args.json else progress("import"),
    }


def cmd_dataset_import(args: argparse.Namespace) -> int:
    from facecore.data.dataset import import_dataset

    report = import_dataset(args.src, args.name, **_import_kwargs(args))
    print_json(report.to_dict()) if args.json else print(report)
    return 0


def cmd_dataset_sample(args: argparse.Namespace) -> int:
    from facecore.data.sample import build_sample

    kwargs = _import_kwargs(args)
    progress = kwargs.pop("progress")
    kwargs.pop("seed")
    report = build_sample(
        args.name,
        source=Path(args.source) if args.source else None,
        people=args.people,
        min_images=args.min_images,
        unknown=args.unknown,
        max_per_person=args.max_per_person,
        seed=args.seed,
        progress=progress,
        **kwargs,
    )
    print_json(report.to_dict()) if args.json else print(report)
    return 0


def cmd_dataset_list(args: argparse.Namespace) -> int:
    from facecore.data.dataset import list_datasets, load_dataset

    rows = [load_dataset(n).summary() for n in list_datasets()]
    if args.json:
        print_json(rows)
    elif not rows:
        print("No datasets yet. Import one: python -m facecore dataset import SRC --name NAME")
    for r in [] if args.json else rows:
        s = r["split"]
        print(
            f"{r['name']:<24}{len(r['classes']):>4} classes {r['images']:>6} images  "
            f"train/val/test {s['train']}/{s['val']}/{s['test']}"
        )
    return 0


def cmd_dataset_info(args: argparse.Namespace) -> int:
    from facecore.data.dataset import load_dataset

    ds = load_dataset(args.name)
    summary = ds.summary()
    if args.json:
        print_json(summary)
        return 0
    print(f"Dataset {ds.name!r} at {ds.path}")
    print(f"{'class':<28}{'train':>7}{'val':>6}{'test':>6}{'unsplit':>9}")
    for cls, c in summary["per_class"].items():
        print(f"{cls[:27]:<28}{c['train']:>7}{c['val']:>6}{c['test']:>6}{c['unsplit']:>9}")
    print(f"images: {summary['images']}, no face found: {summary['no_face']}")
    for msg in ds.split_messages():
        print(f"warning: {msg}")
    return 0


def cmd_dataset_delete(args: argparse.Namespace) -> int:
    from facecore.data.dataset import delete_dataset

    if refused_without_yes(args, repr(args.name)):
        return 2
    delete_dataset(args.name)
    print(f"Deleted dataset {args.name!r}.")
    return 0


def cmd_dataset_augment(args: argparse.Namespace) -> int:
    from facecore.data.augment import augment_dataset
    from facecore.data.transforms import AugmentConfig

    aug = AugmentConfig(
        rotation=0 if args.no_rotation else args.rotation,
        random_resized_crop=not args.no_crop,
        gaussian_noise_sigma=0 if args.no_noise else args.noise,
        hflip=not args.no_flip,
        color_jitter=not args.no_color,
        translate=0 if args.no_translate else args.translate,
    )
    out = args.out or f"{args.name}-aug{args.copies}"
    report = augment_dataset(
        args.name,
        copies=args.copies,
        out=out,
        aug=aug,
        seed=args.seed,
        replace=args.replace,
        progress=None if args.json else progress("augment"),
    )
    print_json(report) if args.json else print(
        f"Wrote dataset {out!r}: {report['augmented']} augmented copies of {report['train_images']} "
        f"training images ({args.copies} each); validation and test images copied unchanged."
    )
    return 0


# --- dataset edits (the Dataset page: people, images, no-face review, enrollment) ---------------


def _print_edit(result, as_json: bool) -> int:
    if as_json:
        print_json(result.to_dict())
    else:
        print(result.message)
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_dataset_rename(args: argparse.Namespace) -> int:
    from facecore.data.edit import rename_class

    return _print_edit(rename_class(args.name, args.old, args.new), args.json)


def cmd_dataset_remove_class(args: argparse.Namespace) -> int:
    from facecore.data.edit import delete_class

    if refused_without_yes(args, f"{args.person!r} and its images"):
        return 2
    return _print_edit(delete_class(args.name, args.person), args.json)


def cmd_dataset_remove_image(args: argparse.Namespace) -> int:
    from facecore.data.edit import delete_image

    return _print_edit(delete_image(args.name, args.file), args.json)


def cmd_dataset_noface(args: argparse.Namespace) -> int:
    from facecore.data.dataset import load_dataset
    from facecore.data.edit import resolve_noface

    if args.file is None:
        rows = [r for r in load_dataset(args.name).rows if r.status == "no_face"]
        if args.json:
            print_json([{"file": r.file, "class": r.class_name, "source": r.source} for r in rows])
        elif not rows:
            print(f"Every image in {args.name!r} has a face.")
        for r in [] if args.json else rows:
            print(f"{r.file}\t{r.class_name}\t{r.source}")
        return 0
    action = "keep" if args.keep else "centre_crop" if args.centre_crop else "delete" if args.delete else None
    if action is None:
        print("Say what to do with the image: --keep, --centre-crop or --delete.", file=sys.stderr)
        return 2
    return _print_edit(resolve_noface(args.name, args.file, action), args.json)


def cmd_dataset_enroll(args: argparse.Namespace) -> int:
    from facecore.data.edit import add_crops
    from facecore.data.enroll import EnrollSession, QualityConfig
    from facecore.data.images import load_rgb
    from facecore.detect.detectors import create_detector
    from facecore.errors import DatasetError, ImageError

    config = QualityConfig(
        min_face=args.min_face,
        min_score=args.min_score,
        min_sharpness=args.min_sharpness,
        duplicate_mad=args.duplicate_mad,
    )
    detector = create_detector(args.detector)
    session = EnrollSession(detector, target=len(args.images), config=config, interval=0)
    for path in args.images:
        try:
            verdict = session.offer(load_rgb(path), force=True)
        except ImageError as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
            continue
        print(f"{'accepted' if verdict.accepted else 'skipped '} {path}: {verdict.reason}", file=sys.stderr)
    crops = session.take_new()
    if not crops:
        raise DatasetError(f"None of the {len(args.images)} images passed the checks; nothing was saved.")
    result = add_crops(args.name, args.person, crops, source="enroll", detector=detector.name)
    return _print_edit(result, args.json)


def cmd_dataset_add_images(args: argparse.Namespace) -> int:
    from facecore.data.dataset import import_dataset
    from facecore.data.edit import person_listing

    listing = person_listing(args.person, [(Path(p).name, Path(p).read_bytes) for p in args.images])
    report = import_dataset(listing, args.name, source_label=args.person, **_import_kwargs(args))
    print_json(report.to_dict()) if args.json else print(report)
    return 0


def _add_import_options(p: argparse.ArgumentParser) -> None:
    from facecore.data.splits import DEFAULT_RATIOS

    how = p.add_mutually_exclusive_group()
    how.add_argument("--append", action="store_true", help="add to an existing dataset (its split is kept)")
    how.add_argument("--replace", action="store_true", help="replace an existing dataset of that name")
    p.add_argument(
        "--detector",
        default="auto",
        choices=["auto", "haar", "yunet", "none"],
        help="face detector (auto: YuNet, whose model ships with facecore; haar: the Haar cascade "
        "with rotation; none: the images are already face crops)",
    )
    p.add_argument("--centre-crop", action="store_true", help="keep a centre crop when no face is found")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=[r * 100 for r in DEFAULT_RATIOS],
        metavar=("TRAIN", "VAL", "TEST"),
        help="split percentages (default 70 15 15)",
    )
    p.add_argument("--json", action="store_true", help="print the import report as JSON")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    ds = sub.add_parser("dataset", help="import, sample, inspect and augment face datasets")
    dsub = ds.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_import(dsub)
    _add_inspect(dsub)
    _add_augment(dsub)
    _add_people(dsub)
    _add_edits(dsub)


def _add_import(dsub: argparse._SubParsersAction) -> None:
    """``dataset import`` and ``dataset sample``."""
    p = command(dsub, "import", cmd_dataset_import, "import a folder or zip (one subfolder per person)")
    p.add_argument("src", help="folder or .zip with one subfolder per class (Unknown: other people)")
    p.add_argument("--name", required=True, help="dataset name")
    _add_import_options(p)

    p = command(
        dsub, "sample", cmd_dataset_sample, "build a sample dataset from a people-folder tree such as LFW"
    )
    p.add_argument("--source", help="people-folder tree (default: download LFW with scikit-learn)")
    p.add_argument("--name", default="lfw-sample", help="dataset name (default lfw-sample)")
    p.add_argument("--people", type=int, default=7, help="the N people with the most images (default 7)")
    p.add_argument("--min-images", type=int, default=0, help="only people with at least this many images")
    p.add_argument(
        "--unknown", type=int, default=100, help="Unknown images, one per other person (default 100)"
    )
    p.add_argument("--max-per-person", type=int, default=0, help="cap images per person (0: no cap)")
    _add_import_options(p)


def _add_inspect(dsub: argparse._SubParsersAction) -> None:
    """``dataset list``, ``info`` and ``delete``."""
    command(dsub, "list", cmd_dataset_list, "list datasets", json=True)
    p = command(dsub, "info", cmd_dataset_info, "per-class and per-split counts of a dataset", json=True)
    p.add_argument("name")
    p = command(dsub, "delete", cmd_dataset_delete, "delete a dataset")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="really delete")


def _add_augment(dsub: argparse._SubParsersAction) -> None:
    p = command(
        dsub, "augment", cmd_dataset_augment,
        "write K augmented copies of each training image to a new dataset", json=True,
    )
    p.add_argument("name")
    p.add_argument("--copies", type=int, required=True, help="augmented copies per training image")
    p.add_argument("--out", help="new dataset name (default NAME-augK)")
    p.add_argument("--replace", action="store_true", help="replace the output dataset if it exists")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rotation", type=float, default=20.0, help="max rotation in degrees (default 20)")
    p.add_argument("--noise", type=float, default=0.01, help="Gaussian noise sigma (default 0.01)")
    p.add_argument("--translate", type=float, default=0.05, help="max shift as a fraction (default 0.05)")
    for flag in ("rotation", "crop", "noise", "flip", "color", "translate"):
        p.add_argument(f"--no-{flag}", action="store_true", help=f"switch off {flag}")


def _add_people(dsub: argparse._SubParsersAction) -> None:
    """``dataset add-images`` and ``dataset enroll``: one person's photos."""
    p = command(
        dsub, "add-images", cmd_dataset_add_images, "import photos of one person (faces detected and cropped)"
    )
    p.add_argument("name", help="dataset name")
    p.add_argument("--person", required=True, help="the person in the photos (new or existing)")
    p.add_argument("images", nargs="+", help="image files")
    _add_import_options(p)

    p = command(
        dsub, "enroll", cmd_dataset_enroll,
        "add one person's face crops from photos that pass the webcam checks", json=True,
    )
    p.add_argument("name", help="dataset name (created if missing)")
    p.add_argument("--person", required=True, help="the person's name")
    p.add_argument("images", nargs="+", help="photos (camera frames) of the person")
    p.add_argument("--detector", default="auto", choices=["auto", "haar", "yunet"], help="face detector")
    p.add_argument("--min-face", type=int, default=80, help="smallest face side in pixels (default 80)")
    p.add_argument("--min-score", type=float, default=0.88, help="YuNet face score (default 0.88)")
    p.add_argument("--min-sharpness", type=float, default=1.0, help="blur threshold (default 1.0)")
    p.add_argument(
        "--duplicate-mad", type=float, default=6.0, help="near-duplicate threshold, grey levels (default 6)"
    )


def _add_edits(dsub: argparse._SubParsersAction) -> None:
    """``dataset rename``, ``remove-class``, ``remove-image`` and ``noface``."""
    p = command(dsub, "rename", cmd_dataset_rename, "rename a person (splits unchanged)", json=True)
    p.add_argument("name", help="dataset name")
    p.add_argument("old", help="the person's current name")
    p.add_argument("new", help="the new name")

    p = command(dsub, "remove-class", cmd_dataset_remove_class, "delete a person and their images", json=True)
    p.add_argument("name", help="dataset name")
    p.add_argument("person", help="the person to delete")
    p.add_argument("--yes", action="store_true", help="really delete")

    p = command(
        dsub, "remove-image", cmd_dataset_remove_image,
        "delete one image (path in the dataset, or a unique file name)", json=True,
    )
    p.add_argument("name", help="dataset name")
    p.add_argument("file", help="e.g. Colin_Powell/Colin_Powell_0001_3fa2b1c9d0.jpg")

    p = command(
        dsub, "noface", cmd_dataset_noface,
        "list the images where no face was found, or keep / crop / delete one", json=True,
    )
    p.add_argument("name", help="dataset name")
    p.add_argument("file", nargs="?", help="a no-face image (omit to list them)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--keep", action="store_true", help="keep the whole image, padded square and resized")
    what.add_argument("--centre-crop", action="store_true", help="keep its centre crop")
    what.add_argument("--delete", action="store_true", help="delete it")
