"""Locating a run: its checkpoint, the dataset it was trained on, and its saved evaluations.

``<run>/eval_<split>/metrics.json`` (beside ``predictions.csv``) is what
:func:`~facecore.evaluate.evaluation.evaluate_run` wrote; :func:`cached_evaluation` returns it
instead of evaluating again while nothing it depends on has changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facecore import workspace
from facecore.data.dataset import FaceDataset, load_dataset
from facecore.errors import CheckpointError, DatasetError, FacecoreError
from facecore.recognize.result import Evaluation


def resolve_run(run: str | Path) -> tuple[Path, Path]:
    """``(checkpoint file, run folder)`` for a run folder, a ``.pt`` file, or a run name under models/."""
    path = Path(run)
    if path.is_file():
        return path, path.parent
    if path.is_dir():
        return path / "best.pt", path
    candidate = workspace.models_dir() / str(run)
    if str(run) and candidate.is_dir():
        return candidate / "best.pt", candidate
    root = workspace.models_dir()
    have = sorted(p.name for p in root.iterdir() if (p / "best.pt").is_file()) if root.is_dir() else []
    raise CheckpointError(
        f"No run or checkpoint {str(run)!r}: not a file, not a folder, and not a run under {root} "
        f"(runs: {', '.join(have) or 'none yet'})."
    )


def eval_dir(run_dir: Path, checkpoint: Path, split: str) -> Path:
    """``<run>/eval_<split>`` for best.pt; ``<run>/eval_<split>-<stem>`` for any other checkpoint file."""
    suffix = "" if checkpoint.name == "best.pt" else f"-{checkpoint.stem}"
    return run_dir / f"eval_{split}{suffix}"


def run_dataset(ckpt: dict[str, Any], checkpoint: Path) -> FaceDataset:
    """The dataset the checkpoint was trained on, checked to have the same classes."""
    info = ckpt.get("dataset") or {}
    name = info.get("name") or (ckpt.get("config") or {}).get("dataset")
    if not name:
        raise CheckpointError(f"{checkpoint}: the checkpoint does not say which dataset it was trained on.")
    try:
        dataset = load_dataset(name)
    except DatasetError as exc:
        raise DatasetError(
            f"{checkpoint} was trained on dataset {name!r}, which is not in this workspace any more "
            f"({exc}). Re-import it under the same name with the same split seed "
            f"({info.get('split_seed')}) to evaluate this run."
        ) from exc
    if list(dataset.classes) != list(ckpt["classes"]):
        raise DatasetError(
            f"Dataset {name!r} has changed since {checkpoint} was trained: its classes are now "
            f"{dataset.classes}, the model's are {ckpt['classes']}. Evaluate on the dataset as it was, "
            "or retrain."
        )
    return dataset


def cached_evaluation(
    run: str | Path, split: str = "test", *, need_latency: bool = True
) -> Evaluation | None:
    """The saved ``metrics.json`` of ``run`` on ``split`` if still valid, else None.

    Valid: newer than the checkpoint and than the dataset's manifest, for the same checkpoint
    file (name and size) and split, with its predictions.csv present (and latency measured, if
    asked for). The saved paths are absolute; a workspace moved or copied to another folder or
    machine (with the files' times kept: ``cp -a``, ``rsync -a``) keeps its evaluations, with the
    paths in the returned dict pointing at the files where they are now.
    """
    checkpoint, run_dir = resolve_run(run)
    path = eval_dir(run_dir, checkpoint, split) / "metrics.json"
    if not path.is_file() or not checkpoint.is_file():
        return None
    try:
        result = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(result, dict):
        return None
    try:
        dataset = workspace.dataset_path(str(result.get("dataset", "")))
    except FacecoreError:
        return None
    mtime = path.stat().st_mtime
    manifest = dataset / "manifest.csv"
    predictions = path.parent / "predictions.csv"
    fresh = (
        mtime >= checkpoint.stat().st_mtime
        and manifest.is_file()
        and mtime >= manifest.stat().st_mtime
        and result.get("split") == split
        and Path(str(result.get("checkpoint", ""))).name == checkpoint.name
        and result.get("checkpoint_bytes") == checkpoint.stat().st_size
        and predictions.is_file()
        and (result.get("latency_ms") is not None or not need_latency)
    )
    if not fresh:
        return None
    try:
        return Evaluation.from_dict(
            result
            | {
                "run_dir": str(run_dir.resolve()),
                "checkpoint": str(checkpoint.resolve()),
                "dataset_path": str(dataset.resolve()),
                "predictions_csv": str(predictions.resolve()),
                "metrics_json": str(path.resolve()),
            }
        )
    except ValueError:  # written by another version of facecore: evaluate again
        return None


__all__ = ["cached_evaluation", "eval_dir", "resolve_run", "run_dataset"]
