"""Preprocessing and augmentation: shapes, normalisation, switches, noise level, repeatability."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from facecore.data.transforms import (
    AugmentConfig,
    augment_image,
    eval_transform,
    eval_transform_from_dict,
    is_deterministic,
    preprocessing_dict,
    train_transform,
)
from facecore.errors import FacecoreError
from facecore.models.registry import get_model_spec

RESNET = get_model_spec("resnet50_pretrained")
CNN = get_model_spec("custom_cnn")


def _face(seed: int = 0, size: int = 256) -> Image.Image:
    """A structured (not constant) RGB image, so geometric ops visibly change it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx, yy, (xx + yy) // 2], axis=-1).astype(np.float64) * 255 / (size - 1)
    noise = rng.integers(0, 40, size=(size, size, 3))
    return Image.fromarray(np.clip(base * 0.8 + noise, 0, 255).astype(np.uint8))


def _constant(value: int = 128, size: int = 256) -> Image.Image:
    return Image.new("RGB", (size, size), (value, value, value))


def test_eval_transform_shape_and_normalisation() -> None:
    out = eval_transform(RESNET)(_face())
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    gray = eval_transform(RESNET)(Image.new("RGB", (256, 256), (200, 100, 50)))
    rgb = (200, 100, 50)
    expected = [(v / 255 - m) / s for v, m, s in zip(rgb, RESNET.mean, RESNET.std, strict=True)]
    for c in range(3):
        assert torch.allclose(gray[c], torch.full((224, 224), expected[c]), atol=1e-5)
    cnn = eval_transform(CNN)(_constant(255))
    assert torch.allclose(cnn, torch.ones(3, 224, 224), atol=1e-6)  # (1 - 0.5) / 0.5


def test_eval_transform_is_center_crop_of_resize() -> None:
    img = _face(3)
    out = eval_transform(CNN)(img)
    arr = np.asarray(img, dtype=np.float32)[16:240, 16:240] / 255  # 256 -> crop 224 centred
    assert torch.allclose(out, torch.from_numpy((arr - 0.5) / 0.5).permute(2, 0, 1), atol=1e-6)
    assert torch.equal(eval_transform(CNN)(np.asarray(img)), out)  # uint8 HWC numpy works too


def test_train_transform_is_random_and_shaped() -> None:
    tf = train_transform(RESNET, AugmentConfig())
    img = _face()
    torch.manual_seed(7)
    a = tf(img)
    b = tf(img)
    torch.manual_seed(7)
    a_again = tf(img)
    assert a.shape == b.shape == (3, 224, 224) and a.dtype == torch.float32
    assert not torch.equal(a, b)
    assert torch.equal(a, a_again)
    assert not torch.equal(a, eval_transform(RESNET)(img))


@pytest.mark.parametrize("spec", [RESNET, CNN])
def test_no_augmentation_equals_eval(spec) -> None:
    aug = AugmentConfig.none()
    assert is_deterministic(aug)
    img = _face(1)
    assert torch.equal(train_transform(spec, aug)(img), eval_transform(spec)(img))


@pytest.mark.parametrize(
    "switch",
    [
        {"rotation": 15.0},
        {"random_resized_crop": True},
        {"hflip": True},
        {"color_jitter": True},
        {"translate": 0.1},
        {"gaussian_noise_sigma": 0.05},
    ],
)
def test_each_augmentation_switches_on_alone(switch) -> None:
    aug = AugmentConfig.from_dict({**AugmentConfig.none().to_dict(), **switch})
    assert not is_deterministic(aug)
    img = _face(2)
    reference = eval_transform(RESNET)(img)
    tf = train_transform(RESNET, aug)
    torch.manual_seed(0)
    outs = [tf(img) for _ in range(6)]  # a flip has p=0.5: one of six differs for sure-ish
    assert all(o.shape == (3, 224, 224) for o in outs)
    assert any(not torch.equal(o, reference) for o in outs)


def test_gaussian_noise_level_is_real() -> None:
    """sigma=0.01 on [0, 1] pixels, measured on a constant image before normalisation."""
    aug = AugmentConfig.none()
    aug.gaussian_noise_sigma = 0.01
    torch.manual_seed(0)
    out = train_transform(CNN, aug)(_constant(128))
    pixels = out * 0.5 + 0.5  # undo Normalize(0.5, 0.5)
    assert pixels.std().item() == pytest.approx(0.01, rel=0.05)
    assert pixels.mean().item() == pytest.approx(128 / 255, abs=1e-3)


def test_augment_image_keeps_size_and_changes_pixels() -> None:
    img = _face(4)
    out = augment_image(img, AugmentConfig(), seed=11)
    assert isinstance(out, Image.Image) and out.size == (256, 256) and out.mode == "RGB"
    assert not np.array_equal(np.asarray(out), np.asarray(img))
    assert np.array_equal(np.asarray(augment_image(img, AugmentConfig(), seed=11)), np.asarray(out))
    other = augment_image(img, AugmentConfig(), seed=12)
    assert not np.array_equal(np.asarray(other), np.asarray(out))
    # other sizes, and numpy input
    small = augment_image(np.asarray(img.resize((128, 128))), AugmentConfig(), size=128, seed=1)
    assert small.size == (128, 128)


def test_augment_image_seed_leaves_global_rng_alone() -> None:
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    augment_image(_face(), AugmentConfig(), seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_augment_image_noise_level() -> None:
    aug = AugmentConfig.none()
    aug.gaussian_noise_sigma = 0.01
    out = np.asarray(augment_image(_constant(128), aug, seed=0), dtype=np.float64) / 255
    # rounding to uint8 adds (1/255)^2/12 of variance: negligible at this tolerance
    assert out.std() == pytest.approx(0.01, rel=0.05)
    assert out.mean() == pytest.approx(128 / 255, abs=1e-3)
    unchanged = augment_image(_face(), AugmentConfig.none())
    assert np.array_equal(np.asarray(unchanged), np.asarray(_face()))


def test_augment_config_round_trip_and_validation() -> None:
    aug = AugmentConfig(rotation=10, scale=[0.7, 0.9], hflip=False)
    d = json.loads(json.dumps(aug.to_dict()))
    assert AugmentConfig.from_dict(d) == aug
    assert AugmentConfig.from_dict({}) == AugmentConfig()
    defaults = AugmentConfig()
    assert defaults.rotation == 20 and defaults.translate == 0.05
    assert defaults.gaussian_noise_sigma == 0.01
    assert defaults.scale == (0.8, 1.0) and not is_deterministic(defaults)
    with pytest.raises(FacecoreError, match="Unknown augmentation"):
        AugmentConfig.from_dict({"rotatoin": 5})
    for bad in ({"rotation": -1}, {"scale": (0.9, 0.5)}, {"translate": 1.5}, {"gaussian_noise_sigma": -0.1}):
        with pytest.raises(FacecoreError):
            AugmentConfig(**bad)


def test_preprocessing_dict_rebuilds_eval_transform() -> None:
    for spec in (RESNET, CNN):
        d = json.loads(json.dumps(preprocessing_dict(spec)))
        assert d == {"input_size": 224, "resize_size": 256, "mean": list(spec.mean), "std": list(spec.std)}
        img = _face(5)
        assert torch.equal(eval_transform_from_dict(d)(img), eval_transform(spec)(img))
    with pytest.raises(FacecoreError):
        eval_transform_from_dict({"input_size": 224})
