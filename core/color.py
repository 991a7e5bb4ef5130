"""sRGB (D65) <-> CIE Lab in torch, and the network normalisation conventions.

All functions take batched tensors shaped ``(..., 3, H, W)`` (channels third from the end), on
any device, in float32 or float64, and are differentiable. The maths follows
``skimage.color.rgb2lab`` / ``lab2rgb`` (sRGB companding, the D65 2-degree white point and the
CIE 1976 constants), so results agree with scikit-image to well under 1e-3.

Normalisation (design.md section 3): networks see ``(L - 50) / 100`` and predict ``ab / 110``.
Every conversion between Lab units and network units goes through the four functions below.

>>> import torch
>>> lab = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1))
>>> [round(float(v), 1) for v in lab.flatten()]
[53.2, 80.1, 67.2]
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "L_CENTER",
    "L_SCALE",
    "AB_SCALE",
    "rgb_to_lab",
    "lab_to_rgb",
    "rgb_to_xyz",
    "xyz_to_rgb",
    "normalize_l",
    "denormalize_l",
    "normalize_ab",
    "denormalize_ab",
    "rgb_to_grey_l",
]

# Network conventions of Zhang et al. (design.md section 3).
L_CENTER = 50.0
L_SCALE = 100.0
AB_SCALE = 110.0

# sRGB primaries -> CIE XYZ (D65), as in scikit-image and the sRGB standard.
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# Reference white D65, 2-degree observer.
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPS = 0.008856  # (6/29)^3, rounded as in the CIE standard and scikit-image
_KAPPA = 7.787  # (29/6)^2 / 3, ditto
_F_INV_THRESHOLD = 0.2068966  # 6/29: inverse of the cube-root branch


def _check(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(
            f"{name} must have shape (..., 3, H, W) with 3 channels, got {tuple(x.shape)}"
        )
    if x.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def _matrix(rows, like: Tensor) -> Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _apply_matrix(m: Tensor, x: Tensor) -> Tensor:
    # x: (..., 3, H, W); m: (3, 3) -> out[..., i, h, w] = sum_j m[i, j] x[..., j, h, w]
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _work_dtype(x: Tensor) -> torch.dtype:
    # Half precision loses the 1e-3 accuracy in the cube roots; compute in float32 and cast back.
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


def rgb_to_xyz(rgb: Tensor) -> Tensor:
    """Linearise sRGB in [0, 1] (inverse companding) and map to CIE XYZ (D65)."""
    _check(rgb, "rgb")
    x = rgb.to(_work_dtype(rgb))
    # torch.where evaluates both branches: clamp so pow never sees a negative base (NaN grads).
    high = ((x.clamp(min=0.04045) + 0.055) / 1.055).pow(2.4)
    linear = torch.where(x > 0.04045, high, x / 12.92)
    return _apply_matrix(_matrix(_XYZ_FROM_RGB, linear), linear).to(rgb.dtype)


def xyz_to_rgb(xyz: Tensor, clip: bool = True) -> Tensor:
    """CIE XYZ (D65) to companded sRGB; clipped to [0, 1] by default (out-of-gamut colours)."""
    _check(xyz, "xyz")
    x = xyz.to(_work_dtype(xyz))
    m = torch.linalg.inv(_matrix(_XYZ_FROM_RGB, x).double()).to(x.dtype)
    linear = _apply_matrix(m, x)
    high = 1.055 * linear.clamp(min=0.0031308).pow(1.0 / 2.4) - 0.055
    rgb = torch.where(linear > 0.0031308, high, linear * 12.92)
    if clip:
        rgb = rgb.clamp(0.0, 1.0)
    return rgb.to(xyz.dtype)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0, 1], ``(..., 3, H, W)`` -> CIE Lab (L in [0, 100], a and b roughly +-128)."""
    _check(rgb, "rgb")
    xyz = rgb_to_xyz(rgb.to(_work_dtype(rgb)))
    white = torch.tensor(_WHITE_D65, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    t = xyz / white
    # Cube root on the clamped branch only: d/dt t^(1/3) is infinite at 0.
    cube = t.clamp(min=_EPS).pow(1.0 / 3.0)
    f = torch.where(t > _EPS, cube, _KAPPA * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(dim=-3)
    L = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack((L, a, b), dim=-3).to(rgb.dtype)


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """CIE Lab ``(..., 3, H, W)`` -> sRGB in [0, 1]; out-of-gamut colours are clipped.

    As in scikit-image, a negative Z (possible for very saturated blue-yellow Lab values) is
    clamped to 0 before the inverse transform.
    """
    _check(lab, "lab")
    x = lab.to(_work_dtype(lab))
    L, a, b = x.unbind(dim=-3)
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)
    f = torch.stack((fx, fy, fz), dim=-3)
    cube = f.clamp(min=_F_INV_THRESHOLD)
    cube = cube * cube * cube
    t = torch.where(f > _F_INV_THRESHOLD, cube, (f - 16.0 / 116.0) / _KAPPA)
    white = torch.tensor(_WHITE_D65, dtype=t.dtype, device=t.device).view(3, 1, 1)
    return xyz_to_rgb(t * white, clip=clip).to(lab.dtype)


def rgb_to_grey_l(rgb: Tensor) -> Tensor:
    """The L channel of sRGB ``(..., 3, H, W)`` -> ``(..., 1, H, W)``: what a colorizer sees."""
    return rgb_to_lab(rgb)[..., :1, :, :]


def normalize_l(L: Tensor) -> Tensor:
    """Lab L in [0, 100] -> network input (L - 50) / 100, in [-0.5, 0.5]."""
    return (L - L_CENTER) / L_SCALE


def denormalize_l(x: Tensor) -> Tensor:
    """Inverse of :func:`normalize_l`."""
    return x * L_SCALE + L_CENTER


def normalize_ab(ab: Tensor) -> Tensor:
    """Lab ab -> network units ab / 110."""
    return ab / AB_SCALE


def denormalize_ab(x: Tensor) -> Tensor:
    """Inverse of :func:`normalize_ab`: network ab -> Lab units."""
    return x * AB_SCALE
