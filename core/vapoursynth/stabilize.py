"""``stabilize(clip)``: the temporal chroma stabiliser as a VapourSynth filter, for the output of
any colorizer (colorvid's ``core.colorvid.*`` or another one).

>>> import vapoursynth as vs  # doctest: +SKIP
>>> from colorvid.core.vapoursynth.stabilize import stabilize  # doctest: +SKIP
>>> colour = vs.core.colorvid.Zhang(grey)  # doctest: +SKIP
>>> steady = stabilize(colour, strength=0.95, window=8)  # doctest: +SKIP

Frame n is the forward pass of :mod:`colorvid.core.video.stabilize` run from a fresh start over
frames n-window+1..n, cut at the latest scene change (``_SceneChangePrev`` on a frame, or
``_SceneChangeNext`` on the one before), as the ``lrcn`` filter's window: it never depends on
the order frames are requested in, so previews and seeks give the frames a render gives.

Cost per output frame (linear playback): one new pair of DIS flows (about 11 ms of CPU at
320x180 on the 2-core machine) and one colour conversion, both cached per frame (``2 * window``
frames kept), and ``window - 1`` warp-and-blend steps on the working grid (about 5 ms each; the
step timing: ``_step`` of :mod:`colorvid.core.video.stabilize` on random 320x180 planes). The
window bounds the smoothing: the oldest frame keeps ``strength ** (window - 1)`` of its weight
in the history (0.95, 8 frames: 0.70), so a longer window is steadier and costs more steps;
the command line's bidirectional pass is steadier still, where a whole file is available.

Reads: RGB (any depth) or YUV clips with a constant format. YUV colour is read with the
frame's ``_Matrix`` and ``_Range`` (chroma upsampled bilinearly); the output has the clip's
format and frame properties. YUV: the luma plane is the input's, bit for bit, and only U and V
are written; RGB: the Lab L of each pixel is kept (up to the last bit of rounding), only its
a, b change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import cv2
import numpy as np

from colorvid.core.vapoursynth.color import (
    CF_RGB,
    CF_YUV,
    MATRIX_COEFFICIENTS,
    VideoFormat,
    _to_unit,
    read_l,
    resolve_matrix,
    resolve_range,
    write_planes,
)
from colorvid.core.video.flow import FlowEstimator
from colorvid.core.video.stabilize import (
    DEFAULT_MAX_SIDE,
    DEFAULT_STRENGTH,
    StabilizeOptions,
    stabilize_window,
    to_working_grid,
)

__all__ = ["DEFAULT_WINDOW", "MAX_WINDOW", "StabilizeError", "stabilize"]

WHO = "colorvid.stabilize"
DEFAULT_WINDOW = 8  # 0.95 ** 7 = 0.70 of the oldest frame kept; 7 blend steps a frame
MAX_WINDOW = 64


class StabilizeError(ValueError):
    """A user-facing error; the message starts with ``colorvid.stabilize: ``."""


def _rgb_to_lab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sRGB ``(3, H, W)`` in 0..1 -> (L ``(H, W)``, ab ``(2, H, W)``), float32 (numpy: runs on
    VapourSynth's worker threads, see :mod:`colorvid.core.vapoursynth.color`)."""
    from colorvid.core.color import _EPS, _KAPPA, _WHITE_D65, _XYZ_FROM_RGB
    from colorvid.core.vapoursynth.color import _srgb_to_linear

    lin = _srgb_to_linear(np.clip(rgb, 0.0, 1.0)).astype(np.float32)
    xyz = np.einsum("ij,jhw->ihw", np.asarray(_XYZ_FROM_RGB, np.float32), lin)
    xyz /= np.asarray(_WHITE_D65, np.float32)[:, None, None]
    f = np.where(xyz > _EPS, np.cbrt(np.maximum(xyz, _EPS)), _KAPPA * xyz + 16.0 / 116.0)
    L = 116.0 * f[1] - 16.0
    ab = np.stack((500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])))
    return L.astype(np.float32), ab.astype(np.float32)


def _frame_rgb(frame: Any, fmt: VideoFormat, n: int) -> np.ndarray:
    """A colour frame -> sRGB ``(3, H, W)`` float32 in 0..1 (YUV: the frame's matrix and range,
    chroma upsampled bilinearly)."""
    planes = [np.asarray(frame[p]) for p in range(3)]
    if fmt.family == CF_RGB:
        return np.stack([_to_unit(p, fmt, True, False) for p in planes])
    props = frame.props
    full = resolve_range(props, default_full=False)
    h, w = planes[0].shape
    y = _to_unit(planes[0], fmt, full, False)
    u, v = (cv2.resize(_to_unit(p, fmt, full, True), (w, h), interpolation=cv2.INTER_LINEAR)
            for p in planes[1:])
    kr, kb = MATRIX_COEFFICIENTS[resolve_matrix(props, h, WHO, n)]
    r = y + 2.0 * (1.0 - kr) * v
    b = y + 2.0 * (1.0 - kb) * u
    g = (y - kr * r - kb * b) / (1.0 - kr - kb)
    return np.stack((r, g, b))


class _Caches:
    """Per-frame working-grid colour and flows, shared by VapourSynth's worker threads."""

    def __init__(self, size: int, preset: str) -> None:
        self.size = size
        self.preset = preset
        self.frames: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.flows: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.lock = threading.Lock()
        self.local = threading.local()  # one FlowEstimator per thread (not thread-safe)

    def get(self, table: OrderedDict, key: int) -> Any:
        with self.lock:
            value = table.get(key)
            if value is not None:
                table.move_to_end(key)
            return value

    def put(self, table: OrderedDict, key: int, value: Any) -> None:
        with self.lock:
            table[key] = value
            table.move_to_end(key)
            while len(table) > self.size:
                table.popitem(last=False)

    def estimator(self) -> FlowEstimator:
        est = getattr(self.local, "est", None)
        if est is None:
            est = self.local.est = FlowEstimator(self.preset)  # type: ignore[arg-type]
        return est


def _window_start(props: list[Any]) -> int:
    """Position in ``props`` (oldest first) of the first frame of the current scene."""
    start = 0
    for k in range(1, len(props)):
        if props[k].get("_SceneChangePrev") or props[k - 1].get("_SceneChangeNext"):
            start = k
    return start


def stabilize(clip: Any, *, strength: float = DEFAULT_STRENGTH, window: int = DEFAULT_WINDOW,
              max_side: int = DEFAULT_MAX_SIDE, preset: str = "medium") -> Any:
    """Remove colour flicker from a colorized clip (see the module doc).

    Args:
        clip: RGB or YUV, constant format and size (e.g. ``core.colorvid.Zhang(grey)``).
        strength: share of the history on a confident still pixel, 0 to 0.98.
        window: frames n-window+1..n make frame n (1 to 64; 1 returns the colour unchanged).
        max_side: the working grid's longest side (flow and blending), pixels.
        preset: DIS flow preset: ``medium``, ``fast`` or ``ultrafast``.
    """
    import vapoursynth as vs

    if not isinstance(clip, vs.VideoNode):
        raise StabilizeError(f"{WHO}: clip must be a VideoNode, got {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or clip.width == 0 or clip.height == 0:
        raise StabilizeError(f"{WHO}: clip must have a constant format and frame size")
    if fmt.color_family not in (vs.RGB, vs.YUV):
        raise StabilizeError(f"{WHO}: clip must be RGB or YUV (colorized), got "
                             f"{fmt.color_family.name}")
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW:
        raise StabilizeError(f"{WHO}: window must be an integer from 1 to {MAX_WINDOW}, got "
                             f"{window!r}")
    try:
        StabilizeOptions(strength=strength, bidirectional=False, max_side=max_side,
                         preset=preset)  # type: ignore[arg-type]
    except ValueError as e:
        raise StabilizeError(f"{WHO}: {str(e).removeprefix('stabilize: ')}") from None
    src = VideoFormat(int(fmt.color_family), int(fmt.sample_type), fmt.bits_per_sample,
                      fmt.subsampling_w, fmt.subsampling_h)
    if (problem := src.problem()) is not None:
        raise StabilizeError(f"{WHO}: clip format {fmt.name} is not usable: {problem}")
    if window == 1 or strength == 0:
        return clip
    # frame n of shifted[k] is frame n-k (frame 0 where n < k): the window, newest first
    length = clip.num_frames
    shifted = [clip] + [clip[0] * k + clip[: length - k] if k < length else clip[0] * length
                        for k in range(1, window)]
    caches = _Caches(2 * window + 8, preset)
    width, height = clip.width, clip.height
    strength = float(strength)

    def colour(i: int, frame: Any) -> tuple[np.ndarray, np.ndarray]:
        got = caches.get(caches.frames, i)
        if got is None:
            L, ab = _rgb_to_lab(_frame_rgb(frame, src, i))
            got = to_working_grid(L, ab, max_side)
            caches.put(caches.frames, i, got)
        return got

    def flows(i: int, L_cur: np.ndarray, L_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        got = caches.get(caches.flows, i)
        if got is None:
            got = caches.estimator().pair(L_cur, L_prev)
            caches.put(caches.flows, i, got)
        return got

    def select(n: int, f: list[Any]) -> Any:
        count = min(window, n + 1)
        newest_first = f[:count]
        frames = newest_first[::-1]  # oldest first: frames n-count+1..n
        start = _window_start([fr.props for fr in frames])
        index = list(range(n - count + 1, n + 1))[start:]
        frames = frames[start:]
        grid = [colour(i, fr) for i, fr in zip(index, frames, strict=True)]
        Ls, abs_ = [g[0] for g in grid], [g[1] for g in grid]
        pairs = [None] + [flows(index[k], Ls[k], Ls[k - 1]) for k in range(1, len(index))]
        ab = stabilize_window(Ls, abs_, pairs, strength)
        out = f[window].copy()
        _write(out, ab)
        return out

    def _write(out: Any, ab_grid: np.ndarray) -> None:
        props = out.props
        full = resolve_range(props, default_full=src.family != CF_YUV)
        planes = [np.ascontiguousarray(np.asarray(out[p])) for p in range(3)]
        L = read_l(planes, [p.strides[0] for p in planes], src, width, height, full)
        ab = np.stack([cv2.resize(p, (width, height), interpolation=cv2.INTER_LINEAR)
                       for p in ab_grid])
        matrix = resolve_matrix(props, height, WHO, 0) if src.family == CF_YUV else None
        which = range(3) if src.family == CF_RGB else (1, 2)  # YUV: Y stays the input's
        dst = [(p, planes[p], planes[p].strides[0]) for p in which]
        write_planes(L, ab, src, width, height, full, matrix, dst)
        for p in which:
            np.asarray(out[p])[...] = planes[p]

    return clip.std.ModifyFrame(clips=[*shifted, clip], selector=select)


