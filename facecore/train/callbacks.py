"""The observers of a training run: what the loop notifies, never waits on, and never draws.

:class:`~facecore.train.loop.Trainer` calls each :class:`Callback`'s hooks (rank 0 only, with
several processes). :class:`CSVLogger` writes ``metrics.csv`` and ``per_class_f1.csv`` (every run
has it); :class:`ProgressPrinter` prints one line per epoch (the CLI and the job logs); a job adds
its own progress writer (:mod:`facecore.train.jobs`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from facecore import workspace
from facecore.train.config import TrainConfig

#: The columns of ``metrics.csv``, one row per epoch.
METRIC_FIELDS = [
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_f1",
    "lr",
    "epoch_seconds",
    "images_per_s",
]


class TrainerView(Protocol):
    """What a callback reads of the :class:`~facecore.train.loop.Trainer` that calls it."""

    config: TrainConfig
    run_dir: Path
    classes: list[str]
    cached: bool

    def describe(self) -> str: ...


class Callback:
    """Observers of a run. Every hook is optional; the loop never waits on a UI."""

    def on_train_start(self, trainer: TrainerView) -> None: ...
    def on_batch_end(self, trainer: TrainerView, batch: int, batches: int, loss: float) -> None: ...
    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, Any]) -> None: ...
    def on_train_end(self, trainer: TrainerView, summary: dict[str, Any]) -> None: ...


class CSVLogger(Callback):
    """Appends each epoch to ``metrics.csv`` and per-class validation F1 to ``per_class_f1.csv``."""

    def on_epoch_end(self, trainer: TrainerView, metrics: dict[str, Any]) -> None:
        _append_csv(trainer.run_dir / "metrics.csv", METRIC_FIELDS, {k: metrics[k] for k in METRIC_FIELDS})
        per_class = {"epoch": metrics["epoch"], **metrics["per_class_f1"]}
        _append_csv(trainer.run_dir / "per_class_f1.csv", ["epoch", *trainer.classes], per_class)


def _append_csv(path: Path, columns: Sequence[str], row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        fh.flush()


def truncate_csv(path: Path, epochs: int) -> None:
    """Drop rows past ``epochs`` (an epoch that started but never finished before a resume)."""
    if not path.is_file():
        return
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= epochs]
    )
    workspace.atomic_write_text(path, buf.getvalue())


class ProgressPrinter(Callback):
    """One line per epoch on stdout (what the CLI and job logs show)."""

    def on_train_start(self, trainer: TrainerView) -> None:
        print(f"run {trainer.run_dir.name}: {trainer.describe()}", flush=True)

    def on_epoch_end(self, trainer: TrainerView, m: dict[str, Any]) -> None:
        print(
            f"epoch {m['epoch']}/{trainer.config.epochs}  train loss {m['train_loss']:.4f} "
            f"acc {m['train_acc']:.3f}  val loss {m['val_loss']:.4f} acc {m['val_acc']:.3f} "
            f"F1 {m['val_f1']:.3f}  {m['epoch_seconds']:.1f}s {m['images_per_s']:.1f} img/s",
            flush=True,
        )
