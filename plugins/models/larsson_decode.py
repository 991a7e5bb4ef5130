"""The released test-time decoding of Larsson et al.: hue/chroma histograms -> RGB.

Bins: 32 each, centres ``(k + 0.5) / 32`` in [0, 1). Colour model: V = max(R, G, B), chroma
C = max - min, hue = the HSV hue. The release's defaults (``median`` chroma, ``expectation-cf``
hue) are ours:

- chroma: the median of its histogram, ``(#{k: cumsum_k < 0.5} + 0.5) / 32``;
- hue: the circular mean ``angle(sum_k p_k e^{2 pi i c_k}) / 2 pi`` (mod 1);
- chromatic fading: chroma times ``clip(|mean_k p_k e^{2 pi i c_k}|, 0, 0.03) / 0.03``. The
  release takes the *mean* over the 32 bins (= |sum| / 32), so a hue histogram whose resultant
  length is below 0.96 fades; design.md writes |sum|, which would almost never fade.
- HSV with V = grey + C/2 and S = 2C / (2 grey + C), clipped, to RGB, clipped;
- lightness matching: ``rgb - mean(rgb) + grey``, clipped to [0, 1].

All functions are batched torch: histograms ``(B, 32, H, W)``, grey ``(B, 1, H, W)`` in [0, 1].
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "CHROMA_METHODS",
    "FADE_THRESHOLD",
    "HUE_METHODS",
    "bin_centres",
    "decode_chroma",
    "decode_hue",
    "hsv_to_rgb",
    "histograms_to_rgb",
    "match_lightness",
]

HueMethod = Literal["expectation-cf", "expectation", "mode"]
ChromaMethod = Literal["median", "expectation", "mode"]
HUE_METHODS: tuple[str, ...] = ("expectation-cf", "expectation", "mode")
CHROMA_METHODS: tuple[str, ...] = ("median", "expectation", "mode")
FADE_THRESHOLD = 0.03  # the release's constant


def bin_centres(n: int, like: Tensor) -> Tensor:
    """``(k + 0.5) / n`` shaped ``(1, n, 1, 1)`` for broadcasting against histograms."""
    return ((torch.arange(n, dtype=like.dtype, device=like.device) + 0.5) / n).view(1, n, 1, 1)


def _check_hist(hist: Tensor, name: str) -> None:
    if not isinstance(hist, Tensor) or hist.dim() != 4:
        raise ValueError(f"larsson decode: {name} must be a (B, bins, H, W) tensor")


def decode_hue(hist_h: Tensor, method: HueMethod = "expectation-cf") -> tuple[Tensor, Tensor]:
    """Hue histograms ``(B, n, H, W)`` -> (hue ``(B, 1, H, W)`` in [0, 1), fading factor)."""
    _check_hist(hist_h, "hist_h")
    n = hist_h.shape[1]
    ones = torch.ones_like(hist_h[:, :1])
    if method == "mode":
        return (hist_h.argmax(dim=1, keepdim=True).to(hist_h.dtype) + 0.5) / n, ones
    if method not in HUE_METHODS:
        raise ValueError(f"larsson: hue method must be one of {', '.join(HUE_METHODS)}, "
                         f"got {method!r}")
    angle = 2 * math.pi * bin_centres(n, hist_h)
    re = (hist_h * torch.cos(angle)).sum(dim=1, keepdim=True)
    im = (hist_h * torch.sin(angle)).sum(dim=1, keepdim=True)
    hue = torch.remainder(torch.atan2(im, re) / (2 * math.pi), 1.0)
    if method == "expectation":
        return hue, ones
    resultant = torch.sqrt(re * re + im * im) / n  # |mean over bins|, as released
    return hue, resultant.clamp(0.0, FADE_THRESHOLD) / FADE_THRESHOLD


def decode_chroma(hist_c: Tensor, method: ChromaMethod = "median") -> Tensor:
    """Chroma histograms ``(B, n, H, W)`` -> chroma ``(B, 1, H, W)`` in [0, 1]."""
    _check_hist(hist_c, "hist_c")
    n = hist_c.shape[1]
    if method == "median":
        below = (hist_c.cumsum(dim=1) < 0.5).sum(dim=1, keepdim=True)
        return (below.to(hist_c.dtype) + 0.5) / n
    if method == "expectation":
        return (hist_c * bin_centres(n, hist_c)).sum(dim=1, keepdim=True)
    if method == "mode":  # the release's mode has no half-bin offset
        return hist_c.argmax(dim=1, keepdim=True).to(hist_c.dtype) / n
    raise ValueError(f"larsson: chroma method must be one of {', '.join(CHROMA_METHODS)}, "
                     f"got {method!r}")


def hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """HSV in [0, 1] (each ``(B, 1, H, W)``) -> RGB ``(B, 3, H, W)`` (skimage's hsv2rgb)."""
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    i = torch.remainder(i, 6).long()
    # For each sextant the (r, g, b) picks from (v, t, p, q).
    table = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
    out = torch.zeros(h.shape[0], 3, *h.shape[-2:], dtype=h.dtype, device=h.device)
    for k, (r, g, b) in enumerate(table):
        mask = i == k
        out = torch.where(mask, torch.cat((r, g, b), dim=1), out)
    return out


def match_lightness(rgb: Tensor, grey: Tensor) -> Tensor:
    """Shift each pixel so its channel mean equals the input grey: ``rgb - mean + grey``."""
    return (rgb - rgb.mean(dim=1, keepdim=True) + grey).clamp(0.0, 1.0)


def histograms_to_rgb(
    hist_h: Tensor,
    hist_c: Tensor,
    grey: Tensor,
    hue: HueMethod = "expectation-cf",
    chroma: ChromaMethod = "median",
) -> Tensor:
    """The released decoding: histograms and grey ``(B, 1, H, W)`` -> RGB ``(B, 3, H, W)``."""
    if hist_h.shape[-2:] != grey.shape[-2:] or hist_c.shape[-2:] != grey.shape[-2:]:
        raise ValueError(f"larsson decode: histograms {tuple(hist_h.shape)} / "
                         f"{tuple(hist_c.shape)} and grey {tuple(grey.shape)} differ in size")
    h, fade = decode_hue(hist_h, hue)
    c = decode_chroma(hist_c, chroma) * fade
    v = grey + c / 2
    s = 2 * c / (2 * grey + c).clamp_min(1e-12)  # 0/0 at black with no chroma: S = 0
    rgb = hsv_to_rgb(h.clamp(0, 1), s.clamp(0, 1), v.clamp(0, 1)).clamp(0, 1)
    return match_lightness(rgb, grey)
