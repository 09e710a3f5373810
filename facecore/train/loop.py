"""The training loop: small and readable, observed through callbacks, knowing no UI.

``Trainer(config).fit()`` trains one model on one dataset's saved split and writes
``models/<run>/``: ``config.json``, ``metrics.csv`` (one row per epoch), ``per_class_f1.csv``,
``best.pt`` and ``last.pt``. What it is made of, one idea a module: the epoch and the evaluation
(:mod:`~facecore.train.epoch`, metric dicts), the observers (:mod:`~facecore.train.callbacks`),
precision and threads (:mod:`~facecore.train.hardware`), the optimizer and schedule
(:mod:`~facecore.train.optim`), cached features (:mod:`~facecore.train.features`), the Unknown
threshold (:mod:`~facecore.train.calibrate`) and several processes (:mod:`~facecore.train.distributed`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from facecore import workspace
from facecore.data.dataset import FaceDataset, load_dataset
from facecore.data.loaders import BatchTransform, FaceCrops, batch_loader, default_workers
from facecore.data.transforms import (
    AugmentConfig,
    eval_transform,
    is_deterministic,
    train_transform,
)
from facecore.device import resolve_device, tune_allocator
from facecore.errors import ConfigError, TrainingStopped
from facecore.mode import require_writable
from facecore.models.checkpoint import load_checkpoint, save_checkpoint
from facecore.models.registry import count_parameters, create_model, get_model_spec
from facecore.models.resnet import split_frozen
from facecore.train import distributed
from facecore.train.calibrate import calibrate_open_set, store_calibration
from facecore.train.callbacks import Callback, CSVLogger, truncate_csv
from facecore.train.config import TrainConfig
from facecore.train.epoch import eval_metrics, evaluate, train_one_epoch
from facecore.train.features import trunk_features, use_feature_cache
from facecore.train.hardware import autocast_for
from facecore.train.optim import make_optimizer, make_scheduler, step_scheduler
from facecore.train.runs import new_run_dir
from facecore.train.state import TrainState, epoch_payload, load_for_resume, resume_payload


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Trains ``config.model`` on ``config.dataset``'s saved split into ``run_dir``."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        run_dir: Path | None = None,
        callbacks: Sequence[Callback] = (),
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        require_writable("Training")
        config.validate()
        tune_allocator()
        self.config = config
        self.dataset: FaceDataset = load_dataset(config.dataset)
        self.dataset.check_trainable()
        self.classes = self.dataset.classes
        self.spec = get_model_spec(config.model)
        self.device = resolve_device(config.device)
        #: this process's place in a torchrun group (one process: rank 0 of 1)
        self.dist = distributed.context(self.device.type)
        self.device = distributed.device_for(self.device, self.dist)
        if self.dist.enabled and config.batch_size % self.dist.world_size:
            raise ConfigError(
                f"The batch size {config.batch_size} is the global batch: it must divide evenly over "
                f"{self.dist.world_size} processes."
            )
        self.autocast, self.amp_name = autocast_for(self.device, config.amp)
        # channels_last pays off on GPUs; on CPUs it measured 2x slower for these models.
        self.channels_last = config.channels_last == "on" or (
            config.channels_last == "auto" and self.device.type == "cuda"
        )
        # only rank 0 writes and reports; the others train and evaluate their shares
        main = self.dist.is_main
        mine = [CSVLogger(), *(cb for cb in callbacks if not isinstance(cb, CSVLogger))]
        self.callbacks = mine if main else []
        self.should_stop = should_stop if main else (lambda: False)
        if run_dir:
            self.run_dir = Path(run_dir)
        else:  # rank 0 claims a new run folder and tells the others its name
            name = new_run_dir(config).name if main else None
            self.run_dir = workspace.models_dir() / distributed.broadcast(name, self.dist)
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cached = use_feature_cache(config, self.spec)
        self.state = TrainState()

    def describe(self) -> str:
        """One line: model, data, epochs, batch, optimizer, device and precision."""
        c = self.config
        fast = ", frozen layers computed once (cached features)" if self.cached else ""
        return (
            f"{c.model} on {c.dataset} ({len(self.classes)} classes), {c.epochs} epochs, "
            f"batch {c.batch_size}, "
            f"{c.optimizer} lr {c.lr:g}, device {self.device.type}, amp {self.amp_name}{fast}"
        )

    # -- data and model
    def _build(self) -> None:
        c = self.config
        seed_everything(c.seed)
        self.model = create_model(c.model, num_classes=len(self.classes), trainable_from=c.trainable_from)
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        cache_dir = self.dataset.path / ".cache"
        self.train_set: Any = FaceCrops(
            self.dataset.items("train"),
            eval_transform(self.spec) if self.cached else train_transform(self.spec, c.augment),
            cache_dir=cache_dir,
        )
        self.val_set: Any = FaceCrops(
            self.dataset.items("val"), eval_transform(self.spec), cache_dir=cache_dir
        )
        # batches are gathered and transformed whole (data.batch_loader): train with c.augment
        # (the eval transform when the features are cached), evaluate with the eval transform
        self.batch_transforms = {
            True: BatchTransform(self.spec, c.augment),
            False: BatchTransform(self.spec, AugmentConfig.none()),
        }
        random_augment = not is_deterministic(c.augment)
        self.workers = c.workers if c.workers >= 0 else default_workers(random_augment, self.device.type)
        self.trainable = self.model
        self.cache_seconds = 0.0
        if self.cached:
            self._cache_features()
        # DDP wraps the part that trains (the head, with cached features); checkpoints save the
        # unwrapped self.model, so they load in one process and resume with any number of ranks
        self.ddp = distributed.wrap(self.trainable, self.device, self.dist)
        self.optimizer = make_optimizer(c, [p for p in self.model.parameters() if p.requires_grad])
        self.scheduler = make_scheduler(c, self.optimizer)
        use_scaler = self.device.type == "cuda" and self.amp_name == "fp16"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def _cache_features(self) -> None:
        """Swap the image sets for the frozen trunk's outputs; the head is what trains."""
        parts = split_frozen(self.model)
        if parts is None:
            self.cached = False
            return
        trunk, self.trainable = parts
        t0 = time.perf_counter()
        kw = {"device": self.device, "autocast": self.autocast, "channels_last": self.channels_last}
        eval_batches = self.batch_transforms[False]
        self.train_set = trunk_features(trunk, self.train_set, eval_batches, ctx=self.dist, **kw)
        self.val_set = trunk_features(trunk, self.val_set, eval_batches, ctx=self.dist, **kw)
        self.cache_seconds = time.perf_counter() - t0

    def _loader(self, data, *, train: bool, epoch: int, order: Sequence[int] | None = None) -> DataLoader:
        c = self.config
        batch_size = c.batch_size if train else max(c.batch_size, 64)
        seed, pin = c.seed * 1000 + epoch, self.device.type == "cuda"
        if train and self.dist.enabled:
            # DistributedSampler's epoch order (its seed + epoch is this seed: one rank would get
            # exactly the single-process order); each rank gets its share of every global batch
            order = distributed.shard_order(
                len(data), ctx=self.dist, seed=c.seed * 1000, epoch=epoch, shuffle=True
            )
            batch_size //= self.dist.world_size
            seed = seed * 1009 + self.dist.rank  # each rank's augmentations differ
        crops = isinstance(data, FaceCrops)  # else cached features: tensors, gathered in this process
        return batch_loader(
            data,
            self.batch_transforms[train] if crops else None,
            batch_size=batch_size,
            shuffle=train and order is None,
            workers=self.workers if train and crops else 0,
            seed=seed,
            pin_memory=pin,
            order=order,
        )

    # -- the loop
    def fit(self, *, resume: bool = False) -> dict[str, Any]:
        """Train (or resume) to ``config.epochs``; return the run summary."""
        self._build()
        if resume:
            self._resume()
        if self.dist.is_main:
            (self.run_dir / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
        for cb in self.callbacks:
            cb.on_train_start(self)
        c = self.config
        t_start = time.perf_counter()
        stopped_early = False
        for epoch in range(self.state.epoch + 1, c.epochs + 1):
            metrics = self._epoch(epoch)
            self.state.epoch = epoch
            self.state.history.append({k: v for k, v in metrics.items() if k != "per_class_f1"})
            improved = self._improved(metrics)  # the same on every rank: the metrics are gathered
            if self.dist.is_main:
                self._save("last.pt", metrics, full=True)
                if improved:
                    self._save("best.pt", metrics)
            for cb in self.callbacks:
                cb.on_epoch_end(self, metrics)
            if c.early_stopping and self.state.stale >= c.early_stopping:
                stopped_early = True
                break
        return self._finish(time.perf_counter() - t_start, stopped_early)

    def _stop_if_asked(self, message: str) -> None:
        """Raise :class:`TrainingStopped` on every rank together when a stop was asked for."""
        if distributed.any_rank(self.should_stop(), self.dist):
            raise TrainingStopped(message)

    def _epoch(self, epoch: int) -> dict[str, Any]:
        """Train and validate one epoch; its metrics (a row of metrics.csv, plus per-class F1)."""
        c = self.config
        torch.manual_seed(c.seed * 1000 + epoch)
        loader = self._loader(self.train_set, train=True, epoch=epoch)

        def on_batch(i: int, n: int, loss: float) -> None:
            for cb in self.callbacks:
                cb.on_batch_end(self, i, n, loss)
            self._stop_if_asked(f"stopped during epoch {epoch}; kept epoch {epoch - 1}")

        self._stop_if_asked(f"stopped before epoch {epoch}; kept epoch {epoch - 1}")
        t_epoch = time.perf_counter()
        tr = train_one_epoch(
            self.ddp,
            loader,
            self.optimizer,
            device=self.device,
            autocast=self.autocast,
            scaler=self.scaler,
            channels_last=self.channels_last and not self.cached,
            on_batch=on_batch,
        )
        if self.dist.enabled:  # the epoch's loss and accuracy over every rank's images
            loss_sum, correct, seen = distributed.all_sum(
                [tr["loss"] * tr["images"], tr["accuracy"] * tr["images"], tr["images"]], self.dist
            )
            tr.update(loss=loss_sum / max(seen, 1), accuracy=correct / max(seen, 1), images=int(seen))
        va = self._evaluate(self.val_set)
        lr = self.optimizer.param_groups[0]["lr"]
        step_scheduler(self.scheduler, va["loss"])
        # the whole epoch: training, validation and (first epoch) computing the cached features
        seconds = time.perf_counter() - t_epoch + (self.cache_seconds if epoch == 1 else 0.0)
        return {
            "epoch": epoch,
            "train_loss": tr["loss"],
            "train_acc": tr["accuracy"],
            "val_loss": va["loss"],
            "val_acc": va["accuracy"],
            "val_f1": va["macro_f1"],
            "lr": lr,
            "epoch_seconds": seconds,
            "images_per_s": tr["images"] / max(tr["seconds"], 1e-9),
            "per_class_f1": dict(zip(self.classes, va["per_class_f1"], strict=True)),
        }

    def _evaluate(self, data) -> dict[str, Any]:
        """Validation metrics; with several ranks each evaluates a share and the predictions are
        gathered, so the metrics equal a single-process evaluation of the same weights."""
        mine = distributed.strided(len(data), self.dist) if self.dist.enabled else None
        distributed.sync_buffers(self.trainable, self.dist)
        va = evaluate(
            self.trainable,
            self._loader(data, train=False, epoch=0, order=mine),
            device=self.device,
            num_classes=len(self.classes),
            autocast=self.autocast,
            channels_last=self.channels_last and not self.cached,
        )
        if not self.dist.enabled:
            return va
        (loss_sum,) = distributed.all_sum([va["loss"] * len(va["labels"])], self.dist)
        rows = distributed.gather(mine, {"probs": va["probs"], "labels": va["labels"]}, self.dist)
        return eval_metrics(rows["probs"], rows["labels"], loss_sum, len(self.classes))

    def _improved(self, m: dict[str, Any]) -> bool:
        return self.state.improved(m["val_loss"] if self.config.monitor == "val_loss" else -m["val_f1"])

    # -- checkpoints
    def _save(self, name: str, metrics: dict[str, Any], *, full: bool = False) -> None:
        payload = epoch_payload(self.config, self.spec, self.dataset, self.model, metrics)
        if full:
            payload |= resume_payload(self.optimizer, self.scheduler, self.state)
        save_checkpoint(self.run_dir / name, payload)

    def _resume(self) -> None:
        ckpt = load_for_resume(self.run_dir / "last.pt", self.config.model, self.classes)
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.state = TrainState.from_checkpoint(ckpt)
        truncate_csv(self.run_dir / "metrics.csv", self.state.epoch)
        truncate_csv(self.run_dir / "per_class_f1.csv", self.state.epoch)

    # -- the end
    def _finish(self, seconds: float, stopped_early: bool) -> dict[str, Any]:
        """Calibrate the unknown threshold on validation, store it, and write summary.json
        (rank 0; the other ranks wait for it and return its summary)."""
        summary = self._finish_main(seconds, stopped_early) if self.dist.is_main else None
        return distributed.broadcast(summary, self.dist)

    def _finish_main(self, seconds: float, stopped_early: bool) -> dict[str, Any]:
        best = load_checkpoint(self.run_dir / "best.pt")
        self.model.load_state_dict(best["state_dict"])
        c = self.config
        open_set = calibrate_open_set(
            self.model, self.dataset, self.spec, self.device, batch_size=c.batch_size, target_far=c.target_far
        )
        suggestion, centroids = open_set.pop("suggestion"), open_set.pop("centroids")
        store_calibration(self.run_dir, open_set["score"], suggestion, centroids)
        summary = self._summary(best, suggestion, open_set, seconds, stopped_early)
        workspace.atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
        for cb in self.callbacks:
            cb.on_train_end(self, summary)
        return summary

    def _summary(
        self,
        best: dict[str, Any],
        suggestion: dict[str, Any],
        open_set: dict[str, Any],
        seconds: float,
        stopped_early: bool,
    ) -> dict[str, Any]:
        """summary.json: the run, its best epoch, the Unknown threshold, and how it trained."""
        total, trainable = count_parameters(self.model)
        prior = sum(h["epoch_seconds"] for h in self.state.history)
        return {
            "run": self.run_dir.name,
            "model": self.config.model,
            "dataset": self.dataset.name,
            "group": self.config.group,
            "classes": self.classes,
            "epochs_run": self.state.epoch,
            "stopped_early": stopped_early,
            "best_epoch": int(best["epoch"]),
            "best": best["metrics"],
            "threshold": suggestion,
            "open_set": open_set,
            "train_seconds": round(max(seconds, prior), 2),
            "feature_cache": self.cached,
            "feature_cache_seconds": round(self.cache_seconds, 2),
            "params_total": total,
            "params_trainable": trainable,
            "device": self.device.type,
            "amp": self.amp_name,
            "workers": self.workers,
            "threads": torch.get_num_threads(),
            "world_size": self.dist.world_size,
        }


def train(
    config: TrainConfig,
    *,
    callbacks: Sequence[Callback] = (),
    resume_dir: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    launch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one run (or resume the run in ``resume_dir``) and return its summary.

    With ``config.nproc`` > 1 (and not already a torchrun rank) the run is trained by that many
    processes under torchrun (:func:`facecore.train.distributed.launch`); ``launch`` options go there
    (several machines). Only the ranks' own progress lines and rank 0's files report on it then.
    """
    if (config.nproc > 1 or launch) and not distributed.under_torchrun():
        require_writable("Training")
        config.validate()
        resume = resume_dir is not None
        options = launch or {}
        return distributed.launch(
            config, run_dir=resume_dir, resume=resume, should_stop=should_stop, **options
        )
    trainer = Trainer(config, run_dir=resume_dir, callbacks=callbacks, should_stop=should_stop)
    return trainer.fit(resume=resume_dir is not None)


__all__ = ["Trainer", "seed_everything", "train"]
