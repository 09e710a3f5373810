"""Training data: a split's face crops decoded once and held in memory, transforms applied per item.

Crops are 256x256 uint8 RGB, 192 KiB each: 1,000 faces take under 200 MiB. Sets larger than
``MEMMAP_BYTES`` go to a memory-mapped file beside the dataset instead of RAM.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

MEMMAP_BYTES = 4 * 1024**3


def decode_crops(paths: Sequence[Path], *, cache_dir: Path | None = None) -> np.ndarray:
    """``N x H x W x 3`` uint8 array of the crops at ``paths`` (all the same size)."""
    if not paths:
        return np.zeros((0, 256, 256, 3), dtype=np.uint8)
    with Image.open(paths[0]) as im:
        w, h = im.size
    shape = (len(paths), h, w, 3)
    nbytes = int(np.prod(shape))
    if cache_dir is not None and nbytes > MEMMAP_BYTES:
        key = hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]
        cache_dir.mkdir(parents=True, exist_ok=True)
        out = np.lib.format.open_memmap(
            cache_dir / f"crops-{key}.npy", mode="w+", dtype=np.uint8, shape=shape
        )
    else:
        out = np.empty(shape, dtype=np.uint8)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            img = im.convert("RGB")
            if img.size != (w, h):
                img = img.resize((w, h), Image.Resampling.BILINEAR)
            out[i] = np.asarray(img)
    return out


class FaceCrops(Dataset):
    """``(transform(image), label)`` pairs over crops decoded once into memory."""

    def __init__(
        self,
        items: Sequence[tuple[Path, int]],
        transform: Callable[[torch.Tensor], torch.Tensor],
        *,
        cache_dir: Path | None = None,
    ) -> None:
        self.paths = [p for p, _ in items]
        self.labels = torch.tensor([label for _, label in items], dtype=torch.long)
        self.images = decode_crops(self.paths, cache_dir=cache_dir)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        chw = torch.from_numpy(np.ascontiguousarray(self.images[i])).permute(2, 0, 1)
        return self.transform(chw), self.labels[i]


def default_workers(random_augment: bool) -> int:
    """DataLoader workers: none when items are cheap, else up to half the cores (max 4)."""
    if not random_augment:
        return 0
    return max(0, min(4, (os.cpu_count() or 1) // 2))


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int,
    pin_memory: bool = False,
) -> DataLoader:
    """A seeded DataLoader: the same seed gives the same batches and augmentations."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        generator=generator,
        pin_memory=pin_memory,
        persistent_workers=False,
        drop_last=False,
    )
