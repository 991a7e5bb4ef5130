"""The shipped 313 bins and nearest-bin lookup (torch reference and C++)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from colorvid.core import bins
from colorvid.kernels import nearest_bin_cpp


def test_bins_count_order_grey_and_sha256():
    arr = bins.ab_bins_numpy()
    assert arr.shape == (313, 2) and arr.dtype == np.dtype("<i8")
    assert tuple(arr[120]) == (0, 0) and bins.GREY_BIN == 120
    # Reference order: a ascending, then b ascending within each a.
    keys = [tuple(r) for r in arr]
    assert keys == sorted(keys)
    assert arr[0].tolist() == [-90, 50] and arr[-1].tolist() == [100, 0]
    assert np.all(arr % 10 == 0)
    assert hashlib.sha256(arr.tobytes()).hexdigest() == bins.AB_BINS_SHA256
    assert bins.AB_BINS_SHA256 == (
        "2a39983ed60d5b52b717842d56d5f766982289e6d5a609582155f437cecc1045"
    )


def test_ab_bins_tensor():
    t = bins.ab_bins(dtype=torch.float64)
    assert t.shape == (313, 2) and t.dtype == torch.float64
    assert t[120].tolist() == [0.0, 0.0]


def _brute_force(ab: np.ndarray) -> np.ndarray:
    centres = bins.ab_bins_numpy().astype(np.float64)
    flat = ab.transpose(0, 2, 3, 1).reshape(-1, 1, 2)
    d2 = ((flat - centres[None]) ** 2).sum(-1)
    return d2.argmin(1).reshape(ab.shape[0], ab.shape[2], ab.shape[3])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nearest_bin_matches_brute_force(dtype):
    g = torch.Generator().manual_seed(0)
    ab = (torch.rand(2, 2, 9, 13, generator=g, dtype=torch.float64) * 260 - 130).to(dtype)
    expected = _brute_force(ab.double().numpy())
    assert np.array_equal(bins.nearest_bin(ab).numpy(), expected)
    assert np.array_equal(nearest_bin_cpp(ab).numpy(), expected)


def test_nearest_bin_exact_centres_and_leading_dims():
    centres = bins.ab_bins(dtype=torch.float32)  # (313, 2)
    ab = centres.T.reshape(1, 2, 1, 313)
    assert bins.nearest_bin(ab).flatten().tolist() == list(range(313))
    assert nearest_bin_cpp(ab).flatten().tolist() == list(range(313))
    # Extra leading dimensions are kept: (T, B, 2, H, W) -> (T, B, H, W).
    assert bins.nearest_bin(torch.zeros(3, 2, 2, 4, 5)).shape == (3, 2, 4, 5)


def test_cpp_threads_agree_on_a_large_frame():
    g = torch.Generator().manual_seed(3)
    ab = torch.randn(1, 2, 120, 160, generator=g) * 40  # 19,200 px: several worker chunks
    one = nearest_bin_cpp(ab, num_threads=1)
    many = nearest_bin_cpp(ab, num_threads=4)
    assert torch.equal(one, many)
    assert torch.equal(one, bins.nearest_bin(ab))


def test_nearest_bin_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, H, W\)"):
        bins.nearest_bin(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="NaN or infinity"):
        bins.nearest_bin(torch.tensor([float("nan"), 0.0]).view(1, 2, 1, 1))
    with pytest.raises(ValueError, match="NaN or infinity"):
        nearest_bin_cpp(torch.tensor([float("inf"), 0.0]).view(1, 2, 1, 1))
    with pytest.raises(TypeError, match="float32 or float64"):
        nearest_bin_cpp(torch.zeros(1, 2, 2, 2, dtype=torch.float16))
    with pytest.raises(TypeError, match="floating-point"):
        bins.nearest_bin(torch.zeros(1, 2, 2, 2, dtype=torch.int64))
