"""dlib's face descriptor network in PyTorch, with the weights read from dlib's own model file.

dlib computes its descriptor single-threaded, without BLAS in the ``dlib-bin`` wheel, and holds
Python's GIL meanwhile: 85 ms a face here, one face at a time. The same network in PyTorch takes
about 20 ms on one thread, runs in parallel threads and in batches, and gives the same
descriptors (to about 1e-6; checked against dlib when the embedder is built).

The network is the one dlib trained (``dnn_face_recognition_ex.cpp``): a 150x150 RGB chip minus
dlib's mean colour, divided by 256; a 7x7 stride-2 convolution with 32 filters, an affine
(per-channel scale and shift, dlib's inference form of batch norm), ReLU and 3x3 stride-2 max
pooling; 14 residual blocks (32, 64, 128, 256 and 256 filters; the first block of each new width
halves the size with a stride-2 convolution and a 2x2 average-pooled shortcut); the average over
the image, and a 256 -> 128 linear layer without bias. dlib pads a stride-1 convolution by half its
kernel and a stride-2 convolution or pooling not at all, and adds two tensors of different sizes
by zero-padding the smaller: both are reproduced here.

The weights are read from ``dlib_face_recognition_resnet_model_v1.dat``: dlib's serialization
writes integers as a length byte (0x80: negative) and that many little-endian bytes, strings as
their length and bytes, and each layer's parameter tensor as version 2, four dimensions and raw
float32 values. Only the parameter tensors are read, in the file's (input to output) order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facecore.errors import EmbedderError

CHIP_SIZE = 150
#: dlib's ``input_rgb_image_sized<150>`` mean colour (R, G, B), subtracted before dividing by 256
MEAN_RGB = (122.782, 117.001, 104.298)
#: (filters, halves the size) of the 14 residual blocks, input to output
BLOCKS = ((32, False),) * 3 + ((64, True),) + ((64, False),) * 3 + ((128, True),) + ((128, False),) * 2
BLOCKS += ((256, True),) + ((256, False),) * 2 + ((256, True),)


class _Reader:
    """dlib's serialization: integers, and the parameter tensors after a layer's name."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def integer(self) -> int:
        head = self.data[self.pos]
        n = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if head & 0x80 else value

    def next_layer(self, names: tuple[str, ...]) -> str | None:
        """Move past the next of ``names`` (as serialized strings); None when none is left."""
        where = [(self.data.find(bytes([1, len(n)]) + n.encode(), self.pos), n) for n in names]
        found = [(i, n) for i, n in where if i >= 0]
        if not found:
            return None
        i, name = min(found)
        self.pos = i + 2 + len(name)
        return name

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise EmbedderError(f"{self.path}: unexpected tensor version {version} in dlib's model file.")
        dims = [self.integer() for _ in range(4)]
        n = int(np.prod(dims))
        if self.pos + 4 * n > len(self.data):
            raise EmbedderError(f"{self.path}: dlib's model file is truncated.")
        out = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).copy()
        self.pos += 4 * n
        return out


def read_weights(path: Path) -> tuple[list[tuple[np.ndarray, int, int]], list[np.ndarray], np.ndarray]:
    """``(convolutions as (params, filters, kernel), affines, fc)`` from dlib's model file."""
    reader = _Reader(Path(path).read_bytes(), Path(path))
    convs: list[tuple[np.ndarray, int, int]] = []
    affines: list[np.ndarray] = []
    fc = None
    while (name := reader.next_layer(("con_4", "affine_", "fc_2"))) is not None:
        if name == "fc_2":
            reader.integer(), reader.integer()  # outputs, inputs
            fc = reader.tensor()
        elif name == "affine_":
            affines.append(reader.tensor())
        else:
            params = reader.tensor()
            filters, kernel = reader.integer(), reader.integer()
            convs.append((params, filters, kernel))
    if len(convs) != 1 + 2 * len(BLOCKS) or len(affines) != len(convs) or fc is None or fc.size != 256 * 128:
        raise EmbedderError(
            f"{path} is not dlib's ResNet face descriptor (found {len(convs)} convolutions, "
            f"{len(affines)} affine layers): use dlib_face_recognition_resnet_model_v1.dat."
        )
    return convs, affines, fc


class _ConvAffine(nn.Module):
    """A convolution and dlib's affine layer (y = gamma * x + beta per channel)."""

    def __init__(
        self, params: np.ndarray, filters: int, kernel: int, affine: np.ndarray, stride: int
    ) -> None:
        super().__init__()
        cin = (params.size - filters) // (filters * kernel * kernel)
        self.conv = nn.Conv2d(cin, filters, kernel, stride=stride, padding=0 if stride != 1 else kernel // 2)
        split = filters * cin * kernel * kernel
        self.conv.weight.data = torch.from_numpy(params[:split].reshape(filters, cin, kernel, kernel))
        self.conv.bias.data = torch.from_numpy(params[split:])
        self.register_buffer("gamma", torch.from_numpy(affine[:filters]).view(1, -1, 1, 1))
        self.register_buffer("beta", torch.from_numpy(affine[filters:]).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.gamma + self.beta


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: tensors of different sizes add with the smaller zero-padded."""
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class DlibResNet(nn.Module):
    """The descriptor network: ``N x 150 x 150 x 3`` uint8 RGB chips -> ``N x 128`` descriptors."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        convs, affines, fc = read_weights(path)
        layers = iter(zip(convs, affines, strict=True))

        def conv_affine(stride: int) -> _ConvAffine:
            (params, filters, kernel), affine = next(layers)
            return _ConvAffine(params, filters, kernel, affine, stride)

        self.stem = conv_affine(2)
        self.blocks = nn.ModuleList(
            nn.ModuleList([conv_affine(2 if down else 1), conv_affine(1)]) for _, down in BLOCKS
        )
        self.down = [down for _, down in BLOCKS]
        self.register_buffer("fc", torch.from_numpy(fc.reshape(256, 128)))
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1))
        self.eval()

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.permute(0, 3, 1, 2).float() - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        for (first, second), down in zip(self.blocks, self.down, strict=True):
            y = second(F.relu(first(x)))
            x = F.relu(_add_padded(F.avg_pool2d(x, 2, 2) if down else x, y))
        return x.mean(dim=(2, 3)) @ self.fc


__all__ = ["CHIP_SIZE", "DlibResNet", "read_weights"]
