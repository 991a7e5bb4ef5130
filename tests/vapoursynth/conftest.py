"""Fixtures of the VapourSynth filter tests: real cores, real clips, in-process colorizers
(registered through the plugin host for one test, then unregistered)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from vs_helpers import PLUGIN_NAME, ColorizerTestPlugin, WindowTemporalColorizer, clip_from_planes

import colorvid

vs = pytest.importorskip("vapoursynth")


def _convert(core, clip, fmt: int):
    """zimg conversion; YUV and GRAY get BT.709 and limited range."""
    if clip.format.id == fmt:
        return clip
    if core.get_video_format(fmt).color_family == vs.RGB:
        return core.resize.Bicubic(clip, format=fmt)
    return core.resize.Bicubic(clip, format=fmt, matrix_s="709")


@pytest.fixture(scope="session")
def core():
    """The test process's VapourSynth core (num_threads restored after each use)."""
    return vs.core


@pytest.fixture
def threads(core) -> Iterator[Callable[[int], None]]:
    """Set core.num_threads for a test; the original count comes back afterwards."""
    before = core.num_threads

    def set_threads(n: int) -> None:
        core.num_threads = n

    yield set_threads
    core.num_threads = before


@pytest.fixture(scope="session")
def carphone_rgb(carphone_clip: Path) -> list[np.ndarray]:
    """The first 4 frames of the real carphone clip, RGB uint8 (144, 176, 3), decoded by PyAV."""
    from colorvid.core.video.decode import read_frames

    return [rgb for _, rgb in read_frames(carphone_clip, count=4)]


@pytest.fixture
def carphone(core, carphone_rgb) -> Callable[[int], object]:
    """``carphone(vs.FORMAT)``: the real clip converted by zimg (BT.709, limited-range YUV)."""
    rgb = clip_from_planes(core, vs.RGB24, [[f[..., c] for c in range(3)] for f in carphone_rgb])

    def convert(fmt: int):
        return _convert(core, rgb, fmt)

    return convert


@pytest.fixture
def blank(core) -> Callable[..., object]:
    """``blank(vs.FORMAT, length=4)``: a BlankClip-derived clip with a luma gradient and noise."""

    def make(fmt: int, length: int = 4, width: int = 48, height: int = 32):
        rng = np.random.default_rng(0)
        ramp = np.linspace(0.05, 0.95, width, dtype=np.float32)[None, :].repeat(height, 0)
        frames = []
        for n in range(length):
            noise = rng.uniform(-0.05, 0.05, (3, height, width)).astype(np.float32)
            frames.append([np.clip(ramp * k + noise[c] + 0.02 * n, 0, 1)
                           for c, k in enumerate((1.0, 0.8, 0.6))])
        clip = clip_from_planes(core, vs.RGBS, frames)
        return _convert(core, clip, fmt)

    return make


@pytest.fixture
def test_colorizers() -> Iterator[None]:
    """Registers vs-const, vs-conv, vs-window and vs-sequence in the process-wide host."""
    host = colorvid.get_host()
    assert host.add_plugin(ColorizerTestPlugin(), name=PLUGIN_NAME, distribution="tests")
    WindowTemporalColorizer.feature_frames.clear()
    yield
    host.unregister(PLUGIN_NAME)
    assert "vs-const" not in host.names("colorizer")
