"""The ``grey`` colorizer: ab = 0 everywhere. The reference baseline of every evaluation.

It is what a colorizer that learned nothing would output, so metrics of real models are read
against it (the grey row of ``colorvid eval``).
"""

from __future__ import annotations

import torch
from torch import Tensor

import colorvid
from colorvid.core.interfaces import Colorizer

__all__ = ["GreyColorizer"]


class GreyColorizer(Colorizer):
    """Grey baseline: predicts ab = 0 (no colour) for every pixel."""

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device or "cpu")

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        # (B, 1, h, w) -> (B, 2, h, w): chroma is exactly zero.
        return L.new_zeros((L.shape[0], 2, *L.shape[-2:]))


@colorvid.hookimpl
def register_colorizers(register) -> None:
    register("grey", GreyColorizer, description="Grey baseline: ab = 0 (no colour)")
