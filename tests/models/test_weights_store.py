"""The safetensors weights store: config header, checks on load, atomic saves, the info command."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from colorvid.core import cli
from colorvid.core.weights import (
    WeightsError,
    check_state_dict,
    default_weights_path,
    load_weights,
    read_config,
    resolve_weights,
    save_weights,
)

CONFIG = {"model": "demo", "preset": "tiny", "bins_sha256": "abc",
          "training": {"data": "unit test", "steps": 3}}


def _state():
    return {"conv.weight": torch.arange(6.0).reshape(2, 3), "bn.num_batches_tracked":
            torch.tensor(7, dtype=torch.int64)}


def test_round_trip_keeps_tensors_extras_and_config(tmp_path):
    prior = torch.rand(313)
    path = save_weights(tmp_path / "sub" / "w.safetensors", _state(), CONFIG,
                        extras={"class_prior": prior})
    assert [p.name for p in path.parent.iterdir()] == ["w.safetensors"]  # no temp file left
    loaded = load_weights(path, model="demo", preset="tiny",
                          expected_shapes={"conv.weight": (2, 3), "bn.num_batches_tracked": ()},
                          expect_config={"bins_sha256": "abc"})
    assert torch.equal(loaded.state_dict["conv.weight"], _state()["conv.weight"])
    assert loaded.state_dict["bn.num_batches_tracked"].dtype == torch.int64
    assert torch.equal(loaded.extras["class_prior"], prior)
    assert loaded.config["training"] == {"data": "unit test", "steps": 3}
    assert loaded.config["extras"] == ["class_prior"] and loaded.config["format_version"] == 1
    assert read_config(path) == loaded.config


def test_load_refuses_other_model_preset_config_and_shapes(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", _state(), CONFIG)
    with pytest.raises(WeightsError, match="holds model 'demo' preset 'tiny', but 'zhang'"):
        load_weights(path, model="zhang")
    with pytest.raises(WeightsError, match="pass preset='tiny' or a demo-full weights file"):
        load_weights(path, model="demo", preset="full")
    with pytest.raises(WeightsError, match="config 'bins_sha256' is 'abc', expected 'def'"):
        load_weights(path, model="demo", expect_config={"bins_sha256": "def"})
    with pytest.raises(WeightsError, match=r"conv.weight: file \[2, 3\] vs model \[3, 2\]"):
        load_weights(path, model="demo", expected_shapes={"conv.weight": (3, 2),
                                                          "bn.num_batches_tracked": ()})


def test_check_state_dict_lists_every_problem_and_accepts_optional_keys():
    with pytest.raises(WeightsError) as info:
        check_state_dict({"a": (1,), "b": (2,), "c": (3,)}, {"b": (5,), "d": (1,)}, "who",
                         optional=["c"])
    msg = str(info.value)
    assert msg.startswith("who: ")
    # c is optional, so only a is missing.
    assert "missing keys (1): a |" in msg and "unexpected keys (1): d" in msg
    assert "b: file [5] vs model [2]" in msg
    check_state_dict({"a": (1,), "c": (3,)}, {"a": (1,)}, "who", optional=["c"])  # no error


def test_files_without_our_header_are_refused(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(plain))
    with pytest.raises(WeightsError, match="without a colorvid config header"):
        read_config(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        read_config(junk)
    with pytest.raises(WeightsError, match="does not exist"):
        read_config(tmp_path / "missing.safetensors")


def test_save_validates_config_and_keys(tmp_path):
    with pytest.raises(WeightsError, match="must name the 'preset'"):
        save_weights(tmp_path / "w.safetensors", _state(), {"model": "demo"})
    with pytest.raises(WeightsError, match="not JSON-serialisable"):
        save_weights(tmp_path / "w.safetensors", _state(), {**CONFIG, "x": object()})
    with pytest.raises(WeightsError, match="reserved prefix"):
        save_weights(tmp_path / "w.safetensors", {"extra.p": torch.zeros(1)}, CONFIG)
    assert list(tmp_path.iterdir()) == []  # failed saves leave nothing behind


def test_default_path_and_resolution(tmp_path):
    path = default_weights_path("zhang", "tiny")
    assert path.name == "zhang-tiny.safetensors" and path.parent.name == "weights"
    assert path.parent.parent.name == "plugins"
    assert resolve_weights("zhang", "tiny", None, pretrained=False) is None
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights("zhang", "tiny", tmp_path / "nope.safetensors", pretrained=True)
    own = save_weights(tmp_path / "mine.safetensors", _state(), CONFIG)
    assert resolve_weights("zhang", "tiny", own, pretrained=False) == own


def test_info_command_prints_the_header(tmp_path, capsys):
    path = save_weights(tmp_path / "w.safetensors", _state(), CONFIG)
    assert cli.main(["weights", "info", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["steps"] == 3
    assert cli.main(["weights", "info", str(tmp_path / "none.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_default_preset_is_the_shipped_files_small_before_tiny(tmp_path, monkeypatch):
    from colorvid.plugins.models import common

    monkeypatch.setattr(common, "default_weights_path",
                        lambda model, preset: tmp_path / f"{model}-{preset}.safetensors")
    assert common.default_preset("zhang") == "tiny"  # nothing ships: tiny
    (tmp_path / "zhang-tiny.safetensors").write_bytes(b"")
    assert common.default_preset("zhang") == "tiny"
    (tmp_path / "zhang-small.safetensors").write_bytes(b"")
    assert common.default_preset("zhang") == "small"  # small wins where it ships
    assert common.default_preset("larsson") == "tiny"
    # An explicit preset, then a weights file's own, come before the default.
    assert common.pick_preset("zhang", "full", None) == "full"
    assert common.pick_preset("zhang", None, None) == "small"
    with pytest.raises(ValueError, match="preset must be one of tiny, small, full"):
        common.pick_preset("zhang", "huge", None)
