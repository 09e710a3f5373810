"""Image preprocessing and augmentation (torchvision.transforms.v2), each augmentation switchable.

Inputs are face crops as PIL RGB images (or uint8 HWC numpy arrays), normally 256x256.

* :func:`eval_transform`: Resize(resize_size) -> CenterCrop(input_size) -> float [0, 1] ->
  Normalize(mean, std), all taken from the model's :class:`~facecore.models.registry.ModelSpec`.
* :func:`train_transform`: the same with random rotation, translation, resized crop, flip and
  colour jitter on the image, and Gaussian noise on the [0, 1] tensor before Normalize.
  With :meth:`AugmentConfig.none` it equals the eval transform.
* :func:`augment_image`: the offline augmentation (``dataset augment``): the same random ops,
  but the result stays a ``size`` x ``size`` uint8 PIL image.

The v2 transforms draw from torch's global RNG: seed it (``torch.manual_seed``) for repeatable
training; :func:`augment_image` takes a ``seed`` and leaves the global RNG as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from facecore.errors import CheckpointError, ConfigError

if TYPE_CHECKING:  # a model spec is read, never built: data knows no models
    from facecore.models.registry import ModelSpec


#: ColorJitter strengths used when ``AugmentConfig.color_jitter`` is on.
JITTER = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.02}


@dataclass
class AugmentConfig:
    """Which random augmentations run; every one can be switched off.

    ``rotation``: max degrees either way (0 = off); ``random_resized_crop`` with area ``scale``;
    ``gaussian_noise_sigma`` on [0, 1] pixels (0 = off); ``hflip``; ``color_jitter``
    (brightness/contrast/saturation 0.2, hue 0.02); ``translate``: max shift as a fraction of
    the side (0 = off).
    """

    rotation: float = 20.0
    random_resized_crop: bool = True
    scale: tuple[float, float] = (0.8, 1.0)
    gaussian_noise_sigma: float = 0.01
    hflip: bool = True
    color_jitter: bool = True
    translate: float = 0.05

    def __post_init__(self) -> None:
        self.scale = (float(self.scale[0]), float(self.scale[1]))
        if not 0 <= self.rotation <= 180:
            raise ConfigError(f"rotation must be between 0 and 180 degrees, got {self.rotation}.")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ConfigError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}.")
        if not 0 <= self.gaussian_noise_sigma <= 1:
            raise ConfigError(
                f"gaussian_noise_sigma must be between 0 and 1, got {self.gaussian_noise_sigma}."
            )
        if not 0 <= self.translate < 1:
            raise ConfigError(f"translate must be in [0, 1), got {self.translate}.")

    @classmethod
    def none(cls) -> AugmentConfig:
        """Every augmentation off (the train transform then equals the eval transform)."""
        return cls(
            rotation=0.0,
            random_resized_crop=False,
            gaussian_noise_sigma=0.0,
            hflip=False,
            color_jitter=False,
            translate=0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (``scale`` as a list)."""
        d = asdict(self)
        d["scale"] = list(self.scale)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AugmentConfig:
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"Unknown augmentation setting(s): {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}."
            )
        values = dict(d)
        if "scale" in values:
            values["scale"] = tuple(values["scale"])
        return cls(**values)


#: The online augmentations that can each be switched on (at their :class:`AugmentConfig`
#: default) or off, in the order the dashboard shows them.
AUGMENT_SWITCHES = (
    "rotation", "random_resized_crop", "gaussian_noise_sigma", "hflip", "color_jitter", "translate"
)


def augment_from_switches(on: Mapping[str, bool]) -> AugmentConfig:
    """An :class:`AugmentConfig` with each of :data:`AUGMENT_SWITCHES` at its default where
    ``on[name]`` is true, else off (a name not in ``on`` is off)."""
    full, off = AugmentConfig(), AugmentConfig.none()
    return AugmentConfig(**{name: getattr(full if on.get(name) else off, name) for name in AUGMENT_SWITCHES})


def augment_switches_of(aug: AugmentConfig) -> dict[str, bool]:
    """Which of :data:`AUGMENT_SWITCHES` are on in ``aug`` (not at their off value)."""
    off = AugmentConfig.none()
    return {name: getattr(aug, name) != getattr(off, name) for name in AUGMENT_SWITCHES}


def is_deterministic(aug: AugmentConfig) -> bool:
    """True when every random augmentation is off (outputs depend on the image alone)."""
    return (
        aug.rotation == 0
        and not aug.random_resized_crop
        and aug.gaussian_noise_sigma == 0
        and not aug.hflip
        and not aug.color_jitter
        and aug.translate == 0
    )


def _as_pil(arr: np.ndarray) -> Image.Image:
    """uint8 HWC (or HW) numpy array -> PIL RGB, so arrays and PIL images resize identically."""
    return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")


def _accept_numpy() -> v2.Transform:
    return v2.Lambda(_as_pil, np.ndarray)


def _to_float() -> list[v2.Transform]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]


def _eval_pipeline(
    input_size: int, resize_size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> v2.Compose:
    return v2.Compose(
        [
            _accept_numpy(),
            v2.Resize(resize_size, antialias=True),
            v2.CenterCrop(input_size),
            *_to_float(),
            v2.Normalize(mean=list(mean), std=list(std)),
        ]
    )


def eval_transform(spec: ModelSpec) -> v2.Compose:
    """Resize(resize_size) + CenterCrop(input_size) + float [0, 1] + Normalize(mean, std)."""
    return _eval_pipeline(spec.input_size, spec.resize_size, spec.mean, spec.std)


def _geometric_and_colour(aug: AugmentConfig, *, crop_size: int | None) -> list[v2.Transform]:
    """The random image-space ops, in order; ``crop_size`` None leaves the size unchanged."""
    ops: list[v2.Transform] = []
    if aug.rotation or aug.translate:
        # rotation and translation in one affine warp: the image is resampled once, bilinearly
        ops.append(
            v2.RandomAffine(
                degrees=aug.rotation,
                translate=(aug.translate, aug.translate) if aug.translate else None,
                interpolation=v2.InterpolationMode.BILINEAR,
            )
        )
    if aug.random_resized_crop and crop_size is not None:
        ops.append(v2.RandomResizedCrop(crop_size, scale=aug.scale, antialias=True))
    if aug.hflip:
        ops.append(v2.RandomHorizontalFlip())
    if aug.color_jitter:
        ops.append(v2.ColorJitter(**JITTER))
    return ops


def train_transform(spec: ModelSpec, aug: AugmentConfig) -> v2.Compose:
    """Training transform: the random ops of ``aug``, then float, noise, Normalize.

    Without random resized crop the image is Resize(resize_size) + CenterCrop(input_size) as
    in evaluation. Noise is added to the [0, 1] image (clipped) before normalisation.
    """
    ops = _geometric_and_colour(aug, crop_size=spec.input_size)
    if not aug.random_resized_crop:
        crop = [v2.Resize(spec.resize_size, antialias=True), v2.CenterCrop(spec.input_size)]
        # geometric ops first, then crop; flips and colour after, as with the random crop
        n_geo = 1 if aug.rotation or aug.translate else 0
        ops = ops[:n_geo] + crop + ops[n_geo:]
    ops = [_accept_numpy(), *ops, *_to_float()]
    if aug.gaussian_noise_sigma:
        ops.append(v2.GaussianNoise(mean=0.0, sigma=aug.gaussian_noise_sigma, clip=True))
    ops.append(v2.Normalize(mean=list(spec.mean), std=list(spec.std)))
    return v2.Compose(ops)


def preprocessing_dict(spec: ModelSpec) -> dict[str, Any]:
    """What evaluation preprocessing needs, JSON-friendly, to store in a checkpoint."""
    return {
        "input_size": spec.input_size,
        "resize_size": spec.resize_size,
        "mean": list(spec.mean),
        "std": list(spec.std),
    }


def eval_transform_from_dict(d: Mapping[str, Any]) -> v2.Compose:
    """Rebuild :func:`eval_transform` from :func:`preprocessing_dict` output alone."""
    try:
        input_size, resize_size = int(d["input_size"]), int(d["resize_size"])
        mean, std = tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"Preprocessing settings are incomplete or malformed: {exc}") from exc
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0 or input_size < 1 or resize_size < 1:
        raise CheckpointError(f"Preprocessing settings are invalid: {dict(d)}")
    return _eval_pipeline(input_size, resize_size, mean, std)


def augment_image(
    img: Image.Image | np.ndarray,
    aug: AugmentConfig,
    *,
    size: int = 256,
    seed: int | None = None,
) -> Image.Image:
    """One randomly augmented copy of ``img`` as a ``size`` x ``size`` RGB PIL image.

    The same ops as :func:`train_transform` (random resized crop back to ``size``), with the
    Gaussian noise added to [0, 1] pixels and rounded back to uint8. ``seed`` makes the result
    repeatable without touching torch's global RNG state.
    """
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        ops = _geometric_and_colour(aug, crop_size=size)
        out = v2.Compose(ops)(img) if ops else img.copy()
        if aug.gaussian_noise_sigma:
            x = torch.from_numpy(np.asarray(out, dtype=np.float32) / 255.0)
            x = x + torch.randn_like(x) * aug.gaussian_noise_sigma
            arr = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()
            out = Image.fromarray(arr)
    return out
