"""The local pool: worker processes on this machine, each with the model loaded once.

Workers are forked from a ``forkserver`` process (a fresh interpreter of its own, so no torch
or CUDA state of the driver is copied) that has imported torch and colorvid once, and talk to
the driver over a pipe each. They ignore SIGINT, which Ctrl-C sends to the
whole process group: the driver alone decides, and on Ctrl-C sends each worker one SIGTERM,
which the worker turns into KeyboardInterrupt so that colorize's own cleanup removes the
partial output. A worker killed outright (SIGKILL, out of memory) is seen through its process
sentinel; the driver removes what it left half-written and retries its input.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from colorvid.core.cli.batch.pool import Died, Event, Fatal, Finished, Frames, Ready
from colorvid.core.cli.batch.worker import ItemWorker, Task

__all__ = ["LocalPool", "local_slots"]

# Imported once by the fork server; each worker is forked from it with torch and colorvid
# already loaded (no CUDA or torch threads exist there yet, so forking is safe): a worker that
# replaces a killed one, or the next batch run in a process that drives several, starts in
# well under a second instead of re-importing torch.
PRELOAD = ["torch", "colorvid", "colorvid.core.cli.colorize", "colorvid.core.cli.batch.worker"]
PROGRESS_INTERVAL = 0.25  # seconds between two frame counts a worker sends
STOP_GRACE = 10.0  # seconds a worker gets to clean up after SIGTERM before SIGKILL


def local_slots(device: str | None, workers: int | None, cpus_per_worker: int | None,
                cpus: int) -> list[tuple[str | None, int | None]]:
    """``(device, torch threads)`` per local worker.

    On CUDA (``--device cuda``, or no ``--device`` and a CUDA device present) one worker per
    device (``--device cuda:N``: that one), or ``workers`` spread over the devices. On the CPU
    one worker per 4 cores by default, the cores shared out evenly (``cpus_per_worker`` each
    when given); a single worker keeps torch's own thread count, as ``colorvid colorize`` has
    it, so that its output is the same bit for bit.

    4 cores a worker: decoding, encoding and the colour conversions of each worker want cores
    of their own beside torch's threads; the figure is a choice, not measured beyond 2 cores.
    """
    import torch

    if _on_cuda(device):
        if device not in (None, "cuda"):
            devices = [device]
        else:
            devices = [f"cuda:{i}" for i in range(max(1, torch.cuda.device_count()))]
        n = workers or len(devices)
        return [(devices[i % len(devices)], None) for i in range(n)]
    if workers is None:
        workers = max(1, cpus // (cpus_per_worker or 4))
    threads = cpus_per_worker or (None if workers == 1 else max(1, cpus // workers))
    return [(device, threads)] * workers


def _on_cuda(device: str | None) -> bool:
    import torch

    if device is not None:
        return device.startswith("cuda")
    return torch.cuda.is_available()


def _worker_main(conn: Connection, options: dict[str, Any], device: str | None,
                 threads: int | None) -> None:
    """A worker process: load the model, then colorize tasks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one interrupt: cleanup runs to the end
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        try:
            worker = ItemWorker(options, device, threads)
        except Exception as e:  # noqa: BLE001 - reported to the driver as one line
            text = str(e).strip()
            conn.send(("fatal", text.splitlines()[0] if text else type(e).__name__))
            return
        conn.send(("ready", worker.name, worker.device))
        while True:
            task = conn.recv()
            if task is None:
                return
            last = 0.0

            def tick(frames: int, total: int | None) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= PROGRESS_INTERVAL:
                    last = now
                    conn.send(("frames", frames, total))

            conn.send(("result", worker.colorize(task, tick)))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return


class LocalPool:
    """Worker processes on this machine; ``slots`` gives each one's (device, torch threads)."""

    name = "local"

    def __init__(self, options: dict[str, Any],
                 slots: list[tuple[str | None, int | None]]) -> None:
        self.options = options
        self.slots = slots
        self.size = len(slots)
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._procs: list[Any] = [None] * self.size
        self._conns: list[Connection | None] = [None] * self.size

    def _spawn(self, slot: int) -> None:
        ours, theirs = self._ctx.Pipe()
        device, threads = self.slots[slot]
        proc = self._ctx.Process(target=_worker_main, args=(theirs, self.options, device, threads),
                                 name=f"colorvid-batch-{slot}", daemon=True)
        proc.start()
        theirs.close()
        self._procs[slot], self._conns[slot] = proc, ours

    def start(self) -> None:
        for slot in range(self.size):
            self._spawn(slot)

    def restart(self, slot: int) -> None:
        self._reap(slot)
        self._spawn(slot)

    def pids(self) -> list[int | None]:
        return [p.pid if p is not None else None for p in self._procs]

    def submit(self, slot: int, task: Task) -> None:
        conn = self._conns[slot]
        assert conn is not None
        conn.send(task)

    def _read(self, slot: int, out: list[Event]) -> bool:
        """Read what ``slot`` sent; False when its pipe is closed (the worker is gone)."""
        conn = self._conns[slot]
        if conn is None:
            return False
        try:
            while conn.poll():
                msg = conn.recv()
                kind = msg[0]
                if kind == "ready":
                    out.append(Ready(slot, msg[1], msg[2]))
                elif kind == "fatal":
                    out.append(Fatal(slot, msg[1]))
                elif kind == "frames":
                    out.append(Frames(slot, msg[1], msg[2]))
                elif kind == "result":
                    out.append(Finished(slot, msg[1]))
        except (EOFError, OSError):
            return False
        return True

    def poll(self, timeout: float) -> list[Event]:
        waitables: list[Any] = []
        for conn, proc in zip(self._conns, self._procs, strict=True):
            if conn is not None:
                waitables += [conn, proc.sentinel]
        events: list[Event] = []
        if not waitables:
            time.sleep(timeout)
            return events
        wait(waitables, timeout)
        for slot in range(self.size):
            proc = self._procs[slot]
            if proc is None or self._conns[slot] is None:
                continue
            alive = self._read(slot, events)
            if not alive or not proc.is_alive():
                proc.join(1.0)
                self._read(slot, events)  # a last result sent just before exiting
                events.append(Died(slot, _exit_reason(proc.exitcode)))
                self._reap(slot)
        return events

    def stop(self) -> list[Event]:
        events: list[Event] = []
        for proc in self._procs:
            if proc is not None and proc.is_alive():
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE
        for slot, proc in enumerate(self._procs):
            if proc is None:
                continue
            while proc.is_alive() and time.monotonic() < deadline:
                self._read(slot, events)
                proc.join(0.05)
            if proc.is_alive():
                proc.kill()
                proc.join()
            self._read(slot, events)
        return events

    def _reap(self, slot: int) -> None:
        conn, proc = self._conns[slot], self._procs[slot]
        self._conns[slot] = self._procs[slot] = None
        if conn is not None:
            conn.close()
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join()

    def close(self) -> None:
        for conn in self._conns:
            if conn is not None:
                try:
                    conn.send(None)
                except OSError:
                    pass
        for slot, proc in enumerate(self._procs):
            if proc is not None:
                proc.join(STOP_GRACE)
            self._reap(slot)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker process killed by {name}"
    return f"worker process exited with status {code}"
