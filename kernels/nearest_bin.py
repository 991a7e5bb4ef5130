"""Nearest ab bin per pixel: the C++ implementation, with the torch reference in colorvid.core.

q*(p) = argmin_q ||ab(p) - centre_q||^2 over the 313 centres; ties go to the lower index.
"""

from __future__ import annotations

import torch
from torch import Tensor

from colorvid.core.bins import ab_bins
from colorvid.core.bins import nearest_bin as nearest_bin_reference

__all__ = ["nearest_bin", "nearest_bin_cpp"]


def nearest_bin_cpp(ab: Tensor, num_threads: int = 0) -> Tensor:
    """C++ (multi-threaded) nearest bin for a CPU float32/float64 tensor ``(B, 2, H, W)``."""
    from colorvid.kernels import _cpu

    if not isinstance(ab, Tensor) or ab.dim() != 4 or ab.shape[1] != 2:
        shape = tuple(ab.shape) if isinstance(ab, Tensor) else type(ab).__name__
        raise ValueError(f"ab must have shape (B, 2, H, W), got {shape}")
    if ab.device.type != "cpu":
        raise ValueError(f"nearest_bin_cpp runs on CPU tensors only, got device {ab.device}")
    if ab.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"nearest_bin_cpp accepts float32 or float64, got {ab.dtype}")
    x = ab.detach().contiguous()
    centres = ab_bins(dtype=x.dtype)
    return torch.from_numpy(_cpu.nearest_bin(x.numpy(), centres.numpy(), num_threads))


def nearest_bin(ab: Tensor) -> Tensor:
    """Nearest bin, ``(B, 2, H, W)`` -> ``(B, H, W)``: C++ on CPU float tensors, torch otherwise."""
    if (
        isinstance(ab, Tensor)
        and ab.device.type == "cpu"
        and ab.dtype in (torch.float32, torch.float64)
        and ab.dim() == 4
    ):
        return nearest_bin_cpp(ab)
    return nearest_bin_reference(ab)
