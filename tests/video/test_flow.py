"""colorvid.core.video.flow: DIS flow on luma, backward warping, confidence of warped pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from colorvid.core.video.flow import (
    PRESETS,
    FlowEstimator,
    consistency_confidence,
    flow_confidence,
    forward_backward_error,
    inside_frame,
    luma_confidence,
    luma_warp_error,
    resize_flow,
    to_luma8,
    warp,
)

H, W = 72, 96


def texture(seed: int = 0, size: tuple[int, int] = (H, W)) -> np.ndarray:
    """Smooth random texture in Lab L units (blurred noise: DIS needs gradients to track)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 100, (size[0] + 40, size[1] + 40)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 80 + 10
    return smooth


def shifted(big: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The (H, W) crop of ``big`` at offset (20 + dx, 20 + dy): content moved by (-dx, -dy)."""
    return big[20 + dy: 20 + dy + H, 20 + dx: 20 + dx + W]


def test_still_frame_has_no_motion_and_full_confidence():
    L = shifted(texture(), 0, 0)
    est = FlowEstimator()
    fwd, bwd = est.pair(L, L)
    assert fwd.shape == (H, W, 2) and fwd.dtype == np.float32
    assert np.abs(fwd).max() < 0.05 and np.abs(bwd).max() < 0.05
    conf = flow_confidence(L, L, fwd, bwd)
    assert conf.min() > 0.99


@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_translation_is_found_and_undone_by_warping(preset):
    big = texture(1)
    cur, prev = shifted(big, 0, 0), shifted(big, 3, 2)  # cur(x) = prev(x - (3, 2))
    flow = FlowEstimator(preset)(cur, prev)  # cur(x) ~ prev(x + F(x)): F ~ (-3, -2)
    interior = (slice(10, -10), slice(10, -10))
    assert np.allclose(flow[interior].mean((0, 1)), (-3.0, -2.0), atol=0.15)
    aligned = warp(prev, flow)
    assert np.abs(aligned - cur)[interior].mean() < 1.0  # L units; unaligned: several
    assert np.abs(prev - cur)[interior].mean() > 4.0


def test_warp_layouts_agree_and_integer_shifts_are_exact():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, H, W)).astype(np.float32)
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0  # out(y, x) = in(y - 1, x + 2)
    chw = warp(x, flow)
    hwc = warp(np.moveaxis(x, 0, -1), flow)
    assert chw.shape == (2, H, W) and hwc.shape == (H, W, 2)
    assert np.array_equal(chw, np.moveaxis(hwc, -1, 0))
    assert np.array_equal(chw[:, 1:, : W - 2], x[:, : H - 1, 2:])
    assert np.array_equal(warp(torch.from_numpy(x[0]), flow), chw[0])  # torch in, numpy out
    forced = warp(np.zeros((H, W, H), np.float32), np.zeros((H, W, 2), np.float32),
                  channels_last=True)
    assert forced.shape == (H, W, H)


def test_leaving_the_frame_has_no_confidence():
    flow = np.zeros((H, W, 2), np.float32)
    flow[:, :, 0] = 10.0  # every pixel reads 10 px to its right
    inside = inside_frame(flow)
    assert inside[:, : W - 10].all() and not inside[:, W - 9:].any()
    L = np.full((H, W), 50.0, np.float32)
    assert (flow_confidence(L, L, flow)[:, W - 9:] == 0).all()
    assert np.isinf(forward_backward_error(flow, -flow)[:, W - 9:]).all()
    assert (consistency_confidence(forward_backward_error(flow, -flow))[:, W - 9:] == 0).all()


def test_occluded_and_mismatched_pixels_lose_confidence():
    """A bright square moves 8 px right over a still textured background: where it was
    (uncovered background) and where it now is (newly covered) luma and flow disagree."""
    bg = shifted(texture(3), 0, 0)
    prev, cur = bg.copy(), bg.copy()
    prev[20:44, 20:44] = 95.0
    cur[20:44, 28:52] = 95.0
    est = FlowEstimator()
    flow, reverse = est.pair(cur, prev)
    conf = flow_confidence(cur, prev, flow, reverse)
    uncovered = conf[24:40, 22:26]  # square was here in prev, background now
    far_background = conf[55:, 5:30]
    assert uncovered.mean() < 0.3
    assert far_background.mean() > 0.9


def test_luma_confidence_follows_the_noise_level():
    rng = np.random.default_rng(4)
    quiet = np.abs(rng.normal(0, 0.5, (H, W))).astype(np.float32)
    noisy = np.abs(rng.normal(0, 3.0, (H, W))).astype(np.float32)
    # an error of 4 L units is a mismatch on quiet footage, ordinary on grainy footage
    quiet[0, 0] = noisy[0, 0] = 4.0
    assert luma_confidence(quiet)[0, 0] < 0.2
    assert luma_confidence(noisy)[0, 0] > 0.6
    assert luma_confidence(quiet, scale=10.0)[0, 0] > 0.9


def test_tolerant_confidence_is_full_within_the_bounds_and_falls_off_beyond():
    e = np.array([0.0, 1.0, 2.0, 4.0], np.float32)  # luma error, scale 2: within, within, at, 2x
    assert np.allclose(luma_confidence(e, 2.0, tolerant=True), [1, 1, 1, np.exp(-0.5)])
    assert luma_confidence(e, 2.0)[2] < 0.61  # the soft check already doubts noise-level error
    fb = np.array([0.0, 0.5, 1.0, 3.0, np.inf], np.float32)  # 1 = Sundaram's bound
    assert np.allclose(consistency_confidence(fb, tolerant=True), [1, 1, 1, np.exp(-1), 0])
    assert consistency_confidence(fb)[1] < 0.8
    zero = np.zeros((H, W, 2), np.float32)
    L = np.full((H, W), 50.0, np.float32)
    assert np.allclose(flow_confidence(L, L + 1.5, zero, zero, tolerant=True), 1.0)
    assert flow_confidence(L, L + 1.5, zero, zero).max() < 0.9


def test_luma_units_and_conversions():
    L = np.linspace(0, 100, H * W, dtype=np.float32).reshape(H, W)
    y = to_luma8(L)
    assert y.dtype == np.uint8 and y[0, 0] == 0 and y[-1, -1] == 255
    assert to_luma8(torch.from_numpy(L)[None, None]).shape == (H, W)
    assert to_luma8(y) is not None and np.array_equal(to_luma8(y), y)
    zero = np.zeros((H, W, 2), np.float32)
    assert np.allclose(luma_warp_error(L, L + 1.0, zero), 1.0)
    # uint8 luma and Lab L give the same confidence (codes are read as L = code / 2.55)
    assert np.allclose(flow_confidence(y, y, zero), 1.0)


def test_resize_flow_scales_vectors():
    flow = np.ones((10, 20, 2), np.float32)
    big = resize_flow(flow, (30, 80))
    assert big.shape == (30, 80, 2)
    assert np.allclose(big[..., 0], 4.0) and np.allclose(big[..., 1], 3.0)
    assert resize_flow(flow, (10, 20)) is flow


def test_bad_inputs_are_refused_with_what_is_accepted():
    with pytest.raises(ValueError, match="preset must be one of ultrafast, fast, medium"):
        FlowEstimator("slow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sizes differ"):
        FlowEstimator()(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match=r"flow must have shape \(H, W, 2\)"):
        warp(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"warp: x must be"):
        warp(np.zeros((3, 5, 5)), np.zeros((8, 8, 2), np.float32))
    with pytest.raises(TypeError, match="uint8 luma"):
        to_luma8(np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match="one plane"):
        to_luma8(np.zeros((2, 4, 4), np.float32))
