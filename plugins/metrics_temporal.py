"""Built-in temporal metrics: ``cdc`` (colour-distribution consistency), ``warp_error``
(flow-warped frame difference), design.md section 5, their colour parts ``cdc_ab`` and
``warp_error_ab`` (the same on Lab a and b, where the lightness every colorizer shares does not
drown the colour), and ``still_flicker`` (colour change where the scene is still, per unit of
chroma). All are lower-is-better flicker measures.

>>> import colorvid, torch
>>> still = torch.full((3, 3, 16, 16), 0.5, dtype=torch.float64)
>>> colorvid.create_metric("cdc").compute(still, still)
0.0
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch import Tensor

import colorvid
from colorvid.core.interfaces import Metric

__all__ = [
    "CdcMetric",
    "ChromaCdcMetric",
    "ChromaWarpErrorMetric",
    "StillFlickerMetric",
    "WarpErrorMetric",
    "ab_histograms",
    "channel_histograms",
    "farneback_flow",
    "js_divergence",
]

CDC_DISTANCES: tuple[int, ...] = (1, 2, 4)


def _to_uint8(rgb: Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8, rounding to nearest."""
    x = (rgb.detach().to(torch.float64).cpu().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


def channel_histograms(rgb: Tensor) -> Tensor:
    """256-bin histogram of each channel of each frame, divided by H W: ``(T, 3, 256)`` float64.

    Values are quantised to 8 bits (round to nearest) first, as the original CDC code reads
    8-bit frames.
    """
    t, c, h, w = rgb.shape
    q = torch.from_numpy(_to_uint8(rgb)).permute(0, 3, 1, 2).reshape(t * c, h * w).long()
    offsets = (torch.arange(t * c) * 256).unsqueeze(1)  # one 256-bin range per (frame, channel)
    counts = torch.bincount((q + offsets).flatten(), minlength=t * c * 256)
    return counts.view(t, c, 256).to(torch.float64) / (h * w)


def ab_histograms(rgb: Tensor) -> Tensor:
    """256-bin histograms of the Lab a and b channels of each frame (bins one Lab unit wide,
    centred on the integers -128 .. 127, values clamped; rounding to the nearest integer keeps
    grey's +-1e-6 in the 0 bin), divided by H W: ``(T, 2, 256)`` float64. The colour part of
    what :func:`channel_histograms` sees (whose RGB channels all carry the lightness)."""
    from colorvid.core.color import rgb_to_lab

    t, _, h, w = rgb.shape
    hists = []
    for i in range(t):  # frame by frame: bounded memory on long clips
        ab = rgb_to_lab(rgb[i: i + 1].detach().to(torch.float64).cpu())[0, 1:]  # (2, H, W)
        q = (ab.round() + 128).clamp(0, 255).long().reshape(2, h * w)
        counts = torch.bincount((q + torch.arange(2).unsqueeze(1) * 256).flatten(),
                                minlength=512)
        hists.append(counts.view(2, 256).to(torch.float64) / (h * w))
    return torch.stack(hists)


def js_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence (natural log) between distributions on the last axis.

    ``JSD = KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``; ``0 log 0 = 0``.
    """
    m = 0.5 * (p + q)

    def kl(a: Tensor) -> Tensor:
        # Where a > 0, m >= a / 2 > 0, so the log is finite; a = 0 terms contribute 0.
        ratio = torch.where(a > 0, a / torch.where(m > 0, m, 1.0), 1.0)
        return (a * ratio.log()).sum(dim=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class CdcMetric(Metric):
    """Colour-distribution consistency (Liu et al., temporally consistent video colorization),
    lower is better; no-reference (``ref`` only checked for shape).

    Per channel c of R, G, B: ``H_i`` = 256-bin histogram of frame i divided by H W;
    ``JS_d = mean over i of JSD(H_i, H_{i+d})`` (natural log);
    ``CDC = mean over c of mean over d in {1, 2, 4} of JS_d``. Distances d with no frame pair
    (videos of at most d frames) are left out; a video needs at least 2 frames.
    """

    name = "cdc"
    higher_is_better = False

    def __init__(self, distances: tuple[int, ...] = CDC_DISTANCES, space: str = "rgb") -> None:
        if not distances or any(not isinstance(d, int) or d < 1 for d in distances):
            raise ValueError(f"{self.name}: distances must be positive ints, got {distances!r}")
        if space not in ("rgb", "ab"):
            raise ValueError(f"{self.name}: space must be 'rgb' or 'ab', got {space!r}")
        self.distances, self.space = tuple(distances), space

    def compute(self, pred: Tensor, ref: Tensor) -> float:
        self.check_pair(pred, ref, self.name)
        if pred.shape[0] < 2:
            raise ValueError(f"{self.name}: needs a video of at least 2 frames, got "
                             f"{pred.shape[0]}")
        # (T, 3, 256) of R, G, B, or (T, 2, 256) of Lab a, b
        hist = channel_histograms(pred) if self.space == "rgb" else ab_histograms(pred)
        per_distance = [
            js_divergence(hist[:-d], hist[d:]).mean(dim=0)  # (3,): JS_d of each channel
            for d in self.distances
            if d < hist.shape[0]
        ]
        return float(torch.stack(per_distance).mean())


def farneback_flow(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Dense flow ``F`` (H, W, 2) with ``src(x) ~ dst(x + F(x))``, OpenCV Farneback on grey uint8.

    Parameters are OpenCV's documented example ones (pyramid scale 0.5, 3 levels, window 15,
    3 iterations, poly_n 5, poly_sigma 1.2).
    """
    return cv2.calcOpticalFlowFarneback(src, dst, None, 0.5, 3, 15, 3, 5, 1.2, 0)


class WarpErrorMetric(Metric):
    """Warping error (Lai et al. 2018), lower is better; values on the [0, 1] RGB scale.

    For each pair of consecutive frames (t-1, t): optical flow ``F`` from t-1 to t and ``B``
    from t to t-1 are estimated on the *original* video (``ref``, converted to grey uint8) with
    OpenCV's Farneback method, so every model is judged against the same motion. Frame t of
    ``pred`` is warped back onto t-1: ``W(x) = pred_t(x + F(x))`` (bilinear). A pixel is valid
    when ``x + F(x)`` lies inside the frame and passes the forward-backward consistency test
    (Sundaram et al. 2010): ``|F(x) + B(x + F(x))|^2 <= 0.01 (|F(x)|^2 + |B(x + F(x))|^2) + 0.5``;
    other pixels are occluded or leave the frame and are masked out. Then

        E_t = sum over valid x of ||pred_{t-1}(x) - W(x)||^2 (summed over R, G, B) / #valid
        warp_error = mean over t of E_t

    Pairs with no valid pixel are skipped; a video needs at least 2 frames.
    Pass ``flow_from="pred"`` to estimate the flow on the colorized video itself.
    """

    name = "warp_error"
    higher_is_better = False

    def __init__(self, flow_from: str = "ref", space: str = "rgb") -> None:
        if flow_from not in ("ref", "pred"):
            raise ValueError(f"{self.name}: flow_from must be 'ref' or 'pred', got "
                             f"{flow_from!r}")
        if space not in ("rgb", "ab"):
            raise ValueError(f"{self.name}: space must be 'rgb' or 'ab', got {space!r}")
        self.flow_from, self.space = flow_from, space

    def per_pair(self, pred: Tensor, ref: Tensor) -> Tensor:
        """``E_t`` for t = 1..T-1, shape ``(T - 1,)``; NaN where no pixel was valid."""
        self.check_pair(pred, ref, self.name)
        if pred.shape[0] < 2:
            raise ValueError(f"{self.name}: needs a video of at least 2 frames, got "
                             f"{pred.shape[0]}")
        if self.space == "ab":  # Lab a, b of each frame, in Lab units
            from colorvid.core.color import rgb_to_lab

            frames = [rgb_to_lab(pred[i: i + 1].detach().to(torch.float64).cpu())[0, 1:]
                      for i in range(pred.shape[0])]
            p = torch.stack(frames).to(torch.float32).permute(0, 2, 3, 1).contiguous().numpy()
        else:
            p = pred.detach().to(torch.float32).cpu().permute(0, 2, 3, 1).contiguous().numpy()
        flow_video = _to_uint8(ref if self.flow_from == "ref" else pred)
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in flow_video]
        h, w = grey[0].shape
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        errors = []
        for t in range(1, len(grey)):
            fw = farneback_flow(grey[t - 1], grey[t])
            bw = farneback_flow(grey[t], grey[t - 1])
            map_x, map_y = xs + fw[..., 0], ys + fw[..., 1]
            # Out-of-frame samples are replicated, then masked out by `inside` below.
            border = cv2.BORDER_REPLICATE
            warped = cv2.remap(p[t], map_x, map_y, cv2.INTER_LINEAR, borderMode=border)
            bw_at = cv2.remap(bw, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)
            inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
            loop = fw + bw_at
            bound = 0.01 * ((fw * fw).sum(-1) + (bw_at * bw_at).sum(-1)) + 0.5
            valid = inside & ((loop * loop).sum(-1) <= bound)
            n = int(valid.sum())
            if n == 0:
                errors.append(math.nan)
                continue
            diff = (p[t - 1].astype(np.float64) - warped.astype(np.float64)) ** 2
            errors.append(float(diff.sum(-1)[valid].sum() / n))
        return torch.tensor(errors, dtype=torch.float64)

    def compute(self, pred: Tensor, ref: Tensor) -> float:
        e = self.per_pair(pred, ref)
        e = e[~e.isnan()]
        if e.numel() == 0:
            raise ValueError(f"{self.name}: every frame pair was fully occluded; no valid pixel")
        return float(e.mean())


class ChromaCdcMetric(CdcMetric):
    """``cdc`` on the histograms of Lab a and b instead of R, G, B (lower is better).

    On RGB every channel carries the lightness, which is the input and the same for every
    colorizer: on the held-out clips the grey baseline's CDC was within 10% of the colour
    models'. The ab histograms hold only what a colorizer chose.
    """

    name = "cdc_ab"

    def __init__(self, distances: tuple[int, ...] = CDC_DISTANCES) -> None:
        super().__init__(distances, space="ab")


class ChromaWarpErrorMetric(WarpErrorMetric):
    """``warp_error`` on the Lab a and b of the output (squared Lab units summed over a and b),
    with the same flow from the original video and the same occlusion mask (lower is better).

    The RGB warp error is dominated by the lightness, which no colorizer changes: on the
    held-out clips the grey baseline's was within 1% of every colour model's, so no amount of
    colour stability could lower it by 10%. This one measures only the colour's flicker.
    """

    name = "warp_error_ab"

    def __init__(self, flow_from: str = "ref") -> None:
        super().__init__(flow_from, space="ab")


class StillFlickerMetric(Metric):
    """Colour change of the output where the scene itself is still, per unit of its chroma.

    For each pair of consecutive frames, the *still* pixels are those whose original changed by
    less than ``tolerance`` Lab units in each of L, a and b. Over them (all pairs together):
    ``mean |ab_pred(t+1) - ab_pred(t)|`` (Euclidean, Lab units) divided by the mean chroma of
    the output there. Dividing by chroma keeps grey output from winning (0 / 0 is NaN: a grey
    output has no colour to flicker), so models of different saturation compare fairly.
    Lower is better; NaN when no pixel is still.
    """

    name = "still_flicker"
    higher_is_better = False

    def __init__(self, tolerance: float = 2.0) -> None:
        self.tolerance = float(tolerance)

    def compute(self, pred: Tensor, ref: Tensor) -> float:
        from colorvid.core.color import rgb_to_lab

        self.check_pair(pred, ref, self.name)
        if pred.shape[0] < 2:
            raise ValueError("still_flicker: needs at least 2 frames")
        change = total = chroma = 0.0
        count = 0
        for t in range(pred.shape[0] - 1):  # pair by pair: bounded memory on long clips
            r = rgb_to_lab(ref[t: t + 2].detach().to(torch.float64).cpu())
            p = rgb_to_lab(pred[t: t + 2].detach().to(torch.float64).cpu())
            still = ((r[1] - r[0]).abs() < self.tolerance).all(dim=0)  # (H, W)
            if not bool(still.any()):
                continue
            d = (p[1, 1:] - p[0, 1:]).square().sum(0).sqrt()[still]
            c = 0.5 * (p[0, 1:].square().sum(0).sqrt() + p[1, 1:].square().sum(0).sqrt())[still]
            change, chroma, count = change + float(d.sum()), chroma + float(c.sum()), \
                count + int(still.sum())
            total += 1
        if count == 0 or chroma <= 1e-9:
            return float("nan")
        return change / chroma


@colorvid.hookimpl
def register_metrics(register) -> None:
    register("cdc", CdcMetric,
             description="colour-distribution consistency: JS of RGB histograms at d = 1, 2, 4")
    register("warp_error", WarpErrorMetric,
             description="flow-warped frame difference (Farneback, occlusions masked)")
    register("cdc_ab", ChromaCdcMetric,
             description="cdc on the Lab a and b histograms (the colour part)")
    register("warp_error_ab", ChromaWarpErrorMetric,
             description="warp_error on the Lab a and b of the output (the colour part)")
    register("still_flicker", StillFlickerMetric,
             description="output colour change where the original is still, per unit of chroma")
