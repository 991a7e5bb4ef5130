"""``colorvid colorize INPUT -o OUTPUT``: colorize a video file, y4m on a pipe (``-``), an image
sequence, a still image or a folder of stills (colorvid.core.video.images).

    colorvid colorize old.mp4 -o colour.mp4 --model lrcn --device cuda
    colorvid colorize scans/%05d.tif -o colour/%05d.tif --fps 24
    colorvid colorize photo.jpg -o photo.png
    ffmpeg -i old.mkv -f yuv4mpegpipe - | colorvid colorize - -o - | ffmpeg -i - colour.mkv

Every problem the user can fix is one line on stderr and a non-zero exit (cli.CLIError);
Ctrl-C (or SIGTERM) removes the partial output and exits 130.
"""

from __future__ import annotations

import argparse
import math
import sys

from colorvid.core.cli import CLIError
from colorvid.core.cli.references import add_reference_options, load_reference_colorizer
from colorvid.core.cli.signals import interrupts_from_signals
from colorvid.core.files import OutputError
from colorvid.core.interfaces import MAX_RENDER_SIZE
from colorvid.core.video.decode import VideoError
from colorvid.core.video.images import DEFAULT_FPS, FPS_RANGE
from colorvid.core.video.media import MediaReport, colorize_media, is_image_input
from colorvid.core.video.pipeline import (
    DEFAULT_BATCH,
    DEFAULT_MODEL,
    ColorizeError,
    VideoColorizer,
    open_colorizer,
)
from colorvid.core.video.progress import MODES, ProgressMode
from colorvid.core.video.stabilize import DEFAULT_STRENGTH, MAX_STRENGTH, StabilizeOptions

__all__ = ["add_options", "add_parser", "colorize_input", "load_colorizer", "parse_strength",
           "report_warnings", "run"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
# --pipeline: the engine of VideoColorizer.stream (None: pipeline.auto_pipelined decides).
PIPELINE_MODES = {"auto": None, "threads": True, "sequential": False}


def _positive(what: str, minimum: int = 1, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{what} must be from {minimum} to {maximum}, got "
                                             f"{value}")
        return value

    return parse


def parse_time(text: str) -> float:
    """Seconds as ffmpeg's -ss/-t read them: ``12.5``, ``MM:SS[.mmm]`` or ``HH:MM:SS[.mmm]``."""
    parts = text.split(":")
    try:
        if len(parts) > 3 or any(not p for p in parts):
            raise ValueError
        value = 0.0
        for part in parts:
            value = value * 60 + float(part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not a time; accepted: seconds (12.5) or "
                                         "[HH:]MM:SS[.mmm] (or a frame number on sequences)"
                                         ) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: not a finite time; accepted: seconds (12.5) "
                                         "or [HH:]MM:SS[.mmm]")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a time must be >= 0")
    return value


def parse_strength(text: str) -> float:
    """``--stabilize STRENGTH``: a number from 0 to MAX_STRENGTH (the history's share); a
    one-line ``ValueError`` that says what is accepted otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= MAX_STRENGTH:
        raise ValueError(
            f"--stabilize: STRENGTH must be a number from 0 to {MAX_STRENGTH} (default "
            f"{DEFAULT_STRENGTH}), got {text!r} (with no STRENGTH, put --stabilize after INPUT)")
    return value


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    low, high = FPS_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"--fps must be a number from {low:g} to {high:g}, got "
                                         f"{text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "colorize", help="colorize a video file or a y4m pipe",
        description="Colorize a video: decodes INPUT, predicts colour for every frame (temporal "
        "models in order, reset at scene cuts) and encodes OUTPUT with the same frame rate, "
        "timestamps and frame count, copying audio, subtitles and metadata. '-' reads y4m from "
        "stdin / writes y4m to stdout. INPUT may also be an image sequence (a folder of "
        "numbered frames, or a pattern such as frames/%05d.png; png, jpg, webp, tif, bmp, 8 or "
        "16 bit), one still image, or a folder of stills: a folder is a sequence when every "
        "image name ends in a number, else (or with --stills) a folder of unrelated stills, "
        "each colorized on its own with no temporal state between them. A gap in a sequence's "
        "numbering is a warning; frames of different sizes in a sequence are an error.")
    p.add_argument("input", metavar="INPUT",
                   help="video file, - for y4m on stdin, image, folder or frames/%%05d.png")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output video (container from its extension), - for y4m on stdout, "
                   "an image, a sequence pattern (out/%%05d.png: input numbering and 16-bit "
                   "png/tif depth kept) or a folder (stills keep their names)")
    add_options(p)
    add_reference_options(p)
    p.set_defaults(func=run)


def add_options(p: argparse.ArgumentParser) -> None:
    """Every option of colorize but INPUT and -o: ``colorvid batch`` takes the same ones."""
    p.add_argument("--fps", type=_fps, default=DEFAULT_FPS,
                   help=f"frame rate of image sequences, {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g} "
                   f"(default {DEFAULT_FPS:g})")
    p.add_argument("--stills", action="store_true",
                   help="treat a folder as unrelated stills even if its names are numbered")
    p.add_argument("--start", metavar="TIME",
                   help="colorize from TIME (seconds or HH:MM:SS.mmm, as ffmpeg -ss; frame "
                   "number on image sequences); audio is cut to match")
    p.add_argument("--duration", metavar="TIME",
                   help="colorize this long (as ffmpeg -t; a frame count on image sequences)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"registered colorizer (default {DEFAULT_MODEL}; see colorvid plugins)")
    p.add_argument("--weights", metavar="FILE", help="weights file for the model")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: the model's choice)")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16"),
                   help="the network's precision (default: the model's, auto: bfloat16 on a "
                   "CPU that computes it natively, float32 elsewhere; float32 for the exact "
                   "float32 frames)")
    p.add_argument("--batch", type=_positive("--batch"), default=DEFAULT_BATCH,
                   help=f"frames per model call (default {DEFAULT_BATCH})")
    p.add_argument("--pipeline", choices=tuple(PIPELINE_MODES), default="auto",
                   help="threads: decode, model and conversions in threads of their own; "
                   "sequential: one after another; auto (default): threads on a GPU or when "
                   "torch leaves CPU cores free, else sequential (faster on a busy CPU)")
    p.add_argument("--render-size", type=_positive("--render-size", 16, MAX_RENDER_SIZE),
                   metavar="N", help="internal square resolution of the model, 16 to "
                   f"{MAX_RENDER_SIZE} (default: the model's)")
    p.add_argument("--stabilize", nargs="?", const=str(DEFAULT_STRENGTH), metavar="STRENGTH",
                   help="remove colour flicker: blend each frame's colour with the previous "
                   "frames' moved along the optical flow, where the motion is reliable (any "
                   f"--model; STRENGTH 0..{MAX_STRENGTH}, the history's share, default "
                   f"{DEFAULT_STRENGTH}); see docs/stabilize.md")
    p.add_argument("--stabilize-mode", choices=("bidirectional", "forward"),
                   help="bidirectional (default): a backward pass too, merged with the forward "
                   "one (holds 32 frames); forward: one pass, no frames held")
    p.add_argument("--codec", help="video encoder (default: libx264 for mp4/mkv/mov/avi, "
                   "libvpx-vp9 for webm, rawvideo for y4m)")
    p.add_argument("--crf", type=_positive("--crf", 0), help="constant-rate factor "
                   "(x264/x265 default 18/20, vp9 31, svt-av1 30)")
    p.add_argument("--preset", help="encoder speed preset: x264/x265 ultrafast .. placebo "
                   "(default medium; faster presets leave more CPU to the model), svt-av1 13 .. 0")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.add_argument("--skip-errors", action="store_true",
                   help="drop frames that fail to decode instead of stopping")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--progress", choices=MODES, default="bar",
                   help="progress on stderr: bar (default), json lines, or quiet")


def _checked_dtype(args: argparse.Namespace) -> str:
    """``--dtype``, refused up front for a model whose factory has no ``dtype`` option."""
    _check_model_takes(args, "dtype", "--dtype", "has no precision option")
    return args.dtype


def _check_model_takes(args: argparse.Namespace, option: str, flag: str, lacks: str) -> None:
    """Refuse ``flag`` up front when the model's factory has no ``option`` keyword."""
    from colorvid.core.host import accepted_options, get_host

    try:
        factory = get_host().entry("colorizer", args.model).factory
    except KeyError:  # an unknown model: open_colorizer says so, with the registered names
        return
    accepted = accepted_options(factory)
    if accepted is not None and option not in accepted:
        raise ColorizeError(f"{flag}: model {args.model!r} {lacks} (it takes "
                            f"{', '.join(sorted(accepted)) or 'no options'})")


def load_colorizer(args: argparse.Namespace, device: str | None = None) -> VideoColorizer:
    """The colorizer that colorize's options ask for, loaded once (``device`` overrides
    ``--device``: ``colorvid batch`` gives each worker its own GPU)."""
    stabilize = _stabilize(args)
    if args.weights is not None:
        _check_model_takes(args, "weights", "--weights", "takes no weights file")
    try:
        dtype = {} if args.dtype is None else {"dtype": _checked_dtype(args)}
        return open_colorizer(args.model, args.weights, device or args.device, batch=args.batch,
                              render_size=args.render_size,
                              pipelined=PIPELINE_MODES[args.pipeline], stabilize=stabilize,
                              **dtype)
    except ValueError as e:  # options the model refuses (e.g. its render-size limits)
        raise ColorizeError(f"--model {args.model}: {e}") from e


def colorize_input(args: argparse.Namespace, vc: VideoColorizer, src: str, dst: str, *,
                   progress: ProgressMode = "quiet") -> MediaReport:
    """Colorize ``src`` into ``dst`` with colorize's other options and a loaded colorizer:
    what ``colorvid colorize`` runs once and ``colorvid batch`` runs for every input."""
    start, duration = _section(args, src)
    return colorize_media(src, dst, vc, fps=args.fps, stills=args.stills,
                          start=start, duration=duration, codec=args.codec,
                          crf=args.crf, preset=args.preset, overwrite=args.overwrite,
                          skip_errors=args.skip_errors, progress=progress)


def run(args: argparse.Namespace) -> int:
    progress = "quiet" if args.quiet else args.progress
    # A render farm stops jobs with SIGTERM, a closed terminal sends SIGHUP: both clean up
    # exactly as Ctrl-C does.
    try:
        with interrupts_from_signals():
            vc = load_reference_colorizer(args, load_colorizer) if args.reference \
                else load_colorizer(args)
            report = colorize_input(args, vc, args.input, args.output, progress=progress)
    except (ColorizeError, VideoError, OutputError) as e:
        raise CLIError(str(e).splitlines()[0] if str(e) else type(e).__name__, 1) from e
    except KeyboardInterrupt:
        where = "" if args.output == "-" else f"; {args.output} was not written"
        raise CLIError(f"interrupted{where}", EXIT_INTERRUPTED) from None
    if progress != "quiet":
        notes = [f"{report.frames_out} frames -> {args.output}"]
        if vc.scene_cuts:
            notes.append(f"{len(vc.scene_cuts)} scene cut(s)")
        if report.copied_streams:
            notes.append("copied " + ", ".join(report.copied_streams))
        print("colorvid: " + "; ".join(notes), file=sys.stderr)
    for warning in report_warnings(args.input, report):
        print(f"colorvid: warning: {warning}", file=sys.stderr)
    return 0


def report_warnings(src: str, report: MediaReport) -> list[str]:
    """What a finished colorization warns about (skipped frames, a short input, dropped
    streams), one line each: printed by colorize, kept in the manifest by batch."""
    warnings = []
    if report.skipped:
        shown = ", ".join(map(str, report.skipped[:10])) + (" ..." if len(report.skipped) > 10
                                                             else "")
        warnings.append(f"skipped {len(report.skipped)} undecodable frame(s): {shown}")
    warnings += getattr(report, "warnings", [])
    if report.expected:
        warnings.append(f"{src}: input ended early: decoded "
                        f"{report.frames_in + len(report.skipped)} of the {report.expected} "
                        "frames the container declares")
    if report.dropped_streams:
        warnings.append("not copied (the output cannot carry them): "
                        + ", ".join(report.dropped_streams))
    return warnings


def _stabilize(args: argparse.Namespace) -> StabilizeOptions | None:
    """--stabilize [STRENGTH] and --stabilize-mode as options (None: not asked for)."""
    if args.stabilize is None:
        if args.stabilize_mode is not None:
            raise ColorizeError("--stabilize-mode applies with --stabilize (e.g. --stabilize "
                                f"--stabilize-mode {args.stabilize_mode})")
        return None
    try:
        strength = parse_strength(args.stabilize)
    except ValueError as e:
        raise ColorizeError(str(e)) from None
    return StabilizeOptions(strength=strength, bidirectional=args.stabilize_mode != "forward")


def _section(args: argparse.Namespace, src: str) -> tuple[float | None, float | None]:
    """--start/--duration: frame numbers on image inputs, seconds (ffmpeg syntax) on videos."""
    values = []
    for flag, text in (("--start", args.start), ("--duration", args.duration)):
        if text is None:
            values.append(None)
        elif is_image_input(src):
            if not text.isdigit():
                raise ColorizeError(f"{flag} {text}: on image sequences a frame number is "
                                    f"accepted (e.g. {flag} 100)")
            values.append(float(int(text)))
        else:
            try:
                values.append(parse_time(text))
            except argparse.ArgumentTypeError as e:
                raise ColorizeError(f"{flag} {e}") from None
    if values[1] is not None and values[1] <= 0:
        raise ColorizeError("--duration must be > 0")
    return values[0], values[1]
