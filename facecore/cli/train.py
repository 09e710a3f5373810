"""``python -m facecore`` train (one process or DDP), jobs, runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facecore.cli.common import command, print_json, refused_without_yes
from facecore.errors import ConfigError


def add_config_arguments(
    p: argparse.ArgumentParser, groups: dict[str, argparse._ArgumentGroup] | None = None
) -> None:
    """``--flag`` for each training setting, generated from TrainConfig's fields: the type from its
    annotation, choices, help and metavar from its metadata; the CLI offers exactly what the config
    has. Every default is None: the model's own default, or the config's, applies. Bounds are
    checked by ``TrainConfig.validate``, as for the Train page."""
    from typing import Union, get_args, get_origin, get_type_hints

    from facecore.train.config import TrainConfig, setting_fields

    hints = get_type_hints(TrainConfig)
    for f in setting_fields():
        kind, extra = hints[f.name], {}
        if get_origin(kind) is Union or type(kind).__name__ == "UnionType":  # ``str | None``
            kind = next(a for a in get_args(kind) if a is not type(None))
        if "choices" in f.metadata:
            extra["choices"] = list(f.metadata["choices"])
        else:
            extra["type"] = kind
        if "metavar" in f.metadata:
            extra["metavar"] = f.metadata["metavar"]
        target = (groups or {}).get(f.metadata.get("group", ""), p)
        target.add_argument(f"--{f.name.replace('_', '-')}", default=None, help=f.metadata["help"], **extra)


def configs_from_args(args: argparse.Namespace) -> list:
    """The TrainConfig of each model asked for: its own defaults, then the options given."""
    from facecore.data.transforms import AugmentConfig
    from facecore.models.registry import get_model_spec, list_models
    from facecore.train.config import TrainConfig, setting_fields

    models = list_models(compared=True) if args.model == ["all"] else args.model
    configs = []
    for name in models:
        overrides = {f.name: getattr(args, f.name) for f in setting_fields()}
        if not get_model_spec(name).pretrained:
            overrides["trainable_from"] = None  # a freeze depth is for the pretrained models
        if args.run_name and len(models) > 1:
            overrides["run_name"] = f"{args.run_name}-{name}"
        if args.no_augment:  # before for_model checks the config: cached features need no augment
            overrides["augment"] = AugmentConfig.none()
        elif args.augment:
            overrides["augment"] = AugmentConfig()
        configs.append(TrainConfig.for_model(name, args.dataset, **overrides))
    return configs


def _launch_options(args: argparse.Namespace) -> dict:
    """torchrun's options for training on several machines (empty on one)."""
    if args.nnodes == 1 and not args.rdzv_endpoint:
        return {}
    if args.background:
        raise ConfigError("Training on several machines runs in the foreground: drop --background.")
    if args.rdzv_endpoint is None and args.master_addr is None:
        raise ConfigError(
            "With --nnodes > 1 give rank 0's --master-addr (and --master-port), or --rdzv-endpoint."
        )
    return {
        "nnodes": args.nnodes, "node_rank": args.node_rank, "master_addr": args.master_addr,
        "master_port": args.master_port, "rdzv_endpoint": args.rdzv_endpoint,
    }


def cmd_train(args: argparse.Namespace) -> int:
    from facecore import workspace
    from facecore.train import jobs
    from facecore.train.callbacks import ProgressPrinter
    from facecore.train.hardware import set_threads
    from facecore.train.loop import Trainer, train
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
        print_json(summaries)
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
    from facecore.recognize.jobs import list_jobs

    rows = [job.to_dict() for job in list_jobs()]
    if args.json:
        print_json(rows)
    elif not rows:
        print("No jobs yet. Start one: python -m facecore train --dataset NAME --model all --background")
    for job in [] if args.json else rows:
        print(_job_line(job))
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    import time

    from facecore.recognize.jobs import ACTIVE, read_job
    from facecore.train.jobs import read_log

    shown = 0
    while True:
        job = read_job(args.id).to_dict()
        log = read_log(args.id, tail=100000).splitlines()
        if args.json and not args.follow:
            print_json({**job, "log": "\n".join(log[-50:])})
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
    from facecore.train.hardware import set_threads
    from facecore.train.jobs import run_job

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
    from facecore.recognize.runs import list_runs

    rows = [run.to_dict() for run in list_runs(dataset=args.dataset, group=args.group)]
    if args.json:
        print_json(rows)
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
    from facecore.recognize.runs import run_path
    from facecore.train.runs import delete_run

    path = run_path(args.run)
    if refused_without_yes(args, f"run {args.run!r} ({path})"):
        return 2
    delete_run(args.run)
    print(f"Deleted run {args.run!r} ({path}).")
    return 0


def cmd_runs_add(args: argparse.Namespace) -> int:
    from facecore.train.addrun import add_run

    path = add_run(Path(args.file), name=args.name)
    print(f"Added run {path.name!r} ({path}).")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = command(
        sub, "train", cmd_train, "train one model, or all three, on a dataset's saved split", json=True
    )
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--model",
        action="append",
        required=True,
        help="model name (repeat for several), or 'all' for the three compared models",
    )
    ddp = p.add_argument_group("several processes or machines (DDP under torchrun)")
    add_config_arguments(p, groups={"ddp": ddp})
    p.add_argument("--threads", type=int, help="torch CPU threads (default: every core)")
    aug = p.add_mutually_exclusive_group()
    aug.add_argument("--augment", action="store_true", help="every online augmentation on")
    aug.add_argument("--no-augment", action="store_true", help="every online augmentation off")
    p.add_argument("--resume", metavar="RUN", help="resume this run folder (under models/) from last.pt")
    p.add_argument("--background", action="store_true", help="run as a background job")
    ddp.add_argument("--nnodes", type=int, default=1, help="machines taking part (default 1)")
    ddp.add_argument("--node-rank", type=int, default=0, help="this machine's number, 0 to nnodes-1")
    ddp.add_argument("--master-addr", help="rank 0's machine: its address, reachable by the others")
    ddp.add_argument("--master-port", type=int, help="a free port on rank 0's machine (default 29500)")
    ddp.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                     help="c10d rendezvous instead of --master-addr (elastic; the same on every machine)")

    jobs = sub.add_parser("jobs", help="background training jobs")
    jsub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command(jsub, "list", cmd_jobs_list, "list jobs, newest first", json=True)
    p = command(jsub, "show", cmd_jobs_show, "a job's status and log", json=True)
    p.add_argument("id")
    p.add_argument("--follow", action="store_true", help="keep printing the log until the job ends")
    p = command(jsub, "stop", cmd_jobs_stop, "stop a job (the last finished epoch is kept)")
    p.add_argument("id")
    p.add_argument("--timeout", type=float, default=120.0)
    p = command(jsub, "delete", cmd_jobs_delete, "delete a finished job's folder (its runs stay)")
    p.add_argument("id")
    p = command(jsub, "run", cmd_jobs_run, argparse.SUPPRESS)
    p.add_argument("id")
    runs = sub.add_parser("runs", help="trained runs: list them with their scores, add or delete one")
    rsub = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = command(
        rsub, "list", cmd_runs_list,
        "runs, newest first, with their best validation scores and test accuracy", json=True,
    )
    p.add_argument("--dataset", help="only runs on this dataset")
    p.add_argument("--group", help="only runs of this comparison group")
    p = command(rsub, "delete", cmd_runs_delete, "delete a run folder (refused while a job trains it)")
    p.add_argument("run", metavar="RUN", help="run name (a folder under FACECORE_HOME/models)")
    p.add_argument("--yes", action="store_true", help="really delete")
    p = command(
        rsub, "add", cmd_runs_add, "add a trained model from a checkpoint file (checked before it is kept)"
    )
    p.add_argument("file", metavar="FILE", help="a facecore checkpoint (.pt), e.g. another machine's best.pt")
    p.add_argument("--name", help="run name (default: the checkpoint's own, else MODEL-added)")
