"""``python -m facecore bench``: how fast the models train and predict here, and what the data costs.

For each model, on the current device:

* **compute**: training steps (forward + backward + Adam, batch B) on in-memory random tensors
  after a warm-up, and inference at batch 1 and 32: what the hardware allows;
* **pipeline**: epochs of a real :class:`~facecore.train.loop.Trainer` (its ``_build``, loaders,
  transforms, optimizer and :func:`~facecore.train.loop.train_one_epoch`) over a real face dataset
  built from LFW in a temporary ``FACECORE_HOME``, with the model's default config; the
  ratio pipeline / compute says what the data pipeline costs (>= 0.8: under 20%);
* for ``resnet50_pretrained``: epochs with cached trunk features vs the frozen trunk recomputed
  every step vs full training, the one-off caching time, and the rate amortised over 5 epochs.

ImageNet weights are never needed: the pretrained model is measured with a random-init trunk
(the speed is the same). Rates are medians over steps or epochs, in images per second; nothing
here is asserted, the figures are printed (Markdown) or returned (``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from facecore import workspace
from facecore.data.dataset import import_dataset, load_dataset
from facecore.data.sample import lfw_folder, select_people
from facecore.data.transforms import is_deterministic
from facecore.device import for_inference, inference_input, resolve_device, sync, tune_allocator
from facecore.errors import ConfigError, DatasetError, FacecoreError
from facecore.models.registry import create_model, get_model_spec, list_models
from facecore.models.resnet import split_frozen
from facecore.models.weights import weights_file, weights_status
from facecore.recognize.runs import read_metrics
from facecore.train.config import TrainConfig
from facecore.train.loop import (
    Trainer,
    autocast_for,
    set_threads,
    train,
    train_one_epoch,
)

#: pipeline / compute at or above this: the data pipeline costs under 20% of the compute-bound rate
TARGET_RATIO = 0.8
#: cached-feature epochs at least this many times faster than recomputing the frozen trunk
TARGET_CACHE_SPEEDUP = 3.0
AMORTISE_EPOCHS = 5
#: compute-bound images/s under which a pipeline figure is one epoch (after a warm-up batch), not two
SLOW_IMG_S = 5.0
DATASET = "bench"
CHILD_FLAG = "--run-one-model-json"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """How much to measure: steps, runs and epochs per figure, and the dataset size."""

    warmup: int
    steps: int
    remeasure_steps: int
    infer_b1: int
    infer_b32: int
    epochs: int
    train_images: int
    people: int


#: About 5 minutes on 2 cores for the three models, and the CI's quick one.
FULL_PLAN = Plan(
    warmup=1, steps=3, remeasure_steps=2, infer_b1=10, infer_b32=2, epochs=2, train_images=96, people=7
)
QUICK_PLAN = Plan(
    warmup=1, steps=2, remeasure_steps=1, infer_b1=3, infer_b32=1, epochs=1, train_images=24, people=3
)


def plan_for(quick: bool, images: int | None = None) -> Plan:
    """The default plan (about 5 minutes on 2 cores for the three models) or ``quick`` (CI).

    ``epochs`` real epochs per pipeline figure, one for models slower than ``SLOW_IMG_S``.
    """
    plan = QUICK_PLAN if quick else FULL_PLAN
    return dataclasses.replace(plan, train_images=images or plan.train_images)


def default_source() -> Path | None:
    """An LFW people tree: the offline assets beside the repository, or a downloaded LFW."""
    assets = Path(__file__).resolve().parents[3] / "shared" / "assets" / "lfw-deepfunneled"
    for candidate in (assets, lfw_folder()):
        if candidate.is_dir():
            return candidate
    return None


# --- environment --------------------------------------------------------------------------------


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return name


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


# --- compute-bound rates ------------------------------------------------------------------------


def _step_rates(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
    scaler: torch.amp.GradScaler | None,
    channels_last: bool,
    warmup: int,
    steps: int,
) -> list[float]:
    """Images/s of each training step on the same in-memory batch, after ``warmup`` steps."""
    kw = {"device": device, "autocast": autocast, "scaler": scaler, "channels_last": channels_last}
    train_one_epoch(model, [(x, y)] * warmup, optimizer, **kw)
    sync(device)
    stamps = [time.perf_counter()]
    train_one_epoch(
        model, [(x, y)] * steps, optimizer, on_batch=lambda *_: stamps.append(time.perf_counter()), **kw
    )
    return [len(y) / (b - a) for a, b in zip(stamps, stamps[1:], strict=False)]


@torch.inference_mode()
def _infer_rates(
    model: nn.Module,
    x: torch.Tensor,
    runs: int,
    *,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> list[float]:
    model.eval()
    with autocast():
        model(x)  # warm-up
    rates = []
    for _ in range(runs):
        sync(device)
        t0 = time.perf_counter()
        with autocast():
            model(x)
        sync(device)
        rates.append(len(x) / (time.perf_counter() - t0))
    return rates


class ComputeBench:
    """``name`` on random in-memory tensors (no data pipeline): training steps and inference.

    For a model with a frozen trunk (``resnet50_pretrained``) the trainable head alone can be
    timed too, on in-memory trunk features: what training on cached features costs.
    """

    def __init__(
        self, name: str, *, classes: int, batch: int, device: torch.device, amp: str = "auto"
    ) -> None:
        spec = get_model_spec(name)
        self.device = device
        self.autocast, amp_name = autocast_for(device, amp)
        self.channels_last = device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" and amp_name == "fp16" else None
        torch.manual_seed(0)
        self.model = create_model(name, num_classes=classes, pretrained=False).to(device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.x = self._layout(torch.randn(batch, 3, spec.input_size, spec.input_size, device=device))
        self.y = torch.randint(0, classes, (batch,), device=device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=1e-4)
        self.kw = {
            "device": device,
            "autocast": self.autocast,
            "scaler": scaler,
            "channels_last": self.channels_last,
        }
        self.head: nn.Module | None = None
        parts = split_frozen(self.model)
        if parts is not None:
            trunk, self.head = parts
            trunk.eval()
            with torch.no_grad(), self.autocast():
                self.feats = trunk(self.x).float()
            head_params = [p for p in self.head.parameters() if p.requires_grad]
            self.head_optimizer = torch.optim.Adam(head_params, lr=1e-4)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def train_rates(self, plan: Plan) -> list[float]:
        """Images/s of each training step of the whole model (frozen parts included)."""
        return _step_rates(
            self.model, self.x, self.y, self.optimizer, warmup=plan.warmup, steps=plan.steps, **self.kw
        )

    def head_rates(self, plan: Plan) -> list[float]:
        """Images/s of each training step of the trainable head on trunk features."""
        if self.head is None:
            return []
        kw = {**self.kw, "channels_last": False}
        return _step_rates(
            self.head, self.feats, self.y, self.head_optimizer, warmup=plan.warmup, steps=plan.steps, **kw
        )

    def infer_rates(self, plan: Plan) -> dict[str, float]:
        """Inference images/s at batch 1 and 32, in the layout inference uses (:func:`for_inference`)."""
        kw = {"device": self.device, "autocast": self.autocast}
        model = for_inference(copy.deepcopy(self.model), self.device)
        x1 = inference_input(self.x[:1].contiguous(), self.device)
        xb = inference_input(torch.randn(32, *self.x.shape[1:], device=self.device), self.device)
        return {
            "infer_b1_img_s": _median(_infer_rates(model, x1, plan.infer_b1, **kw)),
            "infer_b32_img_s": _median(_infer_rates(model, xb, plan.infer_b32, **kw)),
        }


def _rates(values: Sequence[float], key: str) -> dict[str, Any]:
    return {key: _median(values), f"{key}_steps": [round(v, 2) for v in values]}


# --- the real pipeline ----------------------------------------------------------------------------


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
        "img_s": _median(rates),
        "epochs_img_s": [round(r, 2) for r in rates],
        "epoch_seconds": _median(seconds),
        "val_seconds": _median(val_seconds),
        "val_images": len(trainer.val_set),
        # what a Trainer epoch takes: the training pass, then validation
        "whole_epoch_seconds": _median([t + v for t, v in zip(seconds, val_seconds, strict=True)]),
        "data_share": _median(shares),
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


def _cache_comparison(cached: dict[str, Any], recomputed: dict[str, Any], full: dict[str, Any]) -> dict:
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


@contextlib.contextmanager
def _standin_weights(tmp: Path, names: Sequence[str]) -> Iterator[str]:
    """A random-init ResNet-50 file where torchvision's loader looks, unless real weights are there."""
    if "resnet50_pretrained" not in names or weights_status("resnet50_pretrained")["available"]:
        yield "imagenet" if "resnet50_pretrained" in names else "n/a"
        return
    torch_home = tmp / "torch_home"
    with _env(TORCH_HOME=str(torch_home)):
        target = weights_file("resnet50_pretrained")
        target.parent.mkdir(parents=True, exist_ok=True)
        state = create_model("resnet50_scratch", num_classes=1000).state_dict()
        torch.save({k: v for k, v in state.items()}, target)
        yield "random stand-in (speed as ImageNet's)"


def run_bench(
    *,
    models: Sequence[str] | None = None,
    batch: int = 32,
    images: int | None = None,
    device: str = "auto",
    quick: bool = False,
    threads: int | None = None,
    source: str | Path | None = None,
    progress: Progress | None = None,
    isolate: bool = True,
    ranks: Sequence[int] = (),
) -> dict[str, Any]:
    """Measure ``models`` (default: the three compared ones) and return every figure as a dict.

    ``images``: training images in the benchmark dataset (default 96, ``quick`` 24); ``source``:
    an LFW-style people tree (default: :func:`default_source`); ``threads``: torch CPU threads
    (default: every core; restored afterwards). ``isolate`` measures each model in a fresh
    Python process, as ``train --model NAME`` runs: a process that has already trained a
    ResNet-50 keeps a grown heap, and the custom CNN then trains up to twice as fast in it.
    ``ranks`` (e.g. ``(1, 2)``): also train each model with that many DDP processes under torchrun
    (:func:`measure_ranks`), for the scaling table.
    """
    names = list(models or list_models(compared=True))
    for name in names:
        get_model_spec(name)
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}.")
    src = Path(source) if source else default_source()
    if src is None or not src.is_dir():
        raise DatasetError(
            "No LFW people tree to build the benchmark dataset from; pass --source FOLDER "
            "(one subfolder per person), or run `python -m facecore dataset sample` once to download LFW."
        )
    say = progress or (lambda _m: None)
    plan = plan_for(quick, images)
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    t_start = time.perf_counter()
    load_before = _load()
    tmp = Path(tempfile.mkdtemp(prefix="facecore-bench-"))
    try:
        set_threads(threads)
        home = tmp / "home"
        home.mkdir()
        with _env(FACECORE_HOME=str(home)), _standin_weights(tmp, names) as weights:
            say(f"dataset: importing about {plan.train_images} training faces from {src}")
            data = prepare_dataset(src, plan)
            results: dict[str, Any] = {}
            for name in names:
                job = {
                    "name": name,
                    "data": data,
                    "batch": batch,
                    "device": device,
                    "plan": asdict(plan),
                    "runs": str(tmp / "runs"),
                    "threads": threads,
                    "progress": progress is not None,
                }
                results[name] = _run_isolated(job) if isolate else _bench_model_job(job, say)
                if ranks:
                    results[name]["ranks"] = measure_ranks(name, ranks, batch=batch, device=device, say=say)
        amp_name = autocast_for(dev, "auto")[1]
        env = {
            "device": dev.type,
            "device_name": _device_name(dev),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "amp": amp_name,
            "channels_last": dev.type == "cuda",
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
            "batch": batch,
            "quick": quick,
            "plan": asdict(plan),
            "weights": weights,
            "load_before": load_before,
            "load_after": _load(),
        }
    finally:
        torch.set_num_threads(old_threads)
        shutil.rmtree(tmp, ignore_errors=True)
    env["seconds"] = round(time.perf_counter() - t_start, 1)
    return {"env": env, "dataset": data, "models": results, "targets": _targets(results)}


def _bench_model(
    name: str,
    data: dict[str, Any],
    *,
    batch: int,
    device: str,
    dev: torch.device,
    plan: Plan,
    runs: Path,
    say: Progress,
) -> dict[str, Any]:
    say(f"{name}: compute-bound training and inference")
    bench = ComputeBench(name, classes=data["classes"], batch=batch, device=dev)
    train, head = bench.train_rates(plan), bench.head_rates(plan)
    infer = bench.infer_rates(plan)
    say(f"{name}: real pipeline (default config)")
    kw = {"batch": batch, "device": device, "runs_dir": runs}
    fast = max(_median(train), _median(head)) >= SLOW_IMG_S
    pipeline = measure_pipeline(name, epochs=plan.epochs if fast else 1, label=f"{name}-default", **kw)
    cached = pipeline["cached"] and bench.head is not None
    # the rate the ratio compares with, measured again after the pipeline: the machine's load drifts
    say(f"{name}: compute-bound training again")
    again = dataclasses.replace(plan, warmup=0, steps=plan.remeasure_steps)
    if cached:
        head += bench.head_rates(again)
    else:
        train += bench.train_rates(again)
    compute = {**_rates(train, "train_img_s"), **infer}
    if head:
        compute.update(_rates(head, "head_train_img_s"))
    del bench
    basis = "head_train_img_s" if cached else "train_img_s"
    ratio = pipeline["img_s"] / compute[basis] if compute[basis] else 0.0
    out: dict[str, Any] = {
        "compute": compute,
        "pipeline": pipeline,
        "ratio": ratio,
        "ratio_basis": "head on cached features" if basis == "head_train_img_s" else "whole model",
        "ratio_target_met": ratio >= TARGET_RATIO,
        # the same ratio estimated inside the pipeline's own epochs (immune to load drift)
        "in_epoch_ratio": 1.0 - pipeline["data_share"],
    }
    if pipeline["cached"]:
        slow = 1  # epochs through the whole network are slow: one, after the warm-up batch
        say(f"{name}: frozen trunk recomputed every step (cache_features=off)")
        recomputed = measure_pipeline(
            name, epochs=slow, label=f"{name}-recomputed", cache_features="off", **kw
        )
        recomputed["ratio"] = recomputed["img_s"] / compute["train_img_s"] if compute["train_img_s"] else 0.0
        say(f"{name}: full training (trainable_from=all)")
        full = measure_pipeline(name, epochs=slow, label=f"{name}-full", trainable_from="all", **kw)
        out["cache"] = _cache_comparison(pipeline, recomputed, full)
    return out


def _bench_model_job(job: dict[str, Any], say: Progress) -> dict[str, Any]:
    return _bench_model(
        job["name"],
        job["data"],
        batch=job["batch"],
        device=job["device"],
        dev=resolve_device(job["device"]),
        plan=Plan(**job["plan"]),
        runs=Path(job["runs"]),
        say=say,
    )


def _run_isolated(job: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`_bench_model` for one model in a fresh interpreter; its JSON result back."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "facecore.evaluate.bench", CHILD_FLAG, json.dumps(job)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise FacecoreError(
            f"bench of {job['name']} failed in its subprocess (exit {proc.returncode}); see above."
        )
    return json.loads(lines[-1])


def _child(payload: str) -> int:
    job = json.loads(payload)
    set_threads(job["threads"])
    tune_allocator()

    def say(message: str) -> None:
        if job["progress"]:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    print(json.dumps(_bench_model_job(job, say)), flush=True)
    return 0


def _targets(results: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = {
        f"{n}: pipeline >= {TARGET_RATIO}x compute": r["ratio_target_met"] for n, r in results.items()
    }
    for n, r in results.items():
        if "cache" in r:
            t[f"{n}: cached >= {TARGET_CACHE_SPEEDUP:g}x recomputed"] = r["cache"]["target_met"]
    return t


# --- printing -------------------------------------------------------------------------------------


def _f(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def format_markdown(result: dict[str, Any]) -> str:
    """The figures of :func:`run_bench` as Markdown tables."""
    e, d = result["env"], result["dataset"]
    lines = [
        f"## facecore bench: {e['device']} ({e['device_name']})",
        "",
        f"torch {e['torch']}, torchvision {e['torchvision']}, {e['threads']} torch threads on "
        f"{e['cores']} cores (CPU capability {e['cpu_capability']}), AMP {e['amp']}, channels_last "
        f"{'on' if e['channels_last'] else 'off'}, batch {e['batch']}{', quick' if e['quick'] else ''}; "
        f"load average {e['load_before']} before, {e['load_after']} after; {e['seconds']} s in all.",
        f"Dataset: {d['classes']} classes, {d['train']} train / {d['val']} val faces from "
        f"{Path(d['source']).name} (detector {d['detector']}), imported in {d['prepare_seconds']} s. "
        f"Pretrained weights: {e['weights']}.",
        "",
        "| model | augment | workers | compute train img/s | pipeline img/s | pipeline / compute "
        f"| >= {TARGET_RATIO} | waiting for data (in-epoch estimate) | infer b1 img/s | infer b32 img/s |",
        "|---|---|---|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for name, r in result["models"].items():
        c, p = r["compute"], r["pipeline"]
        cached = p["cached"]
        label = f"{name} (cached features)" if cached else name
        comp = _f(c.get("head_train_img_s") if cached else c["train_img_s"])
        if cached:
            comp += f" (head; whole model {_f(c['train_img_s'])})"
        lines.append(
            f"| {label} | {p['augment']} | {p['workers']} | {comp} | {_f(p['img_s'])} | "
            f"{_f(r['ratio'], 2)} | {'yes' if r['ratio_target_met'] else 'NO'} | "
            f"{100 * p['data_share']:.1f}% ({_f(r['in_epoch_ratio'], 2)}) | "
            f"{_f(c['infer_b1_img_s'])} | {_f(c['infer_b32_img_s'])} |"
        )
    lines += [
        "",
        "pipeline / compute: real Trainer epochs vs training steps on in-memory tensors (measured "
        "before and after the epochs). Waiting for data: the share of those epochs spent getting "
        "batches; 1 - share estimates the same ratio batch by batch, free of load drift.",
    ]
    for name, r in result["models"].items():
        if "cache" not in r:
            continue
        k = r["cache"]
        rec = k["recomputed"]["img_s"]
        n = AMORTISE_EPOCHS
        lines += [
            "",
            f"### {name}: cached features vs recomputing the frozen trunk",
            "",
            f"An epoch is the training pass over {r['pipeline']['train_images']} faces, then validation "
            f"on {r['pipeline']['val_images']}.",
            "",
            f"| mode | epoch s (train + val) | training img/s | one-off s | vs recomputed: epoch "
            f"| {n} epochs amortised | training pass |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| cached features (default) | {_f(k['cached_epoch_seconds'], 2)} | {_f(k['cached_img_s'])} | "
            f"{_f(k['cache_seconds'], 2)} | {k['speedup']:.2f}x | {k['amortised_speedup']:.2f}x | "
            f"{k['train_speedup']:.2f}x |",
            f"| frozen trunk recomputed (cache_features=off) | {_f(k['recomputed_epoch_seconds'], 2)} | "
            f"{_f(rec)} | - | 1.00x | 1.00x | 1.00x |",
            f"| full training (trainable_from=all) | {_f(k['full_epoch_seconds'], 2)} | "
            f"{_f(k['full_img_s'])} | - | {_ratio(k['recomputed_epoch_seconds'], k['full_epoch_seconds'])} "
            f"| - | {_ratio(k['full_img_s'], rec)} |",
            "",
            f"Target: epochs on cached features >= {TARGET_CACHE_SPEEDUP:g}x faster than recomputing: "
            f"{'met' if k['target_met'] else 'NOT met'} ({k['speedup']:.2f}x; training pass alone "
            f"{k['train_speedup']:.2f}x).",
        ]
    scaling = {n: r["ranks"] for n, r in result["models"].items() if r.get("ranks")}
    if scaling:
        counts = sorted({int(k) for v in scaling.values() for k in v})
        lines += [
            "",
            "### DDP processes on this machine (torchrun, gloo on CPU / NCCL on GPU)",
            "",
            "| model | " + " | ".join(f"{n} process(es): img/s (speed-up)" for n in counts) + " |",
            "|---|" + "---:|" * len(counts),
        ]
        for name, v in scaling.items():
            cells = []
            for n in counts:
                r = v.get(str(n), {})
                cells.append(r.get("error") or f"{_f(r.get('img_s'))} ({r.get('speedup', 0):.2f}x)")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    met = [f"{k}: {'met' if v else 'NOT met'}" for k, v in result["targets"].items()]
    lines += ["", "Targets: " + "; ".join(met) + "."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The ``bench`` options (``python -m facecore.evaluate.bench`` takes the same)."""
    p = argparse.ArgumentParser(prog="python -m facecore bench", description=__doc__.splitlines()[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the bench options to ``p`` (the CLI's ``bench`` subparser)."""
    p.add_argument("--models", nargs="+", metavar="MODEL", help="default: the three compared models")
    p.add_argument("--batch", type=int, default=32, help="training batch size (default 32)")
    p.add_argument("--images", type=int, help="training faces in the bench dataset (default 96, quick 24)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: every core)")
    p.add_argument("--source", help="people-folder tree for the dataset (default: LFW assets/download)")
    p.add_argument("--quick", action="store_true", help="few steps and images (about a minute)")
    p.add_argument("--json", action="store_true", help="print every figure as JSON")
    p.add_argument("--ranks", type=int, nargs="+", default=[], metavar="N",
                   help="also train with N DDP processes each (e.g. --ranks 1 2), for the scaling table")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == CHILD_FLAG:
        return _child(argv[1])
    return run_from_args(build_parser().parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    """Run the bench with parsed ``add_arguments`` options and print it (the CLI's handler)."""
    result = run_bench(
        models=args.models,
        batch=args.batch,
        images=args.images,
        device=args.device,
        quick=args.quick,
        threads=args.threads,
        source=args.source,
        progress=lambda m: print(f"bench: {m}", file=sys.stderr, flush=True),
        ranks=args.ranks,
    )
    print(json.dumps(result, indent=2) if args.json else format_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
