"""Colorize any input the CLI accepts: a video, an image sequence, a still or a folder of stills,
into a video, a sequence, an image or a folder (:func:`colorize_media`).

The output is opened and checked (its folder, its name or pattern, the encoder against the
container) before the first frame is colorized; an animated WebP or PNG is read as a video."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from fractions import Fraction
from pathlib import Path

import av

from colorvid.core.files import discard, os_error_text, publish, temp_beside
from colorvid.core.video.decode import VideoError, probe, read_frames
from colorvid.core.video.images import (
    DEFAULT_FPS,
    FPS_RANGE,
    ImageSource,
    ImageWriter,
    is_animated,
    is_image_file,
    is_pattern,
    open_images,
)
from colorvid.core.video.pipeline import ColorizeError, VideoColorizer, colorize_video
from colorvid.core.video.progress import Progress, ProgressMode
from colorvid.core.video.transcode import (
    PIPE,
    TranscodeReport,
    default_encoder,
    encoder_name,
    encoder_options,
)

__all__ = ["colorize_media", "is_image_input", "is_image_output"]


def is_image_input(src: str | Path) -> bool:
    """True for an image file, a printf pattern or a folder (rather than a video or a pipe); an
    animated WebP or PNG is a video."""
    s = str(src)
    return s != PIPE and (is_pattern(s) or Path(s).is_dir()
                          or (is_image_file(s) and not is_animated(s)))


def is_image_output(dst: str | Path, image_input: bool = False) -> bool:
    """True for an image file, a pattern, or a folder: one that exists or ends in ``/``, or any
    name without an extension when the input is images (a video needs an extension)."""
    s = str(dst)
    if s == PIPE:
        return False
    folder = Path(s).is_dir() or s.endswith(("/", os.sep)) or (image_input
                                                               and not Path(s).suffix)
    return is_pattern(s) or is_image_file(s) or folder


@dataclasses.dataclass
class MediaReport(TranscodeReport):
    """A :class:`TranscodeReport` plus what image inputs add (kind, warnings, expected frames)."""

    kind: str = "video"
    warnings: list[str] = dataclasses.field(default_factory=list)


def _encode(frames, dst: Path, fps: float, overwrite: bool, codec: str | None,
            crf: int | None, preset: str | None) -> int:
    """Frames -> a new video file, atomically (hidden temporary file, moved into place at the
    end); the container, the encoder and its options are checked before the first frame."""
    if (dst.exists() or dst.is_symlink()) and not overwrite:
        raise VideoError(f"{dst}: output already exists (use --overwrite to replace it)")
    if not dst.suffix:
        raise VideoError(f"{dst}: no extension to choose a container from; "
                         "use .mp4, .mkv, .mov, .webm, .avi or .y4m")
    tmp = temp_beside(dst)
    n = 0
    try:
        try:
            out = av.open(str(tmp), "w")
        except (ValueError, av.error.FFmpegError) as e:
            raise VideoError(f"{dst}: cannot write a video with extension {dst.suffix!r}; use "
                             ".mp4, .mkv, .mov, .webm, .avi or .y4m") from e
        try:
            encoder = encoder_name(codec or default_encoder(out.format.name) or "libx264")
            options = encoder_options(encoder, crf, preset)
            try:
                stream = out.add_stream(encoder, rate=Fraction(fps).limit_denominator(1001))
            except (ValueError, av.error.FFmpegError) as e:
                raise VideoError(f"{dst}: the {out.format.name} container cannot hold "
                                 f"{encoder} video ({os_error_text(e)}); choose another "
                                 "--codec or output extension") from e
            for rgb in frames:
                if not n:
                    h, w = rgb.shape[:2]
                    stream.width, stream.height = w, h
                    stream.pix_fmt = "yuv444p" if (w % 2 or h % 2) else "yuv420p"
                    if options:
                        stream.options = options
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                _mux(out, stream.encode(frame), dst)
                n += 1
            if n:
                _mux(out, stream.encode(None), dst)
        finally:
            try:
                out.close()  # the trailer
            except (OSError, av.error.FFmpegError) as e:
                if n:  # else an earlier error is on its way
                    raise VideoError(f"{dst}: write error: {os_error_text(e)}") from e
        if n:
            publish(tmp, dst, overwrite=overwrite)
    finally:
        discard(tmp if tmp.exists() else None)
    return n


def _mux(out, packets, dst: Path) -> None:
    try:
        out.mux(packets)
    except (OSError, av.error.FFmpegError) as e:
        raise VideoError(f"{dst}: write error: {os_error_text(e)}") from e


def colorize_media(src: str | Path, dst: str | Path, vc: VideoColorizer, *,
                   fps: float = DEFAULT_FPS, stills: bool = False,
                   start: float | None = None, duration: float | None = None,
                   codec: str | None = None, crf: int | None = None, preset: str | None = None,
                   overwrite: bool = False, skip_errors: bool = False,
                   progress: ProgressMode = "quiet") -> MediaReport:
    """Colorize ``src`` into ``dst`` whatever each is (see the module doc).

    ``start``/``duration`` are seconds for a video input and frame numbers for image sequences.
    Sequences run through :meth:`VideoColorizer.stream` (temporal state kept); stills each get a
    fresh state (:meth:`VideoColorizer.colorize`). Raises :class:`ColorizeError` when no frame
    could be decoded (and then writes nothing).
    """
    low, high = FPS_RANGE
    if not low <= fps <= high:
        raise VideoError(f"fps must be a number from {low:g} to {high:g}, got {fps!r}")
    report = MediaReport(output=str(dst))
    image_in = is_image_input(src)
    image_out = is_image_output(dst, image_in)
    if not image_in:
        if not image_out:
            r = colorize_video(src, dst, vc, codec=codec, crf=crf, preset=preset,
                               overwrite=overwrite,
                               skip_errors=skip_errors, progress=progress, start=start,
                               duration=duration)
            return MediaReport(**dataclasses.asdict(r))
        # --start/--duration are seconds of the video: frames at the video's own rate
        rate = float(probe(src).frame_rate or fps)
        first = round((start or 0) * rate)
        count = None if duration is None else round(duration * rate)
        source, total = None, count
        frames = (rgb for _, rgb in read_frames(src, start=first, count=count))
        deep = False
    else:
        source = open_images(src, fps=fps, stills=stills)
        report.kind = source.kind
        report.warnings += source.warnings
        if start is not None or duration is not None:
            source.section(None if start is None else int(start),
                           None if duration is None else int(duration))
        total = len(source)
        frames = source.frames(skip_errors=skip_errors)
        deep = source.deep
    _refuse_input_as_output(source.paths if source is not None else [Path(src)], Path(dst))
    if image_out:
        with ImageWriter(dst, overwrite=overwrite, deep=deep) as w, \
                contextlib.closing(_colorized(vc, source, frames)) as colorized:
            with Progress(total=total, mode=progress) as bar:
                for i, rgb in enumerate(colorized):
                    number = source.numbers[i] if source is not None else i
                    name = source.paths[i].name if source is not None else None
                    w.write(rgb, number=number, name=name)
                    bar.advance()
            if not w.written:
                raise ColorizeError(f"{src}: no frame decoded; nothing written")
            w.finish()
            report.frames_in = report.frames_out = w.written
        report.skipped = list(getattr(source, "skipped", []))
        return report
    # Closed on any error, so that the pipelined stream's threads stop at once.
    with contextlib.closing(_colorized(vc, source, frames)) as colorized:
        n = _encode(colorized, Path(dst), fps, overwrite, codec, crf, preset)
    if not n:
        raise ColorizeError(f"{src}: no frame decoded; nothing written")
    report.frames_in = report.frames_out = n
    report.skipped = list(getattr(source, "skipped", []))
    return report


def _refuse_input_as_output(inputs: list[Path], dst: Path) -> None:
    """--overwrite must never replace what is being colorized: an output that is an input file
    or a folder holding one (``colorize frames/ -o frames/``) is refused before any work."""
    target = (dst.parent if is_pattern(dst) else dst).resolve()
    if not target.exists():
        return
    for p in inputs:
        p = p.resolve()
        if p == target or target in p.parents:
            raise VideoError(f"{dst}: would replace the input {p}; choose an output that is "
                             "neither the input nor its folder")


def _colorized(vc: VideoColorizer, source: ImageSource | None, frames):
    if source is not None and source.kind == "stills":
        return (vc.colorize(rgb) for rgb in frames)  # unrelated images: no state between them
    return vc.stream(frames)
