"""A finished run's Unknown threshold: the open-set score and its threshold, chosen on validation
and stored in the run's checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facecore.constants import UNKNOWN
from facecore.data.dataset import FaceDataset
from facecore.data.loaders import FaceCrops, make_loader
from facecore.data.transforms import eval_transform
from facecore.models.checkpoint import load_checkpoint, save_checkpoint
from facecore.models.registry import ModelSpec
from facecore.recognize.models import predict_outputs
from facecore.recognize.openset import (
    choose_score,
    class_centroids,
    open_set_scores,
    suggest_threshold,
    sweep_scores,
    unknown_scores,
)


def calibrate_open_set(
    model: nn.Module,
    dataset: FaceDataset,
    spec: ModelSpec,
    device: torch.device,
    *,
    batch_size: int,
    target_far: float,
) -> dict[str, Any]:
    """Choose the Unknown score on validation and calibrate its threshold (best weights loaded).

    The whole model (not the cached-feature head) runs on the training faces, for the class
    centroids of their embeddings, and on the validation faces, for each score's AUROC; the
    threshold is set on whichever of max softmax and centroid cosine separates better. Returns
    ``score``, ``auroc``, ``suggestion`` (the threshold and its figures) and ``centroids``.
    """
    transform = eval_transform(spec)
    model = model.to(device)
    classes = dataset.classes

    def outputs(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        data = FaceCrops(dataset.items(split), transform, cache_dir=dataset.path / ".cache")
        loader = make_loader(data, batch_size=max(batch_size, 64), shuffle=False, workers=0, seed=0)
        return predict_outputs(model, loader, device)

    _, train_labels, train_emb = outputs("train")  # both splits are non-empty (check_trainable)
    logits, labels, emb = outputs("val")
    centroids = class_centroids(train_emb, train_labels, len(classes))
    unknown = classes.index(UNKNOWN) if UNKNOWN in classes else None
    aurocs = open_set_scores(logits, labels, unknown, emb, centroids) or {}
    score = choose_score(aurocs)
    conf = unknown_scores(logits, emb, centroids)[score]
    rows = sweep_scores(conf, logits.argmax(1), labels, unknown)
    suggestion = suggest_threshold(rows, target_far) | {"score": score}
    return {"score": score, "auroc": aurocs, "suggestion": suggestion, "centroids": centroids}


def store_calibration(run_dir: Path, score: str, suggestion: dict[str, Any], centroids: np.ndarray) -> None:
    """Write the threshold, its score and the class centroids into ``best.pt`` and ``last.pt``."""
    stored = torch.from_numpy(centroids).to(torch.float16)
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(run_dir / name)
        ckpt["threshold"] = float(suggestion["threshold"])
        ckpt["threshold_info"] = {k: v for k, v in suggestion.items() if v is not None}
        ckpt["open_set_score"] = score
        ckpt["centroids"] = stored
        save_checkpoint(run_dir / name, {k: v for k, v in ckpt.items() if k not in ("format", "versions")})
