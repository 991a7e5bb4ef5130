"""The class-rebalancing prior: nearest-bin counts over a dataset -> per-bin loss weights.

design.md section 2: p = empirical distribution of nearest bins; p~ = p smoothed with a Gaussian
of sigma = 5 ab units over the bin centres; w = ((1 - lambda) p~ + lambda / Q)^-1, lambda = 0.5;
normalised so that sum_q p~_q w_q = 1 (so E[w] = 1 over the training pixels, and the "mean"
loss stays on the scale of the unweighted one).

Smoothing here is the Gaussian kernel evaluated between bin centres,
``p~_q = sum_r exp(-||c_q - c_r||^2 / (2 sigma^2)) p_r``, renormalised to sum 1: Zhang's
smoothing of the ab grid, restricted to in-gamut bins. ``sigma=0`` means no smoothing.

The weights are a plain ``(313,)`` float32 tensor, so a model can keep them as a buffer and
its safetensors file holds them; :func:`save_prior` / :func:`load_prior` store them alone.

>>> import torch
>>> est = PriorEstimator()
>>> est.update(torch.zeros(2, 2, 4, 4))  # 32 grey pixels: every count in bin 120
>>> w = est.weights()
>>> tuple(w.shape), bool(w[120] < w[0])  # frequent bins weigh less
((313,), True)
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from colorvid.core.bins import NUM_BINS, ab_bins
from colorvid.kernels._checks import check_ab, check_class_weights
from colorvid.kernels.nearest_bin import nearest_bin

__all__ = [
    "PRIOR_KEY",
    "PriorEstimator",
    "estimate_prior",
    "load_prior",
    "prior_weights",
    "save_prior",
    "smooth_distribution",
]

#: The tensor name of the weights in a prior file (and the suggested buffer name in a model).
PRIOR_KEY = "class_weights"
_COUNTS_KEY = "counts"


def _check_lam_sigma(lam: float, sigma: float) -> None:
    if not isinstance(lam, (int, float)) or not 0.0 < lam <= 1.0:
        raise ValueError(f"prior: lam (the uniform mixing weight) must be in (0, 1], got {lam!r}")
    if not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
        raise ValueError(
            f"prior: sigma must be a finite float >= 0 (ab units; 0 = no smoothing), got {sigma!r}"
        )


def _check_counts(counts: object) -> Tensor:
    if not isinstance(counts, Tensor) or counts.shape != (NUM_BINS,):
        shape = tuple(counts.shape) if isinstance(counts, Tensor) else type(counts).__name__
        raise ValueError(f"prior: counts must be a tensor of shape ({NUM_BINS},), got {shape}")
    c = counts.detach().to(torch.float64, copy=True).cpu()
    if not bool(torch.isfinite(c).all()) or bool((c < 0).any()):
        raise ValueError("prior: counts must be finite and >= 0")
    if float(c.sum()) <= 0:
        raise ValueError("prior: counts are all zero; update the estimator with some ab first")
    return c


def smooth_distribution(counts: Tensor, sigma: float = 5.0) -> Tensor:
    """Counts ``(313,)`` -> p~, the Gaussian-smoothed distribution (float64, sums to 1)."""
    _check_lam_sigma(0.5, sigma)
    c = _check_counts(counts)
    p = c / c.sum()
    if sigma == 0:
        return p
    centres = ab_bins(dtype=torch.float64)
    d2 = torch.cdist(centres, centres).square()  # (313, 313), symmetric
    kernel = torch.exp(-d2 / (2.0 * sigma * sigma))
    smoothed = kernel @ p
    return smoothed / smoothed.sum()


def prior_weights(counts: Tensor, lam: float = 0.5, sigma: float = 5.0) -> Tensor:
    """Counts ``(313,)`` -> rebalancing weights w ``(313,)`` float32, with sum p~ w = 1."""
    _check_lam_sigma(lam, sigma)
    p_smooth = smooth_distribution(counts, sigma)
    w = 1.0 / ((1.0 - lam) * p_smooth + lam / NUM_BINS)
    w = w / (p_smooth * w).sum()
    return w.to(torch.float32)


class PriorEstimator:
    """Streams nearest-bin counts over a dataset; :meth:`weights` turns them into w.

    Counts are float64 (exact integers up to 2^53 pixels) on the CPU whatever the input device.
    """

    def __init__(self) -> None:
        self.counts = torch.zeros(NUM_BINS, dtype=torch.float64)

    @property
    def pixels(self) -> int:
        """How many pixels have been counted."""
        return int(self.counts.sum())

    def update(self, ab: Tensor, mask: Tensor | None = None) -> None:
        """Count the nearest bin of every pixel of ``ab`` ``(B, 2, H, W)`` or ``(2, H, W)``.

        ``mask``: optional bool ``(B, H, W)`` (or ``(H, W)``) selecting the pixels to count,
        e.g. to leave out padding.
        """
        if isinstance(ab, Tensor) and ab.dim() == 3:
            ab = ab[None]
            mask = None if mask is None else mask[None]
        check_ab("PriorEstimator.update", ab)
        bins = nearest_bin(ab.detach())  # (B, H, W)
        if mask is not None:
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != bins.shape:
                got = (
                    (tuple(mask.shape), mask.dtype)
                    if isinstance(mask, Tensor)
                    else type(mask).__name__
                )
                raise ValueError(
                    "PriorEstimator.update: mask must be a bool tensor of shape "
                    f"{tuple(bins.shape)}, got {got}"
                )
            bins = bins[mask.to(bins.device)]
        self.counts += torch.bincount(bins.reshape(-1).cpu(), minlength=NUM_BINS).to(torch.float64)

    def weights(self, lam: float = 0.5, sigma: float = 5.0) -> Tensor:
        """The rebalancing weights of everything counted so far (see :func:`prior_weights`)."""
        return prior_weights(self.counts, lam, sigma)


def estimate_prior(batches: Iterable[Tensor], lam: float = 0.5, sigma: float = 5.0) -> Tensor:
    """Weights ``(313,)`` from an iterable of ab batches ``(B, 2, H, W)``, read once, streaming."""
    _check_lam_sigma(lam, sigma)
    est = PriorEstimator()
    for ab in batches:
        est.update(ab)
    return est.weights(lam, sigma)


def save_prior(path: str | os.PathLike, weights: Tensor, counts: Tensor | None = None) -> Path:
    """Write the weights (and optionally the counts) to a safetensors file, atomically."""
    from safetensors.torch import save_file

    check_class_weights("save_prior", weights)
    tensors = {PRIOR_KEY: weights.detach().to(torch.float32).cpu().contiguous()}
    if counts is not None:
        tensors[_COUNTS_KEY] = _check_counts(counts)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "colorvid-prior", "bins": str(NUM_BINS)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_prior(path: str | os.PathLike) -> Tensor:
    """Read the weights ``(313,)`` float32 back from :func:`save_prior`'s file (no code runs)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(os.fspath(path))
    except (OSError, SafetensorError) as e:
        raise ValueError(f"load_prior: cannot read a safetensors prior from {path}: {e}") from e
    if PRIOR_KEY not in tensors:
        raise ValueError(
            f"load_prior: {path} holds no {PRIOR_KEY!r} tensor (has {sorted(tensors)})"
        )
    return check_class_weights(f"load_prior({path})", tensors[PRIOR_KEY]).to(torch.float32)
