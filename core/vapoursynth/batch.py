"""Batching of concurrent frame requests, and the per-frame feature cache of temporal models.

VapourSynth calls an fmParallel filter from several worker threads at once. Each thread submits
its frame to a :class:`Batcher` and blocks; whichever submitting thread finds a free stream
becomes the leader, takes up to ``max_batch`` pending frames (its own or others') and runs them
as one model call, while the others wait on a condition variable (which releases the GIL). No
extra thread and no timer: under load, the frames that arrive while a batch runs form the next
batch; with one VapourSynth thread every batch holds one frame.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["Batcher", "BatcherClosed", "FeatureCache"]

class BatcherClosed(RuntimeError):
    """A frame was submitted after the filter was freed."""


@dataclasses.dataclass
class _Slot:
    item: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class Batcher[T, R]:
    """Runs ``run(items) -> results`` on groups of concurrently submitted items.

    >>> b = Batcher(lambda xs: [x * 2 for x in xs], max_batch=4)
    >>> b.submit(21)
    42
    """

    def __init__(self, run: Callable[[list[T]], list[R]], max_batch: int = 1,
                 num_streams: int = 1) -> None:
        if max_batch < 1 or num_streams < 1:
            raise ValueError("Batcher: max_batch and num_streams must be >= 1")
        self._run = run
        self.max_batch = max_batch
        self.num_streams = num_streams
        self._cond = threading.Condition()
        self._pending: list[_Slot] = []
        self._running = 0
        self._closed = False
        self.batch_sizes: list[int] = []  # one entry per model call (tests and benchmarks read it)

    def submit(self, item: T) -> R:
        """Block until ``item`` went through a batch; returns its result or raises its error."""
        slot = _Slot(item)
        with self._cond:
            if self._closed:
                raise BatcherClosed("the filter has been freed")
            self._pending.append(slot)
            while not slot.done:
                if self._running < self.num_streams and self._pending:
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                    self._running += 1
                    self.batch_sizes.append(len(batch))
                    self._cond.release()
                    try:
                        self._run_batch(batch)
                    finally:
                        self._cond.acquire()
                        self._running -= 1
                        self._cond.notify_all()
                else:
                    self._cond.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _run_batch(self, batch: list[_Slot]) -> None:
        try:
            results = self._run([s.item for s in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch runner returned {len(results)} results for "
                                   f"{len(batch)} items")
            for s, r in zip(batch, results, strict=False):
                s.result = r
        except Exception as e:  # noqa: BLE001 - every frame of the batch reports the error
            for s in batch:
                s.error = e
        for s in batch:
            s.done = True

    def close(self) -> None:
        """Refuse new submissions (frames already submitted still complete)."""
        with self._cond:
            self._closed = True


class FeatureCache:
    """A thread-safe LRU map from frame number to a per-frame model output."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("FeatureCache: capacity must be >= 1")
        self.capacity = capacity
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
