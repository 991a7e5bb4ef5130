"""One batch worker: the colorizer loaded once, then inputs colorized one at a time exactly as
``colorvid colorize`` does (its :func:`~colorvid.core.cli.colorize.colorize_input`, with the
same options). Both pools run this: a process of the local pool, a Ray actor.

>>> w = ItemWorker({"model": "grey", ...})                    # doctest: +SKIP
>>> w.colorize(Task("/in/a.mp4", "/out/a.mp4", "video", overwrite=False))  # doctest: +SKIP
Result(status='done', frames=48, ...)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["Result", "Task", "ItemWorker", "expected_frames", "remove_partials"]


@dataclasses.dataclass(frozen=True)
class Task:
    """One input handed to a worker."""

    input: str
    output: str  # absolute
    kind: str
    overwrite: bool  # the output is the batch's own (an earlier run's) or --overwrite was given


@dataclasses.dataclass(frozen=True)
class Result:
    """What a worker reports for one input."""

    status: str  # "done" or "failed"
    frames: int = 0
    seconds: float = 0.0
    warnings: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    retry: bool = False  # a failure another attempt may cure (not the input's or options' fault)


def remove_partials(output: str | Path) -> int:
    """Delete the hidden temporary files or folders that an interrupted write of ``output`` left
    beside it (``.NAME.*part*``: a worker killed mid-file cannot clean up after itself)."""
    dst = Path(output)
    removed = 0
    try:
        siblings = list(dst.parent.iterdir())
    except OSError:
        return 0
    prefixes = (f".{dst.stem}.", f".{dst.name}.")
    for p in siblings:
        if p.name.startswith(prefixes) and ".part" in p.name:
            try:
                if p.is_dir():
                    import shutil

                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def expected_frames(task: Task) -> int | None:
    """How many frames ``task`` will give, when that is cheap to know (for per-file progress)."""
    if task.kind == "still":
        return 1
    if task.kind == "sequence":
        from colorvid.core.video.images import is_image_file

        return sum(1 for f in Path(task.input).iterdir() if is_image_file(f))
    from colorvid.core.video.decode import probe

    try:
        info = probe(task.input)
    except Exception:  # noqa: BLE001 - colorize itself reports an unreadable input
        return None
    if info.frames:
        return info.frames
    if info.duration and info.frame_rate:
        return round(info.duration * info.frame_rate)
    return None


class _Counting:
    """The loaded colorizer, counting the frames it hands out (per-file progress)."""

    def __init__(self, vc: Any, tick: Callable[[], None]) -> None:
        self._vc = vc
        self._tick = tick

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vc, name)

    def colorize(self, frame: Any) -> Any:
        out = self._vc.colorize(frame)
        self._tick()
        return out

    def stream(self, frames: Any) -> Iterator[Any]:
        inner = self._vc.stream(frames)
        try:
            for rgb in inner:
                self._tick()
                yield rgb
        finally:
            inner.close()  # stops the pipelined stream's threads now, not at garbage collection


class ItemWorker:
    """A worker: ``options`` are colorize's (``vars(args)`` of its parser, INPUT and -o aside).

    ``device`` overrides ``--device`` (a GPU per worker); ``threads`` sets torch's CPU threads
    (a share of the cores per worker); the colorizer is loaded here, once.
    """

    def __init__(self, options: dict[str, Any], device: str | None = None,
                 threads: int | None = None) -> None:
        import torch

        from colorvid.core.cli.colorize import load_colorizer

        if threads:
            torch.set_num_threads(threads)
        self.args = argparse.Namespace(**options)
        self.vc = load_colorizer(self.args, device)
        self.device = str(self.vc.device)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.frames = 0  # of the input being colorized
        self.total: int | None = None

    def colorize(self, task: Task, tick: Callable[[int, int | None], None] | None = None
                 ) -> Result:
        """Colorize one input; ``tick(frames, total)`` is called after every frame. Failures
        are returned, not raised (KeyboardInterrupt aside)."""
        from colorvid.core.cli.colorize import colorize_input, report_warnings
        from colorvid.core.files import OutputError
        from colorvid.core.video.decode import VideoError
        from colorvid.core.video.pipeline import ColorizeError

        self.frames, self.total = 0, expected_frames(task)

        def count() -> None:
            self.frames += 1
            if tick is not None:
                tick(self.frames, self.total)

        start = time.perf_counter()
        args = argparse.Namespace(**{**vars(self.args), "overwrite": task.overwrite})
        try:
            Path(task.output).parent.mkdir(parents=True, exist_ok=True)
            remove_partials(task.output)
            report = colorize_input(args, _Counting(self.vc, count), task.input, task.output)
        except (ColorizeError, VideoError, OutputError) as e:  # colorize's one-line errors
            return Result("failed", self.frames, time.perf_counter() - start,
                          error=_line(e), retry=False)
        except Exception as e:  # noqa: BLE001 - any other failure is recorded, then retried
            return Result("failed", self.frames, time.perf_counter() - start,
                          error=f"{type(e).__name__}: {_line(e)}", retry=True)
        return Result("done", report.frames_out, time.perf_counter() - start,
                      warnings=report_warnings(task.input, report))


def _line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
