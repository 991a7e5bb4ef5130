"""Import the released Zhang et al. ECCV16 PyTorch weights into a colorvid weights file.

The released file (``colorization_release_v2-9b330a0b.pth``) is a plain state dict whose keys are
exactly :class:`~colorvid.plugins.models.zhang_net.ZhangNet`'s. Two things need care:

- Safety: it is read with ``torch.load(weights_only=True)``, which unpickles tensors and plain
  containers only; a file that would run code is refused.
- Folded annealing: the release applies the softmax straight to ``model8``'s output, because the
  Caffe deploy net's fixed x2.606 logit scale was folded into ``model8.6``. We divide that layer's
  weight and bias by the scale so ``logits()`` are un-annealed (what training and LRCN need) and
  record ``decode_temperature = 1 / scale`` in the file's config; the colorizer decodes with it,
  so softmax(logits / T) reproduces the released forward up to float rounding.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from colorvid.core.bins import AB_BINS_SHA256
from colorvid.core.files import sha256_file
from colorvid.core.weights import WeightsError, check_state_dict, save_weights
from colorvid.plugins.models.zhang_net import RELEASED_ANNEAL_SCALE, ZhangConfig, ZhangNet

__all__ = ["SOURCE_FORMAT", "import_released", "read_released_state_dict", "unfold_annealing"]

SOURCE_FORMAT = "zhang-eccv16"
_LOGIT_LAYER = "model8.6"




def read_released_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a released ``.pth`` safely and check every key and shape against the full network.

    Accepts a plain state dict or one wrapped as ``{"state_dict": ...}``. BatchNorm
    ``num_batches_tracked`` may be absent (files saved before PyTorch 0.4.1 lack it).
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"zhang-eccv16: file {str(p)!r} does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"zhang-eccv16: {p} holds objects other than tensors and plain "
                           f"containers; refused (weights_only=True never runs pickled code): "
                           f"{e}") from e
    except Exception as e:  # noqa: BLE001 - zip/format errors from torch
        raise WeightsError(f"zhang-eccv16: {p} is not a readable PyTorch file ({e})") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"zhang-eccv16: {p} is not a state dict of tensors "
                           f"(got {type(obj).__name__})")
    expected = {k: v.shape for k, v in ZhangNet(ZhangConfig.preset("full")).state_dict().items()}
    optional = [k for k in expected if k.endswith("num_batches_tracked")]
    check_state_dict(expected, {k: v.shape for k, v in obj.items()}, f"zhang-eccv16 {p}",
                     optional=optional)
    return dict(obj)


def unfold_annealing(state: dict[str, Tensor], scale: float) -> dict[str, Tensor]:
    """Divide the folded logit scale out of ``model8.6`` (weight and bias); returns a new dict."""
    if not scale > 0:
        raise WeightsError(f"zhang-eccv16: anneal scale must be > 0, got {scale!r}")
    out = dict(state)
    for key in (f"{_LOGIT_LAYER}.weight", f"{_LOGIT_LAYER}.bias"):
        out[key] = state[key].double().div(scale).to(state[key].dtype)
    return out


def import_released(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    anneal_scale: float = RELEASED_ANNEAL_SCALE,
) -> dict[str, Any]:
    """Convert a released ECCV16 ``.pth`` into a colorvid weights file; returns its config.

    ``anneal_scale``: the factor folded into ``model8.6`` (2.606 in the release).
    """
    src_path = Path(src)
    state = read_released_state_dict(src_path)
    net = ZhangNet(ZhangConfig.preset("full"))
    # Floats to float32 (the network's dtype); BN counters keep their integer type.
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    state = unfold_annealing(state, anneal_scale)
    for key, value in net.state_dict().items():  # fill optional counters the file lacked
        state.setdefault(key, value)
    decoder_is_bins = bool(torch.allclose(state["model_out.weight"], net.model_out.weight,
                                          atol=1e-4, rtol=0))
    config: dict[str, Any] = {
        "model": "zhang",
        "preset": "full",
        "architecture": net.config.to_dict(),
        "bins_sha256": AB_BINS_SHA256,
        "decode_temperature": 1.0 / anneal_scale,
        "decoder_is_bins": decoder_is_bins,
        "source": {
            "format": SOURCE_FORMAT,
            "file": src_path.name,
            "sha256": sha256_file(src_path),
            "anneal_scale": anneal_scale,
        },
        "training": {"data": "ImageNet (released by Zhang et al., ECCV 2016)", "steps": None},
    }
    save_weights(dst, state, config)
    return config
