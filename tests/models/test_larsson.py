"""Larsson et al.: layer set, parameter counts, Caffe upsampling, released decoding, HDF5 import."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import colorvid
from colorvid.core import cli
from colorvid.core.frames import frames_to_l
from colorvid.core.video.decode import read_frames
from colorvid.core.weights import WeightsError, read_config
from colorvid.plugins.models.larsson import LarssonColorizer, l_to_grey
from colorvid.plugins.models.larsson_decode import (
    decode_chroma,
    decode_hue,
    histograms_to_rgb,
    hsv_to_rgb,
    match_lightness,
)
from colorvid.plugins.models.larsson_import import import_released, inspect_caffe_h5
from colorvid.plugins.models.larsson_net import (
    LarssonConfig,
    LarssonNet,
    caffe_bilinear_upsample,
)

# The released deploy layers with parameters, in order (autocolorize.prototxt).
VGG = [f"conv{s}_{i}" for s, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(1, n + 1)]
LAYERS = VGG + ["fc6", "fc7", "h_fc1", "prediction_h", "prediction_c"]
# Hypercolumn sources in concat order with their resampling: pool k, native, or bilinear up k.
SOURCES = [("data", "pool", 4), ("conv1_1", "pool", 4), ("conv1_2", "pool", 4),
           ("conv2_1", "pool", 2), ("conv2_2", "pool", 2), ("conv3_1", "id", 1),
           ("conv3_2", "id", 1), ("conv3_3", "id", 1)] + \
    [(f"conv4_{i}", "up", 2) for i in (1, 2, 3)] + [(f"conv5_{i}", "up", 4) for i in (1, 2, 3)] + \
    [("fc6", "up", 8), ("fc7", "up", 8)]


def released_shapes(widths, fc, head, bins=32) -> dict[str, list[tuple[int, ...]]]:
    chans = dict(zip(VGG, [w for w, n in zip(widths, (2, 2, 3, 3, 3), strict=True)
                          for _ in range(n)], strict=True))
    shapes, cin = {}, 1
    for name in VGG:
        shapes[name] = [(chans[name], cin, 3, 3), (chans[name],)]
        cin = chans[name]
    hyper = 1 + sum(chans.values()) + 2 * fc
    shapes["fc6"] = [(fc, cin, 7, 7), (fc,)]
    shapes["fc7"] = [(fc, fc, 1, 1), (fc,)]
    shapes["h_fc1"] = [(head, hyper, 1, 1), (head,)]
    shapes["prediction_h"] = shapes["prediction_c"] = [(bins, head, 1, 1), (bins,)]
    return shapes


FULL = released_shapes((64, 128, 256, 512, 512), 4096, 1024)
TINY = released_shapes((16, 32, 64, 128, 128), 256, 256)  # fc / 16: see LarssonConfig


def caffe_bilinear_filler(k: int) -> torch.Tensor:
    """Caffe's BilinearFiller written from its definition, for a k x k kernel."""
    f = math.ceil(k / 2)
    c = (2 * f - 1 - f % 2) / (2 * f)
    w = torch.tensor([[(1 - abs(x / f - c)) * (1 - abs(y / f - c)) for x in range(k)]
                      for y in range(k)])
    return w


def caffe_deconv_up(x: torch.Tensor, f: int) -> torch.Tensor:
    """The deploy net's Reshape + Deconvolution(kernel 2f, stride f, pad f/2) + Reshape."""
    b, c, h, w = x.shape
    kernel = caffe_bilinear_filler(2 * f).view(1, 1, 2 * f, 2 * f)
    y = F.conv_transpose2d(x.reshape(b * c, 1, h, w), kernel, stride=f, padding=f // 2)
    return y.reshape(b, c, h * f, w * f)


def released_forward(blobs: dict[str, list[torch.Tensor]], grey: torch.Tensor):
    """The deploy prototxt, written independently: dense hypercolumn, softmax, Caffe x4."""
    feats, x = {"data": grey}, grey
    for name in VGG:
        x = feats[name] = F.relu(F.conv2d(x, *blobs[name], padding=1))
        if name.endswith(("1_2", "2_2", "3_3", "4_3", "5_3")):
            x = F.max_pool2d(x, 2)
    x = feats["fc6"] = F.relu(F.conv2d(x, *blobs["fc6"], padding=3))
    feats["fc7"] = F.relu(F.conv2d(x, *blobs["fc7"]))
    cols = []
    for name, how, k in SOURCES:
        v = feats[name]
        cols.append(F.avg_pool2d(v, k) if how == "pool" else caffe_deconv_up(v, k)
                    if how == "up" else v)
    h = F.relu(F.conv2d(torch.cat(cols, 1), *blobs["h_fc1"]))
    return tuple(caffe_deconv_up(torch.softmax(F.conv2d(h, *blobs[n]), 1), 4)
                 for n in ("prediction_h", "prediction_c"))


def write_caffe_h5(path, shapes, *, data=True, seed=0, extra_groups=("relu_conv1_1", "pool1")):
    g = torch.Generator().manual_seed(seed)
    blobs = {}
    with h5py.File(path, "w") as f:
        root = f.create_group("data")
        for name in ["data", *extra_groups]:  # parameter-free layers: empty groups, as Caffe
            root.create_group(name)
        for layer, layer_shapes in shapes.items():
            grp = root.create_group(layer)
            blobs[layer] = []
            for i, shape in enumerate(layer_shapes):
                if not data:  # lazily allocated: shape only, nothing written
                    grp.create_dataset(str(i), shape=shape, dtype="f4")
                    continue
                fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
                t = torch.randn(shape, generator=g) * (math.sqrt(2 / fan_in) if i == 0 else 0.05)
                grp.create_dataset(str(i), data=t.numpy())
                blobs[layer].append(t)
        if data:
            for name, f_ in (("conv4_1_full_reshaped", 2), ("fc7_full_reshaped", 8)):
                root.create_group(name).create_dataset(
                    "0", data=caffe_bilinear_filler(2 * f_).view(1, 1, 2 * f_, 2 * f_).numpy())
    return blobs


# -- network --------------------------------------------------------------------------------------
def test_parameter_counts_and_released_layer_names():
    with torch.device("meta"):  # shapes only: the full network is 588 MB
        full = LarssonNet(LarssonConfig.preset("full"))
    assert sum(p.numel() for p in full.parameters()) == 147_041_024
    assert full.config.hypercolumn_channels == 12_417
    want = {f"{layer}.{blob}": s for layer, (w, b) in FULL.items()
            for blob, s in (("weight", w), ("bias", b))}
    assert {k: tuple(v.shape) for k, v in full.state_dict().items()} == want
    tiny = LarssonNet(LarssonConfig.preset("tiny"))
    assert list(tiny.state_dict()) == list(full.state_dict())
    assert sum(p.numel() for p in tiny.parameters()) < 147_041_024 / 10


@pytest.mark.parametrize("factor", [2, 4, 8])
@pytest.mark.parametrize("size", [(1, 1), (3, 5)])  # 1x1: every output pixel is a border one
def test_upsampling_equals_caffe_bilinear_deconvolution(factor, size):
    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(caffe_bilinear_upsample(x, factor), caffe_deconv_up(x, factor),
                               atol=1e-6, rtol=1e-6)


def test_fused_head_equals_plain_hypercolumn():
    torch.manual_seed(0)
    net = LarssonNet(LarssonConfig.preset("tiny")).eval()
    grey = torch.rand(2, 1, 64, 96)
    for a, b in zip(net(grey, "fused"), net(grey, "plain"), strict=True):
        assert a.shape == (2, 32, 64, 96)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 1, 40, 64))


# -- released decoding on hand-computed histograms -----------------------------------------------
def _hist(values: dict[int, float]) -> torch.Tensor:
    h = torch.zeros(1, 32, 1, 1)
    for k, p in values.items():
        h[0, k] = p
    return h


def test_circular_hue_mean_wraps_and_fading_uses_the_bin_mean():
    hue, fade = decode_hue(_hist({0: 0.5, 31: 0.5}))  # centres 1/64 and 63/64: mean is 0, not 0.5
    assert min(hue.item(), 1 - hue.item()) < 1e-6
    assert fade.item() == 1.0  # resultant 0.9988 / 32 = 0.0312 > 0.03
    hue, _ = decode_hue(_hist({4: 0.75, 8: 0.25}))
    want = math.atan2(0.75 * math.sin(2 * math.pi * 4.5 / 32) + 0.25 * math.sin(2 * math.pi * 8.5
                      / 32), 0.75 * math.cos(2 * math.pi * 4.5 / 32) + 0.25 * math.cos(
                      2 * math.pi * 8.5 / 32)) / (2 * math.pi)
    assert hue.item() == pytest.approx(want, abs=1e-6)
    # Opposite bins cancel: resultant 0.2 -> fade = (0.2 / 32) / 0.03.
    _, fade = decode_hue(_hist({0: 0.6, 16: 0.4}))
    assert fade.item() == pytest.approx(0.2 / 32 / 0.03, rel=1e-5)
    _, fade = decode_hue(torch.full((1, 32, 1, 1), 1 / 32))  # uniform: no colour at all
    assert fade.item() == pytest.approx(0.0, abs=1e-6)
    assert decode_hue(_hist({7: 1.0}), "mode")[0].item() == pytest.approx(7.5 / 32)


def test_median_expectation_and_mode_chroma_by_hand():
    h = _hist({2: 0.3, 5: 0.3, 9: 0.4})  # cumsum passes 0.5 at bin 5
    assert decode_chroma(h, "median").item() == pytest.approx(5.5 / 32)
    assert decode_chroma(h, "expectation").item() == pytest.approx(
        (0.3 * 2.5 + 0.3 * 5.5 + 0.4 * 9.5) / 32)
    assert decode_chroma(h, "mode").item() == pytest.approx(9 / 32)  # the release's: no +0.5
    with pytest.raises(ValueError, match="chroma method must be one of"):
        decode_chroma(h, "q75")


def test_hsv_lightness_matching_and_full_decode():
    skcolor = pytest.importorskip("skimage.color")
    hsv = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    want = skcolor.hsv2rgb(hsv[0].permute(1, 2, 0).numpy())
    got = hsv_to_rgb(hsv[:, :1], hsv[:, 1:2], hsv[:, 2:])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)
    rgb = torch.tensor([0.9, 0.3, 0.3]).view(1, 3, 1, 1)
    torch.testing.assert_close(match_lightness(rgb, torch.full((1, 1, 1, 1), 0.4)).flatten(),
                               torch.tensor([0.9, 0.3, 0.3]) - 0.5 + 0.4)
    # No chroma: the output is the input grey; full chroma at a red hue: a red pixel.
    grey = torch.full((1, 1, 1, 1), 0.4)
    out = histograms_to_rgb(_hist({0: 1.0}), _hist({0: 1.0}), grey, chroma="mode")
    torch.testing.assert_close(out.flatten(), torch.full((3,), 0.4))
    red = histograms_to_rgb(_hist({0: 1.0}), _hist({12: 1.0}), grey).flatten()
    assert red[0] > red[1] and red[0] > red[2] and red.mean().item() == pytest.approx(0.4)


# -- import ---------------------------------------------------------------------------------------
def test_import_reproduces_the_released_deploy_forward(tmp_path, capsys):
    src = tmp_path / "autocolorize.caffemodel.h5"
    blobs = write_caffe_h5(src, TINY)
    out = tmp_path / "larsson-tiny.safetensors"
    assert cli.main(["weights", "import", "larsson", str(src), "-o", str(out)]) == 0
    assert "model 'larsson' preset 'tiny'" in capsys.readouterr().out
    assert read_config(out)["source"]["file"] == src.name
    larsson = LarssonColorizer(weights=out, device="cpu", render_size=64, dtype="float32")
    grey = torch.rand(2, 1, 64, 64)
    for got, want in zip(larsson.histograms(grey), released_forward(blobs, grey), strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_full_release_layout_is_recognised_without_reading_data(tmp_path):
    src = tmp_path / "autocolorize.caffemodel.h5"
    write_caffe_h5(src, FULL, data=False)  # 588 MB of shapes, a few KB on disk
    assert src.stat().st_size < 1_000_000
    preset, shapes = inspect_caffe_h5(src)
    assert preset == "full" and shapes["h_fc1.weight"] == (1024, 12417, 1, 1)


def test_import_lists_layout_problems(tmp_path):
    bad = {k: list(v) for k, v in TINY.items()}
    del bad["prediction_c"]
    bad["h_fc1"] = [(256, 3000, 1, 1), (256,)]
    bad["colorize_fc1"] = [(256, 10)]
    src = tmp_path / "bad.caffemodel.h5"
    write_caffe_h5(src, bad, data=False)
    with pytest.raises(WeightsError) as info:
        import_released(src, tmp_path / "o.safetensors")
    msg = str(info.value)
    assert "missing keys (2): prediction_c.bias, prediction_c.weight" in msg
    assert "unexpected keys (1): colorize_fc1.weight" in msg
    assert "h_fc1.weight: file [256, 3000, 1, 1] vs model [256, 1569, 1, 1]" in msg
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightsError, match="no /data group"):
        import_released(other, tmp_path / "o.safetensors")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(WeightsError, match="not an HDF5 file"):
        import_released(tmp_path / "text.h5", tmp_path / "o.safetensors")


def test_non_bilinear_upsampler_is_refused(tmp_path):
    src = tmp_path / "odd.caffemodel.h5"
    write_caffe_h5(src, TINY)
    with h5py.File(src, "a") as f:
        f["data/fc7_full_reshaped/0"][0, 0, 0, 0] = 5.0
    with pytest.raises(WeightsError, match="fc7_full_reshaped is not the fixed bilinear"):
        import_released(src, tmp_path / "o.safetensors")


# -- the colorizer plugin -------------------------------------------------------------------------
def test_l_to_grey_inverts_grey_frames():
    values = np.array([[0, 64, 128, 255]], dtype=np.uint8)
    grey = l_to_grey(frames_to_l(np.repeat(values[..., None], 3, axis=2)))
    np.testing.assert_allclose(grey[0, 0, 0].numpy(), values[0] / 255.0, atol=1e-4)


def test_registered_and_colorizes_a_real_frame(carphone_clip, fresh_host):
    assert "larsson" in colorvid.get_host().names("colorizer")
    # The tiny preset ships; the full one is the user's to import.
    assert colorvid.create_colorizer("larsson", device="cpu").weights_config["preset"] == "tiny"
    with pytest.raises(WeightsError, match="pretrained=False"):
        colorvid.create_colorizer("larsson", device="cpu", preset="full")
    with pytest.raises(ValueError, match="render_size must be a positive multiple of 32"):
        colorvid.create_colorizer("larsson", pretrained=False, render_size=100)
    with pytest.raises(ValueError, match="hue must be one of"):
        colorvid.create_colorizer("larsson", pretrained=False, hue="median")
    _, rgb = next(read_frames(carphone_clip))
    grey = np.repeat(rgb.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    L = frames_to_l(grey)
    torch.manual_seed(0)
    larsson = colorvid.create_colorizer("larsson", pretrained=False, device="cpu",
                                        render_size=64)
    lab = larsson.colorize_lab(L)
    assert tuple(lab.shape) == (1, 3, 144, 176) and torch.equal(lab[:, :1], L)
    assert torch.isfinite(lab).all() and lab[:, 1:].abs().max() < 128
