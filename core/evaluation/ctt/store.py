"""The SQLite store of colorization-Turing-test ratings, and the catalogue of clips to rate.

Ratings are keyed by (rater, video, model): a rater who scores the same clip again replaces the
earlier score. Every write is its own transaction in WAL mode with ``synchronous=FULL``, so a
rating that was acknowledged survives a crash or restart of the server.

Raters never see model names: each clip is known to the page by an opaque id, a keyed hash of
(video, model) with a secret created once per database (so ids stay valid across restarts and
cannot be inverted by guessing model names).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Clip", "RatingError", "RatingStore", "load_clips"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ratings (
    rater   TEXT NOT NULL,
    video   TEXT NOT NULL,
    model   TEXT NOT NULL,
    score   INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    created REAL NOT NULL,
    PRIMARY KEY (rater, video, model)
);
"""


class RatingError(ValueError):
    """A submission was refused; the message says which field and what is accepted."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One clip a rater scores: the (video, model) it shows and its file."""

    video: str
    model: str
    path: Path


def load_clips(report_dir: str | Path, include_original: bool = True) -> list[Clip]:
    """The clips listed in ``REPORT_DIR/results.json`` (written by ``colorvid eval``)."""
    report = Path(report_dir)
    results = report / "results.json"
    if not results.is_file():
        raise FileNotFoundError(f"ctt: {results} not found; run `colorvid eval ... --out "
                                f"{report}` first")
    try:
        payload = json.loads(results.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"ctt: {results} is not valid JSON ({e})") from e
    clips = []
    for rec in payload.get("clips", []):
        if rec.get("model") == "original" and not include_original:
            continue
        path = (report / rec["path"]).resolve()
        if report.resolve() not in path.parents or not path.is_file():
            continue  # missing, or pointing outside the report: never served
        clips.append(Clip(str(rec["video"]), str(rec["model"]), path))
    if not clips:
        raise ValueError(f"ctt: {results} lists no clips; run `colorvid eval` without --no-clips")
    return clips


class RatingStore:
    """Ratings in one SQLite file.

    >>> store = RatingStore(":memory:")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        with self._connect() as con:
            con.executescript(SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
            if row is None:
                con.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)",
                            (secrets.token_hex(16),))
                row = con.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
        self._secret = bytes.fromhex(row[0])

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per operation: the HTTP server is multi-threaded and a
        # sqlite3 connection must not be shared across threads.
        con = sqlite3.connect(self.path, timeout=30.0)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            with con:  # commits on success, rolls back on error
                yield con
        finally:
            con.close()

    def clip_id(self, video: str, model: str) -> str:
        """The opaque id of a clip: HMAC-SHA256 of (video, model) under this store's secret."""
        msg = f"{video}\0{model}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:24]

    def add(self, rater: str, video: str, model: str, score: int) -> None:
        """Record (or replace) one rater's score of one clip."""
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise RatingError(f"score must be an integer from 1 to 5, got {score!r}")
        with self._connect() as con:
            con.execute(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?) ON CONFLICT (rater, video, model) "
                "DO UPDATE SET score = excluded.score, created = excluded.created",
                (rater, video, model, score, time.time()),
            )

    def ratings(self) -> list[tuple[str, str, str, int]]:
        """Every rating as (rater, video, model, score), oldest first."""
        with self._connect() as con:
            return [tuple(r) for r in con.execute(
                "SELECT rater, video, model, score FROM ratings ORDER BY created, rater")]

    def rated_by(self, rater: str) -> set[tuple[str, str]]:
        """The (video, model) pairs this rater has scored."""
        with self._connect() as con:
            return {(v, m) for v, m in con.execute(
                "SELECT video, model FROM ratings WHERE rater = ?", (rater,))}
