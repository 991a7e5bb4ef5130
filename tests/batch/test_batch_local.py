"""`colorvid batch` on this machine's worker processes: outputs equal to `colorvid colorize`
byte for byte, the manifest after every run, reruns that redo only what changed, a corrupt input
among good ones, a worker killed mid-file, Ctrl-C and rerun."""

from __future__ import annotations

import json
import os
import signal

from batch_helpers import (
    CLIP,
    EXACT,
    GOOD,
    LONG,
    colorize_each,
    frame_count,
    kill_worker_of,
    make_clip,
    mid_file,
    partials,
    rows,
    same_bytes,
    when,
)

from colorvid.core.cli.batch.command import status_text


def test_batch_equals_colorize_and_records_every_input(archive, tmp_path, run_batch):
    out = tmp_path / "out"
    rc, err = run_batch(archive, "-o", out, *EXACT, "--progress", "json")
    assert rc == 1, err  # one input is corrupt: the batch goes on and says so
    colorize_each(archive, tmp_path / "reference", *EXACT)
    for rel in GOOD:
        assert same_bytes(out / rel, tmp_path / "reference" / rel), rel

    m = rows(out)
    assert sorted(m) == sorted([*GOOD, "reel1/broken.mp4"])
    assert {k: (r["status"], r["kind"], r["frames"], r["attempts"]) for k, r in m.items()} == {
        "photo.png": ("done", "still", 1, 1),
        "reel1/a.mp4": ("done", "video", 6, 1),
        "reel1/b.mkv": ("done", "video", 6, 1),
        "reel2/c.mp4": ("done", "video", 5, 1),
        "reel2/scans": ("done", "sequence", 3, 1),
        "reel1/broken.mp4": ("failed", "video", None, 1),
    }
    broken = m["reel1/broken.mp4"]
    assert "broken.mp4" in broken["error"] and "\n" not in broken["error"]
    a = m["reel1/a.mp4"]
    assert a["input"] == str(archive / "reel1" / "a.mp4")
    assert a["input_size"] == (archive / "reel1" / "a.mp4").stat().st_size
    assert a["output_size"] == (out / "reel1" / "a.mp4").stat().st_size
    assert a["seconds"] > 0 and a["finished"] >= a["started"] and a["device"] == "cpu"
    assert m["reel2/scans"]["input_files"] == 3 and m["reel2/scans"]["output_files"] == 3
    import sqlite3

    job = json.loads(sqlite3.connect(out / "colorvid-batch.sqlite").execute(
        "SELECT job FROM jobs WHERE job_id = ?", (a["job_id"],)).fetchone()[0])
    assert job["model"] == "zhang" and len(job["weights_sha256"]) == 64
    assert job["options"]["render_size"] == 32 and "device" not in job["options"]
    assert partials(out) == []

    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "batch" and events[-1]["finished"]
    assert (events[-1]["done"], events[-1]["failed"], events[-1]["frames"]) == (5, 1, 21)
    assert any(e["event"] == "file" and e["status"] == "failed" for e in events)

    status = status_text(out)
    assert status.splitlines()[0].endswith("5 done (21 frames), 1 failed, 0 left")
    assert f"failed: {archive / 'reel1' / 'broken.mp4'}: " in status

    # The same command again: nothing done is touched, the failed input is tried again.
    before = {k: (out / k).stat().st_mtime_ns for k in GOOD}
    rc, err = run_batch(archive, "-o", out, *EXACT, "-q")
    assert rc == 1
    assert {k: (out / k).stat().st_mtime_ns for k in GOOD} == before
    again = rows(out)
    assert again["reel1/broken.mp4"]["attempts"] == 2
    assert {k: again[k]["finished"] for k in GOOD} == {k: m[k]["finished"] for k in GOOD}


def test_a_changed_option_or_input_redoes_only_what_it_affects(archive, tmp_path, run_batch):
    (archive / "reel1" / "broken.mp4").unlink()
    out = tmp_path / "out"
    assert run_batch(archive, "-o", out, "--model", "grey", "-q")[0] == 0
    first = rows(out)

    # --crf changes the encoding of videos only: stills and sequences are kept.
    assert run_batch(archive, "-o", out, "--model", "grey", "--crf", "30", "-q")[0] == 0
    second = rows(out)
    redone = {k for k in GOOD if second[k]["finished"] != first[k]["finished"]}
    assert redone == {"reel1/a.mp4", "reel1/b.mkv", "reel2/c.mp4"}
    assert second["reel1/a.mp4"]["job_id"] != first["reel1/a.mp4"]["job_id"]
    assert second["photo.png"]["job_id"] == first["photo.png"]["job_id"]

    # A changed input, a deleted output: those two only.
    make_clip(archive / "reel2" / "c.mp4", frames=7, seed=5)
    (out / "reel1" / "b.mkv").unlink()
    rc, err = run_batch(archive, "-o", out, "--model", "grey", "--crf", "30")
    assert rc == 0, err
    assert "2 to colorize, 3 already done" in err
    third = rows(out)
    assert {k for k in GOOD if third[k]["finished"] != second[k]["finished"]} == {
        "reel1/b.mkv", "reel2/c.mp4"}
    assert third["reel2/c.mp4"]["frames"] == 7 == frame_count(out / "reel2" / "c.mp4")



def test_a_worker_killed_mid_file_costs_only_that_file(tmp_path, run_batch):
    src = tmp_path / "in"
    make_clip(src / "long.mp4", frames=LONG, seed=7)
    make_clip(src / "short.mp4", frames=4, seed=8)
    out = tmp_path / "out"
    killed: list[int] = []
    watcher = when(out, mid_file(out, "long.mp4"), kill_worker_of(out, "long.mp4", killed))
    rc, err = run_batch(src, "-o", out, "--model", "zhang", "--render-size", "64",
                        "--progress", "json")
    watcher.join(1)
    assert killed and rc == 0, err
    assert '"status": "retry"' in err and "SIGKILL" in err
    m = rows(out)
    assert (m["long.mp4"]["status"], m["long.mp4"]["attempts"]) == ("done", 2)
    assert m["long.mp4"]["worker"].rsplit(":", 1)[1] != str(killed[0])
    assert (m["short.mp4"]["status"], m["short.mp4"]["attempts"]) == ("done", 1)
    assert frame_count(out / "long.mp4") == LONG and frame_count(out / "short.mp4") == 4
    assert partials(out) == []


def test_ctrl_c_keeps_outputs_and_manifest_consistent_and_a_rerun_goes_on(tmp_path, run_batch,
                                                                         sigint_raises):
    src = tmp_path / "in"
    for i in range(3):
        make_clip(src / f"clip{i}.mp4", frames=CLIP, seed=i)
    out = tmp_path / "out"
    args = [src, "-o", out, "--model", "zhang", "--render-size", "64"]
    # A real SIGINT to this process, where the driver runs, once one file is done and the next
    # is being written (the workers ignore SIGINT: the driver stops them itself).
    when(out, lambda m: any(r["status"] == "done" for r in m.values())
         and any(r["status"] == "running" for r in m.values()),
         lambda: os.kill(os.getpid(), signal.SIGINT))
    rc, err = run_batch(*args)
    assert rc == 130, err
    assert "interrupted; finished outputs and the manifest are kept" in err
    m = rows(out)
    done = {k for k, r in m.items() if r["status"] == "done"}
    assert done and len(done) < 3 and {r["status"] for r in m.values()} <= {"done", "pending"}
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(done)
    assert partials(out) == []
    for k in done:
        assert frame_count(out / k) == CLIP

    kept = {k: (out / k).stat().st_mtime_ns for k in done}
    rc, err = run_batch(*args, "-q")
    assert rc == 0, err
    assert all(r["status"] == "done" for r in rows(out).values())
    assert {k: (out / k).stat().st_mtime_ns for k in done} == kept
    assert all(frame_count(out / f"clip{i}.mp4") == CLIP for i in range(3))


def test_usage_errors_are_one_line_before_any_work(archive, tmp_path, run_batch):
    out = tmp_path / "out"
    cases = [
        ((archive,), 2, "-o OUTDIR is required"),
        (("-o", out), 2, "no input; accepted: files or folders, or --list FILE"),
        ((archive, "-o", out, "--model", "no-such-model"), 1, "no-such-model"),
        ((archive, "-o", out, "--model", "grey", "--preset", "warp9"), 1, "warp9"),
        ((archive, "-o", out, "--list", tmp_path / "missing.txt"), 2, "--list"),
        (("--status", tmp_path), 1, "no colorvid-batch.sqlite here"),
    ]
    for args, code, text in cases:
        rc, err = run_batch(*args)
        assert rc == code and text in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert not (out / "colorvid-batch.sqlite").exists()  # nothing recorded, nothing started
