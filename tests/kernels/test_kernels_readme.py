"""docs/kernels.md's example, verbatim: it must keep running."""

from __future__ import annotations

import pytest
import torch


def test_readme_kernels_example(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    # --- docs/kernels.md (begin) ---
    from colorvid.kernels import (
        PriorEstimator,
        load_prior,
        rebalanced_cross_entropy,
        save_prior,
        soft_encode,
    )

    ab = torch.rand(2, 2, 56, 56) * 100 - 50  # ground-truth chroma at the logits' resolution
    est = PriorEstimator()
    est.update(ab)  # call once per batch of the training set
    weights = est.weights()  # (313,) float32: lambda 0.5, sigma 5, sum(p~ * w) = 1
    save_prior("prior.safetensors", weights, est.counts)

    logits = torch.randn(2, 313, 56, 56, requires_grad=True)
    loss = rebalanced_cross_entropy(logits, ab, load_prior("prior.safetensors"))
    loss.backward()  # fused: v * (softmax - Z), the dense target is never built
    idx, w = soft_encode(ab, k=5)  # nearest bins and their weights, (2, 5, 56, 56) each
    # --- docs/kernels.md (end) ---
    assert torch.isfinite(loss) and logits.grad.shape == logits.shape
    assert idx.shape == w.shape == (2, 5, 56, 56)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2, 56, 56))
