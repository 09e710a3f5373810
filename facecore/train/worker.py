"""What each rank of a distributed run executes (``python -m facecore.train.worker``).

:func:`facecore.train.distributed.launch` starts ``torchrun`` with this module as the entry point;
each rank builds the same :class:`~facecore.train.loop.Trainer` and, in a job, reports through
:func:`facecore.train.jobs.job_callbacks`. It sits above the loop, the jobs and
:mod:`facecore.train.distributed`, which the loop itself uses (so the entry cannot live there).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from facecore.errors import TrainingStopped
from facecore.train.callbacks import ProgressPrinter
from facecore.train.config import TrainConfig
from facecore.train.distributed import RUN_DIR_ENV
from facecore.train.jobs import job_callbacks
from facecore.train.loop import Trainer


def _entry(argv: Sequence[str] | None = None) -> int:
    """What each rank runs (``python -m facecore.train.worker``, started by
    :func:`~facecore.train.distributed.launch`)."""
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--job")
    p.add_argument("--job-index", type=int, default=0)
    p.add_argument("--job-total", type=int, default=1)
    args = p.parse_args(argv)
    config = TrainConfig.from_dict(json.loads(args.config))
    run_dir = Path(os.environ[RUN_DIR_ENV]) if os.environ.get(RUN_DIR_ENV) else None
    callbacks: list[Any] = [ProgressPrinter()]
    should_stop: Callable[[], bool] = lambda: False  # noqa: E731
    if args.job:
        extra, should_stop = job_callbacks(args.job, args.job_index, args.job_total)
        callbacks += extra
    trainer = Trainer(config, run_dir=run_dir, callbacks=callbacks, should_stop=should_stop)
    if trainer.dist.is_main:
        Path(f"{args.summary}.run").write_text(str(trainer.run_dir), encoding="utf-8")
    try:
        summary = trainer.fit(resume=args.resume)
    except TrainingStopped as exc:  # every rank stops at the same batch: not a failure
        summary = {"stopped": str(exc)}
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if trainer.dist.is_main:
        Path(args.summary).write_text(json.dumps(summary), encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return record(_entry)(argv)


if __name__ == "__main__":
    raise SystemExit(main())
