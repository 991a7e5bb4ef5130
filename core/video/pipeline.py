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
at scene cuts (:mod:`colorvid.core.video.scenecut`). Pipelined
(:mod:`colorvid.core.video.engine`), reading the frames and RGB -> L, the model, and the chroma
upsampling with Lab -> RGB each run in a thread of their own, so they overlap with each other
and with whatever the caller does with the frames (``colorvid colorize`` encodes them); by
default it is pipelined when the model runs on a GPU or leaves CPU cores free, and runs the
stages one after another otherwise (:func:`auto_pipelined` gives the measured reason). The
conversions run on the model's device, the chroma upsampling fused into Lab -> RGB.
:meth:`VideoColorizer.colorize` treats each frame on its own (fresh state), so random access
(seeking in a previewer) gives repeatable results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from colorvid.core.api import create_colorizer
from colorvid.core.frames import frames_to_l, lab_to_frames
from colorvid.core.host import get_host
from colorvid.core.interfaces import MAX_RENDER_SIZE, Colorizer, check_l
from colorvid.core.video.decode import probe
from colorvid.core.video.engine import Stage, items_in_flight, run_stages
from colorvid.core.video.progress import Progress, ProgressMode
from colorvid.core.video.scenecut import DEFAULT_THRESHOLD, SceneCutDetector
from colorvid.core.video.stabilize import StabilizeOptions, Stabilizer
from colorvid.core.video.transcode import PIPE, Transcoder, TranscodeReport

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MODEL",
    "ColorizeError",
    "VideoColorizer",
    "auto_pipelined",
    "check_finite_output",
    "colorize_video",
    "open_colorizer",
    "resolve_device",
    "usable_cpus",
]

DEFAULT_MODEL = "lrcn"  # the paper's video model; `colorvid colorize --model` defaults to it
# 8 frames: enough to keep a CPU/GPU busy on 224-256 px renders, 8 x 1080p L planes are 66 MB.
DEFAULT_BATCH = 8
# Batches each queue of the pipelined stream holds: 1 is double buffering (a stage works on one
# batch while the next waits), all the overlap there is with one thread per stage.
PIPELINE_DEPTH = 1


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
                   render_size: int | None = None, scene_threshold: float = DEFAULT_THRESHOLD,
                   pipelined: bool | None = None,
                   stabilize: StabilizeOptions | float | bool | None = None,
                   **options: Any) -> VideoColorizer:
    """Create the registered colorizer ``name`` and wrap it for frames and frame streams.

    Args:
        name: a registered colorizer (``colorvid plugins`` lists them).
        weights: a weights file for the model (else the model's default weights).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (else the model's default).
        batch: frames run through the model together in :meth:`VideoColorizer.stream`.
        render_size: override the model's internal resolution (square side in pixels).
        scene_threshold: scene-cut threshold for temporal models (see colorvid.core.video.scenecut).
        pipelined: run :meth:`VideoColorizer.stream`'s stages in threads of their own (True)
            or one after another in the caller's thread (False); ``None`` (the default) chooses
            by where the model runs (:func:`auto_pipelined`).
        stabilize: flow-guided flicker removal on the model's chroma in
            :meth:`VideoColorizer.stream` (:mod:`colorvid.core.video.stabilize`): ``True`` for
            the defaults, a strength (0 to 0.98, the history's share), or
            :class:`~colorvid.core.video.stabilize.StabilizeOptions`; None/False: off.
        **options: passed to the colorizer's factory (e.g. ``preset=...``).

    Raises:
        ColorizeError: unknown name, unusable device, or the factory failed (message says why).
    """
    dev = resolve_device(device)
    try:
        stabilize = StabilizeOptions.coerce(stabilize)
    except ValueError as e:
        raise ColorizeError(str(e)) from e
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
                          scene_threshold=scene_threshold, pipelined=pipelined,
                          stabilize=stabilize)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; a container's limit shows there)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def auto_pipelined(device: torch.device) -> bool:
    """Whether :meth:`VideoColorizer.stream` should run its stages in threads of their own.

    On CUDA, yes: the network leaves the CPU idle, and decoding, the conversions and encoding
    fill it. On the CPU only when torch's kernels leave a CPU free
    (``torch.get_num_threads() < usable_cpus()``): when they already use every core, the
    stages' threads only take cores from the network and from libav's own decode and x264
    threads (which overlap with the network in either mode). Measured on the 2-core machine
    (benches/bench_colorize.py, end to end / model alone, x264 medium, best of 3):
    lrcn 576p 0.87 pipelined vs 0.97 sequential, zhang full 720p 0.83 vs 0.93, lrcn 720p 0.74
    vs 0.76; sequential was ahead in nearly every paired run, in another set of runs too
    (0.87 vs 0.72).
    """
    if device.type != "cpu":
        return True
    return torch.get_num_threads() < usable_cpus()


class VideoColorizer:
    """A colorizer wrapped for frames: :meth:`colorize` one frame, :meth:`stream` many."""

    def __init__(self, model: Colorizer, *, batch: int = DEFAULT_BATCH,
                 render_size: int | None = None,
                 scene_threshold: float = DEFAULT_THRESHOLD, pipelined: bool | None = None,
                 scene_cuts: bool = True, check_chroma: bool = False,
                 stabilize: StabilizeOptions | float | bool | None = None) -> None:
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
        if render_size is not None:
            if not isinstance(render_size, int) or not 16 <= render_size <= MAX_RENDER_SIZE:
                raise ValueError(f"render_size must be an integer from 16 to {MAX_RENDER_SIZE} "
                                 f"pixels, got {render_size!r}")
            model.render_size = render_size
        if pipelined not in (None, True, False):
            raise ValueError(f"pipelined must be True, False or None (choose by device), got "
                             f"{pipelined!r}")
        self.model = model
        self.batch = batch
        # False: every stage in the caller's thread, one at a time
        self.pipelined = auto_pipelined(self.device) if pipelined is None else pipelined
        self.scene_cuts_enabled = scene_cuts  # False: one state for the whole stream (eval)
        self.check_chroma = check_chroma  # refuse a wrongly shaped or non-finite ab (eval)
        # flow-guided chroma stabilisation in stream() (None: off); its own scene cuts always
        self.stabilize = StabilizeOptions.coerce(stabilize)
        # called with (L, the model's ab) of every batch before stabilisation (eval scores the
        # raw model from the same run)
        self.raw_chroma_hook: Callable[[Tensor, Tensor], None] | None = None
        self.detector = SceneCutDetector(scene_threshold)
        self.scene_cuts: list[int] = []  # frame indices where the last stream reset the state

    @property
    def temporal(self) -> bool:
        """True when the model carries state from frame to frame (LRCN)."""
        return bool(self.model.temporal)

    @property
    def device(self) -> torch.device:
        return torch.device(getattr(self.model, "device", "cpu"))

    @property
    def read_ahead(self) -> int:
        """The most frames :meth:`stream` reads beyond those it has yielded (pipelined)."""
        held = Stabilizer(self.stabilize).delay if self.stabilize else 0
        if not self.pipelined:
            return self.batch + held
        return self.batch * items_in_flight(len(self._stages()), PIPELINE_DEPTH) + held

    def _to_l(self, frame: np.ndarray | Tensor) -> Tensor:
        if not isinstance(frame, (np.ndarray, Tensor)):
            raise TypeError(f"frame must be a numpy array or torch tensor, got "
                            f"{type(frame).__name__}")
        if frame.ndim == 3 and frame.shape[-1] not in (1, 3):
            raise ValueError(f"frame must be HxW, HxWx1 or HxWx3, got shape {tuple(frame.shape)}")
        if frame.ndim not in (2, 3):
            raise ValueError(f"frame must be HxW, HxWx1 or HxWx3, got shape {tuple(frame.shape)}")
        return frames_to_l(frame, self.device)

    def _predict(self, L: Tensor, state: Any, resets: Tensor | None) -> tuple[Tensor, Any]:
        """L ``(B, 1, H, W)`` -> (ab at the model's own resolution, state). The chroma is
        upsampled later, fused into the Lab -> RGB pass (:func:`lab_to_frames`); a model that
        overrides the public ``predict_ab`` / ``predict_sequence`` is called through it."""
        model = self.model
        if self.temporal:
            if type(model).predict_sequence is not Colorizer.predict_sequence:
                return model.predict_sequence(L, state, resets)
            check_l(L, model.name)
            if state is None:
                state = model.new_state()
            return model.predict_sequence_lowres(model.to_render(L), state, resets)
        if type(model).predict_ab is not Colorizer.predict_ab:
            return model.predict_ab(L), state
        check_l(L, model.name)
        return model.predict_ab_lowres(model.to_render(L)), state

    @torch.inference_mode()
    def colorize(self, frame: np.ndarray | Tensor) -> np.ndarray:
        """One frame -> RGB uint8 ``(H, W, 3)``. Independent of other frames (fresh state)."""
        L = self._to_l(frame)
        ab, _ = self._predict(L, None, None)
        check_finite_output(self.model, ab)
        return lab_to_frames(L, ab, upsample=True)[0]

    # -- the stages of stream(): decode thread -> model thread -> convert thread -> caller -----
    @torch.inference_mode()  # the decorator enters it around each step, not across yields
    def _batches(self, frames: Iterable[np.ndarray | Tensor]) -> Iterator[_Batch]:
        """Frames -> L batches of up to ``batch`` frames of one size (RGB -> L here, on the
        model's device)."""
        chunk: list[Tensor] = []
        start = 0  # index of chunk[0] in the stream
        new_sequence = True
        for frame in frames:
            L = self._to_l(frame)
            if chunk and L.shape[-2:] != chunk[0].shape[-2:]:
                yield _Batch(torch.cat(chunk), start, new_sequence)
                start += len(chunk)
                chunk = []
                new_sequence = True  # a new frame size starts a new sequence
            chunk.append(L)
            if len(chunk) == self.batch:
                yield _Batch(torch.cat(chunk), start, new_sequence)
                start += len(chunk)
                chunk = []
                new_sequence = False
        if chunk:
            yield _Batch(torch.cat(chunk), start, new_sequence)

    @torch.inference_mode()
    def _chroma(self, batches: Iterator[_Batch]) -> Iterator[tuple[Tensor, Tensor]]:
        """L batches -> (L, ab at the model's resolution), in order, carrying the temporal state
        (reset at scene cuts and where the frame size changes)."""
        state: Any = None
        stab = Stabilizer(self.stabilize) if self.stabilize else None
        for b in batches:
            if b.new_sequence:
                state = None
                self.detector.reset()
                if stab is not None:
                    yield from _grouped(stab.reset())
            resets = cuts = None
            if (self.temporal and self.scene_cuts_enabled) or stab is not None:
                cuts = self.detector(b.L)
                self.scene_cuts.extend(b.first + int(i) for i in cuts.nonzero().flatten())
                if self.temporal and self.scene_cuts_enabled:
                    resets = cuts
            ab, state = self._predict(b.L, state, resets)
            if self.check_chroma:
                _check_chroma(self.model, b.L, ab)
            check_finite_output(self.model, ab)
            if self.raw_chroma_hook is not None:
                self.raw_chroma_hook(b.L, ab)
            if stab is None:
                yield b.L, ab
                continue
            ready = []  # frames the stabiliser hands back: (L (1, 1, H, W), ab on its grid)
            chroma = ab.detach().float().cpu().numpy()
            for i in range(b.L.shape[0]):
                L = b.L[i : i + 1]
                ready += stab.push(L[0, 0].detach().float().cpu().numpy(), chroma[i],
                                   cut=bool(cuts[i]), payload=L)
            yield from _grouped(ready)
        if stab is not None:
            yield from _grouped(stab.flush())

    def _stages(self) -> list[Stage]:
        return [("model", self._chroma), ("convert", self._frames)]

    @staticmethod
    @torch.inference_mode()
    def _frames(chroma: Iterator[tuple[Tensor, Tensor]]) -> Iterator[np.ndarray]:
        """(L, ab) -> RGB uint8 ``(B, H, W, 3)``: chroma upsampling and Lab -> RGB in one pass."""
        for L, ab in chroma:
            yield lab_to_frames(L, ab, upsample=True)

    def stream(self, frames: Iterable[np.ndarray | Tensor]) -> Iterator[np.ndarray]:
        """Colorize frames in order; yields RGB uint8 ``(H, W, 3)`` per frame, lazily.

        Pipelined (:attr:`pipelined`; :func:`auto_pipelined` gives the default): ``frames`` is
        read and converted to L in one thread, the model runs in a second, the chroma upsampling
        and Lab -> RGB in a third, and the caller's own work on the yielded frames (encoding)
        overlaps all three. Otherwise the same stages run one after another in the caller's
        thread, a batch at a time. At most :attr:`read_ahead`
        frames are read beyond those yielded, whatever the length. An exception in any stage
        (including ``frames`` itself) stops all of them and is re-raised here; closing the
        generator stops and joins the threads. Temporal models get one state for the whole
        stream, reset where :attr:`detector` sees a cut (indices recorded in
        :attr:`scene_cuts`) and where the frame size changes. With :attr:`stabilize` the chroma
        goes through a :class:`~colorvid.core.video.stabilize.Stabilizer` (restarted at the
        same cuts, for every model) before Lab -> RGB; bidirectional, it holds up to
        ``block + lookahead`` frames more (counted in :attr:`read_ahead`).
        """
        self.detector.reset()
        self.scene_cuts = []
        if self.pipelined:
            # The source thread reads the frames and converts them to L (self._batches).
            batches = run_stages(self._batches(frames), self._stages(), depth=PIPELINE_DEPTH,
                                 source_name="decode")
        else:
            batches = self._frames(self._chroma(self._batches(frames)))
        try:
            for rgb in batches:
                yield from rgb
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()


def _grouped(ready: list[tuple[Tensor, np.ndarray]]) -> Iterator[tuple[Tensor, Tensor]]:
    """The stabiliser's ``(L (1, 1, H, W), ab (2, h, w))`` frames as (L, ab) batches, one per
    run of equal frame sizes."""
    start = 0
    for end in range(1, len(ready) + 1):
        if end == len(ready) or ready[end][0].shape != ready[start][0].shape:
            L = torch.cat([r[0] for r in ready[start:end]])
            ab = torch.from_numpy(np.stack([r[1] for r in ready[start:end]])).to(L.device)
            yield L, ab
            start = end


def check_finite_output(model: Colorizer, ab: Tensor) -> None:
    """Refuse NaN or infinite chroma (it would encode as black frames without a word): the
    input was checked finite, so the weights are at fault, and the error names them."""
    if bool(torch.isfinite(ab).all()):
        return
    path = getattr(model, "weights_path", None)
    if path is not None:
        weights = f"the weights file {path}"
    elif getattr(model, "weights_config", None) is not None:
        weights = "its default weights"
    else:
        weights = "its weights"
    raise ColorizeError(f"{model.name}: the model's output holds NaN or infinity; the cause is "
                        f"{weights} (damaged, or from a training run that diverged); use "
                        "another weights file")


def _check_chroma(model: Colorizer, L: Tensor, ab: Tensor) -> None:
    if ab.dim() != 4 or ab.shape[:2] != (L.shape[0], 2):
        raise ValueError(f"{model.name}: predict_ab returned shape {tuple(ab.shape)}, expected "
                         f"({L.shape[0]}, 2, h, w)")
    if not torch.isfinite(ab).all():
        raise ValueError(f"{model.name}: predicted ab contains NaN or infinity")


@dataclasses.dataclass(frozen=True)
class _Batch:
    L: Tensor  # (B, 1, H, W), on the model's device
    first: int  # index of its first frame in the stream
    new_sequence: bool  # the temporal state starts afresh here (first batch, new frame size)


def _expected_frames(src: str) -> tuple[int | None, int | None, float | None]:
    """(frames the container declares, an estimate for the progress bar, duration in s).

    Only a declared count can show that decoding ended early: duration x rate overcounts a
    variable-frame-rate video and one whose audio outlasts its picture."""
    if src == PIPE:
        return None, None, None
    try:
        info = probe(src)
    except Exception:  # noqa: BLE001 - the transcoder reports unreadable inputs properly
        return None, None, None
    if info.frames:
        return info.frames, info.frames, info.duration
    if info.duration and info.frame_rate:
        return None, round(info.duration * info.frame_rate), info.duration
    return None, None, info.duration


def colorize_video(src: str | Path, dst: str | Path,
                   colorizer: VideoColorizer | str = DEFAULT_MODEL, *, codec: str | None = None,
                   crf: int | None = None, preset: str | None = None, overwrite: bool = False,
                   skip_errors: bool = False, progress: ProgressMode = "quiet",
                   start: float | None = None, duration: float | None = None
                   ) -> TranscodeReport:
    """Colorize a video file (or ``"-"``: y4m on stdin/stdout) into ``dst``.

    Keeps frame rate, time base, timestamps, frame count and metadata; copies audio and subtitle
    streams unchanged. ``dst`` appears only when the whole video is done (atomic rename).
    ``colorizer`` is a :class:`VideoColorizer` or a registered name. ``start``/``duration``
    (seconds) colorize a section only, audio cut to match. ``codec``, ``crf`` and ``preset`` choose
    and set the encoder (see :class:`~colorvid.core.video.transcode.Transcoder`; checked before the
    first frame). Raises :class:`ColorizeError`, writing nothing, when no frame could be decoded.
    """
    vc = open_colorizer(colorizer) if isinstance(colorizer, str) else colorizer
    with Transcoder(src, dst, codec=codec, crf=crf, preset=preset, overwrite=overwrite,
                    skip_errors=skip_errors, start=start, duration=duration) as t:
        expected, estimate, seconds = _expected_frames(str(src))
        whole = start is None and duration is None
        # Decoding runs in the stream's decode thread, encoding here; closing the stream joins
        # its threads before the Transcoder closes the files they use (also on errors).
        with Progress(total=estimate if whole else None, mode=progress) as bar, \
                contextlib.closing(vc.stream(t.frames())) as frames:
            for rgb in frames:
                t.write(rgb)
                bar.advance()
        if not t.report.frames_in:
            if start and seconds is not None and start >= seconds - 1e-6:
                raise ColorizeError(f"--start {start:g}: past the end of {src}, which is "
                                    f"{seconds:.3f} s long; nothing written")
            if start and not t.report.skipped:
                raise ColorizeError(f"--start {start:g}: no frame of {src} is shown at or "
                                    "after it; nothing written")
            raise ColorizeError(f"{src}: no frame could be decoded; nothing written")
        report = t.finish()
        if whole and expected and report.frames_in + len(report.skipped) < expected:
            report.expected = expected
        return report
