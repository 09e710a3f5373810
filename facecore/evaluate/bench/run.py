"""``run_bench``: every model measured on one bench dataset in a temporary ``FACECORE_HOME``; the
result record (machine, dataset, per-model figures, targets met)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from facecore.device import resolve_device
from facecore.errors import ConfigError, DatasetError
from facecore.evaluate.bench.environment import describe_environment, env_vars, load_average, standin_weights
from facecore.evaluate.bench.measure import bench_model_job, run_isolated
from facecore.evaluate.bench.pipeline import measure_ranks, prepare_dataset
from facecore.evaluate.bench.plan import (
    TARGET_CACHE_SPEEDUP,
    TARGET_RATIO,
    Progress,
    default_source,
    plan_for,
)
from facecore.models.registry import get_model_spec, list_models
from facecore.train.hardware import set_threads


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
    an LFW-style people tree (default: :func:`~.plan.default_source`); ``threads``: torch CPU
    threads (default: every core; restored afterwards). ``isolate`` measures each model in a fresh
    Python process, as ``train --model NAME`` runs: a process that has already trained a
    ResNet-50 keeps a grown heap, and the custom CNN then trains up to twice as fast in it.
    ``ranks`` (e.g. ``(1, 2)``): also train each model with that many DDP processes under torchrun
    (:func:`~.pipeline.measure_ranks`), for the scaling table.
    """
    names = list(models or list_models(compared=True))
    for name in names:
        get_model_spec(name)
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}.")
    src = _source(source)
    say = progress or (lambda _m: None)
    plan = plan_for(quick, images)
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    t_start = time.perf_counter()
    load_before = load_average()
    tmp = Path(tempfile.mkdtemp(prefix="facecore-bench-"))
    try:
        set_threads(threads)
        home = tmp / "home"
        home.mkdir()
        with env_vars(FACECORE_HOME=str(home)), standin_weights(tmp, names) as weights:
            say(f"dataset: importing about {plan.train_images} training faces from {src}")
            data = prepare_dataset(src, plan)
            job = {
                "data": data,
                "batch": batch,
                "device": device,
                "plan": asdict(plan),
                "runs": str(tmp / "runs"),
                "threads": threads,
                "progress": progress is not None,
            }
            results = {name: _bench_one({"name": name, **job}, isolate, ranks, say) for name in names}
        env = describe_environment(
            dev, batch=batch, quick=quick, plan=plan, weights=weights, load_before=load_before
        )
    finally:
        torch.set_num_threads(old_threads)
        shutil.rmtree(tmp, ignore_errors=True)
    env["seconds"] = round(time.perf_counter() - t_start, 1)
    return {"env": env, "dataset": data, "models": results, "targets": _targets(results)}


def _source(source: str | Path | None) -> Path:
    """The people tree the bench dataset comes from: ``source``, or :func:`~.plan.default_source`."""
    src = Path(source) if source else default_source()
    if src is None or not src.is_dir():
        raise DatasetError(
            "No LFW people tree to build the benchmark dataset from; pass --source FOLDER "
            "(one subfolder per person), or run `python -m facecore dataset sample` once to download LFW."
        )
    return src


def _bench_one(job: dict[str, Any], isolate: bool, ranks: Sequence[int], say: Progress) -> dict[str, Any]:
    """The figures of ``job["name"]`` (in a fresh process when ``isolate``), with its DDP ``ranks``."""
    result = run_isolated(job) if isolate else bench_model_job(job, say)
    if ranks:
        result["ranks"] = measure_ranks(job["name"], ranks, batch=job["batch"], device=job["device"], say=say)
    return result


def _targets(results: dict[str, Any]) -> dict[str, Any]:
    """Each target, by name, and whether it was met."""
    t: dict[str, Any] = {
        f"{n}: pipeline >= {TARGET_RATIO}x compute": r["ratio_target_met"] for n, r in results.items()
    }
    for n, r in results.items():
        if "cache" in r:
            t[f"{n}: cached >= {TARGET_CACHE_SPEEDUP:g}x recomputed"] = r["cache"]["target_met"]
    return t


__all__ = ["run_bench"]
