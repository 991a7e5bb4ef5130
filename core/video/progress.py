"""Progress reporting on stderr: a one-line bar for people, JSON lines for programs, or nothing.

stdout may carry video (``colorvid colorize - -o -``), so progress only ever goes to stderr.

>>> with Progress(total=132, mode="bar") as p:  # doctest: +SKIP
...     for frame in frames:
...         p.advance()

``--progress json`` writes one object per line, at most every ``interval`` seconds and once at
the end (``"done": true``)::

    {"frames": 48, "total": 132, "fps": 23.9, "elapsed_s": 2.01, "eta_s": 3.51, "done": false}
"""

from __future__ import annotations

import json
import sys
import time
from typing import Literal, TextIO

__all__ = ["MODES", "Progress", "ProgressMode"]

ProgressMode = Literal["bar", "json", "quiet"]
MODES: tuple[str, ...] = ("bar", "json", "quiet")
_BAR_WIDTH = 24


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class Progress:
    """Counts processed frames and reports frames, fps and ETA.

    Args:
        total: expected number of frames, 0 or None when unknown (no ETA then).
        mode: ``"bar"`` (redrawn with ``\\r`` on a terminal, a line every ``interval`` otherwise),
            ``"json"`` or ``"quiet"``.
        stream: where to write (stderr by default).
        interval: minimum seconds between two reports (the bar redraws at most 10x/s).
    """

    def __init__(
        self,
        total: int | None = None,
        mode: ProgressMode = "bar",
        stream: TextIO | None = None,
        interval: float | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.total = int(total) if total else None
        self.mode = mode
        self.stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if interval is None:
            interval = 0.1 if (mode == "bar" and self._tty) else 1.0
        self.interval = float(interval)
        self.frames = 0
        self._start = time.perf_counter()
        self._last_report = float("-inf")
        self._closed = False

    # -- counting -----------------------------------------------------------------------------
    def advance(self, n: int = 1) -> None:
        """``n`` more frames are done; reports when ``interval`` has passed since the last one."""
        self.frames += n
        now = time.perf_counter()
        if now - self._last_report >= self.interval:
            self._last_report = now
            self._report(done=False)

    def close(self) -> None:
        """Final report (the bar ends its line)."""
        if self._closed:
            return
        self._closed = True
        self._report(done=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On failure the last state is still useful; JSON consumers see "done": false then.
        if exc_type is None:
            self.close()
        elif self.mode == "bar" and self._tty and not self._closed:
            self._closed = True
            self.stream.write("\n")
            self.stream.flush()

    # -- figures ------------------------------------------------------------------------------
    def snapshot(self, done: bool = False) -> dict[str, float | int | bool | None]:
        """The current figures as a dict (what ``--progress json`` prints)."""
        elapsed = time.perf_counter() - self._start
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.total and fps > 0 and not done:
            eta = max(self.total - self.frames, 0) / fps
        return {
            "frames": self.frames,
            "total": self.total,
            "fps": round(fps, 2),
            "elapsed_s": round(elapsed, 2),
            "eta_s": None if eta is None else round(eta, 2),
            "done": done,
        }

    def _report(self, done: bool) -> None:
        if self.mode == "quiet":
            return
        snap = self.snapshot(done)
        if self.mode == "json":
            self.stream.write(json.dumps(snap) + "\n")
        else:
            self.stream.write(self._bar(snap, done))
        self.stream.flush()

    def _bar(self, snap: dict, done: bool) -> str:
        frames, total = snap["frames"], snap["total"]
        if total:
            filled = min(_BAR_WIDTH, round(_BAR_WIDTH * frames / total))
            bar = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {frames}/{total} frames"
        else:
            bar = f"{frames} frames"
        text = f"{bar}  {snap['fps']:.1f} fps  elapsed {_clock(snap['elapsed_s'])}"
        if snap["eta_s"] is not None:
            text += f"  ETA {_clock(snap['eta_s'])}"
        if self._tty:
            return f"\r{text}\x1b[K" + ("\n" if done else "")
        return text + "\n"
