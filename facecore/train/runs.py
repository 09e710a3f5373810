"""Trained runs: claim a new run's folder, delete one safely, and say which models can train here.

Reading runs (:func:`list_runs`, :class:`Run`) sits below training, in :mod:`facecore.recognize.runs`.
:func:`delete_run` refuses a run that a queued or
running job trains, resumes or may be setting up, and removes the folder by first renaming it
aside, so a half-deleted run is never listed.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from facecore import workspace
from facecore.errors import RunError
from facecore.mode import require_writable
from facecore.models.registry import get_model_spec
from facecore.models.weights import weights_status
from facecore.recognize.jobs import list_jobs
from facecore.recognize.runs import (
    _active_runs,
    _mtime,
    run_path,
)
from facecore.train.config import TrainConfig


def new_run_dir(config: TrainConfig) -> Path:
    """Claim a new folder under ``models/`` for ``config``'s run (``-2``, ``-3``... when taken)."""
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


def _setting_up(path: Path) -> str | None:
    """The id of a running job that may be creating ``path``: a run it has not registered yet.

    A job's trainer creates its run folder before it records the run in ``job.json`` (building
    the model, and computing cached features, can take a while in between).
    """
    if (path / "summary.json").is_file():
        return None
    for job in list_jobs():
        if job.status != "running" or (_mtime(path) or 0.0) < (job.started or 0.0) - 1.0:
            continue
        for cfg in job.configs:
            base = cfg.get("run_name") or f"{cfg.get('dataset')}-{cfg.get('model')}-"
            if path.name.startswith(workspace.safe_name(base, what="run name")):
                return job.id
    return None


def delete_run(name: str) -> Path:
    """Delete run ``name`` (its checkpoints, metrics and evaluations) and return the folder it was.

    Refuses while a queued or running job trains or resumes it, or while a running job may be
    creating it; stop the job first. The folder is renamed aside before it is removed, so a
    half-deleted run is never listed.
    """
    require_writable("Deleting a run")
    path = run_path(name)
    job = _active_runs().get(name) or _setting_up(path)
    if job:
        raise RunError(
            f"Run {name!r} is being trained by job {job}; stop the job first "
            f"(python -m facecore jobs stop {job})."
        )
    aside = path.parent / f".deleting-{name}-{uuid.uuid4().hex[:8]}"
    os.rename(path, aside)
    try:
        shutil.rmtree(aside)
    except OSError as exc:
        raise RunError(f"Run {name!r} is no longer listed, but {aside} could not be removed: {exc}") from exc
    return path


def weights_missing(model: str) -> str | None:
    """Why ``model`` cannot train on this machine (its ImageNet weights file is absent), else None."""
    if not get_model_spec(model).pretrained:
        return None
    status = weights_status(model)
    if status["available"]:
        return None
    return (
        f"The ImageNet weights for {model} are not on this machine. Run `python -m facecore weights "
        f"download` where there is internet, or download {status['url']} and place it at "
        f"{status['path']}."
    )


def trainable_configs(configs: list[TrainConfig]) -> tuple[list[TrainConfig], dict[str, str]]:
    """Split ``configs`` into those that can train here and, by model, why the others cannot."""
    kept, skipped = [], {}
    for cfg in configs:
        reason = weights_missing(cfg.model)
        if reason:
            skipped[cfg.model] = reason
        else:
            kept.append(cfg)
    return kept, skipped


__all__ = ["delete_run", "new_run_dir", "trainable_configs", "weights_missing"]
