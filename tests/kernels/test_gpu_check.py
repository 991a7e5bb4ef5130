"""benches/gpu_check.py: on a machine without CUDA it says so clearly and checks nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benches" / "gpu_check.py"


def test_gpu_check_without_cuda_exits_2_with_a_reason(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: run benches/gpu_check.py itself")
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 2
    out = capsys.readouterr().out
    assert "gpu_check: cannot run:" in out and "Nothing was checked" in out
