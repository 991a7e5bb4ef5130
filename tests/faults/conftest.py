"""Fixtures of the fault tests: the ``colorvid`` command run in this process (fast), and a tiny
real clip (helpers for children and full disks: fault_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_media import make_video

from colorvid.core.cli import main


@pytest.fixture
def cli(capsys):
    """``cli("colorize", ...) -> (exit status, stderr)``, in this process."""

    def run(*args: object) -> tuple[int, str]:
        capsys.readouterr()
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse refusing an option
            rc = int(e.code or 0)
        return rc, capsys.readouterr().err

    return run


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4")
