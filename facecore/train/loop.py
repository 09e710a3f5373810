"""The training loop: small and readable, observed through callbacks, knowing no UI.

``Trainer(config).fit()`` trains one model on one dataset's saved split and writes
``models/<run>/``: ``config.json``, ``metrics.csv`` (one row per epoch), ``per_class_f1.csv``,
``best.pt`` and ``last.pt``. ``train_one_epoch`` and ``evaluate`` return metric dicts.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from facecore import workspace
from facecore.constants import UNKNOWN
from facecore.data.dataset import FaceDataset, load_dataset
from facecore.data.loaders import BatchTransform, FaceCrops, batch_loader, default_workers, make_loader
from facecore.data.transforms import (
    AugmentConfig,
    eval_transform,
    is_deterministic,
    preprocessing_dict,
    train_transform,
)
from facecore.device import resolve_device, tune_allocator
from facecore.errors import CheckpointError, FacecoreError, TrainingStopped
from facecore.mode import require_writable
from facecore.models.checkpoint import load_checkpoint, save_checkpoint
from facecore.models.registry import count_parameters, create_model, get_model_spec
from facecore.models.resnet import split_frozen
from facecore.recognize.models import predict_outputs
from facecore.recognize.openset import (
    choose_score,
    class_centroids,
    open_set_scores,
    suggest_threshold,
    sweep_scores,
    unknown_scores,
)
from facecore.recognize.runs import read_metrics  # re-exported: reading runs sits in facecore.recognize
from facecore.train import distributed
from facecore.train.config import TrainConfig

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



# --- device and precision, resolved once ----------------------------------------------------------


def cpu_has_fast_bf16() -> bool:
    """True when the CPU runs bf16 matrix work natively (AVX512-BF16 or AMX)."""
    cap = torch.backends.cpu.get_cpu_capability().lower()
    return "amx" in cap or "avx512_bf16" in cap or "avx512bf16" in cap


def autocast_for(
    device: torch.device, amp: str
) -> tuple[Callable[[], contextlib.AbstractContextManager], str]:
    """A context factory for mixed precision and its name (``off``, ``bf16``, ``fp16``)."""
    use = amp == "on" or (
        amp == "auto" and (device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()))
    )
    if not use or device.type == "mps":
        return contextlib.nullcontext, "off"
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.bfloat16
    name = "bf16" if dtype == torch.bfloat16 else "fp16"
    return (lambda: torch.autocast(device.type, dtype=dtype)), name


# --- callbacks ---------------------------------------------------------------------------------


class Callback:
    """Observers of a run. Every hook is optional; the loop never waits on a UI."""

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, batch: int, batches: int, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...
    def on_train_end(self, trainer: Trainer, summary: dict[str, Any]) -> None: ...


class CSVLogger(Callback):
    """Appends each epoch to ``metrics.csv`` and per-class validation F1 to ``per_class_f1.csv``."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
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


class ProgressPrinter(Callback):
    """One line per epoch on stdout (what the CLI and job logs show)."""

    def on_train_start(self, trainer: Trainer) -> None:
        print(f"run {trainer.run_dir.name}: {trainer.describe()}", flush=True)

    def on_epoch_end(self, trainer: Trainer, m: dict[str, Any]) -> None:
        print(
            f"epoch {m['epoch']}/{trainer.config.epochs}  train loss {m['train_loss']:.4f} "
            f"acc {m['train_acc']:.3f}  val loss {m['val_loss']:.4f} acc {m['val_acc']:.3f} "
            f"F1 {m['val_f1']:.3f}  {m['epoch_seconds']:.1f}s {m['images_per_s']:.1f} img/s",
            flush=True,
        )


# --- one epoch, one evaluation --------------------------------------------------------------------


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    on_batch: Callable[[int, int, float], None] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns loss, accuracy, images and seconds."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total_loss, correct, seen = 0.0, 0, 0
    batches = len(loader)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        x, y = _to_device(x, y, device, channels_last)
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = model(x)
            loss = loss_fn(logits.float(), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        n = y.shape[0]
        total_loss += loss.item() * n
        correct += (logits.argmax(1) == y).sum().item()
        seen += n
        if on_batch:
            on_batch(i + 1, batches, total_loss / seen)
    seconds = time.perf_counter() - t0
    return {
        "loss": total_loss / max(seen, 1),
        "accuracy": correct / max(seen, 1),
        "images": seen,
        "seconds": seconds,
    }


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device,
    num_classes: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    channels_last: bool = False,
) -> dict[str, Any]:
    """Loss, accuracy, macro F1, per-class F1, and the softmax probabilities and labels."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, probs, labels = 0.0, [], []
    for x, y in loader:
        x, y = _to_device(x, y, device, channels_last)
        with autocast():
            logits = model(x).float()
        total_loss += loss_fn(logits, y).item()
        probs.append(torch.softmax(logits, 1).cpu())
        labels.append(y.cpu())
    p = torch.cat(probs).numpy() if probs else np.zeros((0, num_classes))
    t = torch.cat(labels).numpy() if labels else np.zeros(0, dtype=int)
    return eval_metrics(p, t, total_loss, num_classes)


def eval_metrics(p: np.ndarray, t: np.ndarray, total_loss: float, num_classes: int) -> dict[str, Any]:
    """:func:`evaluate`'s metrics from the probabilities, labels and summed loss of a whole split."""
    pred = p.argmax(1) if len(p) else np.zeros(0, dtype=int)
    f1 = f1_score(t, pred, labels=list(range(num_classes)), average=None, zero_division=0)
    return {
        "loss": total_loss / max(len(t), 1),
        "accuracy": float((pred == t).mean()) if len(t) else 0.0,
        "macro_f1": float(f1_score(t, pred, average="macro", labels=sorted(set(t)), zero_division=0))
        if len(t)
        else 0.0,
        "per_class_f1": [float(v) for v in f1],
        "probs": p,
        "labels": t,
    }


# --- the trainer ---------------------------------------------------------------------------------


def new_run_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = config.run_name or f"{config.dataset}-{config.model}-{stamp}"
    name = workspace.safe_name(base, what="run name")
    root = workspace.models_dir()
    root.mkdir(parents=True, exist_ok=True)
    path, k = root / name, 1
    while True:  # mkdir is the claim: two trainers starting at once never share a folder
        try:
            if path.name in workspace.RESERVED_RUN_NAMES:
                raise FileExistsError(path)
            path.mkdir()
            return path
        except FileExistsError:
            k += 1
            path = root / f"{name}-{k}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class _State:
    epoch: int = 0
    best: float | None = None
    stale: int = 0
    history: list | None = None


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
            raise FacecoreError(
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
        self.cached = self._use_cache()
        self.state = _State(history=[])

    def _use_cache(self) -> bool:
        c = self.config
        if c.cache_features == "off" or not is_deterministic(c.augment):
            return False
        return c.cache_features == "on" or self.spec.pretrained

    def describe(self) -> str:
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
        self.train_set = FaceCrops(
            self.dataset.items("train"),
            eval_transform(self.spec) if self.cached else train_transform(self.spec, c.augment),
            cache_dir=self.dataset.path / ".cache",
        )
        self.val_set = FaceCrops(
            self.dataset.items("val"), eval_transform(self.spec), cache_dir=self.dataset.path / ".cache"
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
            parts = split_frozen(self.model)
            if parts is None:
                self.cached = False
            else:
                trunk, self.trainable = parts
                t0 = time.perf_counter()
                self.train_set = self._features(trunk, self.train_set)
                self.val_set = self._features(trunk, self.val_set)
                self.cache_seconds = time.perf_counter() - t0
        # DDP wraps the part that trains (the head, with cached features); checkpoints save the
        # unwrapped self.model, so they load in one process and resume with any number of ranks
        self.ddp = distributed.wrap(self.trainable, self.device, self.dist)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = _optimizer(c, params)
        self.scheduler = _scheduler(c, self.optimizer)
        use_scaler = self.device.type == "cuda" and self.amp_name == "fp16"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    @torch.inference_mode()
    def _features(self, trunk: nn.Module, data: FaceCrops) -> TensorDataset:
        """The frozen trunk's output for every image, once (exact: it has no randomness).

        With several ranks each computes its own share of the images, and the shares are gathered.
        """
        trunk.eval()
        out = []
        eval_batches = self.batch_transforms[False]
        mine = distributed.strided(len(data), self.dist)
        loader = batch_loader(
            data, eval_batches, batch_size=64, shuffle=False, workers=0, seed=0, order=mine
        )
        for x, _ in loader:
            x, _ = _to_device(x, torch.zeros(0), self.device, self.channels_last)
            with self.autocast():
                out.append(trunk(x).float().cpu())
        feats = torch.cat(out) if out else torch.zeros(0)
        if self.dist.enabled:
            feats = torch.from_numpy(distributed.gather(mine, {"f": feats.numpy()}, self.dist)["f"])
        return TensorDataset(feats, data.labels)

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
            torch.manual_seed(c.seed * 1000 + epoch)
            loader = self._loader(self.train_set, train=True, epoch=epoch)

            def on_batch(i: int, n: int, loss: float, epoch: int = epoch) -> None:
                for cb in self.callbacks:
                    cb.on_batch_end(self, i, n, loss)
                if distributed.any_rank(self.should_stop(), self.dist):  # every rank stops together
                    raise TrainingStopped(f"stopped during epoch {epoch}; kept epoch {epoch - 1}")

            if distributed.any_rank(self.should_stop(), self.dist):
                raise TrainingStopped(f"stopped before epoch {epoch}; kept epoch {epoch - 1}")
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
            if self.scheduler is not None:
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(va["loss"])
                else:
                    self.scheduler.step()
            # the whole epoch: training, validation and (first epoch) computing the cached features
            seconds = time.perf_counter() - t_epoch + (self.cache_seconds if epoch == 1 else 0.0)
            metrics = {
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
        value = m["val_loss"] if self.config.monitor == "val_loss" else -m["val_f1"]
        if self.state.best is None or value < self.state.best - 1e-9:
            self.state.best, self.state.stale = value, 0
            return True
        self.state.stale += 1
        return False

    def _payload(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "config": self.config.to_dict(),
            "classes": self.classes,
            "preprocessing": preprocessing_dict(self.spec),
            "threshold": 0.5,
            "metrics": {k: v for k, v in metrics.items() if k != "per_class_f1"},
            "epoch": metrics["epoch"],
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "dataset": {"name": self.dataset.name, "split_seed": self.dataset.meta.get("seed")},
        }

    def _save(self, name: str, metrics: dict[str, Any], *, full: bool = False) -> None:
        payload = self._payload(metrics)
        if full:
            payload["optimizer"] = self.optimizer.state_dict()
            payload["scheduler"] = self.scheduler.state_dict() if self.scheduler is not None else None
            payload["trainer"] = {
                "best": self.state.best,
                "stale": self.state.stale,
                "history": self.state.history,
            }
        save_checkpoint(self.run_dir / name, payload)

    def _resume(self) -> None:
        last = self.run_dir / "last.pt"
        ckpt = load_checkpoint(last)
        if ckpt["model"] != self.config.model or ckpt["classes"] != self.classes:
            raise CheckpointError(
                f"{last}: it was trained as another model or on other classes; cannot resume."
            )
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        t = ckpt.get("trainer", {})
        self.state = _State(
            epoch=int(ckpt["epoch"]),
            best=t.get("best"),
            stale=int(t.get("stale", 0)),
            history=list(t.get("history", [])),
        )
        _truncate_csv(self.run_dir / "metrics.csv", self.state.epoch)
        _truncate_csv(self.run_dir / "per_class_f1.csv", self.state.epoch)

    def _finish(self, seconds: float, stopped_early: bool) -> dict[str, Any]:
        """Calibrate the unknown threshold on validation, store it, and write summary.json
        (rank 0; the other ranks wait for it and return its summary)."""
        summary = self._finish_main(seconds, stopped_early) if self.dist.is_main else None
        return distributed.broadcast(summary, self.dist)

    def _finish_main(self, seconds: float, stopped_early: bool) -> dict[str, Any]:
        best = load_checkpoint(self.run_dir / "best.pt")
        self.model.load_state_dict(best["state_dict"])
        open_set = self._open_set()
        suggestion = open_set.pop("suggestion")
        centroids = torch.from_numpy(open_set.pop("centroids")).to(torch.float16)
        for name in ("best.pt", "last.pt"):
            ckpt = load_checkpoint(self.run_dir / name)
            ckpt["threshold"] = float(suggestion["threshold"])
            ckpt["threshold_info"] = {k: v for k, v in suggestion.items() if v is not None}
            ckpt["open_set_score"] = open_set["score"]
            ckpt["centroids"] = centroids
            save_checkpoint(
                self.run_dir / name, {k: v for k, v in ckpt.items() if k not in ("format", "versions")}
            )
        total, trainable = count_parameters(self.model)
        prior = sum(h["epoch_seconds"] for h in self.state.history)
        summary = {
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
        workspace.atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2))
        for cb in self.callbacks:
            cb.on_train_end(self, summary)
        return summary

    def _open_set(self) -> dict[str, Any]:
        """Choose the Unknown score on validation and calibrate its threshold (best weights loaded).

        The whole model (not the cached-feature head) runs on the training faces, for the class
        centroids of their embeddings, and on the validation faces, for each score's AUROC; the
        threshold is set on whichever of max softmax and centroid cosine separates better.
        """
        transform = eval_transform(self.spec)
        model = self.model.to(self.device)

        def outputs(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            data = FaceCrops(self.dataset.items(split), transform, cache_dir=self.dataset.path / ".cache")
            batch = max(self.config.batch_size, 64)
            loader = make_loader(data, batch_size=batch, shuffle=False, workers=0, seed=0)
            return predict_outputs(model, loader, self.device)

        _, train_labels, train_emb = outputs("train")  # both splits are non-empty (check_trainable)
        logits, labels, emb = outputs("val")
        centroids = class_centroids(train_emb, train_labels, len(self.classes))
        unknown = self.classes.index(UNKNOWN) if UNKNOWN in self.classes else None
        aurocs = open_set_scores(logits, labels, unknown, emb, centroids) or {}
        score = choose_score(aurocs)
        conf = unknown_scores(logits, emb, centroids)[score]
        rows = sweep_scores(conf, logits.argmax(1), labels, unknown)
        suggestion = suggest_threshold(rows, self.config.target_far) | {"score": score}
        return {"score": score, "auroc": aurocs, "suggestion": suggestion, "centroids": centroids}


def _truncate_csv(path: Path, epochs: int) -> None:
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


def _optimizer(c: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "sgd":
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    return torch.optim.RMSprop(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)


def _scheduler(c: TrainConfig, opt: torch.optim.Optimizer):
    if c.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=c.step_size, gamma=c.gamma)
    if c.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(c.epochs, 1))
    if c.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=c.gamma, patience=max(c.step_size - 1, 0)
        )
    return None


def set_threads(n: int | None = None) -> int:
    """Use ``n`` torch threads (default: every core) and return the number set."""
    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


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


__all__ = [
    "Callback",
    "CSVLogger",
    "ProgressPrinter",
    "Trainer",
    "TrainingStopped",
    "evaluate",
    "train",
    "train_one_epoch",
    "read_metrics",
]
