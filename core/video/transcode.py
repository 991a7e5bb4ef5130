"""Re-encode a video's picture and copy everything else: the I/O half of ``colorvid colorize``.

A :class:`Transcoder` decodes the input's first video stream into RGB frames
(:meth:`Transcoder.frames`) and encodes the frames it is handed back (:meth:`Transcoder.write`)
with the timing of the input frame they replace: same time base, same timestamps and durations,
so frame count, frame rate and duration match the input. Audio and subtitle packets are remuxed
unchanged while the input is demuxed; container and stream metadata are copied.

Files are written to a hidden temporary file in the output's folder and moved to the requested
name only by :meth:`Transcoder.finish`, never over a file that appeared meanwhile unless
``overwrite`` (:mod:`colorvid.core.files`): an interrupted or failed run leaves nothing under
that name. Everything that can be checked is checked before the first frame: the container's
header is written when the output opens, so a stream the container cannot hold is an error
there. A display matrix (a phone video's rotation) is copied to the output stream. ``-`` is
stdin / stdout, carrying y4m (``yuv4mpegpipe``), for render pipelines.

Memory: one decoded frame per frame handed out and not yet written back (the caller's batch),
plus the muxer's interleaving queue; nothing is kept per video.

Threads: :meth:`Transcoder.frames` may run in one thread (it remuxes audio while it demuxes)
and :meth:`Transcoder.write` in another (``colorvid colorize`` does: see
:mod:`colorvid.core.video.engine`); writes to the output container are serialised by a lock.

>>> with Transcoder("in.mp4", "out.mp4") as t:  # doctest: +SKIP
...     for rgb in t.frames():
...         t.write(255 - rgb)
...     t.finish()
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import sys
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

from colorvid.core.files import discard, os_error_text, publish, temp_beside
from colorvid.core.video.decode import VideoError, _open, display_matrix

__all__ = ["PIPE", "PRESETS", "Y4M_FORMAT", "TranscodeReport", "Transcoder", "default_encoder",
           "encoder_name", "encoder_options"]

PIPE = "-"
Y4M_FORMAT = "yuv4mpegpipe"
# Encoder per container family when --codec is not given; H.264 plays everywhere.
_CODEC_BY_FORMAT = {"mp4": "libx264", "mov": "libx264", "matroska": "libx264",
                    "avi": "libx264", "webm": "libvpx-vp9", Y4M_FORMAT: "rawvideo"}
# Default constant-rate factors: x264/x265 18 is "visually lossless"; vp9 31 is its documented
# 1080p recommendation. Other encoders take no crf.
_CRF_DEFAULTS = {"libx264": 18, "libx265": 20, "libvpx-vp9": 31, "libsvtav1": 30}
# The crf each encoder opens with (its own AVOption ranges; x264 accepts more and clamps).
_CRF_RANGES = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63),
               "libsvtav1": (1, 63)}
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow", "placebo")
# Speed/size trade-off per encoder, fastest first (the encoder's default when not given: medium
# for x264/x265). vp9 has no preset (its speed is -cpu-used), so --preset is refused there.
PRESETS: dict[str, tuple[str, ...]] = {"libx264": _X26X_PRESETS, "libx265": _X26X_PRESETS,
                                       "libsvtav1": tuple(str(n) for n in range(13, -1, -1))}
_YUV_KEEP = ("yuv420p", "yuv422p", "yuv444p")
# Muxers that store a display matrix (a phone video's rotation); avi and y4m drop it.
_KEEPS_ROTATION = ("mov", "mp4", "matroska", "webm")
_UNSPECIFIED = 2  # AVCOL_SPC/PRI/TRC_UNSPECIFIED


def encoder_options(encoder: str, crf: int | None = None,
                    preset: str | None = None) -> dict[str, str]:
    """The options ``encoder`` (an FFmpeg encoder name) is opened with: the constant-rate factor
    (default per encoder) and the preset, checked here because an encoder that refuses an option
    fails only at the first frame, after the model has run. Raises :class:`VideoError` naming
    what is accepted."""
    options: dict[str, str] = {}
    if crf is not None and encoder not in _CRF_DEFAULTS:
        raise VideoError(f"--crf: encoder {encoder!r} has no crf; "
                         f"accepted with {', '.join(_CRF_DEFAULTS)}")
    if encoder in _CRF_DEFAULTS:
        value = _CRF_DEFAULTS[encoder] if crf is None else crf
        low, high = _CRF_RANGES[encoder]
        if not low <= value <= high:
            raise VideoError(f"--crf {value}: out of range for {encoder} (accepted {low}-{high})")
        options["crf"] = str(value)
        if encoder == "libvpx-vp9":
            options["b"] = "0"  # vp9 honours crf alone only with bitrate 0
    if preset is not None:
        accepted = PRESETS.get(encoder)
        if accepted is None:
            raise VideoError(f"--preset: encoder {encoder!r} has no preset; "
                             f"accepted with {', '.join(PRESETS)}")
        if str(preset) not in accepted:
            raise VideoError(f"--preset {preset!r}: not a {encoder} preset "
                             f"(accepted, fastest first: {', '.join(accepted)})")
        options["preset"] = str(preset)
    return options


def default_encoder(format_name: str) -> str | None:
    """The encoder a container gets when --codec is not given (``format_name`` as PyAV names
    the output format, e.g. ``mov,mp4,m4a,3gp,3g2,mj2`` or ``webm``)."""
    family = next((f for f in format_name.split(",") if f in _CODEC_BY_FORMAT), None)
    return _CODEC_BY_FORMAT.get(family or "")


def encoder_name(codec: str) -> str:
    """FFmpeg's name of the video encoder ``codec`` opens (``h264`` -> ``libx264``); raises
    :class:`VideoError` when there is none or it encodes something else (audio)."""
    try:
        found = av.codec.Codec(codec, "w")
    except (ValueError, av.error.FFmpegError) as e:
        raise VideoError(f"--codec {codec!r}: not an available video encoder ({e})") from e
    if found.type != "video":
        raise VideoError(f"--codec {codec!r}: encodes {found.type}; accepted: a video "
                         "encoder such as libx264, libx265, libvpx-vp9 or libsvtav1")
    return found.name


@dataclasses.dataclass
class TranscodeReport:
    """What a transcode did (frame counts, skipped frames, copied and dropped streams)."""

    output: str
    frames_in: int = 0
    frames_out: int = 0
    skipped: list[int] = dataclasses.field(default_factory=list)
    copied_streams: list[str] = dataclasses.field(default_factory=list)
    dropped_streams: list[str] = dataclasses.field(default_factory=list)
    expected: int | None = None  # set when decoding ended before the container's frame count
    warnings: list[str] = dataclasses.field(default_factory=list)  # one line each


@dataclasses.dataclass(frozen=True)
class _Timing:
    pts: int | None
    time_base: Fraction | None
    duration: int


def _describe(stream: Any) -> str:
    return f"#{stream.index} {stream.type} ({stream.codec_context.name})"


class _CountingReader:
    """A binary pipe that counts the bytes read and keeps the first ones (the y4m header), so
    that a stream ending inside a frame can be told apart from one ending between frames."""

    def __init__(self, pipe: BinaryIO) -> None:
        self._pipe = pipe
        self.count = 0
        self.head = b""

    def read(self, n: int = -1) -> bytes:
        data = self._pipe.read(n)
        self.count += len(data)
        if len(self.head) < 4096:
            self.head += data[:4096 - len(self.head)]
        return data

    def isatty(self) -> bool:
        return getattr(self._pipe, "isatty", lambda: False)()


class Transcoder:
    """Decode ``src``'s video to RGB frames and encode replacements into ``dst``.

    Args:
        src: input path, or ``"-"`` for y4m on stdin.
        dst: output path (container chosen by extension), or ``"-"`` for y4m on stdout.
        codec: video encoder (default by container: H.264 for mp4/mov/mkv/avi, VP9 for webm).
        crf: constant-rate factor for x264/x265/vp9/svt-av1 (default per encoder).
        preset: encoder speed/size preset (x264/x265: ``ultrafast`` .. ``placebo``, default
            ``medium``; svt-av1: ``13`` .. ``0``); see :data:`PRESETS`.
        overwrite: replace an existing ``dst``.
        skip_errors: drop frames the decoder rejects instead of failing (they are listed in the
            report); an unreadable container is still an error.
        start, duration: seconds; only frames (and audio/subtitle packets) shown from ``start``
            for ``duration`` are kept, frame-accurately, and their timestamps start at 0.
    """

    def __init__(self, src: str | Path, dst: str | Path, *, codec: str | None = None,
                 crf: int | None = None, preset: str | None = None, overwrite: bool = False,
                 skip_errors: bool = False, stdin: BinaryIO | None = None,
                 stdout: BinaryIO | None = None,
                 start: float | None = None, duration: float | None = None) -> None:
        self.src, self.dst = str(src), str(dst)
        if (start is not None and not (math.isfinite(start) and start >= 0)) or (
                duration is not None and not (math.isfinite(duration) and duration > 0)):
            raise VideoError(f"--start {start} / --duration {duration}: accepted: a finite "
                             "start >= 0 and duration > 0 (seconds)")
        self.start = start or 0.0
        self.end = None if duration is None else self.start + duration
        self._ended = False
        self.skip_errors = skip_errors
        self._tmp: Path | None = None
        self._overwrite = overwrite
        self._matrix: tuple[int, ...] | None = None
        self._video_packets = 0  # y4m: full frames the demuxer returned, and their size
        self._frame_bytes = 0
        self._demuxed_all = False
        self._reader: _CountingReader | None = None
        self._in: Any = None
        self._out: Any = None
        self._pending: collections.deque[_Timing] = collections.deque()
        self._last_pts: int | None = None
        self._finished = False
        self._mux_lock = threading.Lock()  # frames() remuxes audio, write() muxes video
        self.report = TranscodeReport(output=self.dst)
        try:
            self._open_input(stdin)
            self._open_output(stdout, codec, crf, preset, overwrite)
        except BaseException:
            self.abort()
            raise

    # -- opening ------------------------------------------------------------------------------
    def _open_input(self, stdin: BinaryIO | None) -> None:
        if self.src == PIPE:
            if stdin is None and sys.stdin is None:
                raise VideoError("input '-' reads y4m from stdin, but stdin is closed")
            pipe = stdin if stdin is not None else sys.stdin.buffer
            if getattr(pipe, "isatty", lambda: False)():
                raise VideoError("input '-' reads y4m from stdin, but stdin is a terminal")
            pipe = self._reader = _CountingReader(pipe)
            try:
                self._in = av.open(pipe, format=Y4M_FORMAT)
            except av.error.FFmpegError as e:
                raise VideoError(f"stdin: not a y4m (yuv4mpegpipe) stream ({e})") from e
        else:
            if Path(self.src).is_dir():
                raise VideoError(f"{self.src}: is a folder, not a video file")
            self._in = _open(self.src)
        if not self._in.streams.video:
            raise VideoError(f"{self.src}: no video stream")
        if self.src != PIPE:
            self._matrix = display_matrix(self.src)
        self.video_in = self._in.streams.video[0]
        self.video_in.thread_type = "AUTO"  # frame threads: decoding keeps up with the model
        length = self._in.duration / av.time_base if self._in.duration else None
        if self.start and length is not None and self.start >= length:
            raise VideoError(f"--start {self.start:g}: past the end of {self.src}, which is "
                             f"{length:.3f} s long; nothing written")

    def _open_output(self, stdout: BinaryIO | None, codec: str | None, crf: int | None,
                     preset: str | None, overwrite: bool) -> None:
        if self.dst == PIPE:
            if stdout is None and sys.stdout is None:
                raise VideoError("output '-' writes y4m to stdout, but stdout is closed")
            pipe = stdout if stdout is not None else sys.stdout.buffer
            if getattr(pipe, "isatty", lambda: False)():
                raise VideoError("output '-' writes y4m to stdout, but stdout is a terminal")
            self._out = av.open(pipe, "w", format=Y4M_FORMAT)
        else:
            self._out = self._open_output_file(overwrite)
        fmt = self._out.format.name
        self._add_video_stream(fmt, codec, crf, preset)
        self._add_copied_streams(fmt)
        self._out.metadata.update({k: v for k, v in self._in.metadata.items() if k != "encoder"})
        if self._matrix is not None:
            if any(f in _KEEPS_ROTATION for f in fmt.split(",")):
                self.video_out.set_display_matrix(self._matrix)
            else:
                turn = -round(math.degrees(math.atan2(self._matrix[1], self._matrix[0])))
                self.report.warnings.append(
                    f"{self.src}: its display rotation ({turn} degrees) cannot be kept in "
                    f"{fmt} output; the frames are written as stored (.mp4, .mov or .mkv "
                    "keep it)")
        try:  # the header: a stream this container cannot hold fails here, not after the model
            self._out.start_encoding()
        except (ValueError, av.error.FFmpegError) as e:
            kinds = ", ".join([f"video ({self.video_out.codec_context.name})",
                               *self.report.copied_streams])
            raise VideoError(f"{self._where}: the {fmt} container cannot hold these streams "
                             f"({kinds}): {os_error_text(e)}; choose another output extension"
                             ) from e
        except OSError as e:
            raise VideoError(f"{self._where}: write error: {os_error_text(e)}") from e

    def _open_output_file(self, overwrite: bool) -> Any:
        dst = Path(self.dst)
        if dst.is_dir():
            raise VideoError(f"{dst}: is a folder; give an output file name such as out.mp4")
        self._overwrite = overwrite
        if self.src != PIPE and dst.exists() and os.path.samefile(self.src, dst):
            raise VideoError(f"{dst}: output is the input file; choose another name")
        if (dst.exists() or dst.is_symlink()) and not overwrite:
            raise VideoError(f"{dst}: output already exists (use --overwrite to replace it)")
        if not dst.suffix:
            raise VideoError(f"{dst}: no extension to choose a container from; "
                             "use .mp4, .mkv, .mov, .webm, .avi or .y4m")
        # Same folder (so the final move is a rename), hidden, real extension last (the
        # container is guessed from it).
        self._tmp = temp_beside(dst)
        try:
            return av.open(str(self._tmp), "w")
        except (ValueError, av.error.FFmpegError) as e:
            raise VideoError(f"{dst}: cannot write a video with extension {dst.suffix!r} ({e}); "
                             "use .mp4, .mkv, .mov, .webm, .avi or .y4m") from e

    def _add_video_stream(self, fmt: str, codec: str | None, crf: int | None,
                          preset: str | None) -> None:
        vin = self.video_in
        family = next((f for f in fmt.split(",") if f in _CODEC_BY_FORMAT), None)
        if codec is None:
            codec = _CODEC_BY_FORMAT.get(family or "", None) or self._out.default_video_codec
        codec = encoder_name(codec)
        rate = vin.average_rate or vin.guessed_rate or vin.base_rate or Fraction(25)
        try:
            vout = self._out.add_stream(codec, rate=rate)
        except (ValueError, av.error.FFmpegError) as e:
            raise VideoError(f"--codec {codec!r}: not an available video encoder ({e})") from e
        if vout.type != "video":
            raise VideoError(f"--codec {codec!r}: not a video encoder")
        cc_in = vin.codec_context
        vout.width, vout.height = cc_in.width, cc_in.height
        vout.pix_fmt = self._choose_pix_fmt(vout, cc_in.pix_fmt, cc_in.width, cc_in.height)
        # Keep the input's clock so every timestamp passes through unchanged; y4m has only a
        # frame rate, so it gets 1/rate (and the frames are renumbered in that unit).
        tb = vin.time_base if (vin.time_base and family != Y4M_FORMAT) else 1 / Fraction(rate)
        vout.time_base = tb
        vout.codec_context.time_base = tb
        for attr in ("colorspace", "color_primaries", "color_trc", "color_range"):
            value = getattr(cc_in, attr, None)
            if value is not None:
                setattr(vout.codec_context, attr, value)
        options = encoder_options(vout.codec_context.name, crf, preset)
        if options:
            vout.options = options
        vout.metadata.update(dict(vin.metadata))
        self.video_out = vout
        self._out_time_base = tb
        self._frame_step = max(1, round(1 / (Fraction(rate) * tb)))

    @staticmethod
    def _choose_pix_fmt(vout: Any, in_fmt: str | None, width: int, height: int) -> str:
        supported = [f.name for f in (vout.codec_context.codec.video_formats or [])]
        want = in_fmt if in_fmt in _YUV_KEEP else "yuv420p"
        if (width % 2 or height % 2) and want != "yuv444p":
            want = "yuv444p"  # 4:2:0 / 4:2:2 need even sizes in most encoders
        if not supported or want in supported:
            return want
        return next((f for f in supported if f.startswith("yuv")), supported[0])

    def _add_copied_streams(self, fmt: str) -> None:
        self._copied: dict[int, Any] = {}
        for s in self._in.streams:
            if s.type not in ("audio", "subtitle"):
                if s.index != self.video_in.index:
                    self.report.dropped_streams.append(_describe(s))
                continue
            if fmt == Y4M_FORMAT:
                self.report.dropped_streams.append(_describe(s))  # y4m carries video only
                continue
            try:
                out = self._out.add_stream_from_template(s)
            except (ValueError, av.error.FFmpegError) as e:
                raise VideoError(f"{self.dst}: cannot copy stream {_describe(s)} into this "
                                 f"container ({e}); choose another output extension") from e
            out.metadata.update(dict(s.metadata))
            self._copied[s.index] = out
            self.report.copied_streams.append(_describe(s))

    # -- streaming ----------------------------------------------------------------------------
    def frames(self) -> Iterator[np.ndarray]:
        """Decoded input frames in order, RGB uint8 ``(H, W, 3)``; remuxes the other packets."""
        streams = [self.video_in, *(self._in.streams[i] for i in self._copied)]
        if self.start:
            tb = self.video_in.time_base or Fraction(1, av.time_base)
            try:
                self._in.seek(int(self.start / tb), stream=self.video_in, backward=True)
            except (av.error.FFmpegError, OverflowError):
                pass  # not seekable (a pipe): decode from the beginning and drop frames
        packets = self._in.demux(streams)
        while not self._ended:
            try:
                packet = next(packets)
            except StopIteration:
                self._demuxed_all = True
                return
            except av.error.FFmpegError as e:
                raise VideoError(f"{self.src}: unreadable data after frame "
                                 f"{self.report.frames_in}: {e}") from e
            if packet.stream.index == self.video_in.index:
                if packet.size:
                    self._video_packets += 1
                    self._frame_bytes = packet.size
                yield from self._decode(packet)
            elif packet.dts is not None:  # dts None: the demuxer's end-of-stream flush packet
                if self._in_section(packet):
                    packet.stream = self._copied[packet.stream.index]
                    self._mux(packet)

    def _in_section(self, packet: Any) -> bool:
        """Keep (and shift to the section's clock) a copied packet inside start..end."""
        if not self.start and self.end is None:
            return True
        tb = packet.time_base
        t = float((packet.pts if packet.pts is not None else packet.dts) * tb)
        if t < self.start - 1e-6 or (self.end is not None and t >= self.end - 1e-6):
            return False
        shift = int(round(self.start / tb))
        if packet.pts is not None:
            packet.pts -= shift
        packet.dts -= shift
        return True

    def _decode(self, packet: Any) -> Iterator[np.ndarray]:
        index = self.report.frames_in + len(self.report.skipped)
        try:
            decoded = self.video_in.decode(packet)
        except av.error.FFmpegError as e:
            if not self.skip_errors:
                raise VideoError(f"{self.src}: decode error at frame {index}: {e} "
                                 "(--skip-errors drops undecodable frames)") from e
            self.report.skipped.append(index)
            return
        for frame in decoded:
            if self.start or self.end is not None:
                t = frame.time if frame.time is not None else 0.0
                if t < self.start - 1e-6:
                    continue
                if self.end is not None and t >= self.end - 1e-6:
                    self._ended = True
                    return
            pts = frame.pts
            if pts is not None and self.start and frame.time_base is not None:
                pts -= int(round(self.start / frame.time_base))
            self._pending.append(_Timing(pts, frame.time_base, frame.duration or 0))
            self.report.frames_in += 1
            yield frame.to_ndarray(format="rgb24")

    def write(self, rgb: np.ndarray) -> None:
        """Encode the replacement for the oldest frame handed out by :meth:`frames` and not yet
        written, with that frame's timestamp and duration."""
        if not self._pending:
            raise RuntimeError("Transcoder.write: more frames written than read")
        timing = self._pending.popleft()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8),
                                           format="rgb24")
        pts = timing.pts
        if pts is not None and timing.time_base is not None:
            pts = int(round(pts * timing.time_base / self._out_time_base))
        # Missing or repeated timestamps (raw streams, damaged files) would make the encoder
        # refuse the frame; the next slot on the frame-rate grid keeps it in order.
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + self._frame_step
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self._out_time_base
        if timing.duration and timing.time_base is not None:
            frame.duration = int(round(timing.duration * timing.time_base / self._out_time_base))
        for packet in self.video_out.encode(frame):
            self._mux(packet)
        self.report.frames_out += 1

    def _mux(self, packet: Any) -> None:
        try:
            with self._mux_lock:
                self._out.mux(packet)
        except BrokenPipeError as e:
            raise VideoError("output pipe closed by the reader") from e
        except OSError as e:  # a full disk or a size limit, seen through Python's file object
            if getattr(e, "errno", None) == 32:
                raise VideoError("output pipe closed by the reader") from e
            raise VideoError(f"{self._where}: write error: {os_error_text(e)}") from e
        except av.error.FFmpegError as e:
            if getattr(e, "errno", None) == 32:  # EPIPE surfaced through FFmpeg's I/O layer
                raise VideoError("output pipe closed by the reader") from e
            raise VideoError(f"{self._where}: write error: {os_error_text(e)}") from e

    # -- ending -------------------------------------------------------------------------------
    def finish(self) -> TranscodeReport:
        """Flush the encoder, close both files and move the output into place."""
        if self._pending:
            raise RuntimeError(f"Transcoder.finish: {len(self._pending)} frames read but not "
                               "written")
        try:
            for packet in self.video_out.encode(None):
                self._mux(packet)
            self._out.close()  # the trailer: a muxer may still refuse something here
        except (ValueError, OSError) as e:
            if isinstance(e, VideoError):
                raise
            text = os_error_text(e) if isinstance(e, OSError) else str(e)
            raise VideoError(f"{self._where}: cannot finish the file: {text}") from e
        self._out = None
        self._check_y4m_tail()
        self._in.close()
        self._in = None
        if self._tmp is not None:
            publish(self._tmp, Path(self.dst), overwrite=self._overwrite)
            self._tmp = None
        self._finished = True
        return self.report

    @property
    def _where(self) -> str:
        return "stdout" if self.dst == PIPE else self.dst

    def _check_y4m_tail(self) -> None:
        """y4m's demuxer drops a last frame cut short without a word: say so (one line)."""
        if self._in.format.name != Y4M_FORMAT or not self._demuxed_all or not self._frame_bytes:
            return
        if self._reader is not None:
            total, head = self._reader.count, self._reader.head
        else:
            try:
                total = os.path.getsize(self.src)
                with open(self.src, "rb") as f:
                    head = f.read(4096)
            except OSError:
                return
        header = head.find(b"FRAME")
        if header < 0:
            return
        left = total - header - self._video_packets * (len(b"FRAME\n") + self._frame_bytes)
        if left > 0:
            where = "stdin" if self.src == PIPE else self.src
            self.report.warnings.append(
                f"{where}: the stream ends inside frame {self._video_packets} ({left} of its "
                f"{len(b'FRAME') + 1 + self._frame_bytes} bytes); that incomplete frame was "
                "dropped")

    def abort(self) -> None:
        """Close everything and delete the temporary output (no-op after :meth:`finish`)."""
        for attr in ("_out", "_in"):
            container = getattr(self, attr)
            setattr(self, attr, None)
            if container is not None:
                try:
                    container.close()
                except Exception:  # noqa: BLE001 - a half-written container may not close
                    pass
        discard(self._tmp)
        self._tmp = None

    def __enter__(self) -> Transcoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._finished:
            self.abort()
