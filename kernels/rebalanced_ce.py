"""Class-rebalanced multinomial cross-entropy with soft-encoded targets (design.md section 2).

    L = sum_pixels v * (logsumexp(x) - sum_i z_i x_{j_i}),   v = w[nearest bin] (1 unweighted)
    dL/dx = v * (softmax(x) - Z)

The fused implementations (C++ on CPU, Triton on CUDA) soft-encode, compute the loss and write
the gradient in one sweep over the logits; the dense ``(B, 313, h, w)`` target never exists.
The gradient is computed during the forward when the logits need one, kept by the autograd
Function and handed over (scaled only if the incoming gradient is not 1) in the backward: memory
traffic stays at the floor, logits read once and the gradient written once.

>>> import torch
>>> logits = torch.zeros(1, 313, 2, 2, requires_grad=True)
>>> loss = rebalanced_cross_entropy(logits, torch.zeros(1, 2, 2, 2))
>>> round(loss.item(), 4)  # uniform prediction: log(313)
5.7462
>>> loss.backward(); tuple(logits.grad.shape)
(1, 313, 2, 2)
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from colorvid.core.bins import ab_bins
from colorvid.kernels._checks import (
    all_finite,
    check_ab,
    check_class_weights,
    check_k_sigma,
    check_logits,
    check_reduction,
)
from colorvid.kernels.dispatch import select_implementation
from colorvid.kernels.reference import compute_dtype, rebalanced_cross_entropy_reference

__all__ = ["rebalanced_cross_entropy"]

_OP = "rebalanced_cross_entropy"


def _fused_cpp(
    logits: Tensor,
    ab: Tensor,
    class_weights: Tensor | None,
    k: int,
    sigma: float,
    scale: float,
    want_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    from colorvid.kernels import _cpu

    x = logits.detach().contiguous()
    b, _, h, w = x.shape
    loss = torch.empty(b, h, w, dtype=x.dtype)
    grad = torch.empty_like(x) if want_grad else None
    weights = None if class_weights is None else class_weights.detach().to(x.dtype).contiguous()
    _cpu.rebalanced_ce(
        x.numpy(),
        ab.detach().to(x.dtype).contiguous().numpy(),
        ab_bins(dtype=x.dtype).numpy(),
        None if weights is None else weights.numpy(),
        k,
        sigma,
        scale,
        loss.numpy(),
        None if grad is None else grad.numpy(),
    )
    return loss, grad


def _fused(impl: str, *args) -> tuple[Tensor, Tensor | None]:
    if impl == "cpp":
        return _fused_cpp(*args)
    from colorvid.kernels.triton_rebalanced_ce import rebalanced_ce_triton

    return rebalanced_ce_triton(*args)


class _FusedRebalancedCE(torch.autograd.Function):
    """Autograd wrapper of the fused kernels; ab and class_weights get no gradient."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        logits: Tensor,
        ab: Tensor,
        class_weights: Tensor | None,
        k: int,
        sigma: float,
        reduction: str,
        impl: str,
    ) -> Tensor:
        pixels = logits.shape[0] * logits.shape[2] * logits.shape[3]
        scale = 1.0 / pixels if reduction == "mean" and pixels else 1.0
        want_grad = bool(ctx.needs_input_grad[0])
        per_pixel, grad = _fused(impl, logits, ab, class_weights, k, sigma, scale, want_grad)
        if not all_finite(per_pixel):
            bad = int((~torch.isfinite(per_pixel)).sum())
            raise ValueError(
                f"{_OP}: logits contain NaN or infinity ({bad} of {pixels} pixels); "
                "only finite logits are accepted"
            )
        ctx.grad = grad  # type: ignore[attr-defined]
        ctx.reduction = reduction  # type: ignore[attr-defined]
        if reduction == "none":
            return per_pixel.to(logits.dtype)
        total = per_pixel.sum(dtype=compute_dtype(logits.dtype)) * scale
        return total.to(logits.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor):  # type: ignore[override]
        # The gradient stays in ctx and is never modified in place, so a second backward
        # (retain_graph=True, gradcheck) sees it unchanged. The usual loss.backward() passes 1:
        # hand the buffer over as is, no extra pass. (For a leaf tensor autograd copies it into
        # .grad since ctx still holds it; logits coming out of a network are never leaves.)
        grad = ctx.grad  # type: ignore[attr-defined]
        if ctx.reduction == "none":  # type: ignore[attr-defined]
            grad = grad * grad_out.to(grad.dtype)[:, None]  # (B, 1, h, w) over the 313 channels
        elif not bool(grad_out == 1):
            grad = grad * grad_out.to(grad.dtype)
        return grad, None, None, None, None, None, None


def rebalanced_cross_entropy(
    logits: Tensor,
    ab: Tensor,
    class_weights: Tensor | None = None,
    k: int = 5,
    sigma: float = 5.0,
    reduction: str = "mean",
    *,
    implementation: str | None = None,
) -> Tensor:
    """Class-rebalanced cross-entropy of 313-bin logits against soft-encoded ground-truth ab.

    Args:
        logits: ``(B, 313, h, w)`` un-normalised scores, finite.
        ab: ``(B, 2, h, w)`` ground-truth chroma (Lab units) at the logits' resolution, finite.
        class_weights: ``(313,)`` rebalancing weights w (:func:`colorvid.kernels.estimate_prior`);
            each pixel is weighted by ``w[nearest bin]``. None: unweighted (LRCN's L_seq).
        k, sigma: soft-encoding neighbours and Gaussian width (ab units).
        reduction: ``"mean"`` divides the weighted sum by the number of pixels B*h*w (not by
            the sum of the weights: E[w] = 1 by construction); ``"sum"``; ``"none"``: per
            pixel, ``(B, h, w)``.
        implementation: force ``"cpp"``, ``"triton"`` or ``"reference"``; default: the
            ``COLORVID_KERNELS`` environment variable, else the first that fits the logits.

    Returns:
        The loss in the logits' dtype; differentiable with respect to ``logits`` only.
    """
    check_ab(_OP, ab)
    check_logits(_OP, logits, ab)
    if class_weights is not None:
        check_class_weights(_OP, class_weights, logits.device)
    k, sigma = check_k_sigma(_OP, k, sigma)
    check_reduction(_OP, reduction)
    impl = select_implementation(_OP, logits, implementation)
    if impl == "reference":
        if not all_finite(logits):
            raise ValueError(
                f"{_OP}: logits contain NaN or infinity; only finite logits are accepted"
            )
        return rebalanced_cross_entropy_reference(
            logits, ab.detach(), class_weights, k, sigma, reduction
        )
    return _FusedRebalancedCE.apply(logits, ab, class_weights, k, sigma, reduction, impl)
