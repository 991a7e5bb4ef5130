"""sRGB <-> Lab against scikit-image, on random and edge colours, both float dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from colorvid.core import color

EDGE_RGB = np.array(
    [
        [0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1],
        [1, 1, 0], [0, 1, 1], [1, 0, 1], [0.5, 0.5, 0.5],
        [0.04045, 0.04045, 0.04045],  # the companding knee
        [0.001, 0.002, 0.003],  # the linear segment of the cube root
    ],
    dtype=np.float64,
)


def _rand_rgb(seed: int, n: int = 4096) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([EDGE_RGB, rng.random((n, 3))])


def _as_image(rgb: np.ndarray) -> np.ndarray:
    return rgb.reshape(1, -1, 3)  # skimage wants (..., 3)


def _to_torch(x: np.ndarray, dtype) -> torch.Tensor:
    return torch.from_numpy(x.reshape(1, -1, 3).transpose(2, 0, 1).copy()).to(dtype)  # (3, 1, N)


def _from_torch(t: torch.Tensor) -> np.ndarray:
    return t.double().numpy().transpose(1, 2, 0).reshape(-1, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage(dtype):
    rgb = _rand_rgb(0)
    expected = skcolor.rgb2lab(_as_image(rgb)).reshape(-1, 3)
    got = _from_torch(color.rgb_to_lab(_to_torch(rgb, dtype)))
    assert np.abs(got - expected).max() < 1e-3
    # Black is exactly (0, 0, 0); white has L = 100 and (with the rounded sRGB matrix that
    # scikit-image uses too) a residual chroma of about 0.005.
    assert np.allclose(got[0], 0.0, atol=1e-4)
    assert abs(got[1, 0] - 100.0) < 1e-3 and np.abs(got[1, 1:]).max() < 1e-2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lab_to_rgb_matches_skimage_including_out_of_gamut(dtype):
    rng = np.random.default_rng(1)
    n = 4096
    # Whole Lab box, far outside the sRGB gamut too (clipped on the way back).
    lab = np.stack(
        [rng.uniform(0, 100, n), rng.uniform(-128, 127, n), rng.uniform(-128, 127, n)], axis=1
    )
    lab = np.concatenate([lab, [[0, 0, 0], [100, 0, 0], [50, 127, -128], [20, -128, 127]]])
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skimage warns about negative Z values it clips
            expected = skcolor.lab2rgb(_as_image(lab)).reshape(-1, 3)
    got = _from_torch(color.lab_to_rgb(_to_torch(lab, dtype)))
    assert np.abs(got - expected).max() < 1e-3
    assert got.min() >= 0.0 and got.max() <= 1.0


def test_round_trip_and_batched_shapes():
    rgb = torch.rand(2, 3, 3, 5, 7, dtype=torch.float64)  # (..., 3, H, W) with two batch dims
    lab = color.rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    assert torch.allclose(color.lab_to_rgb(lab), rgb, atol=1e-6)


def test_differentiable_float64_gradcheck():
    # Stay away from the branch knees, where the derivative is discontinuous by definition.
    rgb = (torch.rand(1, 3, 2, 3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(color.rgb_to_lab, (rgb,))
    lab = color.rgb_to_lab(rgb.detach()).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: color.lab_to_rgb(x, clip=False), (lab,))


def test_gradients_finite_at_black():
    rgb = torch.zeros(1, 3, 2, 2, requires_grad=True)
    color.rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()


def test_normalisation_conventions():
    L = torch.tensor([0.0, 50.0, 100.0])
    assert color.normalize_l(L).tolist() == [-0.5, 0.0, 0.5]
    assert torch.equal(color.denormalize_l(color.normalize_l(L)), L)
    ab = torch.tensor([-110.0, 0.0, 55.0])
    assert color.normalize_ab(ab).tolist() == [-1.0, 0.0, 0.5]
    assert torch.equal(color.denormalize_ab(color.normalize_ab(ab)), ab)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        color.rgb_to_lab(torch.rand(4, 4))
    with pytest.raises(ValueError, match="3 channels"):
        color.lab_to_rgb(torch.rand(1, 4, 2, 2))
    with pytest.raises(TypeError, match="floating-point"):
        color.rgb_to_lab(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        color.rgb_to_lab(np.zeros((3, 2, 2)))
