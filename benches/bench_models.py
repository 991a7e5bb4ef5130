"""Frames per second of the zhang and larsson colorizers at 256x256, against a plain eager forward.

``optimised`` is what the plugin runs: ``torch.inference_mode`` (channels-last on CUDA only) and,
for Larsson, the fused hypercolumn head. ``plain`` is the same network called the obvious way:
eval mode under ``torch.no_grad``, Larsson's concatenated hypercolumn (12,417 channels in the full
preset). Both produce the same numbers (tests/models check it); only the speed differs. Times are
the minimum over rounds: the CPU is shared, and the minimum is the least disturbed estimate.

    make bench                                   # pytest-benchmark, all cases
    python benches/bench_models.py               # table of fps and ratios (tiny, then full)
    python benches/bench_models.py --presets tiny --batches 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pytest
import torch

from colorvid.plugins.models.larsson import LarssonColorizer
from colorvid.plugins.models.zhang import ZhangColorizer

SIZE = 256  # both models' default render size
MODELS = ("zhang", "larsson")
PRESETS = ("tiny", "full")
BATCHES = (1, 8)


def _colorizer(model: str, preset: str):
    cls = ZhangColorizer if model == "zhang" else LarssonColorizer
    torch.manual_seed(0)
    return cls(preset=preset, pretrained=False, device="cpu", render_size=SIZE)


def make_case(model: str, preset: str, batch: int) -> dict[str, Callable[[], object]]:
    """The two callables to time for one (model, preset, batch)."""
    colorizer = _colorizer(model, preset)
    L = torch.rand(batch, 1, SIZE, SIZE) * 100
    plain_net = _colorizer(model, preset).net.eval()
    plain_net.load_state_dict(colorizer.net.state_dict())

    if model == "zhang":
        def plain() -> object:
            with torch.no_grad():
                return plain_net(L)
    else:
        from colorvid.plugins.models.larsson import l_to_grey

        grey = l_to_grey(L)

        def plain() -> object:
            with torch.no_grad():
                return plain_net(grey, "plain")

        def optimised_net() -> object:
            return colorizer.histograms(grey)

        return {"plain": plain, "optimised": optimised_net}

    def optimised() -> object:
        with torch.inference_mode():
            return colorizer.net(colorizer._prepare(L))

    return {"plain": plain, "optimised": optimised}


def time_pair(case: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Minimum seconds per call of each variant, rounds interleaved (plain, optimised, plain, ...)
    so that load from other processes hits both alike."""
    times: dict[str, list[float]] = {name: [] for name in case}
    for fn in case.values():
        fn()  # warm-up: oneDNN primitive creation, allocator
    for _ in range(rounds):
        for name, fn in case.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def _rounds(preset: str, batch: int) -> int:
    # Keeps the whole table to a few minutes on 2 cores; full batch 8 is ~1 min per call.
    return 1 if preset == "full" and batch > 1 else 2 if preset == "full" else 5


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("variant", ("optimised", "plain"))
def test_fps(benchmark, model: str, preset: str, batch: int, variant: str) -> None:
    fn = make_case(model, preset, batch)[variant]
    benchmark.pedantic(fn, rounds=_rounds(preset, batch), iterations=1, warmup_rounds=1)
    benchmark.extra_info["fps"] = batch / benchmark.stats.stats.min


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {SIZE}x{SIZE}, CPU")
    print(f"{'model':8} {'preset':6} {'batch':>5} {'plain fps':>10} {'ours fps':>10} {'ratio':>6}")
    for preset in args.presets:
        for model in args.models:
            for batch in args.batches:
                case = make_case(model, preset, batch)
                t = time_pair(case, _rounds(preset, batch))
                t_plain, t_ours = t["plain"], t["optimised"]
                print(f"{model:8} {preset:6} {batch:5d} {batch / t_plain:10.2f} "
                      f"{batch / t_ours:10.2f} {t_plain / t_ours:6.2f}", flush=True)


if __name__ == "__main__":
    main()
