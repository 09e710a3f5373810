"""The bench and the batched augmentation pipeline: keys, repeatability, switches. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from facecore.data.loaders import BatchTransform, FaceCrops, batch_loader, decode_crops
from facecore.data.transforms import AugmentConfig, eval_transform
from facecore.evaluate.bench.report import format_markdown
from facecore.evaluate.bench.run import run_bench
from facecore.models.registry import get_model_spec
from tests.helpers import LFW

RESNET = get_model_spec("resnet50_pretrained")
CNN = get_model_spec("custom_cnn")
SWITCHES = [
    {"rotation": 15.0},
    {"translate": 0.1},
    {"random_resized_crop": True},
    {"hflip": True},
    {"color_jitter": True},
    {"gaussian_noise_sigma": 0.05},
]


def _only(switch: dict) -> AugmentConfig:
    return AugmentConfig.from_dict({**AugmentConfig.none().to_dict(), **switch})


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """Eight real LFW faces (250x250) as an ``N x 3 x H x W`` uint8 batch."""
    if not LFW.is_dir():
        pytest.skip(f"real test assets not found at {LFW}")
    files = sorted((LFW / "Colin_Powell").glob("*.jpg"))[:4] + sorted((LFW / "Tony_Blair").glob("*.jpg"))[:4]
    return torch.from_numpy(decode_crops(files)).permute(0, 3, 1, 2).contiguous()


def _eval(spec, faces: torch.Tensor) -> torch.Tensor:
    return torch.stack([eval_transform(spec)(im) for im in faces])


@pytest.mark.parametrize("spec", [RESNET, CNN])
def test_no_augmentation_equals_eval_transform_exactly(spec, faces: torch.Tensor) -> None:
    out = BatchTransform(spec, AugmentConfig.none())(faces, torch.Generator().manual_seed(0))
    assert out.shape == (8, 3, 224, 224) and out.dtype == torch.float32
    assert torch.equal(out, _eval(spec, faces))


def test_same_seed_same_batch(faces: torch.Tensor) -> None:
    tf = BatchTransform(RESNET, AugmentConfig())
    a = tf(faces, torch.Generator().manual_seed(5))
    b = tf(faces, torch.Generator().manual_seed(5))
    c = tf(faces, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()
    assert not torch.equal(a[0], a[1])  # each image draws its own parameters


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: next(iter(s)))
def test_each_switch_alone_changes_the_output(switch: dict, faces: torch.Tensor) -> None:
    reference = _eval(CNN, faces)
    out = BatchTransform(CNN, _only(switch))(faces, torch.Generator().manual_seed(1))
    assert out.shape == reference.shape
    changed = [not torch.equal(o, r) for o, r in zip(out, reference, strict=True)]
    assert any(changed)  # a flip has p=0.5: with 8 images some flip
    if "hflip" in switch:  # flips are exact: each image is the eval output or its mirror
        pairs = zip(out, reference, strict=True)
        assert all(torch.equal(o, r) or torch.equal(o, r.flip(-1)) for o, r in pairs)
    else:
        assert all(changed)


def test_switching_one_off_keeps_the_others_draws(faces: torch.Tensor) -> None:
    """Parameters are drawn whatever the switches: hflip+noise minus noise == hflip alone."""
    both = _only({"hflip": True, "gaussian_noise_sigma": 0.05})
    flip = _only({"hflip": True})
    a = BatchTransform(CNN, both)(faces, torch.Generator().manual_seed(3))
    b = BatchTransform(CNN, flip)(faces, torch.Generator().manual_seed(3))
    assert (a - b).abs().mean() < 0.1  # noise of sigma 0.05 on [0, 1] is 0.1 after Normalize(0.5, 0.5)
    reference = _eval(CNN, faces)
    assert [torch.equal(x, r) for x, r in zip(b, reference, strict=True)] != [True] * 8


def _params(tf: BatchTransform, faces: torch.Tensor, seed: int) -> dict:
    return tf._draw(faces.shape[0], faces.shape[2], faces.shape[3], torch.Generator().manual_seed(seed))


def test_geometry_matches_torchvision(faces: torch.Tensor) -> None:
    """One composed resampling == RandomAffine's / RandomResizedCrop's ops, to interpolation error."""
    to_float = lambda t: TF.to_dtype(t, torch.float32, scale=True)  # noqa: E731
    tf = BatchTransform(CNN, _only({"rotation": 20.0, "translate": 0.05}))
    p = _params(tf, faces, 0)
    p["angle"].fill_(12.0)
    p["tx"].fill_(9.0)
    p["ty"].fill_(-6.0)
    ours = tf._warp(faces, p) / 255
    moved = TF.affine(
        faces,
        angle=12.0,
        translate=[9, -6],
        scale=1.0,
        shear=[0.0, 0.0],
        interpolation=TF.InterpolationMode.BILINEAR,
    )
    theirs = to_float(TF.center_crop(TF.resize(moved, [256], antialias=True), [224, 224]))
    assert (ours - theirs).abs().mean() < 0.01
    tf = BatchTransform(CNN, _only({"random_resized_crop": True}))
    p = _params(tf, faces, 1)
    ours = tf._warp(faces, p) / 255
    boxes = [[int(v) for v in box] for box in p["box"]]
    theirs = to_float(
        torch.stack(
            [
                TF.resized_crop(im, *box, [224, 224], antialias=True)
                for im, box in zip(faces, boxes, strict=True)
            ]
        )
    )
    assert (ours - theirs).abs().mean() < 0.01
    assert all(0.8 * 250 * 250 * 0.99 <= h * w <= 250 * 250 for _, _, h, w in boxes)


def test_colour_jitter_matches_torchvision_ops(faces: torch.Tensor) -> None:
    """Brightness, contrast, saturation in each image's order == torchvision's (but for clipping)."""
    tf = BatchTransform(CNN, _only({"color_jitter": True}))
    p = _params(tf, faces, 2)
    p["hue"].zero_()
    x = TF.to_dtype(tf._eval_crop(faces), torch.float32, scale=True)
    ours = tf._jitter(x.clone(), p, 1.0)
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation]
    theirs = []
    for i, img in enumerate(x):
        for op in p["order"][i].tolist():
            if op < 3:
                img = ops[op](img, float(p["bcs"][i, op]))
        theirs.append(img)
    assert (ours - torch.stack(theirs)).abs().mean() < 1e-3 < (ours - x).abs().mean()
    # the hue shift is small but real, and keeps grey pixels grey
    grey = torch.full((1, 3, 224, 224), 0.5)
    hue_only = {"order": torch.tensor([[3, 0, 1, 2]]), "bcs": torch.ones(1, 3), "hue": torch.tensor([0.02])}
    assert torch.allclose(tf._jitter(grey.clone(), hue_only, 1.0), grey, atol=1e-6)
    shifted = tf._jitter(x[:1].clone(), hue_only, 1.0)
    assert 0 < (shifted - x[:1]).abs().mean() < 0.02


def test_noise_level_is_real() -> None:
    flat = torch.full((4, 3, 256, 256), 128, dtype=torch.uint8)
    out = BatchTransform(CNN, _only({"gaussian_noise_sigma": 0.01}))(flat, torch.Generator().manual_seed(0))
    pixels = out * 0.5 + 0.5
    assert pixels.std().item() == pytest.approx(0.01, rel=0.05)
    assert pixels.mean().item() == pytest.approx(128 / 255, abs=1e-3)


def test_batch_loader_repeats_with_any_worker_count(faces: torch.Tensor) -> None:
    """Batches depend on the seed alone: not on the run, nor on the number of workers."""
    files = sorted((LFW / "Colin_Powell").glob("*.jpg"))[:10]
    crops = FaceCrops([(f, i % 2) for i, f in enumerate(files)], eval_transform(CNN))
    tf = BatchTransform(CNN, AugmentConfig())

    def batches(seed: int, workers: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(batch_loader(crops, tf, batch_size=4, shuffle=True, workers=workers, seed=seed))

    a, b, c = batches(7), batches(7), batches(8)
    assert [len(y) for _, y in a] == [4, 4, 2]
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True))
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c, strict=True))
    w = batches(7, workers=1)
    assert all(torch.equal(xa, xw) and torch.equal(ya, yw) for (xa, ya), (xw, yw) in zip(a, w, strict=True))
    # no augmentation, no shuffle: the per-item eval pipeline's batches exactly
    plain = list(
        batch_loader(
            crops, BatchTransform(CNN, AugmentConfig.none()), batch_size=4, shuffle=False, workers=0, seed=0
        )
    )
    assert torch.equal(torch.cat([x for x, _ in plain]), torch.stack([crops[i][0] for i in range(10)]))
    assert np.array_equal(torch.cat([y for _, y in plain]).numpy(), crops.labels.numpy())


@pytest.mark.slow
def test_quick_bench_returns_positive_rates(assets: Path) -> None:
    result = run_bench(quick=True, models=["custom_cnn"], source=assets / "lfw-deepfunneled", ranks=(1, 2))
    assert set(result) == {"env", "dataset", "models", "targets"}
    env = result["env"]
    assert env["device"] in ("cpu", "cuda", "mps") and env["threads"] >= 1
    assert env["amp"] in ("off", "bf16", "fp16")
    assert result["dataset"]["train"] > 0 and result["dataset"]["classes"] == 4
    r = result["models"]["custom_cnn"]
    c, p = r["compute"], r["pipeline"]
    for v in (c["train_img_s"], c["infer_b1_img_s"], c["infer_b32_img_s"], p["img_s"], r["ratio"]):
        assert v > 0
    assert p["augment"] == "all" and p["cached"] is False and p["train_images"] == result["dataset"]["train"]
    assert isinstance(r["ratio_target_met"], bool)
    ranks = r["ranks"]  # real epochs with 1 and 2 DDP processes (torchrun, gloo)
    assert ranks["1"]["world_size"] == 1 and ranks["2"]["world_size"] == 2
    assert ranks["1"]["img_s"] > 0 and ranks["2"]["img_s"] > 0 and ranks["1"]["speedup"] == 1.0
    text = format_markdown(result)
    assert "| custom_cnn |" in text and "pipeline / compute" in text and "DDP processes" in text
