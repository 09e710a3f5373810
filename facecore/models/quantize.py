"""Int8 inference on the CPU, for live recognition: post-training static quantization.

A run's float model is traced (torch.fx), observed on a few of its own training faces to set the
int8 scales, and converted (``x86`` backend: fbgemm/oneDNN kernels). It gives the same top-1 answer
as the float model on nearly every face (``tests/models/test_quantize.py``) and runs several times faster
on one CPU thread, which is what lets the Live page recognise a ResNet50 face in real time on a
laptop without a GPU. The checkpoint on disk is never changed; the int8 copy lives in memory.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from facecore.errors import QuantizationError

#: Training faces used to calibrate the int8 scales.
CALIBRATION_IMAGES = 32


def quantize_int8(model: nn.Module, batches: Iterable[torch.Tensor], *, inplace: bool = False) -> nn.Module:
    """An int8 copy of ``model`` (eval mode, CPU) calibrated on ``batches`` of preprocessed images.

    ``model`` is left as it is unless ``inplace`` (the caller hands over a copy of its own). The
    result has run once on the first batch before it is returned. Any failure is a
    :class:`FacecoreError` saying why.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    batches = list(batches)
    if not batches:
        raise QuantizationError("int8 needs some images to calibrate on.")
    with warnings.catch_warnings():  # torch.ao's FX workflow warns that it is in maintenance mode
        warnings.simplefilter("ignore")
        try:
            float_model = (model if inplace else copy.deepcopy(model)).cpu().eval()
            qconfig = get_default_qconfig_mapping("x86")
            prepared = prepare_fx(float_model, qconfig, example_inputs=(batches[0],))
            with torch.inference_mode():
                for x in batches:
                    prepared(x)
                quantized = convert_fx(prepared).eval()
                quantized(batches[0][:1])  # a kernel missing on this CPU fails here, not per frame
            return quantized
        except Exception as exc:  # tracing or a kernel missing on this CPU: say so, keep float
            why = f"{type(exc).__name__}: {exc}"
            raise QuantizationError(f"This model could not be converted to int8 ({why}).") from exc


def calibration_batches(crops: list[np.ndarray], preprocess, batch: int = 8) -> list[torch.Tensor]:
    """Preprocessed batches of face crops (RGB ``uint8``), in the order given."""
    return [preprocess(crops[i : i + batch]) for i in range(0, len(crops), batch)]
