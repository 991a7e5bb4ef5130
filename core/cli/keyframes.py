"""``colorvid keyframes INPUT -o FOLDER``: one frame per shot, named by its frame number, to paint
and hand back to ``colorvid colorize --reference FOLDER``.

    colorvid keyframes old.mp4 -o refs/                     # grey first frames: 000000.png, ...
    colorvid keyframes old.mp4 -o refs/ --pick sharpest --colour --model lrcn
    colorvid colorize old.mp4 -o colour.mp4 --reference refs/

The folder appears only when every keyframe is written (nothing on an error or Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import numpy as np

from colorvid.core.cli import CLIError
from colorvid.core.reference.keyframes import PICKS, coloured, keyframe_name, pick_keyframes
from colorvid.core.video.decode import VideoError, read_frames
from colorvid.core.video.images import ImageWriter, open_images
from colorvid.core.video.media import is_image_input
from colorvid.core.video.pipeline import DEFAULT_MODEL, ColorizeError, open_colorizer

__all__ = ["FORMATS", "add_parser", "run"]

FORMATS = ("png", "tif", "jpg", "webp", "bmp")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keyframes", help="write one frame per shot to paint as colour references",
        description="Cut INPUT into shots (the scene-cut detector of colorvid colorize) and "
        "write one frame per shot into FOLDER, named by its frame number counted from 0 "
        "(000120.png), grey or (--colour) with the automatic colour as a starting point. "
        "Paint them, then colorize with --reference FOLDER: each painted frame's colour is "
        "carried through its shot.")
    p.add_argument("input", metavar="INPUT",
                   help="video file, image sequence folder or pattern (frames/%%05d.png)")
    p.add_argument("-o", "--output", required=True, metavar="FOLDER",
                   help="folder for the keyframes (created; must be new or empty, or "
                   "--overwrite)")
    p.add_argument("--pick", choices=PICKS, default="first",
                   help="which frame of each shot: its first (default) or its sharpest "
                   "(variance of the Laplacian: no motion blur)")
    p.add_argument("--colour", "--color", action="store_true",
                   help="write the automatic colorizer's colour instead of grey")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"colorizer for --colour (default {DEFAULT_MODEL})")
    p.add_argument("--weights", metavar="FILE", help="weights file for --model")
    p.add_argument("--device", help="cpu, cuda or cuda:N for --model")
    p.add_argument("--format", choices=FORMATS, default="png",
                   help="image format (default png: lossless, what painting tools open)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FOLDER")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    p.set_defaults(func=run)


def _frames(src: str) -> Iterator[np.ndarray]:
    if src == "-":
        raise ColorizeError("keyframes reads a file or an image sequence, not a pipe")
    if is_image_input(src):
        source = open_images(src)
        if source.kind != "sequence":
            raise ColorizeError(f"{src}: not a video or an image sequence; accepted: a video "
                                "file, a folder of numbered frames or frames/%05d.png")
        yield from source.frames()
    else:
        for _, rgb in read_frames(src):
            yield rgb


def run(args: argparse.Namespace) -> int:
    try:
        colorizer = open_colorizer(args.model, args.weights, args.device) if args.colour \
            else None
        with ImageWriter(args.output.rstrip("/") + "/", overwrite=args.overwrite) as writer:
            keys = list(pick_keyframes(_frames(args.input), args.pick))
            if not keys:
                raise ColorizeError(f"{args.input}: no frame decoded; nothing written")
            images = coloured(keys, colorizer) if colorizer is not None \
                else [k.grey for k in keys]
            for key, rgb in zip(keys, images, strict=True):
                writer.write(rgb, name=keyframe_name(key.number, f".{args.format}"))
            writer.finish()
    except (ColorizeError, VideoError) as e:
        raise CLIError(str(e).splitlines()[0] if str(e) else type(e).__name__, 1) from e
    except KeyboardInterrupt:
        raise CLIError(f"interrupted; {args.output} was not written", 130) from None
    if not args.quiet:
        numbers = ", ".join(str(k.number) for k in keys[:10]) + (" ..." if len(keys) > 10
                                                                  else "")
        print(f"colorvid: {len(keys)} keyframe(s) -> {args.output} (frames {numbers})",
              file=sys.stderr)
    return 0
