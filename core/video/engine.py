"""Stages in threads joined by bounded queues: how ``colorvid colorize`` overlaps decoding, the
model and encoding.

:func:`run_stages` pulls a source iterator in one thread, runs each stage (a function from an
iterator of items to an iterable of results) in a thread of its own, and yields the last stage's
results in the caller's thread, in order (one thread per stage and FIFO queues: nothing can
overtake). The work overlaps where the threads release the GIL: PyAV while it decodes and
encodes, torch in its kernels, the C++ frame conversions (csrc/cpu/frames.cpp).

Memory is bounded whatever the length of the input: each queue holds at most ``depth`` items
and each stage one in and one out while it works, so a fixed number of items exists at once
(:func:`items_in_flight`).

Stopping: the first exception in any thread (the source, a stage, or the consumer: an error, a
``KeyboardInterrupt``, ``GeneratorExit`` when the caller stops iterating) stops every thread at its
next queue operation; the caller's thread joins them all (the source first: it may hold an open
input container) and then re-raises that first exception, with its own traceback and a note
naming the stage. A stage busy inside one call (a model's forward pass) finishes that call first:
stopping takes at most one item's work per stage.

>>> double = ("double", lambda items: (2 * x for x in items))
>>> list(run_stages(range(5), [double], depth=1))
[0, 2, 4, 6, 8]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

__all__ = ["Stage", "items_in_flight", "run_stages"]

#: A stage: its name (threads are named ``colorvid-<name>``) and a function from the iterator of
#: its input items to the iterable of its outputs (a generator usually; it may keep state).
Stage = tuple[str, Callable[[Iterator[Any]], Iterable[Any]]]

# How often a thread blocked on a full or empty queue looks at the stop flag: the added latency
# of a stop, and negligible work (20 wake-ups a second per thread).
_POLL_S = 0.05
_END = object()  # the end of a queue's items


class _Stopped(BaseException):
    """Raised in a thread when the pipeline stops (BaseException: a stage's ``except
    Exception`` must not swallow it)."""


class _Run:
    """What the threads of one :func:`run_stages` call share: queues, the stop flag, the error."""

    def __init__(self, queues: int, depth: int) -> None:
        self.queues = [queue.Queue(maxsize=depth) for _ in range(queues)]
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def fail(self, where: str, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                error.add_note(f"(raised in the {where} stage of colorvid's pipeline)")
                self.error = error
        self.stop.set()

    def put(self, q: queue.Queue, item: Any) -> None:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        raise _Stopped

    def get(self, q: queue.Queue) -> Any:
        while not self.stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        raise _Stopped

    def items(self, q: queue.Queue) -> Iterator[Any]:
        while (item := self.get(q)) is not _END:
            yield item


def _pump(run: _Run, name: str, items: Callable[[], Iterable[Any]], out: queue.Queue) -> None:
    """Put every item of ``items()`` on ``out``, then the end mark; failures go to ``run``."""
    try:
        for item in items():
            run.put(out, item)
        run.put(out, _END)
    except _Stopped:
        pass
    except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, re-raised there
        run.fail(name, e)


def _source_thread(run: _Run, name: str, source: Iterable[Any], out: queue.Queue) -> None:
    opened: list[Iterator[Any]] = []

    def items() -> Iterator[Any]:
        opened.append(iter(source))
        return opened[0]

    try:
        _pump(run, name, items, out)
    finally:
        close = getattr(opened[0], "close", None) if opened else None
        if close is not None:  # a generator: its own finally blocks run here, in its thread
            try:
                close()
            except BaseException as e:  # noqa: BLE001
                run.fail(name, e)


def _stage_thread(run: _Run, name: str, fn: Callable[[Iterator[Any]], Iterable[Any]],
                  src: queue.Queue, out: queue.Queue) -> None:
    _pump(run, name, lambda: fn(run.items(src)), out)


def items_in_flight(stages: int, depth: int) -> int:
    """The most items that exist at once between the source and the consumer: every queue full,
    every stage holding one in and one out, plus the source's and the consumer's."""
    return (stages + 1) * depth + 2 * stages + 2


def run_stages(source: Iterable[Any], stages: Sequence[Stage], *, depth: int = 1,
               source_name: str = "source") -> Iterator[Any]:
    """Run ``source`` and ``stages`` in threads; yield the last stage's outputs, in order.

    Args:
        source: pulled in a thread of its own (``source_name``); when it is a generator it is
            also closed there.
        stages: applied in order, each in its own thread.
        depth: items each queue holds (1: each stage works on one item while the next waits).

    Nothing starts before the first ``next()``; closing the generator (or dropping it) stops and
    joins every thread. Exceptions: see the module doc.
    """
    if depth < 1:
        raise ValueError(f"run_stages: depth must be >= 1, got {depth}")
    run = _Run(len(stages) + 1, depth)
    threads = [threading.Thread(target=_source_thread, name=f"colorvid-{source_name}",
                                args=(run, source_name, source, run.queues[0]), daemon=True)]
    for k, (name, fn) in enumerate(stages):
        threads.append(threading.Thread(target=_stage_thread, name=f"colorvid-{name}",
                                        args=(run, name, fn, run.queues[k], run.queues[k + 1]),
                                        daemon=True))
    for t in threads:
        t.start()
    try:
        while True:
            try:
                item = run.get(run.queues[-1])
            except _Stopped:
                break
            if item is _END:
                break
            yield item
    finally:
        run.stop.set()
        me = threading.current_thread()
        for t in threads:  # the source first: it may hold an input container the caller closes
            if t is not me:  # a garbage collection inside a stage can finalize this generator
                t.join()
    if run.error is not None:
        raise run.error
