"""Pure-torch reference of soft-encoding and the class-rebalanced cross-entropy (design.md s. 2).

Written for clarity, not speed: it builds the dense ``(B, 313, H, W)`` target and lets autograd
differentiate ``log_softmax``. It is the ground truth every other implementation is tested
against, and it runs on any device and floating-point dtype. Inputs are assumed validated
(:mod:`colorvid.kernels._checks`); call the public functions in :mod:`colorvid.kernels` instead.

Maths, per pixel with ground-truth ab and the bin centres c_q:
    d2_q = ||ab - c_q||^2;  j_1..j_k = the k nearest bins (ties to the lower index)
    z_i  = exp(-(d2_{j_i} - d2_{j_1}) / (2 sigma^2)) / sum_i(...)   (shifted: never 0/0)
    v    = w[j_1] (1 without class weights)
    L    = v * (logsumexp(x) - sum_i z_i x_{j_i}) = -v * sum_q Z_q log softmax(x)_q
"""

from __future__ import annotations

import torch
from torch import Tensor

from colorvid.core.bins import NUM_BINS, ab_bins

__all__ = [
    "compute_dtype",
    "rebalanced_cross_entropy_reference",
    "soft_encode_dense_reference",
    "soft_encode_reference",
]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other floating dtype computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def soft_encode_reference(ab: Tensor, k: int = 5, sigma: float = 5.0) -> tuple[Tensor, Tensor]:
    """ab ``(B, 2, H, W)`` -> (indices int64, weights) each ``(B, k, H, W)``, nearest first."""
    dtype = compute_dtype(ab.dtype)
    centres = ab_bins(device=ab.device, dtype=dtype)  # (313, 2)
    flat = ab.to(dtype).movedim(1, -1).reshape(-1, 2)  # (N, 2)
    diff = flat[:, None, :] - centres[None, :, :]  # (N, 313, 2)
    d2 = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]  # (N, 313)
    # Repeatedly take the nearest remaining bin: torch.argmin returns the first minimum, so ties
    # go to the lower bin index, as in colorvid.core.bins.nearest_bin. (topk does not promise
    # an order among ties; grey pixels at exactly (0, 0) tie four ways at k = 10.)
    remaining = d2.clone()
    picked, dists = [], []
    for _ in range(k):
        j = remaining.argmin(dim=1)  # (N,)
        picked.append(j)
        dists.append(d2.gather(1, j[:, None])[:, 0])
        remaining.scatter_(1, j[:, None], float("inf"))
    idx = torch.stack(picked, dim=1)  # (N, k)
    dist = torch.stack(dists, dim=1)  # (N, k), ascending
    weight = torch.exp(-(dist - dist[:, :1]) / (2.0 * sigma * sigma))
    weight = weight / weight.sum(dim=1, keepdim=True)
    b, _, h, w = ab.shape
    return (
        idx.reshape(b, h, w, k).permute(0, 3, 1, 2).contiguous(),
        weight.reshape(b, h, w, k).permute(0, 3, 1, 2).contiguous(),
    )


def soft_encode_dense_reference(ab: Tensor, k: int = 5, sigma: float = 5.0) -> Tensor:
    """ab ``(B, 2, H, W)`` -> the dense soft-encoded target ``Z``, ``(B, 313, H, W)``."""
    return _densify(*soft_encode_reference(ab, k, sigma))


def _densify(idx: Tensor, weight: Tensor) -> Tensor:
    b, _, h, w = idx.shape
    dense = torch.zeros(b, NUM_BINS, h, w, dtype=weight.dtype, device=idx.device)
    return dense.scatter_(1, idx, weight)


def rebalanced_cross_entropy_reference(
    logits: Tensor,
    ab: Tensor,
    class_weights: Tensor | None = None,
    k: int = 5,
    sigma: float = 5.0,
    reduction: str = "mean",
) -> Tensor:
    """The loss by the book: dense target, ``log_softmax``, autograd for the gradient."""
    dtype = compute_dtype(logits.dtype)
    idx, weight = soft_encode_reference(ab, k, sigma)
    target = _densify(idx, weight).to(dtype)  # (B, 313, h, w)
    log_p = torch.log_softmax(logits.to(dtype), dim=1)
    per_pixel = -(target * log_p).sum(dim=1)  # (B, h, w)
    if class_weights is not None:
        per_pixel = per_pixel * class_weights.to(dtype)[idx[:, 0]]  # v = w[nearest bin]
    if reduction == "none":
        return per_pixel.to(logits.dtype)
    total = per_pixel.sum()
    if reduction == "mean":
        # Divide by the number of pixels, not by sum(v): E[w] = 1 by construction of the prior.
        total = total / per_pixel.numel()
    return total.to(logits.dtype)
