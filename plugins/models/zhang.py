"""The ``zhang`` colorizer plugin: Zhang et al. ECCV16 ("Colorful Image Colorization").

Frames are resized to ``render_size`` (256 by default, as the released demo), the network predicts
313-class logits at 1/4 resolution, the annealed mean (T = 0.38) turns them into ab, which is
upsampled x4 (the released forward) and then onto the full-resolution L of the input frame.

>>> import colorvid, torch
>>> zhang = colorvid.create_colorizer("zhang", pretrained=False, render_size=32)
>>> L = torch.full((1, 1, 40, 60), 50.0)
>>> tuple(zhang.colorize_lab(L).shape)
(1, 3, 40, 60)
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

import colorvid
from colorvid.core.bins import AB_BINS_SHA256
from colorvid.core.interfaces import Colorizer
from colorvid.plugins.models.common import (
    cast_keeping_decoder,
    pick_memory_format,
    resolve_prior_correction,
    resolve_saturation,
    setup_network,
)
from colorvid.plugins.models.zhang_net import (
    ANNEAL_TEMPERATURE,
    DECODE_MODES,
    DecodeMode,
    ZhangConfig,
    ZhangNet,
)

__all__ = ["ZhangColorizer", "create_zhang"]

MODEL_NAME = "zhang"
DEFAULT_RENDER_SIZE = 256  # the PyTorch demo's resolution (Caffe training used 224 crops)
_STRIDE = 8  # three stride-2 convs: sizes must divide by 8 for the x2 deconv to line up


class ZhangColorizer(Colorizer):
    """Zhang et al. ECCV16 as a colorizer. Build it with :func:`create_zhang` (all keywords).

    Attributes:
        net: the :class:`~colorvid.plugins.models.zhang_net.ZhangNet` (reusable, e.g. by LRCN).
        preset: ``"tiny"`` or ``"full"``.
        decode_mode, temperature: how logits become ab (annealed mean, T = 0.38 by default;
            imported released weights default to the release's 1/2.606).
        weights_config: the config header of the loaded weights file (None when random).

    Options (keywords): ``weights`` (a .safetensors file; None: the shipped default of the
    preset), ``preset`` ("tiny" or "full"; None: the weights file's, else "tiny"), ``device``
    (None: CUDA if available), ``render_size`` (multiple of 8, default 256), ``pretrained``
    (False: random initialisation), ``fp16`` / ``dtype`` (float32, bfloat16, float16 on CUDA),
    ``decode`` ("annealed_mean", "mean", "mode"), ``temperature``, ``channels_last`` (None: on
    CUDA only), ``saturation`` (factor on the decoded ab), ``prior_correction`` (0..1: how much
    of the training's class rebalancing to undo before decoding). ``temperature``,
    ``saturation`` and ``prior_correction`` default to the values the weights file was
    calibrated with (``decode_*`` in its header), else 0.38, 1 and 0.
    """

    name = MODEL_NAME
    stride = _STRIDE  # render sizes must be multiples of this
    default_render_size = DEFAULT_RENDER_SIZE

    @staticmethod
    def build_net(preset: str) -> torch.nn.Module:
        """The network of ``preset`` (a subclass with another 313-bin net overrides this)."""
        return ZhangNet(ZhangConfig.preset(preset))

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
        decode: DecodeMode = "annealed_mean",
        temperature: float | None = None,
        channels_last: bool | None = None,
        saturation: float | None = None,
        prior_correction: float | None = None,
    ) -> None:
        who = self.name
        if decode not in DECODE_MODES:
            raise ValueError(f"{who}: decode must be one of {', '.join(DECODE_MODES)}, "
                             f"got {decode!r}")
        if temperature is not None and not (isinstance(temperature, (int, float))
                                            and temperature > 0):
            raise ValueError(f"{who}: temperature must be a number > 0, got {temperature!r}")
        setup_network(self, who, self.build_net,
                      weights=weights, preset=preset,
                      device=device, render_size=render_size, pretrained=pretrained, fp16=fp16,
                      dtype=dtype, default_render_size=self.default_render_size,
                      stride=self.stride, expect_config={"bins_sha256": AB_BINS_SHA256})
        file_t = (self.weights_config or {}).get("decode_temperature")
        self.temperature = float(temperature or file_t or ANNEAL_TEMPERATURE)
        self.saturation = resolve_saturation(saturation, self.weights_config, who)
        self.prior_correction = resolve_prior_correction(prior_correction, self, self.net, who)
        self.decode_mode: DecodeMode = decode
        self.memory_format = pick_memory_format(channels_last, self.device, self.dtype)
        self.net.eval().to(device=self.device, memory_format=self.memory_format)
        cast_keeping_decoder(self.net, self.dtype, self.net)  # decoding stays float32

    def _prepare(self, L: Tensor) -> Tensor:
        return L.to(device=self.device, dtype=self.dtype).contiguous(
            memory_format=self.memory_format)

    def logits(self, L_render: Tensor) -> Tensor:
        """L at the internal resolution ``(B, 1, h, w)`` -> un-annealed logits
        ``(B, 313, h/4, w/4)`` in float32 (inference mode; use ``net.logits`` to train)."""
        with torch.inference_mode():
            return self.net.logits(self._prepare(L_render)).float()

    def decode(self, logits: Tensor) -> Tensor:
        """Logits ``(B, 313, h, w)`` -> ab ``(B, 2, h, w)`` with this colorizer's decoding."""
        with torch.inference_mode():
            return self.net.decode(logits.to(self.device), self.decode_mode,
                                   self.temperature) * self.saturation

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        """L ``(B, 1, h, w)`` -> ab ``(B, 2, h, w)``: the released forward (decode, bilinear x4)."""
        with torch.inference_mode():  # net.decode runs in float32 (cast_keeping_decoder)
            ab = self.net(self._prepare(L), self.decode_mode, self.temperature)
        return (ab * self.saturation).contiguous().to(L.device)


def create_zhang(**options: Any) -> ZhangColorizer:
    """Zhang et al. ECCV16 (313-bin classification, annealed mean); options: see ZhangColorizer."""
    return ZhangColorizer(**options)


create_zhang.frame_colorizer = ZhangColorizer  # LRCN can run its net per frame


@colorvid.hookimpl
def register_colorizers(register) -> None:
    register(MODEL_NAME, create_zhang,
             description="Zhang et al. ECCV16: 313-bin classification, annealed-mean decoding")
