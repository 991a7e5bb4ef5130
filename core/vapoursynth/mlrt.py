"""The per-frame networks as ONNX files for vs-mlrt (``core.ort.Model``, ``core.trt.Model``, ...).

:func:`export_onnx` writes one graph that does everything ``core.colorvid.Zhang`` (or
``Larsson``, ``Ensemble``) does to an RGB frame: grey (or RGB) -> Lab L, the bicubic resize to
the render size, the network, the decoding of its logits, the bilinear upsampling of ab onto the
frame and Lab -> sRGB. vs-mlrt's conventions (its README and ``vs_onnxruntime.cpp``):

- one input ``(1, C, H, W)`` float32 in 0..1, C = 1 (a GRAYS clip, gamma-encoded grey) or 3
  (an RGBS clip, whose Lab L is used); one output ``(1, 3, H, W)``: an RGBS clip;
- H and W are dynamic: vs-mlrt fixes them to the clip's (or tile's) size when it loads the
  network, and the render size is a constant inside, so any frame size works in one tile
  (tiling would colorize each tile on its own: leave ``tilesize``/``overlap`` unset).

vs-mlrt runs the network on one frame at a time, so LRCN (temporal) exports its per-frame path:
the CNN and the ConvLSTM from a zero state over a window of one frame, i.e. every frame coloured
as ``core.colorvid.LRCN`` colours the first frame of a scene (``window=1``). What is lost is the
temporal context of the previous ``window - 1`` frames: the smoothing of colours over time.
vs-mlrt takes several clips, but concatenates them as channels of one input of fixed meaning;
a window would need the clip shifted by 1..window-1 frames and no reset at scene changes, so
the exported graph stays per frame.

    colorvid export onnx --model zhang -o zhang.onnx
    rgb = core.ort.Model(core.resize.Point(clip, format=vs.GRAYS), "zhang.onnx")
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from colorvid.core.color import lab_to_rgb, rgb_to_grey_l
from colorvid.core.files import OutputError, discard, os_error_text, publish, temp_beside
from colorvid.core.interfaces import Colorizer

__all__ = ["EXPORTABLE", "INPUTS", "ColorizeGraph", "export_onnx"]

# Model names -> the colorizer whose per-frame network is exported.
EXPORTABLE: dict[str, str] = {"zhang": "zhang", "larsson": "larsson", "ensemble": "ensemble",
                              "lrcn": "lrcn", "mobilenet": "mobilenet"}
INPUTS = ("gray", "rgb")  # GRAYS or RGBS input clips
OPSET = 18


class ColorizeGraph(nn.Module):
    """Frame ``(1, C, H, W)`` in 0..1 -> sRGB ``(1, 3, H, W)`` in 0..1, through ``colorizer``."""

    def __init__(self, colorizer: Colorizer, channels: int = 1) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (GRAYS) or 3 (RGBS), got {channels}")
        self.colorizer = colorizer
        self.channels = channels
        for m in _modules_of(colorizer):  # registered, so .eval() and .to() reach them
            self.add_module(f"net{len(self._modules)}", m)

    def forward(self, x: Tensor) -> Tensor:
        rgb = x.clamp(0.0, 1.0)
        if self.channels == 1:
            rgb = rgb.expand(-1, 3, -1, -1)
        L = rgb_to_grey_l(rgb)
        ab = self.colorizer.predict_ab(L)
        return lab_to_rgb(torch.cat((L, ab.to(L.dtype)), dim=1))


def _modules_of(colorizer: Colorizer) -> list[nn.Module]:
    members = getattr(colorizer, "members", None)
    if members:
        return [m for member in members for m in _modules_of(member)]
    net = getattr(colorizer, "net", None)
    return [net] if isinstance(net, nn.Module) else []


def build_colorizer(model: str, **options: Any) -> Colorizer:
    """The colorizer to export, on the CPU in float32 (options as ``create_colorizer``'s)."""
    import colorvid

    if model not in EXPORTABLE:
        raise ValueError(f"model must be one of {', '.join(EXPORTABLE)}, got {model!r}")
    given = {k: v for k, v in options.items() if v is not None}
    # float32 unless asked: the CPU's default may be bfloat16 (plugins/models/common.py
    # resolve_dtype), which ONNX Runtime's CPU convolutions do not take.
    given.setdefault("dtype", "float32")
    return colorvid.create_colorizer(EXPORTABLE[model], device="cpu", **given)


def export_onnx(colorizer: Colorizer, path: str | os.PathLike[str], *, input: str = "gray",
                sample: tuple[int, int] = (144, 176), overwrite: bool = True) -> Path:
    """Write the ONNX graph of ``colorizer`` (vs-mlrt's conventions) to ``path``.

    ``input``: "gray" (GRAYS clips) or "rgb" (RGBS clips). ``sample``: the (H, W) traced with;
    the graph's H and W stay dynamic. The file is written and checked under a temporary name
    and then moved to ``path`` (:mod:`colorvid.core.files`; ``overwrite=False`` keeps a file
    that is there, raising :class:`~colorvid.core.files.OutputError`), so a full disk or an
    interruption never leaves a truncated network under ``path``.
    """
    import onnx  # noqa: F401 - a missing onnx is an ImportError before any file is made

    if input not in INPUTS:
        raise ValueError(f"input must be one of {', '.join(INPUTS)}, got {input!r}")
    channels = 1 if input == "gray" else 3
    graph = ColorizeGraph(colorizer, channels).eval()
    x = torch.rand(1, channels, *sample)
    path = Path(path)
    if not overwrite and path.exists():
        raise OutputError(f"{path}: already exists (use --force to overwrite it)")
    tmp = temp_beside(path)
    try:
        _export_checked(graph, x, tmp)
        publish(tmp, path, overwrite=overwrite)
    except OSError as e:
        if isinstance(e, OutputError):
            raise
        raise OutputError(f"{path}: cannot write: {os_error_text(e)}") from e
    finally:
        discard(tmp if tmp.exists() else None)
    return path


def _export_checked(graph: nn.Module, x: Tensor, path: Path) -> None:
    import onnx

    # The tracing exporter: shape checks and the render size become constants (the warnings say
    # so); H and W stay symbolic through the resizes. Opset 18 is what vs-mlrt's ORT 1.2x reads.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            graph, (x,), str(path), input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {2: "height", 3: "width"},
                          "output": {2: "height", 3: "width"}},
            opset_version=OPSET, dynamo=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
