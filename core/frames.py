"""Conversions between the frames users hold (RGB or grey, numpy or torch) and Lab tensors.

The colorization pipeline in one place: RGB/grey frame -> L (B, 1, H, W) -> colorizer -> ab ->
Lab -> RGB uint8. Colour input is treated as grey (only its L is used).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from colorvid.core.color import rgb_to_lab

__all__ = ["FLOAT_SLACK", "frames_to_l", "lab_to_frames", "to_rgb_float"]

# How far outside [0, 1] a float frame may stray (rounding of a resize or a colour conversion)
# and still be clamped silently; beyond it the values are not in [0, 1] at all.
FLOAT_SLACK = 1e-3


def _as_tensor(a: np.ndarray) -> Tensor:
    """numpy -> torch; a read-only array (a decoder's buffer, np.broadcast_to, a memory map) is
    copied first, since torch cannot share memory it must not write (and warns if asked to)."""
    return torch.as_tensor(a if a.flags.writeable else a.copy())


def to_rgb_float(frames: np.ndarray | Tensor, device: torch.device | str | None = None) -> Tensor:
    """Frames ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or batched ``(B, H, W[, C])`` -> RGB float32
    ``(B, 3, H, W)`` in [0, 1]. uint8 is scaled by 1/255, uint16 by 1/65535, floats taken as [0, 1]
    (values further than ``FLOAT_SLACK`` outside it, NaN or infinity are a ValueError).
    """
    x = _as_tensor(frames) if isinstance(frames, np.ndarray) else frames
    if not isinstance(x, Tensor):
        raise TypeError(f"frame must be a numpy array or torch tensor, got {type(frames).__name__}")
    if x.dim() == 2:  # (H, W) grey
        x = x[None, :, :, None]
    elif x.dim() == 3:
        # (H, W, C) with C in {1, 3} is one frame; anything else is a batch of grey frames.
        x = x[None] if x.shape[-1] in (1, 3) else x[..., None]
    if x.dim() != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(
            "frame must be HxW (grey), HxWx1, HxWx3 (RGB) or a batch BxHxWx{1,3}, "
            f"got shape {tuple(x.shape)}"
        )
    if x.dtype == torch.uint8:
        x = x.to(device=device, dtype=torch.float32) / 255.0
    elif x.dtype == torch.uint16 if hasattr(torch, "uint16") else False:
        x = x.to(device=device, dtype=torch.float32) / 65535.0
    elif x.is_floating_point():
        x = x.to(device=device, dtype=torch.float32)
        if not torch.isfinite(x).all():
            raise ValueError("frame contains NaN or infinity")
        low, high = float(x.min()), float(x.max())
        if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:  # clipped, the picture would be lost
            raise ValueError(f"float frames must hold values in [0, 1], got {low:.4g} to "
                             f"{high:.4g}; scale 8-bit data by 1/255 and 16-bit by 1/65535 "
                             "(or pass the uint8/uint16 array itself)")
    else:
        raise TypeError(f"frame dtype must be uint8, uint16 or float in [0, 1], got {x.dtype}")
    x = x.clamp(0.0, 1.0).permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


def frames_to_l(frames: np.ndarray | Tensor, device: torch.device | str | None = None) -> Tensor:
    """Frames (see :func:`to_rgb_float`) -> Lab L ``(B, 1, H, W)`` float32 in [0, 100]."""
    x = _as_tensor(frames) if isinstance(frames, np.ndarray) else frames
    if isinstance(x, Tensor) and x.dtype == torch.uint8 and x.dim() in (2, 3, 4):
        return _uint8_to_l(x, device)
    return rgb_to_lab(to_rgb_float(frames, device))[:, :1]


# L depends on RGB only through the luminance Y = sum_c w_c * linear(c). For 8-bit input,
# w_c * linear(v) takes 256 values per channel: three table look-ups replace the companding
# pow() and the 3x3 matrix of the full Lab conversion (which also computes a and b, thrown away
# here). Measured on 8 x 720p frames, one thread of a loaded 2-core machine: 0.64 s/frame
# (to_rgb_float + rgb_to_lab) -> 0.16 s/frame, max |dL| 1.5e-5 (checked in
# tests/colorize/test_colorize_api.py).
_Y_WEIGHTS = (0.212671, 0.715160, 0.072169)  # the Y row of colour.py's sRGB -> XYZ matrix
_Y_TABLES: dict[torch.device, Tensor] = {}


def _y_tables(device: torch.device) -> Tensor:
    table = _Y_TABLES.get(device)
    if table is None:
        v = torch.arange(256, dtype=torch.float64) / 255.0
        linear = torch.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)
        table = (torch.tensor(_Y_WEIGHTS, dtype=torch.float64)[:, None] * linear).float()
        table = _Y_TABLES.setdefault(device, table.to(device))  # (3, 256)
    return table


def _uint8_to_l(x: Tensor, device: torch.device | str | None) -> Tensor:
    if x.dim() == 2:
        x = x[None, :, :, None]
    elif x.dim() == 3:
        x = x[None] if x.shape[-1] in (1, 3) else x[..., None]
    if x.shape[-1] not in (1, 3):
        raise ValueError(
            "frame must be HxW (grey), HxWx1, HxWx3 (RGB) or a batch BxHxWx{1,3}, "
            f"got shape {tuple(x.shape)}"
        )
    dev = torch.device(device) if device is not None else x.device
    cpu = _cpu_fused_kernels() if dev.type == "cpu" else None
    if cpu is not None:  # one fused pass per pixel: 95 -> 3.8 ms a 720p frame (csrc/cpu)
        rgb = x.to(dev).contiguous().numpy()
        return torch.from_numpy(cpu.rgb8_to_l(rgb, _y_tables(dev).numpy()))
    # Elsewhere (CUDA) the uint8 frame is what crosses the bus (3 bytes a pixel, not 4 for L)
    # and the look-ups run on the device.
    x = x.to(dev).long()
    tables = _y_tables(dev)
    if x.shape[-1] == 1:
        y = tables.sum(0)[x[..., 0]]  # grey: R = G = B
    else:
        y = tables[0][x[..., 0]] + tables[1][x[..., 1]] + tables[2][x[..., 2]]
    # CIE L* from Y (white Y = 1), with the same constants as colorvid.core.color.rgb_to_lab.
    f = torch.where(y > 0.008856, y.clamp(min=0.008856).pow(1.0 / 3.0), 7.787 * y + 16.0 / 116.0)
    return (116.0 * f - 16.0)[:, None].contiguous()


# Lab -> RGB uint8 for output frames. The sRGB companding (a pow(1/2.4) per value, most of the
# cost of lab_to_rgb) becomes one look-up: linear [0, 1] quantised to 2^16 steps -> uint8. The
# steepest part of the curve (slope 12.92 near 0) moves 12.92 * 255 / 65535 = 0.05 levels per
# step, so results equal round(255 * lab_to_rgb) except where that lies within 0.05 of a .5
# boundary (then off by one level; tests/core/test_frames.py bounds it).
_LUT_STEPS = 65535
_GAMMA_LUTS: dict[torch.device, Tensor] = {}
_RGB_FROM_XYZ: dict[torch.device, Tensor] = {}


def _gamma_lut(device: torch.device) -> Tensor:
    lut = _GAMMA_LUTS.get(device)
    if lut is None:
        v = torch.arange(_LUT_STEPS + 1, dtype=torch.float64) / _LUT_STEPS
        srgb = torch.where(v > 0.0031308, 1.055 * v.pow(1.0 / 2.4) - 0.055, 12.92 * v)
        lut = _GAMMA_LUTS.setdefault(
            device, (srgb * 255.0 + 0.5).floor().clamp(0, 255).to(torch.uint8).to(device))
    return lut


def _rgb_from_xyz(device: torch.device) -> Tensor:
    m = _RGB_FROM_XYZ.get(device)
    if m is None:
        from colorvid.core.color import _WHITE_D65, _XYZ_FROM_RGB

        inv = torch.linalg.inv(torch.tensor(_XYZ_FROM_RGB, dtype=torch.float64))
        # Fold the white point in: columns scale X and Z by Xn, Zn (Y's white is 1).
        m = (inv * torch.tensor(_WHITE_D65, dtype=torch.float64)[None, :]).float()
        m = _RGB_FROM_XYZ.setdefault(device, m.to(device))
    return m


def _cpu_kernels():
    """The C++ module (csrc/cpu), or None where it was not built (the torch path runs then)."""
    try:
        from colorvid.kernels import _cpu
    except ImportError:
        return None
    return _cpu if hasattr(_cpu, "lab_to_rgb8") else None


def _cpu_fused_kernels():
    """The C++ module when it has rgb8_to_l, which came with lab_to_rgb8's chroma upsampling
    (an older build has neither); else None."""
    cpu = _cpu_kernels()
    return cpu if cpu is not None and hasattr(cpu, "rgb8_to_l") else None


def lab_to_frames(L: Tensor, ab: Tensor, *, upsample: bool = False) -> np.ndarray:
    """L ``(B, 1, H, W)`` and ab ``(B, 2, H, W)`` -> RGB uint8 frames ``(B, H, W, 3)``.

    The same maths as :func:`colorvid.core.color.lab_to_rgb` (out-of-gamut colours clipped),
    with the companding done by a table: 267 -> 63-73 ms per 720p frame on one thread here.
    ``upsample=True`` accepts ab at any resolution (a model's, ``(B, 2, h, w)``) and upsamples
    it bilinearly onto L as :meth:`colorvid.Colorizer.upsample_ab` does, in the same pass on the
    CPU (the full-size ab is never stored: 47 -> 28 ms per 720p frame from 256 x 256 chroma; the
    AVX2 build of csrc/cpu/frames.cpp, same bytes: 17.3 -> 3.7 ms on one idle core), on L's
    device elsewhere.
    """
    same_size = ab.dim() == 4 and L.shape[-2:] == ab.shape[-2:]
    if L.dim() != 4 or L.shape[1] != 1 or ab.dim() != 4 or ab.shape[1] != 2 \
            or L.shape[0] != ab.shape[0] or not (same_size or upsample):
        raise ValueError(f"lab_to_frames: L must be (B, 1, H, W) and ab (B, 2, H, W) of the same "
                         f"size, got {tuple(L.shape)} and {tuple(ab.shape)}")
    dev = L.device
    if dev.type == "cpu":
        cpu = _cpu_kernels() if same_size else _cpu_fused_kernels()
        if cpu is not None:  # one fused pass per pixel: ~10x fewer memory passes than below
            planes = L[:, 0].detach().float().contiguous()
            chroma = ab.detach().float().to(dev).contiguous()
            m_np = _rgb_from_xyz(dev).contiguous().numpy()
            return cpu.lab_to_rgb8(planes.numpy(), chroma.numpy(), m_np, _gamma_lut(dev).numpy())
    if not same_size:
        ab = F.interpolate(ab.float().to(dev), size=tuple(L.shape[-2:]), mode="bilinear",
                           align_corners=False)
    ab = ab.float().to(dev)
    fy = (L[:, 0].float() + 16.0) / 116.0  # (B, H, W) planes: channels-last maths was 2x slower
    fx = fy + ab[:, 0] / 500.0
    fz = (fy - ab[:, 1] / 200.0).clamp_(min=0.0)

    def f_inverse(f: Tensor) -> Tensor:
        cube = f.clamp(min=0.2068966)
        return torch.where(f > 0.2068966, cube * cube * cube, (f - 16.0 / 116.0) / 7.787)

    x, y, z = f_inverse(fx), f_inverse(fy), f_inverse(fz)
    m = _rgb_from_xyz(dev).tolist()
    lut = _gamma_lut(dev)
    out = torch.empty((*x.shape, 3), dtype=torch.uint8, device=dev)
    for c in range(3):  # one linear channel at a time, straight into the uint8 output
        linear = x * m[c][0] + y * m[c][1] + z * m[c][2]
        out[..., c] = lut[linear.clamp_(0.0, 1.0).mul_(_LUT_STEPS).add_(0.5).long()]
    return out.cpu().numpy()
