"""Fixtures for `colorvid colorize` tests: short real clips cut with PyAV, and test colorizers
registered in-process (always unregistered afterwards)."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from torch import Tensor

import colorvid
from colorvid.core.interfaces import Colorizer

CONST_AB = (30.0, -20.0)  # a clearly visible blue-green cast


class ConstColorizer(Colorizer):
    """Stateless: the same ab everywhere. Records the options it was created with."""

    name = "const-test"

    def __init__(self, device: str | None = None, weights: str | None = None) -> None:
        self.device = torch.device(device or "cpu")
        self.weights = weights

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        ab = torch.tensor(CONST_AB, dtype=L.dtype, device=L.device).view(1, 2, 1, 1)
        return ab.expand(L.shape[0], 2, *L.shape[-2:]).clone()


class CountingColorizer(Colorizer):
    """Temporal: state = frames seen since the last reset; a = 2 * that count (so it is visible
    in the output), b = 0. ``log`` records the count used for every frame, in order, and
    ``threads`` the names of the threads it ran in."""

    name = "count-test"
    temporal = True

    def __init__(self, device: str | None = None) -> None:
        self.device = torch.device(device or "cpu")
        self.log: list[int] = []
        self.threads: set[str] = set()

    def new_state(self) -> int:
        return 0

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        return L.new_zeros((L.shape[0], 2, *L.shape[-2:]))

    def predict_sequence_lowres(self, L: Tensor, state: Any, resets: Tensor | None = None):
        self.threads.add(threading.current_thread().name)
        out = L.new_zeros((L.shape[0], 2, *L.shape[-2:]))
        for t in range(L.shape[0]):
            if resets is not None and bool(resets[t]):
                state = 0
            self.log.append(state)
            out[t, 0] = 2.0 * state
            state += 1
        return out, state


class _TestPlugin:
    created: list[Colorizer] = []

    @colorvid.hookimpl
    def register_colorizers(self, register) -> None:
        def const(**kw: Any) -> ConstColorizer:
            obj = ConstColorizer(**kw)
            self.created.append(obj)
            return obj

        def count(**kw: Any) -> CountingColorizer:
            obj = CountingColorizer(**kw)
            self.created.append(obj)
            return obj

        def broken(**kw: Any) -> Colorizer:
            raise FileNotFoundError("weights file model.safetensors not found")

        register("const-test", const, description="test: constant colour")
        register("count-test", count, description="test: counts frames since reset")
        register("broken-test", broken, description="test: factory always fails")


@pytest.fixture(scope="session")
def const_ab() -> tuple[float, float]:
    """The ab that const-test predicts everywhere."""
    return CONST_AB


@pytest.fixture
def test_colorizers(fresh_host):
    """Registers const-test, count-test and broken-test; yields the list of created objects."""
    plugin = _TestPlugin()
    plugin.created = []
    assert fresh_host.add_plugin(plugin, name="colorize-test-plugin")
    yield plugin.created
    fresh_host.unregister("colorize-test-plugin")


def _cut(src: Path, dst: Path, seconds: float, size: tuple[int, int] | None, audio: bool,
         fmt: str | None = None) -> Path:
    """Re-encode the first ``seconds`` of video (optionally scaled); copy audio packets as they
    are, so the colorize output can be compared packet for packet."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt) as out:
        vin = inp.streams.video[0]
        end = Fraction(seconds)
        vout = out.add_stream("libx264", rate=vin.average_rate)
        w, h = size or (vin.codec_context.width, vin.codec_context.height)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.time_base = vin.time_base
        vout.codec_context.time_base = vin.time_base
        vout.options = {"crf": "20", "preset": "ultrafast"}
        out.metadata["title"] = "colorvid test clip"
        streams = [vin]
        if audio:
            ain = inp.streams.audio[0]
            aout = out.add_stream_from_template(ain)
            aout.metadata["language"] = "eng"
            streams.append(ain)
        for packet in inp.demux(streams):
            if packet.dts is None or packet.pts is None or packet.pts * packet.time_base >= end:
                if packet.stream.type == "video" and packet.dts is None:
                    for _frame in vin.decode(packet):
                        pass
                continue
            if packet.stream.type == "audio":
                packet.stream = aout
                out.mux(packet)
                continue
            for frame in vin.decode(packet):
                if frame.pts * frame.time_base >= end:
                    continue
                small = frame.reformat(width=w, height=h, format="yuv420p")
                small.pts, small.time_base = frame.pts, frame.time_base
                for p in vout.encode(small):
                    out.mux(p)
        for p in vout.encode(None):
            out.mux(p)
    return dst


@pytest.fixture(scope="session")
def bunny_cut(bunny_clip: Path, tmp_path_factory) -> Path:
    """1.2 s (30 frames, 25 fps) of bigbuckbunny at 192x108 with its AAC audio copied."""
    return _cut(bunny_clip, tmp_path_factory.mktemp("clips") / "bunny_cut.mp4", 1.2, (192, 108),
                audio=True)


@pytest.fixture(scope="session")
def carphone_y4m(carphone_clip: Path, tmp_path_factory) -> Path:
    """The first 12 frames of carphone (176x144, 29.97 fps) as a y4m file."""
    dst = tmp_path_factory.mktemp("clips") / "carphone12.y4m"
    with av.open(str(carphone_clip)) as inp, av.open(str(dst), "w", format="yuv4mpegpipe") as out:
        s = out.add_stream("rawvideo", rate=inp.streams.video[0].average_rate)
        s.width, s.height, s.pix_fmt = 176, 144, "yuv420p"
        for k, frame in enumerate(inp.decode(video=0)):
            if k == 12:
                break
            frame.pts = None
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return dst


def _decode_rgb(path: Path | str, fmt: str | None = None) -> list[np.ndarray]:
    with av.open(str(path), format=fmt) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="session")
def decode_rgb():
    """``decode_rgb(path, fmt=None)`` -> every frame of the first video stream, RGB uint8."""
    return _decode_rgb
