"""Training data: a split's face crops decoded once and held in memory, transformed batch by batch.

Crops are 256x256 uint8 RGB, 192 KiB each: 1,000 faces take under 200 MiB. Sets larger than
``MEMMAP_BYTES`` go to a memory-mapped file beside the dataset instead of RAM.

Two ways to read them:

* :class:`FaceCrops` + :func:`make_loader`: ``(transform(image), label)`` per item, the
  torchvision way (evaluation, inference, anything indexing single images).
* :func:`batch_loader` with a :class:`BatchTransform`: what the trainer uses. Each batch is
  gathered as one uint8 tensor and transformed as a whole (one resampling for every geometric
  op, one colour matrix, batched noise), with a generator seeded by ``(seed, batch number)``:
  the same seed gives the same batches whatever the number of workers. Without any random
  augmentation the batch equals the eval transform applied image by image, bit for bit.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.transforms.v2 import functional as TF

from facecore.data.transforms import JITTER, AugmentConfig

if TYPE_CHECKING:  # a model spec is read, never built: data knows no models
    from facecore.models.registry import ModelSpec


MEMMAP_BYTES = 4 * 1024**3

#: torchvision's grayscale weights (rgb_to_grayscale), used by contrast and saturation.
GREY = (0.2989, 0.587, 0.114)
#: RandomResizedCrop's aspect-ratio range and number of tries (torchvision's defaults).
RRC_RATIO = (3 / 4, 4 / 3)
RRC_TRIES = 10


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

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The untransformed crops at ``index`` as one ``N x 3 x H x W`` uint8 tensor, and labels.

        The tensor is a view of an ``N x H x W x 3`` copy (channels-last strides).
        """
        arr = np.ascontiguousarray(self.images[index.numpy()])
        return torch.from_numpy(arr).permute(0, 3, 1, 2), self.labels[index]


# --- batched transforms ----------------------------------------------------------------------


class BatchTransform:
    """:func:`~facecore.data.transforms.train_transform` of ``aug`` for a whole uint8 batch at once.

    The same random ops with the same ranges, drawn per image from ``generator``:

    * rotation + translation + random resized crop (or the eval resize + centre crop) + flip
      are composed into one affine map per image and resampled once, bilinearly, from the
      uint8 crop straight to ``input_size`` (outside the image is black, as in RandomAffine);
    * colour jitter (brightness, contrast, saturation, hue; a random order per image, as
      ColorJitter) is composed into one 3x3 colour matrix + offset per image, applied in one
      pass and clipped to [0, 1] once (ColorJitter clips after each op: only near-saturated
      pixels differ). Hue is a rotation of the colour about the grey axis by ``hue * 360``
      degrees, a linear hue shift (as GPU pipelines do it) instead of ColorJitter's HSV round
      trip, which costs more than all the other ops together: greys stay grey and colours turn
      the same way, about 0.6x as far as the HSV shift (on LFW faces, hue 0.02: under 2 grey
      levels on average);
    * Gaussian noise on [0, 1] pixels (clipped), then Normalize.

    With no random op on (:meth:`AugmentConfig.none`) the output equals :func:`eval_transform`
    applied image by image, exactly; a flip alone is exact too.
    """

    def __init__(self, spec: ModelSpec, aug: AugmentConfig) -> None:
        self.spec = spec
        self.aug = aug
        self.size = spec.input_size
        self.geometric = bool(aug.rotation or aug.translate or aug.random_resized_crop)
        grey = torch.tensor(GREY, dtype=torch.float64)
        self._grey = grey
        self._ones = torch.ones(3, dtype=torch.float64)
        self._mean = list(spec.mean)
        self._std = list(spec.std)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``N x 3 x H x W`` uint8 -> ``N x 3 x input_size x input_size`` float32, normalised."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"expected an N x 3 x H x W uint8 batch, got {tuple(images.shape)}, {images.dtype}"
            )
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        p = self._draw(images.shape[0], images.shape[2], images.shape[3], gen)
        a = self.aug
        if self.geometric:
            x = self._warp(images, p)  # float, 0..255
            scale = 1.0 / 255.0
        else:
            x = self._eval_crop(images)
            if a.hflip and bool(p["flip"].any()):
                x[p["flip"]] = x[p["flip"]].flip(-1)
            x = TF.to_dtype(x, torch.float32, scale=True)
            scale = 1.0
        if a.color_jitter:
            x = self._jitter(x, p, scale)
        elif scale != 1.0:
            x.mul_(scale)
        if a.gaussian_noise_sigma:
            noise = torch.randn(x.shape, generator=gen, dtype=x.dtype)
            x.add_(noise, alpha=a.gaussian_noise_sigma).clamp_(0.0, 1.0)
        return TF.normalize(x, self._mean, self._std, inplace=True).contiguous()

    # -- random parameters: every one is drawn whether its switch is on or not, so switching one
    #    augmentation off leaves the others' draws (and results) unchanged
    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        def u(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=g, dtype=torch.float64)

        a = self.aug
        p: dict[str, torch.Tensor] = {}
        p["angle"] = (u(n) * 2 - 1) * a.rotation
        p["tx"] = torch.round((u(n) * 2 - 1) * a.translate * w)
        p["ty"] = torch.round((u(n) * 2 - 1) * a.translate * h)
        area = u(n, RRC_TRIES) * (a.scale[1] - a.scale[0]) + a.scale[0]
        log_lo, log_hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
        ratio = torch.exp(u(n, RRC_TRIES) * (log_hi - log_lo) + log_lo)
        p["box"] = _resized_crop_boxes(area * h * w, ratio, u(n, 2), h, w)
        p["flip"] = u(n) < 0.5
        strength = torch.tensor([JITTER["brightness"], JITTER["contrast"], JITTER["saturation"]])
        p["bcs"] = 1 + (u(n, 3) * 2 - 1) * strength
        p["hue"] = (u(n) * 2 - 1) * JITTER["hue"]
        p["order"] = torch.argsort(u(n, 4), dim=1)
        return p

    def _eval_crop(self, images: torch.Tensor) -> torch.Tensor:
        x = TF.resize(images, [self.spec.resize_size], antialias=True)
        return TF.center_crop(x, [self.size, self.size]).contiguous()

    def _eval_box(self, h: int, w: int) -> tuple[float, float, float, float]:
        """The source-pixel box (top, left, height, width) that Resize + CenterCrop keeps."""
        r = self.spec.resize_size
        rh, rw = (r, int(r * w / h)) if h <= w else (int(r * h / w), r)
        top = int(round((rh - self.size) / 2.0)) * h / rh
        left = int(round((rw - self.size) / 2.0)) * w / rw
        return top, left, self.size * h / rh, self.size * w / rw

    def _warp(self, images: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """One bilinear resampling per image through the composed affine map (0..255 floats)."""
        n, _, h, w = images.shape
        o = self.size
        a = self.aug
        if a.random_resized_crop:
            top, left, ch, cw = p["box"].unbind(1)
        else:
            box = self._eval_box(h, w)
            top, left, ch, cw = (torch.full((n,), v, dtype=torch.float64) for v in box)
        # output pixel-centre coordinates X, Y in [0, o] -> crop (flipped) -> rotated/shifted image
        flip = p["flip"] & a.hflip
        sx = torch.where(flip, -cw / o, cw / o)
        x0 = torch.where(flip, left + cw, left)
        sy, y0 = ch / o, top
        # RandomAffine's angle is counter-clockwise on screen: sampling turns the other way
        theta = -torch.deg2rad(p["angle"]) if a.rotation else torch.zeros(n, dtype=torch.float64)
        tx = p["tx"] if a.translate else torch.zeros(n, dtype=torch.float64)
        ty = p["ty"] if a.translate else torch.zeros(n, dtype=torch.float64)
        cos, sin = torch.cos(theta), torch.sin(theta)
        # source = centre + R(theta) (warped - centre - t): warped = (x0 + sx X, y0 + sy Y)
        dx, dy = x0 - w / 2 - tx, y0 - h / 2 - ty
        ax, bx, cx = cos * sx, -sin * sy, w / 2 + cos * dx - sin * dy
        ay, by, cy = sin * sx, cos * sy, h / 2 + sin * dx + cos * dy
        # to grid_sample's normalised coordinates (align_corners=False): u = 2 X_src / w - 1
        coef = torch.stack([ax * 2 / w, bx * 2 / w, cx * 2 / w - 1, ay * 2 / h, by * 2 / h, cy * 2 / h - 1])
        coef = coef.T.to(torch.float32).view(n, 2, 3)
        pix = (torch.arange(o, dtype=torch.float32) + 0.5)[None, :, None]
        # grid[n, i, j] = A X_j + B Y_i + C: a column part plus a row part, one broadcast add
        cols = coef[:, None, :, 0] * pix + coef[:, None, :, 2]
        rows = coef[:, None, :, 1] * pix
        grid = torch.empty(n, o, o, 2)  # contiguous: grid_sample reads it much faster
        torch.add(cols[:, None, :, :], rows[:, :, None, :], out=grid)
        # a channels-last float input (the crops' own HWC layout) samples faster than NCHW
        return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _jitter(self, x: torch.Tensor, p: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
        """ColorJitter as one colour matrix + offset per image, in each image's random order."""
        n = x.shape[0]
        mean0 = x.mean(dim=(2, 3)).to(torch.float64) * scale  # the [0, 1] image's channel means
        eye = torch.eye(3, dtype=torch.float64).expand(n, 3, 3)
        m = eye.clone()
        b = torch.zeros(n, 3, dtype=torch.float64)
        grey_row = self._ones[:, None] * self._grey[None, :]  # 3x3: every channel -> grey
        hue = _grey_axis_rotation(p["hue"] * 2 * math.pi)
        bright, contrast, sat = p["bcs"].unbind(1)
        for k in range(4):
            op = p["order"][:, k]
            f = torch.ones(n, dtype=torch.float64)
            step = eye.clone()
            shift = torch.zeros(n, 3, dtype=torch.float64)
            is_b, is_c, is_s, is_h = (op == 0), (op == 1), (op == 2), (op == 3)
            f = torch.where(is_b, bright, f)
            f = torch.where(is_c, contrast, f)
            # brightness, contrast: f * img; contrast also adds (1 - f) * mean grey of the image now
            step = torch.where((is_b | is_c)[:, None, None], f[:, None, None] * eye, step)
            grey_now = ((m @ mean0[:, :, None]).squeeze(2) + b) @ self._grey
            shift = torch.where(is_c[:, None], ((1 - contrast) * grey_now)[:, None].expand(n, 3), shift)
            # saturation: blend with the per-pixel grey image
            sat_m = sat[:, None, None] * eye + (1 - sat)[:, None, None] * grey_row
            step = torch.where(is_s[:, None, None], sat_m, step)
            step = torch.where(is_h[:, None, None], hue, step)
            m = step @ m
            b = (step @ b[:, :, None]).squeeze(2) + shift
        m = (m * scale).to(torch.float32)[:, :, :, None, None]
        b = b.to(torch.float32)[:, :, None, None]
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        for c in range(3):  # out_c = m_c0 r + m_c1 g + m_c2 b + b_c: cheaper than a batched 3x3 matmul
            o = torch.mul(x[:, 0], m[:, c, 0], out=out[:, c])
            o.addcmul_(x[:, 1], m[:, c, 1]).addcmul_(x[:, 2], m[:, c, 2]).add_(b[:, c])
        return out.clamp_(0.0, 1.0)


def _grey_axis_rotation(angle: torch.Tensor) -> torch.Tensor:
    """Per-angle 3x3 rotations of RGB about the grey axis (1, 1, 1) (Rodrigues' formula)."""
    k = torch.full((3,), 1 / math.sqrt(3), dtype=torch.float64)
    cross = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=torch.float64)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    eye = torch.eye(3, dtype=torch.float64)
    return cos * eye + sin * cross + (1 - cos) * torch.outer(k, k)


def _resized_crop_boxes(
    target_area: torch.Tensor, ratio: torch.Tensor, pos: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """RandomResizedCrop.get_params for a batch: ``N x 4`` (top, left, height, width)."""
    cw = torch.round(torch.sqrt(target_area * ratio))
    ch = torch.round(torch.sqrt(target_area / ratio))
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)
    cw, ch = cw.gather(1, first).squeeze(1), ch.gather(1, first).squeeze(1)
    # no try fitted: torchvision's fallback, the whole image or its centre at the ratio limit
    in_ratio = w / h
    if in_ratio < RRC_RATIO[0]:
        fw, fh = w, int(round(w / RRC_RATIO[0]))
    elif in_ratio > RRC_RATIO[1]:
        fw, fh = int(round(h * RRC_RATIO[1])), h
    else:
        fw, fh = w, h
    fits = ok.any(dim=1)
    cw = torch.where(fits, cw, torch.full_like(cw, fw))
    ch = torch.where(fits, ch, torch.full_like(ch, fh))
    top = torch.where(fits, torch.floor(pos[:, 0] * (h - ch + 1)), torch.full_like(ch, (h - fh) // 2))
    left = torch.where(fits, torch.floor(pos[:, 1] * (w - cw + 1)), torch.full_like(cw, (w - fw) // 2))
    return torch.stack([top, left, ch, cw], dim=1)


def batch_seed(seed: int, batch: int) -> int:
    """The generator seed of batch ``batch`` in an epoch seeded ``seed`` (well mixed, 63 bits)."""
    words = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF, batch]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0]) >> 1


class CropBatches(Dataset):
    """Item ``b`` is batch ``b`` of an epoch: items in a seeded order, gathered and transformed together.

    ``data`` is a :class:`FaceCrops` (gathered as uint8, then ``transform``) or a
    ``TensorDataset`` (such as cached features: gathered, ``transform`` None).
    """

    def __init__(
        self,
        crops: FaceCrops | TensorDataset,
        transform: BatchTransform | None,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        order: Sequence[int] | None = None,
    ) -> None:
        self.crops = crops
        self.transform = transform
        self.batch_size = batch_size
        self.seed = seed
        n = len(crops)
        if order is not None:  # e.g. this rank's share from a DistributedSampler
            self.order = torch.as_tensor(list(order), dtype=torch.long)
        else:
            generator = torch.Generator().manual_seed(seed)
            self.order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= b < len(self):
            raise IndexError(b)
        index = self.order[b * self.batch_size : (b + 1) * self.batch_size]
        if isinstance(self.crops, TensorDataset):
            x, labels = (t[index] for t in self.crops.tensors)
        else:
            x, labels = self.crops.batch(index)
        if self.transform is not None:
            x = self.transform(x, torch.Generator().manual_seed(batch_seed(self.seed, b)))
        return x, labels


def batch_loader(
    crops: FaceCrops | TensorDataset,
    transform: BatchTransform | None,
    *,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int,
    pin_memory: bool = False,
    order: Sequence[int] | None = None,
) -> DataLoader:
    """Batches of ``crops`` through ``transform``; the same seed gives the same batches,
    with any number of ``workers`` (0: in this process, on torch's threads). ``order``: the items
    to take, in that order (default: all, shuffled by ``seed`` when ``shuffle``)."""
    batches = CropBatches(crops, transform, batch_size=batch_size, shuffle=shuffle, seed=seed, order=order)
    return DataLoader(
        batches,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=False,
    )


def default_workers(random_augment: bool, device: str = "cpu") -> int:
    """DataLoader workers for :func:`batch_loader`.

    On a CPU none: batches are transformed in the training process on torch's threads, and
    worker processes would only compete with the training threads for the same cores. On a
    GPU (or MPS) with random augmentation, up to half the cores (max 4) prepare batches while
    the accelerator trains.
    """
    if not random_augment or device == "cpu":
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
    )
