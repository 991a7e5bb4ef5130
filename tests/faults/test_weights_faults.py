"""Weights that cannot work are named as the cause: NaN tensors, a folder, a damaged prior, a
model that takes no weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import colorvid
from colorvid.core.video.pipeline import ColorizeError, check_finite_output
from colorvid.core.weights import default_weights_path


def _variant(tmp_path, name, change):
    """A copy of the shipped zhang-tiny weights with ``change(tensors)`` applied."""
    src = default_weights_path("zhang", "tiny")
    if not src.is_file():
        pytest.skip("the shipped zhang-tiny weights are not installed")
    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(src))
    change(tensors)
    path = tmp_path / name
    save_file(tensors, str(path), metadata=meta)
    json.loads(meta["colorvid"])  # a real header
    return path


def test_nan_weights_are_refused_naming_the_file(cli, clip, tmp_path):
    def poison(t):
        key = next(k for k in sorted(t) if k.endswith("weight"))
        t[key] = torch.full_like(t[key], float("nan"))

    bad = _variant(tmp_path, "nan.safetensors", poison)
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "zhang", "--weights",
                  bad)
    assert rc == 1
    assert f"{bad}: tensor(s) " in err and "hold NaN or infinity" in err
    assert not (tmp_path / "o.mp4").exists()


def test_non_finite_model_output_names_the_weights():
    model = colorvid.create_colorizer("grey")
    with pytest.raises(ColorizeError, match="grey: the model's output holds NaN or infinity"):
        check_finite_output(model, torch.full((1, 2, 4, 4), float("nan")))


def test_a_prior_of_the_wrong_shape_names_the_file(cli, clip, tmp_path):
    bad = _variant(tmp_path, "prior.safetensors",
                   lambda t: t.__setitem__("extra.prior", torch.ones(100)))
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "zhang", "--weights",
                  bad)
    assert rc == 1
    assert f"weights file {bad}: its extra 'prior' has shape (100,), expected (313,)" in err


def test_weights_folder(cli, clip, tmp_path):
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "zhang", "--weights",
                  tmp_path)
    assert rc == 1
    assert f"weights {str(tmp_path)!r} is a folder; pass a weights file (.safetensors)" in err


def test_weights_for_a_model_without_weights(cli, clip, tmp_path):
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "grey", "--weights",
                  clip)
    assert rc == 1
    assert err.strip() == ("colorvid: --weights: model 'grey' takes no weights file (it takes "
                           "device)")
