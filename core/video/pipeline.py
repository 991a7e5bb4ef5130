"""The streaming colorization API: what the CLI, an NLE or a render pipeline embeds.

>>> import colorvid
>>> vc = colorvid.open_colorizer("grey")          # weights=..., device="cuda", batch=8
>>> import numpy as np
>>> vc.colorize(np.zeros((4, 6, 3), np.uint8)).shape   # one frame: RGB uint8 (H, W, 3)
(4, 6, 3)
>>> frames = (np.full((4, 6), 128, np.uint8) for _ in range(10))
>>> sum(1 for _ in vc.stream(frames))            # an iterator in, colorized frames out, in order
10

Frames in: numpy or torch, ``(H, W)`` / ``(H, W, 1)`` grey or ``(H, W, 3)`` RGB, uint8, uint16 or
float in [0, 1]; colour frames are treated as grey (only their L is used, and kept exactly).
Frames out: numpy RGB uint8 ``(H, W, 3)``.

:meth:`VideoColorizer.stream` batches frames (``batch`` at a time, so memory is bounded whatever
the length) and, for temporal models, carries the model state from frame to frame, resetting it
at scene cuts (:mod:`colorvid.core.video.scenecut`). :meth:`VideoColorizer.colorize` treats each
frame on its own (fresh state), so random access (seeking in a previewer) gives repeatable
results.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from colorvid.core.api import create_colorizer
from colorvid.core.frames import frames_to_l, lab_to_frames
from colorvid.core.host import get_host
from colorvid.core.interfaces import Colorizer
from colorvid.core.video.decode import probe
from colorvid.core.video.progress import Progress, ProgressMode
from colorvid.core.video.scenecut import DEFAULT_THRESHOLD, SceneCutDetector
from colorvid.core.video.transcode import PIPE, Transcoder, TranscodeReport

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MODEL",
    "ColorizeError",
    "VideoColorizer",
    "colorize_video",
    "open_colorizer",
    "resolve_device",
]

DEFAULT_MODEL = "lrcn"  # the paper's video model; `colorvid colorize --model` defaults to it
# 8 frames: enough to keep a CPU/GPU busy on 224-256 px renders, 8 x 1080p L planes are 66 MB.
DEFAULT_BATCH = 8


class ColorizeError(RuntimeError):
    """A colorizer or video could not be used; the message says which and why (one line)."""


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """Parse and check a device: ``None`` (the model's default), ``cpu``, ``cuda``, ``cuda:N``."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ColorizeError(f"device {device!r}: not a torch device; accepted: cpu, cuda, "
                            "cuda:N") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ColorizeError(f"device {device!r}: CUDA is not available on this machine "
                                "(use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ColorizeError(f"device {device!r}: only {torch.cuda.device_count()} CUDA "
                                "device(s) present")
    elif dev.type != "cpu":
        raise ColorizeError(f"device {device!r}: unsupported; accepted: cpu, cuda, cuda:N")
    return dev


def open_colorizer(name: str = DEFAULT_MODEL, weights: str | Path | None = None,
                   device: str | torch.device | None = None, *, batch: int = DEFAULT_BATCH,
                   render_size: int | None = None,
                   scene_threshold: float = DEFAULT_THRESHOLD, **options: Any) -> VideoColorizer:
    """Create the registered colorizer ``name`` and wrap it for frames and frame streams.

    Args:
        name: a registered colorizer (``colorvid plugins`` lists them).
        weights: a weights file for the model (else the model's default weights).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (else the model's default).
        batch: frames run through the model together in :meth:`VideoColorizer.stream`.
        render_size: override the model's internal resolution (square side in pixels).
        scene_threshold: scene-cut threshold for temporal models (see colorvid.core.video.scenecut).
        **options: passed to the colorizer's factory (e.g. ``preset=...``).

    Raises:
        ColorizeError: unknown name, unusable device, or the factory failed (message says why).
    """
    dev = resolve_device(device)
    if weights is not None:
        options["weights"] = str(weights)
    if dev is not None:
        options["device"] = str(dev)
    try:
        get_host().entry("colorizer", name)
    except KeyError as e:
        raise ColorizeError(str(e.args[0]) if e.args else f"unknown colorizer {name!r}") from e
    try:
        model = create_colorizer(name, **options)
    except Exception as e:  # noqa: BLE001 - any factory failure is reported as one line
        raise ColorizeError(f"cannot create colorizer {name!r}: {type(e).__name__}: {e}") from e
    return VideoColorizer(model, batch=batch, render_size=render_size,
                          scene_threshold=scene_threshold)


class VideoColorizer:
    """A colorizer wrapped for frames: :meth:`colorize` one frame, :meth:`stream` many."""

    def __init__(self, model: Colorizer, *, batch: int = DEFAULT_BATCH,
                 render_size: int | None = None,
                 scene_threshold: float = DEFAULT_THRESHOLD) -> None:
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
        if render_size is not None:
            if not isinstance(render_size, int) or render_size < 16:
                raise ValueError(f"render_size must be an integer >= 16 pixels, got "
                                 f"{render_size!r}")
            model.render_size = render_size
        self.model = model
        self.batch = batch
        self.detector = SceneCutDetector(scene_threshold)
        self.scene_cuts: list[int] = []  # frame indices where the last stream reset the state

    @property
    def temporal(self) -> bool:
        """True when the model carries state from frame to frame (LRCN)."""
        return bool(self.model.temporal)

    @property
    def device(self) -> torch.device:
        return torch.device(getattr(self.model, "device", "cpu"))

    def _to_l(self, frame: np.ndarray | Tensor) -> Tensor:
        if not isinstance(frame, (np.ndarray, Tensor)):
            raise TypeError(f"frame must be a numpy array or torch tensor, got "
                            f"{type(frame).__name__}")
        if frame.ndim == 3 and frame.shape[-1] not in (1, 3):
            raise ValueError(f"frame must be HxW, HxWx1 or HxWx3, got shape {tuple(frame.shape)}")
        if frame.ndim not in (2, 3):
            raise ValueError(f"frame must be HxW, HxWx1 or HxWx3, got shape {tuple(frame.shape)}")
        return frames_to_l(frame, self.device)

    @torch.inference_mode()
    def colorize(self, frame: np.ndarray | Tensor) -> np.ndarray:
        """One frame -> RGB uint8 ``(H, W, 3)``. Independent of other frames (fresh state)."""
        L = self._to_l(frame)
        if self.temporal:
            ab, _ = self.model.predict_sequence(L, None)
        else:
            ab = self.model.predict_ab(L)
        return lab_to_frames(L, ab)[0]

    @torch.inference_mode()
    def stream(self, frames: Iterable[np.ndarray | Tensor]) -> Iterator[np.ndarray]:
        """Colorize frames in order; yields RGB uint8 ``(H, W, 3)`` per frame, lazily.

        Reads at most ``batch`` frames ahead. Temporal models get one state for the whole stream,
        reset where :attr:`detector` sees a cut (indices recorded in :attr:`scene_cuts`) and where
        the frame size changes.
        """
        self.detector.reset()
        self.scene_cuts = []
        state: Any = None
        chunk: list[Tensor] = []
        start = 0  # index of chunk[0] in the stream

        def run(L: Tensor, first: int) -> Iterator[np.ndarray]:
            nonlocal state
            if self.temporal:
                resets = self.detector(L)
                self.scene_cuts.extend(first + int(i) for i in resets.nonzero().flatten())
                ab, state = self.model.predict_sequence(L, state, resets)
            else:
                ab = self.model.predict_ab(L)
            yield from lab_to_frames(L, ab)

        for frame in frames:
            L = self._to_l(frame)
            if chunk and L.shape[-2:] != chunk[0].shape[-2:]:
                yield from run(torch.cat(chunk), start)
                start += len(chunk)
                chunk = []
                state = None  # a new frame size starts a new sequence
                self.detector.reset()
            chunk.append(L)
            if len(chunk) == self.batch:
                yield from run(torch.cat(chunk), start)
                start += len(chunk)
                chunk = []
        if chunk:
            yield from run(torch.cat(chunk), start)


def _expected_frames(src: str) -> int | None:
    if src == PIPE:
        return None
    try:
        info = probe(src)
    except Exception:  # noqa: BLE001 - the transcoder reports unreadable inputs properly
        return None
    if info.frames:
        return info.frames
    if info.duration and info.frame_rate:
        return round(info.duration * info.frame_rate)
    return None


def colorize_video(src: str | Path, dst: str | Path,
                   colorizer: VideoColorizer | str = DEFAULT_MODEL, *, codec: str | None = None,
                   crf: int | None = None, overwrite: bool = False,
                   skip_errors: bool = False, progress: ProgressMode = "quiet",
                   start: float | None = None, duration: float | None = None
                   ) -> TranscodeReport:
    """Colorize a video file (or ``"-"``: y4m on stdin/stdout) into ``dst``.

    Keeps frame rate, time base, timestamps, frame count and metadata; copies audio and subtitle
    streams unchanged. ``dst`` appears only when the whole video is done (atomic rename).
    ``colorizer`` is a :class:`VideoColorizer` or a registered name. ``start``/``duration``
    (seconds) colorize a section only, audio cut to match. Raises :class:`ColorizeError`, writing
    nothing, when no frame could be decoded.
    """
    vc = open_colorizer(colorizer) if isinstance(colorizer, str) else colorizer
    with Transcoder(src, dst, codec=codec, crf=crf, overwrite=overwrite,
                    skip_errors=skip_errors, start=start, duration=duration) as t:
        expected = _expected_frames(str(src))
        whole = start is None and duration is None
        with Progress(total=expected if whole else None, mode=progress) as bar:
            for rgb in vc.stream(t.frames()):
                t.write(rgb)
                bar.advance()
        if not t.report.frames_in:
            raise ColorizeError(f"{src}: no frame could be decoded; nothing written")
        report = t.finish()
        if whole and expected and report.frames_in + len(report.skipped) < expected:
            report.expected = expected
        return report
