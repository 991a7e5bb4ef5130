"""Frame conversions: user frames -> L, and L + ab -> RGB uint8 frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorvid.core.color import lab_to_rgb, rgb_to_lab
from colorvid.core.frames import frames_to_l, lab_to_frames, to_rgb_float


def test_lab_to_frames_matches_the_exact_conversion():
    g = torch.Generator().manual_seed(0)
    L = torch.rand(2, 1, 64, 80, generator=g) * 100
    ab = (torch.rand(2, 2, 64, 80, generator=g) - 0.5) * 260  # far outside the gamut too
    got = lab_to_frames(L, ab).astype(int)
    exact = lab_to_rgb(torch.cat((L, ab), dim=1).double())
    expected = (exact * 255 + 0.5).floor().clamp(0, 255).permute(0, 2, 3, 1).numpy().astype(int)
    diff = np.abs(got - expected)
    assert got.shape == (2, 64, 80, 3)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_grey_round_trip_keeps_l_and_values():
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    L = frames_to_l(grey)
    assert L.shape == (1, 1, 16, 16)
    exact = rgb_to_lab(to_rgb_float(grey))[:, :1]
    assert torch.allclose(L, exact, atol=1e-4)
    out = lab_to_frames(L, torch.zeros(1, 2, 16, 16))
    assert np.array_equal(out[0, :, :, 0], grey) and np.array_equal(out[0, :, :, 2], grey)


def test_lab_to_frames_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\) of the same size"):
        lab_to_frames(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 5))


def test_cpp_and_torch_paths_agree(monkeypatch):
    import colorvid.core.frames as frames

    assert frames._cpu_kernels() is not None  # the C++ module is built by `make`
    g = torch.Generator().manual_seed(3)
    L = torch.rand(3, 1, 37, 53, generator=g) * 100  # odd sizes: no tiling assumptions
    ab = (torch.rand(3, 2, 37, 53, generator=g) - 0.5) * 300
    fused = lab_to_frames(L, ab)
    monkeypatch.setattr(frames, "_cpu_kernels", lambda: None)
    assert np.array_equal(fused, lab_to_frames(L, ab))
