"""The ``larsson`` colorizer plugin: Larsson et al. 2016 ("Learning Representations for Automatic
Colorization"), a VGG-16 hypercolumn network predicting 32-bin hue and chroma histograms.

The frame's L is turned into the grey the network was trained on (mean of R, G, B in [0, 1]; for
a grey frame exactly its sRGB value), resized to ``render_size`` (256 by default: the release
scales the shorter side to 256), run through the network, and decoded as released (median
chroma, circular-mean hue, chromatic fading, lightness matching) at that resolution. The ab of
the decoded colours is upsampled onto the full-resolution L, which is kept exactly.

>>> import colorvid, torch
>>> larsson = colorvid.create_colorizer("larsson", pretrained=False, render_size=64)
>>> tuple(larsson.predict_ab(torch.full((1, 1, 50, 70), 60.0)).shape)
(1, 2, 50, 70)
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

import colorvid
from colorvid.core.color import lab_to_rgb, rgb_to_lab
from colorvid.core.interfaces import Colorizer
from colorvid.plugins.models.common import (
    pick_memory_format,
    resolve_saturation,
    setup_network,
)
from colorvid.plugins.models.larsson_decode import (
    CHROMA_METHODS,
    HUE_METHODS,
    ChromaMethod,
    HueMethod,
    histograms_to_rgb,
)
from colorvid.plugins.models.larsson_net import LarssonConfig, LarssonNet

__all__ = ["LarssonColorizer", "create_larsson", "l_to_grey"]

MODEL_NAME = "larsson"
DEFAULT_RENDER_SIZE = 256
_STRIDE = 32  # five 2x2 max-pools


def l_to_grey(L: Tensor) -> Tensor:
    """Lab L ``(B, 1, H, W)`` -> the sRGB grey value in [0, 1] with that lightness (a = b = 0)."""
    lab = torch.cat((L.float(), torch.zeros_like(L, dtype=torch.float32).expand(-1, 2, -1, -1)),
                    dim=1)
    return lab_to_rgb(lab).mean(dim=1, keepdim=True)  # R = G = B up to rounding


class LarssonColorizer(Colorizer):
    """Larsson et al. as a colorizer. Build it with :func:`create_larsson` (all keywords).

    Attributes:
        net: the :class:`~colorvid.plugins.models.larsson_net.LarssonNet`.
        preset: ``"tiny"`` or ``"full"``.
        hue_method, chroma_method: decoding (released defaults ``expectation-cf`` / ``median``).
        head: ``"fused"`` (default, same numbers, ~7x fewer head FLOPs) or ``"plain"``.

    Options (keywords): as :class:`~colorvid.plugins.models.zhang.ZhangColorizer` for
    ``weights``, ``preset``, ``device``, ``pretrained``, ``fp16`` / ``dtype`` and
    ``channels_last``; ``render_size`` a multiple of 32 (default 256); ``hue``
    ("expectation-cf", "expectation", "mode"), ``chroma`` ("median", "expectation", "mode"),
    ``head``; ``saturation``, a factor on the decoded ab (default: the weights file's
    ``decode_saturation``, chosen on validation photos by core/training/calibrate.py, else 1).
    """

    name = MODEL_NAME

    def __init__(
        self,
        *,
        weights: str | os.PathLike[str] | None = None,
        preset: str | None = None,
        device: str | torch.device | None = None,
        render_size: int | None = None,
        pretrained: bool = True,
        fp16: bool = False,
        dtype: str | torch.dtype | None = None,
        hue: HueMethod = "expectation-cf",
        chroma: ChromaMethod = "median",
        head: str = "fused",
        channels_last: bool | None = None,
        saturation: float | None = None,
    ) -> None:
        if hue not in HUE_METHODS:
            raise ValueError(f"larsson: hue must be one of {', '.join(HUE_METHODS)}, got {hue!r}")
        if chroma not in CHROMA_METHODS:
            raise ValueError(f"larsson: chroma must be one of {', '.join(CHROMA_METHODS)}, "
                             f"got {chroma!r}")
        if head not in ("fused", "plain"):
            raise ValueError(f"larsson: head must be 'fused' or 'plain', got {head!r}")
        setup_network(self, MODEL_NAME, lambda p: LarssonNet(LarssonConfig.preset(p)),
                      weights=weights, preset=preset,
                      device=device, render_size=render_size, pretrained=pretrained, fp16=fp16,
                      dtype=dtype, default_render_size=DEFAULT_RENDER_SIZE, stride=_STRIDE)
        self.hue_method: HueMethod = hue
        self.chroma_method: ChromaMethod = chroma
        self.head = head
        self.saturation = resolve_saturation(saturation, self.weights_config, MODEL_NAME)
        self.memory_format = pick_memory_format(channels_last, self.device, self.dtype)
        self.net.eval().to(device=self.device, dtype=self.dtype, memory_format=self.memory_format)

    def histograms(self, grey: Tensor) -> tuple[Tensor, Tensor]:
        """Grey ``(B, 1, S, S)`` in [0, 1] -> float32 hue, chroma histograms ``(B, 32, S, S)``."""
        x = grey.to(device=self.device, dtype=self.dtype).contiguous(
            memory_format=self.memory_format)
        with torch.inference_mode():
            hist_h, hist_c = self.net(x, self.head)
        return hist_h.float(), hist_c.float()

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        """L ``(B, 1, S, S)`` -> ab ``(B, 2, S, S)`` of the released decoding at render size."""
        grey = l_to_grey(L.to(self.device))
        hist_h, hist_c = self.histograms(grey)
        rgb = histograms_to_rgb(hist_h, hist_c, grey, self.hue_method, self.chroma_method)
        ab = rgb_to_lab(rgb)[:, 1:]
        if self.saturation != 1.0:
            ab = ab * self.saturation
        return ab.to(L.device)


def create_larsson(**options: Any) -> LarssonColorizer:
    """Larsson et al. 2016 (VGG-16 hypercolumns, hue/chroma histograms); see LarssonColorizer."""
    return LarssonColorizer(**options)


@colorvid.hookimpl
def register_colorizers(register) -> None:
    register(MODEL_NAME, create_larsson,
             description="Larsson et al. 2016: VGG-16 hypercolumns, hue/chroma histograms")
