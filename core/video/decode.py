"""Video decoding with PyAV: probing and frame iteration (encoding lives beside it as it grows).

>>> info = probe("clip.mp4")  # doctest: +SKIP
>>> for index, rgb in read_frames("clip.mp4", stride=5):  # doctest: +SKIP
...     ...  # rgb: numpy uint8 (H, W, 3)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

__all__ = ["VideoError", "VideoInfo", "apply_display_matrix", "display_matrix", "probe",
           "read_frames"]


_ONE = 1 << 16  # 1.0 in the 16.16 fixed point of a display matrix


class VideoError(Exception):
    """A video could not be opened or decoded; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    frame_rate: Fraction | None
    time_base: Fraction | None
    frames: int  # as the container declares it; 0 when unknown
    duration: float | None  # seconds, None when unknown
    has_audio: bool


def _open(path: str | Path) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise VideoError(f"{p}: no such file")
    try:
        return av.open(str(p))
    except av.error.FFmpegError as e:
        raise VideoError(f"{p}: cannot open as a video ({e})") from e


def _frame_matrix(frame: Any) -> tuple[int, ...] | None:
    """A decoded frame's display matrix (9 int32, FFmpeg's layout), None when it has none."""
    side = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    if side is None:
        return None
    matrix = tuple(int(v) for v in np.frombuffer(bytes(side), "<i4"))
    return None if matrix[:2] == (_ONE, 0) and matrix[3:5] == (0, _ONE) else matrix


def display_matrix(path: str | Path) -> tuple[int, ...] | None:
    """How the first video stream of ``path`` is to be shown turned or mirrored (a phone's
    rotation), as the 9 int32 of FFmpeg's display matrix; None when upright or unknown."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            for frame in c.decode(c.streams.video[0]):
                return _frame_matrix(frame)
    except (av.error.FFmpegError, OSError, ValueError):
        return None  # the caller's own open reports an unreadable file
    return None


def apply_display_matrix(rgb: np.ndarray, matrix: tuple[int, ...] | None) -> np.ndarray:
    """Turn/mirror ``rgb`` ``(H, W, C)`` as the display matrix says (quarter turns and flips;
    other angles are left as they are). A point (x, y) is shown at (a x + c y, b x + d y)."""
    if matrix is None:
        return rgb
    a, b, _, c, d = (round(v / _ONE) for v in matrix[:5])
    if {a, b, c, d} - {-1, 0, 1} or a * d - b * c not in (-1, 1):
        return rgb
    h, w = rgb.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    X, Y = a * xs + c * ys, b * xs + d * ys
    X -= X.min()
    Y -= Y.min()
    out = np.empty((int(Y.max()) + 1, int(X.max()) + 1, *rgb.shape[2:]), rgb.dtype)
    out[Y, X] = rgb
    return out


def probe(path: str | Path) -> VideoInfo:
    """Read the first video stream's geometry, rate and length without decoding frames."""
    with _open(path) as c:
        if not c.streams.video:
            raise VideoError(f"{path}: no video stream")
        s = c.streams.video[0]
        duration = None
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / av.time_base
        return VideoInfo(
            path=str(path),
            width=s.codec_context.width,
            height=s.codec_context.height,
            frame_rate=s.average_rate or s.guessed_rate,
            time_base=s.time_base,
            frames=int(s.frames or 0),
            duration=duration,
            has_audio=bool(c.streams.audio),
        )


def read_frames(
    path: str | Path, *, start: int = 0, count: int | None = None, stride: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode the first video stream: yields ``(frame_index, rgb uint8 (H, W, 3))``.

    Frames ``start, start + stride, ...`` are yielded, at most ``count`` of them, turned as the
    stream's display matrix says (a phone video shot upright comes out upright). Decoding streams
    (one frame in memory at a time). A decode error raises :class:`VideoError` with the index.
    """
    if stride < 1 or start < 0 or (count is not None and count < 0):
        raise ValueError("read_frames: start >= 0, stride >= 1 and count >= 0 (or None) required")
    with _open(path) as c:
        if not c.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        yielded = 0
        index = 0
        try:
            for frame in c.decode(stream):
                if count is not None and yielded >= count:
                    return
                if index >= start and (index - start) % stride == 0:
                    yield index, apply_display_matrix(frame.to_ndarray(format="rgb24"),
                                                      _frame_matrix(frame))
                    yielded += 1
                index += 1
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: decode error at frame {index}: {e}") from e
