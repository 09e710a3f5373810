"""The study's small CNN, trained from scratch."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from facecore.errors import ModelError
from facecore.models.registry import register_model


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
            raise ModelError(f"CustomCNN needs an input size divisible by 8, got {input_size}.")
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


@register_model(
    "custom_cnn",
    description="The study's small 3-block CNN trained from scratch (174k parameters for 3 "
    "classes).",
    compared=True,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    head="classifier.fc",
    # the study saw its loss fluctuate at lr 1e-3 and run smoothly at lower rates; weight decay
    # 1e-4 because its single Linear layer holds 99% of its weights
    train_defaults={"epochs": 10, "lr": 3e-4, "weight_decay": 1e-4},
)
def custom_cnn(
    *, num_classes: int, pretrained: bool = False, trainable_from: str = "all"
) -> nn.Module:
    """:class:`CustomCNN`, trained from scratch.

    Inputs are normalised with mean = std = 0.5 per channel (pixels mapped to [-1, 1]), a
    neutral choice for a network that never saw ImageNet.
    """
    return CustomCNN(num_classes)
