"""Shared by the training tests: run a command that trains, Ctrl-C it once it logs, collect it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def popen_interruptible(cmd: list[str], **kw) -> subprocess.Popen:
    """Start ``cmd`` without COLORVID_* settings, stdout/stderr captured as text.

    A suite started in the background of a script inherits SIGINT ignored (POSIX shells do
    that to background jobs), and Python keeps an ignored SIGINT: the child would never see
    the Ctrl-C these tests send. Give it the default disposition, as a terminal would.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORVID_")}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kw)


def interrupt_after_logging(proc: subprocess.Popen, metrics: Path, timeout: float) -> str:
    """Send SIGINT once ``metrics`` (a run's metrics.jsonl) has two lines; return stderr."""
    deadline = time.time() + timeout
    while time.time() < deadline and (not metrics.exists() or
                                      len(metrics.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return err
