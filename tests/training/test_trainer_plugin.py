"""A third-party colorizer trained by ``colorvid train`` through the register_trainers hook."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import colorvid
from colorvid.core.cli import main
from colorvid.core.training.adapters import HyperParameters, TrainAdapter
from colorvid.core.weights import read_config
from colorvid.plugins.models.zhang import ZhangColorizer
from colorvid.plugins.models.zhang_net import BinDecoding


@dataclasses.dataclass(frozen=True)
class _Config:
    width: int

    def to_dict(self):
        return {"width": self.width}


class _Net(BinDecoding):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.config = _Config(width)
        self.body = nn.Sequential(nn.Conv2d(1, width, 4, stride=4), nn.ReLU(),
                                  nn.Conv2d(width, 313, 1))
        self.init_decoding(313)

    def logits(self, L):
        return self.body((L - 50.0) / 100.0)


class _Colorizer(ZhangColorizer):
    name = "plugnet"
    stride = 4

    @staticmethod
    def build_net(preset: str) -> nn.Module:
        return _Net({"tiny": 8, "small": 16, "full": 32}[preset])


class _Adapter(TrainAdapter):
    """A plugin's own 313-bin net."""

    model, default_loss = "plugnet", "rebalanced_ce"
    hp = HyperParameters("adam", 1e-2, 0.0, steps=100, crop=32, seq_len=1)
    model_options = ("width_note",)

    def build(self) -> nn.Module:
        return _Colorizer.build_net(self.preset)

    def frozen(self) -> list[nn.Module]:
        return [self.net.model_out]

    def outputs(self, net, L):
        return {"logits": net.logits(L.flatten(0, 1))}


class _Plugin:
    @colorvid.hookimpl
    def register_colorizers(self, register):
        register("plugnet", _Colorizer)

    @colorvid.hookimpl
    def register_trainers(self, register):
        register("plugnet", _Adapter)


@pytest.fixture
def plugin_host(fresh_host):
    fresh_host.add_plugin(_Plugin(), name="plugnet-plugin")
    yield fresh_host
    fresh_host.unregister("plugnet-plugin")


def test_colorvid_train_trains_a_plugin_colorizer(plugin_host, carphone_clip, tmp_path):
    assert "plugnet" in plugin_host.names("trainer")
    out = tmp_path / "run"
    code = main(["train", "--model", "plugnet", "--data", str(carphone_clip), "--out", str(out),
                 "--steps", "3", "--crop", "32", "--max-frames", "12", "--batch-size", "2",
                 "--model-option", "width_note=1", "--progress", "quiet"])
    assert code == 0
    weights = out / "plugnet-tiny.safetensors"
    header = read_config(weights)
    assert header["model"] == "plugnet" and header["architecture"] == {"width": 8}
    assert header["training"]["steps"] == 3 and header["training"]["cumulative"]["steps"] == 3
    # The trained file loads into the plugin's colorizer and colorizes.
    model = colorvid.create_colorizer("plugnet", weights=str(weights), render_size=32,
                                      dtype="float32")
    trained = {k: v for k, v in model.net.state_dict().items()}
    assert any(not torch.equal(v, _Net(8).state_dict()[k]) for k, v in trained.items()
               if k.startswith("body"))
    assert model.colorize_lab(torch.full((1, 1, 24, 40), 50.0)).shape == (1, 3, 24, 40)


def test_train_names_the_accepted_models_and_options(plugin_host, carphone_clip, tmp_path,
                                                     capsys):
    assert main(["train", "--model", "nonesuch", "--data", str(carphone_clip), "--out",
                 str(tmp_path / "a"), "--steps", "1"]) != 0
    err = capsys.readouterr().err
    assert "no trainer for model 'nonesuch'" in err and "plugnet" in err and "mobilenet" in err
    assert main(["train", "--model", "plugnet", "--data", str(carphone_clip), "--out",
                 str(tmp_path / "b"), "--steps", "1", "--model-option", "depth=3"]) != 0
    assert "unknown --model-option depth; accepted: width_note" in capsys.readouterr().err
