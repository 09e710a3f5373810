"""Trained runs, read: list them with their final scores.

A run is a folder ``<FACECORE_HOME>/models/<run>/`` written by :class:`facecore.train.loop.Trainer`.
:func:`list_runs` (a :class:`Run` per run, the dashboard's and the command line's one list) reads
each run's ``summary.json`` (a finished run), else its ``config.json`` and
``metrics.csv`` (a run still training, stopped or failed), and the test evaluation
``eval_test/metrics.json`` when one exists; the job records (:mod:`facecore.recognize.jobs`) say
which runs are being trained. Deleting a run, and what can train here, are :mod:`facecore.train.runs`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecore import workspace
from facecore.errors import RunError
from facecore.recognize.jobs import list_jobs

#: What :func:`list_runs` reports for each run (``state``: finished, training, stopped, empty).
RUN_FIELDS = [
    "run",
    "model",
    "dataset",
    "group",
    "state",
    "job",
    "epochs_run",
    "epochs",
    "best_epoch",
    "val_loss",
    "val_acc",
    "val_f1",
    "test_acc",
    "test_f1",
    "feature_cache",
    "started",
    "updated",
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
        r for r in runs if (dataset is None or r.dataset == dataset) and (group is None or r.group == group)
    ]
    return sorted(runs, key=lambda r: (r.started or 0.0, r.run), reverse=True)


def run_metrics(name: str) -> list[dict[str, float]]:
    """The rows of run ``name``'s ``metrics.csv`` (one per epoch; none yet: empty)."""
    return read_metrics(workspace.models_dir() / name)


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The rows of ``metrics.csv`` as floats (epoch as int)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


__all__ = ["RUN_FIELDS", "Run", "list_runs", "read_metrics", "read_run", "run_metrics", "run_path"]
