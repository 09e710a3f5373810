"""The machine the bench runs on, as its result records it, and the process settings it runs under
(environment variables, stand-in pretrained weights)."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torchvision

from facecore.evaluate.bench.plan import Plan
from facecore.models.registry import create_model
from facecore.models.weights import weights_file, weights_status
from facecore.train.hardware import autocast_for


@contextlib.contextmanager
def env_vars(**values: str) -> Iterator[None]:
    """Set environment variables for the ``with`` block; restore them afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_average() -> float | None:
    """The 1-minute load average, or None where the system has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return name


def describe_environment(
    dev: torch.device, *, batch: int, quick: bool, plan: Plan, weights: str, load_before: float | None
) -> dict[str, Any]:
    """The result's ``env``: the device, the software, the settings and the load before and now."""
    amp_name = autocast_for(dev, "auto")[1]
    return {
        "device": dev.type,
        "device_name": _device_name(dev),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "amp": amp_name,
        "channels_last": dev.type == "cuda",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "batch": batch,
        "quick": quick,
        "plan": asdict(plan),
        "weights": weights,
        "load_before": load_before,
        "load_after": load_average(),
    }


@contextlib.contextmanager
def standin_weights(tmp: Path, names: Sequence[str]) -> Iterator[str]:
    """A random-init ResNet-50 file where torchvision's loader looks, unless real weights are there."""
    if "resnet50_pretrained" not in names or weights_status("resnet50_pretrained")["available"]:
        yield "imagenet" if "resnet50_pretrained" in names else "n/a"
        return
    torch_home = tmp / "torch_home"
    with env_vars(TORCH_HOME=str(torch_home)):
        target = weights_file("resnet50_pretrained")
        target.parent.mkdir(parents=True, exist_ok=True)
        state = create_model("resnet50_scratch", num_classes=1000).state_dict()
        torch.save({k: v for k, v in state.items()}, target)
        yield "random stand-in (speed as ImageNet's)"


__all__ = ["describe_environment", "env_vars", "load_average", "standin_weights"]
