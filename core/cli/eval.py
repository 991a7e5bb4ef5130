"""``colorvid eval``: the paper's results table on your own videos.

    colorvid eval --model zhang --model larsson --weights zhang=z.pth clips/ --out report
    colorvid eval --model zhang --option zhang:pretrained=false clip.mp4 --out report --frames 30

Greys each video, colorizes it with each model (plus the grey baseline), scores every registered
metric against the original and writes results.csv, results.json, report.md, contact sheets,
flicker plots and WebM clips into ``--out``. Progress goes to stderr; the summary table to stdout.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from colorvid.core.cli import CLIError
from colorvid.core.cli.colorize import parse_strength
from colorvid.core.cli.signals import interrupts_from_signals
from colorvid.core.video.stabilize import DEFAULT_STRENGTH, MAX_STRENGTH

__all__ = ["add_parser", "parse_option_value", "parse_options", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score colorizers on videos: results table, pictures, clips",
        description="Grey each video, colorize it with each model, score every metric against "
                    "the original, and write a report folder.",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR",
                   help="video files, folders whose video files are all used, image sequences "
                   "(a folder of numbered frames or frames/%%05d.png, 25 fps), or a folder of "
                   "sequences in the DAVIS layout (JPEGImages/480p/<sequence>/00000.jpg); "
                   "results are named by file or sequence")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="report folder (created)")
    p.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="colorizer to evaluate (repeat); default: every registered colorizer. "
                        "The grey baseline is always included. NAME@LABEL scores a variant of "
                        "NAME as its own row, e.g. --model lrcn --model lrcn@tiny --option "
                        "lrcn@tiny:preset=tiny")
    p.add_argument("--weights", action="append", default=[], metavar="NAME=FILE",
                   help="weights file for model NAME (passed as weights=FILE)")
    p.add_argument("--option", action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="keyword option for model NAME, e.g. zhang:pretrained=false "
                        "(true/false/none, ints and floats are converted)")
    p.add_argument("--metric", action="append", default=None, metavar="NAME",
                   help="metric to compute (repeat); default: every registered metric")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="at most N frames per video (default: all)")
    p.add_argument("--stride", type=int, default=1, metavar="K", help="use every K-th frame")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--columns", type=int, default=6, metavar="N",
                   help="frames per contact sheet (default 6)")
    p.add_argument("--device", default=None, help="device for the models, e.g. cuda")
    p.add_argument("--stabilize", nargs="?", const=str(DEFAULT_STRENGTH), metavar="STRENGTH",
                   help="also score each model through the temporal stabiliser (row "
                   f"MODEL+stabilize, bidirectional; STRENGTH 0..{MAX_STRENGTH}, default "
                   f"{DEFAULT_STRENGTH}); see docs/stabilize.md")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an existing REPORT_DIR, replacing its report files (other "
                   "files, such as colorvid ctt's ratings, are kept)")
    p.add_argument("--no-clips", action="store_true",
                   help="do not encode WebM clips (colorvid ctt needs them)")
    p.add_argument("--no-pictures", action="store_true",
                   help="skip the contact sheets and flicker plots")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def parse_option_value(text: str) -> Any:
    """``true``/``false``/``none`` (any case), ints and floats become Python values."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_options(weights: list[str], options: list[str]) -> dict[str, dict[str, Any]]:
    """``--weights NAME=FILE`` and ``--option NAME:KEY=VALUE`` -> ``{model: {key: value}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in weights:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise CLIError(f"--weights: expected NAME=FILE, got {item!r}")
        out.setdefault(name, {})["weights"] = path
    for item in options:
        name, sep, rest = item.partition(":")
        key, sep2, value = rest.partition("=")
        if not sep or not sep2 or not name or not key.isidentifier():
            raise CLIError(f"--option: expected NAME:KEY=VALUE (KEY a Python identifier), "
                           f"got {item!r}")
        out.setdefault(name, {})[key] = parse_option_value(value)
    return out


def run(args: argparse.Namespace) -> int:
    from colorvid.core.evaluation.runner import EvalConfig, claim_report_folder, evaluate
    from colorvid.core.host import get_host

    host = get_host()
    colorizers, metrics = host.names("colorizer"), host.names("metric")
    models = args.model if args.model else colorizers
    for name in models:
        if name.partition("@")[0] not in colorizers:
            raise CLIError(f"--model: unknown colorizer {name.partition('@')[0]!r}; available: "
                           f"{', '.join(colorizers)} (NAME@LABEL for a variant)")
    for name in args.metric or []:
        if name not in metrics:
            raise CLIError(f"--metric: unknown metric {name!r}; available: {', '.join(metrics)}")
    options = parse_options(args.weights, args.option)
    try:
        stabilize = None if args.stabilize is None else parse_strength(args.stabilize)
    except ValueError as e:
        raise CLIError(str(e)) from None
    config = EvalConfig(
        models=models, options=options, metrics=args.metric, frames=args.frames,
        stride=args.stride, seed=args.seed, sheet_columns=args.columns,
        write_clips=not args.no_clips, write_pictures=not args.no_pictures, device=args.device,
        stabilize=stabilize,
    )
    out = Path(args.out)
    try:
        config.validate()
        created = claim_report_folder(out, args.overwrite)
    except ValueError as e:
        raise CLIError(str(e)) from e
    try:  # Ctrl-C, SIGTERM or SIGHUP, or an error: a folder this run made is removed
        with interrupts_from_signals():
            result = evaluate(args.videos, out, config, overwrite=True,
                              progress=None if args.quiet else sys.stderr)
    except BaseException as e:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(e, (ValueError, OSError)):
            raise CLIError(f"{e}; {out} was not written" if created else str(e)) from e
        if isinstance(e, KeyboardInterrupt):
            raise CLIError("interrupted" + (f"; {out} was not written" if created else ""),
                           130) from None
        raise
    text = (result_path := f"{args.out}/report.md")
    with open(result_path, encoding="utf-8") as f:
        report = f.read()
    # The summary table is the part of report.md between its heading and the next one.
    summary = report.split("## Summary (mean over videos)", 1)[1].split("\n## ", 1)[0]
    print(f"report: {text}\n{summary.strip()}")
    failed = [c for c in result.cells if c.error is not None]
    if failed:
        print(f"colorvid eval: {len(failed)} result(s) failed; see the Failures section of "
              f"{text}", file=sys.stderr)
    return 0
