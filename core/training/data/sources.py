"""Finding, splitting and decoding the media a model trains on.

A training *clip* is a video file or an image sequence (a folder of numbered frames, e.g. the
DAVIS layout ``JPEGImages/480p/<sequence>/00000.jpg``, or a printf pattern ``frames/%05d.png``;
rules in :mod:`colorvid.core.video.images`). Sequences are taken frame by frame: their frames
carry no timestamps, so ``fps`` resampling does not apply to them. 16-bit frames are reduced to
8 bits (what the training cache and crops hold).
"""

from __future__ import annotations

import dataclasses
import random
import warnings
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "MediaError",
    "MediaWarning",
    "Split",
    "decode_resampled",
    "find_clips",
    "find_media",
    "load_image",
    "split_by_video",
]

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".y4m", ".mpg", ".ts"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


class MediaError(Exception):
    """A file could not be used; the message names it."""


class MediaWarning(UserWarning):
    """A file was skipped (corrupt, unreadable, no video stream)."""


def find_media(
    paths: Iterable[str | Path], suffixes: frozenset[str] = VIDEO_SUFFIXES
) -> list[Path]:
    """Files with the given suffixes under each path (a file or a folder, searched recursively),
    sorted and de-duplicated. A path that does not exist is an error.
    """
    found: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise MediaError(f"{p}: no such file or folder")
        if p.is_file():
            if p.suffix.lower() in suffixes:
                found.add(p.resolve())
            else:
                raise MediaError(f"{p}: not a media file (accepted: {', '.join(sorted(suffixes))})")
        else:
            found.update(f.resolve() for f in p.rglob("*") if f.suffix.lower() in suffixes)
    return sorted(found)


def _is_sequence_source(path: Path) -> bool:
    from colorvid.core.video.images import is_pattern
    return is_pattern(path) or path.is_dir()


def find_clips(paths: Iterable[str | Path]) -> list[Path]:
    """The training clips under each path: video files, and image sequences (folders whose images
    are all numbered, searched recursively, or a printf pattern given as it is), sorted and
    de-duplicated. A folder of unnumbered images is skipped with a :class:`MediaWarning` (those
    are stills: train on them with ``--images``); a path that does not exist is an error.
    """
    from colorvid.core.video.decode import VideoError
    from colorvid.core.video.images import is_image_file, is_pattern, open_images

    found: set[Path] = set()
    for p in map(Path, paths):
        if is_pattern(p):
            if not p.parent.is_dir():
                raise MediaError(f"{p}: folder {p.parent} does not exist")
            found.add(p.parent.resolve() / p.name)
            continue
        if not p.exists():
            raise MediaError(f"{p}: no such file or folder")
        if p.is_file():
            if p.suffix.lower() in VIDEO_SUFFIXES:
                found.add(p.resolve())
                continue
            raise MediaError(f"{p}: not a video (accepted: {', '.join(sorted(VIDEO_SUFFIXES))}, "
                             "or a folder / printf pattern of numbered frames)")
        for folder in [p, *sorted(d for d in p.rglob("*") if d.is_dir())]:
            files = [f for f in folder.iterdir() if f.is_file()]
            found.update(f.resolve() for f in files if f.suffix.lower() in VIDEO_SUFFIXES)
            if not any(is_image_file(f) for f in files):
                continue
            try:  # the same rules as colorize and eval apply (core/video/images.py)
                kind = open_images(folder).kind
            except VideoError as e:
                warnings.warn(f"skipping {e}", MediaWarning, stacklevel=2)
                continue
            if kind == "sequence":
                found.add(folder.resolve())
            else:
                warnings.warn(f"skipping {folder}: its images are not all numbered frames (a "
                              "folder of stills; train on photos with --images)", MediaWarning,
                              stacklevel=2)
    return sorted(found)


@dataclasses.dataclass(frozen=True)
class Split:
    train: list[Path]
    val: list[Path]
    test: list[Path]


def split_by_video(
    videos: Iterable[Path], seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> Split:
    """Split whole videos (never frames) into train/val/test with a fixed seed.

    Deterministic for a given set of files and seed, whatever order they are given in. With three
    or more videos, val and test each get at least one, so no split is silently empty.
    """
    items = sorted(Path(v) for v in videos)
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    random.Random(seed).shuffle(items)
    n = len(items)
    n_val = round(n * fractions[1])
    n_test = round(n * fractions[2])
    if n >= 3:
        n_val = max(n_val, 1 if fractions[1] > 0 else 0)
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
    n_train = n - n_val - n_test
    return Split(items[:n_train], items[n_train : n_train + n_val], items[n_train + n_val :])


def _resize_short_side(rgb: np.ndarray, short_side: int | None) -> np.ndarray:
    if short_side is None:
        return rgb
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    if abs(scale - 1.0) < 1e-6:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def decode_resampled(
    path: str | Path, fps: float = 25.0, short_side: int | None = None,
    max_frames: int | None = None,
) -> Iterator[np.ndarray]:
    """Decode a video's first stream at a fixed frame rate: RGB uint8 ``(H, W, 3)`` frames.

    Output frame k shows the source frame on screen at time k / fps (the latest one whose
    timestamp is <= that time), so 30 fps footage resampled to 25 fps drops frames evenly and
    12 fps footage repeats them. ``short_side`` rescales (bicubic) so that the shorter side has
    that many pixels. Raises :class:`MediaError` naming the file when it cannot be decoded.
    An image sequence (folder or printf pattern) gives its frames in order, one each.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    if _is_sequence_source(path):
        yield from _sequence_frames(path, short_side, max_frames)
        return
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: cannot open ({e})") from e
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 1)
        step = Fraction(fps).limit_denominator(1_000_000) ** -1
        # How long the last source frame stays on screen: one source frame period.
        rate = stream.average_rate or stream.guessed_rate
        source_step = Fraction(rate) ** -1 if rate else step
        next_time: Fraction | None = None  # the output time still to be filled
        previous: np.ndarray | None = None
        previous_time: Fraction | None = None
        emitted = 0
        decoded = 0

        def done() -> bool:
            return max_frames is not None and emitted >= max_frames

        try:
            for frame in container.decode(stream):
                decoded += 1
                rgb = _resize_short_side(frame.to_ndarray(format="rgb24"), short_side)
                if frame.pts is None:  # no timestamps: take frames as they come
                    yield rgb
                    emitted += 1
                    if done():
                        return
                    continue
                t = Fraction(frame.pts) * time_base
                if next_time is None:
                    next_time = t
                # Output times before this frame's timestamp show the previous frame.
                while previous is not None and next_time < t:
                    yield previous
                    emitted += 1
                    next_time += step
                    if done():
                        return
                previous, previous_time = rgb, t
            if previous is not None and next_time is not None and previous_time is not None:
                while next_time < previous_time + source_step and not done():
                    yield previous
                    emitted += 1
                    next_time += step
        except av.error.FFmpegError as e:
            raise MediaError(f"{path}: decode error after frame {decoded}: {e}") from e
    if decoded == 0:
        raise MediaError(f"{path}: no decodable frames")


def _sequence_frames(path: Path, short_side: int | None, max_frames: int | None
                     ) -> Iterator[np.ndarray]:
    from colorvid.core.video.decode import VideoError
    from colorvid.core.video.images import open_images, to_8bit

    try:
        source = open_images(path)
        if source.kind != "sequence":
            raise MediaError(f"{path}: not an image sequence (its images are not numbered "
                             "frames)")
        for message in source.warnings:
            warnings.warn(message, MediaWarning, stacklevel=3)
        for k, rgb in enumerate(source.frames()):
            if max_frames is not None and k >= max_frames:
                return
            yield _resize_short_side(np.ascontiguousarray(to_8bit(rgb)), short_side)
    except VideoError as e:
        raise MediaError(str(e)) from e


def load_image(path: str | Path, short_side: int | None = None) -> np.ndarray:
    """An image file as RGB uint8 ``(H, W, 3)``; MediaError names the file when unreadable."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise MediaError(f"{path}: cannot read image ({e})") from e
    return _resize_short_side(rgb, short_side)


def warn_skipped(error: Exception) -> None:
    """Report a skipped file (by name) without stopping the run."""
    warnings.warn(f"skipping {error}", MediaWarning, stacklevel=2)
