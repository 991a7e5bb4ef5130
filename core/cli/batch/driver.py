"""The batch driver: decides what a run does (:func:`decide`), then hands the inputs to a pool of
workers one at a time, retries what may succeed on another try, and records every change in the
manifest (:func:`drive`). It is the only writer of the manifest.

What a rerun does with each input (the rules docs/batch.md states):

- done, same input and job identity, output present and unchanged: skipped;
- done but the input, the job or the output changed: colorized again;
- failed, pending or running (a run that was interrupted or killed): tried again, with a fresh
  budget of ``1 + retries`` attempts in this run.

Within a run, a failure that is the input's or the options' fault (colorize's own one-line
errors: a corrupt file, an unreadable image) is recorded at once; any other failure (a worker
that died, an exception) is retried up to ``retries`` times, on whichever worker is free.
"""

from __future__ import annotations

import collections
import dataclasses
import signal
from pathlib import Path

from colorvid.core.cli.batch.manifest import Manifest, Row, output_identity
from colorvid.core.cli.batch.plan import Item
from colorvid.core.cli.batch.pool import Died, Fatal, Finished, Frames, Pool, Ready
from colorvid.core.cli.batch.progress import BatchProgress
from colorvid.core.cli.batch.worker import Task, remove_partials

__all__ = ["BatchError", "Decision", "Outcome", "decide", "drive"]


# A worker that dies this many times before it has loaded the model (a broken install, an
# out-of-memory at load) is not started again.
START_TRIES = 3


class BatchError(RuntimeError):
    """The batch cannot go on (no worker could load the model); one line."""


@dataclasses.dataclass
class Decision:
    """What this run does: ``run`` (with the overwrite flag of each), ``skip`` (done and valid),
    ``failed`` (errors found while planning)."""

    run: list[tuple[Item, bool]] = dataclasses.field(default_factory=list)
    skip: list[Item] = dataclasses.field(default_factory=list)
    failed: list[Item] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Outcome:
    done: int = 0
    failed: int = 0
    left: int = 0
    interrupted: bool = False


def _valid(row: Row, item: Item, job_id: str, outdir: Path) -> bool:
    return (row.status == "done" and row.input_identity == item.identity
            and row.job_id == job_id and row.output == item.output
            and output_identity(outdir / row.output) == row.output_identity)


def decide(items: list[Item], job_ids: dict[str, str], rows: dict[str, Row], outdir: Path,
           overwrite: bool) -> Decision:
    """Sort the planned items by what this run does with them (see the module doc). An output
    the manifest already knows is the batch's own and is replaced without ``--overwrite``."""
    d = Decision()
    for item in items:
        row = rows.get(item.input)
        if item.error is not None:
            d.failed.append(item)
        elif row is not None and _valid(row, item, job_ids[item.kind], outdir):
            d.skip.append(item)
        else:
            owned = row is not None and row.output == item.output
            d.run.append((item, overwrite or owned))
    return d


def drive(pool: Pool, manifest: Manifest, work: list[tuple[Item, bool]], outdir: Path, *,
          retries: int, progress: BatchProgress) -> Outcome:
    """Colorize ``work`` on ``pool``; returns the counts. Ctrl-C (KeyboardInterrupt) stops the
    workers, puts the inputs they held back to ``pending`` and returns ``interrupted``."""
    queue = collections.deque(work)
    budget = {item.input: 1 + retries for item, _ in work}
    idle: set[int] = set()
    busy: dict[int, tuple[Item, bool]] = {}
    workers: dict[int, tuple[str, str]] = {}  # slot -> (name, device)
    fatal: dict[int, str] = {}
    early_deaths: dict[int, int] = {}  # slot -> deaths before the model was loaded
    out = Outcome()

    def give_back(slot: int, note: str) -> None:
        item, _ = busy.pop(slot)
        remove_partials(outdir / item.output)
        manifest.pending(item.input, note)
        progress.file(item.input, "interrupted", output=item.output)

    def handle(event) -> None:
        if isinstance(event, Ready):
            workers[event.slot] = (event.worker, event.device)
            early_deaths.pop(event.slot, None)
            idle.add(event.slot)
        elif isinstance(event, Fatal):
            fatal[event.slot] = event.error
        elif isinstance(event, Frames):
            if event.slot in busy:
                item, _ = busy[event.slot]
                progress.file_frames(item.input, event.frames, event.total,
                                     worker=workers.get(event.slot, ("?", ""))[0])
        elif isinstance(event, Finished):
            item, owned = busy.pop(event.slot)
            idle.add(event.slot)
            r = event.result
            if r.status == "done":
                manifest.done(item.input, frames=r.frames, seconds=r.seconds,
                              warnings=r.warnings,
                              output=output_identity(outdir / item.output))
                out.done += 1
                progress.file(item.input, "done", output=item.output, frames=r.frames,
                              seconds=round(r.seconds, 3), size=item.size,
                              worker=workers[event.slot][0])
            else:
                failed(item, owned, r.error or "failed", r.retry, r.seconds)
        elif isinstance(event, Died):
            if workers.pop(event.slot, None) is None and event.slot not in fatal:
                early_deaths[event.slot] = early_deaths.get(event.slot, 0) + 1
                if early_deaths[event.slot] >= START_TRIES:
                    fatal[event.slot] = f"{event.reason} while loading the model"
            idle.discard(event.slot)
            if event.slot in busy:
                item, owned = busy.pop(event.slot)
                remove_partials(outdir / item.output)
                failed(item, True, event.reason, True, None)
            if event.slot not in fatal:
                pool.restart(event.slot)

    def failed(item: Item, owned: bool, error: str, retry: bool, seconds: float | None) -> None:
        if retry and budget[item.input] > 0:
            manifest.pending(item.input, error)
            queue.append((item, owned))
            progress.file(item.input, "retry", output=item.output, error=error)
        else:
            manifest.failed_item(item.input, error, seconds)
            out.failed += 1
            progress.file(item.input, "failed", output=item.output, error=error, size=item.size)

    try:
        pool.start()
        while queue or busy:
            for event in pool.poll(0.2):
                handle(event)
            if len(fatal) == pool.size:
                raise BatchError(f"no worker could load the model: {next(iter(fatal.values()))}")
            while idle and queue:
                slot = min(idle)
                idle.discard(slot)
                item, owned = queue.popleft()
                budget[item.input] -= 1
                name, device = workers[slot]
                manifest.running(item.input, name, device)
                busy[slot] = (item, owned)
                pool.submit(slot, Task(item.input, str(outdir / item.output), item.kind,
                                       overwrite=owned))
                progress.file(item.input, "running", output=item.output, worker=name,
                              attempt=1 + retries - budget[item.input])
            progress.report()
    except KeyboardInterrupt:
        # A second Ctrl-C must not cut the cleanup short: outputs and manifest stay consistent.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for event in pool.stop():
                if isinstance(event, Finished) and event.slot in busy:
                    handle(event)
            for slot in list(busy):
                give_back(slot, "interrupted")
        finally:
            signal.signal(signal.SIGINT, previous)
        out.interrupted = True
    finally:
        pool.close()
    out.left = len(queue) + len(busy)
    return out
