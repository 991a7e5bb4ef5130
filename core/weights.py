"""The weights store: safetensors files that carry their own config, checked on load.

A colorvid weights file is a plain safetensors file. Its metadata header holds one JSON document
under the key ``colorvid`` describing what the tensors are::

    {"format": "colorvid-weights", "format_version": 1,
     "model": "zhang", "preset": "tiny",             # what builds the network
     "architecture": {...},                           # the network's config dataclass, as a dict
     "bins_sha256": "2a39...",                        # the ab bins the logits refer to, if any
     "extras": ["class_prior"],                       # extra tensors riding along (see below)
     "training": {"data": "...", "steps": 50000},     # provenance, free-form
     ...}                                             # any model-specific keys

The network's state dict is stored under its own keys; extra tensors (a class prior ``(313,)``, ...)
are stored as ``extra.<name>`` so they never collide with parameters. Loading checks the header
against what the caller asks for (model, preset, tensor keys and shapes, optional config values)
and refuses a mismatch with one error that says what the file holds and what to pass instead.
Saving is atomic: a temporary file in the destination folder, then ``os.replace``.

>>> import tempfile, torch
>>> path = Path(tempfile.mkdtemp()) / "demo.safetensors"
>>> _ = save_weights(path, {"w": torch.ones(2)}, {"model": "demo", "preset": "tiny"})
>>> loaded = load_weights(path, model="demo", preset="tiny", expected_shapes={"w": (2,)})
>>> loaded.state_dict["w"].tolist(), loaded.config["preset"]
([1.0, 1.0], 'tiny')
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from colorvid.core.files import atomic_write

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "PRESETS",
    "EXTRA_PREFIX",
    "LoadedWeights",
    "WeightsError",
    "check_state_dict",
    "default_weights_path",
    "load_weights",
    "read_config",
    "resolve_weights",
    "save_weights",
]

FORMAT = "colorvid-weights"
FORMAT_VERSION = 1
METADATA_KEY = "colorvid"
EXTRA_PREFIX = "extra."
PRESETS: tuple[str, ...] = ("tiny", "small", "full")


class WeightsError(ValueError):
    """A weights file is missing, unreadable, or holds something other than what was asked."""


@dataclasses.dataclass(frozen=True)
class LoadedWeights:
    """What :func:`load_weights` returns: the network tensors, the extras and the config."""

    state_dict: dict[str, Tensor]
    extras: dict[str, Tensor]
    config: dict[str, Any]
    path: Path


def default_weights_path(model: str, preset: str) -> Path:
    """Where the shipped default weights of ``(model, preset)`` live (the file may not exist).

    ``colorvid/plugins/weights/<model>-<preset>.safetensors`` inside the installed package.
    """
    folder = Path(str(resources.files("colorvid.plugins").joinpath("weights")))
    return folder / f"{model}-{preset}.safetensors"


def resolve_weights(
    model: str, preset: str, weights: str | os.PathLike[str] | None, pretrained: bool
) -> Path | None:
    """The weights file a model factory should load, or None for a randomly initialised model.

    ``weights`` wins when given (it must exist); otherwise the shipped default for
    ``(model, preset)`` when ``pretrained``; a missing default is an error that names the options.
    """
    if weights is not None:
        path = Path(weights)
        if path.is_dir():
            raise WeightsError(f"{model}: weights {str(path)!r} is a folder; pass a weights "
                               "file (.safetensors)")
        if not path.is_file():
            raise WeightsError(f"{model}: weights file {str(path)!r} does not exist")
        return path
    if not pretrained:
        return None
    path = default_weights_path(model, preset)
    if not path.is_file():
        raise WeightsError(
            f"{model}: no shipped weights for preset {preset!r} (looked for {path}); pass "
            f"weights='FILE.safetensors' (e.g. made by `colorvid weights import`), or "
            f"pretrained=False for a randomly initialised network"
        )
    return path


def save_weights(
    path: str | os.PathLike[str],
    state_dict: Mapping[str, Tensor],
    config: Mapping[str, Any],
    extras: Mapping[str, Tensor] | None = None,
) -> Path:
    """Write a state dict (plus extra tensors) and its config to ``path`` atomically.

    ``config`` must name ``model`` and ``preset`` and be JSON-serialisable; ``format``,
    ``format_version`` and ``extras`` are filled in. Tensors are stored contiguous on the CPU.
    """
    from safetensors.torch import save_file

    for key in ("model", "preset"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise WeightsError(f"save_weights: config must name the {key!r} (a non-empty string)")
    extras = dict(extras or {})
    header = dict(config)
    header.update(format=FORMAT, format_version=FORMAT_VERSION, extras=sorted(extras))
    try:
        text = json.dumps(header, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"save_weights: config is not JSON-serialisable: {e}") from e
    tensors: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(EXTRA_PREFIX):
            raise WeightsError(f"save_weights: state-dict key {key!r} uses the reserved prefix "
                               f"{EXTRA_PREFIX!r}; pass it through extras= instead")
        tensors[key] = value
    tensors.update({EXTRA_PREFIX + k: v for k, v in extras.items()})
    for key, value in tensors.items():
        if not isinstance(value, Tensor):
            raise WeightsError(f"save_weights: {key!r} is a {type(value).__name__}, not a tensor")
    # clone(): safetensors refuses tensors that share storage (tied or sliced views).
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file beside ``out`` (mode as a plain open() gives), moved into place whole.
    atomic_write(out, lambda tmp: save_file(tensors, str(tmp), metadata={METADATA_KEY: text}))
    return out


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON config of a colorvid weights file (reads the header only, no tensors)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {str(p)!r} does not exist")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise WeightsError(f"{p}: not a readable safetensors file ({e})") from e
    if METADATA_KEY not in meta:
        raise WeightsError(f"{p}: safetensors file without a colorvid config header; convert "
                           "released weights with `colorvid weights import`")
    try:
        config = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise WeightsError(f"{p}: corrupt colorvid config header ({e})") from e
    if config.get("format") != FORMAT:
        raise WeightsError(f"{p}: config format is {config.get('format')!r}, expected {FORMAT!r}")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise WeightsError(f"{p}: format version {config.get('format_version')} is newer than "
                           f"this colorvid reads ({FORMAT_VERSION}); upgrade colorvid")
    return config


def check_state_dict(
    expected: Mapping[str, Iterable[int]],
    got: Mapping[str, Iterable[int]],
    who: str,
    optional: Iterable[str] = (),
) -> None:
    """Compare tensor shapes by key; one error lists every missing, unexpected and mis-shaped key.

    ``optional`` keys may be absent (e.g. BatchNorm ``num_batches_tracked`` in older files).
    """
    optional = set(optional)
    exp = {k: tuple(v) for k, v in expected.items()}
    have = {k: tuple(v) for k, v in got.items()}
    missing = sorted(k for k in exp if k not in have and k not in optional)
    unexpected = sorted(k for k in have if k not in exp)
    misshaped = sorted(
        f"{k}: file {list(have[k])} vs model {list(exp[k])}"
        for k in exp
        if k in have and have[k] != exp[k]
    )
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped keys ({len(misshaped)}): {'; '.join(misshaped)}")
        raise WeightsError(f"{who}: tensors do not match the network: " + " | ".join(parts))


def load_weights(
    path: str | os.PathLike[str],
    *,
    model: str,
    preset: str | None = None,
    expected_shapes: Mapping[str, Iterable[int]] | None = None,
    optional_keys: Iterable[str] = (),
    expect_config: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
) -> LoadedWeights:
    """Load a colorvid weights file, refusing anything other than what the caller asks for.

    Args:
        path: the ``.safetensors`` file.
        model: the model name the file must hold (``"zhang"``).
        preset: the preset the file must hold, or None to accept the file's own.
        expected_shapes: the network's ``{key: shape}``; checked with :func:`check_state_dict`.
        optional_keys: keys of ``expected_shapes`` the file may lack.
        expect_config: further config values that must match exactly (e.g. ``bins_sha256``).
        device: where to put the tensors (default CPU).
    """
    from safetensors.torch import load_file

    p = Path(path)
    config = read_config(p)
    held = f"model {config.get('model')!r} preset {config.get('preset')!r}"
    if config.get("model") != model:
        raise WeightsError(f"{p}: holds {held}, but {model!r} was asked; pass a {model} weights "
                           "file (or create the model the file was made for)")
    if preset is not None and config.get("preset") != preset:
        raise WeightsError(f"{p}: holds {held}, but preset {preset!r} was asked; pass "
                           f"preset={config.get('preset')!r} or a {model}-{preset} weights file")
    for key, want in (expect_config or {}).items():
        if key in config and config[key] != want:
            raise WeightsError(f"{p}: config {key!r} is {config[key]!r}, expected {want!r}")
    try:
        tensors = load_file(str(p), device=str(device or "cpu"))
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{p}: cannot read tensors ({e})") from e
    extras = {k[len(EXTRA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    state = {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
    if sorted(extras) != sorted(config.get("extras", [])):
        raise WeightsError(f"{p}: extra tensors {sorted(extras)} disagree with the header's "
                           f"{sorted(config.get('extras', []))}; the file is corrupt")
    if expected_shapes is not None:
        check_state_dict(expected_shapes, {k: v.shape for k, v in state.items()}, str(p),
                         optional=optional_keys)
    broken = sorted(k for k, v in tensors.items()
                    if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if broken:
        shown = ", ".join(broken[:3]) + (" ..." if len(broken) > 3 else "")
        raise WeightsError(f"{p}: tensor(s) {shown} hold NaN or infinity; the file is damaged "
                           "(or comes from a training run that diverged); use another weights "
                           "file")
    return LoadedWeights(state, extras, config, p)
