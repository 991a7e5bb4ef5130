"""Soft-encoding on the GPU (Triton): the kernel, then its launcher.

Imported only when Triton runs (CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``);
:mod:`colorvid.kernels.soft_encode` is the public entry point.

One program owns BLOCK_P pixels of one image and all 313 bins: it builds the (BLOCK_Q, BLOCK_P)
tile of squared distances, then takes the nearest remaining bin k times (min with its index,
then masks it out). ``tl.min(..., return_indices=True)`` breaks ties towards the lower index, as
``torch.argmin`` does in the reference. Programs share nothing and no program reads what it
wrote, so there is no race or barrier for the GPU to get wrong that the interpreter would hide.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from colorvid.core.bins import NUM_BINS

__all__ = ["BLOCK_P", "soft_encode_triton"]

# Pixels per program. Not yet measured on a GPU (none was available when this was written);
# benches/gpu_check.py sweeps 8..64 and prints the best, which belongs here with its number.
BLOCK_P = 32
BLOCK_Q = triton.next_power_of_2(NUM_BINS)  # 512: the distance tile holds every bin at once


@triton.jit
def _distance_tile(
    ab_ptr, centres_ptr, b, offs_p, pmask, HW, NUM_Q: tl.constexpr, BLOCK_Q: tl.constexpr
):
    """d2[q, p] = ||ab[b, :, p] - centre_q||^2 as a (BLOCK_Q, BLOCK_P) tile; padded bins are inf."""
    q = tl.arange(0, BLOCK_Q)
    qmask = q < NUM_Q
    ca = tl.load(centres_ptr + 2 * q, mask=qmask, other=0.0)
    cb = tl.load(centres_ptr + 2 * q + 1, mask=qmask, other=0.0)
    a = tl.load(ab_ptr + b * 2 * HW + offs_p, mask=pmask, other=0.0)
    bb = tl.load(ab_ptr + b * 2 * HW + HW + offs_p, mask=pmask, other=0.0)
    da = a[None, :] - ca[:, None]
    db = bb[None, :] - cb[:, None]
    d2 = da * da + db * db  # the interpreter refuses ** on tensors
    return tl.where(qmask[:, None], d2, float("inf")), q


@triton.jit
def _soft_encode_kernel(
    ab_ptr,
    centres_ptr,
    idx_ptr,
    weight_ptr,
    HW,
    TILES,
    inv_two_sigma2,
    K: tl.constexpr,
    NUM_Q: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    # z_i = exp(-(d2_i - d2_0) / (2 sigma^2)) / sum_i(...): shifting by the nearest distance
    # keeps the first term at 1, so the sum never underflows to 0 however far ab is.
    # One flat grid axis, image-major: axis 0 takes 2^31 - 1 programs, axis 1 only 65535.
    pid = tl.program_id(0)
    b = (pid // TILES).to(tl.int64)
    offs_p = (pid % TILES) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = offs_p < HW
    d2, q = _distance_tile(ab_ptr, centres_ptr, b, offs_p, pmask, HW, NUM_Q, BLOCK_Q)
    d_min = tl.min(d2, axis=0)
    # Pass 1: the normaliser. Pass 2 recomputes the same picks instead of reading back stored
    # weights: a reload could be served by another thread of the program without a barrier.
    total = tl.zeros([BLOCK_P], dtype=tl.float32)
    rest = d2
    for _ in range(K):
        dist, j = tl.min(rest, axis=0, return_indices=True)
        total += tl.exp(-(dist - d_min) * inv_two_sigma2)
        rest = tl.where(q[:, None] == j[None, :], float("inf"), rest)
    rest = d2
    for i in range(K):
        dist, j = tl.min(rest, axis=0, return_indices=True)
        w = tl.exp(-(dist - d_min) * inv_two_sigma2) / total
        out = (b * K + i) * HW + offs_p
        tl.store(idx_ptr + out, j.to(tl.int64), mask=pmask)
        tl.store(weight_ptr + out, w.to(weight_ptr.dtype.element_ty), mask=pmask)
        rest = tl.where(q[:, None] == j[None, :], float("inf"), rest)


def soft_encode_triton(
    ab: Tensor, k: int, sigma: float, block_p: int = BLOCK_P
) -> tuple[Tensor, Tensor]:
    """Validated ab ``(B, 2, H, W)`` -> (int64 indices, float32 weights), each ``(B, k, H, W)``."""
    b, _, h, w = ab.shape
    hw = h * w
    ab32 = ab.detach().to(torch.float32).contiguous()
    centres = _centres(ab.device)
    idx = torch.empty(b, k, h, w, dtype=torch.int64, device=ab.device)
    weight = torch.empty(b, k, h, w, dtype=torch.float32, device=ab.device)
    if idx.numel() == 0:
        return idx, weight
    tiles = triton.cdiv(hw, block_p)
    _soft_encode_kernel[(b * tiles,)](
        ab32,
        centres,
        idx,
        weight,
        hw,
        tiles,
        1.0 / (2.0 * sigma * sigma),
        K=k,
        NUM_Q=NUM_BINS,
        BLOCK_Q=BLOCK_Q,
        BLOCK_P=block_p,
    )
    return idx, weight


_CENTRES: dict[torch.device, Tensor] = {}


def _centres(device: torch.device) -> Tensor:
    """The bin centres as float32 ``(313, 2)`` on ``device``, uploaded once per device."""
    from colorvid.core.bins import ab_bins

    if device not in _CENTRES:
        _CENTRES[device] = ab_bins(device=device, dtype=torch.float32).contiguous()
    return _CENTRES[device]
