"""The device summary and the glibc allocator tuning used by training and inference."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from facecore.device import device_summary, tune_allocator
from tests.helpers import ROOT


def test_device_summary_names_the_cpu() -> None:
    assert "CPU" in device_summary() or "CUDA" in device_summary()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
@pytest.mark.parametrize("setting,expected", [("1", "True"), ("0", "False")])
def test_allocator_tuning_can_be_turned_off(setting: str, expected: str) -> None:
    code = "from facecore.device import tune_allocator as t; print(t(), t())"
    env = {**os.environ, "FACECORE_MALLOC_TUNE": setting, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected, expected]


def test_tuning_is_idempotent_in_this_process() -> None:
    assert tune_allocator() == tune_allocator()
