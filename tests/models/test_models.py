"""The model registry, the freeze mechanism and the ImageNet weights through torchvision's loader.

No test downloads anything: the "pretrained" weights are a seeded random ResNet-50 state dict
saved where torch.hub looks for the real file, so torchvision's real loader reads it offline.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import ResNet50_Weights
from torchvision.ops.misc import FrozenBatchNorm2d

from facecore.errors import FacecoreError, WeightsUnavailableError
from facecore.models import weights as weights_mod
from facecore.models.custom_cnn import CustomCNN
from facecore.models.registry import count_parameters, create_model, embedding, get_model_spec, list_models
from facecore.models.resnet import split_frozen
from facecore.models.weights import load_pretrained_state_dict, weights_file, weights_status

WEIGHTS_NAME = os.path.basename(ResNet50_Weights.IMAGENET1K_V2.url)  # resnet50-11ad3fa6.pth


def _top(name: str) -> str:
    return name.split(".")[0]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fake_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A seeded random ResNet-50 state dict saved under the real weights file name."""
    torch_home = tmp_path_factory.mktemp("torch_home")
    ckpt = torch_home / "hub" / "checkpoints" / WEIGHTS_NAME
    ckpt.parent.mkdir(parents=True)
    torch.manual_seed(1234)
    state = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(state, ckpt)
    return torch_home, state


@pytest.fixture
def torch_home(fake_weights, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TORCH_HOME holding the fake ImageNet weights file."""
    home, _ = fake_weights
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "empty_torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DNS lookup fails at once, as on a machine without network."""

    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)


# --------------------------------------------------------------------------- registry


def test_registry_lists_the_models() -> None:
    names = list_models()
    assert {"resnet50_pretrained", "resnet50_scratch", "custom_cnn"} <= set(names)
    assert "resnet18_pretrained" in names
    for name in names:
        spec = get_model_spec(name)
        assert spec.name == name
        assert spec.input_size == 224 and spec.resize_size == 256
        assert len(spec.mean) == 3 and len(spec.std) == 3
    assert get_model_spec("resnet50_pretrained").mean == (0.485, 0.456, 0.406)
    assert get_model_spec("resnet50_pretrained").std == (0.229, 0.224, 0.225)
    assert get_model_spec("resnet50_scratch").mean == (0.485, 0.456, 0.406)
    assert get_model_spec("resnet50_pretrained").pretrained
    assert not get_model_spec("resnet50_scratch").pretrained
    assert not get_model_spec("custom_cnn").pretrained
    assert get_model_spec("resnet50_pretrained").trainable_from == "layer4"


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(FacecoreError, match="Unknown model 'vgg16'.*custom_cnn"):
        create_model("vgg16", num_classes=3)
    with pytest.raises(FacecoreError, match="Unknown model"):
        get_model_spec("nope")
    for bad in (1, 0, -3, 2.0, True):
        with pytest.raises(FacecoreError, match="num_classes"):
            create_model("custom_cnn", num_classes=bad)
    with pytest.raises(FacecoreError, match="no pretrained weights"):
        create_model("custom_cnn", num_classes=3, pretrained=True)
    with pytest.raises(FacecoreError, match="trainable_from"):
        create_model("custom_cnn", num_classes=3, trainable_from="layer4")
    with pytest.raises(FacecoreError, match="layer3"):
        create_model("resnet50_pretrained", num_classes=3, pretrained=False, trainable_from="x")


# --------------------------------------------------------------------------- custom_cnn


def test_custom_cnn_is_the_study_network() -> None:
    model = create_model("custom_cnn", num_classes=3)
    assert isinstance(model, CustomCNN)
    assert count_parameters(model) == (174_339, 174_339)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(16, 3, 3, 3), (32, 16, 3, 3), (64, 32, 3, 3)]
    assert all(c.stride == (1, 1) and c.padding == (1, 1) for c in convs)
    assert tuple(model.classifier.fc.weight.shape) == (3, 64 * 28 * 28)
    for block in model.features:
        assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    x = torch.randn(2, 3, 224, 224)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 3)
        emb = embedding(model, x)
    assert emb.shape == (2, 50176)
    assert get_model_spec("custom_cnn").mean == (0.5, 0.5, 0.5)


# --------------------------------------------------------------------------- resnet50_scratch


def test_resnet50_scratch_trains_everything(no_network) -> None:
    model = create_model("resnet50_scratch", num_classes=3)
    total, trainable = count_parameters(model)
    reference = sum(p.numel() for p in torchvision.models.resnet50(num_classes=3).parameters())
    assert total == trainable == reference
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    assert model.fc.out_features == 3
    assert split_frozen(model) is None
    with pytest.raises(FacecoreError):
        create_model("resnet50_scratch", num_classes=3, trainable_from="layer4")


# --------------------------------------------------------------------------- resnet50_pretrained


def test_weights_file_is_torch_hub_cache(torch_home: Path) -> None:
    assert WEIGHTS_NAME == "resnet50-11ad3fa6.pth"
    assert weights_file() == torch_home / "hub" / "checkpoints" / WEIGHTS_NAME
    status = weights_status("resnet50_pretrained")
    assert status["available"] is True
    assert status["path"] == str(torch_home / "hub" / "checkpoints" / WEIGHTS_NAME)
    assert status["url"] == ResNet50_Weights.IMAGENET1K_V2.url
    assert status["size"] == (torch_home / "hub" / "checkpoints" / WEIGHTS_NAME).stat().st_size
    with pytest.raises(FacecoreError):
        weights_file("custom_cnn")


def test_pretrained_loads_through_torchvision_and_freezes(torch_home, fake_weights, no_network):
    _, saved = fake_weights
    model = create_model("resnet50_pretrained", num_classes=3)
    state = model.state_dict()
    for key in (
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer4.2.conv3.weight",
        "layer1.0.bn1.running_mean",
        "layer4.0.bn1.running_var",
        "bn1.weight",
    ):
        assert torch.equal(state[key], saved[key]), key
    assert model.fc.in_features == 2048 and model.fc.out_features == 3

    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {_top(n) for n in frozen} == {"conv1", "layer1", "layer2", "layer3"}
    assert {_top(n) for n in trainable} == {"layer4", "fc"}
    # the frozen part's BatchNorms are FrozenBatchNorm2d (buffers only), the rest are live
    assert isinstance(model.bn1, FrozenBatchNorm2d)
    for name, module in model.named_modules():
        if _top(name) in {"bn1", "layer1", "layer2", "layer3"}:
            assert not isinstance(module, nn.BatchNorm2d), name
        if _top(name) == "layer4" and name.endswith("bn1"):
            assert isinstance(module, nn.BatchNorm2d), name

    total, n_trainable = count_parameters(model)
    assert n_trainable == sum(p.numel() for p in model.layer4.parameters()) + 2048 * 3 + 3
    assert n_trainable == 14_970_883
    assert total == count_parameters(create_model("resnet50_scratch", num_classes=3))[0]


def test_frozen_batchnorm_statistics_survive_train_mode(torch_home) -> None:
    model = create_model("resnet50_pretrained", num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.train()
    torch.manual_seed(0)
    model(torch.randn(2, 3, 96, 96) * 3 + 1).sum().backward()  # small input: same mechanics
    after = model.state_dict()
    frozen_keys = [k for k in before if _top(k) in {"bn1", "layer1", "layer2", "layer3"}]
    live_keys = [k for k in before if _top(k) == "layer4"]
    assert frozen_keys and live_keys
    assert all(torch.equal(before[k], after[k]) for k in frozen_keys)
    assert all(not torch.equal(before[k], after[k]) for k in live_keys if "mean" in k)
    assert all(p.grad is None for n, p in model.named_parameters() if _top(n) == "layer3")
    assert model.fc.weight.grad is not None and model.layer4[0].conv1.weight.grad is not None


def test_trainable_from_variants(torch_home) -> None:
    fc_only = create_model("resnet50_pretrained", num_classes=3, trainable_from="fc")
    assert {n for n, p in fc_only.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}
    assert count_parameters(fc_only)[1] == 2048 * 3 + 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fc_only.modules())

    full = create_model("resnet50_pretrained", num_classes=3, trainable_from="all")
    total, trainable = count_parameters(full)
    assert total == trainable
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in full.modules())
    assert split_frozen(full) is None

    l2 = create_model("resnet50_pretrained", num_classes=3, pretrained=False, trainable_from="layer2")
    assert {_top(n) for n, p in l2.named_parameters() if not p.requires_grad} == {"conv1", "layer1"}


def test_missing_weights_offline_says_what_to_do(empty_torch_home, offline) -> None:
    path = empty_torch_home / "hub" / "checkpoints" / WEIGHTS_NAME
    with pytest.raises(WeightsUnavailableError) as info:
        create_model("resnet50_pretrained", num_classes=3)
    msg = str(info.value)
    assert str(path) in msg
    assert WEIGHTS_NAME in msg
    assert ResNet50_Weights.IMAGENET1K_V2.url in msg
    assert "python -m facecore weights download" in msg
    assert "resnet50_scratch" in msg and "custom_cnn" in msg
    assert not path.exists()
    assert weights_status()["available"] is False and weights_status()["size"] is None


def test_missing_weights_fails_fast_on_this_machine(empty_torch_home) -> None:
    """The real network path (no mocks): offline, it must fail within seconds, not hang."""
    try:
        weights_mod._resolve_host(ResNet50_Weights.IMAGENET1K_V2.url, 3.0)
    except OSError:
        pass  # offline (or DNS hangs): what this test is about
    else:
        pytest.skip("this machine is online; the test would download 100 MB")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="weights download"):
        create_model("resnet50_pretrained", num_classes=3)
    assert time.monotonic() - start < weights_mod.DNS_TIMEOUT_S + 5


def test_hanging_dns_is_bounded(empty_torch_home, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    monkeypatch.setattr(weights_mod, "DNS_TIMEOUT_S", 0.5)
    start = time.monotonic()
    try:
        with pytest.raises(WeightsUnavailableError, match="took more than"):
            load_pretrained_state_dict("resnet50_pretrained")
    finally:
        release.set()
    assert time.monotonic() - start < 3


def test_corrupt_weights_file(empty_torch_home) -> None:
    path = empty_torch_home / "hub" / "checkpoints" / WEIGHTS_NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 this is not a torch file" * 10)
    with pytest.raises(WeightsUnavailableError, match="(?s)corrupt.*Delete") as info:
        create_model("resnet50_pretrained", num_classes=3)
    assert str(path) in str(info.value)

    torch.save({"not": torch.zeros(2)}, path)  # readable, but not ResNet-50 weights
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        create_model("resnet50_pretrained", num_classes=3)


def test_pretrained_false_needs_no_file(empty_torch_home, no_network) -> None:
    model = create_model("resnet50_pretrained", num_classes=3, pretrained=False)
    assert isinstance(model.bn1, FrozenBatchNorm2d)
    assert {_top(n) for n, p in model.named_parameters() if p.requires_grad} == {"layer4", "fc"}


def test_checkpoint_round_trip_into_pretrained_false(no_network) -> None:
    model = create_model("resnet50_pretrained", num_classes=3, pretrained=False)
    with torch.no_grad():
        model.fc.weight.add_(1.0)
        model.layer4[0].bn1.running_mean.add_(0.5)
    rebuilt = create_model("resnet50_pretrained", num_classes=3, pretrained=False)
    rebuilt.load_state_dict(model.state_dict())  # strict: same keys, same shapes
    x = torch.randn(1, 3, 96, 96)
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


def test_split_frozen_matches_the_model(no_network) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 96)
    cases = (("layer4", "layer3"), ("fc", "layer4"), ("layer1", "maxpool"))
    for trainable_from, trunk_end in cases:
        model = create_model(
            "resnet50_pretrained", num_classes=3, pretrained=False, trainable_from=trainable_from
        )
        model.eval()
        trunk, head = split_frozen(model)
        assert list(dict(trunk.named_children()))[-1] == trunk_end
        assert not any(p.requires_grad for p in trunk.parameters())
        head_params = {id(p) for p in head.parameters()}
        assert head_params == {id(p) for p in model.parameters() if p.requires_grad}
        with torch.no_grad():
            assert torch.allclose(head(trunk(x)), model(x), atol=1e-6)
        if trainable_from == "layer4":
            with torch.no_grad():
                assert embedding(model, x).shape == (2, 2048)
    assert split_frozen(create_model("custom_cnn", num_classes=3)) is None


def test_resnet18_pretrained_uses_the_same_mechanism(no_network) -> None:
    model = create_model("resnet18_pretrained", num_classes=15, pretrained=False)
    assert model.fc.in_features == 512 and model.fc.out_features == 15
    assert {_top(n) for n, p in model.named_parameters() if p.requires_grad} == {"layer4", "fc"}
    assert os.path.basename(str(weights_file("resnet18_pretrained"))).startswith("resnet18-")
