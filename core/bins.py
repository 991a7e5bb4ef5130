"""The 313 quantised ab bins of Zhang et al. (design.md section 2) and nearest-bin lookup.

The centres ship as data (``ab_bins_313.csv``, beside this module) in the reference order: a
ascending, then b ascending, grid step 10; index 120 is (0, 0). They cannot be re-derived from a
gamut rule.

>>> centres = ab_bins()
>>> tuple(centres.shape), centres[120].tolist()
((313, 2), [0.0, 0.0])
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch
from torch import Tensor

__all__ = ["NUM_BINS", "GREY_BIN", "AB_BINS_SHA256", "ab_bins", "ab_bins_numpy", "nearest_bin"]

NUM_BINS = 313
GREY_BIN = 120  # the (0, 0) bin
# sha256 of the centres as a little-endian int64 array of shape (313, 2) (design.md section 2).
AB_BINS_SHA256 = "2a39983ed60d5b52b717842d56d5f766982289e6d5a609582155f437cecc1045"

# Pixels per chunk of the torch lookup: bounds the (chunk, 313) distance matrix to ~40 MB fp32.
_CHUNK = 32768


@functools.cache
def ab_bins_numpy() -> np.ndarray:
    """The 313 bin centres as a read-only int64 array of shape (313, 2), columns (a, b)."""
    text = resources.files("colorvid.core").joinpath("ab_bins_313.csv").read_text()
    rows = [line for line in text.splitlines() if line and not line.startswith("#")]
    if rows[0] != "a,b":
        raise RuntimeError("colorvid: corrupt ab_bins_313.csv (missing 'a,b' header)")
    arr = np.array([[int(v) for v in r.split(",")] for r in rows[1:]], dtype="<i8")
    if arr.shape != (NUM_BINS, 2):
        raise RuntimeError(f"colorvid: ab_bins_313.csv holds {arr.shape[0]} bins, expected 313")
    arr.setflags(write=False)
    return arr


def ab_bins(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The 313 bin centres as a ``(313, 2)`` tensor in Lab ab units."""
    return torch.tensor(ab_bins_numpy(), dtype=dtype, device=device)


def nearest_bin(ab: Tensor) -> Tensor:
    """Index of the nearest bin centre (Euclidean in ab) for every pixel.

    ``ab``: ``(..., 2, H, W)`` in Lab units, float. Returns int64 ``(..., H, W)``. Ties go to the
    lower index. Non-finite input is refused.
    """
    if not isinstance(ab, Tensor):
        raise TypeError(f"ab must be a torch.Tensor, got {type(ab).__name__}")
    if ab.dim() < 3 or ab.shape[-3] != 2:
        raise ValueError(f"ab must have shape (..., 2, H, W), got {tuple(ab.shape)}")
    if not ab.is_floating_point():
        raise TypeError(f"ab must be a floating-point tensor, got {ab.dtype}")
    if not torch.isfinite(ab).all():
        raise ValueError("ab contains NaN or infinity; nearest_bin accepts finite values only")
    work = ab.float() if ab.dtype in (torch.float16, torch.bfloat16) else ab
    lead, (h, w) = work.shape[:-3], work.shape[-2:]
    flat = work.movedim(-3, -1).reshape(-1, 2)  # (N, 2)
    centres = ab_bins(device=work.device, dtype=work.dtype)
    out = torch.empty(flat.shape[0], dtype=torch.int64, device=work.device)
    for start in range(0, flat.shape[0], _CHUNK):
        part = flat[start : start + _CHUNK]
        diff = part[:, None, :] - centres[None, :, :]  # (n, 313, 2)
        d2 = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]
        out[start : start + _CHUNK] = d2.argmin(dim=1)
    return out.reshape(*lead, h, w)
