"""``colorvid colorize --reference FOLDER``: the options that colour a video from painted frames.

    colorvid keyframes old.mp4 -o refs/          # one grey frame per shot, to paint
    colorvid colorize old.mp4 -o colour.mp4 --reference refs/ --model none

``--model`` names the automatic colorizer for what the references cannot reach (``none``: no
automatic colour). Not a sub-command: ``colorvid.core.cli.colorize`` adds these options.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from colorvid.core.reference.colorizer import REACHES, ReferenceColorizer, open_reference_colorizer
from colorvid.core.video.pipeline import ColorizeError, VideoColorizer

__all__ = ["NO_MODEL", "add_reference_options", "load_reference_colorizer"]

NO_MODEL = "none"  # --model none: references only, no automatic colorizer


def add_reference_options(p: argparse.ArgumentParser) -> None:
    """``--reference FOLDER`` and ``--reference-reach`` (colorize only: one video's frames)."""
    p.add_argument("--reference", metavar="FOLDER",
                   help="colour the video from painted frames: colour images named by frame "
                   "number counted from 0 (000120.png; any size, only their colour is used), "
                   "carried through each shot along the motion; --model colours what they "
                   f"cannot reach (--model {NO_MODEL}: nothing); see docs/references.md")
    p.add_argument("--reference-reach", choices=REACHES, default="shot",
                   help="shot (default): a reference colours its own shot only; video: shots "
                   "without a reference take colour matched by content from every reference")


def load_reference_colorizer(args: argparse.Namespace,
                             load_colorizer: Callable[[argparse.Namespace], VideoColorizer]
                             ) -> ReferenceColorizer:
    """The references of ``--reference``, checked against the input, with ``--model`` (loaded
    by ``load_colorizer``) as the fallback."""
    for flag, value in (("--start", args.start), ("--duration", args.duration)):
        if value is not None:
            raise ColorizeError(f"--reference with {flag}: reference numbers count from the "
                                "input's first frame; colorize the whole input")
    if args.stills:
        raise ColorizeError("--reference with --stills: references need a video or an image "
                            "sequence")
    if args.input == "-":
        raise ColorizeError("--reference: the input must be a file or an image sequence, not a "
                            "pipe (shots are read ahead)")
    fallback = None if args.model == NO_MODEL else load_colorizer(args)
    return open_reference_colorizer(args.reference, fallback, src=args.input,
                                    reach=args.reference_reach)
