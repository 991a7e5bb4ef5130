"""soft_encode / soft_encode_dense: every implementation against the torch reference."""

from __future__ import annotations

import math

import pytest
import torch
from kernel_helpers import random_ab, skip_unless_runs

from colorvid.core.bins import GREY_BIN, ab_bins, nearest_bin
from colorvid.kernels import soft_encode, soft_encode_dense
from colorvid.kernels.reference import soft_encode_reference

# (B, H, W): one pixel; odd sizes that leave a partial C++ tile (128 px) and a partial Triton
# block; a width of 1; and more pixels than one C++ tile so several threads share the work.
CPP_SHAPES = [(1, 1, 1), (2, 7, 5), (1, 1, 13), (3, 17, 19)]
# The Triton interpreter costs ~0.1 s per call: small shapes, still odd (partial blocks).
TRITON_SHAPES = [(1, 3, 5), (2, 1, 7)]


def _check_against_reference(
    impl: str, shape: tuple[int, int, int], k: int, dtype: torch.dtype
) -> None:
    ab = random_ab(*shape, seed=sum(shape) + k, dtype=dtype)
    ref_idx, ref_w = soft_encode_reference(ab, k, 5.0)
    idx, w = soft_encode(ab, k, 5.0, implementation=impl)
    assert idx.dtype == torch.int64 and idx.shape == (shape[0], k, shape[1], shape[2])
    assert torch.equal(idx, ref_idx)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(w, ref_w, atol=tol, rtol=tol)


@pytest.mark.parametrize("shape", CPP_SHAPES)
@pytest.mark.parametrize("k", [1, 5, 10])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_matches_reference(shape, k, dtype):
    skip_unless_runs("cpp", dtype)
    _check_against_reference("cpp", shape, k, dtype)


@pytest.mark.triton
@pytest.mark.parametrize("shape", TRITON_SHAPES)
@pytest.mark.parametrize("k", [1, 5, 10])
def test_triton_matches_reference(shape, k):
    skip_unless_runs("triton")
    _check_against_reference("triton", shape, k, torch.float32)


def test_reference_by_hand():
    # ab = (3, 4): nearest (0, 0) at d^2 = 25, then (10, 0) at 65 and (0, 10) at 45.
    ab = torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1)
    idx, w = soft_encode_reference(ab, k=3, sigma=5.0)
    centres = ab_bins()
    assert centres[idx[0, :, 0, 0]].tolist() == [[0.0, 0.0], [0.0, 10.0], [10.0, 0.0]]
    raw = [1.0, math.exp(-(45 - 25) / 50), math.exp(-(65 - 25) / 50)]
    expected = [r / sum(raw) for r in raw]
    torch.testing.assert_close(w[0, :, 0, 0], torch.tensor(expected), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("impl", ["reference", "cpp"])
def test_nearest_first_matches_nearest_bin(impl):
    ab = random_ab(2, 9, 11, seed=5)
    idx, _ = soft_encode(ab, 5, implementation=impl)
    assert torch.equal(idx[:, 0], nearest_bin(ab))


@pytest.mark.parametrize(
    "impl", ["reference", "cpp", pytest.param("triton", marks=pytest.mark.triton)]
)
def test_far_outside_the_gamut_is_stable(impl):
    # Unshifted, exp(-d^2 / 50) underflows to 0 for every bin at |ab| ~ 1e3: 0/0.
    skip_unless_runs(impl)
    ab = torch.tensor([[1e3, -1e3], [5e4, 1e4]]).reshape(1, 2, 1, 2)
    idx, w = soft_encode(ab, 10, implementation=impl)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(1, 1, 2))
    assert torch.equal(idx, soft_encode_reference(ab, 10, 5.0)[0])


@pytest.mark.parametrize("impl", ["cpp", pytest.param("triton", marks=pytest.mark.triton)])
def test_ties_go_to_the_lower_bin_like_the_reference(impl):
    # Grey pixels sit exactly on bin 120: at k = 10 four bins tie at distance 20 for one slot;
    # (5, 5) is equidistant from four bins; (15, 0) from two.
    skip_unless_runs(impl)
    ab = torch.tensor([[0.0, 5.0, 15.0], [0.0, 5.0, 0.0]]).reshape(1, 2, 1, 3)
    for k in (1, 4, 10):
        idx, w = soft_encode(ab, k, implementation=impl)
        ref_idx, ref_w = soft_encode_reference(ab, k, 5.0)
        assert torch.equal(idx, ref_idx), k
        torch.testing.assert_close(w, ref_w)
    assert idx[0, 0, 0, 0] == GREY_BIN


def test_cpp_lattice_shortcut_agrees_with_a_full_scan():
    # The C++ search looks at the 5 x 5 lattice nodes around ab and scans every bin only when
    # that block cannot be trusted: at the gamut edge, beyond it, and for large k.
    skip_unless_runs("cpp")
    centres = ab_bins()
    edge = centres + torch.tensor([7.0, -6.5])  # every bin, pushed off-centre: edge cases
    ab = torch.cat([edge, centres * 1.3, centres * 0.5 + 2.5]).T.reshape(1, 2, 1, -1)
    for k, pixels in ((1, None), (5, None), (10, None), (30, 64), (313, 4)):
        sub = ab[..., :pixels]  # the reference costs k argmin passes: fewer pixels for large k
        idx, w = soft_encode(sub, k, implementation="cpp")
        ref_idx, ref_w = soft_encode_reference(sub, k, 5.0)
        assert torch.equal(idx, ref_idx), k
        torch.testing.assert_close(w, ref_w)


@pytest.mark.parametrize("impl", ["reference", "cpp"])
def test_dense_variant(impl):
    ab = random_ab(2, 3, 4, seed=3)
    dense = soft_encode_dense(ab, 5, implementation=impl)
    assert dense.shape == (2, 313, 3, 4)
    torch.testing.assert_close(dense.sum(dim=1), torch.ones(2, 3, 4))
    assert ((dense > 0).sum(dim=1) == 5).all()
    idx, w = soft_encode(ab, 5, implementation="reference")
    torch.testing.assert_close(dense.gather(1, idx), w)


def test_half_precision_ab_falls_back_to_the_reference_in_float32():
    ab = random_ab(1, 2, 3, seed=4)
    idx, w = soft_encode(ab.half())
    assert w.dtype == torch.float32
    assert torch.equal(idx, soft_encode_reference(ab.half(), 5, 5.0)[0])


def test_sigma_and_k_change_the_weights():
    ab = random_ab(1, 2, 2, seed=6)
    _, narrow = soft_encode(ab, 5, 1.0)
    _, wide = soft_encode(ab, 5, 50.0)
    assert (narrow[:, 0] > wide[:, 0]).all()  # a narrow Gaussian favours the nearest bin


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ab": torch.zeros(1, 3, 2, 2)}, ValueError, r"ab must have shape \(B, 2, H, W\)"),
        ({"ab": torch.zeros(2, 2, 2)}, ValueError, r"ab must have shape"),
        (
            {"ab": torch.zeros(1, 2, 2, 2, dtype=torch.int64)},
            TypeError,
            "ab must be a floating-point",
        ),
        ({"ab": torch.full((1, 2, 1, 1), float("nan"))}, ValueError, "ab contains NaN or infinity"),
        ({"ab": torch.full((1, 2, 1, 1), float("inf"))}, ValueError, "ab contains NaN or infinity"),
        ({"ab": [[0.0, 0.0]]}, TypeError, "ab must be a torch.Tensor"),
        ({"k": 0}, ValueError, r"k must be an int in \[1, 313\]"),
        ({"k": 314}, ValueError, r"k must be an int in \[1, 313\]"),
        ({"k": 2.0}, ValueError, "k must be an int"),
        ({"sigma": 0.0}, ValueError, "sigma must be a finite float > 0"),
        ({"sigma": float("nan")}, ValueError, "sigma must be a finite float > 0"),
        ({"sigma": "5"}, TypeError, "sigma must be a float"),
    ],
)
def test_bad_input_is_named(kwargs, error, match):
    args = {"ab": torch.zeros(1, 2, 2, 2), "k": 5, "sigma": 5.0} | kwargs
    with pytest.raises(error, match=match):
        soft_encode(args["ab"], args["k"], args["sigma"])


def test_cpp_binding_checks_its_buffers():
    skip_unless_runs("cpp")
    from colorvid.kernels import _cpu

    ab = torch.zeros(1, 2, 2, 2)
    centres = ab_bins().numpy()
    idx = torch.empty(1, 5, 2, 2, dtype=torch.int64)
    w = torch.empty(1, 5, 2, 2)
    with pytest.raises(TypeError, match="weight must have dtype float32"):
        _cpu.soft_encode(ab.numpy(), centres, 5, 5.0, idx.numpy(), w.double().numpy())
    with pytest.raises(ValueError, match=r"idx must have shape \(1, 5, 2, 2\)"):
        _cpu.soft_encode(ab.numpy(), centres, 5, 5.0, idx[:, :4].contiguous().numpy(), w.numpy())
    with pytest.raises(ValueError, match="must be C-contiguous"):
        _cpu.soft_encode(ab.permute(0, 1, 3, 2).numpy(), centres, 5, 5.0, idx.numpy(), w.numpy())


def test_cpp_eight_pixel_search_gives_the_scalar_bytes():
    """The AVX2 search (8 pixels at once, csrc/cpu/soft_encode_avx2.cpp) against the scalar one
    on the same pixels: the whole gamut and beyond, every node and the midpoints between nodes
    (ties at equal distance), off-centre bins at the gamut edge, far outside, NaN and inf."""
    skip_unless_runs("cpp")
    from colorvid.kernels import _cpu

    centres = ab_bins()
    g = torch.Generator().manual_seed(7)
    nodes = centres.T.repeat(1, 4) + torch.randint(-1, 2, (2, 313 * 4), generator=g) * 5.0
    odd = torch.tensor([[1e3, -1e3, 5e4, float("nan"), float("inf"), 0.0, 5.0, 15.0],
                        [-1e3, 1e3, 1e4, 0.0, 1.0, 0.0, 5.0, 0.0]])
    spread = (torch.rand(2, 20000, generator=g) - 0.5) * 240
    ab = torch.cat([spread, nodes, centres.T * 1.3,
                    centres.T + torch.tensor([[7.0], [-6.5]]), odd], dim=1)
    ab = ab[:, : ab.shape[1] // 8 * 8].reshape(1, 2, 8, -1).contiguous()
    for k in (1, 5, 8):
        out = []
        for allow_avx2 in (True, False):
            idx = torch.empty(1, k, *ab.shape[2:], dtype=torch.int64)
            w = torch.empty(1, k, *ab.shape[2:])
            _cpu.soft_encode(ab.numpy(), centres.numpy(), k, 5.0, idx.numpy(), w.numpy(), 0,
                             allow_avx2)
            out.append((idx, w))
        (idx, w), (idx_scalar, w_scalar) = out
        assert torch.equal(idx, idx_scalar), k
        assert torch.equal(w.nan_to_num(nan=-1.0), w_scalar.nan_to_num(nan=-1.0)), k
    spread = spread.reshape(1, 2, 100, 200)  # and the bins are the reference's
    idx, _ = soft_encode(spread, 5, implementation="cpp")
    assert torch.equal(idx, soft_encode_reference(spread, 5, 5.0)[0])
