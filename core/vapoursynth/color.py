"""Plane <-> Lab conversions of the VapourSynth filter (:mod:`colorvid.core.vapoursynth.filter`).

Input planes become Lab L (``(H, W)`` float32); predicted ab plus that L become the output
planes. Only chroma is predicted: YUV output keeps the input luma plane untouched (the native
side shares it with the source frame), RGB output is Lab (L, ab) -> sRGB.

Why numpy and not torch: this runs once per frame on each VapourSynth worker thread, and
VapourSynth already keeps every core busy with one frame per thread. torch would fan each
elementwise op out to its OpenMP team: measured here (2 cores, loaded machine), grey -> L of a
320x240 frame took 350 ms with torch's 2 threads against 8 ms with one. numpy runs single-
threaded and releases the GIL inside its loops, so the worker threads convert in parallel.
The maths is that of :mod:`colorvid.core.color` (tests pin the two together).

Conventions (VapourSynth's): integer samples with ``bits`` significant bits; limited range is
16..235 (luma) and 16..240 (chroma) scaled by ``2**(bits-8)``; float luma/RGB is 0..1 and float
chroma is centred on 0. ``_Range`` (R81: 1 full, 0 limited) wins over the legacy
``_ColorRange`` (0 full, 1 limited).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from colorvid.core.color import _EPS, _F_INV_THRESHOLD, _KAPPA, _WHITE_D65, _XYZ_FROM_RGB

__all__ = [
    "CF_GRAY",
    "CF_RGB",
    "CF_YUV",
    "MATRIX_COEFFICIENTS",
    "ST_FLOAT",
    "ST_INTEGER",
    "VideoFormat",
    "decode_format_id",
    "grey_to_l",
    "lab_to_rgb",
    "read_l",
    "resolve_matrix",
    "resolve_range",
    "rgb_to_l",
    "write_planes",
]

# VapourSynth's VSColorFamily and VSSampleType values.
CF_GRAY, CF_RGB, CF_YUV = 1, 2, 3
ST_INTEGER, ST_FLOAT = 0, 1
_FAMILY_NAMES = {CF_GRAY: "GRAY", CF_RGB: "RGB", CF_YUV: "YUV"}

# (Kr, Kb) per _Matrix value (ITU-T H.273). 2 (unspecified) is resolved by resolve_matrix.
MATRIX_COEFFICIENTS: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (= BT.601 625)
    6: (0.299, 0.114),  # SMPTE 170M (= BT.601 525)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
}

_RGB_FROM_XYZ = np.linalg.inv(np.array(_XYZ_FROM_RGB, np.float64)).astype(np.float32)
_Y_FROM_RGB = tuple(float(v) for v in _XYZ_FROM_RGB[1])  # luminance row; sums to 1 (Yn = 1)


@dataclasses.dataclass(frozen=True)
class VideoFormat:
    """A constant VapourSynth video format: family, sample type, bits and subsampling."""

    family: int
    sample_type: int
    bits: int
    sub_w: int = 0
    sub_h: int = 0

    @property
    def name(self) -> str:
        fam = _FAMILY_NAMES.get(self.family, f"family {self.family}")
        kind = "float" if self.sample_type == ST_FLOAT else "int"
        sub = f" subsampling {self.sub_w},{self.sub_h}" if self.family == CF_YUV else ""
        return f"{fam} {kind} {self.bits}-bit{sub}"

    @property
    def num_planes(self) -> int:
        return 1 if self.family == CF_GRAY else 3

    @property
    def numpy_dtype(self) -> np.dtype:
        if self.sample_type == ST_FLOAT:
            return np.dtype(np.float16 if self.bits == 16 else np.float32)
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)

    def problem(self) -> str | None:
        """Why this format cannot be processed, or None when it can."""
        if self.family not in _FAMILY_NAMES:
            return f"colour family {self.family} is not GRAY, YUV or RGB"
        if self.sample_type == ST_FLOAT and self.bits not in (16, 32):
            return f"float samples must be 16 or 32 bits, got {self.bits}"
        if self.sample_type == ST_INTEGER and not 8 <= self.bits <= 16:
            return f"integer samples must have 8 to 16 bits, got {self.bits}"
        if self.sample_type not in (ST_INTEGER, ST_FLOAT):
            return f"unknown sample type {self.sample_type}"
        return None


def decode_format_id(format_id: int) -> VideoFormat:
    """Split a VapourSynth preset format id (``vs.RGB24`` ...) into its fields."""
    return VideoFormat(
        family=(format_id >> 28) & 0xF,
        sample_type=(format_id >> 24) & 0xF,
        bits=(format_id >> 16) & 0xFF,
        sub_w=(format_id >> 8) & 0xFF,
        sub_h=format_id & 0xFF,
    )


def resolve_matrix(props: Mapping[str, int], height: int, who: str, n: int) -> int:
    """The _Matrix of a YUV frame; unspecified -> BT.709 above 576 lines, else BT.601."""
    matrix = int(props.get("_Matrix", 2))
    if matrix == 2:
        # The usual guess of players (mpv, ffmpeg) for untagged video: HD is 709, SD is 601.
        matrix = 1 if height > 576 else 6
    if matrix not in MATRIX_COEFFICIENTS:
        accepted = ", ".join(str(m) for m in sorted(MATRIX_COEFFICIENTS))
        raise ValueError(f"{who}: frame {n} has _Matrix={matrix}, which is not supported; "
                         f"accepted: {accepted} or 2 (unspecified)")
    return matrix


def resolve_range(props: Mapping[str, int], default_full: bool) -> bool:
    """True for full range: ``_Range`` (1 full), else legacy ``_ColorRange`` (0 full)."""
    if "_Range" in props:
        return int(props["_Range"]) == 1
    if "_ColorRange" in props:
        return int(props["_ColorRange"]) == 0
    return default_full


def _plane(buf: Any, stride: int, width: int, height: int, dtype: np.dtype) -> np.ndarray:
    """A (height, width) numpy view of a plane buffer whose rows are ``stride`` bytes apart."""
    row = stride // dtype.itemsize
    return np.frombuffer(buf, dtype=dtype, count=row * height).reshape(height, row)[:, :width]


def _to_unit(a: np.ndarray, fmt: VideoFormat, full: bool, chroma: bool) -> np.ndarray:
    """Samples -> float32: luma/RGB in 0..1, chroma centred on 0 (copies out of the buffer)."""
    x = a.astype(np.float32)  # the copy: nothing keeps a view of the frame after this
    if fmt.sample_type == ST_FLOAT:
        return x
    shift = float(1 << (fmt.bits - 8))
    if full:
        peak = float((1 << fmt.bits) - 1)
        return (x - float(1 << (fmt.bits - 1))) / peak if chroma else x / peak
    if chroma:
        return (x - 128.0 * shift) / (224.0 * shift)
    return (x - 16.0 * shift) / (219.0 * shift)


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0.04045, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    high = 1.055 * np.maximum(x, 0.0031308) ** (1.0 / 2.4) - 0.055
    return np.where(x > 0.0031308, high, x * 12.92)


def _l_of_luminance(y: np.ndarray) -> np.ndarray:
    """Relative luminance Y (white = 1) -> L = 116 f(Y) - 16."""
    f = np.where(y > _EPS, np.cbrt(np.maximum(y, _EPS)), _KAPPA * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


def grey_to_l(y: np.ndarray) -> np.ndarray:
    """Gamma-encoded grey (R = G = B = y in 0..1) -> Lab L in 0..100 (float32).

    ``rgb_to_lab`` on a grey pixel, without the three-channel detour: the luminance row of the
    sRGB matrix sums to 1, so Y is the decoded grey itself.
    """
    return _l_of_luminance(_srgb_to_linear(np.clip(y, 0.0, 1.0, dtype=np.float32)))


def rgb_to_l(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(3, H, W)`` in 0..1 -> Lab L (only L: it depends on luminance alone)."""
    lin = _srgb_to_linear(np.clip(rgb, 0.0, 1.0))
    kr, kg, kb = _Y_FROM_RGB
    return _l_of_luminance(kr * lin[0] + kg * lin[1] + kb * lin[2])


def lab_to_rgb(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Lab (L ``(H, W)``, ab ``(2, H, W)``) -> sRGB ``(3, H, W)`` float32 clipped to 0..1.

    As ``colorvid.core.color.lab_to_rgb``: a negative Z (very saturated blue-yellow) is clamped.
    """
    fy = (L + 16.0) / 116.0
    f = np.stack((ab[0] / 500.0 + fy, fy, np.maximum(fy - ab[1] / 200.0, 0.0)))
    t = np.where(f > _F_INV_THRESHOLD, f * f * f, (f - 16.0 / 116.0) / _KAPPA)
    xyz = t * np.asarray(_WHITE_D65, np.float32)[:, None, None]
    lin = np.einsum("ij,jhw->ihw", _RGB_FROM_XYZ, xyz.astype(np.float32))
    return np.clip(_linear_to_srgb(lin), 0.0, 1.0).astype(np.float32)


def read_l(planes: Sequence[Any], strides: Sequence[int], fmt: VideoFormat, width: int,
           height: int, full: bool) -> np.ndarray:
    """Input planes of one frame -> L ``(H, W)`` float32.

    GRAY and YUV use the luma plane as grey; RGB uses the L of the colour pixel.
    """
    dtype = fmt.numpy_dtype
    if fmt.family == CF_RGB:
        rgb = np.stack([_to_unit(_plane(planes[p], strides[p], width, height, dtype), fmt, True,
                                 False) for p in range(3)])
        return rgb_to_l(rgb)
    return grey_to_l(_to_unit(_plane(planes[0], strides[0], width, height, dtype), fmt, full,
                              False))


def _quantise(x: np.ndarray, fmt: VideoFormat, full: bool, chroma: bool) -> np.ndarray:
    """float (luma/RGB 0..1, chroma centred on 0) -> samples of ``fmt``."""
    if fmt.sample_type == ST_FLOAT:
        return x.astype(fmt.numpy_dtype)
    shift = float(1 << (fmt.bits - 8))
    peak = (1 << fmt.bits) - 1
    if full:
        v = x * peak + (1 << (fmt.bits - 1)) if chroma else x * peak
    else:
        v = x * (224.0 * shift) + 128.0 * shift if chroma else x * (219.0 * shift) + 16.0 * shift
    return np.clip(np.rint(v), 0, peak).astype(fmt.numpy_dtype)


def write_planes(L: np.ndarray, ab: np.ndarray, fmt: VideoFormat, width: int, height: int,
                 full: bool, matrix: int | None, dst: Sequence[tuple[int, Any, int]]) -> None:
    """Lab (L ``(H, W)``, ab ``(2, H, W)``) -> the planes listed in ``dst``.

    ``dst`` holds ``(plane index, writable buffer, stride)``. RGB output gets all three planes;
    YUV output gets U and V only (Y is the input's). Chroma is averaged over each subsampling
    block (a box filter, i.e. centred siting; good enough for predicted colour).
    """
    rgb = lab_to_rgb(L, ab)
    out_dtype = fmt.numpy_dtype
    if fmt.family == CF_RGB:
        for plane, buf, stride in dst:
            _plane(buf, stride, width, height, out_dtype)[...] = _quantise(rgb[plane], fmt, True,
                                                                           False)
        return
    assert matrix is not None
    kr, kb = MATRIX_COEFFICIENTS[matrix]
    y = kr * rgb[0] + (1.0 - kr - kb) * rgb[1] + kb * rgb[2]
    chroma = np.stack(((rgb[2] - y) / (2.0 * (1.0 - kb)), (rgb[0] - y) / (2.0 * (1.0 - kr))))
    sw, sh = 1 << fmt.sub_w, 1 << fmt.sub_h
    cw, ch = width >> fmt.sub_w, height >> fmt.sub_h
    if sw > 1 or sh > 1:
        chroma = chroma.reshape(2, ch, sh, cw, sw).mean(axis=(2, 4))
    for plane, buf, stride in dst:
        _plane(buf, stride, cw, ch, out_dtype)[...] = _quantise(chroma[plane - 1], fmt, full,
                                                                True)
