"""The Ray pool: one actor per GPU (or per share of the CPUs) of a Ray cluster, each holding the
model, inputs handed to them one at a time as actor tasks.

Only the driver writes the manifest; actors return results. An actor that dies (its process
killed, its node lost) fails its current task with ``RayActorError``: the driver records the
attempt, removes what the actor left half-written (OUTDIR is a shared path) and retries the
input on another actor, and this pool starts a replacement actor, which Ray places wherever
resources are free. Actors have ``max_concurrency=2`` so that the driver can ask one for its
frame count while it colorizes.

    ray start --head --port 6379            # on the head node
    ray start --address HEAD:6379           # on every other node
    colorvid batch /shared/archive -o /shared/colour --ray auto
"""

from __future__ import annotations

import os
import time
from typing import Any

from colorvid.core.cli.batch.pool import Died, Event, Fatal, Finished, Frames, Ready
from colorvid.core.cli.batch.worker import ItemWorker, Task

__all__ = ["RayPool", "connect", "default_ray_workers"]

PROGRESS_INTERVAL = 0.5  # seconds between two frame-count requests to a busy actor


def connect(address: str) -> Any:
    """``ray.init`` on an existing cluster (``auto``: the one ``ray start`` began here)."""
    import logging

    import ray

    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=False)
    return ray


class _Actor:
    """A Ray actor holding one :class:`ItemWorker` (a load failure is kept, not raised, so the
    driver can tell a model that cannot load from a node that died)."""

    def __init__(self, options: dict[str, Any], device: str | None,
                 threads: int | None) -> None:
        self.error: str | None = None
        self.worker: ItemWorker | None = None
        try:
            self.worker = ItemWorker(options, device, threads)
        except Exception as e:  # noqa: BLE001 - reported to the driver as one line
            text = str(e).strip()
            self.error = text.splitlines()[0] if text else type(e).__name__

    def info(self) -> tuple[str | None, str, str, int]:
        if self.worker is None:
            return self.error, "", "", os.getpid()
        return None, self.worker.name, self.worker.device, os.getpid()

    def colorize(self, task: Task) -> Any:
        assert self.worker is not None
        return self.worker.colorize(task)

    def progress(self) -> tuple[int, int | None]:
        if self.worker is None:
            return 0, None
        return self.worker.frames, self.worker.total


def default_ray_workers(ray: Any, device: str | None, workers: int | None,
                        cpus_per_worker: int | None) -> list[tuple[dict[str, float],
                                                                   str | None, int | None]]:
    """``(actor resources, device, torch threads)`` per actor: one per GPU of the cluster when it
    has GPUs (and ``--device`` is not cpu), else one per ``cpus_per_worker`` CPUs (default 4,
    or all of them when fewer); ``workers`` sets the count."""
    total = ray.cluster_resources()
    gpus = int(total.get("GPU", 0))
    cpus = int(total.get("CPU", 1))
    if gpus and (device is None or device.startswith("cuda")):
        n = workers or gpus
        # Ray sets CUDA_VISIBLE_DEVICES per actor: its GPU is cuda:0 there.
        return [({"num_gpus": 1, "num_cpus": 1}, "cuda", None)] * n
    share = cpus_per_worker or (max(1, cpus // workers) if workers else min(4, cpus))
    n = workers or max(1, cpus // share)
    return [({"num_cpus": share}, device or "cpu", share)] * n


class RayPool:
    """Ray actors on the cluster that :func:`connect` joined."""

    def __init__(self, ray: Any, address: str, options: dict[str, Any],
                 slots: list[tuple[dict[str, float], str | None, int | None]]) -> None:
        self.ray = ray
        self.name = f"ray {address}"
        self.options = options
        self.slots = slots
        self.size = len(slots)
        self._remote = ray.remote(_Actor)
        self._actors: list[Any] = [None] * self.size
        self._starting: dict[Any, int] = {}  # info() ref -> slot
        self._running: dict[Any, int] = {}  # colorize() ref -> slot
        self._progress: dict[Any, int] = {}  # progress() ref -> slot
        self._asked: dict[int, float] = {}  # slot -> when its frame count was last asked
        self.pids: list[int | None] = [None] * self.size

    def _spawn(self, slot: int) -> None:
        resources, device, threads = self.slots[slot]
        actor = self._remote.options(max_concurrency=2, **resources).remote(
            self.options, device, threads)
        self._actors[slot] = actor
        self._starting[actor.info.remote()] = slot

    def start(self) -> None:
        for slot in range(self.size):
            self._spawn(slot)

    def restart(self, slot: int) -> None:
        old = self._actors[slot]
        if old is not None:
            try:
                self.ray.kill(old, no_restart=True)
            except Exception:  # noqa: BLE001 - it is dead already
                pass
        self._spawn(slot)

    def submit(self, slot: int, task: Task) -> None:
        self._running[self._actors[slot].colorize.remote(task)] = slot
        self._asked[slot] = time.monotonic()

    def _ask_progress(self) -> None:
        now = time.monotonic()
        asking = set(self._progress.values())
        for slot in set(self._running.values()) - asking:
            if now - self._asked.get(slot, 0.0) >= PROGRESS_INTERVAL:
                self._asked[slot] = now
                self._progress[self._actors[slot].progress.remote()] = slot

    def poll(self, timeout: float) -> list[Event]:
        ray = self.ray
        self._ask_progress()
        refs = [*self._starting, *self._running, *self._progress]
        events: list[Event] = []
        if not refs:
            time.sleep(timeout)
            return events
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            if ref in self._starting:
                slot = self._starting.pop(ref)
                try:
                    error, name, device, pid = ray.get(ref)
                except ray.exceptions.RayError as e:
                    events.append(Died(slot, _reason(e)))
                    continue
                self.pids[slot] = pid
                events.append(Fatal(slot, error) if error else Ready(slot, name, device))
            elif ref in self._running:
                slot = self._running.pop(ref)
                try:
                    events.append(Finished(slot, ray.get(ref)))
                except ray.exceptions.RayError as e:
                    events.append(Died(slot, _reason(e)))
            elif ref in self._progress:
                slot = self._progress.pop(ref)
                try:
                    frames, total = ray.get(ref)
                except ray.exceptions.RayError:
                    continue  # the colorize() call reports the death
                if slot in self._running.values():
                    events.append(Frames(slot, frames, total))
        return events

    def stop(self) -> list[Event]:
        """Kill every actor now: outputs are renamed into place whole, so a killed actor leaves
        at most a hidden partial file, which the driver removes."""
        for actor in self._actors:
            if actor is not None:
                try:
                    self.ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - dead already
                    pass
        self._starting.clear()
        self._running.clear()
        self._progress.clear()
        return []

    def close(self) -> None:
        self.stop()
        self._actors = [None] * self.size


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return f"Ray worker died ({type(e).__name__}: {first[:200]})"
