"""The model registry: models built by name (timm/torchvision style), each with its pretrained weights.

Each model is registered with a :class:`ModelSpec` that declares its input size, the
normalisation its inputs need, its ImageNet weights (torchvision's ``WeightsEnum``, as timm keeps
a model's pretrained config beside it) and how deep it may be frozen. The builders live in
:mod:`facecore.models.resnet` and :mod:`facecore.models.custom_cnn`, which register themselves
when :mod:`facecore.models` is imported::

    model = create_model("resnet50_pretrained", num_classes=8)            # layer4 + fc train
    model = create_model("resnet50_pretrained", num_classes=8, trainable_from="fc")
    model = create_model("custom_cnn", num_classes=8)

"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torchvision.models._api import WeightsEnum
from torchvision.ops.misc import FrozenBatchNorm2d

from facecore.errors import ModelError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model is and what its inputs must look like.

    ``builder(*, num_classes, pretrained, trainable_from)`` builds it; ``weights`` are its
    ImageNet weights (None: it has none, :attr:`pretrained` is False), loaded by default;
    ``compared`` marks the study's three models (what ``train --model all`` and ``bench``
    take); ``trainable_from`` is the default freeze
    depth out of ``trainable_from_choices``; ``head`` is the dotted name of the final
    ``nn.Linear`` (its input is the embedding). ``resize_size`` defaults to
    ``round(input_size * 256 / 224)`` (256 for 224). ``train_defaults`` are the
    :class:`~facecore.train.config.TrainConfig` values the model trains with unless told otherwise
    (``TrainConfig.for_model``); ``augment`` is named there: ``"none"`` (every online augmentation
    off).
    """

    name: str
    description: str
    builder: Builder = field(repr=False)
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    weights: WeightsEnum | None = field(default=None, repr=False)
    compared: bool = False
    trainable_from: str = "all"
    trainable_from_choices: tuple[str, ...] = ("all",)
    head: str = "fc"
    resize_size: int = 0
    train_defaults: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.resize_size:
            object.__setattr__(self, "resize_size", round(self.input_size * 256 / 224))
        if self.trainable_from not in self.trainable_from_choices:
            raise ValueError(f"{self.name}: default trainable_from not among its choices")

    @property
    def pretrained(self) -> bool:
        """Whether the model starts from ImageNet weights."""
        return self.weights is not None


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
            raise ModelError(f"A model named {name!r} is already registered.")
        _REGISTRY[name] = ModelSpec(
            name=name, description=description, builder=builder, **spec_fields  # type: ignore[arg-type]
        )
        return builder

    return decorate


def list_models(*, pretrained: bool | None = None, compared: bool | None = None) -> list[str]:
    """Names of the registered models, the compared ones first, each group in registration order;
    ``pretrained`` and ``compared`` filter."""
    specs = sorted(_REGISTRY.values(), key=lambda spec: not spec.compared)  # a stable sort
    return [
        spec.name
        for spec in specs
        if (pretrained is None or spec.pretrained == pretrained)
        and (compared is None or spec.compared == compared)
    ]


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; :class:`FacecoreError` for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(
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
    (default: the spec's) is the freeze depth, out of the spec's ``trainable_from_choices``.
    Raises :class:`FacecoreError` for bad arguments and
    :class:`~facecore.errors.WeightsUnavailableError` when the weights cannot be had.
    """
    spec = get_model_spec(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ModelError(f"num_classes must be an integer of at least 2, got {num_classes!r}.")
    if pretrained is None:
        pretrained = spec.pretrained
    elif pretrained and not spec.pretrained:
        with_weights = list_models(pretrained=True)
        raise ModelError(
            f"Model {name!r} has no pretrained weights; models that do: {', '.join(with_weights)}."
        )
    if trainable_from is None:
        trainable_from = spec.trainable_from
    if trainable_from not in spec.trainable_from_choices:
        raise ModelError(
            f"trainable_from={trainable_from!r} is not valid for {name!r}; choose from: "
            f"{', '.join(spec.trainable_from_choices)}."
        )
    model = spec.builder(
        num_classes=num_classes, pretrained=pretrained, trainable_from=trainable_from
    )
    model.facecore_model = name
    model.facecore_trainable_from = trainable_from
    return model


# --------------------------------------------------------------------------- inspection


def classifier_head(model: nn.Module) -> nn.Linear:
    """The model's final ``nn.Linear`` (its spec's ``head``; else the last Linear layer)."""
    name = getattr(model, "facecore_model", None)
    if name in _REGISTRY:
        head = model.get_submodule(_REGISTRY[name].head)
        if isinstance(head, nn.Linear):
            return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError("The model has no final nn.Linear layer to take an embedding from.")
    return linears[-1]


def embedding(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The penultimate-layer embedding of ``x``: the input of the model's final Linear layer.

    Runs a full forward pass in the model's current mode and grad mode (wrap it in
    ``model.eval()`` and ``torch.no_grad()`` for inference). Shape ``(batch, features)``.
    """
    captured: list[torch.Tensor] = []
    handle = classifier_head(model).register_forward_hook(
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
