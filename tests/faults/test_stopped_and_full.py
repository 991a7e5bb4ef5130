"""A full disk, a full or closed stdout and a stop signal: one line, non-zero exit, nothing left
under the requested name and no temporary file. A file-size limit (RLIMIT_FSIZE) stands in for
the full disk: writes past it fail the way writes to a full disk do."""

from __future__ import annotations

import io
import signal
import sys

import pytest
from fault_helpers import file_size_limit, leftovers, start_gated, wait_for
from fault_media import make_sequence


@pytest.mark.parametrize("out", ["frames/%05d.png", "x.png", "video.mp4"])
def test_full_disk(cli, tmp_path, out):
    seq = make_sequence(tmp_path / "seq", frames=2)
    (tmp_path / "frames").mkdir()
    target = tmp_path / out
    src = seq / "00000.png" if out == "x.png" else seq
    with file_size_limit(50):
        rc, err = cli("colorize", src, "-o", target, "--model", "grey", "-q")
    assert rc == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(": File too large"), err
    assert "cannot write this image format" not in err
    assert not target.exists() or target.is_dir() and not any(target.iterdir())
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "frames") == []


def test_stdout_full(cli, clip, monkeypatch):
    # Unbuffered, so that every write reaches /dev/full (and closing has nothing left to flush)
    full = io.TextIOWrapper(open("/dev/full", "wb", buffering=0), write_through=True)
    monkeypatch.setattr(sys, "stdout", full)
    rc, err = cli("colorize", clip, "-o", "-", "--model", "grey", "-q")
    assert rc == 1
    assert err.strip() == "colorvid: stdout: write error: No space left on device"


def test_stdout_closed(cli, clip, monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)  # what Python sets when started with 1>&-
    rc, err = cli("colorize", clip, "-o", "-", "--model", "grey")
    assert rc == 1
    assert err.strip() == "colorvid: output '-' writes y4m to stdout, but stdout is closed"


@pytest.mark.parametrize("sig", [signal.SIGHUP, pytest.param(signal.SIGTERM,
                                                               marks=pytest.mark.slow)],
                         ids=["SIGHUP", "SIGTERM"])
def test_stop_signals_clean_up_like_ctrl_c(clip, tmp_path, sig):
    dst = tmp_path / "out.mp4"
    held = start_gated(["colorize", clip, "-o", dst], tmp_path / "never")
    try:
        wait_for(lambda: leftovers(tmp_path))
        held.send_signal(sig)
        err = held.communicate(timeout=120)[1]
    finally:
        held.kill()
    assert held.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"colorvid: interrupted; {dst} was not written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_export_onnx_into_a_missing_folder(cli, tmp_path):
    rc, err = cli("export", "onnx", "--model", "zhang", "-o", tmp_path / "no" / "z.onnx")
    assert rc == 2
    assert err.strip() == (f"colorvid: export onnx: {tmp_path / 'no' / 'z.onnx'}: output folder "
                           f"{tmp_path / 'no'} does not exist")


def test_export_onnx_on_a_full_disk_leaves_nothing(cli, tmp_path):
    pytest.importorskip("onnx")
    with file_size_limit(100_000):
        rc, err = cli("export", "onnx", "--model", "zhang", "-o", tmp_path / "z.onnx")
    assert rc == 1
    assert err.strip() == f"colorvid: export onnx: {tmp_path / 'z.onnx'}: cannot write: File " \
                          "too large"
    assert list(tmp_path.iterdir()) == []


def test_stdin_closed(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)  # what Python sets when started with 0<&-
    rc, err = cli("colorize", "-", "-o", tmp_path / "o.mp4", "--model", "grey")
    assert rc == 1
    assert err.strip() == "colorvid: input '-' reads y4m from stdin, but stdin is closed"
    assert list(tmp_path.iterdir()) == []
