"""Fused soft-encoding + class-rebalanced cross-entropy on the GPU (Triton): kernel, launcher.

Imported only when Triton runs; :mod:`colorvid.kernels.rebalanced_ce` holds the public function
and the autograd Function.

Per pixel with logits x, the k nearest bins j_i, weights z_i and v = w[j_1] (design.md s. 2):
    L       = v * (logsumexp(x) - sum_i z_i x_{j_i})
    dL/dx_c = scale * v * (softmax(x)_c - Z_c),   Z_c = sum_i z_i [j_i == c]
One program owns BLOCK_P pixels of one image and all 313 channels: it soft-encodes them into a
(BLOCK_Q, BLOCK_P) register tile Z, loads the logits tile once, and writes the per-pixel loss
and the gradient in the same pass. Memory traffic is the floor: logits read once, gradient
written once. Programs share nothing and never read back what they wrote: no atomics, no
barriers, nothing the interpreter could hide.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from colorvid.core.bins import NUM_BINS
from colorvid.kernels.triton_soft_encode import BLOCK_Q, _centres, _distance_tile

__all__ = ["BLOCK_P", "NUM_WARPS", "rebalanced_ce_triton"]

# Pixels per program and warps. Not yet measured on a GPU (none was available when this was
# written): 16 pixels x 512 bins keeps the Z, logits and exp tiles at 32 floats per thread with
# 8 warps. benches/gpu_check.py sweeps both and prints the best.
BLOCK_P = 16
NUM_WARPS = 8


@triton.jit
def _rebalanced_ce_kernel(
    logits_ptr,
    ab_ptr,
    centres_ptr,
    weights_ptr,
    loss_ptr,
    grad_ptr,
    HW,
    TILES,
    inv_two_sigma2,
    scale,
    K: tl.constexpr,
    HAS_WEIGHTS: tl.constexpr,
    WRITE_GRAD: tl.constexpr,
    NUM_Q: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    # One flat grid axis, image-major: axis 0 takes 2^31 - 1 programs, axis 1 only 65535.
    pid = tl.program_id(0)
    b = (pid // TILES).to(tl.int64)
    offs_p = (pid % TILES) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = offs_p < HW

    # Soft-encode into a dense register tile: the nearest bin gets 1 (the shift by the nearest
    # distance, so no 0/0 far from the gamut), each next-nearest exp(-(d2 - d2_min) / 2s^2).
    d2, q = _distance_tile(ab_ptr, centres_ptr, b, offs_p, pmask, HW, NUM_Q, BLOCK_Q)
    qmask = q < NUM_Q
    d_min, j0 = tl.min(d2, axis=0, return_indices=True)
    hit = q[:, None] == j0[None, :]
    z = tl.where(hit, 1.0, 0.0)
    total = tl.full([BLOCK_P], 1.0, dtype=tl.float32)
    rest = tl.where(hit, float("inf"), d2)
    for _ in range(1, K):
        dist, j = tl.min(rest, axis=0, return_indices=True)
        e_k = tl.exp(-(dist - d_min) * inv_two_sigma2)
        hit = q[:, None] == j[None, :]
        z = tl.where(hit, e_k[None, :], z)  # the k bins are distinct: assign, never add
        total += e_k
        rest = tl.where(hit, float("inf"), rest)
    z = z / total[None, :]
    if HAS_WEIGHTS:
        v = tl.load(weights_ptr + j0, mask=pmask, other=0.0).to(tl.float32)
    else:
        v = tl.full([BLOCK_P], 1.0, dtype=tl.float32)

    # The logits tile, read once, in float32 whatever the storage dtype.
    mask2 = qmask[:, None] & pmask[None, :]
    offs = b * NUM_Q * HW + q[:, None].to(tl.int64) * HW + offs_p[None, :]
    x = tl.load(logits_ptr + offs, mask=mask2, other=0.0).to(tl.float32)
    finite = tl.sum(x - x, axis=0)  # 0, or NaN when a logit is NaN/inf: poisons that pixel's loss
    x_max = tl.max(tl.where(qmask[:, None], x, float("-inf")), axis=0)
    e = tl.exp(x - x_max[None, :])
    e = tl.where(qmask[:, None], e, 0.0)
    s = tl.sum(e, axis=0)
    zx = tl.sum(z * x, axis=0)  # z is 0 on padded bins, where x was loaded as 0
    loss = v * (x_max + tl.log(s) - zx) + finite
    tl.store(loss_ptr + b * HW + offs_p, loss, mask=pmask)
    if WRITE_GRAD:
        g = (e / s[None, :] - z) * (v * scale)[None, :]
        tl.store(grad_ptr + offs, g.to(grad_ptr.dtype.element_ty), mask=mask2)


def rebalanced_ce_triton(
    logits: Tensor,
    ab: Tensor,
    class_weights: Tensor | None,
    k: int,
    sigma: float,
    scale: float,
    want_grad: bool,
    block_p: int = BLOCK_P,
    num_warps: int = NUM_WARPS,
) -> tuple[Tensor, Tensor | None]:
    """Validated inputs -> (per-pixel loss float32 ``(B, h, w)``, gradient or None).

    The gradient is ``scale * v * (softmax - Z)`` in the logits' dtype and layout.
    """
    b, _, h, w = logits.shape
    hw = h * w
    x = logits.detach().contiguous()
    ab32 = ab.detach().to(torch.float32).contiguous()
    centres = _centres(logits.device)
    loss = torch.empty(b, h, w, dtype=torch.float32, device=logits.device)
    grad = torch.empty_like(x) if want_grad else None
    if loss.numel() == 0:
        return loss, grad
    weights = (
        class_weights.detach().to(torch.float32).contiguous()
        if class_weights is not None
        else centres  # never read: HAS_WEIGHTS is False
    )
    tiles = triton.cdiv(hw, block_p)
    _rebalanced_ce_kernel[(b * tiles,)](
        x,
        ab32,
        centres,
        weights,
        loss,
        grad if grad is not None else loss,
        hw,
        tiles,
        1.0 / (2.0 * sigma * sigma),
        float(scale),
        K=k,
        HAS_WEIGHTS=class_weights is not None,
        WRITE_GRAD=want_grad,
        NUM_Q=NUM_BINS,
        BLOCK_Q=BLOCK_Q,
        BLOCK_P=block_p,
        num_warps=num_warps,
    )
    return loss, grad
