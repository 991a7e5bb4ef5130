"""Soft-encoding of ground-truth ab onto the 313 bins (design.md section 2).

Each pixel's ab is spread over its k nearest bin centres with Gaussian weights
``exp(-(d^2 - d_min^2) / (2 sigma^2))``, normalised to sum 1; the shift by the nearest distance
keeps ab far outside the gamut finite (no 0/0). Implementations: C++ for CPU float32/float64,
Triton for CUDA tensors, the torch reference otherwise (see :mod:`colorvid.kernels.dispatch`).

>>> import torch
>>> idx, weight = soft_encode(torch.zeros(1, 2, 1, 1), k=5)
>>> idx[0, :, 0, 0].tolist()[0], round(weight.sum().item(), 6)
(120, 1.0)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from colorvid.core.bins import NUM_BINS, ab_bins
from colorvid.kernels._checks import check_ab, check_k_sigma
from colorvid.kernels.dispatch import select_implementation
from colorvid.kernels.reference import compute_dtype, soft_encode_reference

__all__ = ["SoftEncoding", "soft_encode", "soft_encode_dense"]


class SoftEncoding(NamedTuple):
    """The k-sparse soft-encoded target; unpacks as ``idx, weight = soft_encode(ab)``."""

    indices: Tensor  #: ``(B, k, H, W)`` int64 bin indices, nearest first
    weights: Tensor  #: ``(B, k, H, W)`` float weights summing to 1 over k


def _soft_encode_cpp(ab: Tensor, k: int, sigma: float) -> tuple[Tensor, Tensor]:
    from colorvid.kernels import _cpu

    x = ab.detach().contiguous()
    b, _, h, w = x.shape
    idx = torch.empty(b, k, h, w, dtype=torch.int64)
    weight = torch.empty(b, k, h, w, dtype=x.dtype)
    centres = ab_bins(dtype=x.dtype)
    _cpu.soft_encode(x.numpy(), centres.numpy(), k, sigma, idx.numpy(), weight.numpy())
    return idx, weight


def soft_encode(
    ab: Tensor, k: int = 5, sigma: float = 5.0, *, implementation: str | None = None
) -> SoftEncoding:
    """The k nearest bins of every pixel and their normalised Gaussian weights.

    Args:
        ab: ``(B, 2, H, W)`` ground-truth chroma in Lab units, finite, any float dtype.
        k: neighbours per pixel, 1..313 (5 in the paper, 10 in Zhang's Caffe layer).
        sigma: Gaussian width in ab units.
        implementation: force ``"cpp"``, ``"triton"`` or ``"reference"``; default: the
            ``COLORVID_KERNELS`` environment variable, else the first that fits ab.

    Returns:
        ``SoftEncoding(indices, weights)``, each ``(B, k, H, W)``; indices int64, nearest first
        (ties to the lower bin index); weights float64 for float64 ab, float32 otherwise.
    """
    op = "soft_encode"
    check_ab(op, ab)
    k, sigma = check_k_sigma(op, k, sigma)
    impl = select_implementation(op, ab, implementation)
    if impl == "cpp":
        idx, weight = _soft_encode_cpp(ab, k, sigma)
    elif impl == "triton":
        from colorvid.kernels.triton_soft_encode import soft_encode_triton

        idx, weight = soft_encode_triton(ab, k, sigma)
    else:
        idx, weight = soft_encode_reference(ab.detach(), k, sigma)
    return SoftEncoding(idx, weight.to(compute_dtype(ab.dtype)))


def soft_encode_dense(
    ab: Tensor, k: int = 5, sigma: float = 5.0, *, implementation: str | None = None
) -> Tensor:
    """The dense target ``Z``, ``(B, 313, H, W)``, for callers that need every bin.

    Same arguments as :func:`soft_encode`; ``Z`` is zero outside each pixel's k bins and sums
    to 1 over the bins. The fused loss never builds it: prefer
    :func:`colorvid.kernels.rebalanced_cross_entropy` for training.
    """
    idx, weight = soft_encode(ab, k, sigma, implementation=implementation)
    b, _, h, w = idx.shape
    dense = torch.zeros(b, NUM_BINS, h, w, dtype=weight.dtype, device=weight.device)
    return dense.scatter_(1, idx, weight)
