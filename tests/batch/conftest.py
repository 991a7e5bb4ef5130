"""Fixtures of the `colorvid batch` tests: an archive of tiny clips, stills and a sequence, and
the batch run in this process (workers and Ray actors are processes of their own all the same).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

# Ray binds its servers to the node's IP; with clusters "disabled" that is 127.0.0.1, so the
# test head listens on loopback only. Read when ray is imported: set before any import of it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest  # noqa: E402
from batch_helpers import make_clip, make_image  # noqa: E402

from colorvid.core.cli import main  # noqa: E402


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """archive/ with reel1/{a.mp4, b.mkv, broken.mp4}, reel2/c.mp4, reel2/scans/ (a sequence of
    3 numbered frames), photo.png (a still) and notes.txt (ignored)."""
    root = tmp_path / "archive"
    make_clip(root / "reel1" / "a.mp4", seed=1)
    make_clip(root / "reel1" / "b.mkv", seed=2)
    make_clip(root / "reel2" / "c.mp4", frames=5, seed=3)
    for i in range(3):
        make_image(root / "reel2" / "scans" / f"f{i:04d}.png", seed=10 + i, size=(32, 24))
    make_image(root / "photo.png", seed=20)
    (root / "reel1" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 300)
    (root / "notes.txt").write_text("not media\n")
    return root


@pytest.fixture
def run_batch(capsys) -> Callable[..., tuple[int, str]]:
    """``run_batch(*args)`` -> (exit status, stderr): ``colorvid batch`` in this process."""

    def run(*args: object) -> tuple[int, str]:
        rc = main(["batch", *map(str, args)])
        return rc, capsys.readouterr().err

    return run


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process during the test, as in a terminal: a test
    runner started in the background inherits SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
