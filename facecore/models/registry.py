"""The models compared, built by name through a registry (timm/torchvision style).

Each model is registered with a :class:`ModelSpec` that declares its input size, the
normalisation its inputs need, whether it needs ImageNet weights and how deep it may be frozen::

    model = create_model("resnet50_pretrained", num_classes=8)            # layer4 + fc train
    model = create_model("resnet50_pretrained", num_classes=8, trainable_from="fc")
    model = create_model("custom_cnn", num_classes=8)

Freezing a ResNet sets ``requires_grad=False`` on the frozen parameters *and* replaces the
frozen BatchNorm layers by :class:`torchvision.ops.misc.FrozenBatchNorm2d` (same weight, bias and
running statistics), so ``model.train()`` cannot update their statistics. :func:`split_frozen`
hands the frozen trunk and the trainable head apart, so a training loop can cache trunk features.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torchvision.models import ResNet, resnet18, resnet50
from torchvision.ops.misc import FrozenBatchNorm2d

from facecore.errors import FacecoreError
from facecore.models.weights import load_pretrained_weights

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Freeze depths of a ResNet, shallowest freeze first: the named stage and all after it train.
#: "all" freezes nothing, "layer1" freezes the stem (conv1, bn1), ..., "fc" freezes every
#: convolutional stage (feature extraction).
RESNET_TRAINABLE_FROM: tuple[str, ...] = ("all", "layer1", "layer2", "layer3", "layer4", "fc")

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model is and what its inputs must look like.

    ``builder(*, num_classes, pretrained, trainable_from)`` builds it; ``pretrained`` says
    whether it loads ImageNet weights by default; ``trainable_from`` is the default freeze
    depth out of ``trainable_from_choices``; ``head`` is the dotted name of the final
    ``nn.Linear`` (its input is the embedding). ``resize_size`` defaults to
    ``round(input_size * 256 / 224)`` (256 for 224).
    """

    name: str
    description: str
    builder: Builder = field(repr=False)
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    pretrained: bool = False
    trainable_from: str = "all"
    trainable_from_choices: tuple[str, ...] = ("all",)
    head: str = "fc"
    resize_size: int = 0

    def __post_init__(self) -> None:
        if not self.resize_size:
            object.__setattr__(self, "resize_size", round(self.input_size * 256 / 224))
        if self.trainable_from not in self.trainable_from_choices:
            raise ValueError(f"{self.name}: default trainable_from not among its choices")


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    description: str,
    **spec_fields: object,
) -> Callable[[Builder], Builder]:
    """Register the decorated builder under ``name``; ``spec_fields`` fill in :class:`ModelSpec`."""

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise FacecoreError(f"A model named {name!r} is already registered.")
        _REGISTRY[name] = ModelSpec(
            name=name, description=description, builder=builder, **spec_fields  # type: ignore[arg-type]
        )
        return builder

    return decorate


def list_models() -> list[str]:
    """Names of the registered models, in registration order."""
    return list(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; :class:`FacecoreError` for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FacecoreError(
            f"Unknown model {name!r}; choose from: {', '.join(list_models())}."
        ) from None


def create_model(
    name: str,
    *,
    num_classes: int,
    pretrained: bool | None = None,
    trainable_from: str | None = None,
) -> nn.Module:
    """Build model ``name`` with a fresh ``num_classes``-way classifier.

    ``pretrained`` (default: the spec's) loads ImageNet weights; ``False`` builds the same
    architecture and freeze without them (to load a checkpoint into). ``trainable_from``
    (default: the spec's) is the freeze depth, see :data:`RESNET_TRAINABLE_FROM`.
    Raises :class:`FacecoreError` for bad arguments and
    :class:`~facecore.errors.WeightsUnavailableError` when the weights cannot be had.
    """
    spec = get_model_spec(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise FacecoreError(f"num_classes must be an integer of at least 2, got {num_classes!r}.")
    if pretrained is None:
        pretrained = spec.pretrained
    elif pretrained and not spec.pretrained:
        with_weights = [n for n in list_models() if _REGISTRY[n].pretrained]
        raise FacecoreError(
            f"Model {name!r} has no pretrained weights; models that do: {', '.join(with_weights)}."
        )
    if trainable_from is None:
        trainable_from = spec.trainable_from
    if trainable_from not in spec.trainable_from_choices:
        raise FacecoreError(
            f"trainable_from={trainable_from!r} is not valid for {name!r}; choose from: "
            f"{', '.join(spec.trainable_from_choices)}."
        )
    model = spec.builder(
        num_classes=num_classes, pretrained=pretrained, trainable_from=trainable_from
    )
    model.facecore_model = name
    model.facecore_trainable_from = trainable_from
    return model


# --------------------------------------------------------------------------- freezing helpers


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


# --------------------------------------------------------------------------- inspection


def _head_module(model: nn.Module) -> nn.Linear:
    name = getattr(model, "facecore_model", None)
    if name in _REGISTRY:
        head = model.get_submodule(_REGISTRY[name].head)
        if isinstance(head, nn.Linear):
            return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise FacecoreError("The model has no final nn.Linear layer to take an embedding from.")
    return linears[-1]


def embedding(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The penultimate-layer embedding of ``x``: the input of the model's final Linear layer.

    Runs a full forward pass in the model's current mode and grad mode (wrap it in
    ``model.eval()`` and ``torch.no_grad()`` for inference). Shape ``(batch, features)``.
    """
    captured: list[torch.Tensor] = []
    handle = _head_module(model).register_forward_hook(
        lambda _module, inputs, _output: captured.append(inputs[0])
    )
    try:
        model(x)
    finally:
        handle.remove()
    return captured[-1]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts.

    The weight and bias of a :class:`FrozenBatchNorm2d` are buffers, but they are counted in
    the total (as frozen parameters), so freezing does not change a model's total.
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for module in model.modules():
        if isinstance(module, FrozenBatchNorm2d):
            total += module.weight.numel() + module.bias.numel()
    return total, trainable


# --------------------------------------------------------------------------- the models


class CustomCNN(nn.Module):
    """The study's small CNN: three conv blocks, then one Linear layer.

    Each block is Conv2d 3x3 (stride 1, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2), with
    16, 32 and 64 channels; a 224x224 RGB input leaves 64x28x28 features, flattened into
    ``Linear(64*28*28, num_classes)``. Layers: ``features.block{1,2,3}.{conv,bn,relu,pool}``,
    ``classifier.{flatten,fc}``. 174,339 parameters for 3 classes.
    """

    def __init__(self, num_classes: int, input_size: int = 224) -> None:
        super().__init__()
        if input_size % 8:
            raise FacecoreError(f"CustomCNN needs an input size divisible by 8, got {input_size}.")
        blocks = OrderedDict()
        channels = [3, 16, 32, 64]
        for i, (c_in, c_out) in enumerate(zip(channels, channels[1:], strict=False), start=1):
            blocks[f"block{i}"] = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1),
                    bn=nn.BatchNorm2d(c_out),
                    relu=nn.ReLU(inplace=True),
                    pool=nn.MaxPool2d(2),
                )
            )
        self.features = nn.Sequential(blocks)
        side = input_size // 8
        self.classifier = nn.Sequential(
            OrderedDict(flatten=nn.Flatten(1), fc=nn.Linear(64 * side * side, num_classes))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


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
    pretrained=True,
    trainable_from="layer4",
    trainable_from_choices=RESNET_TRAINABLE_FROM,
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
    "custom_cnn",
    description="The study's small 3-block CNN trained from scratch (174k parameters for 3 "
    "classes).",
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    head="classifier.fc",
)
def custom_cnn(
    *, num_classes: int, pretrained: bool = False, trainable_from: str = "all"
) -> nn.Module:
    """:class:`CustomCNN`, trained from scratch.

    Inputs are normalised with mean = std = 0.5 per channel (pixels mapped to [-1, 1]), a
    neutral choice for a network that never saw ImageNet.
    """
    return CustomCNN(num_classes)


@register_model(
    "resnet18_pretrained",
    description="ResNet-18 with ImageNet weights (IMAGENET1K_V1), fine-tuned from a freeze depth "
    "(default: layer4 and fc train).",
    pretrained=True,
    trainable_from="layer4",
    trainable_from_choices=RESNET_TRAINABLE_FROM,
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
