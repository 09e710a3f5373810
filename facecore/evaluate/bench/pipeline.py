"""The real pipeline: epochs of a real :class:`~facecore.train.loop.Trainer` on a face dataset
imported from LFW, against the frozen trunk recomputed and full training, and with DDP processes."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from facecore import workspace
from facecore.data.dataset import import_dataset, load_dataset
from facecore.data.sample import select_people
from facecore.data.transforms import is_deterministic
from facecore.evaluate.bench.plan import (
    AMORTISE_EPOCHS,
    DATASET,
    TARGET_CACHE_SPEEDUP,
    Plan,
    Progress,
    median,
)
from facecore.recognize.runs import read_metrics
from facecore.train.config import TrainConfig
from facecore.train.epoch import train_one_epoch
from facecore.train.loop import Trainer, train


def prepare_dataset(source: Path, plan: Plan) -> dict[str, Any]:
    """Import about ``plan.train_images`` training faces from the LFW tree ``source`` as ``bench``.

    ``plan.people`` people with the most images plus an Unknown class, equal counts per class,
    the default 70/15/15 split, no face detection (LFW faces are centred already).
    """
    t0 = time.perf_counter()
    # the default split keeps max(1, round(15%)) of each class for val and for test
    want = max(1, math.ceil(plan.train_images / (plan.people + 1)))
    per_class = want + 2
    while per_class - 2 * max(1, round(per_class * 0.15)) < want:
        per_class += 1
    listing = select_people(source, people=plan.people, unknown=per_class, max_per_person=per_class, seed=0)
    import_dataset(listing, DATASET, detector="none", mode="replace")
    ds = load_dataset(DATASET)
    return {
        "source": str(source),
        "classes": len(ds.classes),
        "train": len(ds.items("train")),
        "val": len(ds.items("val")),
        "detector": "none",
        "prepare_seconds": round(time.perf_counter() - t0, 2),
    }


def _augment_name(cfg: TrainConfig) -> str:
    if is_deterministic(cfg.augment):
        return "none"
    on = [k for k, v in cfg.augment.to_dict().items() if k != "scale" and v]
    return "all" if len(on) == 6 else "+".join(on)


class _TimedLoader:
    """A loader that adds up the time spent waiting for its batches (worker start-up included)."""

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator:
        t0 = time.perf_counter()
        it = iter(self.loader)
        while True:
            try:
                batch = next(it)
            except StopIteration:
                self.seconds += time.perf_counter() - t0
                return
            self.seconds += time.perf_counter() - t0
            yield batch
            t0 = time.perf_counter()


def measure_pipeline(
    name: str,
    *,
    batch: int,
    device: str,
    epochs: int,
    runs_dir: Path,
    label: str,
    **overrides: Any,
) -> dict[str, Any]:
    """Images/s of real Trainer epochs (median over ``epochs``, after one warm-up batch).

    Also the share of each epoch spent waiting for batches (``data_share``): measured batch by
    batch inside the same epoch, it does not drift with the machine's load as two separate
    measurements can; ``1 - data_share`` estimates pipeline / compute.
    """
    cfg = TrainConfig.for_model(name, DATASET, batch_size=batch, device=device, epochs=epochs, **overrides)
    trainer = Trainer(cfg, run_dir=runs_dir / label)
    t0 = time.perf_counter()
    trainer._build()
    build_seconds = time.perf_counter() - t0
    kw = {
        "device": trainer.device,
        "autocast": trainer.autocast,
        "scaler": trainer.scaler,
        "channels_last": trainer.channels_last and not trainer.cached,
    }
    warm = next(iter(trainer._loader(trainer.train_set, train=True, epoch=0)))
    train_one_epoch(trainer.trainable, [warm], trainer.optimizer, **kw)
    rates, seconds, shares, val_seconds = [], [], [], []
    for epoch in range(1, epochs + 1):
        torch.manual_seed(cfg.seed * 1000 + epoch)
        loader = _TimedLoader(trainer._loader(trainer.train_set, train=True, epoch=epoch))
        tr = train_one_epoch(trainer.trainable, loader, trainer.optimizer, **kw)
        rates.append(tr["images"] / tr["seconds"])
        seconds.append(tr["seconds"])
        shares.append(loader.seconds / tr["seconds"])
        t0 = time.perf_counter()
        trainer._evaluate(trainer.val_set)
        val_seconds.append(time.perf_counter() - t0)
    images = len(trainer.train_set)
    return {
        "img_s": median(rates),
        "epochs_img_s": [round(r, 2) for r in rates],
        "epoch_seconds": median(seconds),
        "val_seconds": median(val_seconds),
        "val_images": len(trainer.val_set),
        # what a Trainer epoch takes: the training pass, then validation
        "whole_epoch_seconds": median([t + v for t, v in zip(seconds, val_seconds, strict=True)]),
        "data_share": median(shares),
        "train_images": images,
        "cached": trainer.cached,
        "cache_seconds": round(trainer.cache_seconds, 2),
        "build_seconds": round(build_seconds, 2),
        "workers": trainer.workers,
        "augment": _augment_name(cfg),
        "amp": trainer.amp_name,
        "channels_last": trainer.channels_last,
    }


def measure_ranks(
    name: str, ranks: Sequence[int], *, batch: int, device: str, say: Progress, epochs: int = 2
) -> dict[str, Any]:
    """Images/s of real training epochs with 1, 2, ... DDP processes (global batch ``batch``).

    Each count trains ``epochs`` epochs of the bench dataset under torchrun (one process: the
    usual Trainer); the figure is the last epoch's training pass, all ranks' images over rank 0's
    time. The processes share this machine's cores (OMP threads = cores / processes).
    """
    out: dict[str, Any] = {}
    for n in ranks:
        if batch % n:
            out[str(n)] = {"error": f"batch {batch} does not divide over {n} processes"}
            continue
        say(f"{name}: {n} DDP process(es), {epochs} epochs")
        cfg = TrainConfig.for_model(name, DATASET, epochs=epochs, batch_size=batch, device=device, workers=0,
                                    nproc=n, run_name=f"bench-ranks-{name}-{n}")
        summary = train(cfg, launch={"quiet": True} if n > 1 else None)
        last = read_metrics(workspace.models_dir() / summary["run"])[-1]
        out[str(n)] = {
            "img_s": round(last["images_per_s"], 2),
            "epoch_seconds": round(last["epoch_seconds"], 2),
            "world_size": summary.get("world_size"),
        }
    base = (out.get("1") or {}).get("img_s")
    for v in out.values():
        if base and "img_s" in v:
            v["speedup"] = round(v["img_s"] / base, 2)
    return out


def cache_comparison(cached: dict[str, Any], recomputed: dict[str, Any], full: dict[str, Any]) -> dict:
    """Cached features against the frozen trunk recomputed, on the same dataset.

    ``speedup`` compares whole epochs (training pass and validation, as :class:`Trainer` runs
    them), which the target is about; ``train_speedup`` the training pass alone.
    ``amortised_speedup`` adds the one-off feature computation, spread over ``AMORTISE_EPOCHS``.
    """
    n = cached["train_images"]
    five = AMORTISE_EPOCHS * n
    amortised = five / (cached["cache_seconds"] + five / cached["img_s"]) if cached["img_s"] else 0.0
    train_speedup = cached["img_s"] / recomputed["img_s"] if recomputed["img_s"] else 0.0
    epoch, epoch_rec = cached["whole_epoch_seconds"], recomputed["whole_epoch_seconds"]
    speedup = epoch_rec / epoch if epoch else 0.0
    amortised_epoch = epoch + cached["cache_seconds"] / AMORTISE_EPOCHS
    return {
        "cached_img_s": cached["img_s"],
        "cache_seconds": cached["cache_seconds"],
        "recomputed_img_s": recomputed["img_s"],
        "full_img_s": full["img_s"],
        "cached_epoch_seconds": epoch,
        "recomputed_epoch_seconds": epoch_rec,
        "full_epoch_seconds": full["whole_epoch_seconds"],
        "speedup": speedup,
        "train_speedup": train_speedup,
        "amortised_epochs": AMORTISE_EPOCHS,
        "amortised_img_s": amortised,
        "amortised_speedup": epoch_rec / amortised_epoch if amortised_epoch else 0.0,
        "amortised_train_speedup": amortised / recomputed["img_s"] if recomputed["img_s"] else 0.0,
        "target": TARGET_CACHE_SPEEDUP,
        "target_met": speedup >= TARGET_CACHE_SPEEDUP,
        "recomputed": recomputed,
        "full": full,
    }


__all__ = ["cache_comparison", "measure_pipeline", "measure_ranks", "prepare_dataset"]
