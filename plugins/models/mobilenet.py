"""The ``mobilenet`` colorizer plugin: Zhang's 313-bin classification on a pretrained encoder.

An ImageNet MobileNetV2 under a small U-Net decoder
(:mod:`colorvid.plugins.models.mobilenet_net`). Everything a caller sees is the ``zhang``
colorizer's: the frame is resized to ``render_size`` (256 by default, a multiple of 32), the net
predicts 313-class logits at 1/4 resolution, decoded by the annealed mean with the prior
correction and saturation its weights file was calibrated with; the options are zhang's.

>>> import colorvid, torch
>>> net = colorvid.create_colorizer("mobilenet", pretrained=False, render_size=64,
...                                 preset="tiny")
>>> L = torch.full((1, 1, 40, 60), 50.0)
>>> tuple(net.colorize_lab(L).shape)
(1, 3, 40, 60)
"""

from __future__ import annotations

from typing import Any

import torch

import colorvid
from colorvid.plugins.models.mobilenet_net import MobileNetColorConfig, MobileNetColorNet
from colorvid.plugins.models.zhang import ZhangColorizer

__all__ = ["MobileNetColorizer", "create_mobilenet"]

MODEL_NAME = "mobilenet"


class MobileNetColorizer(ZhangColorizer):
    """313-bin colorization on an ImageNet MobileNetV2; options as
    :class:`~colorvid.plugins.models.zhang.ZhangColorizer` (``render_size`` a multiple of 32).
    """

    name = MODEL_NAME
    stride = 32  # five stride-2 stages in the encoder
    default_render_size = 256  # as zhang: the decoder's 1/4 grid is then 64 x 64

    @staticmethod
    def build_net(preset: str) -> torch.nn.Module:
        return MobileNetColorNet(MobileNetColorConfig.preset(preset))


def create_mobilenet(**options: Any) -> MobileNetColorizer:
    """313-bin colorization on an ImageNet MobileNetV2 encoder; options: see ZhangColorizer."""
    return MobileNetColorizer(**options)


create_mobilenet.frame_colorizer = MobileNetColorizer  # LRCN can run its net per frame


@colorvid.hookimpl
def register_colorizers(register) -> None:
    register(MODEL_NAME, create_mobilenet,
             description="313-bin classification on an ImageNet-pretrained MobileNetV2 "
                         "encoder with a U-Net decoder")
