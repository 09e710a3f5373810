"""Cached features: a pretrained model's frozen layers computed once per image, not every epoch.

Exact when no online augmentation runs (the frozen trunk has no randomness), and several times
faster on a CPU: only the layers that train run each epoch, on the cached outputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from facecore.data.loaders import BatchTransform, FaceCrops, batch_loader
from facecore.data.transforms import is_deterministic
from facecore.models.registry import ModelSpec
from facecore.train import distributed
from facecore.train.config import TrainConfig
from facecore.train.epoch import to_device


def use_feature_cache(config: TrainConfig, spec: ModelSpec) -> bool:
    """Whether ``config`` trains on cached features (``auto``: pretrained, every augmentation off)."""
    if config.cache_features == "off" or not is_deterministic(config.augment):
        return False
    return config.cache_features == "on" or spec.pretrained


@torch.inference_mode()
def trunk_features(
    trunk: nn.Module,
    data: FaceCrops,
    transform: BatchTransform,
    *,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
    channels_last: bool,
    ctx: distributed.Context,
) -> TensorDataset:
    """The frozen trunk's output for every image, once (exact: it has no randomness).

    With several ranks each computes its own share of the images, and the shares are gathered.
    """
    trunk.eval()
    out = []
    mine = distributed.strided(len(data), ctx)
    loader = batch_loader(data, transform, batch_size=64, shuffle=False, workers=0, seed=0, order=mine)
    for x, _ in loader:
        x, _ = to_device(x, torch.zeros(0), device, channels_last)
        with autocast():
            out.append(trunk(x).float().cpu())
    feats = torch.cat(out) if out else torch.zeros(0)
    if ctx.enabled:
        feats = torch.from_numpy(distributed.gather(mine, {"f": feats.numpy()}, ctx)["f"])
    return TensorDataset(feats, data.labels)
