"""The lrcn and ensemble colorizers."""

from __future__ import annotations

import pytest
import torch

import colorvid
from colorvid.plugins.lrcn_net import LRCNConfig, LRCNNet


@pytest.fixture(scope="module")
def lrcn():
    torch.manual_seed(0)
    model = colorvid.create_colorizer("lrcn", pretrained=False, render_size=32)
    with torch.no_grad():
        # PyTorch's default init shrinks the signal ~3x per layer, so a fresh 20-layer CNN
        # answers the same whatever the frame: use variance-preserving (He) init so frames
        # differ, and give the LSTM a non-zero head so it really changes the output.
        for m in model.net.cnn.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and m is not \
                    model.net.cnn.model_out:
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        for p in model.net.head.parameters():
            p.normal_(0, 0.5)
    return model


@pytest.fixture(scope="module")
def frames():
    g = torch.Generator().manual_seed(1)
    return torch.rand(12, 1, 24, 40, generator=g) * 100


def test_window_mode_frame_n_depends_only_on_n_minus_5_to_n(lrcn, frames):
    ab, _ = lrcn.predict_sequence(frames)
    for n in (5, 9, 11):
        alone, _ = lrcn.predict_sequence(frames[n - 5 : n + 1])
        assert torch.allclose(ab[n], alone[-1], atol=1e-5)
    # Frames before the window make no difference: change frame 0, frame 6 stays.
    changed = frames.clone()
    changed[0] = 100.0 - changed[0]
    ab2, _ = lrcn.predict_sequence(changed)
    assert torch.allclose(ab2[6], ab[6], atol=1e-5)
    assert (ab2[3] - ab[3]).abs().max() > 5e-3  # but inside the window it does (~0.025)


def test_chunked_calls_equal_one_call_in_both_modes(lrcn, frames):
    for window in (6, None):
        lrcn.window = window
        try:
            whole, _ = lrcn.predict_sequence(frames)
            a, state = lrcn.predict_sequence(frames[:5])
            b, state = lrcn.predict_sequence(frames[5:9], state)
            c, _ = lrcn.predict_sequence(frames[9:], state)
            assert torch.allclose(torch.cat([a, b, c]), whole, atol=1e-5), window
        finally:
            lrcn.window = 6


def test_reset_at_scene_cut_forgets_the_past(lrcn, frames):
    resets = torch.zeros(12, dtype=torch.bool)
    resets[7] = True
    ab, _ = lrcn.predict_sequence(frames, resets=resets)
    after, _ = lrcn.predict_sequence(frames[7:])
    assert torch.allclose(ab[7:], after, atol=1e-5)
    assert torch.allclose(ab[:7], lrcn.predict_sequence(frames[:7])[0], atol=1e-5)


def test_untrained_lstm_head_makes_lrcn_equal_zhang(frames):
    lrcn = colorvid.create_colorizer("lrcn", pretrained=False, render_size=32, dtype="float32",
                                     preset="tiny", cnn="zhang")
    zhang = colorvid.create_colorizer("zhang", pretrained=False, render_size=32, dtype="float32",
                                      preset="tiny")
    zhang.net.load_state_dict(lrcn.net.cnn.state_dict())
    ab, _ = lrcn.predict_sequence(frames)
    assert torch.allclose(ab, zhang.predict_ab(frames), atol=1e-4)


def test_lrcn_net_shapes_and_parameters():
    net = LRCNNet(LRCNConfig.preset("tiny"))
    logits, seq = net(torch.rand(2, 3, 1, 32, 32) * 100)
    assert logits.shape == seq.shape == (2, 3, 313, 8, 8)
    with pytest.raises(ValueError, match="window must be a positive number"):
        colorvid.create_colorizer("lrcn", pretrained=False, window=0)


def test_ensemble_of_identical_members_equals_the_member(frames):
    zhang = colorvid.create_colorizer("zhang", pretrained=False, render_size=32)
    ens = colorvid.create_colorizer("ensemble", members=["zhang", "zhang"], weights=[1, 3],
                                    pretrained=False, render_size=32)
    for member in ens.members:
        member.net.load_state_dict(zhang.net.state_dict())
    assert torch.allclose(ens.predict_ab(frames), zhang.predict_ab(frames), atol=1e-4)


def test_ensemble_weights_any_registered_colorizer(frames):
    ens = colorvid.create_colorizer("ensemble", members="zhang,grey", weights=[1, 1],
                                    pretrained=False,
                                    member_options={"zhang": {"render_size": 32}})
    half = 0.5 * ens.members[0].predict_ab(frames)
    assert torch.allclose(ens.predict_ab(frames), half, atol=1e-5)
    with pytest.raises(ValueError, match="one per member"):
        colorvid.create_colorizer("ensemble", members=["grey"], weights=[1, 2])
    with pytest.raises(ValueError, match="not members"):
        colorvid.create_colorizer("ensemble", members=["grey"], member_options={"zhang": {}})
    with pytest.raises(KeyError, match="unknown colorizer 'nope'"):
        colorvid.create_colorizer("ensemble", members=["nope"])
