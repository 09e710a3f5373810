"""The device summary, resolving and syncing devices, and the glibc allocator tuning used by training and
inference."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from facecore.device import device_summary, resolve_device, sync, tune_allocator
from facecore.errors import ConfigError
from tests.helpers import ROOT


def test_device_summary_names_the_cpu() -> None:
    assert "CPU" in device_summary() or "CUDA" in device_summary()


def test_resolve_device_refuses_an_unknown_name() -> None:
    with pytest.raises(ConfigError, match="Unknown device 'tpu'"):
        resolve_device("tpu")


def test_sync_waits_for_the_device_and_is_a_no_op_on_cpus() -> None:
    sync(torch.device("cpu"))
    dev = resolve_device("auto")
    x = torch.ones(64, 64, device=dev) @ torch.ones(64, 64, device=dev)
    sync(dev)
    assert float(x[0, 0]) == 64.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
@pytest.mark.parametrize("setting,expected", [("1", "True"), ("0", "False")])
def test_allocator_tuning_can_be_turned_off(setting: str, expected: str) -> None:
    code = "from facecore.device import tune_allocator as t; print(t(), t())"
    env = {**os.environ, "FACECORE_MALLOC_TUNE": setting, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected, expected]


def test_tuning_is_idempotent_in_this_process() -> None:
    assert tune_allocator() == tune_allocator()
