"""A third-party colorvid plugin: tints every frame sepia, strongest in the mid-tones.

ab(L) = tone * 4 (L/100) (1 - L/100): black and white stay neutral, mid-grey gets the full tone.
"""

from __future__ import annotations

import torch

import colorvid

__all__ = ["SepiaColorizer"]


class SepiaColorizer(colorvid.Colorizer):
    """Sepia tone: a warm brown whose saturation peaks in the mid-tones."""

    def __init__(self, a: float = 6.0, b: float = 22.0, device: str | None = None) -> None:
        self.tone = torch.tensor([a, b])
        self.device = torch.device(device or "cpu")

    def predict_ab_lowres(self, L: torch.Tensor) -> torch.Tensor:
        x = L / 100.0  # (B, 1, h, w) in [0, 1]
        strength = 4.0 * x * (1.0 - x)  # 0 at black and white, 1 at L = 50
        return strength * self.tone.to(L).view(1, 2, 1, 1)  # (B, 2, h, w)


@colorvid.hookimpl
def register_colorizers(register):
    register("sepia", SepiaColorizer, description="Sepia tone, strongest in the mid-tones")
