"""Helpers of the `colorvid batch` tests: tiny real clips and stills, the manifest's rows, a
watcher that acts (kills a worker, interrupts) when the manifest shows a state, byte-for-byte
comparison."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from colorvid.core.cli import main

# A real network (the shipped zhang weights) at a 32 px render: every frame goes through the
# model, in about 0.1 s on a busy 2-core CPU.
MODEL = ("--model", "zhang", "--render-size", "32")
# Frames of the file a test kills a worker in, and of each file a Ctrl-C test stops the batch
# among: long enough that the file is still being written when the signal lands, on an idle
# machine too (24 and 12 frames finished before it there).
LONG = 160
CLIP = 96
# Byte-for-byte comparisons encode with mpeg4: colorize's x264 output is not reproducible from
# one run to the next (the same grey colorize of one y4m gave 4 different files in 5 runs),
# mpeg4's is (4 runs, 1 file).
EXACT = (*MODEL, "--codec", "mpeg4")


def make_clip(path: Path, frames: int = 6, size: tuple[int, int] = (32, 32), seed: int = 0
              ) -> Path:
    """A moving random texture, x264 at 25 fps."""
    rng = np.random.default_rng(seed)
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(25))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast"}
        base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 2 * i, axis=1), format="rgb24")
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def make_image(path: Path, seed: int, size: tuple[int, int] = (30, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), rgb)
    return path


GOOD = ["photo.png", "reel1/a.mp4", "reel1/b.mkv", "reel2/c.mp4", "reel2/scans"]

def rows(outdir: Path) -> dict[str, dict]:
    """The manifest's rows by output path."""
    db = sqlite3.connect(outdir / "colorvid-batch.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {r["output"]: dict(r) for r in db.execute("SELECT * FROM items")}
    finally:
        db.close()

def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))

def partials(outdir: Path) -> list[Path]:
    """Hidden temporary outputs left behind (there must be none)."""
    return [p for p in outdir.rglob(".*") if ".part" in p.name]

def colorize_each(archive: Path, reference: Path, *options: str) -> None:
    """What `colorvid colorize` writes for each good input of ``archive``, under ``reference``."""
    for rel in GOOD:
        dst = reference / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        assert main(["colorize", str(archive / rel), "-o", str(dst), "-q", *options]) == 0

def _packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        return [(pkt.pts, bytes(pkt)) for pkt in c.demux(video=0) if pkt.size]


def same_bytes(a: Path, b: Path) -> bool:
    """Files (or folders of files) equal byte for byte; Matroska files packet for packet, as
    the muxer writes a random segment UID into each file."""
    if a.is_dir():
        names = sorted(p.name for p in a.iterdir())
        return names == sorted(p.name for p in b.iterdir()) and all(
            same_bytes(a / n, b / n) for n in names)
    if a.suffix == ".mkv":
        return _packets(a) == _packets(b)
    return a.read_bytes() == b.read_bytes()


def when(outdir: Path, ready: Callable[[dict[str, dict]], bool], then: Callable[[], None],
         timeout: float = 300) -> threading.Thread:
    """In a thread: wait until ``ready(rows)`` holds for the manifest of ``outdir`` (read every
    0.05 s while a batch runs in this process), then call ``then()``."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if (outdir / "colorvid-batch.sqlite").is_file() and ready(rows(outdir)):
                    then()
                    return
            except sqlite3.OperationalError:  # the driver holds a write lock this instant
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def mid_file(outdir: Path, output: str) -> Callable[[dict[str, dict]], bool]:
    """True once ``output`` is being written: its row running and its hidden partial file there
    (created when the input is opened, before the first frame)."""

    def ready(m: dict[str, dict]) -> bool:
        row = m.get(output)
        return (row is not None and row["status"] == "running"
                and any(p.name.startswith(f".{Path(output).stem}.") for p in
                        (outdir / output).parent.glob(".*")))

    return ready


def kill_worker_of(outdir: Path, output: str, killed: list[int]) -> Callable[[], None]:
    """SIGKILL the worker (local process or Ray actor) the manifest says holds ``output``."""

    def kill() -> None:
        time.sleep(0.1)  # a few frames into the file
        pid = int(rows(outdir)[output]["worker"].rsplit(":", 1)[1])
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)

    return kill
