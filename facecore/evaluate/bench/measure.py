"""One model's figures: compute-bound rates, the real pipeline, their ratio and (for a frozen trunk)
the cached-feature comparison; in this process or, as :func:`run_isolated`, a fresh one."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from facecore.device import resolve_device, tune_allocator
from facecore.errors import FacecoreError
from facecore.evaluate.bench.compute import ComputeBench, rates
from facecore.evaluate.bench.pipeline import cache_comparison, measure_pipeline
from facecore.evaluate.bench.plan import SLOW_IMG_S, TARGET_RATIO, Plan, Progress, median
from facecore.train.hardware import set_threads

#: ``python -m facecore.evaluate.bench CHILD_FLAG JOB``: measure one model (:func:`run_isolated`).
CHILD_FLAG = "--run-one-model-json"


def bench_model(
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
    """Every figure of model ``name`` on the bench dataset ``data`` (:func:`~.pipeline.prepare_dataset`)."""
    say(f"{name}: compute-bound training and inference")
    bench = ComputeBench(name, classes=data["classes"], batch=batch, device=dev)
    train, head = bench.train_rates(plan), bench.head_rates(plan)
    infer = bench.infer_rates(plan)
    say(f"{name}: real pipeline (default config)")
    kw = {"batch": batch, "device": device, "runs_dir": runs}
    fast = max(median(train), median(head)) >= SLOW_IMG_S
    pipeline = measure_pipeline(name, epochs=plan.epochs if fast else 1, label=f"{name}-default", **kw)
    cached = pipeline["cached"] and bench.head is not None
    # the rate the ratio compares with, measured again after the pipeline: the machine's load drifts
    say(f"{name}: compute-bound training again")
    again = dataclasses.replace(plan, warmup=0, steps=plan.remeasure_steps)
    if cached:
        head += bench.head_rates(again)
    else:
        train += bench.train_rates(again)
    compute = {**rates(train, "train_img_s"), **infer}
    if head:
        compute.update(rates(head, "head_train_img_s"))
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
        out["cache"] = cache_comparison(pipeline, recomputed, full)
    return out


def bench_model_job(job: dict[str, Any], say: Progress) -> dict[str, Any]:
    """:func:`bench_model` with the arguments of ``job`` (JSON-ready: it also travels to a child)."""
    return bench_model(
        job["name"],
        job["data"],
        batch=job["batch"],
        device=job["device"],
        dev=resolve_device(job["device"]),
        plan=Plan(**job["plan"]),
        runs=Path(job["runs"]),
        say=say,
    )


def run_isolated(job: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`bench_model` for one model in a fresh interpreter; its JSON result back."""
    root = str(Path(__file__).resolve().parents[3])
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


def run_child(payload: str) -> int:
    """Measure the model of ``payload`` (a :func:`run_isolated` job) and print its figures as JSON."""
    job = json.loads(payload)
    set_threads(job["threads"])
    tune_allocator()

    def say(message: str) -> None:
        if job["progress"]:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    print(json.dumps(bench_model_job(job, say)), flush=True)
    return 0


__all__ = ["CHILD_FLAG", "bench_model", "bench_model_job", "run_child", "run_isolated"]
