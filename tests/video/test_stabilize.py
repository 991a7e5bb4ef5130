"""colorvid.core.video.stabilize: flicker removal that leaves moving colour, cuts and luma alone.

Tiny synthetic clips (textured luma, so optical flow has something to follow, and chroma that a
flickering "model" predicts): a still scene, a square moving over a still background, a cut.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import Tensor

from colorvid.core.frames import frames_to_l
from colorvid.core.interfaces import Colorizer
from colorvid.core.video.pipeline import ColorizeError, VideoColorizer, open_colorizer
from colorvid.core.video.stabilize import (
    MAX_STRENGTH,
    StabilizeOptions,
    Stabilizer,
    stabilize_sequence,
    working_size,
)

H, W = 72, 96  # under the working grid's 320: the stabiliser works at this size
BG_AB = np.array([-20.0, 10.0], np.float32)
SQ_AB = np.array([40.0, 40.0], np.float32)


def texture(seed: int, size: tuple[int, int] = (H, W), low: float = 20, high: float = 60):
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 1, size).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return low + (high - low) * smooth


def flicker(T: int, seed: int = 0, sigma: float = 4.0) -> np.ndarray:
    """A model's frame-to-frame wobble: one random offset per frame and channel ``(T, 2, 1, 1)``
    plus a little per-pixel noise is added by the callers."""
    return np.random.default_rng(seed).normal(0, sigma, (T, 2, 1, 1)).astype(np.float32)


def frame_change(ab: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |ab(t+1) - ab(t)| (Euclidean over a, b) over ``mask``'s pixels."""
    d = np.sqrt((np.diff(ab, axis=0) ** 2).sum(1))  # (T-1, H, W)
    return float(d[:, mask].mean() if mask is not None else d.mean())


def run(L: np.ndarray, ab: np.ndarray, cuts=None, **options) -> np.ndarray:
    out = np.stack(list(stabilize_sequence(L, ab, StabilizeOptions(**options), cuts=cuts)))
    assert out.shape == ab.shape  # the frames are under the working grid: no resizing
    return out


@pytest.mark.parametrize("bidirectional", [True, False])
def test_still_scene_flicker_goes_to_near_zero(bidirectional):
    T = 24
    L = np.stack([texture(0)] * T)
    rng = np.random.default_rng(1)
    ab = (BG_AB[None, :, None, None] + flicker(T) + rng.normal(0, 1.0, (T, 2, H, W))).astype(
        np.float32)
    out = run(L, ab, bidirectional=bidirectional)
    raw = frame_change(ab)
    steady = frame_change(out[8:])  # after the first frames have built the history up
    assert steady < (0.05 if bidirectional else 0.3) * raw
    # the colour is kept: the mean is the model's mean, not washed towards grey
    assert np.allclose(out.mean((0, 2, 3)), ab.mean((0, 2, 3)), atol=1.0)


def moving_square(T: int, step: int = 3, side: int = 20):
    """A textured bright square moving ``step`` px a frame over a still textured background;
    the "model" colours each correctly, with flicker on top. Returns L, ab, square masks."""
    bg = texture(2)
    sq_tex = texture(3, (side, side), 70, 95)
    L, ab, masks = [], [], []
    wobble = flicker(T, seed=4, sigma=2.0)
    for t in range(T):
        x0 = 8 + step * t
        frame = bg.copy()
        frame[26 : 26 + side, x0 : x0 + side] = sq_tex
        mask = np.zeros((H, W), bool)
        mask[26 : 26 + side, x0 : x0 + side] = True
        chroma = np.where(mask, SQ_AB[:, None, None], BG_AB[:, None, None]) + wobble[t]
        L.append(frame)
        ab.append(chroma.astype(np.float32))
        masks.append(mask)
    return np.stack(L), np.stack(ab), np.stack(masks)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_moving_object_leaves_no_colour_trail(bidirectional):
    T = 20
    L, ab, masks = moving_square(T)
    out = run(L, ab, bidirectional=bidirectional)
    for t in range(4, T - 1):
        # background the square covered in the last 3 frames: its own colour back at once
        uncovered = masks[t - 3 : t].any(0) & ~masks[t]
        uncovered[:, :2] = False
        err = np.sqrt(((out[t] - BG_AB[:, None, None] - ab[t] + BG_AB[:, None, None]) ** 2)
                      .sum(0))  # against this frame's own prediction (flicker included)
        gap = np.linalg.norm(SQ_AB - BG_AB)  # 63 Lab units: a trail would be a share of this
        assert np.median(err[uncovered]) < 0.08 * gap, t
        assert err[uncovered].mean() < 0.15 * gap, t
        # and the square keeps its colour (edges excluded: bilinear warping blurs them)
        inner = cv2.erode(masks[t].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert np.abs(out[t][:, inner].mean(1) - SQ_AB).max() < 6.0, t
    # far from the square the flicker is removed as on a still scene
    far = ~masks.any(0)
    far[:, :2] = far[:, -2:] = False
    assert frame_change(out[6:], far) < 0.5 * frame_change(ab[6:], far)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_nothing_is_carried_across_a_cut(bidirectional):
    T, cut = 16, 8
    L = np.stack([texture(5)] * cut + [texture(6)] * (T - cut))
    ab = np.empty((T, 2, H, W), np.float32)
    ab[:cut] = SQ_AB[:, None, None]
    ab[cut:] = BG_AB[:, None, None]
    cuts = [t == cut for t in range(T)]
    out = run(L, ab, cuts=cuts, bidirectional=bidirectional)
    assert np.allclose(out[:cut], ab[:cut], atol=1e-4)  # not even backwards
    assert np.allclose(out[cut:], ab[cut:], atol=1e-4)


def test_bidirectional_blocks_hold_bounded_frames_and_keep_order():
    opts = StabilizeOptions(block=4, lookahead=3)
    stab = Stabilizer(opts)
    assert stab.delay == 7
    L = texture(7)
    seen = []
    for t in range(30):
        ready = stab.push(L, np.full((2, H, W), float(t), np.float32), payload=t)
        assert len(stab._pending) <= opts.block + opts.lookahead
        seen += [p for p, _ in ready]
        assert t - len(seen) < opts.block + opts.lookahead
    seen += [p for p, _ in stab.flush()]
    assert seen == list(range(30))


def test_strength_zero_passes_the_chroma_through_and_sizes_change():
    L = np.stack([texture(8)] * 3)
    ab = np.random.default_rng(9).normal(0, 5, (3, 2, H, W)).astype(np.float32)
    assert np.allclose(run(L, ab, strength=0.0), ab, atol=1e-5)
    stab = Stabilizer(StabilizeOptions(bidirectional=False))
    a = stab.push(L[0], ab[0])
    b = stab.push(texture(8, (40, 50)), np.zeros((2, 10, 10), np.float32))  # a new sequence
    assert a[0][1].shape == (2, H, W) and b[0][1].shape == (2, 40, 50)


def test_working_grid():
    assert working_size(720, 1280) == (180, 320)
    assert working_size(100, 80) == (100, 80)  # never enlarged
    big = Stabilizer(StabilizeOptions(bidirectional=False))
    out = big.push(np.full((360, 640), 50.0, np.float32), np.zeros((2, 64, 64), np.float32))
    assert out[0][1].shape == (2, 180, 320)


class FlickerColorizer(Colorizer):
    """Stateless test model: ab from L plus a different offset every call (frame flicker)."""

    name = "flicker-test"

    def __init__(self) -> None:
        self.calls = 0

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        out = []
        for frame in L:
            self.calls += 1
            offset = float(np.random.default_rng(self.calls).uniform(-10.0, 10.0))
            out.append(torch.cat((frame * 0.3 - 10 + offset, -frame * 0.2 + 8 - offset)))
        return torch.stack(out)


def grey_frames(T: int, seed: int = 10) -> list[np.ndarray]:
    y = (texture(seed) * 2.55).astype(np.uint8)
    return [y.copy() for _ in range(T)]


@pytest.mark.parametrize("pipelined", [False, True])
def test_stream_keeps_the_input_luma_bit_exact(pipelined):
    frames = grey_frames(11)
    vc = VideoColorizer(FlickerColorizer(), batch=4, pipelined=pipelined,
                        stabilize=StabilizeOptions(block=3, lookahead=2))
    pairs = list(vc._chroma(vc._batches(frames)))
    L_in = frames_to_l(np.stack(frames))
    L_out = torch.cat([L for L, _ in pairs])
    assert torch.equal(L_out, L_in)  # the very L values that go into Lab -> RGB
    assert sum(ab.shape[0] for _, ab in pairs) == 11
    rgb = np.stack(list(vc.stream(frames)))
    assert rgb.shape == (11, H, W, 3)
    raw = np.stack(list(VideoColorizer(FlickerColorizer(), batch=4).stream(frames)))
    assert np.abs(np.diff(rgb.astype(float), axis=0)).mean() < \
        0.3 * np.abs(np.diff(raw.astype(float), axis=0)).mean()


def test_stream_resets_at_detected_scene_cuts():
    a, b = grey_frames(6, seed=11), [np.full((H, W), 200, np.uint8)] * 6
    vc = VideoColorizer(FlickerColorizer(), batch=4, stabilize=True)
    out = list(vc.stream(a + b))
    assert len(out) == 12 and vc.scene_cuts == [6]


def test_bad_options_are_refused_with_what_is_accepted():
    with pytest.raises(ValueError, match=f"strength must be a number from 0 to {MAX_STRENGTH}"):
        StabilizeOptions(strength=1.0)
    with pytest.raises(ValueError, match="preset must be one of"):
        StabilizeOptions(preset="slow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block must be an integer >= 1"):
        StabilizeOptions(block=0)
    with pytest.raises(ValueError, match="stabilize must be None, True, a strength"):
        StabilizeOptions.coerce("yes")
    with pytest.raises(ColorizeError, match="strength must be a number from 0"):
        open_colorizer("grey", stabilize=-0.5)
    with pytest.raises(ValueError, match="Stabilizer.push: L must be"):
        Stabilizer().push(np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 4), np.float32))


class LumaColorizer(Colorizer):
    """Stateless and deterministic: ab from L."""

    name = "luma-test"

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        return torch.cat((L * 0.4 - 20, 15 - L * 0.3), dim=1)


def test_eval_gets_the_raw_rows_from_the_stabilised_run():
    from colorvid.core.evaluation.runner import colorize_frames, colorize_frames_both

    frames = np.stack(grey_frames(9, seed=12))
    raw, stabilised = colorize_frames_both(LumaColorizer(), frames, stabilize=0.85)
    assert np.array_equal(raw, colorize_frames(LumaColorizer(), frames))
    assert np.array_equal(stabilised, colorize_frames(LumaColorizer(), frames, stabilize=0.85))
    assert colorize_frames_both(LumaColorizer(), frames)[0] is None
