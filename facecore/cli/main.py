"""The ``python -m facecore`` command line: one subcommand per thing the dashboard does.

Each handler parses nothing itself: argparse builds the arguments, the handler calls the
library and prints. A :class:`~facecore.errors.FacecoreError` becomes a one-line message and
exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from facecore.errors import FacecoreError

Handler = Callable[[argparse.Namespace], int]


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _progress(prefix: str) -> Callable[[int, int, str], None]:
    """A progress printer for stderr: ``prefix  i/n  message``, one updating line on a tty."""
    tty = sys.stderr.isatty()
    last = [-1.0]

    def show(done: int, total: int, message: str) -> None:
        import time

        now = time.monotonic()
        if tty or done == total or now - last[0] > 2:
            last[0] = now
            end = "\r" if tty and done < total else "\n"
            frac = f"{done}/{total}" if total else ""
            if total > 1_000_000:
                frac = f"{done / 2**20:.0f}/{total / 2**20:.0f} MB"
            print(f"{prefix} {frac} {message[:60]:<60}", end=end, file=sys.stderr, flush=True)

    return show


# --- dataset ---------------------------------------------------------------------------------


def _import_kwargs(args: argparse.Namespace) -> dict:
    mode = "append" if args.append else "replace" if args.replace else "create"
    return {
        "mode": mode,
        "detector": args.detector,
        "no_face": "centre_crop" if args.centre_crop else "report",
        "seed": args.seed,
        "ratios": tuple(args.split),
        "progress": None if args.json else _progress("import"),
    }


def cmd_dataset_import(args: argparse.Namespace) -> int:
    from facecore.data.dataset import import_dataset

    report = import_dataset(args.src, args.name, **_import_kwargs(args))
    _print_json(report.to_dict()) if args.json else print(report)
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
    _print_json(report.to_dict()) if args.json else print(report)
    return 0


def cmd_dataset_list(args: argparse.Namespace) -> int:
    from facecore.data.dataset import list_datasets, load_dataset

    rows = [load_dataset(n).summary() for n in list_datasets()]
    if args.json:
        _print_json(rows)
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
        _print_json(summary)
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

    if not args.yes:
        print(f"Refusing to delete {args.name!r} without --yes.", file=sys.stderr)
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
        progress=None if args.json else _progress("augment"),
    )
    _print_json(report) if args.json else print(
        f"Wrote dataset {out!r}: {report['augmented']} augmented copies of {report['train_images']} "
        f"training images ({args.copies} each); validation and test images copied unchanged."
    )
    return 0


# --- dataset edits (the Dataset page: people, images, no-face review, enrollment) ---------------


def _print_edit(result, as_json: bool) -> int:
    if as_json:
        _print_json(result.to_dict())
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

    if not args.yes:
        print(f"Refusing to delete {args.person!r} and its images without --yes.", file=sys.stderr)
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
            _print_json([{"file": r.file, "class": r.class_name, "source": r.source} for r in rows])
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
    _print_json(report.to_dict()) if args.json else print(report)
    return 0


# --- detection, models, weights ----------------------------------------------------------------


def cmd_detect(args: argparse.Namespace) -> int:
    from facecore.data.images import load_rgb
    from facecore.detect.detectors import create_detector

    det = create_detector(args.detector)
    faces = det.detect(load_rgb(args.image))
    if args.json:
        _print_json({"detector": det.name, "faces": [f.to_dict() for f in faces]})
    else:
        print(f"{len(faces)} face(s) found by {det.name}")
        for f in faces:
            print(
                f"  box x={f.box[0]} y={f.box[1]} w={f.box[2]} h={f.box[3]} "
                f"score={f.score:.3f} angle={f.angle:g}"
            )
    return 0


def cmd_detectors_download(args: argparse.Namespace) -> int:
    from facecore.detect.detectors import YUNET_URL, download_yunet

    path = download_yunet(url=args.url or YUNET_URL, progress=lambda d, t: _progress("YuNet")(d, t, ""))
    print(f"YuNet saved to {path}")
    return 0


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
        _print_json(rows)
    for r in [] if args.json else rows:
        print(f"{r['name']:<22}{'ImageNet' if r['pretrained'] else 'scratch':<10}{r['description']}")
    return 0


def cmd_weights_status(args: argparse.Namespace) -> int:
    from facecore.models.weights import weights_status

    status = weights_status()
    if args.json:
        _print_json(status)
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


# --- training and jobs -------------------------------------------------------------------------


def configs_from_args(args: argparse.Namespace) -> list:
    """The TrainConfig of each model asked for: its own defaults, then the options given."""
    from facecore.data.transforms import AugmentConfig
    from facecore.train.config import TrainConfig
    from facecore.train.runs import COMPARED_MODELS

    models = list(COMPARED_MODELS) if args.model == ["all"] else args.model
    configs = []
    for name in models:
        overrides = {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "optimizer": args.optimizer,
            "weight_decay": args.weight_decay,
            "schedule": args.schedule,
            "early_stopping": args.early_stopping,
            "monitor": args.monitor,
            "seed": args.seed,
            "device": args.device,
            "amp": args.amp,
            "workers": args.workers,
            "cache_features": args.cache_features,
            "trainable_from": args.trainable_from if name.endswith("_pretrained") else None,
            "run_name": f"{args.run_name}-{name}" if args.run_name and len(models) > 1 else args.run_name,
            "group": args.group,
            "nproc": args.nproc,
        }
        cfg = TrainConfig.for_model(name, args.dataset, **overrides)
        if args.no_augment:
            cfg.augment = AugmentConfig.none()
        elif args.augment:
            cfg.augment = AugmentConfig()
        cfg.validate()
        configs.append(cfg)
    return configs


def _launch_options(args: argparse.Namespace) -> dict:
    """torchrun's options for training on several machines (empty on one)."""
    if args.nnodes == 1 and not args.rdzv_endpoint:
        return {}
    if args.background:
        raise FacecoreError("Training on several machines runs in the foreground: drop --background.")
    if args.rdzv_endpoint is None and args.master_addr is None:
        raise FacecoreError(
            "With --nnodes > 1 give rank 0's --master-addr (and --master-port), or --rdzv-endpoint."
        )
    return {
        "nnodes": args.nnodes, "node_rank": args.node_rank, "master_addr": args.master_addr,
        "master_port": args.master_port, "rdzv_endpoint": args.rdzv_endpoint,
    }


def cmd_train(args: argparse.Namespace) -> int:
    from facecore import workspace
    from facecore.train import jobs
    from facecore.train.loop import ProgressPrinter, Trainer, set_threads, train
    from facecore.train.runs import trainable_configs

    configs = configs_from_args(args)
    if args.model == ["all"]:
        configs, skipped = trainable_configs(configs)
        for model, reason in skipped.items():
            print(f"skipping {model}: {reason}", file=sys.stderr)
    if args.background:
        job_id = jobs.start_job(configs, group=args.group or "", resume_run=args.resume)
        print(f"Started job {job_id}. Follow it: python -m facecore jobs show {job_id} --follow")
        return 0
    set_threads(args.threads)
    summaries = []
    launch = _launch_options(args)
    for i, cfg in enumerate(configs):
        run_dir = workspace.models_dir() / args.resume if args.resume and i == 0 else None
        if cfg.nproc > 1 or launch:  # DDP under torchrun: its ranks print their progress
            summary = train(cfg, resume_dir=run_dir, launch=launch)
            summaries.append(summary)
            world = summary.get("world_size", "?")
            print(f"saved {workspace.models_dir() / summary['run']} ({world} processes)")
            continue
        trainer = Trainer(cfg, run_dir=run_dir, callbacks=[ProgressPrinter()])
        summaries.append(trainer.fit(resume=run_dir is not None))
        print(f"saved {trainer.run_dir}")
    if args.json:
        _print_json(summaries)
    return 0


def _job_line(job: dict) -> str:
    p = job.get("progress") or {}
    where = ""
    if job["status"] == "running" and p:
        where = f" {p.get('model')} epoch {p.get('epoch')}/{p.get('epochs')}"
        if p.get("batches"):
            where += f" batch {p['batch']}/{p['batches']}"
    models = ",".join(c["model"] for c in job["configs"])
    world = max(int(c.get("nproc", 1)) for c in job["configs"])
    procs = f" x{world} processes" if world > 1 else ""
    return f"{job['id']}  {job['status']:<8} {models}{procs}{where}  {job.get('message') or ''}"


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from facecore.train.jobs import list_jobs

    rows = [job.to_dict() for job in list_jobs()]
    if args.json:
        _print_json(rows)
    elif not rows:
        print("No jobs yet. Start one: python -m facecore train --dataset NAME --model all --background")
    for job in [] if args.json else rows:
        print(_job_line(job))
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    import time

    from facecore.train.jobs import ACTIVE, read_job, read_log

    shown = 0
    while True:
        job = read_job(args.id).to_dict()
        log = read_log(args.id, tail=100000).splitlines()
        if args.json and not args.follow:
            _print_json({**job, "log": "\n".join(log[-50:])})
            return 0
        for line in log[shown:]:
            print(line)
        shown = len(log)
        if not args.follow or job["status"] not in ACTIVE:
            print(_job_line(job))
            return 0 if job["status"] != "failed" else 1
        time.sleep(1.0)


def cmd_jobs_stop(args: argparse.Namespace) -> int:
    from facecore.train.jobs import stop_job, wait_job

    stop_job(args.id)
    job = wait_job(args.id, timeout=args.timeout).to_dict()
    print(_job_line(job))
    return 0


def cmd_jobs_run(args: argparse.Namespace) -> int:
    from facecore.train.jobs import run_job
    from facecore.train.loop import set_threads

    set_threads()
    return run_job(args.id)


def cmd_jobs_delete(args: argparse.Namespace) -> int:
    from facecore.train.jobs import delete_job

    delete_job(args.id)
    print(f"Deleted job {args.id}.")
    return 0


# --- runs --------------------------------------------------------------------------------------


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cmd_runs_list(args: argparse.Namespace) -> int:
    from facecore.train.runs import list_runs

    rows = [run.to_dict() for run in list_runs(dataset=args.dataset, group=args.group)]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("No runs yet. Train one: python -m facecore train --dataset NAME --model custom_cnn")
        return 0
    print(
        f"{'run':<44}{'model':<21}{'dataset':<14}{'group':<16}{'state':<10}{'epochs':>7}{'best':>5}"
        f"{'val acc':>8}{'val F1':>8}{'test acc':>9}"
    )
    for r in rows:
        epochs = f"{r['epochs_run']}/{r['epochs'] or '?'}"
        print(
            f"{r['run'][:43]:<44}{(r['model'] or '?'):<21}{(r['dataset'] or '?')[:13]:<14}"
            f"{(r['group'] or '-')[:15]:<16}{r['state']:<10}{epochs:>7}{r['best_epoch'] or '-':>5}"
            f"{_score(r['val_acc']):>8}{_score(r['val_f1']):>8}{_score(r['test_acc']):>9}"
        )
    return 0


def cmd_runs_delete(args: argparse.Namespace) -> int:
    from facecore.train.runs import delete_run, run_path

    path = run_path(args.run)
    if not args.yes:
        print(f"Refusing to delete run {args.run!r} ({path}) without --yes.", file=sys.stderr)
        return 2
    delete_run(args.run)
    print(f"Deleted run {args.run!r} ({path}).")
    return 0


def cmd_runs_add(args: argparse.Namespace) -> int:
    from facecore.train.addrun import add_run

    path = add_run(Path(args.file), name=args.name)
    print(f"Added run {path.name!r} ({path}).")
    return 0


# --- evaluation, comparison, prediction ------------------------------------------------------------


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
        _print_json(r)
        return 0
    print(f"{r['run']} ({r['model']}, epoch {r['epoch']}) on {r['dataset']}/{r['split']}: ", end="")
    print(f"{r['n_images']} images")
    print(f"accuracy {r['accuracy']:.4f}  macro F1 {r['macro_f1']:.4f}  weighted F1 {r['weighted_f1']:.4f}")
    print(f"{'class':<28}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}")
    for cls, m in r["per_class"].items():
        print(f"{cls[:27]:<28}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9}")
    op = r["open_set"]
    at, sug = op["at_model_threshold"], op["suggested"]
    far = "n/a" if at["false_accept_rate"] is None else f"{at['false_accept_rate']:.3f}"
    known = "n/a" if at["known_accuracy"] is None else f"{at['known_accuracy']:.3f}"
    print(f"model threshold {op['threshold_in_model']:.2f}: false-accept rate {far}, known accuracy {known}")
    print(
        f"threshold for FAR <= {op['target_far']:g} on {r['split']}: {sug['threshold']:.2f}"
        + (f" ({sug['reason']})" if sug.get("reason") else "")
    )
    if r["threshold_saved"]:
        saved = r["threshold_saved"]
        print(f"saved threshold {saved['threshold']:.2f} into {', '.join(saved['files'])}")
    if r["latency_ms"]:
        lat = r["latency_ms"]
        print(
            f"latency on {r['device']}: {lat['batch1']:.2f} ms/image (batch 1), "
            f"{lat['batch32']:.2f} ms/image (batch 32)"
        )
    for w in r["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(f"predictions: {r['predictions_csv']}\nmetrics: {r['metrics_json']}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from facecore.evaluate.compare import compare_runs

    result = compare_runs(
        args.runs, out=Path(args.out), split=args.split, device=args.device, latency=not args.no_latency,
        galleries=args.gallery,
    )
    if args.json:
        _print_json(result)
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


def _recognizers(args: argparse.Namespace) -> list[str]:
    """``--model`` runs, then ``--gallery`` galleries as ``gallery:NAME``; at least one."""
    specs = list(args.model) + [f"gallery:{g}" for g in args.gallery]
    if not specs:
        raise FacecoreError("Name at least one trained run (--model RUN) or gallery (--gallery NAME).")
    return specs


def cmd_predict(args: argparse.Namespace) -> int:
    from facecore.data.images import load_rgb
    from facecore.live.inference import Predictor

    if args.nearest < 0:
        raise FacecoreError(f"--nearest must be 0 or more, got {args.nearest}.")
    predictor = Predictor(
        _recognizers(args),
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
        _print_json(
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


def cmd_live(args: argparse.Namespace) -> int:
    from facecore.live.recognizer import LiveConfig, LiveRecognizer, run_video

    config = LiveConfig(
        detector=args.detector,
        threshold=args.threshold,
        max_faces=args.max_faces,
        detect_side=args.detect_side,
        threads=args.threads,
        device=args.device,
        precision="int8" if args.int8 else args.precision,
        workers=args.workers,
    )
    with LiveRecognizer(_recognizers(args), config) as recognizer:
        for name, problem in recognizer.int8_problems.items():
            print(f"note: {name} stays in float32: {problem}", file=sys.stderr)
        for name, note in recognizer.precision_notes().items():
            print(f"{name}: {note}", file=sys.stderr)
        summary = run_video(
            args.source,
            recognizer,
            out=args.out,
            every_frame=args.every_frame,
            max_seconds=args.seconds,
            report=(lambda _line: None) if args.json else print,
        )
    if args.json:
        _print_json(summary)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from facecore.evaluate.bench import run_from_args

    return run_from_args(args)


# --- parser ------------------------------------------------------------------------------------


def _add_import_options(p: argparse.ArgumentParser) -> None:
    from facecore.data.splits import DEFAULT_RATIOS

    how = p.add_mutually_exclusive_group()
    how.add_argument("--append", action="store_true", help="add to an existing dataset (its split is kept)")
    how.add_argument("--replace", action="store_true", help="replace an existing dataset of that name")
    p.add_argument(
        "--detector",
        default="auto",
        choices=["auto", "haar", "yunet", "none"],
        help="face detector (auto: YuNet when its model file is present, else Haar with rotation)",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m facecore",
        description="facecore: face datasets, detection, three models compared, training and recognition.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ds = sub.add_parser("dataset", help="import, sample, inspect and augment face datasets")
    dsub = ds.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("import", help="import a folder or zip (one subfolder per person)")
    p.add_argument("src", help="folder or .zip with one subfolder per class (Unknown: other people)")
    p.add_argument("--name", required=True, help="dataset name")
    _add_import_options(p)
    p.set_defaults(func=cmd_dataset_import)

    p = dsub.add_parser("sample", help="build a sample dataset from a people-folder tree such as LFW")
    p.add_argument("--source", help="people-folder tree (default: download LFW with scikit-learn)")
    p.add_argument("--name", default="lfw-sample", help="dataset name (default lfw-sample)")
    p.add_argument("--people", type=int, default=7, help="the N people with the most images (default 7)")
    p.add_argument("--min-images", type=int, default=0, help="only people with at least this many images")
    p.add_argument(
        "--unknown", type=int, default=100, help="Unknown images, one per other person (default 100)"
    )
    p.add_argument("--max-per-person", type=int, default=0, help="cap images per person (0: no cap)")
    _add_import_options(p)
    p.set_defaults(func=cmd_dataset_sample)

    p = dsub.add_parser("list", help="list datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_list)
    p = dsub.add_parser("info", help="per-class and per-split counts of a dataset")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_info)
    p = dsub.add_parser("delete", help="delete a dataset")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="really delete")
    p.set_defaults(func=cmd_dataset_delete)

    p = dsub.add_parser("augment", help="write K augmented copies of each training image to a new dataset")
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_augment)

    p = dsub.add_parser("add-images", help="import photos of one person (faces detected and cropped)")
    p.add_argument("name", help="dataset name")
    p.add_argument("--person", required=True, help="the person in the photos (new or existing)")
    p.add_argument("images", nargs="+", help="image files")
    _add_import_options(p)
    p.set_defaults(func=cmd_dataset_add_images)

    p = dsub.add_parser("enroll", help="add one person's face crops from photos that pass the webcam checks")
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_enroll)

    p = dsub.add_parser("rename", help="rename a person (splits unchanged)")
    p.add_argument("name", help="dataset name")
    p.add_argument("old", help="the person's current name")
    p.add_argument("new", help="the new name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_rename)

    p = dsub.add_parser("remove-class", help="delete a person and their images")
    p.add_argument("name", help="dataset name")
    p.add_argument("person", help="the person to delete")
    p.add_argument("--yes", action="store_true", help="really delete")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_remove_class)

    p = dsub.add_parser("remove-image", help="delete one image (path in the dataset, or a unique file name)")
    p.add_argument("name", help="dataset name")
    p.add_argument("file", help="e.g. Colin_Powell/Colin_Powell_0001_3fa2b1c9d0.jpg")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_remove_image)

    p = dsub.add_parser("noface", help="list the images where no face was found, or keep / crop / delete one")
    p.add_argument("name", help="dataset name")
    p.add_argument("file", nargs="?", help="a no-face image (omit to list them)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--keep", action="store_true", help="keep the whole image, padded square and resized")
    what.add_argument("--centre-crop", action="store_true", help="keep its centre crop")
    what.add_argument("--delete", action="store_true", help="delete it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dataset_noface)

    p = sub.add_parser("detect", help="detect faces in one image")
    p.add_argument("image")
    p.add_argument("--detector", default="auto", choices=["auto", "haar", "yunet", "none"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_detect)

    dets = sub.add_parser("detectors", help="detector model files")
    dsub = dets.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser(
        "download", help="download the YuNet model from OpenCV Zoo into FACECORE_HOME/detectors"
    )
    p.add_argument("--url", help="download from this URL instead")
    p.set_defaults(func=cmd_detectors_download)

    models = sub.add_parser("models", help="the model registry")
    msub = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = msub.add_parser("list", help="list the models that can be trained")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_list)

    weights = sub.add_parser("weights", help="ImageNet weights for the pretrained model")
    wsub = weights.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = wsub.add_parser("status", help="say whether the weights file is present, and where it goes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_weights_status)
    p = wsub.add_parser("download", help="download the ImageNet weights ahead of time")
    p.set_defaults(func=cmd_weights_download)

    p = sub.add_parser("train", help="train one model, or all three, on a dataset's saved split")
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--model",
        action="append",
        required=True,
        help="model name (repeat for several), or 'all' for the three compared models",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop"])
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["none", "step", "cosine", "plateau"])
    p.add_argument(
        "--early-stopping", type=int, metavar="PATIENCE", help="stop after N epochs without improvement"
    )
    p.add_argument("--monitor", choices=["val_loss", "val_f1"], help="what picks the best checkpoint")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, mps")
    p.add_argument("--amp", choices=["auto", "on", "off"])
    p.add_argument("--workers", type=int, help="DataLoader workers (-1: automatic)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: every core)")
    p.add_argument(
        "--cache-features", choices=["auto", "on", "off"], help="pretrained model: compute frozen layers once"
    )
    p.add_argument(
        "--trainable-from", help="pretrained model: fc, layer4 (default), layer3, layer2, layer1 or all"
    )
    aug = p.add_mutually_exclusive_group()
    aug.add_argument("--augment", action="store_true", help="every online augmentation on")
    aug.add_argument("--no-augment", action="store_true", help="every online augmentation off")
    p.add_argument("--run-name")
    p.add_argument("--group", help="comparison group name stamped on the runs")
    p.add_argument("--resume", metavar="RUN", help="resume this run folder (under models/) from last.pt")
    p.add_argument("--background", action="store_true", help="run as a background job")
    ddp = p.add_argument_group("several processes or machines (DDP under torchrun)")
    ddp.add_argument("--nproc", type=int, help="processes on this machine: one per GPU, or per CPU socket "
                     "(default 1); --batch-size is the global batch, split over all processes")
    ddp.add_argument("--nnodes", type=int, default=1, help="machines taking part (default 1)")
    ddp.add_argument("--node-rank", type=int, default=0, help="this machine's number, 0 to nnodes-1")
    ddp.add_argument("--master-addr", help="rank 0's machine: its address, reachable by the others")
    ddp.add_argument("--master-port", type=int, help="a free port on rank 0's machine (default 29500)")
    ddp.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                     help="c10d rendezvous instead of --master-addr (elastic; the same on every machine)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    jobs = sub.add_parser("jobs", help="background training jobs")
    jsub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = jsub.add_parser("list", help="list jobs, newest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs_list)
    p = jsub.add_parser("show", help="a job's status and log")
    p.add_argument("id")
    p.add_argument("--follow", action="store_true", help="keep printing the log until the job ends")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs_show)
    p = jsub.add_parser("stop", help="stop a job (the last finished epoch is kept)")
    p.add_argument("id")
    p.add_argument("--timeout", type=float, default=120.0)
    p.set_defaults(func=cmd_jobs_stop)
    p = jsub.add_parser("delete", help="delete a finished job's folder (its runs stay)")
    p.add_argument("id")
    p.set_defaults(func=cmd_jobs_delete)
    p = jsub.add_parser("run", help=argparse.SUPPRESS)
    p.add_argument("id")
    p.set_defaults(func=cmd_jobs_run)
    runs = sub.add_parser("runs", help="trained runs: list them with their scores, add or delete one")
    rsub = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = rsub.add_parser(
        "list", help="runs, newest first, with their best validation scores and test accuracy"
    )
    p.add_argument("--dataset", help="only runs on this dataset")
    p.add_argument("--group", help="only runs of this comparison group")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs_list)
    p = rsub.add_parser("delete", help="delete a run folder (refused while a job trains it)")
    p.add_argument("run", metavar="RUN", help="run name (a folder under FACECORE_HOME/models)")
    p.add_argument("--yes", action="store_true", help="really delete")
    p.set_defaults(func=cmd_runs_delete)
    p = rsub.add_parser("add", help="add a trained model from a checkpoint file (checked before it is kept)")
    p.add_argument("file", metavar="FILE", help="a facecore checkpoint (.pt), e.g. another machine's best.pt")
    p.add_argument("--name", help="run name (default: the checkpoint's own, else MODEL-added)")
    p.set_defaults(func=cmd_runs_add)

    splits = ["train", "val", "test"]
    p = sub.add_parser("evaluate", help="evaluate a run on a split: metrics, predictions, latency, open set")
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
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="compare 1-6 runs of one dataset: report.md, .html, comparison.json")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run names, run folders or .pt files")
    p.add_argument("--out", required=True, help="folder to write the reports into")
    p.add_argument("--gallery", action="append", default=[], metavar="NAME",
                   help="a gallery to compare beside the runs, on their dataset and split; repeatable")
    p.add_argument("--split", default="test", choices=splits, help="split to compare on (default test)")
    p.add_argument("--no-latency", action="store_true", help="skip latency (ms/image columns show n/a)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    p.add_argument("--json", action="store_true", help="print comparison.json to stdout")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("predict", help="recognise the faces in one image with trained runs and galleries")
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("live", help="recognise faces in a video file or camera as the Live page does")
    p.add_argument(
        "source", metavar="VIDEO_OR_CAMERA", help="a video file (.mp4, .avi, .y4m ...) or a camera index"
    )
    p.add_argument(
        "--model", action="append", default=[], metavar="RUN", help="run name, folder or .pt; repeatable"
    )
    p.add_argument("--gallery", action="append", default=[], metavar="NAME",
                   help="a gallery to recognise with (beside or instead of runs); repeatable")
    p.add_argument("--threshold", type=float, help="unknown threshold (default: each run's own)")
    p.add_argument("--detector", default="auto", choices=["auto", "yunet", "haar"])
    p.add_argument("--detect-side", type=int, default=320, help="detect on frames scaled to this longer side")
    p.add_argument("--max-faces", type=int, default=5, help="classify at most this many faces per frame")
    p.add_argument("--threads", type=int, default=1, help="torch threads per frame (default 1)")
    p.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="frames recognised at once, each in its own thread (default 2, or 1 on one core)",
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "int8"],
        help="classify in float32, with int8 copies of the models (CPU), or auto (default): whichever "
        "is faster for each model on this machine, timed at the start",
    )
    p.add_argument("--int8", action="store_true", help="the same as --precision int8")
    p.add_argument("--out", metavar="FILE", help="write the annotated video (.mp4, .avi, .mkv or .y4m)")
    p.add_argument(
        "--every-frame",
        action="store_true",
        help="recognise every frame before the next (offline); default: paced as live, newest frame wins",
    )
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument(
        "--json", action="store_true", help="print the summary as JSON instead of a line per second"
    )
    p.set_defaults(func=cmd_live)
    from facecore.cli.gallery import add_parser as add_gallery_parser

    add_gallery_parser(sub)
    p = sub.add_parser("bench", help="training and inference images/s per model against compute-bound rates")
    from facecore.evaluate.bench import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FacecoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
