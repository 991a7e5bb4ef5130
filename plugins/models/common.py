"""Option handling shared by the network colorizers (device, precision, render size, weights).

Every factory takes the same keyword options, validated here so the messages read the same::

    create_colorizer("zhang", weights=None, preset=None, device=None, render_size=None,
                     pretrained=True, fp16=False, dtype=None)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colorvid.core.interfaces import MAX_RENDER_SIZE
from colorvid.core.weights import (
    PRESETS,
    LoadedWeights,
    default_weights_path,
    load_weights,
    read_config,
    resolve_weights,
)

__all__ = [
    "DEFAULT_PRESET",
    "SHIPPED_PRESETS",
    "cast_keeping_decoder",
    "default_preset",
    "setup_network",
    "check_render_size",
    "load_into",
    "native_bf16",
    "pick_memory_format",
    "pick_preset",
    "resolve_device",
    "resolve_dtype",
    "resolve_prior_correction",
    "resolve_saturation",
]

# The presets that ship, in order of preference: a model's default is the first of these whose
# weights file is in the package (plugins/weights/), else tiny. "full" is the released network
# (imported weights).
SHIPPED_PRESETS = ("small", "tiny")
DEFAULT_PRESET = "tiny"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str | torch.device | None, who: str) -> torch.device:
    """``None`` -> CUDA when available, else CPU; anything else must name a usable device."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"{who}: device {device!r} is not a torch device "
                         "(e.g. 'cpu', 'cuda', 'cuda:1')") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{who}: device {device!r} asked for, but CUDA is not available here")
    return dev


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 natively: a CPU with AMX or AVX512-BF16, a CUDA
    card that supports it. Elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return bool(amx or avx512_bf16)


def resolve_dtype(
    fp16: bool, dtype: str | torch.dtype | None, device: torch.device, who: str
) -> torch.dtype:
    """Network precision: ``dtype`` (float32, float16, bfloat16 or "auto"), or ``fp16=True``.

    None and "auto": bfloat16 on a CPU that computes it natively (AMX / AVX512-BF16), float32
    everywhere else (CUDA included). On such a CPU (2 cores, AMX) bf16 with channels-last runs
    Zhang 1.9-2.4x (tiny), 2.9-3.0x (small) and 3.4-4.4x (full) faster than float32 NCHW at
    256 px, batch 8 and 1, and the colorized frames differ from float32's by 0.05 of an 8-bit
    code on average (benches/bench_models.py). float16 is refused on the CPU (slow and partly
    unsupported there). Decoding always runs in float32.
    """
    if fp16 and dtype not in (None, "auto", "float16", torch.float16):
        raise ValueError(f"{who}: fp16=True contradicts dtype={dtype!r}; pass one of them")
    if fp16:
        dtype = torch.float16
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cpu" and native_bf16(device) else torch.float32
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"{who}: dtype {dtype!r} not accepted; use one of "
                             f"{', '.join(_DTYPES)} or 'auto'")
        dtype = _DTYPES[dtype]
    if dtype not in _DTYPES.values():
        raise ValueError(f"{who}: dtype {dtype} not accepted; use float32, float16 or bfloat16")
    if dtype == torch.float16 and device.type == "cpu":
        raise ValueError(f"{who}: float16 runs on CUDA only; on the CPU use dtype='bfloat16' "
                         "or float32")
    return dtype


def cast_keeping_decoder(net: nn.Module, dtype: torch.dtype, decoder: nn.Module) -> None:
    """``net`` to ``dtype``, except the decoding of ``decoder`` (a ZhangNet inside ``net``, or
    ``net`` itself): its ``model_out`` (the bin centres) and ``decode_bias`` (the prior
    correction) stay float32 with their exact values, so that decoding runs in float32 whatever
    the network's precision (in bf16 the softmax over 313 bins and the annealed mean moved ab
    by up to 1.1 units)."""
    centres = {k: v.detach().clone() for k, v in decoder.model_out.state_dict().items()}
    bias = decoder.decode_bias.detach().clone()
    net.to(dtype)
    decoder.model_out.float().load_state_dict(centres)
    decoder.decode_bias = bias.float()


def resolve_saturation(saturation: Any, weights_config: dict[str, Any] | None, who: str
                       ) -> float:
    """The factor decoded ab is multiplied by: the one given, else the weights file's
    ``decode_saturation`` (calibrated by the recipe, core/training/calibrate.py), else 1."""
    if saturation is None:
        return float((weights_config or {}).get("decode_saturation", 1.0))
    if isinstance(saturation, bool) or not isinstance(saturation, (int, float)) \
            or not 0 < saturation <= 4:
        raise ValueError(f"{who}: saturation must be a number in (0, 4], got {saturation!r}")
    return float(saturation)


def resolve_prior_correction(strength: Any, colorizer: Any, net: Any, who: str) -> float:
    """Set ``net.set_prior_correction`` from ``strength`` (in [0, 1]), else from the weights
    file's ``decode_prior_correction`` (calibrated by the recipe), else 0; returns it.

    The class weights come from the weights file's ``prior`` extra (what the rebalanced loss used
    in training); a strength > 0 without them is refused."""
    config = getattr(colorizer, "weights_config", None) or {}
    if strength is None:
        strength = float(config.get("decode_prior_correction", 0.0))
    elif isinstance(strength, bool) or not isinstance(strength, (int, float)) \
            or not 0 <= strength <= 1:
        raise ValueError(f"{who}: prior_correction must be a number in [0, 1], got {strength!r}")
    prior = (getattr(colorizer, "weights_extras", None) or {}).get("prior")
    bins = getattr(getattr(net, "model_out", None), "in_channels", None)
    if prior is not None and bins is not None and tuple(prior.shape) != (bins,):
        raise ValueError(f"{who}: weights file {getattr(colorizer, 'weights_path', None)}: its "
                         f"extra 'prior' has shape {tuple(prior.shape)}, expected ({bins},) (one "
                         "class weight per ab bin); the file is damaged or was not written by "
                         "colorvid's trainer")
    if strength and prior is None:
        raise ValueError(f"{who}: prior_correction={strength} needs weights trained with the "
                         "class-rebalanced loss (their file carries the class weights as the "
                         "extra 'prior'); these weights have none: use prior_correction=0")
    net.set_prior_correction(float(strength), prior)
    return float(strength)


def check_render_size(render_size: Any, default: int, multiple: int, who: str) -> int:
    """The internal (square) resolution: a positive multiple of ``multiple`` (the net's stride),
    at most ``MAX_RENDER_SIZE``."""
    if render_size is None:
        return default
    if isinstance(render_size, bool) or not isinstance(render_size, int) or render_size <= 0 \
            or render_size % multiple or render_size > MAX_RENDER_SIZE:
        raise ValueError(f"{who}: render_size must be a positive multiple of {multiple} up to "
                         f"{MAX_RENDER_SIZE}, got {render_size!r}")
    return render_size


def pick_memory_format(channels_last: bool | None, device: torch.device,
                       dtype: torch.dtype = torch.float32) -> torch.memory_format:
    """Channels-last on CUDA by default (the layout cuDNN's tensor-core convs want) and for
    bfloat16 on the CPU (oneDNN's AMX convolutions: Zhang bf16 1.35x (tiny) to 2.4x (full)
    faster than bf16 in NCHW, batch 8 at 256x448, measured in both layouts on the 2-core AMX
    CPU); contiguous for float32 on the CPU, where it was no consistent win (tiny
    presets on 2 busy AVX2 cores: Zhang 0.55x at batch 1 and 1.13x at batch 8, Larsson 0.9x
    and 1.3x).
    """
    if channels_last is None:
        channels_last = device.type == "cuda" or dtype == torch.bfloat16
    return torch.channels_last if channels_last else torch.contiguous_format


def pick_preset(
    model: str, preset: str | None, weights: str | os.PathLike[str] | None
) -> str:
    """The preset to build: the one asked for, else the weights file's, else the model's
    default (:func:`default_preset`)."""
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"{model}: preset must be one of {', '.join(PRESETS)}, "
                             f"got {preset!r}")
        return preset
    if weights is not None and Path(weights).is_file():
        found = read_config(weights).get("preset")
        if found in PRESETS:
            return str(found)
    return default_preset(model)


def default_preset(model: str) -> str:
    """The preset of ``model``'s shipped default weights: the first of ``SHIPPED_PRESETS``
    whose file ships, else ``DEFAULT_PRESET`` (tiny)."""
    for preset in SHIPPED_PRESETS:
        if default_weights_path(model, preset).is_file():
            return preset
    return DEFAULT_PRESET


def load_into(
    net: nn.Module,
    model: str,
    preset: str,
    weights: str | os.PathLike[str] | None,
    pretrained: bool,
    expect_config: dict[str, Any] | None = None,
) -> LoadedWeights | None:
    """Load the resolved weights file into ``net`` (strict), or leave it randomly initialised."""
    path: Path | None = resolve_weights(model, preset, weights, pretrained)
    if path is None:
        return None
    state = net.state_dict()
    optional = [k for k in state if k.endswith("num_batches_tracked")]
    loaded = load_weights(path, model=model, preset=preset,
                          expected_shapes={k: v.shape for k, v in state.items()},
                          optional_keys=optional, expect_config=expect_config)
    net.load_state_dict(loaded.state_dict, strict=False)
    return loaded


def setup_network(
    colorizer: Any,
    model: str,
    build: Callable[[str], nn.Module],
    *,
    weights: str | os.PathLike[str] | None,
    preset: str | None,
    device: str | torch.device | None,
    render_size: int | None,
    pretrained: bool,
    fp16: bool,
    dtype: str | torch.dtype | None,
    default_render_size: int,
    stride: int,
    expect_config: dict[str, Any] | None = None,
) -> None:
    """The option handling every network colorizer shares, in one place.

    Sets ``device``, ``dtype``, ``render_size``, ``preset``, ``net`` (``build(preset)``, with the
    resolved weights loaded) and ``weights_config`` (None when randomly initialised) on
    ``colorizer``; the caller then moves ``net`` to its device and precision.
    """
    colorizer.device = resolve_device(device, model)
    colorizer.dtype = resolve_dtype(fp16, dtype, colorizer.device, model)
    colorizer.render_size = check_render_size(render_size, default_render_size, stride, model)
    colorizer.preset = pick_preset(model, preset, weights)
    colorizer.net = build(colorizer.preset)
    loaded = load_into(colorizer.net, model, colorizer.preset, weights, pretrained,
                       expect_config=expect_config)
    colorizer.weights_config = loaded.config if loaded else None
    colorizer.weights_extras = loaded.extras if loaded else {}
    colorizer.weights_path = loaded.path if loaded else None  # named in errors
