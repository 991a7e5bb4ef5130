"""The Zhang et al. ECCV16 colorization network, layer for layer as released (design.md section 3).

:class:`ZhangNet` keeps the released PyTorch state-dict layout (``model1`` .. ``model8``,
``model_out``), so a released state dict loads into the ``full`` preset key for key. Unlike the
release it keeps the 313 class logits *un-annealed*: the release folded the annealing factor
(x2.606) into ``model8.6``; the importer (:mod:`colorvid.plugins.models.zhang_import`) divides
it back out and records the temperature that reproduces the released forward.

Units: the network takes Lab L in [0, 100] and normalises inside ((L - 50) / 100); it returns ab
in Lab units. :func:`decode_logits` turns logits into ab (annealed mean, mean or mode) and is what
LRCN reuses.

>>> net = ZhangNet(ZhangConfig.preset("tiny"))
>>> tuple(net.logits(torch.full((1, 1, 32, 32), 50.0)).shape)
(1, 313, 8, 8)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorvid.core.bins import NUM_BINS, ab_bins
from colorvid.core.color import AB_SCALE, normalize_l

__all__ = [
    "ANNEAL_TEMPERATURE",
    "BinDecoding",
    "DECODE_MODES",
    "RELEASED_ANNEAL_SCALE",
    "DecodeMode",
    "ZhangConfig",
    "ZhangNet",
    "decode_logits",
]

# The annealed-mean temperature of the paper ("T = 0.38"); our own trained models decode with it.
ANNEAL_TEMPERATURE = 0.38
# The factor the released Caffe deploy net multiplies the logits by (conv8_313_rh, "scale: 2.606")
# and that the PyTorch release folded into model8.6. 1/2.606 = 0.3837, i.e. T = 0.38 rounded.
RELEASED_ANNEAL_SCALE = 2.606

DecodeMode = Literal["annealed_mean", "mean", "mode"]
DECODE_MODES: tuple[str, ...] = ("annealed_mean", "mean", "mode")


@dataclasses.dataclass(frozen=True)
class ZhangConfig:
    """Channel widths of the network; everything else (kernels, strides, dilations) is fixed."""

    # Widths of blocks 1, 2, 3 and 4-7: (64, 128, 256, 512) is the released network; the tiny
    # preset divides each by 4 (about 1/16 of the compute) so it trains and runs on a CPU.
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    # Output classes: the 313 in-gamut ab bins (design.md section 2).
    num_bins: int = NUM_BINS

    @classmethod
    def preset(cls, name: str) -> ZhangConfig:
        """``"full"`` (the released network, 32,236,011 parameters), ``"small"`` (widths x 3/8,
        about 1/7 of the compute) or ``"tiny"`` (widths / 4, about 1/16)."""
        if name == "full":
            return cls()
        if name == "small":
            return cls(widths=(24, 48, 96, 192))
        if name == "tiny":
            return cls(widths=(16, 32, 64, 128))
        raise ValueError(f"zhang: unknown preset {name!r}; accepted: 'tiny', 'small', 'full'")

    def to_dict(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "num_bins": self.num_bins}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ZhangConfig:
        return cls(widths=tuple(int(w) for w in d["widths"]), num_bins=int(d["num_bins"]))


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    # Every conv of the release is 3x3 with bias; padding = dilation keeps the size (stride 1).
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=True)


def _block(cin: int, cout: int, n: int, last_stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """n convs with ReLUs, then BatchNorm: indices 0, 2, (4,) then BN at 2n (the release's)."""
    layers: list[nn.Module] = []
    for i in range(n):
        stride = last_stride if i == n - 1 else 1
        layers += [_conv(cin if i == 0 else cout, cout, stride, dilation), nn.ReLU(inplace=True)]
    layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class BinDecoding(nn.Module):
    """The decoding every 313-bin colorization net shares: ``model_out`` (the fixed 1x1 conv
    whose weights are the bin centres / 110), ``decode_bias`` (the prior correction) and
    :meth:`decode` (annealed mean, mean or mode). A subclass calls :meth:`init_decoding` in its
    ``__init__`` and implements ``logits(L)`` ``(B, q, H/4, W/4)``."""

    model_out: nn.Conv2d
    decode_bias: Tensor

    def init_decoding(self, num_bins: int) -> None:
        self.model_out = nn.Conv2d(num_bins, 2, 1, bias=False)
        # Added to the logits before decoding (not saved with the weights): -a log w undoes a
        # share a of the class rebalancing the net was trained with (set_prior_correction).
        self.register_buffer("decode_bias", torch.zeros(num_bins), persistent=False)
        self.decode_biased = False
        self.reset_decoder()

    def logits(self, L: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def reset_decoder(self) -> None:
        """Set ``model_out`` to the 313 bin centres / 110 (what the released file holds)."""
        if self.model_out.in_channels != NUM_BINS:
            return  # custom bin sets bring their own decoder weights
        centres = ab_bins(dtype=self.model_out.weight.dtype) / AB_SCALE  # (313, 2)
        self.model_out.weight.copy_(centres.t().reshape(2, NUM_BINS, 1, 1))

    @torch.no_grad()
    def set_prior_correction(self, strength: float, class_weights: Tensor | None) -> None:
        """Decode ``softmax((z - strength * log w) / T)`` instead of ``softmax(z / T)``.

        Training with per-pixel weights ``w(q*)`` (the class-rebalanced loss) makes the net
        predict ``p(q | x) * w(q)`` renormalised instead of ``p(q | x)``: it is taught to
        over-predict rare, saturated colours. Subtracting ``log w`` from the logits recovers the
        unweighted posterior (``strength`` 1); 0 keeps the rebalanced one (the paper's decoding).
        On the shipped tiny Zhang, 20 validation photos: strength 0.5 with T = 0.38 gave hue
        accuracy 0.40 at chroma ratio 0.48 and 0.57 dB below grey PSNR, where strength 0 needed
        saturation 0.4 and lost 1.25 dB for chroma 0.50 at hue 0.39 (core/training/calibrate.py
        picks the strength per weights file on held-out photos).
        """
        if strength == 0:
            self.decode_bias.zero_()
            self.decode_biased = False
            return
        if class_weights is None or class_weights.shape != self.decode_bias.shape:
            raise ValueError("prior correction needs the class weights the net was trained with "
                             f"({self.decode_bias.numel()} values; a weights file's extra "
                             "'prior'), got "
                             f"{None if class_weights is None else tuple(class_weights.shape)}")
        w = class_weights.to(self.decode_bias).clamp_min(1e-12)
        self.decode_bias.copy_(-float(strength) * w.log())
        self.decode_biased = True

    def centres(self) -> Tensor:
        """The bin centres the decoder uses, ``(q, 2)`` in Lab units (from ``model_out``)."""
        return self.model_out.weight.detach().reshape(2, -1).t() * AB_SCALE

    def decode(
        self, logits: Tensor, mode: DecodeMode = "annealed_mean",
        temperature: float = ANNEAL_TEMPERATURE,
    ) -> Tensor:
        """Logits ``(B, q, h, w)`` -> ab ``(B, 2, h, w)`` in Lab units, with this net's centres.

        The annealed mean runs through ``model_out`` exactly as the release does
        (``model_out(softmax(z)) * 110``), so imported weights reproduce the released numbers.
        """
        # In the decoder's precision: float32 when the colorizer runs the body in bfloat16
        # (plugins/models/common.py cast_keeping_decoder).
        logits = logits.to(self.model_out.weight.dtype)
        if self.decode_biased:
            logits = logits + self.decode_bias.view(1, -1, 1, 1).to(logits.dtype)
        if mode == "mode":
            return decode_logits(logits, "mode", centres=self.centres().to(logits))
        _check_mode_temperature(mode, temperature)
        scaled = logits / temperature if mode == "annealed_mean" else logits
        return self.model_out(torch.softmax(scaled, dim=1)) * AB_SCALE

    def forward(
        self, L: Tensor, mode: DecodeMode = "annealed_mean",
        temperature: float = ANNEAL_TEMPERATURE,
    ) -> Tensor:
        """The released forward: L ``(B, 1, H, W)`` -> ab ``(B, 2, H, W)`` (bilinear x4)."""
        ab = self.decode(self.logits(L), mode, temperature)  # (B, 2, H/4, W/4)
        return F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)


class ZhangNet(BinDecoding):
    """The ECCV16 colorization CNN. ``logits(L)`` -> ``(B, 313, H/4, W/4)``; ``forward(L)`` -> ab.

    ``model_out`` is the fixed 1x1 decoding conv whose weights are the bin centres / 110; it is
    initialised so, and an imported file carries the released values.
    """

    def __init__(self, config: ZhangConfig | None = None) -> None:
        super().__init__()
        self.config = config or ZhangConfig()
        c1, c2, c3, c4 = self.config.widths
        q = self.config.num_bins
        self.model1 = _block(1, c1, 2, last_stride=2)  # (B, c1, H/2, W/2)
        self.model2 = _block(c1, c2, 2, last_stride=2)  # (B, c2, H/4, W/4)
        self.model3 = _block(c2, c3, 3, last_stride=2)  # (B, c3, H/8, W/8)
        self.model4 = _block(c3, c4, 3)  # (B, c4, H/8, W/8)
        self.model5 = _block(c4, c4, 3, dilation=2)  # dilated: wider context, same size
        self.model6 = _block(c4, c4, 3, dilation=2)
        self.model7 = _block(c4, c4, 3)
        self.model8 = nn.Sequential(  # (B, q, H/4, W/4)
            nn.ConvTranspose2d(c4, c3, 4, stride=2, padding=1, bias=True),
            nn.ReLU(inplace=True),
            _conv(c3, c3),
            nn.ReLU(inplace=True),
            _conv(c3, c3),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, q, 1, bias=True),
        )
        self.init_decoding(q)

    def logits(self, L: Tensor) -> Tensor:
        """Lab L ``(B, 1, H, W)`` -> un-annealed class logits ``(B, 313, H/4, W/4)``."""
        x = self.model1(normalize_l(L))
        x = self.model2(x)
        x = self.model3(x)
        x = self.model4(x)
        x = self.model5(x)
        x = self.model6(x)
        x = self.model7(x)
        return self.model8(x)


def _check_mode_temperature(mode: str, temperature: float) -> None:
    if mode not in DECODE_MODES:
        raise ValueError(f"decode: unknown mode {mode!r}; accepted: {', '.join(DECODE_MODES)}")
    if mode == "annealed_mean" and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"decode: temperature must be a number > 0, got {temperature!r}")


def decode_logits(
    logits: Tensor,
    mode: DecodeMode = "annealed_mean",
    temperature: float = ANNEAL_TEMPERATURE,
    centres: Tensor | None = None,
) -> Tensor:
    """Class logits ``(B, q, h, w)`` -> ab ``(B, 2, h, w)`` in Lab units.

    - ``annealed_mean``: ``f_T(z) = softmax(log z / T) = softmax(logits / T)``; ab = sum f_T * c.
      T = 1 is the mean, T -> 0 the mode; 0.38 is the paper's compromise (vivid, still smooth).
    - ``mean``: the expectation of the softmax distribution (desaturated, but smooth).
    - ``mode``: the centre of the most likely bin (vivid, but patchy).

    ``centres`` ``(q, 2)`` default to the 313 bins of :func:`colorvid.core.bins.ab_bins`.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 4:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"decode: logits must be (B, q, h, w), got {shape}")
    _check_mode_temperature(mode, temperature)
    if centres is None:
        centres = ab_bins(device=logits.device, dtype=logits.dtype)
    if centres.shape != (logits.shape[1], 2):
        raise ValueError(f"decode: centres must be (q, 2) with q = {logits.shape[1]} "
                         f"(the logits' channels), got {tuple(centres.shape)}")
    centres = centres.to(device=logits.device, dtype=logits.dtype)
    if mode == "mode":
        idx = logits.argmax(dim=1)  # (B, h, w)
        return centres[idx].permute(0, 3, 1, 2).contiguous()
    scaled = logits / temperature if mode == "annealed_mean" else logits
    prob = torch.softmax(scaled, dim=1)  # (B, q, h, w)
    return torch.einsum("bqhw,qc->bchw", prob, centres)
