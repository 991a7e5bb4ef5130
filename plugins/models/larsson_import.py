"""Import the released Larsson et al. Caffe HDF5 snapshot (``autocolorize.caffemodel.h5``).

Caffe's HDF5 snapshot keeps every layer's parameter blobs as ``/data/<layer name>/<blob index>``
(0 = weights, 1 = bias); layers without parameters appear as empty groups. The layer names of the
deploy net are our parameter names (``conv1_1`` .. ``conv5_3``, ``fc6``, ``fc7``, ``h_fc1``,
``prediction_h``, ``prediction_c``). The deploy net's fixed bilinear upsamplers
(``<source>_full_reshaped``) may be stored too; they are checked to be the bilinear filler our
network hard-codes, and dropped. Everything is read with h5py, which never executes code.

The preset is recognised from ``conv1_1``'s width (64: the release, 16: tiny); all layer names
and shapes are checked before any tensor data is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from colorvid.core.files import sha256_file
from colorvid.core.weights import WeightsError, check_state_dict, save_weights
from colorvid.plugins.models.larsson_net import LarssonConfig, LarssonNet, caffe_bilinear_kernel

__all__ = ["SOURCE_FORMAT", "FIXED_UPSAMPLERS", "import_released", "inspect_caffe_h5"]

SOURCE_FORMAT = "larsson"
# Deploy-net Deconvolution layers with fixed bilinear weights: name -> upsampling factor.
FIXED_UPSAMPLERS: dict[str, int] = {
    **{f"conv4_{i}_full_reshaped": 2 for i in (1, 2, 3)},
    **{f"conv5_{i}_full_reshaped": 4 for i in (1, 2, 3)},
    "fc6_full_reshaped": 8, "fc7_full_reshaped": 8,
    "prediction_h_full_reshaped": 4, "prediction_c_full_reshaped": 4,
}
_PRESET_OF_WIDTH = {64: "full", 16: "tiny"}


def _expected(preset: str) -> dict[str, tuple[int, ...]]:
    # The meta device gives shapes without allocating the 588 MB of the full network.
    with torch.device("meta"):
        net = LarssonNet(LarssonConfig.preset(preset))
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _blob_key(layer: str, index: str) -> str:
    names = {"0": "weight", "1": "bias"}
    return f"{layer}.{names.get(index, 'blob' + index)}"


def inspect_caffe_h5(path: str | os.PathLike[str]) -> tuple[str, dict[str, tuple[int, ...]]]:
    """Check a Caffe HDF5 snapshot's layer names and blob shapes; return (preset, shapes).

    Reads the structure only (no tensor data). Raises :class:`WeightsError` listing every missing,
    unexpected and mis-shaped blob.
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"larsson: file {str(p)!r} does not exist")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise WeightsError(f"larsson: {p} is not an HDF5 file ({e})") from e
    with f:
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise WeightsError(f"larsson: {p} has no /data group; not a Caffe HDF5 snapshot")
        got: dict[str, tuple[int, ...]] = {}
        for layer, group in f["data"].items():
            if not isinstance(group, h5py.Group):
                raise WeightsError(f"larsson: {p}: /data/{layer} is not a layer group")
            for index, blob in group.items():
                got[_blob_key(layer, index)] = tuple(blob.shape)
    width = got.get("conv1_1.weight", (0,))[0]
    if width not in _PRESET_OF_WIDTH:
        raise WeightsError(f"larsson: {p}: conv1_1 has {width} outputs; expected 64 (the "
                           "released network) or 16 (tiny)")
    preset = _PRESET_OF_WIDTH[width]
    fixed = {}
    for name, factor in FIXED_UPSAMPLERS.items():
        if f"{name}.weight" in got:
            fixed[f"{name}.weight"] = (1, 1, 2 * factor, 2 * factor)
    check_state_dict(_expected(preset) | fixed, got, f"larsson {p}")
    return preset, got




def import_released(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> dict[str, Any]:
    """Convert a Larsson Caffe HDF5 snapshot into a colorvid weights file; returns its config."""
    import h5py

    src_path = Path(src)
    preset, shapes = inspect_caffe_h5(src_path)
    state: dict[str, torch.Tensor] = {}
    with h5py.File(src_path, "r") as f:
        for key in shapes:
            layer, blob = key.rsplit(".", 1)
            data = f["data"][layer]["0" if blob == "weight" else "1"][()]
            state[key] = torch.from_numpy(data).to(torch.float32)
    for name, factor in FIXED_UPSAMPLERS.items():
        kernel = state.pop(f"{name}.weight", None)
        if kernel is not None and not torch.allclose(
                kernel[0, 0], caffe_bilinear_kernel(factor), atol=1e-5, rtol=0):
            raise WeightsError(f"larsson: {src_path}: {name} is not the fixed bilinear "
                               "upsampling kernel of the release; such files are not supported")
    config: dict[str, Any] = {
        "model": "larsson",
        "preset": preset,
        "architecture": LarssonConfig.preset(preset).to_dict(),
        "source": {"format": SOURCE_FORMAT, "file": src_path.name, "sha256": sha256_file(src_path)},
        "training": {"data": "ImageNet (released by Larsson et al., ECCV 2016)"
                     if preset == "full" else "Caffe snapshot", "steps": None},
    }
    save_weights(dst, state, config)
    return config
