"""Ctrl-C, ``kill`` and a closed terminal stop a command the same way.

SIGTERM (a render farm or ``kill``) and SIGHUP (the terminal or the ssh connection went away) are
raised as :class:`KeyboardInterrupt`, like Ctrl-C's SIGINT, so the ``finally`` blocks that remove
temporary outputs run for all three and the command exits 130.

>>> with interrupts_from_signals():  # doctest: +SKIP
...     long_job()
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["STOP_SIGNALS", "interrupts_from_signals"]

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_from_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise KeyboardInterrupt (main thread only; in
    another thread signals cannot be handled and the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue  # nohup: the user asked for the run to survive a hang-up
        previous[sig] = signal.signal(sig, _raise_interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
