"""The batch's progress on stderr: the whole batch (files and frames done, rate, ETA) and each
file, as a status line for people or JSON lines for programs (``--progress json``)::

    {"event": "file", "input": "/a/reel1.mp4", "output": "a/reel1.mp4", "status": "running",
     "worker": "node1:4242", "attempt": 1}
    {"event": "frames", "input": "/a/reel1.mp4", "frames": 96, "total": 240, "worker": ...}
    {"event": "file", "input": "/a/reel1.mp4", "status": "done", "frames": 240, "seconds": 9.8,
     "worker": ...}
    {"event": "batch", "files": 12, "done": 3, "failed": 0, "left": 9, "frames": 720,
     "fps": 24.1, "elapsed_s": 29.9, "eta_s": 89.5, "finished": false}

A file's ``status`` is ``running``, ``done``, ``failed``, ``retry`` (failed, tried again) or
``interrupted``. The ETA weighs the inputs by size: bytes left / bytes done x time so far.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from colorvid.core.video.progress import MODES, ProgressMode

__all__ = ["BatchProgress"]


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class BatchProgress:
    """Counts the batch's files, frames and bytes and reports them (``mode``: bar, json, quiet).

    ``files`` and ``size`` are what this run will colorize (inputs already done are not
    counted); ``interval`` is the least time between two batch reports (the bar redraws at most
    10x/s on a terminal, a line every 10 s otherwise).
    """

    def __init__(self, files: int, size: int, mode: ProgressMode = "bar",
                 stream: TextIO | None = None, interval: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.files, self.size, self.mode = files, max(size, 1), mode
        self.stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if interval is None:
            interval = 0.1 if (mode == "bar" and self._tty) else (1.0 if mode == "json" else 10.0)
        self.interval = interval
        self.done = self.failed = self.frames = self.bytes_done = 0
        self.current: dict[str, tuple[int, int | None]] = {}  # input -> (frames, total)
        self._start = self._last = time.perf_counter()
        self._file_last: dict[str, float] = {}

    # -- events -------------------------------------------------------------------------------
    def file(self, input: str, status: str, **fields: Any) -> None:
        """A file started (``running``) or ended (``done``, ``failed``, ``retry``,
        ``interrupted``); ``fields`` add output, worker, frames, seconds, error, size."""
        size = int(fields.pop("size", 0))
        if status == "running":
            self.current[input] = (0, None)
        else:
            frames, _ = self.current.pop(input, (0, None))
            self._file_last.pop(input, None)
            if status == "done":
                self.done += 1
                self.frames += int(fields.get("frames") or 0)
                self.bytes_done += size
            elif status == "failed":
                self.failed += 1
                self.bytes_done += size
        if self.mode == "json":
            self._write({"event": "file", "input": input, "status": status, **fields})
        elif self.mode == "bar" and status != "running":
            self._line(self._file_text(input, status, fields))
        self.report()

    def file_frames(self, input: str, frames: int, total: int | None, **fields: Any) -> None:
        self.current[input] = (frames, total)
        if self.mode == "json":
            now = time.perf_counter()
            if now - self._file_last.get(input, float("-inf")) >= self.interval:
                self._file_last[input] = now
                self._write({"event": "frames", "input": input, "frames": frames,
                             "total": total, **fields})
        self.report()

    # -- figures ------------------------------------------------------------------------------
    def snapshot(self, finished: bool = False) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._start
        frames = self.frames + sum(f for f, _ in self.current.values())
        eta = None
        if not finished and self.bytes_done:
            eta = elapsed * max(self.size - self.bytes_done, 0) / self.bytes_done
        return {"event": "batch", "files": self.files, "done": self.done, "failed": self.failed,
                "left": self.files - self.done - self.failed, "frames": frames,
                "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
                "elapsed_s": round(elapsed, 2), "eta_s": None if eta is None else round(eta, 1),
                "finished": finished}

    def report(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.mode == "quiet" or (not force and now - self._last < self.interval):
            return
        self._last = now
        snap = self.snapshot()
        if self.mode == "json":
            self._write(snap)
        else:
            self._status(self._bar(snap))

    def close(self) -> None:
        if self.mode == "json":
            self._write(self.snapshot(finished=True))
        elif self.mode == "bar":
            text = self._bar(self.snapshot(finished=True))
            self.stream.write(f"\r{text}\x1b[K\n" if self._tty else text + "\n")
            self.stream.flush()

    # -- text ---------------------------------------------------------------------------------
    def _bar(self, snap: dict[str, Any]) -> str:
        text = (f"files {snap['done']}/{snap['files']}"
                + (f" ({snap['failed']} failed)" if snap["failed"] else "")
                + f"  frames {snap['frames']}  {snap['fps']:.1f} fps"
                + f"  elapsed {_clock(snap['elapsed_s'])}")
        if snap["eta_s"] is not None:
            text += f"  ETA {_clock(snap['eta_s'])}"
        for name, (frames, total) in list(self.current.items())[:2]:
            short = name.rsplit("/", 1)[-1]
            text += f"  | {short} {frames}/{total}" if total else f"  | {short} {frames}"
        return text

    def _file_text(self, input: str, status: str, fields: dict[str, Any]) -> str:
        what = f"{status} {fields.get('output') or input}"
        if status == "done":
            what += f": {fields.get('frames', 0)} frames in {fields.get('seconds', 0):.1f} s"
        elif fields.get("error"):
            what += f": {fields['error']}"
        return f"colorvid: {what}"

    def _write(self, obj: dict[str, Any]) -> None:
        self.stream.write(json.dumps(obj) + "\n")
        self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(f"\r{text}\x1b[K\n" if self._tty else text + "\n")
        self.stream.flush()

    def _status(self, text: str) -> None:
        self.stream.write(f"\r{text}\x1b[K" if self._tty else text + "\n")
        self.stream.flush()
