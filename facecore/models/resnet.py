"""The ResNets: ResNet-50 from ImageNet weights (frozen up to a depth) or from random weights.

Freezing a ResNet sets ``requires_grad=False`` on the frozen parameters *and* replaces the
frozen BatchNorm layers by :class:`torchvision.ops.misc.FrozenBatchNorm2d` (same weight, bias and
running statistics), so ``model.train()`` cannot update their statistics. :func:`split_frozen`
hands the frozen trunk and the trainable head apart, so a training loop can cache trunk features.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import ResNet, ResNet18_Weights, ResNet50_Weights, resnet18, resnet50
from torchvision.ops.misc import FrozenBatchNorm2d

from facecore.models.registry import register_model
from facecore.models.weights import load_pretrained_weights

#: Freeze depths of a ResNet, shallowest freeze first: the named stage and all after it train.
#: "all" freezes nothing, "layer1" freezes the stem (conv1, bn1), ..., "fc" freezes every
#: convolutional stage (feature extraction).
RESNET_TRAINABLE_FROM: tuple[str, ...] = ("all", "layer1", "layer2", "layer3", "layer4", "fc")


def _frozen_batchnorm(bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
    frozen = FrozenBatchNorm2d(bn.num_features, eps=bn.eps)
    with torch.no_grad():
        if bn.weight is not None:
            frozen.weight.copy_(bn.weight)
            frozen.bias.copy_(bn.bias)
        if bn.running_mean is not None:
            frozen.running_mean.copy_(bn.running_mean)
            frozen.running_var.copy_(bn.running_var)
    return frozen


def freeze_module(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place: no parameter trains, every BatchNorm2d becomes frozen.

    Returns the module (a new :class:`FrozenBatchNorm2d` when ``module`` itself is a BatchNorm2d).
    """
    if isinstance(module, nn.BatchNorm2d):
        return _frozen_batchnorm(module)
    for child_name, child in module.named_children():
        setattr(module, child_name, freeze_module(child))
    for param in module.parameters():
        param.requires_grad_(False)
    return module


def _resnet_stages(model: ResNet) -> list[list[tuple[str, nn.Module]]]:
    """The stages of a torchvision ResNet in forward order: stem, layer1..layer4."""
    stem = [(n, getattr(model, n)) for n in ("conv1", "bn1", "relu", "maxpool")]
    return [stem] + [[(f"layer{i}", getattr(model, f"layer{i}"))] for i in range(1, 5)]


def _freeze_resnet(model: ResNet, trainable_from: str) -> None:
    n_frozen = RESNET_TRAINABLE_FROM.index(trainable_from)
    for stage in _resnet_stages(model)[:n_frozen]:
        for attr, module in stage:
            setattr(model, attr, freeze_module(module))


def _is_frozen(module: nn.Module) -> bool:
    return not any(p.requires_grad for p in module.parameters()) and not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()
    )


def split_frozen(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """``(frozen_trunk, trainable_head)`` of a ResNet with ``head(trunk(x)) == model(x)``.

    The trunk is the leading fully frozen stages (stem through ``layerK``: no trainable
    parameter, no live BatchNorm), so its output does not depend on training and can be cached;
    the head is the remaining stages + avgpool + flatten + fc. Both share the model's modules.
    None when nothing is frozen or the model is not a ResNet.
    """
    if not isinstance(model, ResNet):
        return None
    stages = _resnet_stages(model)
    n_frozen = 0
    for stage in stages:
        if not all(_is_frozen(module) for _, module in stage):
            break
        n_frozen += 1
    if n_frozen == 0:
        return None
    trunk = nn.Sequential(OrderedDict(m for stage in stages[:n_frozen] for m in stage))
    head = nn.Sequential(
        OrderedDict(
            [m for stage in stages[n_frozen:] for m in stage]
            + [("avgpool", model.avgpool), ("flatten", nn.Flatten(1)), ("fc", model.fc)]
        )
    )
    return trunk, head


# --------------------------------------------------------------------------- the models


def _build_resnet(
    arch: Callable[..., ResNet],
    name: str,
    *,
    num_classes: int,
    pretrained: bool,
    trainable_from: str,
) -> ResNet:
    model = arch(weights=None)
    if pretrained:
        load_pretrained_weights(model, name)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    _freeze_resnet(model, trainable_from)
    return model


@register_model(
    "resnet50_pretrained",
    description="ResNet-50 with ImageNet weights (IMAGENET1K_V2), fine-tuned from a freeze depth "
    "(default: layer4 and fc train).",
    weights=ResNet50_Weights.IMAGENET1K_V2,
    compared=True,
    trainable_from="layer4",
    trainable_from_choices=RESNET_TRAINABLE_FROM,
    # Only layer4 and fc train, on top of ImageNet features; lr 1e-3 visibly disturbs the pretrained
    # layer4 in the first epoch, 3e-4 does not. Online augmentation is off so that the frozen part's
    # output can be computed once per image and cached (exact, and 3x+ faster on a CPU); switch
    # augmentations on (the cache then turns itself off) or use `dataset augment` copies instead.
    train_defaults={"epochs": 5, "lr": 3e-4, "augment": "none"},
)
def resnet50_pretrained(
    *, num_classes: int, pretrained: bool = True, trainable_from: str = "layer4"
) -> nn.Module:
    """torchvision ResNet-50, ImageNet weights, new ``fc = Linear(2048, num_classes)``."""
    return _build_resnet(
        resnet50,
        "resnet50_pretrained",
        num_classes=num_classes,
        pretrained=pretrained,
        trainable_from=trainable_from,
    )


@register_model(
    "resnet50_scratch",
    description="ResNet-50 trained from random initialisation (no downloads, everything trains).",
    compared=True,
    # every augmentation on: 23.5 M weights learn from a few hundred faces, so it needs all the
    # variety it can get
    train_defaults={"epochs": 5, "lr": 1e-3},
)
def resnet50_scratch(
    *, num_classes: int, pretrained: bool = False, trainable_from: str = "all"
) -> nn.Module:
    """torchvision ResNet-50, random weights, every parameter trains.

    Inputs use ImageNet's mean/std like the pretrained model: any fixed per-channel
    normalisation works for a network trained from scratch, and this keeps the two comparable.
    """
    return _build_resnet(
        resnet50,
        "resnet50_scratch",
        num_classes=num_classes,
        pretrained=False,
        trainable_from=trainable_from,
    )


@register_model(
    "resnet18_pretrained",
    description="ResNet-18 with ImageNet weights (IMAGENET1K_V1), fine-tuned from a freeze depth "
    "(default: layer4 and fc train).",
    weights=ResNet18_Weights.IMAGENET1K_V1,
    trainable_from="layer4",
    trainable_from_choices=RESNET_TRAINABLE_FROM,
    train_defaults={"epochs": 5, "lr": 3e-4, "augment": "none"},  # as resnet50_pretrained
)
def resnet18_pretrained(
    *, num_classes: int, pretrained: bool = True, trainable_from: str = "layer4"
) -> nn.Module:
    """torchvision ResNet-18, ImageNet weights, new ``fc = Linear(512, num_classes)``."""
    return _build_resnet(
        resnet18,
        "resnet18_pretrained",
        num_classes=num_classes,
        pretrained=pretrained,
        trainable_from=trainable_from,
    )
