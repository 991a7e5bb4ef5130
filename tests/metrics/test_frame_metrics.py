"""Per-frame metric plugins against independent computations (scikit-image, numpy by hand)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import colorvid
from colorvid.core.video.decode import read_frames
from colorvid.plugins.metrics import colorfulness


@pytest.fixture(scope="module")
def clip_pair(carphone_clip) -> tuple[np.ndarray, np.ndarray]:
    """Four real frames (uint8 T,H,W,3) and a deterministic distorted copy of them."""
    ref = np.stack([f for _, f in read_frames(carphone_clip, count=4, stride=7)])
    rng = np.random.default_rng(0)
    noise = rng.integers(-40, 41, size=ref.shape)
    # A hue shift (swap channels) plus noise: both structure and colour differ.
    pred = np.clip(ref[..., [1, 2, 0]].astype(int) + noise, 0, 255).astype(np.uint8)
    return ref, pred


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.float64) / 255.0


def metric(name: str):
    return colorvid.create_metric(name)


def test_all_builtin_metrics_are_registered_with_direction():
    names = set(colorvid.get_host().names("metric"))
    expected = {"rmse_ab", "rmse_rgb", "psnr", "ssim", "colorfulness", "colorfulness_gap", "cdc",
                "warp_error"}
    assert expected <= names
    for n in expected:
        m = metric(n)
        assert m.name == n
        assert (m.__doc__ or "").strip(), f"{n} has no docstring stating its formula"
    assert metric("psnr").higher_is_better and metric("ssim").higher_is_better
    assert not metric("rmse_ab").higher_is_better and not metric("cdc").higher_is_better


def test_rmse_ab_matches_skimage_lab(clip_pair):
    ref, pred = clip_pair
    lab_r = rgb2lab(ref)  # (T, H, W, 3) float64, skimage's own conversion
    lab_p = rgb2lab(pred)
    want = np.mean([np.sqrt(np.mean((lab_p[t, ..., 1:] - lab_r[t, ..., 1:]) ** 2))
                    for t in range(len(ref))])
    got = metric("rmse_ab").compute(to_tensor(pred), to_tensor(ref))
    assert got == pytest.approx(want, rel=1e-4)
    assert got > 5  # a channel swap is a large chroma error


def test_rmse_rgb_and_psnr_match_hand_and_skimage(clip_pair):
    ref, pred = clip_pair
    p, r = to_tensor(pred), to_tensor(ref)
    per_rmse = [np.sqrt(np.mean((pred[t].astype(np.float64) - ref[t]) ** 2)) for t in range(4)]
    assert metric("rmse_rgb").compute(p, r) == pytest.approx(np.mean(per_rmse), rel=1e-12)
    per_psnr = [peak_signal_noise_ratio(ref[t], pred[t], data_range=255) for t in range(4)]
    got = metric("psnr").per_frame(p, r).numpy()
    np.testing.assert_allclose(got, per_psnr, rtol=1e-10)
    # uint8 arithmetic would wrap around: 0 - 255 is 1, not -255. The metric must not do that.
    black, white = torch.zeros(1, 3, 8, 8, dtype=torch.float64), torch.ones(1, 3, 8, 8)
    assert metric("psnr").compute(black, white.double()) == pytest.approx(0.0, abs=1e-12)
    assert metric("rmse_rgb").compute(black, white.double()) == pytest.approx(255.0)


def test_identical_video_scores_perfectly(clip_pair):
    ref, _ = clip_pair
    r = to_tensor(ref)
    assert metric("rmse_ab").compute(r, r) == 0.0
    assert metric("rmse_rgb").compute(r, r) == 0.0
    assert metric("psnr").compute(r, r) == float("inf")
    assert metric("ssim").compute(r, r) == pytest.approx(1.0, abs=1e-12)
    assert metric("colorfulness_gap").compute(r, r) == 0.0


def test_ssim_matches_skimage(clip_pair):
    ref, pred = clip_pair
    p, r = to_tensor(pred), to_tensor(ref)
    want = [structural_similarity(ref[t] / 255.0, pred[t] / 255.0, channel_axis=2, data_range=1.0)
            for t in range(4)]
    np.testing.assert_allclose(metric("ssim").per_frame(p, r).numpy(), want, rtol=1e-9)
    # An odd size (why: the valid-window crop must match skimage's on non-square, odd frames).
    odd_r, odd_p = ref[:2, :37, :53], pred[:2, :37, :53]
    want = [structural_similarity(odd_r[t], odd_p[t], channel_axis=2, data_range=255)
            for t in range(2)]
    np.testing.assert_allclose(
        metric("ssim").per_frame(to_tensor(odd_p), to_tensor(odd_r)).numpy(), want, rtol=1e-9
    )


def test_ssim_rejects_tiny_frames():
    x = torch.zeros(1, 3, 5, 9, dtype=torch.float64)
    with pytest.raises(ValueError, match="ssim: frames must be at least 7x7"):
        metric("ssim").compute(x, x)


def test_colorfulness_hand_computed_and_numpy(clip_pair):
    # Pure red frame: rg = 255, yb = 127.5, no spread -> M = 0.3 * sqrt(255^2 + 127.5^2).
    red = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    red[:, 0] = 1.0
    assert colorfulness(red).item() == pytest.approx(0.3 * np.hypot(255.0, 127.5))
    grey = torch.full((1, 3, 4, 4), 0.4, dtype=torch.float64)
    assert colorfulness(grey).item() == pytest.approx(0.0, abs=1e-9)
    ref, pred = clip_pair

    def hasler(img: np.ndarray) -> float:  # straight from the paper, numpy, population std
        r, g, b = (img[..., i].astype(np.float64) for i in range(3))
        rg, yb = r - g, 0.5 * (r + g) - b
        return np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2
                                                                     + yb.mean() ** 2)

    want = [hasler(f) for f in ref]
    np.testing.assert_allclose(colorfulness(to_tensor(ref)).numpy(), want, rtol=1e-10)
    gap = [abs(hasler(pred[t]) - hasler(ref[t])) for t in range(4)]
    got = metric("colorfulness_gap").compute(to_tensor(pred), to_tensor(ref))
    assert got == pytest.approx(np.mean(gap), rel=1e-10)
    assert metric("colorfulness").compute(to_tensor(ref), to_tensor(pred)) == pytest.approx(
        np.mean(want), rel=1e-10)


def test_grey_output_has_colorfulness_gap_of_the_original(clip_pair):
    ref, _ = clip_pair
    r = to_tensor(ref)
    grey = r.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    gap = metric("colorfulness_gap").compute(grey, r)
    assert gap == pytest.approx(colorfulness(r).mean().item(), rel=1e-9)
    assert gap > 5


@pytest.mark.parametrize("name", ["rmse_ab", "psnr", "ssim", "colorfulness_gap", "cdc",
                                  "warp_error"])
def test_metrics_reject_mismatched_or_non_rgb_input(name):
    a = torch.zeros(2, 3, 16, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match=f"{name}: pred and ref shapes differ"):
        metric(name).compute(a, a[:1])
    with pytest.raises(ValueError, match=rf"{name}: pred must be an RGB video \(T, 3, H, W\)"):
        metric(name).compute(a[:, :1], a[:, :1])
