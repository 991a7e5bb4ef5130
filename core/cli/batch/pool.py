"""What the driver needs from a pool of workers, local processes or Ray actors alike.

A pool has ``size`` slots, each a worker that loads the model once and colorizes one
:class:`~colorvid.core.cli.batch.worker.Task` at a time. The driver talks to it through
:meth:`Pool.submit` and the events :meth:`Pool.poll` returns:

- ``Ready(slot, worker, device)``: the worker has loaded the model and waits for a task;
- ``Fatal(slot, error)``: the worker could not load the model (every worker would fail alike);
- ``Frames(slot, frames, total)``: progress within the current input;
- ``Finished(slot, result)``: the current input is done or failed (a
  :class:`~colorvid.core.cli.batch.worker.Result`);
- ``Died(slot, reason)``: the worker (or its node) died; its current input is lost and the slot
  is empty until :meth:`Pool.restart`.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from colorvid.core.cli.batch.worker import Result, Task

__all__ = ["Died", "Event", "Fatal", "Finished", "Frames", "Pool", "Ready"]


@dataclasses.dataclass(frozen=True)
class Ready:
    slot: int
    worker: str  # host:pid
    device: str


@dataclasses.dataclass(frozen=True)
class Fatal:
    slot: int
    error: str


@dataclasses.dataclass(frozen=True)
class Frames:
    slot: int
    frames: int
    total: int | None


@dataclasses.dataclass(frozen=True)
class Finished:
    slot: int
    result: Result


@dataclasses.dataclass(frozen=True)
class Died:
    slot: int
    reason: str


Event = Ready | Fatal | Frames | Finished | Died


class Pool(Protocol):
    size: int
    name: str  # "local" or "ray <address>", for messages

    def start(self) -> None:
        """Start every slot's worker (they report Ready or Fatal)."""

    def submit(self, slot: int, task: Task) -> None:
        """Hand ``task`` to the idle worker of ``slot``."""

    def poll(self, timeout: float) -> list[Event]:
        """The events since the last call, waiting up to ``timeout`` seconds for the first."""

    def restart(self, slot: int) -> None:
        """Replace the dead worker of ``slot`` (it reports Ready or Fatal)."""

    def stop(self) -> list[Event]:
        """Stop every worker now (Ctrl-C); returns the events that arrived meanwhile."""

    def close(self) -> None:
        """Release the workers (after :meth:`stop` or when the batch is over)."""
