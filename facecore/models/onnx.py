"""ONNX export of a classifier: one graph giving the logits and the embedding, batch axis dynamic.

The exporter is torch's legacy TorchScript one (``torch.onnx.export(..., dynamo=False)``): the
``torch.export``-based exporter (``dynamo=True``, torch's default since 2.9) needs ``onnxscript``,
which is not among facecore's pinned requirements (``dynamo=True`` fails here with
``ModuleNotFoundError: onnxscript``); the legacy exporter is part of torch itself, needs only
``onnx``, and exports all three models with the same top-1 class (max abs logit difference at
most 3e-5 against PyTorch on real faces, README "Export").
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings

import torch
from torch import nn

from facecore.errors import ExportError

#: ONNX opset written: 17 is read by every onnxruntime since 1.13 and has everything these models use
OPSET = 17
INPUT = "input"
OUTPUTS = ("logits", "embedding")
EXPORTER = "torch.onnx legacy TorchScript exporter (dynamo=False)"


class _LogitsAndEmbedding(nn.Module):
    """The model with its final Linear split off: ``(logits, embedding)`` from one forward pass."""

    def __init__(self, model: nn.Module, head_name: str) -> None:
        super().__init__()
        body = copy.deepcopy(model).eval()
        self.head = copy.deepcopy(body.get_submodule(head_name))
        parent_name, _, leaf = head_name.rpartition(".")
        parent = body.get_submodule(parent_name) if parent_name else body
        setattr(parent, leaf, nn.Identity())
        self.body = body

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.body(x).flatten(1)
        return self.head(emb), emb


def head_name(model: nn.Module, head: nn.Module) -> str:
    """The dotted name of ``head`` inside ``model``."""
    for name, module in model.named_modules():
        if module is head:
            return name
    raise ExportError("The model's final Linear layer is not one of its submodules.")


def export_onnx(model: nn.Module, head: nn.Module, input_size: int) -> bytes:
    """The ONNX bytes of ``model`` (CPU, float32, eval mode): input ``input`` (N x 3 x S x S),
    outputs ``logits`` (N x C) and ``embedding`` (N x D, the input of ``head``), N dynamic."""
    wrapped = _LogitsAndEmbedding(model.float().cpu(), head_name(model, head)).eval()
    example = torch.zeros((2, 3, int(input_size), int(input_size)))
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, said above
        try:
            torch.onnx.export(
                wrapped,
                (example,),
                buf,
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT],
                output_names=list(OUTPUTS),
                dynamic_axes={INPUT: {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS}},
                do_constant_folding=True,
            )
        except Exception as exc:  # the exporter raises many kinds; say which model and why
            raise ExportError(f"torch.onnx could not export the model: {exc}") from exc
    return buf.getvalue()


def quantize_onnx_int8(src: str, dst: str) -> None:
    """Dynamic int8 quantization (weights int8, activations quantized at run time) of ``src``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic advises pre-processing through the root logger; its shape inference is not
    # needed for these static-shape convolutional graphs, so the advice is kept off the user's screen
    before = logging.root.manager.disable
    logging.disable(max(before, logging.WARNING))
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
    except Exception as exc:
        raise ExportError(f"onnxruntime could not quantize the model to int8: {exc}") from exc
    finally:
        logging.disable(before)


__all__ = ["EXPORTER", "INPUT", "OPSET", "OUTPUTS", "export_onnx", "head_name", "quantize_onnx_int8"]
