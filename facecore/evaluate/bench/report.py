"""The bench's figures as Markdown: the machine, the per-model rates, the cached-feature comparison
of a frozen trunk, the DDP scaling table and the targets."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from facecore.evaluate.bench.plan import AMORTISE_EPOCHS, TARGET_CACHE_SPEEDUP, TARGET_RATIO


def _f(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def format_markdown(result: dict[str, Any]) -> str:
    """The figures of :func:`~facecore.evaluate.bench.run.run_bench` as Markdown tables."""
    lines = _header(result) + _rates_table(result["models"])
    for name, r in result["models"].items():
        if "cache" in r:
            lines += _cache_section(name, r)
    scaling = {n: r["ranks"] for n, r in result["models"].items() if r.get("ranks")}
    if scaling:
        lines += _ranks_section(scaling)
    met = [f"{k}: {'met' if v else 'NOT met'}" for k, v in result["targets"].items()]
    lines += ["", "Targets: " + "; ".join(met) + "."]
    return "\n".join(lines)


def _header(result: dict[str, Any]) -> list[str]:
    """The title, the machine and software, and the dataset."""
    e, d = result["env"], result["dataset"]
    return [
        f"## facecore bench: {e['device']} ({e['device_name']})",
        "",
        f"torch {e['torch']}, torchvision {e['torchvision']}, {e['threads']} torch threads on "
        f"{e['cores']} cores (CPU capability {e['cpu_capability']}), AMP {e['amp']}, channels_last "
        f"{'on' if e['channels_last'] else 'off'}, batch {e['batch']}{', quick' if e['quick'] else ''}; "
        f"load average {e['load_before']} before, {e['load_after']} after; {e['seconds']} s in all.",
        f"Dataset: {d['classes']} classes, {d['train']} train / {d['val']} val faces from "
        f"{Path(d['source']).name} (detector {d['detector']}), imported in {d['prepare_seconds']} s. "
        f"Pretrained weights: {e['weights']}.",
    ]


def _rates_table(models: dict[str, Any]) -> list[str]:
    """One row per model: compute-bound and pipeline training rates, their ratio, inference rates."""
    lines = [
        "",
        "| model | augment | workers | compute train img/s | pipeline img/s | pipeline / compute "
        f"| >= {TARGET_RATIO} | waiting for data (in-epoch estimate) | infer b1 img/s | infer b32 img/s |",
        "|---|---|---|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for name, r in models.items():
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
    return lines + [
        "",
        "pipeline / compute: real Trainer epochs vs training steps on in-memory tensors (measured "
        "before and after the epochs). Waiting for data: the share of those epochs spent getting "
        "batches; 1 - share estimates the same ratio batch by batch, free of load drift.",
    ]


def _cache_section(name: str, r: dict[str, Any]) -> list[str]:
    """Cached features vs the frozen trunk recomputed vs full training, for model ``name``."""
    k = r["cache"]
    rec = k["recomputed"]["img_s"]
    n = AMORTISE_EPOCHS
    return [
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


def _ranks_section(scaling: dict[str, dict[str, Any]]) -> list[str]:
    """Training images/s with 1, 2, ... DDP processes per model, and the speed-up over one."""
    counts = sorted({int(k) for v in scaling.values() for k in v})
    lines = [
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
    return lines


__all__ = ["format_markdown"]
