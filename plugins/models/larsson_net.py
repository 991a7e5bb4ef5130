"""The Larsson et al. hypercolumn colorization network, as released in Caffe (design.md section 4).

VGG-16 (conv1_1 takes one grey channel, no BatchNorm: the release folded it), fc6 as a 7x7 conv
and fc7 as a 1x1 conv, then a hypercolumn at 1/4 resolution gathered from 16 sources, a 1x1
``h_fc1`` (1024) + ReLU, and two 1x1 heads ``prediction_h`` / ``prediction_c`` giving 32-bin hue and
chroma histograms, upsampled x4. Parameter names are the Caffe layer names (``conv1_1.weight`` is
blob 0 of layer ``conv1_1``), so the Caffe HDF5 snapshot maps one to one.

Two ways to run the head, equal up to float rounding:

- ``plain``: concatenate the 12,417-channel hypercolumn at 1/4 resolution and apply ``h_fc1``, as
  the deploy net does (52 GMAC for h_fc1 alone at 256x256).
- ``fused`` (default): ``h_fc1`` is linear and the resampling is per channel, so ``h_fc1`` of an
  upsampled source equals the upsampled ``h_fc1`` slice of that source. Each source group
  (native, x2, x4, x8) goes through its slice of ``h_fc1`` at its own, smaller resolution and is
  upsampled as 1024 channels: 7.4 GMAC instead of 52 at 256x256.

Upsampling is the release's fixed bilinear Deconvolution (kernel 2f, stride f, pad f/2): bilinear
interpolation with ``align_corners=False`` whose samples outside the input are zero (not clamped),
so borders fade; :func:`caffe_bilinear_upsample` does exactly that.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "NUM_BINS",
    "LarssonConfig",
    "LarssonNet",
    "caffe_bilinear_kernel",
    "caffe_bilinear_upsample",
]

NUM_BINS = 32  # hue and chroma histogram bins of the release
HeadMode = Literal["fused", "plain"]

# (stage, convs per stage) of VGG-16.
_STAGES = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
# Hypercolumn sources in the release's concat order, with how each reaches 1/4 resolution:
# ("pool", k) = k x k average pooling, ("up", f) = bilinear x f, ("none", 1) = native.
_SOURCES: tuple[tuple[str, str, int], ...] = (
    ("data", "pool", 4),
    ("conv1_1", "pool", 4), ("conv1_2", "pool", 4),
    ("conv2_1", "pool", 2), ("conv2_2", "pool", 2),
    ("conv3_1", "none", 1), ("conv3_2", "none", 1), ("conv3_3", "none", 1),
    ("conv4_1", "up", 2), ("conv4_2", "up", 2), ("conv4_3", "up", 2),
    ("conv5_1", "up", 4), ("conv5_2", "up", 4), ("conv5_3", "up", 4),
    ("fc6", "up", 8), ("fc7", "up", 8),
)

_HOW = {name: (how, k) for name, how, k in _SOURCES}
# The fused head's groups: (upsampling factor, sources), contiguous in concat order.
_FUSED_GROUPS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, ("data", "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3")),
    (2, ("conv4_1", "conv4_2", "conv4_3")),
    (4, ("conv5_1", "conv5_2", "conv5_3")),
    (8, ("fc6", "fc7")),
)
assert [n for _, g in _FUSED_GROUPS for n in g] == [n for n, _, _ in _SOURCES]


@dataclasses.dataclass(frozen=True)
class LarssonConfig:
    """Channel widths; kernels, pools and the hypercolumn sources are fixed."""

    # VGG-16 stage widths: (64, 128, 256, 512, 512) released; tiny divides by 4.
    widths: tuple[int, int, int, int, int] = (64, 128, 256, 512, 512)
    # fc6 / fc7 (7x7 and 1x1 convs). Tiny: 256 (/16, not /4): fc6 is 70% of the network, and
    # /4 made tiny Larsson 9.2M parameters (18 MB in fp16), over the 20 MB budget of all shipped
    # weights together; at 256 it is 3.0M.
    fc_width: int = 4096
    head_width: int = 1024  # h_fc1; tiny 256
    num_bins: int = NUM_BINS  # hue and chroma bins each

    @classmethod
    def preset(cls, name: str) -> LarssonConfig:
        """``"full"`` (the release, 147,041,024 parameters) or ``"tiny"`` (conv widths / 4,
        fc widths / 16: 3.0M parameters)."""
        if name == "full":
            return cls()
        if name == "tiny":
            return cls(widths=(16, 32, 64, 128, 128), fc_width=256, head_width=256)
        raise ValueError(f"larsson: unknown preset {name!r}; accepted: 'tiny', 'full'")

    def source_channels(self) -> dict[str, int]:
        """Channels of each hypercolumn source, in concat order."""
        out = {"data": 1}
        for stage, n in _STAGES:
            for i in range(1, n + 1):
                out[f"conv{stage}_{i}"] = self.widths[stage - 1]
        out["fc6"] = out["fc7"] = self.fc_width
        return out

    @property
    def hypercolumn_channels(self) -> int:
        return sum(self.source_channels().values())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LarssonConfig:
        return cls(widths=tuple(int(w) for w in d["widths"]), fc_width=int(d["fc_width"]),
                   head_width=int(d["head_width"]), num_bins=int(d["num_bins"]))


def caffe_bilinear_kernel(factor: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Caffe's ``bilinear`` filler for a (2f x 2f) Deconvolution kernel, ``(2f, 2f)``."""
    k = 2 * factor
    f = (k + 1) // 2  # ceil(k / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    x = torch.arange(k, dtype=torch.float64)
    w = 1 - (x / f - c).abs()
    return (w[:, None] * w[None, :]).to(dtype)


def caffe_bilinear_upsample(x: Tensor, factor: int) -> Tensor:
    """x ``(B, C, h, w)`` -> ``(B, C, h*f, w*f)``, equal to Caffe's fixed bilinear Deconvolution.

    out[o] = sum_i x[i] tri((o + 0.5)/f - 0.5 - i): bilinear (align_corners=False) with zeros
    beyond the border. Pad one zero ring, interpolate, crop f on each side.
    """
    if factor == 1:
        return x
    up = F.interpolate(F.pad(x, (1, 1, 1, 1)), scale_factor=factor, mode="bilinear",
                       align_corners=False)
    return up[..., factor:-factor, factor:-factor]


def _resample(x: Tensor, how: str, k: int) -> Tensor:
    if how == "pool":
        return F.avg_pool2d(x, k)
    if how == "up":
        return caffe_bilinear_upsample(x, k)
    return x


class LarssonNet(nn.Module):
    """Grey ``(B, 1, S, S)`` in [0, 1], S a multiple of 32 -> hue and chroma histograms.

    ``logits(grey)`` gives the 1/4-resolution class scores ``(B, 32, S/4, S/4)`` twice;
    ``forward(grey)`` the released outputs: softmax, then bilinear x4 -> ``(B, 32, S, S)`` twice.
    """

    def __init__(self, config: LarssonConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LarssonConfig()
        cin = 1
        for stage, n in _STAGES:
            for i in range(1, n + 1):
                cout = cfg.widths[stage - 1]
                self.add_module(f"conv{stage}_{i}", nn.Conv2d(cin, cout, 3, padding=1))
                cin = cout
        self.fc6 = nn.Conv2d(cin, cfg.fc_width, 7, padding=3)
        self.fc7 = nn.Conv2d(cfg.fc_width, cfg.fc_width, 1)
        self.dropout = nn.Dropout(0.5)  # after fc6 and fc7 (train only), as released
        self.h_fc1 = nn.Conv2d(cfg.hypercolumn_channels, cfg.head_width, 1)
        self.prediction_h = nn.Conv2d(cfg.head_width, cfg.num_bins, 1)
        self.prediction_c = nn.Conv2d(cfg.head_width, cfg.num_bins, 1)

    def features(self, grey: Tensor) -> dict[str, Tensor]:
        """Every hypercolumn source at its own resolution (ReLU applied, as Caffe's in-place)."""
        S = grey.shape[-1]
        if grey.dim() != 4 or grey.shape[1] != 1 or grey.shape[-2] % 32 or S % 32:
            raise ValueError(f"larsson: input must be (B, 1, H, W) with H and W multiples of 32, "
                             f"got {tuple(grey.shape)}")
        feats = {"data": grey}
        x = grey
        for stage, n in _STAGES:
            for i in range(1, n + 1):
                name = f"conv{stage}_{i}"
                x = feats[name] = F.relu(getattr(self, name)(x))
            x = F.max_pool2d(x, 2)
        x = feats["fc6"] = self.dropout(F.relu(self.fc6(x)))
        feats["fc7"] = self.dropout(F.relu(self.fc7(x)))
        return feats

    def _head_plain(self, feats: dict[str, Tensor]) -> Tensor:
        cols = [_resample(feats[name], how, k) for name, how, k in _SOURCES]
        return self.h_fc1(torch.cat(cols, dim=1))  # (B, 12417, S/4, S/4) -> (B, 1024, ...)

    def _head_fused(self, feats: dict[str, Tensor]) -> Tensor:
        weight = self.h_fc1.weight  # (1024, 12417, 1, 1), input channels in _SOURCES order
        out = self.h_fc1.bias.view(1, -1, 1, 1)
        start = 0
        for factor, names in _FUSED_GROUPS:
            # Pooled sources are pooled first, so the 1x1 conv is paid at 1/4 resolution only;
            # upsampled ones go through their h_fc1 slice at their own (lower) resolution.
            x = torch.cat([_resample(feats[n], *_HOW[n]) if factor == 1 else feats[n]
                           for n in names], dim=1)
            w = weight[:, start:start + x.shape[1]]
            start += x.shape[1]
            out = out + caffe_bilinear_upsample(F.conv2d(x, w), factor)
        return out

    def logits(self, grey: Tensor, head: HeadMode = "fused") -> tuple[Tensor, Tensor]:
        """Hue and chroma class scores at 1/4 resolution, each ``(B, 32, S/4, S/4)``."""
        if head not in ("fused", "plain"):
            raise ValueError(f"larsson: head must be 'fused' or 'plain', got {head!r}")
        feats = self.features(grey)
        pre = self._head_fused(feats) if head == "fused" else self._head_plain(feats)
        h = F.relu(pre)
        return self.prediction_h(h), self.prediction_c(h)

    def forward(self, grey: Tensor, head: HeadMode = "fused") -> tuple[Tensor, Tensor]:
        """The released outputs ``prediction_{h,c}_full``: histograms ``(B, 32, S, S)`` each."""
        zh, zc = self.logits(grey, head)
        return (caffe_bilinear_upsample(torch.softmax(zh, dim=1), 4),
                caffe_bilinear_upsample(torch.softmax(zc, dim=1), 4))
