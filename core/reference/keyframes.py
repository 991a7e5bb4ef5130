"""Keyframes out: one grey frame per shot, named by its frame number, for a colourist to paint.

The shots are those ``colorvid colorize`` sees (:mod:`colorvid.core.video.scenecut`). Each
shot's keyframe is its first frame (``pick="first"``) or its sharpest (``pick="sharpest"``: the
highest variance of the Laplacian of the luma, the usual focus measure; motion blur and
dissolves score low). The files are named like the references ``colorvid colorize
--reference`` reads back (``000120.png``), so painting them in place and passing the folder is
the whole round trip. ``colour=`` writes the automatic colorizer's colour for the same frames
instead of grey, a starting point to correct rather than paint from scratch.

>>> from colorvid.core.reference.keyframes import pick_keyframes
>>> import numpy as np
>>> frames = [np.full((8, 8), v, np.uint8) for v in (10, 10, 200, 200)]
>>> [k.number for k in pick_keyframes(frames)]
[0, 2]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Literal

import cv2
import numpy as np
import torch

from colorvid.core.frames import frames_to_l, lab_to_frames
from colorvid.core.video.pipeline import VideoColorizer
from colorvid.core.video.scenecut import DEFAULT_THRESHOLD, SceneCutDetector

__all__ = ["PICKS", "Keyframe", "Pick", "grey_frame", "keyframe_name", "pick_keyframes",
           "sharpness"]

Pick = Literal["first", "sharpest"]
PICKS: tuple[str, ...] = ("first", "sharpest")
NUMBER_DIGITS = 6  # 000120.png: a day of 25 fps footage fits in 7, six keeps names short


@dataclasses.dataclass
class Keyframe:
    """A shot's keyframe: its frame number, the grey frame RGB uint8 ``(H, W, 3)``, its L."""

    number: int
    grey: np.ndarray
    L: torch.Tensor  # (1, 1, H, W)
    sharpness: float


def keyframe_name(number: int, suffix: str = ".png") -> str:
    """``120 -> "000120.png"``: the name ``colorvid colorize --reference`` reads back."""
    return f"{number:0{NUMBER_DIGITS}d}{suffix}"


def sharpness(L: torch.Tensor) -> float:
    """Variance of the Laplacian of the luma ``(1, 1, H, W)`` (higher: sharper)."""
    plane = np.ascontiguousarray(L[0, 0].numpy(), dtype=np.float32)
    return float(cv2.Laplacian(plane, cv2.CV_32F).var())


def grey_frame(L: torch.Tensor) -> np.ndarray:
    """L ``(1, 1, H, W)`` -> the grey RGB uint8 frame ``(H, W, 3)`` with that luma."""
    return lab_to_frames(L, torch.zeros(1, 2, 1, 1), upsample=True)[0]


def pick_keyframes(frames: Iterable[np.ndarray | torch.Tensor], pick: Pick = "first", *,
                   scene_threshold: float = DEFAULT_THRESHOLD) -> Iterator[Keyframe]:
    """One :class:`Keyframe` per shot, in order, as the shots end (memory: one frame)."""
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {', '.join(PICKS)}, got {pick!r}")
    detector = SceneCutDetector(scene_threshold)
    best: Keyframe | None = None
    size = None
    for n, frame in enumerate(frames):
        L = frames_to_l(frame, "cpu")
        if L.shape != size:  # the first frame, or a new frame size: a new shot
            cut = size is not None
            detector.reset()
            detector(L)
            size = L.shape
        else:
            cut = bool(detector(L)[0])
        if cut and best is not None:
            yield best
            best = None
        score = sharpness(L) if pick == "sharpest" else 0.0
        if best is None or score > best.sharpness:
            best = Keyframe(n, grey_frame(L), L, score)
    if best is not None:
        yield best


def coloured(keyframes: list[Keyframe], colorizer: VideoColorizer) -> list[np.ndarray]:
    """The automatic colour of each keyframe (each on its own: keyframes are far apart)."""
    return [colorizer.colorize(k.grey) for k in keyframes]
