"""Widening trained Zhang weights to a wider preset (core/training/widen.py) and continuing a
narrower LRCN's LSTM over the wider CNN (core/training/adapters.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from colorvid.core.training.adapters import make_adapter
from colorvid.core.training.widen import main, widen_file, widen_zhang
from colorvid.core.weights import read_config, save_weights
from colorvid.plugins.lrcn_net import LRCNConfig, LRCNNet
from colorvid.plugins.models.zhang_net import ZhangConfig, ZhangNet


def _trained_like(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights and BatchNorm statistics far from their defaults (a 'trained' net)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if not name.startswith("model_out"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_widened_net_computes_the_same_logits(mode):
    narrow = _trained_like(ZhangNet(ZhangConfig.preset("tiny")), 0)
    wide = ZhangNet(ZhangConfig.preset("small"))
    widen_zhang(narrow, wide, seed=3)
    getattr(narrow, mode)()
    getattr(wide, mode)()
    L = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(1)) * 100
    with torch.no_grad():
        want, got = narrow.logits(L), wide.logits(L)
    assert got.shape == want.shape == (2, 313, 16, 16)
    assert want.abs().max() > 1  # not a trivially zero net
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_copies_get_different_shares_so_they_can_drift_apart():
    narrow = _trained_like(ZhangNet(ZhangConfig.preset("tiny")), 0)
    wide = ZhangNet(ZhangConfig.preset("small"))
    widen_zhang(narrow, wide, seed=0)
    # model1.0 widens 16 -> 24: each new channel copies an old one's filter ...
    w1 = wide.model1[0].weight
    copied = [j for j in range(16, 24) if any(torch.equal(w1[j], w1[i]) for i in range(16))]
    assert len(copied) == 8
    # ... and the next conv's weights on a channel and its copy differ (random shares).
    w2 = wide.model1[2].weight
    j = 16
    i = next(i for i in range(16) if torch.equal(w1[j], w1[i]))
    assert not torch.allclose(w2[:, i], w2[:, j])
    # The shares of a channel and its copies add up to the narrow net's weight.
    copies = [k for k in range(24) if torch.equal(w1[k], w1[i])]
    torch.testing.assert_close(w2[:16, copies].sum(1), narrow.model1[2].weight[:, i])


def test_widen_refuses_a_narrower_target_and_other_models():
    narrow = ZhangNet(ZhangConfig.preset("small"))
    with pytest.raises(ValueError, match="narrower"):
        widen_zhang(narrow, ZhangNet(ZhangConfig.preset("tiny")))
    with pytest.raises(TypeError, match="ZhangNet"):
        widen_zhang(torch.nn.Conv2d(1, 1, 1), narrow)


def _tiny_file(path: Path) -> Path:
    net = _trained_like(ZhangNet(ZhangConfig.preset("tiny")), 5)
    config = {"model": "zhang", "preset": "tiny", "architecture": net.config.to_dict(),
              "training": {"cumulative": {"steps": 120, "samples": 1920, "cpu_hours": 0.5,
                                          "wall_hours": 0.4, "runs": 2}}}
    return save_weights(path, net.state_dict(), config, {"prior": torch.full((313,), 1 / 313)})


def test_widen_file_keeps_the_counts_and_records_the_widening(tmp_path):
    src = _tiny_file(tmp_path / "zhang-tiny.safetensors")
    out = widen_file(src, "small", tmp_path / "zhang-small.safetensors", seed=1)
    header = read_config(out)
    assert header["preset"] == "small"
    assert header["architecture"]["widths"] == [24, 48, 96, 192]
    assert header["training"]["cumulative"]["steps"] == 120
    assert header["training"]["widened_from"]["widths"] == [16, 32, 64, 128]
    assert header["extras"] == ["prior"]
    # The widened file loads through the zhang colorizer and colours like the narrow one.
    from colorvid.core.api import create_colorizer

    opts = {"device": "cpu", "render_size": 64, "dtype": "float32"}  # the same maths
    narrow = create_colorizer("zhang", weights=str(src), **opts)
    wide = create_colorizer("zhang", weights=str(out), **opts)
    L = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(2)) * 100
    torch.testing.assert_close(wide.predict_ab(L), narrow.predict_ab(L), rtol=0, atol=1e-2)


def test_widen_file_refuses_other_models(tmp_path):
    net = LRCNNet(LRCNConfig.preset("tiny"))
    src = save_weights(tmp_path / "lrcn.safetensors", net.state_dict(),
                       {"model": "lrcn", "preset": "tiny", "architecture": net.config.to_dict()})
    with pytest.raises(ValueError, match="only zhang"):
        widen_file(src, "small", tmp_path / "out.safetensors")


def test_widen_cli(tmp_path, capsys):
    src = _tiny_file(tmp_path / "zhang-tiny.safetensors")
    assert main([str(src), "small", str(tmp_path / "w.safetensors")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "w.safetensors")
    assert read_config(tmp_path / "w.safetensors")["preset"] == "small"
    # A clear error, no traceback, nothing written: an unknown preset, a narrower one.
    assert main([str(src), "huge", str(tmp_path / "x.safetensors")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    small = tmp_path / "w.safetensors"
    assert main([str(small), "tiny", str(tmp_path / "y.safetensors")]) == 2
    assert "narrower" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "y.safetensors").exists()


def test_lrcn_continues_a_tiny_lstm_over_a_small_cnn(tmp_path):
    tiny = LRCNNet(LRCNConfig.preset("tiny"))
    with torch.no_grad():
        for p in tiny.lstm.parameters():
            p.normal_()
        tiny.head.weight.normal_()
    lrcn_file = save_weights(tmp_path / "lrcn-tiny.safetensors", tiny.state_dict(),
                             {"model": "lrcn", "preset": "tiny",
                              "architecture": tiny.config.to_dict()})
    cnn_file = widen_file(_tiny_file(tmp_path / "zhang-tiny.safetensors"), "small",
                          tmp_path / "zhang-small.safetensors")
    adapter = make_adapter("lrcn", "small", str(lrcn_file), {"cnn_init": str(cnn_file)})
    net = adapter.net
    torch.testing.assert_close(net.head.weight, tiny.head.weight)
    for a, b in zip(net.lstm.parameters(), tiny.lstm.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert net.cnn.config.widths == (24, 48, 96, 192)
    from safetensors.torch import load_file

    want = load_file(str(cnn_file))["model4.0.weight"]
    torch.testing.assert_close(net.cnn.model4[0].weight, want)
    # Without a CNN file of the new preset an lrcn file of another preset is an error.
    from colorvid.core.weights import WeightsError

    with pytest.raises(WeightsError, match="preset 'small' was asked"):
        make_adapter("lrcn", "small", str(lrcn_file), {})
