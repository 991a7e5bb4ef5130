"""estimate_prior and friends: hand-computed examples, streaming, storage with a model."""

from __future__ import annotations

import math

import pytest
import torch
from kernel_helpers import random_ab

from colorvid.core.bins import GREY_BIN, ab_bins
from colorvid.kernels import (
    PRIOR_KEY,
    PriorEstimator,
    estimate_prior,
    load_prior,
    prior_weights,
    save_prior,
    smooth_distribution,
)


def _pixels_at(*bins_and_counts: tuple[int, int]) -> torch.Tensor:
    """ab (1, 2, 1, N) holding each bin centre `count` times."""
    centres = ab_bins()
    cols = [centres[b][:, None].expand(2, n) for b, n in bins_and_counts]
    return torch.cat(cols, dim=1)[None, :, None, :].contiguous()


def test_hand_computed_without_smoothing():
    # 3 pixels in bin 0, 1 in bin 1: p = (0.75, 0.25, 0, ...). lambda = 0.5, Q = 313:
    # w_q ~ 1 / (0.5 p_q + 0.5 / 313), then scaled so that 0.75 w_0 + 0.25 w_1 = 1.
    est = PriorEstimator()
    est.update(_pixels_at((0, 3), (1, 1)))
    assert est.pixels == 4
    raw0, raw1, raw_rest = 1 / (0.375 + 0.5 / 313), 1 / (0.125 + 0.5 / 313), 313 / 0.5
    norm = 0.75 * raw0 + 0.25 * raw1
    w = est.weights(lam=0.5, sigma=0)
    assert w.dtype == torch.float32 and w.shape == (313,)
    assert math.isclose(w[0].item(), raw0 / norm, rel_tol=1e-6)
    assert math.isclose(w[1].item(), raw1 / norm, rel_tol=1e-6)
    assert math.isclose(w[200].item(), raw_rest / norm, rel_tol=1e-6)


def test_hand_computed_smoothing_of_a_single_bin():
    # All mass on the grey bin (0, 0): its grid neighbours at distance 10 receive
    # exp(-100 / 50) = e^-2 of its smoothed mass, the diagonal ones (d^2 = 200) e^-4.
    counts = torch.zeros(313)
    counts[GREY_BIN] = 10
    p = smooth_distribution(counts, sigma=5.0)
    centres = ab_bins()
    index = {tuple(c): i for i, c in enumerate(centres.long().tolist())}
    assert math.isclose(p.sum().item(), 1.0, rel_tol=1e-12)
    for neighbour in [(10, 0), (-10, 0), (0, 10), (0, -10)]:
        assert math.isclose(p[index[neighbour]] / p[GREY_BIN], math.exp(-2), rel_tol=1e-9)
    assert math.isclose(p[index[(10, 10)]] / p[GREY_BIN], math.exp(-4), rel_tol=1e-9)
    # The normaliser by hand: sum over all bins of exp(-|c|^2 / 50).
    total = sum(math.exp(-(a * a + b * b) / 50) for a, b in centres.tolist())
    assert math.isclose(p[GREY_BIN].item(), 1 / total, rel_tol=1e-9)


@pytest.mark.parametrize("sigma", [0.0, 5.0])
def test_weights_satisfy_expected_value_one(sigma):
    est = PriorEstimator()
    est.update(random_ab(2, 8, 8, seed=40))
    w = est.weights(sigma=sigma).double()
    p_smooth = smooth_distribution(est.counts, sigma)
    assert math.isclose((p_smooth * w).sum().item(), 1.0, rel_tol=1e-6)
    assert (w > 0).all()
    # Rare colours weigh more: the least and most frequent smoothed bins.
    assert w[p_smooth.argmin()] > w[p_smooth.argmax()]


def test_streaming_equals_one_pass_and_accepts_single_frames_and_masks():
    ab = random_ab(3, 5, 6, seed=41)
    whole = estimate_prior([ab])
    parts = estimate_prior([ab[:1], ab[1:]])
    frames = estimate_prior(iter(list(ab)))  # (2, H, W) frames, from a generator
    torch.testing.assert_close(whole, parts)
    torch.testing.assert_close(whole, frames)
    est = PriorEstimator()
    mask = torch.zeros(3, 5, 6, dtype=torch.bool)
    mask[0, :2] = True
    est.update(ab, mask)
    assert est.pixels == 12
    with pytest.raises(ValueError, match=r"mask must be a bool tensor of shape \(3, 5, 6\)"):
        est.update(ab, mask.float())


def test_bad_input():
    with pytest.raises(ValueError, match="counts are all zero"):
        PriorEstimator().weights()
    with pytest.raises(ValueError, match=r"counts must be a tensor of shape \(313,\)"):
        prior_weights(torch.ones(10))
    with pytest.raises(ValueError, match="counts must be finite and >= 0"):
        prior_weights(-torch.ones(313))
    with pytest.raises(ValueError, match=r"lam .* must be in \(0, 1\]"):
        prior_weights(torch.ones(313), lam=0.0)
    with pytest.raises(ValueError, match="sigma must be a finite float >= 0"):
        prior_weights(torch.ones(313), sigma=-1.0)
    with pytest.raises(ValueError, match="ab must have shape"):
        PriorEstimator().update(torch.zeros(1, 3, 2, 2))


def test_save_and_load_round_trip(tmp_path):
    est = PriorEstimator()
    est.update(random_ab(1, 4, 4, seed=42))
    w = est.weights()
    path = save_prior(tmp_path / "prior.safetensors", w, est.counts)
    assert path.exists() and not list(tmp_path.glob("*.tmp"))  # written atomically
    loaded = load_prior(path)
    assert torch.equal(loaded, w)
    from safetensors.torch import load_file

    stored = load_file(path)
    assert torch.equal(stored["counts"], est.counts)


def test_weights_live_in_a_model_state_dict(tmp_path):
    # A plain (313,) tensor: a model keeps it as a buffer and its safetensors file holds it.
    from safetensors.torch import load_file, save_file

    from colorvid.kernels import rebalanced_cross_entropy

    model = torch.nn.Conv2d(1, 313, 1)
    w = estimate_prior([random_ab(1, 4, 4, seed=43)])
    model.register_buffer(PRIOR_KEY, w)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    restored = torch.nn.Conv2d(1, 313, 1)
    restored.register_buffer(PRIOR_KEY, torch.empty(313))
    restored.load_state_dict(load_file(tmp_path / "model.safetensors"))
    assert torch.equal(getattr(restored, PRIOR_KEY), w)
    loss = rebalanced_cross_entropy(
        torch.zeros(1, 313, 4, 4), random_ab(1, 4, 4, seed=43), getattr(restored, PRIOR_KEY)
    )
    assert torch.isfinite(loss)


def test_load_errors_name_the_file(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(ValueError, match="cannot read a safetensors prior"):
        load_prior(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read a safetensors prior"):
        load_prior(tmp_path / "junk.safetensors")
    save_file({"other": torch.ones(3)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="holds no 'class_weights' tensor"):
        load_prior(tmp_path / "other.safetensors")
    save_file({PRIOR_KEY: torch.ones(5)}, tmp_path / "short.safetensors")
    with pytest.raises(ValueError, match=r"class_weights must have shape \(313,\)"):
        load_prior(tmp_path / "short.safetensors")
    with pytest.raises(ValueError, match="class_weights must be finite"):
        save_prior(tmp_path / "nan.safetensors", torch.full((313,), float("nan")))
