"""Reference propagation: quality against the truth, and speed at 576p.

Quality (``quality``): each clip's true colour frames become the references (the first frame of
every shot, or with ``--first`` frame 0 only), the clip is greyed and colorized from them
(``colorvid.core.reference.evaluate``); hue accuracy and PSNR on every other frame, for the
static copy (each reference's ab pasted on the following frames, no motion) and the propagation,
plus the reference frames' own mean Lab ab error. ``--model`` adds the automatic fallback (off by
default), ``--reach video`` lets references colour shots without one.

    .venv/bin/python benches/bench_references.py quality /work/shared/corpus/video/heldout/*
    .venv/bin/python benches/bench_references.py quality --first \\
        /work/shared/corpus/video/train/bikes.mp4 --reach video

Speed (``speed``): frames/s of ``ReferenceColorizer.stream`` with no automatic model on 1024 x
576 frames (a real clip enlarged, its shots' first frames as references), decoding and encoding
excluded; also the machine's load average, since on 2 shared cores it moves every figure.

    .venv/bin/python benches/bench_references.py speed
    .venv/bin/python benches/bench_references.py strip     # docs/img/references_strip.png
    .venv/bin/python -m pytest benches/bench_references.py --benchmark-only

Fill (``fill``): inside shots that have a reference, is the colour carried or matched from it or
the automatic model's nearer the truth, by the propagation's confidence? Per confidence band:
the share of pixels and the mean Lab ab distance to the truth of each (the first frame of every
shot with colour is the reference; at most ``--frames`` frames a clip):

    .venv/bin/python benches/bench_references.py fill --model lrcn \\
        /work/shared/corpus/video/train/*.mp4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SPEED_CLIP = Path("/work/shared/corpus/video/heldout/cityCC0.mpg")
SPEED_SIZE = (576, 1024)  # (H, W): 576p
SPEED_FRAMES = 48


def speed_frames(clip: Path = SPEED_CLIP, frames: int = SPEED_FRAMES,
                 size: tuple[int, int] = SPEED_SIZE) -> list[np.ndarray]:
    """``frames`` frames of ``clip`` enlarged to ``size`` (RGB uint8)."""
    from colorvid.core.video.decode import read_frames

    h, w = size
    return [cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
            for _, rgb in read_frames(clip, count=frames)]


def measure_speed(frames: list[np.ndarray], rounds: int = 1) -> dict[str, float]:
    """Frames/s of the reference stream (best of ``rounds``), shot starts as references."""
    from colorvid.core.frames import frames_to_l
    from colorvid.core.reference.colorizer import ReferenceColorizer
    from colorvid.core.reference.evaluate import reference_numbers
    from colorvid.core.reference.keyframes import grey_frame

    numbers = reference_numbers(frames, "shots")
    grey = [grey_frame(frames_to_l(f)) for f in frames]
    best = cpu = float("inf")
    for _ in range(rounds):
        rc = ReferenceColorizer({n: frames[n] for n in numbers})
        began, began_cpu = time.perf_counter(), time.process_time()
        for _ in rc.stream(grey):
            pass
        best = min(best, time.perf_counter() - began)
        cpu = min(cpu, time.process_time() - began_cpu)
    # CPU seconds (all threads of this process) are what an idle machine would spend; wall
    # seconds also hold the waits behind other processes (see the load average).
    return {"frames": len(frames), "seconds": best, "frames_per_second": len(frames) / best,
            "cpu_seconds": cpu, "frames_per_cpu_second": len(frames) / cpu,
            "load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count() or 0}


def quality(args: argparse.Namespace) -> int:
    import colorvid
    from colorvid.core.reference.evaluate import evaluate_clip

    fallback = None if args.model is None else colorvid.open_colorizer(args.model)
    print("| clip | references | static hue | hue | static PSNR | PSNR | PSNR - static | "
          "reference ab error | frames/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for clip in args.clips:
        r = evaluate_clip(clip, references="first" if args.first else "shots",
                          fallback=fallback, reach=args.reach, frames=args.frames)
        s, p = r["static"], r["propagated"]
        rows[Path(clip).name] = r
        print(f"| {Path(clip).name} | {int(p['references'])} | {s['hue_accuracy']:.3f} | "
              f"{p['hue_accuracy']:.3f} | {s['psnr']:.2f} | {p['psnr']:.2f} | "
              f"{p['psnr'] - s['psnr']:+.2f} | {p['reference_ab_error']:.3f} | "
              f"{p['frames_per_second']:.1f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def speed(args: argparse.Namespace) -> int:
    result = measure_speed(speed_frames(frames=args.frames or SPEED_FRAMES), args.rounds)
    print(json.dumps(result))
    return 0


def strip(args: argparse.Namespace) -> int:
    """The picture of docs/references.md: reference | propagated frames, over the grey
    keyframe | the original frames."""
    from colorvid.core.frames import frames_to_l
    from colorvid.core.reference.colorizer import ReferenceColorizer
    from colorvid.core.reference.keyframes import grey_frame
    from colorvid.core.video.decode import read_frames
    from colorvid.core.video.images import write_image

    truth = [rgb for _, rgb in read_frames(args.clip)]
    grey = [grey_frame(frames_to_l(f)) for f in truth]
    out = list(ReferenceColorizer({0: truth[0]}).stream(grey))
    shown = [round(x) for x in np.linspace(0, len(truth) - 1, args.columns)[1:]]

    def label(img: np.ndarray, text: str) -> np.ndarray:
        img = img.copy()
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        cv2.rectangle(img, (0, 0), (w + 8, h + 8), (0, 0, 0), -1)
        cv2.putText(img, text, (4, h + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
        return img

    top = [label(truth[0], "reference (frame 0)")] + [label(out[t], f"propagated {t}")
                                                      for t in shown]
    bottom = [label(grey[0], "keyframe to paint")] + [label(truth[t], f"original {t}")
                                                      for t in shown]
    write_image(args.out, np.concatenate([np.concatenate(top, 1), np.concatenate(bottom, 1)]))
    print(args.out)
    return 0


FILL_BANDS = (0.0, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)


def fill(args: argparse.Namespace) -> int:
    import torch

    import colorvid
    from colorvid.core.color import rgb_to_lab
    from colorvid.core.frames import frames_to_l, lab_to_frames, to_rgb_float
    from colorvid.core.reference import colorizer as rcmod
    from colorvid.core.reference.match import ReferenceMatcher
    from colorvid.core.reference.propagate import propagate, shot_flow, shot_motion
    from colorvid.core.video.decode import read_frames
    from colorvid.core.video.scenecut import SceneCutDetector

    model = colorvid.open_colorizer(args.model)
    bands = np.asarray(FILL_BANDS)
    pixels = np.zeros(len(bands) - 1)
    err = {"reference": np.zeros(len(bands) - 1), "model": np.zeros(len(bands) - 1)}
    for clip in args.clips:
        truth = [rgb for _, rgb in read_frames(clip, count=args.frames)]
        L = torch.cat([frames_to_l(f, "cpu") for f in truth])  # (T, 1, H, W)
        detector = SceneCutDetector()
        cuts = [t for t in range(1, len(truth)) if bool(detector(L[t:t + 1])[0])]
        size = rcmod.work_size(*L.shape[-2:])
        lab = rcmod._shrink(rgb_to_lab(to_rgb_float(np.stack(truth))), size).numpy()
        for a, b in zip([0, *cuts], [*cuts, len(truth)], strict=True):
            if np.hypot(*lab[a, 1:]).mean() < 2.0:  # a grey first frame: nothing to carry
                continue
            Lw = lab[a:b, 0]
            flow = shot_flow(*size)
            refs = {0: lab[a, 1:]}
            ab, conf = propagate(Lw, refs, shot_motion(Lw, flow),
                                 {0: ReferenceMatcher([(Lw[0], lab[a, 1:])])}, flow)
            grey = lab_to_frames(L[a:b], torch.zeros(b - a, 2, 1, 1), upsample=True)
            auto = np.stack(list(model.stream(grey)))
            auto_ab = rcmod._shrink(rgb_to_lab(to_rgb_float(auto))[:, 1:], size).numpy()
            band = np.clip(np.digitize(conf[1:], bands) - 1, 0, len(bands) - 2)
            truth_ab = lab[a + 1:b, 1:]
            for name, pred in (("reference", ab[1:]), ("model", auto_ab[1:])):
                d = np.hypot(*(pred - truth_ab).transpose(1, 0, 2, 3))  # (T-1, h, w)
                err[name] += np.bincount(band.ravel(), d.ravel(), len(bands) - 1)
            pixels += np.bincount(band.ravel(), minlength=len(bands) - 1)
        print(f"{Path(clip).name}: {len(cuts) + 1} shot(s)", file=sys.stderr, flush=True)
    print(f"| confidence | share of pixels | reference colour's ab error | "
          f"{args.model}'s ab error |")
    print("|---|---|---|---|")
    for i in range(len(bands) - 1):
        n = max(pixels[i], 1.0)
        print(f"| {bands[i]:.2f}-{bands[i + 1]:.2f} | {pixels[i] / pixels.sum():.3f} | "
              f"{err['reference'][i] / n:.2f} | {err['model'][i] / n:.2f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality", help="static copy vs propagation against the truth")
    q.add_argument("clips", nargs="+")
    q.add_argument("--first", action="store_true", help="frame 0 the only reference")
    q.add_argument("--model", help="automatic fallback colorizer (default: none)")
    q.add_argument("--reach", choices=("shot", "video"), default="shot")
    q.add_argument("--frames", type=int, help="at most this many frames a clip")
    q.add_argument("--json", help="also write the rows as JSON here")
    q.set_defaults(func=quality)
    s = sub.add_parser("speed", help="frames/s at 576p, no automatic model")
    s.add_argument("--frames", type=int)
    s.add_argument("--rounds", type=int, default=1)
    s.set_defaults(func=speed)
    p = sub.add_parser("strip", help="the picture of docs/references.md")
    p.add_argument("clip", nargs="?",
                   default="/work/shared/corpus/video/heldout/carphone_pristine.mp4")
    p.add_argument("--out", default=str(REPO / "docs" / "img" / "references_strip.png"))
    p.add_argument("--columns", type=int, default=4)
    p.set_defaults(func=strip)
    f = sub.add_parser("fill", help="reference colour vs the model's, by confidence")
    f.add_argument("clips", nargs="+")
    f.add_argument("--model", default="lrcn")
    f.add_argument("--frames", type=int, default=90)
    f.set_defaults(func=fill)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.skipif(not SPEED_CLIP.exists(), reason="the corpus clip is not on this machine")
def test_reference_speed_576p(benchmark):
    frames = speed_frames(frames=16)
    result = benchmark.pedantic(measure_speed, args=(frames,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)


if __name__ == "__main__":
    sys.exit(main())
