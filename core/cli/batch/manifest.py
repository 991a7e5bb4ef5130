"""The batch manifest: one SQLite file in OUTDIR, one row per input, written by the driver only.

SQLite rather than JSON lines: each change is one transaction, so a driver killed at any moment
leaves the last committed state (no torn line to repair), a rerun updates rows in place rather
than appending (10,000 inputs stay 10,000 rows), and anyone can query it::

    sqlite3 out/colorvid-batch.sqlite \\
        "select input, error from items where status = 'failed'"

The rollback journal (not WAL) is used because OUTDIR may be on a shared filesystem, where
WAL's shared memory does not work. Tables (see docs/batch.md for every column):

- ``items``: input (absolute path, the key), kind, output (relative to OUTDIR), the input's
  identity (size, mtime_ns, files), job_id, status (``pending``, ``running``, ``done``,
  ``failed``), error, warnings (JSON list), attempts, frames, the output's identity (size,
  mtime_ns, files), worker, device, started/finished (Unix time) and seconds (colorizing);
- ``jobs``: job_id -> the job as JSON (model, weights digest, plugin, options);
- ``meta``: the schema version and the last command.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from colorvid.core.cli.batch.plan import Item

__all__ = ["MANIFEST_NAME", "SCHEMA_VERSION", "STATUSES", "Manifest", "Row", "output_identity"]

MANIFEST_NAME = "colorvid-batch.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    input TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    output TEXT NOT NULL,
    input_size INTEGER NOT NULL,
    input_mtime_ns INTEGER NOT NULL,
    input_files INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    warnings TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    frames INTEGER,
    output_size INTEGER,
    output_mtime_ns INTEGER,
    output_files INTEGER,
    worker TEXT,
    device TEXT,
    started REAL,
    finished REAL,
    seconds REAL
);
CREATE INDEX IF NOT EXISTS items_status ON items (status);
CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, job TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of ``items``."""

    input: str
    kind: str
    output: str
    input_size: int
    input_mtime_ns: int
    input_files: int
    job_id: str
    status: str
    error: str | None
    warnings: str | None
    attempts: int
    frames: int | None
    output_size: int | None
    output_mtime_ns: int | None
    output_files: int | None
    worker: str | None
    device: str | None
    started: float | None
    finished: float | None
    seconds: float | None

    @property
    def input_identity(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_mtime_ns, self.input_files)

    @property
    def output_identity(self) -> tuple[int | None, int | None, int | None]:
        return (self.output_size, self.output_mtime_ns, self.output_files)


_FIELDS = [f.name for f in dataclasses.fields(Row)]


def output_identity(path: Path) -> tuple[int, int, int] | None:
    """``(bytes, newest mtime_ns, files)`` of an output file or folder; None when missing."""
    try:
        if path.is_dir():
            size = newest = count = 0
            for f in path.iterdir():
                st = f.stat()
                size, newest, count = size + st.st_size, max(newest, st.st_mtime_ns), count + 1
            return size, newest, count
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, 1


class Manifest:
    """The manifest of OUTDIR (created on first use). Every method commits before returning."""

    def __init__(self, outdir: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.outdir = Path(outdir)
        self.path = self.outdir / MANIFEST_NAME
        if readonly:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.executescript(_SCHEMA)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                            (str(SCHEMA_VERSION),))
            self.db.commit()
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------
    def rows(self) -> dict[str, Row]:
        return {r["input"]: Row(**dict(r)) for r in self.db.execute("SELECT * FROM items")}

    def get(self, input: str) -> Row | None:
        r = self.db.execute("SELECT * FROM items WHERE input = ?", (input,)).fetchone()
        return None if r is None else Row(**dict(r))

    def job(self, job_id: str) -> dict[str, Any] | None:
        r = self.db.execute("SELECT job FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if r is None else json.loads(r["job"])

    def counts(self) -> dict[str, int]:
        found = dict(self.db.execute("SELECT status, count(*) FROM items GROUP BY status"))
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def failed(self) -> Iterator[Row]:
        for r in self.db.execute("SELECT * FROM items WHERE status = 'failed' ORDER BY input"):
            yield Row(**dict(r))

    def meta(self, key: str) -> str | None:
        r = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if r is None else r["value"]

    # -- writing (the driver only) ------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def add_jobs(self, jobs: dict[str, dict[str, Any]]) -> None:
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO jobs VALUES (?, ?)",
                                [(k, json.dumps(v, sort_keys=True)) for k, v in jobs.items()])

    def plan(self, entries: Iterable[tuple[Item, str, str, str | None]]) -> None:
        """Record planned inputs ``(item, job_id, status, error)``, status ``pending`` (to run)
        or ``failed`` (an error found while planning), in one transaction. Attempts carry on
        while the input and job identities stay the same, and start again otherwise."""
        with self.db:
            for item, job_id, status, error in entries:
                old = self.get(item.input)
                same = (old is not None and old.input_identity == item.identity
                        and old.job_id == job_id and old.output == item.output)
                attempts = (old.attempts if same else 0) + (status == "failed")
                self.db.execute(
                    "INSERT OR REPLACE INTO items (input, kind, output, input_size, "
                    "input_mtime_ns, input_files, job_id, status, error, attempts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (item.input, item.kind, item.output, item.size, item.mtime_ns, item.files,
                     job_id, status, error, attempts))

    def _update(self, input: str, **values: Any) -> None:
        names = ", ".join(f"{k} = ?" for k in values)
        with self.db:
            self.db.execute(f"UPDATE items SET {names} WHERE input = ?", (*values.values(),
                                                                            input))

    def running(self, input: str, worker: str, device: str | None) -> None:
        self.db.execute("UPDATE items SET attempts = attempts + 1 WHERE input = ?", (input,))
        self._update(input, status="running", worker=worker, device=device, error=None,
                     started=time.time(), finished=None)

    def done(self, input: str, *, frames: int, seconds: float, warnings: list[str],
             output: tuple[int, int, int] | None) -> None:
        size, mtime, files = output or (None, None, None)
        self._update(input, status="done", error=None, frames=frames, seconds=seconds,
                     warnings=json.dumps(warnings) if warnings else None, output_size=size,
                     output_mtime_ns=mtime, output_files=files, finished=time.time())

    def failed_item(self, input: str, error: str, seconds: float | None = None) -> None:
        self._update(input, status="failed", error=error, seconds=seconds,
                     finished=time.time())

    def pending(self, input: str, note: str | None = None) -> None:
        """Back to the queue (interrupted; a worker that died and will be retried)."""
        self._update(input, status="pending", error=note, finished=time.time())


def fields() -> list[str]:
    """The columns of ``items``, in order (docs and tests read them from here)."""
    return list(_FIELDS)
