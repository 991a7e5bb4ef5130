"""`colorvid batch --ray` on a real Ray head started here (loopback only, 2 CPUs, one start for
the module): outputs equal to `colorvid colorize` byte for byte with a corrupt input among the
good ones, an actor killed mid-file and its file finished by a retry, Ctrl-C and rerun; the
manifest after each."""

from __future__ import annotations

import _thread

import pytest
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

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_head():
    """A local Ray head for this module; its address (127.0.0.1:PORT)."""
    # address="local": a new head, never a cluster that `ray start` left running here
    context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                       logging_level="WARNING", log_to_driver=False)
    address = context.address_info["gcs_address"]
    assert address.startswith("127.0.0.1:"), address  # loopback only
    yield address
    ray.shutdown()


def test_ray_batch_equals_colorize_and_records_a_corrupt_input(ray_head, archive, tmp_path,
                                                                run_batch):
    out = tmp_path / "out"
    rc, err = run_batch(archive, "-o", out, *EXACT, "--ray", ray_head, "--progress", "json")
    assert rc == 1, err
    colorize_each(archive, tmp_path / "reference", *EXACT)
    for rel in GOOD:
        assert same_bytes(out / rel, tmp_path / "reference" / rel), rel
    m = rows(out)
    assert {k: r["status"] for k, r in m.items()} == {**dict.fromkeys(GOOD, "done"),
                                                       "reel1/broken.mp4": "failed"}
    assert "broken.mp4" in m["reel1/broken.mp4"]["error"]
    # one actor (2 CPUs, a 4-CPU share capped at the cluster's 2) did every input
    assert len({r["worker"] for r in m.values()}) == 1
    assert partials(out) == []


def test_ray_actor_killed_mid_file_is_retried_on_another(ray_head, tmp_path, run_batch):
    src = tmp_path / "in"
    make_clip(src / "long.mp4", frames=LONG, seed=7)
    make_clip(src / "short.mp4", frames=4, seed=8)
    out = tmp_path / "out"
    killed: list[int] = []
    watcher = when(out, mid_file(out, "long.mp4"), kill_worker_of(out, "long.mp4", killed))
    rc, err = run_batch(src, "-o", out, "--model", "zhang", "--render-size", "64",
                        "--ray", ray_head, "--progress", "json")
    watcher.join(1)
    assert killed and rc == 0, err
    assert '"status": "retry"' in err and "Ray worker died" in err
    m = rows(out)
    assert (m["long.mp4"]["status"], m["long.mp4"]["attempts"]) == ("done", 2)
    assert m["long.mp4"]["worker"].rsplit(":", 1)[1] != str(killed[0])
    assert frame_count(out / "long.mp4") == LONG and frame_count(out / "short.mp4") == 4
    assert partials(out) == []


def test_ray_ctrl_c_then_rerun(ray_head, tmp_path, run_batch, sigint_raises):
    src = tmp_path / "in"
    for i in range(3):
        make_clip(src / f"clip{i}.mp4", frames=CLIP, seed=i)
    out = tmp_path / "out"
    args = [src, "-o", out, "--model", "zhang", "--render-size", "64", "--ray", ray_head]
    # Ctrl-C as Python receives it: KeyboardInterrupt in the main thread, where the driver runs.
    when(out, lambda m: any(r["status"] == "done" for r in m.values())
         and any(r["status"] == "running" for r in m.values()), _thread.interrupt_main)
    rc, err = run_batch(*args)
    assert rc == 130, err
    m = rows(out)
    done = {k for k, r in m.items() if r["status"] == "done"}
    assert done and len(done) < 3 and {r["status"] for r in m.values()} <= {"done", "pending"}
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(done)
    assert partials(out) == []

    kept = {k: (out / k).stat().st_mtime_ns for k in done}
    rc, err = run_batch(*args, "-q")
    assert rc == 0, err
    assert all(r["status"] == "done" for r in rows(out).values())
    assert {k: (out / k).stat().st_mtime_ns for k in done} == kept
    assert all(frame_count(out / f"clip{i}.mp4") == CLIP for i in range(3))
