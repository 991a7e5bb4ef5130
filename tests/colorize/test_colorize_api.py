"""colorvid.open_colorizer: colorize(frame) and stream(frames), with real clip frames."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import torch

import colorvid
from colorvid.core.color import rgb_to_lab
from colorvid.core.frames import frames_to_l, to_rgb_float
from colorvid.core.video.decode import read_frames


def _lab(rgb: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)[0]


@pytest.fixture(scope="module")
def carphone_frames(carphone_clip) -> list[np.ndarray]:
    return [rgb for _, rgb in read_frames(carphone_clip, count=10)]


def test_colorize_one_frame_keeps_l_and_adds_colour(test_colorizers, carphone_frames, const_ab):
    vc = colorvid.open_colorizer("const-test")
    frame = carphone_frames[0]
    out = vc.colorize(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    lab_in, lab_out = _lab(frame), _lab(out)
    # L is kept (8-bit rounding of the RGB output only); ab is the model's constant where the
    # colour fits in the sRGB gamut (mid-tones).
    assert (lab_in[0] - lab_out[0]).abs().mean() < 0.5
    mid = (lab_in[0] > 30) & (lab_in[0] < 70)
    assert abs(lab_out[1][mid].mean().item() - const_ab[0]) < 3
    assert abs(lab_out[2][mid].mean().item() - const_ab[1]) < 3


@pytest.mark.parametrize("kind", ["uint8-rgb", "uint8-grey2d", "uint8-grey3d", "float-rgb",
                                  "torch-uint8", "torch-float"])
def test_colorize_accepts_frame_kinds(kind, carphone_frames):
    rgb = carphone_frames[1]
    grey = rgb.mean(-1).astype(np.uint8)
    frame = {
        "uint8-rgb": rgb, "uint8-grey2d": grey, "uint8-grey3d": grey[..., None],
        "float-rgb": rgb.astype(np.float32) / 255, "torch-uint8": torch.from_numpy(rgb),
        "torch-float": torch.from_numpy(rgb).float() / 255,
    }[kind]
    out = colorvid.open_colorizer("grey").colorize(frame)
    assert out.shape == (144, 176, 3) and out.dtype == np.uint8
    # grey model: R = G = B up to rounding
    assert np.abs(out.astype(int) - out[..., :1].astype(int)).max() <= 1


def test_colorize_rejects_bad_frames():
    vc = colorvid.open_colorizer("grey")
    with pytest.raises(ValueError, match="HxWx3"):
        vc.colorize(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="HxWx3"):
        vc.colorize(np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        vc.colorize([[0, 1], [2, 3]])


@pytest.mark.parametrize("name", ["grey", "const-test"])
def test_stream_equals_frame_by_frame_for_stateless(name, test_colorizers, carphone_frames):
    vc = colorvid.open_colorizer(name, batch=3)  # 10 frames: batches 3, 3, 3, 1
    streamed = list(vc.stream(iter(carphone_frames)))
    single = [vc.colorize(f) for f in carphone_frames]
    assert len(streamed) == len(carphone_frames)
    for a, b in zip(streamed, single, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("pipelined", [True, False])
def test_stream_is_lazy_and_bounded(carphone_frames, pipelined):
    """An endless source: stream reads a bounded number of frames ahead of what it yields: about
    one batch one stage after another, a fixed number of batches pipelined (one per queue and
    stage, vc.read_ahead), never the whole input; dropping the stream ends its threads."""
    consumed = 0

    def endless():
        nonlocal consumed
        for frame in itertools.cycle(carphone_frames):
            consumed += 1
            yield frame

    vc = colorvid.open_colorizer("grey", batch=4, pipelined=pipelined)
    out = list(itertools.islice(vc.stream(endless()), 6))
    assert len(out) == 6
    if pipelined:
        assert consumed <= 6 + vc.read_ahead
    else:
        assert consumed <= 8  # two batches of 4
    assert not [t for t in threading.enumerate() if t.name.startswith("colorvid-")]


def test_temporal_state_carries_across_batches_and_resets_at_cuts(test_colorizers, carphone_frames,
                                                                  bunny_cut):
    # Same frame size for both shots, so only the scene-cut detector can find the cut.
    bunny = [rgb[:108, :176].copy() for _, rgb in read_frames(bunny_cut, count=7)]
    frames = [f[:108, :176].copy() for f in carphone_frames] + bunny  # shots of 10 and 7 frames
    vc = colorvid.open_colorizer("count-test", batch=4)
    out = list(vc.stream(frames))
    model = test_colorizers[-1]
    assert model.log == list(range(10)) + list(range(7))
    assert vc.scene_cuts == [10]
    # The state shows in the output colour: a = 2 * count.
    a_last = _lab(out[9])[1].mean().item()
    a_first = _lab(out[10])[1].mean().item()
    assert a_last > 10 and abs(a_first) < 2


def test_temporal_state_resets_on_size_change(test_colorizers, carphone_frames):
    small = [f[:64, :64].copy() for f in carphone_frames[:3]]
    vc = colorvid.open_colorizer("count-test", batch=8)
    assert len(list(vc.stream(carphone_frames[:5] + small))) == 8
    assert test_colorizers[-1].log == [0, 1, 2, 3, 4, 0, 1, 2]


def test_colorize_is_independent_for_temporal_models(test_colorizers, carphone_frames):
    vc = colorvid.open_colorizer("count-test")
    a = vc.colorize(carphone_frames[0])
    b = vc.colorize(carphone_frames[0])
    np.testing.assert_array_equal(a, b)
    assert test_colorizers[-1].log == [0, 0]


def test_open_colorizer_passes_weights_device_and_options(test_colorizers, tmp_path):
    vc = colorvid.open_colorizer("const-test", weights=tmp_path / "w.safetensors", device="cpu",
                                 render_size=32)
    model = test_colorizers[-1]
    assert model.weights == str(tmp_path / "w.safetensors")
    assert vc.device == torch.device("cpu") and model.render_size == 32
    assert vc.colorize(np.zeros((20, 30), np.uint8)).shape == (20, 30, 3)


def test_open_colorizer_errors(test_colorizers):
    with pytest.raises(colorvid.ColorizeError, match="unknown colorizer 'nope'; available: .*grey"):
        colorvid.open_colorizer("nope")
    with pytest.raises(colorvid.ColorizeError, match="cannot create colorizer 'broken-test': "
                       "FileNotFoundError: weights file"):
        colorvid.open_colorizer("broken-test")
    with pytest.raises(colorvid.ColorizeError, match="not a torch device"):
        colorvid.open_colorizer("grey", device="quantum")
    bad_cuda = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(colorvid.ColorizeError, match="CUDA"):
        colorvid.open_colorizer("grey", device=bad_cuda)
    with pytest.raises(ValueError, match="batch must be an integer >= 1"):
        colorvid.open_colorizer("grey", batch=0)
    with pytest.raises(ValueError, match="render_size"):
        colorvid.open_colorizer("grey", render_size=4)


@pytest.mark.parametrize("shape", [(2, 9, 7, 3), (9, 7, 3), (9, 7, 1), (9, 7), (3, 9, 7)])
def test_uint8_fast_l_path_matches_full_lab_conversion(shape):
    # every 8-bit value appears (the look-up tables are exact per value)
    x = torch.arange(int(np.prod(shape)), dtype=torch.int64).remainder(256).to(torch.uint8)
    x = x.reshape(shape)[torch.randperm(shape[0])]
    reference = rgb_to_lab(to_rgb_float(x))[:, :1]
    fast = frames_to_l(x)
    assert fast.shape == reference.shape and fast.dtype == torch.float32
    assert (fast - reference).abs().max() < 1e-4
    assert torch.equal(frames_to_l(x.numpy()), fast)
