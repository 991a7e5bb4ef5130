"""Built-in per-frame metrics: ``rmse_ab``, ``rmse_rgb``, ``psnr``, ``ssim``, ``colorfulness``,
``colorfulness_gap``, ``hue_accuracy``, ``chroma_ratio`` (design.md section 5). Temporal metrics
live in :mod:`colorvid.plugins.metrics_temporal`.

Every metric takes RGB videos as float tensors in [0, 1] shaped ``(T, 3, H, W)`` (the colorized
``pred`` and the original ``ref``), computes in float64, and reports the mean over frames of a
per-frame value (the paper's protocol).

>>> import colorvid, torch
>>> ref = torch.rand(2, 3, 16, 16, dtype=torch.float64)
>>> colorvid.create_metric("rmse_rgb").compute(ref, ref)
0.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

import colorvid
from colorvid.core.color import rgb_to_lab
from colorvid.core.interfaces import Metric

__all__ = [
    "ColorfulnessGapMetric",
    "ColorfulnessMetric",
    "ChromaRatioMetric",
    "HueAccuracyMetric",
    "HueSectorAccuracyMetric",
    "PsnrMetric",
    "RmseAbMetric",
    "RmseRgbMetric",
    "SsimMetric",
    "colorfulness",
    "hue_agreement",
    "hue_sector_accuracy",
]


def _pair64(metric: Metric, pred: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
    metric.check_pair(pred, ref, metric.name)
    return pred.detach().to(torch.float64).cpu(), ref.detach().to(torch.float64).cpu()


class RmseAbMetric(Metric):
    """Chroma RMSE in Lab units (the paper's per-pixel RMSE), lower is better.

    Per frame: ``sqrt(mean over pixels and the a, b channels of (ab_pred - ab_ref)^2)`` with
    both videos converted sRGB -> Lab (D65) in float64; then the mean over frames. The mean runs
    over both channels, so this is the Euclidean ab error RMSE divided by sqrt(2).
    """

    name = "rmse_ab"
    higher_is_better = False

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        p, r = _pair64(self, pred, ref)
        d = rgb_to_lab(p)[:, 1:] - rgb_to_lab(r)[:, 1:]  # (T, 2, H, W)
        return (d * d).mean(dim=(1, 2, 3)).sqrt()


class RmseRgbMetric(Metric):
    """RGB RMSE on the 0-255 scale, lower is better.

    Per frame: ``sqrt(mean over pixels and R, G, B of (255 (pred - ref))^2)``; mean over frames.
    """

    name = "rmse_rgb"
    higher_is_better = False

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        p, r = _pair64(self, pred, ref)
        d = 255.0 * (p - r)
        return (d * d).mean(dim=(1, 2, 3)).sqrt()


class PsnrMetric(Metric):
    """PSNR in dB, higher is better: per frame ``20 log10(255 / sqrt(MSE))``, mean over frames.

    MSE is taken in float64 on the 0-255 scale over all pixels and channels (never on uint8,
    which wraps around). An identical frame has MSE 0 and PSNR ``inf``.
    """

    name = "psnr"
    higher_is_better = True

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        p, r = _pair64(self, pred, ref)
        d = 255.0 * (p - r)
        mse = (d * d).mean(dim=(1, 2, 3))
        # 10 log10(255^2 / mse) == 20 log10(255 / sqrt(mse)); mse = 0 gives +inf, as skimage.
        return 10.0 * torch.log10(255.0**2 / mse)


class SsimMetric(Metric):
    """Structural similarity, higher is better; matches ``skimage.metrics.structural_similarity``
    with ``channel_axis`` set, ``data_range=1`` and its defaults (7x7 uniform window, sample
    covariance, K1 = 0.01, K2 = 0.03).

    Per channel: ``S = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x + s_y + C2))``
    with local means, (co)variances over the window (covariances scaled by N / (N - 1)),
    ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``; the mean of S over the pixels whose window lies inside
    the frame, then the mean over channels, then over frames. Frames must be at least 7x7.
    """

    name = "ssim"
    higher_is_better = True

    def __init__(self, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> None:
        if not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
            raise ValueError(f"ssim: win_size must be an odd int >= 3, got {win_size!r}")
        self.win_size, self.k1, self.k2 = win_size, float(k1), float(k2)

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        x, y = _pair64(self, pred, ref)
        w = self.win_size
        if min(x.shape[-2:]) < w:
            raise ValueError(f"ssim: frames must be at least {w}x{w}, got {tuple(x.shape[-2:])}")
        # skimage filters with reflect padding and then crops (w-1)/2 pixels from every border:
        # exactly the pixels of a 'valid' box filter, so padding never influences the result.
        def box(t: Tensor) -> Tensor:
            return F.avg_pool2d(t, w, stride=1)

        n = w * w
        cov_norm = n / (n - 1.0)
        ux, uy = box(x), box(y)
        vx = cov_norm * (box(x * x) - ux * ux)
        vy = cov_norm * (box(y * y) - uy * uy)
        vxy = cov_norm * (box(x * y) - ux * uy)
        c1, c2 = (self.k1 * 1.0) ** 2, (self.k2 * 1.0) ** 2  # data range L = 1
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        return s.mean(dim=(2, 3)).mean(dim=1)


def colorfulness(rgb: Tensor) -> Tensor:
    """Hasler & Suesstrunk (2003) colourfulness of each frame of ``(T, 3, H, W)`` RGB in [0, 1].

    On the 0-255 scale: ``rg = R - G``, ``yb = (R + G) / 2 - B``,
    ``M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` (population std over the
    frame's pixels). Grey frames score 0; typical photographs 20-100. Returns ``(T,)`` float64.
    """
    if not isinstance(rgb, Tensor) or rgb.dim() != 4 or rgb.shape[1] != 3:
        shape = tuple(rgb.shape) if isinstance(rgb, Tensor) else type(rgb).__name__
        raise ValueError(f"colorfulness: rgb must be an RGB video (T, 3, H, W), got {shape}")
    x = 255.0 * rgb.detach().to(torch.float64).cpu()
    r, g, b = x.unbind(dim=1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    std = (rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0)).sqrt()
    mean = (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
    return std + 0.3 * mean


class ColorfulnessMetric(Metric):
    """Colourfulness M of the colorized video (Hasler & Suesstrunk), higher is more colourful.

    No-reference: ``ref`` is only checked for shape. Mean over frames of :func:`colorfulness`.
    """

    name = "colorfulness"
    higher_is_better = True

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        self.check_pair(pred, ref, self.name)
        return colorfulness(pred)


class ColorfulnessGapMetric(Metric):
    """``|M(pred) - M(ref)|`` per frame (Hasler & Suesstrunk colourfulness), mean over frames;
    lower is better. A grey output scores the original's colourfulness.
    """

    name = "colorfulness_gap"
    higher_is_better = False

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        self.check_pair(pred, ref, self.name)
        return (colorfulness(pred) - colorfulness(ref)).abs()


# The original's pixels that count as coloured (Lab chroma above this), and the colorized chroma
# below which a pixel counts as grey (no hue): design.md section 5.
COLOURED_CHROMA = 10.0
GREY_CHROMA = 5.0


def _hue_terms(pred: Tensor, ref: Tensor, degrees: float
               ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per pixel of two ``(T, 3, H, W)`` RGB videos: the original's chroma and hue angle, the
    colorized chroma, the original's coloured pixels and the hits (design.md section 5)."""
    p = rgb_to_lab(pred.detach().to(torch.float64).cpu())
    r = rgb_to_lab(ref.detach().to(torch.float64).cpu())
    pa, pb = p[:, 1], p[:, 2]
    ra, rb = r[:, 1], r[:, 2]
    pc, rc = torch.hypot(pa, pb), torch.hypot(ra, rb)  # (T, H, W)
    coloured = rc > COLOURED_CHROMA
    ref_hue = torch.atan2(rb, ra)
    diff = torch.atan2(pb, pa) - ref_hue
    diff = torch.remainder(diff + torch.pi, 2 * torch.pi) - torch.pi  # wrapped to [-pi, pi)
    hit = coloured & (pc > GREY_CHROMA) & (diff.abs() <= degrees * torch.pi / 180.0)
    return rc, ref_hue, pc, coloured, hit


def hue_agreement(pred: Tensor, ref: Tensor, degrees: float = 30.0) -> tuple[Tensor, Tensor]:
    """Per frame of two ``(T, 3, H, W)`` RGB videos: (hue accuracy, chroma ratio), each ``(T,)``.

    Over the original's coloured pixels (Lab chroma > 10), hue accuracy is the share, weighted
    by the original's chroma, whose colorized pixel has chroma > 5 and a hue angle
    ``atan2(b, a)`` within ``degrees`` of the original's; chroma ratio is the mean colorized
    chroma over those pixels divided by the original's mean. Frames with no coloured pixel give
    NaN (there is nothing to judge), which the video mean skips.
    """
    rc, _, pc, coloured, hit = _hue_terms(pred, ref, degrees)
    weight = torch.where(coloured, rc, 0.0).flatten(1).sum(1)
    hits = torch.where(hit, rc, 0.0).flatten(1).sum(1)
    count = coloured.flatten(1).sum(1)
    nan = torch.full_like(weight, float("nan"))
    accuracy = torch.where(count > 0, hits / weight.clamp(min=1e-12), nan)
    pred_chroma = torch.where(coloured, pc, 0.0).flatten(1).sum(1)
    ratio = torch.where(count > 0, pred_chroma / weight.clamp(min=1e-12), nan)
    return accuracy, ratio


# Hue sectors of the per-sector score: six of 60 degrees (reds, yellows, greens, cyans, blues,
# magentas roughly), each counted where it holds at least 2% of the frame's coloured chroma.
HUE_SECTORS = 6
SECTOR_MIN_SHARE = 0.02


def hue_sector_accuracy(pred: Tensor, ref: Tensor, degrees: float = 30.0,
                        sectors: int = HUE_SECTORS, min_share: float = SECTOR_MIN_SHARE
                        ) -> Tensor:
    """Per frame ``(T,)``: hue accuracy computed within each hue sector of the original (the
    circle cut into ``sectors`` equal arcs from a = +, b = 0) that holds at least ``min_share``
    of the frame's coloured pixels' chroma, averaged over those sectors.

    A single tint scores only in its own sector, so it cannot pass on a scene that also has
    greens or blues; NaN for frames with no coloured pixel.
    """
    rc, ref_hue, _, coloured, hit = _hue_terms(pred, ref, degrees)
    sector = (torch.remainder(ref_hue, 2 * torch.pi) / (2 * torch.pi / sectors)).long()
    sector = sector.clamp_(max=sectors - 1)
    onehot = torch.nn.functional.one_hot(sector, sectors).to(rc.dtype)  # (T, H, W, S)
    w = torch.where(coloured, rc, 0.0)[..., None] * onehot
    h = torch.where(hit, rc, 0.0)[..., None] * onehot
    weight = w.flatten(1, 2).sum(1)  # (T, S)
    hits = h.flatten(1, 2).sum(1)
    total = weight.sum(1, keepdim=True)
    counted = (weight >= min_share * total) & (weight > 0)
    per_sector = torch.where(counted, hits / weight.clamp(min=1e-12), 0.0)
    n = counted.sum(1)
    nan = torch.full((rc.shape[0],), float("nan"), dtype=rc.dtype)
    return torch.where(n > 0, per_sector.sum(1) / n.clamp(min=1), nan)


class _HueAgreementMetric(Metric):
    higher_is_better = True

    def _values(self, pred: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
        self.check_pair(pred, ref, self.name)
        return hue_agreement(pred, ref)

    def compute(self, pred: Tensor, ref: Tensor) -> float:
        values = self.per_frame(pred, ref)
        valid = values[~values.isnan()]
        return float(valid.mean()) if valid.numel() else float("nan")


class HueAccuracyMetric(_HueAgreementMetric):
    """Share of the original's coloured pixels (chroma > 10, weighted by chroma) that the
    colorized frame paints with chroma > 5 and a hue within 30 degrees; higher is better.

    Grey output scores 0; random hues about 0.17. 30 degrees, not 45, so that grass painted olive
    does not count as green (design.md section 5). Mean over frames that have coloured pixels.
    """

    name = "hue_accuracy"

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        return self._values(pred, ref)[0]


class HueSectorAccuracyMetric(_HueAgreementMetric):
    """Hue accuracy within each 60-degree hue sector of the original that holds at least 2% of
    its coloured chroma, averaged over those sectors (:func:`hue_sector_accuracy`); higher is
    better. A one-tint colorizer is right in one sector only, whatever share of the frame that
    sector covers.
    """

    name = "hue_accuracy_sector"

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        self.check_pair(pred, ref, self.name)
        return hue_sector_accuracy(pred, ref)


class ChromaRatioMetric(_HueAgreementMetric):
    """Mean colorized chroma / mean original chroma over the original's coloured pixels
    (1 = as saturated as the original, grey 0); read it beside ``hue_accuracy``.
    """

    name = "chroma_ratio"

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        return self._values(pred, ref)[1]


@colorvid.hookimpl
def register_metrics(register) -> None:
    register("rmse_ab", RmseAbMetric,
             description="chroma RMSE in Lab units per frame, mean over frames (the paper's)")
    register("rmse_rgb", RmseRgbMetric, description="RGB RMSE on 0-255 per frame, mean over frames")
    register("psnr", PsnrMetric, description="PSNR in dB (float64 MSE on 0-255), mean over frames")
    register("ssim", SsimMetric,
             description="SSIM as scikit-image (7x7 window, RGB), mean over frames")
    register("colorfulness", ColorfulnessMetric,
             description="Hasler & Suesstrunk colourfulness of the output, mean over frames")
    register("colorfulness_gap", ColorfulnessGapMetric,
             description="|colourfulness(output) - colourfulness(original)|, mean over frames")
    register("hue_accuracy", HueAccuracyMetric,
             description="share of coloured pixels (chroma-weighted) painted within 30 degrees "
                         "of the original hue")
    register("hue_accuracy_sector", HueSectorAccuracyMetric,
             description="hue accuracy per 60-degree hue sector of the original (sectors with "
                         ">= 2% of its coloured chroma), averaged over sectors")
    register("chroma_ratio", ChromaRatioMetric,
             description="mean output chroma / mean original chroma on the original's coloured "
                         "pixels")
