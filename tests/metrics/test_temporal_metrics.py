"""Temporal metric plugins (cdc, warp_error) against scipy and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.spatial.distance import jensenshannon

import colorvid
from colorvid.core.video.decode import read_frames
from colorvid.plugins.metrics_temporal import channel_histograms, farneback_flow, js_divergence


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.float64) / 255.0


@pytest.fixture(scope="module")
def real_frames(carphone_clip) -> np.ndarray:
    return np.stack([f for _, f in read_frames(carphone_clip, count=6)])


def cdc_reference(frames: np.ndarray) -> float:
    """CDC with numpy histograms and scipy's Jensen-Shannon distance (squared = divergence)."""
    per_channel = []
    for c in range(3):
        hists = [np.histogram(f[..., c], bins=256, range=(0, 256))[0] / f[..., c].size
                 for f in frames]
        js = []
        for d in (1, 2, 4):
            if d < len(frames):
                js.append(np.mean([jensenshannon(hists[i], hists[i + d]) ** 2
                                   for i in range(len(frames) - d)]))
        per_channel.append(np.mean(js))
    return float(np.mean(per_channel))


def test_js_divergence_matches_scipy():
    rng = np.random.default_rng(1)
    p, q = rng.random(256), rng.random(256)
    p[:40] = 0  # zero bins must give 0 log 0 = 0, not NaN
    p, q = p / p.sum(), q / q.sum()
    got = js_divergence(torch.from_numpy(p), torch.from_numpy(q)).item()
    assert got == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-10)
    assert js_divergence(torch.from_numpy(p), torch.from_numpy(p)).item() == 0.0


def test_channel_histograms_sum_to_one(real_frames):
    h = channel_histograms(to_tensor(real_frames))
    assert h.shape == (6, 3, 256)
    torch.testing.assert_close(h.sum(-1), torch.ones(6, 3, dtype=torch.float64))


def test_cdc_matches_scipy_reference(real_frames):
    rng = np.random.default_rng(2)
    flicker = np.clip(real_frames.astype(int) + rng.integers(-30, 31, size=(6, 1, 1, 3)), 0, 255)
    flicker = flicker.astype(np.uint8)
    cdc = colorvid.create_metric("cdc")
    for video in (real_frames, flicker, real_frames[:3]):  # 3 frames: d = 4 has no pair
        got = cdc.compute(to_tensor(video), to_tensor(video))
        assert got == pytest.approx(cdc_reference(video), rel=1e-9)
    # Per-frame colour jumps are flicker: CDC must rise.
    assert cdc.compute(to_tensor(flicker), to_tensor(real_frames)) > 2 * cdc.compute(
        to_tensor(real_frames), to_tensor(real_frames))


def test_cdc_needs_two_frames():
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="cdc: needs a video of at least 2 frames"):
        colorvid.create_metric("cdc").compute(x, x)


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth random texture (grey uint8) that optical flow can track."""
    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.random((h + 40, w + 40)), 2.0)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def translating_video(frames: int, dx: int, dy: int) -> np.ndarray:
    """Frame t is the texture moved by (t dx, t dy): known ground-truth motion."""
    base = textured(64, 80, 3)
    out = []
    for t in range(frames):
        g = np.roll(base, shift=(t * dy, t * dx), axis=(0, 1))[20:84, 20:100]
        out.append(np.stack([g, (0.8 * g).astype(np.uint8), (255 - g)], axis=-1))
    return np.stack(out)


def test_farneback_recovers_known_translation():
    v = translating_video(2, dx=2, dy=1)
    g0, g1 = v[0, ..., 0], v[1, ..., 0]
    flow = farneback_flow(g0, g1)
    interior = flow[10:-10, 10:-10]
    # src(x) = dst(x + F): the content moved by (+2, +1), so F = (2, 1).
    assert np.median(interior[..., 0]) == pytest.approx(2.0, abs=0.1)
    assert np.median(interior[..., 1]) == pytest.approx(1.0, abs=0.1)


def test_warp_error_hand_computed_uniform_frames():
    # Uniform frames: flow 0 everywhere, all pixels valid, so E_t = 3 (v_t - v_{t-1})^2 exactly.
    values = [0.2, 0.5, 0.4]
    video = torch.stack([torch.full((3, 24, 24), v, dtype=torch.float64) for v in values])
    m = colorvid.create_metric("warp_error")
    per_pair = m.per_pair(video, video).numpy()
    np.testing.assert_allclose(per_pair, [3 * 0.3**2, 3 * 0.1**2], rtol=1e-5)
    assert m.compute(video, video) == pytest.approx(np.mean(per_pair))


def test_warp_error_translation_and_flicker():
    ref = translating_video(4, dx=2, dy=1)
    r = to_tensor(ref)
    m = colorvid.create_metric("warp_error")
    steady = m.compute(r, r)
    assert steady < 2e-3  # the motion is fully explained by the flow
    # Add a uniform brightness offset c_t per frame: the flow (from ref) is unchanged, so the
    # error must become ~3 (c_t - c_{t-1})^2 on top of the steady one.
    offsets = np.array([0.0, 0.1, -0.05, 0.05])
    flick = torch.from_numpy(np.clip(r.numpy() * 0.7 + 0.15 + offsets[:, None, None, None], 0, 1))
    base = torch.from_numpy(r.numpy() * 0.7 + 0.15)
    expected = np.mean(3 * np.diff(offsets) ** 2)
    got = m.compute(flick, r) - 0.49 * steady
    assert got == pytest.approx(expected, rel=0.1)
    assert m.compute(base, r) == pytest.approx(0.49 * steady, rel=0.1, abs=1e-5)


def test_warp_error_options_and_errors():
    with pytest.raises(ValueError, match="warp_error: flow_from must be 'ref' or 'pred'"):
        colorvid.create_metric("warp_error", flow_from="gt")
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="warp_error: needs a video of at least 2 frames"):
        colorvid.create_metric("warp_error").compute(x, x)


def _lab_video(values: list[tuple[float, float, float]], size: int = 24) -> torch.Tensor:
    """Uniform frames of the given Lab colours, as RGB in [0, 1] (float64, not quantised)."""
    from colorvid.core.color import lab_to_rgb

    lab = torch.tensor(values, dtype=torch.float64)[:, :, None, None].expand(-1, 3, size, size)
    return lab_to_rgb(lab.contiguous()).clamp(0, 1)


def test_chroma_warp_error_sees_only_the_colour():
    # a flickers 20 -> -10 -> 0 at constant L and b: flow 0, all pixels valid, so the chroma
    # warp error is the mean squared change of a in Lab units: (30^2 + 10^2) / 2 = 500.
    video = _lab_video([(50, 20, 5), (50, -10, 5), (50, 0, 5)])
    m = colorvid.create_metric("warp_error_ab")
    np.testing.assert_allclose(m.per_pair(video, video).numpy(), [900, 100], rtol=1e-3)
    assert m.compute(video, video) == pytest.approx(500, rel=1e-3)
    # A lightness flicker with no colour is invisible to it, and counts for warp_error.
    grey = _lab_video([(40, 0, 0), (60, 0, 0), (40, 0, 0)])
    assert m.compute(grey, grey) == pytest.approx(0, abs=1e-6)
    assert colorvid.create_metric("warp_error").compute(grey, grey) > 0.01


def test_chroma_cdc_hand_computed_and_zero_without_colour():
    # Two uniform frames whose a differs: a's histograms are disjoint deltas (JS = ln 2), b's
    # are equal (JS = 0); only d = 1 fits two frames: cdc_ab = (ln 2 + 0) / 2.
    video = _lab_video([(50, 20, 10), (50, -20, 10)])
    assert colorvid.create_metric("cdc_ab").compute(video, video) == pytest.approx(
        np.log(2) / 2, rel=1e-6)
    grey = _lab_video([(30, 0, 0), (70, 0, 0), (50, 0, 0)])
    assert colorvid.create_metric("cdc_ab").compute(grey, grey) == pytest.approx(0, abs=1e-12)
    assert colorvid.create_metric("cdc").compute(grey, grey) > 0.1  # RGB sees the lightness
    from colorvid.plugins.metrics_temporal import ab_histograms

    h = ab_histograms(video)
    assert h.shape == (2, 2, 256)
    torch.testing.assert_close(h.sum(-1), torch.ones(2, 2, dtype=torch.float64))


def test_chroma_metric_errors():
    with pytest.raises(ValueError, match="warp_error: space must be 'rgb' or 'ab'"):
        colorvid.create_metric("warp_error", space="lab")
    with pytest.raises(ValueError, match="cdc: space must be 'rgb' or 'ab'"):
        colorvid.create_metric("cdc", space="hsv")
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="warp_error_ab: needs a video of at least 2 frames"):
        colorvid.create_metric("warp_error_ab").compute(x, x)
    with pytest.raises(ValueError, match="cdc_ab: needs a video of at least 2 frames"):
        colorvid.create_metric("cdc_ab").compute(x, x)
