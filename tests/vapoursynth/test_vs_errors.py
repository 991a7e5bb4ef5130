"""Every refusal of core.colorvid.*: a vs.Error whose message starts with colorvid.<Function>."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import colorvid
from colorvid.core.vapoursynth.filter import FUNCTIONS

vs = pytest.importorskip("vapoursynth")


def _raises(call, function: str, *patterns: str) -> str:
    with pytest.raises(vs.Error) as info:
        clip = call()
        clip.get_frame(0)  # some errors can only show when a frame is made
    message = str(info.value)
    assert message.startswith(f"colorvid.{function}: "), message
    for p in patterns:
        assert re.search(p, message), f"{p!r} not in {message!r}"
    return message


@pytest.fixture
def yuv(core):
    return core.std.BlankClip(format=vs.YUV420P8, width=32, height=24, length=3)


def test_variable_format_and_size(core, yuv):
    other_format = core.std.BlankClip(format=vs.RGB24, width=32, height=24, length=3)
    other_size = core.std.BlankClip(format=vs.YUV420P8, width=64, height=24, length=3)
    varfmt = core.std.Splice([yuv, other_format], mismatch=True)
    varsize = core.std.Splice([yuv, other_size], mismatch=True)
    _raises(lambda: core.colorvid.Colorize(varfmt, model="grey"), "Colorize",
            "constant format")
    _raises(lambda: core.colorvid.Colorize(varsize, model="grey"), "Colorize",
            "constant frame size")


def test_unsupported_sample_formats(core):
    gray32 = core.std.BlankClip(format=vs.GRAY32, width=16, height=16, length=1)
    _raises(lambda: core.colorvid.Colorize(gray32, model="grey"), "Colorize",
            "GRAY, YUV or RGB", "8 to 16 bits, got 32")


def test_unknown_model_lists_registered(core, yuv):
    _raises(lambda: core.colorvid.Colorize(yuv, model="no-such-model"), "Colorize",
            "unknown model 'no-such-model'", "registered colorizers: .*grey")


@pytest.mark.parametrize("function", [f for f, m in FUNCTIONS.items() if m])
def test_function_without_its_colorizer(core, yuv, function):
    """Each named function maps to its colorizer; when that is not registered, it says so."""
    name = FUNCTIONS[function]
    host = colorvid.get_host()
    provider = next((e.plugin for e in host.entries("colorizer") if e.name == name), None)
    if provider is None:  # not installed (yet): the plain case
        _raises(lambda: getattr(core.colorvid, function)(yuv), function,
                f"colorizer is missing: '{name}'")
        return
    plugin = host.pm.get_plugin(provider)
    host.unregister(provider)
    try:
        _raises(lambda: getattr(core.colorvid, function)(yuv), function,
                f"colorizer is missing: '{name}'", "registered colorizers: .*grey")
    finally:
        host.add_plugin(plugin, name=provider, distribution="colorvid")
    assert name in host.names("colorizer")


@pytest.mark.parametrize("function", [f for f, m in FUNCTIONS.items() if m])
def test_missing_weights_file(core, yuv, function, tmp_path):
    if FUNCTIONS[function] not in colorvid.get_host().names("colorizer"):
        pytest.skip(f"colorizer {FUNCTIONS[function]!r} is not registered")
    missing = tmp_path / "nope.safetensors"
    _raises(lambda: getattr(core.colorvid, function)(yuv, weights=str(missing)), function,
            "weights file .*nope.safetensors.* does not exist")


@pytest.mark.parametrize("function", ["Zhang", "LRCN"])
def test_mismatched_weights_file(core, yuv, function, tmp_path: Path):
    """A weights file of another model is refused by the model's loader, named in the error."""
    if FUNCTIONS[function] not in colorvid.get_host().names("colorizer"):
        pytest.skip(f"colorizer {FUNCTIONS[function]!r} is not registered")
    from safetensors.torch import save_file

    bogus = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(bogus), metadata={"colorvid": '{"model": "other"}'})
    _raises(lambda: getattr(core.colorvid, function)(yuv, weights=str(bogus)), function,
            "cannot create colorizer .* from weights .*other.safetensors")


def test_unusable_devices(core, yuv):
    if not torch.cuda.is_available():
        _raises(lambda: core.colorvid.Colorize(yuv, model="grey", device="cuda"), "Colorize",
                "device 'cuda' is not usable")
    _raises(lambda: core.colorvid.Colorize(yuv, model="grey", device="cuda:99"), "Colorize",
            "device 'cuda:99' is not usable")
    _raises(lambda: core.colorvid.Colorize(yuv, model="grey", device="banana"), "Colorize",
            "device 'banana'", "accepted: 'cpu', 'cuda', 'cuda:N'")
    _raises(lambda: core.colorvid.Colorize(yuv, model="grey", device="cpu", fp16=True),
            "Colorize", "fp16=True needs a CUDA device")


def test_bad_options(core, yuv, test_colorizers):
    _raises(lambda: core.colorvid.Colorize(yuv, model="grey", batch_size=0), "Colorize",
            "batch_size must be between 1 and 64, got 0")
    _raises(lambda: core.colorvid.Colorize(yuv, model="grey", num_streams=99), "Colorize",
            "num_streams must be between 1 and 16")
    _raises(lambda: core.colorvid.Colorize(yuv, model="grey", window=4), "Colorize",
            "window applies to temporal colorizers")
    _raises(lambda: core.colorvid.Colorize(yuv, model="grey", format=vs.RGB24), "Colorize",
            "format applies to GRAY input only")
    gray = core.std.BlankClip(format=vs.GRAY8, width=16, height=16, length=1)
    _raises(lambda: core.colorvid.Colorize(gray, model="grey", format=vs.YUV420P10), "Colorize",
            "YUV output must have the sample type and bits of the GRAY input")
    _raises(lambda: core.colorvid.Colorize(gray, model="grey", format=vs.GRAY8), "Colorize",
            "must have colour")
    _raises(lambda: core.colorvid.Colorize(yuv, model="vs-const", preset="tiny"), "Colorize",
            "'vs-const' does not take the option preset=")


def test_unsupported_matrix_fails_the_frame(core, yuv):
    ictcp = yuv.std.SetFrameProps(_Matrix=14)
    _raises(lambda: core.colorvid.Colorize(ictcp, model="grey"), "Colorize",
            "frame 0 has _Matrix=14, which is not supported")


def test_gpu_resident_clip(core, yuv):
    try:
        gpu = core.std.GPUUpload(yuv)
    except vs.Error as e:  # no Vulkan device on this machine
        pytest.skip(f"no GPU-resident frames here: {e}")
    _raises(lambda: core.colorvid.Colorize(gpu, model="grey"), "Colorize", "GPU-resident",
            "GPUDownload")
