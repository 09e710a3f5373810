"""Trained runs: list them with their final scores, and delete one safely.

A run is a folder ``<FACECORE_HOME>/models/<run>/`` written by :class:`facecore.train.loop.Trainer`.
:func:`list_runs` (a :class:`Run` per run, the dashboard's and the command line's one list) reads
each run's ``summary.json`` (a finished run), else its ``config.json`` and
``metrics.csv`` (a run still training, stopped or failed), and the test evaluation
``eval_test/metrics.json`` when one exists. :func:`delete_run` refuses a run that a queued or
running job trains, resumes or may be setting up, and removes the folder by first renaming it
aside, so a half-deleted run is never listed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecore import workspace
from facecore.errors import RunError
from facecore.mode import require_writable
from facecore.models.registry import get_model_spec
from facecore.models.weights import weights_status
from facecore.train.config import TrainConfig
from facecore.train.jobs import list_jobs
from facecore.train.loop import read_metrics

#: The three models the study compares, in the order they are trained and shown.

#: What :func:`list_runs` reports for each run (``state``: finished, training, stopped, empty).
RUN_FIELDS = [
    "run", "model", "dataset", "group", "state", "job", "epochs_run", "epochs", "best_epoch",
    "val_loss", "val_acc", "val_f1", "test_acc", "test_f1", "feature_cache", "started", "updated",
]


@dataclass
class Run:
    """One run as :func:`list_runs` reports it; a score the run does not have yet is None.

    ``state``: finished, training (a queued or running job trains or resumes it: ``job``),
    stopped or empty. ``val_*`` are the scores of the best epoch (the checkpoint kept as
    ``best.pt``), ``test_*`` those of its test evaluation; ``started`` and ``updated`` are file
    times. Not in :meth:`to_dict`: ``ready`` (``best.pt`` and ``summary.json`` are there, so the
    run recognises faces) and ``threshold`` (its Unknown threshold calibrated on validation).
    """

    run: str
    path: str
    model: str | None = None
    dataset: str | None = None
    group: str = ""
    state: str = "empty"
    job: str | None = None
    epochs_run: int = 0
    epochs: int | None = None
    best_epoch: int | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    val_f1: float | None = None
    test_acc: float | None = None
    test_f1: float | None = None
    feature_cache: bool | None = None
    started: float | None = None
    updated: float | None = None
    ready: bool = False
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``runs list --json``: the keys of :data:`RUN_FIELDS`, then ``path``."""
        return {**{k: getattr(self, k) for k in RUN_FIELDS}, "path": self.path}


def run_path(name: str) -> Path:
    """The folder of run ``name``, refusing names that are not one folder directly under ``models/``."""
    if not name or name != Path(name).name or name.startswith(".") or name in ("..", "."):
        raise RunError(f"{name!r} is not a run name (a folder directly under {workspace.models_dir()}).")
    path = workspace.models_dir() / name
    if not path.is_dir():
        raise RunError(f"No run {name!r} under {workspace.models_dir()}.")
    return path


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _best_row(rows: list[dict[str, float]], monitor: str) -> dict[str, float] | None:
    """The epoch the trainer keeps as best.pt: lowest val loss or highest val F1, earliest on ties."""
    if not rows:
        return None
    if monitor == "val_f1":
        return max(rows, key=lambda r: (r["val_f1"], -r["epoch"]))
    return min(rows, key=lambda r: (r["val_loss"], r["epoch"]))


def _active_runs() -> dict[str, str]:
    """Run name -> id of the queued or running job that trains or resumes it."""
    busy: dict[str, str] = {}
    for job in list_jobs():
        if not job.active:
            continue
        names = [*job.runs, job.resume_run, job.progress.run if job.progress else None]
        for name in names:
            if name:
                busy[name] = job.id
    return busy


def read_run(path: Path, busy: dict[str, str] | None = None) -> Run:
    """One run's record; missing scores are None. ``busy``: run name -> id of the job training it
    (default: read from the jobs)."""
    busy = _active_runs() if busy is None else busy
    summary = _read_json(path / "summary.json")
    config = _read_json(path / "config.json") or {}
    rows = read_metrics(path) if (path / "metrics.csv").is_file() else []
    test = _read_json(path / "eval_test" / "metrics.json") or {}
    record: dict[str, Any] = {k: None for k in RUN_FIELDS}
    record.update(
        run=path.name,
        path=str(path),
        model=config.get("model"),
        dataset=config.get("dataset"),
        group=config.get("group") or "",
        epochs=config.get("epochs"),
        epochs_run=len(rows),
        job=busy.get(path.name),
        test_acc=test.get("accuracy"),
        test_f1=test.get("macro_f1"),
        started=_mtime(path / "config.json") or _mtime(path),
        updated=max(filter(None, (_mtime(path / f) for f in ("summary.json", "metrics.csv"))), default=None),
    )
    best = _best_row(rows, config.get("monitor", "val_loss"))
    if summary:
        record.update(
            model=summary.get("model", record["model"]),
            dataset=summary.get("dataset", record["dataset"]),
            group=summary.get("group", record["group"]) or "",
            epochs_run=summary.get("epochs_run", record["epochs_run"]),
            best_epoch=summary.get("best_epoch"),
            feature_cache=summary.get("feature_cache"),
        )
        best = summary.get("best") or best
    elif best:
        record["best_epoch"] = int(best["epoch"])
    if best:
        record.update(val_loss=best.get("val_loss"), val_acc=best.get("val_acc"), val_f1=best.get("val_f1"))
    if record["job"]:
        record["state"] = "training"
    elif summary:
        record["state"] = "finished"
    else:
        record["state"] = "stopped" if rows else "empty"
    calibrated = (summary or {}).get("threshold")
    return Run(
        **record,
        ready=summary is not None and (path / "best.pt").is_file(),
        threshold=calibrated.get("threshold") if isinstance(calibrated, dict) else None,
    )


def list_runs(*, dataset: str | None = None, group: str | None = None) -> list[Run]:
    """Every run under ``models/``, newest first, optionally only those of ``dataset`` or ``group``."""
    root = workspace.models_dir()
    if not root.is_dir():
        return []
    busy = _active_runs()
    runs = [
        read_run(p, busy)
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in workspace.RESERVED_RUN_NAMES
    ]
    runs = [
        r for r in runs
        if (dataset is None or r.dataset == dataset) and (group is None or r.group == group)
    ]
    return sorted(runs, key=lambda r: (r.started or 0.0, r.run), reverse=True)


def run_metrics(name: str) -> list[dict[str, float]]:
    """The rows of run ``name``'s ``metrics.csv`` (one per epoch; none yet: empty)."""
    return read_metrics(workspace.models_dir() / name)


def _setting_up(path: Path) -> str | None:
    """The id of a running job that may be creating ``path``: a run it has not registered yet.

    A job's trainer creates its run folder before it records the run in ``job.json`` (building
    the model, and computing cached features, can take a while in between).
    """
    if (path / "summary.json").is_file():
        return None
    for job in list_jobs():
        if job.status != "running" or (_mtime(path) or 0.0) < (job.started or 0.0) - 1.0:
            continue
        for cfg in job.configs:
            base = cfg.get("run_name") or f"{cfg.get('dataset')}-{cfg.get('model')}-"
            if path.name.startswith(workspace.safe_name(base, what="run name")):
                return job.id
    return None


def delete_run(name: str) -> Path:
    """Delete run ``name`` (its checkpoints, metrics and evaluations) and return the folder it was.

    Refuses while a queued or running job trains or resumes it, or while a running job may be
    creating it; stop the job first. The folder is renamed aside before it is removed, so a
    half-deleted run is never listed.
    """
    require_writable("Deleting a run")
    path = run_path(name)
    job = _active_runs().get(name) or _setting_up(path)
    if job:
        raise RunError(
            f"Run {name!r} is being trained by job {job}; stop the job first "
            f"(python -m facecore jobs stop {job})."
        )
    aside = path.parent / f".deleting-{name}-{uuid.uuid4().hex[:8]}"
    os.rename(path, aside)
    try:
        shutil.rmtree(aside)
    except OSError as exc:
        raise RunError(f"Run {name!r} is no longer listed, but {aside} could not be removed: {exc}") from exc
    return path


def weights_missing(model: str) -> str | None:
    """Why ``model`` cannot train on this machine (its ImageNet weights file is absent), else None."""
    if not get_model_spec(model).pretrained:
        return None
    status = weights_status(model)
    if status["available"]:
        return None
    return (
        f"The ImageNet weights for {model} are not on this machine. Run `python -m facecore weights "
        f"download` where there is internet, or download {status['url']} and place it at "
        f"{status['path']}."
    )


def trainable_configs(configs: list[TrainConfig]) -> tuple[list[TrainConfig], dict[str, str]]:
    """Split ``configs`` into those that can train here and, by model, why the others cannot."""
    kept, skipped = [], {}
    for cfg in configs:
        reason = weights_missing(cfg.model)
        if reason:
            skipped[cfg.model] = reason
        else:
            kept.append(cfg)
    return kept, skipped


__all__ = [
    "RUN_FIELDS", "Run", "RunError", "delete_run", "list_runs", "read_run", "run_metrics", "run_path",
    "trainable_configs", "weights_missing",
]
