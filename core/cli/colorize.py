"""``colorvid colorize INPUT -o OUTPUT``: colorize a video file, or y4m on a pipe (``-``).

    colorvid colorize old.mp4 -o colour.mp4 --model lrcn --device cuda
    ffmpeg -i old.mkv -f yuv4mpegpipe - | colorvid colorize - -o - | ffmpeg -i - colour.mkv

Every problem the user can fix is one line on stderr and a non-zero exit (cli.CLIError);
Ctrl-C (or SIGTERM) removes the partial output and exits 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from colorvid.core.cli import CLIError
from colorvid.core.video.decode import VideoError
from colorvid.core.video.pipeline import (
    DEFAULT_BATCH,
    DEFAULT_MODEL,
    ColorizeError,
    colorize_video,
    open_colorizer,
)
from colorvid.core.video.progress import MODES

__all__ = ["add_parser", "run"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def _positive(what: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, got {value}")
        return value

    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "colorize", help="colorize a video file or a y4m pipe",
        description="Colorize a video: decodes INPUT, predicts colour for every frame (temporal "
        "models in order, reset at scene cuts) and encodes OUTPUT with the same frame rate, "
        "timestamps and frame count, copying audio, subtitles and metadata. '-' reads y4m from "
        "stdin / writes y4m to stdout.")
    p.add_argument("input", metavar="INPUT", help="video file, or - for y4m on stdin")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (container from its extension), or - for y4m on stdout")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"registered colorizer (default {DEFAULT_MODEL}; see colorvid plugins)")
    p.add_argument("--weights", metavar="FILE", help="weights file for the model")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: the model's choice)")
    p.add_argument("--batch", type=_positive("--batch"), default=DEFAULT_BATCH,
                   help=f"frames per model call (default {DEFAULT_BATCH})")
    p.add_argument("--render-size", type=_positive("--render-size", 16), metavar="N",
                   help="internal square resolution of the model (default: the model's)")
    p.add_argument("--codec", help="video encoder (default: libx264 for mp4/mkv/mov/avi, "
                   "libvpx-vp9 for webm, rawvideo for y4m)")
    p.add_argument("--crf", type=_positive("--crf", 0), help="constant-rate factor "
                   "(x264/x265 default 18/20, vp9 31)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.add_argument("--skip-errors", action="store_true",
                   help="drop frames that fail to decode instead of stopping")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--progress", choices=MODES, default="bar",
                   help="progress on stderr: bar (default), json lines, or quiet")
    p.set_defaults(func=run)


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    progress = "quiet" if args.quiet else args.progress
    previous = None
    if threading.current_thread() is threading.main_thread():
        # A render farm stops jobs with SIGTERM: clean up exactly as for Ctrl-C.
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        try:
            vc = open_colorizer(args.model, args.weights, args.device, batch=args.batch,
                                render_size=args.render_size)
        except ValueError as e:  # options the model refuses (e.g. its render-size limits)
            raise ColorizeError(f"--model {args.model}: {e}") from e
        report = colorize_video(args.input, args.output, vc, codec=args.codec, crf=args.crf,
                                overwrite=args.overwrite, skip_errors=args.skip_errors,
                                progress=progress)
    except (ColorizeError, VideoError) as e:
        raise CLIError(str(e).splitlines()[0] if str(e) else type(e).__name__, 1) from e
    except KeyboardInterrupt:
        where = "" if args.output == "-" else f"; {args.output} was not written"
        raise CLIError(f"interrupted{where}", EXIT_INTERRUPTED) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if progress != "quiet":
        notes = [f"{report.frames_out} frames -> {args.output}"]
        if vc.scene_cuts:
            notes.append(f"{len(vc.scene_cuts)} scene cut(s)")
        if report.copied_streams:
            notes.append("copied " + ", ".join(report.copied_streams))
        print("colorvid: " + "; ".join(notes), file=sys.stderr)
    if report.skipped:
        shown = ", ".join(map(str, report.skipped[:10])) + (" ..." if len(report.skipped) > 10
                                                             else "")
        print(f"colorvid: warning: skipped {len(report.skipped)} undecodable frame(s): {shown}",
              file=sys.stderr)
    if report.dropped_streams:
        print("colorvid: warning: not copied (the output cannot carry them): "
              + ", ".join(report.dropped_streams), file=sys.stderr)
    return 0
