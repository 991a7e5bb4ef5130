"""colorvid: automatic colorization of black-and-white video.

Installed as ``colorvid/__init__.py`` by the build (CMakeLists.txt), with ``__main__.py`` of this
folder beside it; the code lives in ``colorvid.core``, ``colorvid.plugins`` and
``colorvid.kernels`` (docs/layout.md, "How the code is laid out"). This module only re-exports the
public API.

>>> import colorvid, torch
>>> grey = colorvid.create_colorizer("grey")
>>> grey.predict_ab(torch.full((1, 1, 8, 8), 50.0)).abs().max().item()
0.0
"""

from importlib import metadata as _metadata

from colorvid.core.api import create_colorizer, create_loss, create_metric, list_plugins
from colorvid.core.bins import GREY_BIN, NUM_BINS, ab_bins, nearest_bin
from colorvid.core.color import (
    AB_SCALE,
    L_CENTER,
    L_SCALE,
    denormalize_ab,
    denormalize_l,
    lab_to_rgb,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
)
from colorvid.core.hookspecs import hookimpl
from colorvid.core.host import PluginError, PluginHost, get_host, reset_host
from colorvid.core.interfaces import Colorizer, Loss, Metric
from colorvid.core.video.pipeline import (
    ColorizeError,
    VideoColorizer,
    colorize_video,
    open_colorizer,
)

try:
    __version__ = _metadata.version("colorvid")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0+unknown"

__all__ = [
    "AB_SCALE",
    "GREY_BIN",
    "L_CENTER",
    "L_SCALE",
    "NUM_BINS",
    "ColorizeError",
    "Colorizer",
    "Loss",
    "Metric",
    "PluginError",
    "PluginHost",
    "VideoColorizer",
    "__version__",
    "ab_bins",
    "colorize_video",
    "create_colorizer",
    "create_loss",
    "create_metric",
    "denormalize_ab",
    "denormalize_l",
    "get_host",
    "hookimpl",
    "lab_to_rgb",
    "list_plugins",
    "nearest_bin",
    "normalize_ab",
    "normalize_l",
    "open_colorizer",
    "reset_host",
    "rgb_to_lab",
]
