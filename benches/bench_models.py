"""Frames per second of the zhang and larsson colorizers at 256x256, against a plain eager forward.

``optimised`` is what the plugin runs: ``torch.inference_mode``, its default precision and layout
(bfloat16 channels-last on a CPU with AMX or AVX512-BF16, float32 elsewhere; channels-last on
CUDA) and, for Larsson, the fused hypercolumn head. ``plain`` is the same network called the way
the authors' released code calls it: float32, NCHW, eval mode under ``torch.no_grad``,
Larsson's concatenated hypercolumn (12,417 channels in the full preset). ``mean |d|`` is how far
the optimised output is from the plain one, in 8-bit codes of the colorized RGB frame (the
frames are the same where it is well under 1). Times are the minimum over rounds: the CPU is
shared, and the minimum is the least disturbed estimate.

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
PRESETS = ("tiny", "small", "full")
# The (model, preset) pairs that exist: larsson has no small preset.
PAIRS = tuple((m, p) for p in PRESETS for m in MODELS if (m, p) != ("larsson", "small"))
BATCHES = (1, 8)


def _grey_photo(batch: int) -> torch.Tensor:
    """Lab L ``(batch, 1, SIZE, SIZE)`` of a real photo (scikit-image's astronaut, shipped
    with the package): a difference measured on it is one a user would see."""
    import numpy as np
    from skimage.data import astronaut

    from colorvid.core.color import rgb_to_lab

    rgb = torch.from_numpy(np.ascontiguousarray(astronaut())).permute(2, 0, 1)[None].float()
    rgb = torch.nn.functional.interpolate(rgb / 255, size=(SIZE, SIZE), mode="area")
    return rgb_to_lab(rgb)[:, :1].repeat(batch, 1, 1, 1)


def _trained_state(model: str, preset: str) -> dict[str, torch.Tensor] | None:
    """Trained weights for the case: the shipped tiny file, for zhang widened to ``preset``
    (Net2Net, the same function: core/training/widen.py), so that ``mean |d|`` is measured on
    a network that colorizes; None (random weights) where there is none."""
    from colorvid.core.weights import default_weights_path

    if model != "zhang" or not default_weights_path("zhang", "tiny").is_file():
        return None
    from colorvid.core.training.widen import widen_zhang

    tiny = ZhangColorizer(preset="tiny", device="cpu", dtype="float32").net
    if preset == "tiny":
        return tiny.state_dict()
    wide = _colorizer(model, preset, dtype="float32").net
    widen_zhang(tiny, wide)
    return wide.state_dict()


def _colorizer(model: str, preset: str, **options):
    cls = ZhangColorizer if model == "zhang" else LarssonColorizer
    torch.manual_seed(0)
    return cls(preset=preset, pretrained=False, device="cpu", render_size=SIZE, **options)


def make_case(model: str, preset: str, batch: int) -> dict[str, Callable[[], object]]:
    """The two callables to time for one (model, preset, batch), on the same weights."""
    plain_net = _colorizer(model, preset, dtype="float32").net.eval()
    state = _trained_state(model, preset)
    if state is not None:
        plain_net.load_state_dict(state)
    colorizer = _colorizer(model, preset)  # the plugin's defaults
    colorizer.net.load_state_dict(plain_net.state_dict())
    L = _grey_photo(batch)

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
        return colorizer.predict_ab_lowres(L)

    return {"plain": plain, "optimised": optimised, "L": lambda: L}


def code_difference(case: dict[str, Callable[[], object]]) -> float | None:
    """Mean |difference| of the two variants' colorized RGB frames, in 8-bit codes (zhang: its
    output is ab; None for larsson, whose output is a pair of histograms)."""
    if "L" not in case:
        return None
    from colorvid.core.color import lab_to_rgb

    L = case["L"]()
    rgb = [lab_to_rgb(torch.cat([L, case[k]().float()], 1)).clamp(0, 1) * 255
           for k in ("plain", "optimised")]
    return float((rgb[0] - rgb[1]).abs().mean())


def time_pair(case: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Minimum seconds per call of each variant, rounds interleaved (plain, optimised, plain, ...)
    so that load from other processes hits both alike."""
    case = {name: fn for name, fn in case.items() if name != "L"}
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
@pytest.mark.parametrize(("model", "preset"), PAIRS)
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
    print(f"{'model':8} {'preset':6} {'batch':>5} {'plain fps':>10} {'ours fps':>10} {'ratio':>6} "
          f"{'mean |d|':>8}")
    for model, preset in PAIRS:
        if model in args.models and preset in args.presets:
            for batch in args.batches:
                case = make_case(model, preset, batch)
                t = time_pair(case, _rounds(preset, batch))
                t_plain, t_ours = t["plain"], t["optimised"]
                d = code_difference(case)
                print(f"{model:8} {preset:6} {batch:5d} {batch / t_plain:10.2f} "
                      f"{batch / t_ours:10.2f} {t_plain / t_ours:6.2f} "
                      f"{'-' if d is None else f'{d:.3f}':>8}", flush=True)


if __name__ == "__main__":
    main()
