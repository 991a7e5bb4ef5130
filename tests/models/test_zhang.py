"""Zhang et al. ECCV16: layout, parameter counts, decoding maths, released-weight import, plugin."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.data import astronaut

import colorvid
from colorvid.core import cli
from colorvid.core.bins import ab_bins
from colorvid.core.color import lab_to_rgb, rgb_to_lab
from colorvid.core.frames import frames_to_l, lab_to_frames
from colorvid.core.video.decode import read_frames
from colorvid.core.weights import WeightsError, read_config, save_weights
from colorvid.plugins.models.zhang import ZhangColorizer
from colorvid.plugins.models.zhang_import import import_released
from colorvid.plugins.models.zhang_net import (
    RELEASED_ANNEAL_SCALE,
    ZhangConfig,
    ZhangNet,
    decode_logits,
)

# The released layout, written out from design.md section 3 (not from our module):
# block -> (conv (in, out) list, BN index).
_BLOCKS = {
    "model1": ([(1, 64), (64, 64)], 4),
    "model2": ([(64, 128), (128, 128)], 4),
    "model3": ([(128, 256), (256, 256), (256, 256)], 6),
    "model4": ([(256, 512), (512, 512), (512, 512)], 6),
    "model5": ([(512, 512)] * 3, 6),
    "model6": ([(512, 512)] * 3, 6),
    "model7": ([(512, 512)] * 3, 6),
}
_STRIDES = {"model1": [1, 2], "model2": [1, 2], "model3": [1, 1, 2]}
_DILATION = {"model5": 2, "model6": 2}


def released_layout() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for block, (convs, bn) in _BLOCKS.items():
        for i, (cin, cout) in enumerate(convs):
            shapes[f"{block}.{2 * i}.weight"] = (cout, cin, 3, 3)
            shapes[f"{block}.{2 * i}.bias"] = (cout,)
        cout = convs[-1][1]
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{block}.{bn}.{name}"] = (cout,)
        shapes[f"{block}.{bn}.num_batches_tracked"] = ()
    shapes.update({
        "model8.0.weight": (512, 256, 4, 4), "model8.0.bias": (256,),
        "model8.2.weight": (256, 256, 3, 3), "model8.2.bias": (256,),
        "model8.4.weight": (256, 256, 3, 3), "model8.4.bias": (256,),
        "model8.6.weight": (313, 256, 1, 1), "model8.6.bias": (313,),
        "model_out.weight": (2, 313, 1, 1),
    })
    return shapes


def fake_released_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values in the released layout, scaled so activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in released_layout().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif ".weight" in key and len(shape) == 4:
            fan_in = shape[0 if key == "model8.0.weight" else 1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        elif key.endswith(".weight"):  # BN gamma
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:  # biases, BN beta and running means
            state[key] = torch.randn(shape, generator=g) * 0.1
    # A logit layer with the annealing folded in, as released: O(1/T) logits.
    state["model8.6.weight"] *= RELEASED_ANNEAL_SCALE * 4
    return state


def released_forward(sd: dict[str, torch.Tensor], L: torch.Tensor) -> torch.Tensor:
    """The released PyTorch forward, written independently with torch.nn.functional."""
    x = (L - 50.0) / 100.0
    for block, (convs, bn) in _BLOCKS.items():
        for i in range(len(convs)):
            stride = _STRIDES.get(block, [1] * len(convs))[i]
            dil = _DILATION.get(block, 1)
            x = F.relu(F.conv2d(x, sd[f"{block}.{2 * i}.weight"], sd[f"{block}.{2 * i}.bias"],
                                stride=stride, padding=dil, dilation=dil))
        x = F.batch_norm(x, sd[f"{block}.{bn}.running_mean"], sd[f"{block}.{bn}.running_var"],
                         sd[f"{block}.{bn}.weight"], sd[f"{block}.{bn}.bias"], False, 0.0, 1e-5)
    x = F.relu(F.conv_transpose2d(x, sd["model8.0.weight"], sd["model8.0.bias"], stride=2,
                                  padding=1))
    x = F.relu(F.conv2d(x, sd["model8.2.weight"], sd["model8.2.bias"], padding=1))
    x = F.relu(F.conv2d(x, sd["model8.4.weight"], sd["model8.4.bias"], padding=1))
    conv8_313 = F.conv2d(x, sd["model8.6.weight"], sd["model8.6.bias"])
    out = F.conv2d(torch.softmax(conv8_313, dim=1), sd["model_out.weight"])
    return F.interpolate(out, scale_factor=4, mode="bilinear", align_corners=False) * 110.0, \
        conv8_313


@pytest.fixture(scope="module")
def released_pth(tmp_path_factory):
    state = fake_released_state()
    path = tmp_path_factory.mktemp("zhang") / "colorization_release_v2-9b330a0b.pth"
    torch.save(state, path)
    return path, state


# -- network --------------------------------------------------------------------------------------
def test_full_and_tiny_parameter_counts_and_released_key_layout():
    full = ZhangNet(ZhangConfig.preset("full"))
    assert sum(p.numel() for p in full.parameters()) == 32_236_011
    assert {k: tuple(v.shape) for k, v in full.state_dict().items()} == released_layout()
    tiny = ZhangNet(ZhangConfig.preset("tiny"))
    assert list(tiny.state_dict()) == list(full.state_dict())  # same topology and keys
    assert sum(p.numel() for p in tiny.parameters()) < 32_236_011 / 10
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        ZhangConfig.preset("huge")


def test_logits_are_quarter_resolution_and_forward_is_full_resolution():
    net = ZhangNet(ZhangConfig.preset("tiny")).eval()
    L = torch.rand(2, 1, 48, 64) * 100
    assert tuple(net.logits(L).shape) == (2, 313, 12, 16)
    assert tuple(net(L).shape) == (2, 2, 48, 64)
    # The default decoder holds the 313 bin centres / 110.
    torch.testing.assert_close(net.centres(), ab_bins())


# -- decoding maths on hand-computed distributions ----------------------------------------------
def _two_bin_logits(p: float, i: int, j: int) -> torch.Tensor:
    logits = torch.full((1, 313, 1, 1), -1e4)
    logits[0, i] = math.log(p)
    logits[0, j] = math.log(1 - p)
    return logits


def test_annealed_mean_mean_and_mode_by_hand():
    c = ab_bins()
    i, j, p, T = 5, 200, 0.6, 0.38
    logits = _two_bin_logits(p, i, j)
    # f_T(z) = z^(1/T) / sum z^(1/T) over the two bins.
    wi, wj = p ** (1 / T), (1 - p) ** (1 / T)
    want = (wi * c[i] + wj * c[j]) / (wi + wj)
    got = decode_logits(logits, "annealed_mean", temperature=T)[0, :, 0, 0]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    torch.testing.assert_close(decode_logits(logits, "mean")[0, :, 0, 0],
                               p * c[i] + (1 - p) * c[j], atol=1e-4, rtol=0)
    torch.testing.assert_close(decode_logits(logits, "annealed_mean", temperature=1.0),
                               decode_logits(logits, "mean"))
    assert decode_logits(logits, "mode")[0, :, 0, 0].tolist() == c[i].tolist()
    # Annealing sharpens: the T = 0.38 result sits closer to the mode than the mean does.
    assert (got - c[i]).norm() < (decode_logits(logits, "mean")[0, :, 0, 0] - c[i]).norm()


def test_net_decode_matches_decode_logits_and_validates():
    net = ZhangNet(ZhangConfig.preset("tiny"))
    logits = torch.randn(2, 313, 3, 5) * 3
    for mode in ("annealed_mean", "mean", "mode"):
        torch.testing.assert_close(net.decode(logits, mode), decode_logits(logits, mode),
                                   atol=1e-4, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown mode 'median'"):
        decode_logits(logits, "median")
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        decode_logits(logits, temperature=0.0)
    with pytest.raises(ValueError, match=r"centres must be \(q, 2\)"):
        decode_logits(logits, centres=torch.zeros(10, 2))


# -- released-weight import -----------------------------------------------------------------------
def test_import_reproduces_released_forward_and_unanneals_logits(released_pth, tmp_path, capsys):
    src, state = released_pth
    out = tmp_path / "zhang-full.safetensors"
    assert cli.main(["weights", "import", "zhang-eccv16", str(src), "-o", str(out)]) == 0
    assert "model 'zhang' preset 'full'" in capsys.readouterr().out
    config = read_config(out)
    assert config["source"]["file"] == src.name and config["decoder_is_bins"] is False
    assert config["decode_temperature"] == pytest.approx(1 / RELEASED_ANNEAL_SCALE)

    zhang = ZhangColorizer(weights=out, device="cpu", render_size=32, dtype="float32")
    assert zhang.preset == "full"  # taken from the file
    L = torch.rand(2, 1, 32, 32) * 100
    want_ab, want_logits = released_forward(state, L)
    torch.testing.assert_close(zhang.predict_ab_lowres(L), want_ab, atol=2e-3, rtol=1e-4)
    # Logits are un-annealed: times the release's scale they are the released model8 output.
    torch.testing.assert_close(zhang.logits(L) * RELEASED_ANNEAL_SCALE, want_logits,
                               atol=1e-3, rtol=1e-4)
    # Asking for another preset than the file holds is refused, naming the fix.
    with pytest.raises(WeightsError, match="pass preset='full'"):
        ZhangColorizer(weights=out, preset="tiny", device="cpu")


def test_import_anneal_scale_option(released_pth, tmp_path, capsys):
    src, state = released_pth
    out = tmp_path / "unscaled.safetensors"
    # A file whose model8.6 holds plain logits (scale 1): decoded as a plain softmax mean.
    assert cli.main(["weights", "import", "zhang-eccv16", str(src), "-o", str(out),
                     "--anneal-scale", "1"]) == 0
    assert read_config(out)["decode_temperature"] == 1.0
    zhang = ZhangColorizer(weights=out, device="cpu", render_size=32, dtype="float32")
    L = torch.rand(1, 1, 32, 32) * 100
    torch.testing.assert_close(zhang.logits(L), released_forward(state, L)[1],
                               atol=1e-3, rtol=1e-4)
    assert cli.main(["weights", "import", "larsson", str(src), "-o", str(out), "--force",
                     "--anneal-scale", "2"]) == 2
    assert "applies to zhang-eccv16 only" in capsys.readouterr().err


def test_import_lists_missing_unexpected_and_misshaped_keys(tmp_path, capsys):
    state = {k: torch.zeros(s) for k, s in released_layout().items()}
    del state["model3.6.running_var"]
    state["model9.0.weight"] = torch.zeros(3)
    state["model8.6.weight"] = torch.zeros(300, 256, 1, 1)
    del state["model1.4.num_batches_tracked"]  # optional: files older than torch 0.4.1
    src = tmp_path / "bad.pth"
    torch.save(state, src)
    with pytest.raises(WeightsError) as info:
        import_released(src, tmp_path / "out.safetensors")
    msg = str(info.value)
    assert "missing keys (1): model3.6.running_var" in msg
    assert "unexpected keys (1): model9.0.weight" in msg
    assert "model8.6.weight: file [300, 256, 1, 1] vs model [313, 256, 1, 1]" in msg
    assert "num_batches_tracked" not in msg
    # The CLI reports the same as one line, exit status 2, and writes nothing.
    code = cli.main(["weights", "import", "zhang-eccv16", str(src), "-o",
                     str(tmp_path / "o.safetensors")])
    assert code == 2 and "missing keys (1)" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()


class _Payload:
    """A pickled object that weights_only loading must refuse to construct."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_import_refuses_pickled_code_and_non_state_dicts(tmp_path, capsys):
    src = tmp_path / "evil.pth"
    torch.save({"model1.0.weight": torch.zeros(1), "x": _Payload()}, src)
    with pytest.raises(WeightsError, match="refused"):
        import_released(src, tmp_path / "out.safetensors")
    assert "this must never run" not in capsys.readouterr().out
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="not a state dict of tensors"):
        import_released(tmp_path / "list.pth", tmp_path / "out.safetensors")
    with pytest.raises(WeightsError, match="does not exist"):
        import_released(tmp_path / "nope.pth", tmp_path / "out.safetensors")


def test_import_cli_refuses_overwrite_and_bad_suffix(tmp_path, capsys):
    existing = tmp_path / "x.safetensors"
    existing.write_bytes(b"keep")
    assert cli.main(["weights", "import", "zhang-eccv16", "a.pth", "-o", str(existing)]) == 2
    assert "--force" in capsys.readouterr().err and existing.read_bytes() == b"keep"
    assert cli.main(["weights", "import", "zhang-eccv16", "a.pth", "-o", "x.pt"]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err


# -- the colorizer plugin -------------------------------------------------------------------------
def test_registered_cheaply_and_listed(fresh_host, monkeypatch, capsys):
    built = []
    original = ZhangNet.__init__
    monkeypatch.setattr(ZhangNet, "__init__",
                        lambda self, *a, **k: (built.append(1), original(self, *a, **k))[1])
    colorvid.reset_host()
    assert "zhang" in colorvid.get_host().names("colorizer")
    assert built == []  # registration builds no network
    assert cli.main(["plugins", "--kind", "colorizer"]) == 0
    assert any(line.split()[:2] == ["zhang", "colorizer"]
               for line in capsys.readouterr().out.splitlines())


def test_missing_default_weights_error_names_the_options(fresh_host):
    # No full-preset weights ship (the user imports the authors' file).
    with pytest.raises(WeightsError, match=r"pass weights='FILE.safetensors'.*pretrained=False"):
        colorvid.create_colorizer("zhang", device="cpu", preset="full")
    with pytest.raises(ValueError, match="render_size must be a positive multiple of 8"):
        colorvid.create_colorizer("zhang", pretrained=False, render_size=100)
    with pytest.raises(ValueError, match="float16 runs on CUDA only"):
        colorvid.create_colorizer("zhang", pretrained=False, device="cpu", fp16=True)
    with pytest.raises(ValueError, match="decode must be one of"):
        colorvid.create_colorizer("zhang", pretrained=False, decode="median")


def test_saved_tiny_weights_round_trip_through_the_factory(tmp_path, fresh_host):
    torch.manual_seed(1)
    net = ZhangNet(ZhangConfig.preset("tiny"))
    for m in net.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    path = save_weights(tmp_path / "zhang-tiny.safetensors", net.state_dict(),
                        {"model": "zhang", "preset": "tiny",
                         "architecture": net.config.to_dict(),
                         "training": {"data": "test", "steps": 0}},
                        extras={"class_prior": torch.full((313,), 1 / 313)})
    zhang = colorvid.create_colorizer("zhang", weights=path, device="cpu", render_size=32,
                                      channels_last=False, dtype="float32")
    L = torch.rand(1, 1, 32, 32) * 100
    torch.testing.assert_close(zhang.predict_ab_lowres(L), net.eval()(L))
    assert zhang.temperature == 0.38 and zhang.weights_config["extras"] == ["class_prior"]


def test_colorized_real_frame_keeps_l_exactly(carphone_clip):
    _, rgb = next(read_frames(carphone_clip))  # (144, 176, 3) uint8, real colour footage
    grey = np.repeat(rgb.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    L = frames_to_l(grey)
    torch.manual_seed(0)
    zhang = ZhangColorizer(pretrained=False, device="cpu", render_size=64, dtype="float32")
    lab = zhang.colorize_lab(L)
    assert tuple(lab.shape) == (1, 3, 144, 176) and lab.dtype == torch.float32
    assert torch.equal(lab[:, :1], L)
    ab = lab[:, 1:]
    # Annealed means lie in the convex hull of the bin centres.
    assert torch.isfinite(ab).all() and ab.abs().max() <= 110.0
    out = lab_to_frames(L, ab)
    assert out.shape == (1, 144, 176, 3) and out.dtype == np.uint8
    # Batches give the same frames as one at a time.
    two = zhang.predict_ab(torch.cat([L, L.flip(-1)]))
    torch.testing.assert_close(two[:1], ab, atol=1e-4, rtol=1e-4)


def test_bfloat16_inference_follows_float32():
    torch.manual_seed(2)
    fp32 = ZhangColorizer(pretrained=False, device="cpu", render_size=32, dtype="float32")
    bf16 = ZhangColorizer(pretrained=False, device="cpu", render_size=32, dtype="bfloat16")
    bf16.net.load_state_dict(fp32.net.state_dict())  # copied into each tensor's own dtype
    L = torch.rand(2, 1, 32, 32) * 100
    a, b = fp32.predict_ab_lowres(L), bf16.predict_ab_lowres(L)
    assert b.dtype == torch.float32 and next(bf16.net.parameters()).dtype == torch.bfloat16
    # The decoding stays float32, with the exact bin centres.
    assert bf16.net.model_out.weight.dtype == torch.float32
    assert torch.equal(bf16.net.model_out.weight, fp32.net.model_out.weight)
    assert (a - b).abs().mean() < 1.0  # ab units; bf16 keeps ~3 significant digits
    with pytest.raises(ValueError, match="dtype 'int8' not accepted"):
        ZhangColorizer(pretrained=False, device="cpu", dtype="int8")


def test_default_precision_is_bf16_channels_last_where_the_cpu_computes_bf16(monkeypatch):
    from colorvid.plugins.models import common

    cpu = torch.device("cpu")
    native = common.native_bf16(cpu)
    zhang = ZhangColorizer(device="cpu", render_size=64)  # the shipped weights, defaults
    assert zhang.dtype == (torch.bfloat16 if native else torch.float32)
    assert zhang.memory_format == (torch.channels_last if native else torch.contiguous_format)
    assert ZhangColorizer(device="cpu", dtype="auto").dtype == zhang.dtype
    # The same frames as float32, to a fraction of an 8-bit code, on a real frame.
    fp32 = ZhangColorizer(device="cpu", render_size=64, dtype="float32")
    rgb = torch.from_numpy(np.ascontiguousarray(astronaut())).permute(2, 0, 1)[None] / 255.0
    L = rgb_to_lab(F.interpolate(rgb.float(), size=(64, 64), mode="area"))[:, :1]
    frames = [lab_to_rgb(torch.cat([L, c.predict_ab(L)], 1)).clamp(0, 1) * 255
              for c in (fp32, zhang)]
    assert (frames[0] - frames[1]).abs().mean() < 0.5
    # The choice follows the hardware: either kind of CPU.
    for has_it, want in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(common, "native_bf16", lambda device, v=has_it: v)
        assert common.resolve_dtype(False, None, cpu, "zhang") == want
        assert common.resolve_dtype(False, "float32", cpu, "zhang") == torch.float32
    assert common.pick_memory_format(None, cpu, torch.bfloat16) == torch.channels_last
    assert common.pick_memory_format(None, cpu, torch.float32) == torch.contiguous_format
