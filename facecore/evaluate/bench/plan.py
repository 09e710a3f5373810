"""What the bench measures and against what: the :class:`Plan` (steps, runs, epochs, dataset
size), the targets, the LFW tree the dataset comes from, and the median every figure is."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facecore.data.sample import lfw_folder

#: pipeline / compute at or above this: the data pipeline costs under 20% of the compute-bound rate
TARGET_RATIO = 0.8
#: cached-feature epochs at least this many times faster than recomputing the frozen trunk
TARGET_CACHE_SPEEDUP = 3.0
AMORTISE_EPOCHS = 5
#: compute-bound images/s under which a pipeline figure is one epoch (after a warm-up batch), not two
SLOW_IMG_S = 5.0
DATASET = "bench"

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
    assets = Path(__file__).resolve().parents[4] / "shared" / "assets" / "lfw-deepfunneled"
    for candidate in (assets, lfw_folder()):
        if candidate.is_dir():
            return candidate
    return None


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (every figure of the bench is one), 0.0 for none."""
    return float(statistics.median(values)) if values else 0.0
