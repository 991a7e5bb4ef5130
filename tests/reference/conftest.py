"""Synthetic colour clips with exact ground truth for the reference tests: a pan over a colour
picture, an object moving over a background, two shots with a hard cut between them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorvid.core.color import lab_to_rgb, rgb_to_lab
from colorvid.core.frames import frames_to_l, lab_to_frames, to_rgb_float


def _smooth(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """A smooth random field in [-1, 1]: coarse noise, bicubically enlarged."""
    coarse = torch.from_numpy(rng.uniform(-1, 1, (1, 1, cells, cells)).astype(np.float32))
    return torch.nn.functional.interpolate(coarse, size=shape, mode="bicubic",
                                           align_corners=False)[0, 0].clamp(-1, 1).numpy()


def picture(shape: tuple[int, int], seed: int = 0, *, lightness: float = 55.0,
            hue: float | None = None) -> np.ndarray:
    """A colour 'photo' RGB uint8: textured luma (for the flow) and smooth colour regions
    (random hues, or one ``hue`` in degrees)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    L = lightness + 14 * _smooth(rng, shape, 9) + 6 * _smooth(rng, shape, 24)
    if hue is None:
        a, b = 45 * _smooth(rng, shape, 4), 45 * _smooth(rng, shape, 4)
    else:
        r = 30 + 10 * _smooth(rng, shape, 4)
        a, b = r * np.cos(np.radians(hue)), r * np.sin(np.radians(hue))
    lab = torch.from_numpy(np.stack([L, a, b]).astype(np.float32))
    return (lab_to_rgb(lab).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def grey(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The grey versions (same L) of RGB frames."""
    return [lab_to_frames(frames_to_l(f), torch.zeros(1, 2, 1, 1), upsample=True)[0]
            for f in frames]


def ab(frame: np.ndarray) -> np.ndarray:
    """Lab ab ``(2, H, W)`` float64 of an RGB uint8 frame."""
    return rgb_to_lab(to_rgb_float(frame).double())[0, 1:].numpy()


def ab_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean Lab ab distance between two RGB frames."""
    return float(np.linalg.norm(ab(pred) - ab(truth), axis=0).mean())


@pytest.fixture(scope="session")
def pan() -> list[np.ndarray]:
    """12 frames of 48 x 64 panning 2 px right and 1 px down a frame over a colour picture."""
    big = picture((48 + 12, 64 + 24), seed=1)
    return [np.ascontiguousarray(big[t:t + 48, 2 * t:2 * t + 64]) for t in range(12)]


@pytest.fixture(scope="session")
def moving_object() -> list[np.ndarray]:
    """10 frames of 48 x 64: a bright orange textured square moving 3 px a frame over a darker
    blue-green background (both with texture, so the flow sees them)."""
    background = picture((48, 64), seed=2, lightness=40.0, hue=200.0)
    square = picture((16, 16), seed=3, lightness=80.0, hue=30.0)
    frames = []
    for t in range(10):
        f = background.copy()
        x = 4 + 3 * t
        f[16:32, x:x + 16] = square
        frames.append(f)
    return frames


@pytest.fixture(scope="session")
def two_shots() -> list[np.ndarray]:
    """12 frames: 6 of a bright orange picture panning, then a hard cut to 6 of a dark blue one
    (different brightness, so the scene-cut detector sees the cut at frame 6)."""
    a = picture((48, 64 + 12), seed=4, lightness=72.0, hue=50.0)
    b = picture((48, 64 + 12), seed=5, lightness=30.0, hue=260.0)
    return [np.ascontiguousarray((a if t < 6 else b)[:, 2 * t % 12:2 * t % 12 + 64])
            for t in range(12)]
