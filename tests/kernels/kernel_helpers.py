"""Helpers of the kernel tests: ab and logits generators, and which implementations run here."""

from __future__ import annotations

import pytest
import torch

from colorvid.kernels.dispatch import unsupported_reason


def random_ab(
    b: int, h: int, w: int, seed: int = 0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """ab uniform over [-120, 120]^2: in-gamut pixels and some beyond the gamut edge.

    Continuous values, so exact distance ties (whose order only the tie rule decides) have
    probability zero; ties get their own tests.
    """
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 2, h, w, generator=g, dtype=torch.float64) * 240 - 120).to(dtype)


def random_logits(
    b: int, h: int, w: int, seed: int = 1, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 313, h, w, generator=g, dtype=torch.float64) * 3).to(dtype)


def random_class_weights(seed: int = 2, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(313, generator=g, dtype=torch.float64) * 4 + 0.1).to(dtype)


def skip_unless_runs(name: str, dtype: torch.dtype = torch.float32) -> None:
    """Skip (with the dispatcher's reason) when ``name`` cannot run on CPU tensors here."""
    reason = unsupported_reason(name, torch.device("cpu"), dtype, forced=True)
    if reason is not None:
        pytest.skip(f"{name}: {reason}")
