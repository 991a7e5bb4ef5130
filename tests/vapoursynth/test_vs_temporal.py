"""Temporal colorizers in the filter: window n-5..n, scene-cut resets, order independence, cache."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from vs_helpers import WindowTemporalColorizer, all_frames, clip_from_planes, frame_planes

import colorvid
from colorvid.core.bins import AB_BINS_SHA256
from colorvid.core.color import rgb_to_lab
from colorvid.core.vapoursynth.color import grey_to_l

vs = pytest.importorskip("vapoursynth")

LENGTH = 12
LEVELS = [0.1 + 0.05 * n for n in range(LENGTH)]
CUT_PREV = 5  # frame 5 carries _SceneChangePrev=1: a new scene starts there
CUT_NEXT = 8  # frame 8 carries _SceneChangeNext=1: a new scene starts at 9


@pytest.fixture
def ramp(core):
    """GRAYS frames of distinct grey levels, with the two scene cuts above."""
    frames = [[np.full((8, 16), v, np.float32)] for v in LEVELS]
    clip = clip_from_planes(core, vs.GRAYS, frames)
    return (clip[:CUT_PREV] + clip[CUT_PREV].std.SetFrameProps(_SceneChangePrev=1)
            + clip[CUT_PREV + 1 : CUT_NEXT] + clip[CUT_NEXT].std.SetFrameProps(_SceneChangeNext=1)
            + clip[CUT_NEXT + 1 :])


def _expected_ab(n: int, window: int = 6) -> tuple[float, float]:
    start = max(0, n - window + 1)
    for cut in (CUT_PREV, CUT_NEXT + 1):
        if start < cut <= n:
            start = cut
    L = grey_to_l(np.array(LEVELS[start : n + 1], np.float32)).astype(np.float64)
    return float(L.mean() - L[-1]), 4.0 * (n - start + 1) - 12.0


def _lab(frame_list) -> torch.Tensor:
    rgb = torch.from_numpy(np.stack([np.stack(f) for f in frame_list])).double()
    return rgb_to_lab(rgb)


def _in_order(clip, order):
    got = {n: frame_planes(clip.get_frame(n)) for n in order}
    return [got[n] for n in range(clip.num_frames)]


@pytest.mark.parametrize("model", ["vs-window", "vs-sequence"])
def test_window_and_scene_cuts(core, ramp, test_colorizers, model):
    """Frame n sees frames max(n-5, last cut)..n: the fixture encodes the window in ab."""
    out = core.colorvid.Colorize(ramp, model=model)
    assert out.format.id == vs.RGBS
    lab = _lab(all_frames(out))
    for n in range(LENGTH):
        a, b = _expected_ab(n)
        assert abs(lab[n, 1].mean().item() - a) < 0.01, n
        assert abs(lab[n, 2].mean().item() - b) < 0.01, n
    short = _lab(all_frames(core.colorvid.Colorize(ramp, model=model, window=3)))
    assert abs(short[4, 2].mean().item() - _expected_ab(4, window=3)[1]) < 0.01


def test_random_order_equals_sequential(core, ramp, test_colorizers, threads):
    threads(4)
    sequential = _in_order(core.colorvid.Colorize(ramp, model="vs-window"), range(LENGTH))
    order = list(range(LENGTH))
    random.Random(3).shuffle(order)
    shuffled = _in_order(core.colorvid.Colorize(ramp, model="vs-window"), order)
    backwards = _in_order(core.colorvid.Colorize(ramp, model="vs-window"), order[::-1])
    for a, b, c in zip(sequential, shuffled, backwards, strict=False):
        for pa, pb, pc in zip(a, b, c, strict=False):
            assert np.array_equal(pa, pb) and np.array_equal(pa, pc)


def test_linear_playback_costs_one_cnn_pass_per_frame(core, ramp, test_colorizers, threads):
    threads(1)
    clip = core.colorvid.Colorize(ramp, model="vs-window")
    for n in range(LENGTH):
        clip.get_frame(n)
    # Each call is padded to batch_size 1: the list counts one entry per frame pushed through.
    assert sum(WindowTemporalColorizer.feature_frames) == LENGTH


def _save_random_weights(model: str, path) -> str:
    """The tiny preset's (seeded) random initialisation, saved the way shipped weights are."""
    from colorvid.core.weights import save_weights

    torch.manual_seed(0)
    net = colorvid.create_colorizer(model, pretrained=False, preset="tiny").net
    save_weights(path, net.state_dict(),
                 {"model": model, "preset": "tiny", "bins_sha256": AB_BINS_SHA256})
    return str(path)


def test_real_lrcn_is_order_independent(core, carphone, tmp_path, threads):
    """The real LRCN plugin through core.colorvid.LRCN: seek-safe, luma kept."""
    if "lrcn" not in colorvid.get_host().names("colorizer"):
        pytest.skip("the lrcn colorizer is not registered")
    weights = _save_random_weights("lrcn", tmp_path / "lrcn.safetensors")
    clip = carphone(vs.YUV420P8)
    clip = clip[:2] + clip[2].std.SetFrameProps(_SceneChangePrev=1) + clip[3:]
    threads(2)
    def make():
        return core.colorvid.LRCN(clip, weights=weights, render_size=32, device="cpu")
    sequential = _in_order(make(), range(clip.num_frames))
    backwards = _in_order(make(), range(clip.num_frames)[::-1])
    source = all_frames(clip)
    for a, b, s in zip(sequential, backwards, source, strict=False):
        np.testing.assert_array_equal(a[0], s[0])
        for pa, pb in zip(a, b, strict=False):
            np.testing.assert_array_equal(pa, pb)
    # The colour really comes from the model (random weights still give some chroma).
    assert max(np.abs(f[1].astype(int) - 128).max() for f in sequential) > 0
