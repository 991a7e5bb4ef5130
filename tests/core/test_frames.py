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


@pytest.mark.parametrize("low, full", [
    ((64, 64), (144, 176)),  # a model's square chroma onto a 4:3-ish frame
    ((3, 5), (37, 53)),  # odd sizes, factors that are not integers
    ((1, 1), (5, 7)),  # one chroma pixel: every tap clamps to the edge
    ((9, 7), (5, 4)),  # chroma larger than the frame (downsampling through the same maths)
])
@pytest.mark.parametrize("path", ["cpp", "torch"])
def test_upsampled_chroma_matches_interpolate_then_convert(low, full, path, monkeypatch):
    import torch.nn.functional as F

    import colorvid.core.frames as frames

    g = torch.Generator().manual_seed(5)
    L = torch.rand(2, 1, *full, generator=g) * 100
    ab = (torch.rand(2, 2, *low, generator=g) - 0.5) * 200
    expected = lab_to_frames(L, F.interpolate(ab, size=full, mode="bilinear",
                                              align_corners=False)).astype(int)
    if path == "torch":
        monkeypatch.setattr(frames, "_cpu_kernels", lambda: None)
    else:
        assert frames._cpu_fused_kernels() is not None
    got = lab_to_frames(L, ab, upsample=True).astype(int)
    diff = np.abs(got - expected)
    # float rounding of the interpolation may move a value across a .5 level boundary
    assert got.shape == (2, *full, 3) and diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("shape", [(2, 9, 7, 3), (3, 9, 7, 1), (9, 7)])
def test_cpp_l_matches_the_torch_lookup(shape, monkeypatch):
    import colorvid.core.frames as frames

    x = torch.arange(int(np.prod(shape))).remainder(256).to(torch.uint8).reshape(shape)
    assert frames._cpu_fused_kernels() is not None
    fused = frames_to_l(x)
    monkeypatch.setattr(frames, "_cpu_kernels", lambda: None)
    looked_up = frames_to_l(x)
    assert fused.shape == looked_up.shape and fused.dtype == torch.float32
    assert (fused - looked_up).abs().max() < 1e-4  # the table of L(Y): < 2e-6 by construction


@pytest.mark.parametrize("low", [(4, 4), (8, 8)], ids=["upsampled", "same-size"])
def test_non_finite_chroma_gives_defined_pixels(low):
    """A broken model's NaN / inf chroma must not index the companding table out of range."""
    ab = torch.full((1, 2, *low), float("nan"))
    ab[0, 0, 0, 0] = float("inf")
    out = lab_to_frames(torch.full((1, 1, 8, 8), 50.0), ab, upsample=True)
    assert out.shape == (1, 8, 8, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("low, full", [
    ((256, 455), (72, 1280)),  # a model's chroma onto a strip of 720p rows
    ((37, 53), (37, 53)),  # same size: the flat path, odd length
    ((1, 3), (2, 17)),  # rows shorter than two AVX2 blocks: the scalar tail only
    ((9, 7), (5, 4)),  # downsampling
])
def test_cpp_simd_and_scalar_builds_give_identical_bytes(low, full):
    """The AVX2 conversion does each operation in the scalar order (no FMA), so the bytes are
    the same, NaN and inf chroma included; on a CPU without AVX2 both run the scalar code."""
    import colorvid.core.frames as frames

    cpu = frames._cpu_fused_kernels()
    assert cpu is not None
    g = torch.Generator().manual_seed(11)
    L = (torch.rand(2, *full, generator=g) * 100).numpy()
    ab = ((torch.rand(2, 2, *low, generator=g) - 0.5) * 300).numpy()
    ab[0, 0, 0, 0], ab[1, 1, -1, -1] = np.nan, np.inf
    m = frames._rgb_from_xyz(torch.device("cpu")).contiguous().numpy()
    lut = frames._gamma_lut(torch.device("cpu")).numpy()
    simd = cpu.lab_to_rgb8(L, ab, m, lut, simd=True)
    scalar = cpu.lab_to_rgb8(L, ab, m, lut, simd=False)
    assert simd.shape == (2, *full, 3) and np.array_equal(simd, scalar)
