"""colorvid.core.vapoursynth.stabilize: the stabiliser as a VapourSynth filter, on real cores.

Frame n must come out the same whatever order frames are requested in; the luma of YUV clips
is the input's, bit for bit; scene-change props stop the window; bad options fail at once."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
from vs_helpers import all_frames, clip_from_planes, frame_planes

from colorvid.core.vapoursynth.stabilize import StabilizeError, stabilize

vs = pytest.importorskip("vapoursynth")

H, W, T = 48, 64, 10


def _texture(seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).uniform(0, 1, (H, W)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min())


@pytest.fixture
def flickering_rgb(core):
    """RGBS: a still textured scene whose colour cast changes every frame (a model's flicker);
    frame 6 starts a new scene (_SceneChangePrev)."""
    rng = np.random.default_rng(0)
    frames = []
    for t in range(T):
        grey = 0.2 + 0.6 * _texture(0 if t < 6 else 1)
        cast = rng.uniform(-0.08, 0.08, 3).astype(np.float32)
        frames.append([np.clip(grey + cast[c], 0, 1) for c in range(3)])
    clip = clip_from_planes(core, vs.RGBS, frames)
    return clip[:6] + clip[6].std.SetFrameProps(_SceneChangePrev=1) + clip[7:]


def _in_order(clip, order):
    got = {n: frame_planes(clip.get_frame(n)) for n in order}
    return [got[n] for n in range(clip.num_frames)]


def test_order_independent_and_steadier(core, flickering_rgb, threads):
    threads(2)
    linear = all_frames(stabilize(flickering_rgb))
    order = list(range(T))
    random.Random(1).shuffle(order)
    shuffled = _in_order(stabilize(flickering_rgb), order)  # a fresh filter
    backwards = _in_order(stabilize(flickering_rgb), order[::-1])
    for n in range(T):
        for p in range(3):
            assert np.array_equal(linear[n][p], shuffled[n][p]), (n, p)
            assert np.array_equal(linear[n][p], backwards[n][p]), (n, p)
    raw = all_frames(flickering_rgb)

    def change(frames, a, b):  # the mean frame-to-frame change of the colour (Lab a, b)
        import torch

        from colorvid.core.color import rgb_to_lab

        ab = [rgb_to_lab(torch.from_numpy(np.stack(f)))[1:] for f in frames]
        return np.mean([float((ab[t + 1] - ab[t]).abs().mean()) for t in range(a, b)])

    assert change(linear, 2, 5) < 0.5 * change(raw, 2, 5)


def test_a_scene_change_starts_the_window_afresh(core, flickering_rgb):
    out = all_frames(stabilize(flickering_rgb, window=6))
    raw = all_frames(flickering_rgb)
    # frame 6 is the first of its scene: nothing from frames 0..5 reaches it
    assert np.allclose(np.stack(out[6]), np.stack(raw[6]), atol=2e-3)
    assert not np.allclose(np.stack(out[7]), np.stack(raw[7]), atol=2e-3)


def test_yuv_luma_is_kept_bit_exact(core, flickering_rgb):
    yuv = flickering_rgb.resize.Bicubic(format=vs.YUV420P8, matrix_s="709")
    out = stabilize(yuv, window=3)
    assert out.format.id == vs.YUV420P8
    for a, b in zip(all_frames(yuv), all_frames(out), strict=True):
        assert np.array_equal(a[0], b[0])
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(all_frames(yuv), all_frames(out),
                                                               strict=True))


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 0}, "window must be an integer from 1 to 64, got 0"),
    ({"strength": 1.5}, "strength must be a number from 0 to 0.98"),
    ({"preset": "slow"}, "preset must be one of"),
    ({"max_side": 4}, "max_side must be an integer >= 16"),
])
def test_bad_options_fail_before_any_frame(core, flickering_rgb, kwargs, message):
    with pytest.raises(StabilizeError, match=f"^colorvid.stabilize: {message}"):
        stabilize(flickering_rgb, **kwargs)


def test_grey_clips_are_refused(core):
    grey = core.std.BlankClip(format=vs.GRAY8, width=W, height=H, length=2)
    with pytest.raises(StabilizeError, match="clip must be RGB or YUV"):
        stabilize(grey)
    assert stabilize(grey.resize.Point(format=vs.RGB24), window=1).num_frames == 2
