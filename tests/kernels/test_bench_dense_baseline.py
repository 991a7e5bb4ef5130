"""The plain dense-torch baseline of the loss benchmark computes the same loss and gradient as the
reference (a speed-up over a baseline that computed something else would mean nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches"))
from kernel_bench_utils import dense_rebalanced_ce, step_fn  # noqa: E402
from kernel_helpers import random_ab, random_logits  # noqa: E402

from colorvid.kernels import rebalanced_cross_entropy  # noqa: E402


@pytest.mark.parametrize("weighted", [False, True])
def test_dense_baseline_matches_the_reference(weighted):
    logits, ab = random_logits(2, 5, 7, seed=40), random_ab(2, 5, 7, seed=41)
    g = torch.Generator().manual_seed(42)
    weights = torch.rand(313, generator=g) + 0.5 if weighted else None
    x = logits.clone().requires_grad_()
    want = rebalanced_cross_entropy(x, ab, weights, implementation="reference")
    (want_grad,) = torch.autograd.grad(want, x)
    got = dense_rebalanced_ce(x, ab, weights)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(step_fn("dense", logits, ab, weights)(), want_grad,
                               rtol=1e-4, atol=1e-7)
