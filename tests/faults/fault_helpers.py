"""Helpers of the fault tests: children of the ``colorvid`` command held mid-run, a file-size
limit standing in for a full disk, and what a run may leave behind."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# A child that registers "gated-test", a colorizer that waits at its first frame until the
# file named by $COLORVID_TEST_GATE exists (so a test acts while the run is surely mid-way, however
# slow the machine), and runs the colorvid command line with the given arguments.
GATED_MAIN = """
import os, sys, time, torch
import colorvid
from colorvid.core.cli import main
from colorvid.core.interfaces import Colorizer

class Gated(Colorizer):
    def __init__(self, device=None):
        self.device = torch.device("cpu")
    def predict_ab_lowres(self, L):
        while not os.path.exists(os.environ["COLORVID_TEST_GATE"]):
            time.sleep(0.02)
        return L.new_zeros((L.shape[0], 2, *L.shape[-2:]))

class Plugin:
    @colorvid.hookimpl
    def register_colorizers(self, register):
        register("gated-test", Gated)

colorvid.get_host().add_plugin(Plugin(), name="gated-test-plugin")
sys.exit(main(sys.argv[1:]))
"""


def default_sigint() -> None:
    """In a child: SIGINT and SIGHUP as a terminal gives them, even when the suite runs in the
    background (SIGINT ignored) or under nohup (SIGHUP ignored, which colorvid then leaves
    alone)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Within the block, writes past ``limit`` bytes of a file fail with EFBIG, the way writes to
    a full disk fail with ENOSPC (SIGXFSZ ignored, so the write returns the error)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def start_gated(args: list[object], gate: Path) -> subprocess.Popen:
    """``colorvid ARGS`` (with ``--model gated-test``) in a child, held at its first frame
    until ``gate`` exists; returns once its temporary output exists."""
    env = {**os.environ, "COLORVID_TEST_GATE": str(gate)}
    proc = subprocess.Popen([sys.executable, "-c", GATED_MAIN, *map(str, args), "--model",
                             "gated-test", "--pipeline", "sequential", "-q"],
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint)
    return proc


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the child did not get there")
        time.sleep(0.05)


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders a run left behind."""
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or ".old-" in p.name)
