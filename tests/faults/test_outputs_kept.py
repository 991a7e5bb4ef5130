"""Outputs are written under a temporary name and moved into place without replacing a file that
appeared meanwhile (another run's finished work), unless --overwrite."""

from __future__ import annotations

import os

import numpy as np
import pytest
from fault_helpers import leftovers, start_gated, wait_for
from fault_media import gradient, make_sequence

from colorvid.core.files import OutputError, atomic_write, publish, temp_beside
from colorvid.core.video.decode import VideoError
from colorvid.core.video.images import ImageWriter
from colorvid.core.video.transcode import Transcoder


def test_publish_keeps_a_file_that_appeared(tmp_path):
    target = tmp_path / "out.txt"
    tmp = temp_beside(target)
    tmp.write_text("mine")
    target.write_text("theirs")  # another run finished first
    with pytest.raises(OutputError, match="appeared while this output was being written"):
        publish(tmp, target)
    assert target.read_text() == "theirs"
    assert leftovers(tmp_path) == []


def test_publish_overwrite_replaces_files_and_folders(tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "old.png").write_text("old")
    tmp = temp_beside(target, folder=True)
    (tmp / "new.png").write_text("new")
    publish(tmp, target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["new.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_temporary_files_get_the_umask_mode(tmp_path):
    atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("x"))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_transcoder_does_not_replace_a_file_made_during_the_run(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    with Transcoder(clip, dst) as t:
        for rgb in t.frames():
            t.write(rgb)
        dst.write_bytes(b"finished by another run")
        with pytest.raises(OutputError, match="--overwrite"):
            t.finish()
    assert dst.read_bytes() == b"finished by another run"
    assert leftovers(tmp_path) == []


def test_image_writer_does_not_replace_a_file_made_during_the_run(tmp_path):
    dst = tmp_path / "x.png"
    with ImageWriter(dst) as w:
        w.write(gradient(0))
        dst.write_bytes(b"theirs")
        with pytest.raises(VideoError, match="appeared"):
            w.finish()
    assert dst.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


def test_two_runs_on_one_output_the_later_does_not_replace_the_earlier(cli, clip, tmp_path):
    dst, gate = tmp_path / "out.mp4", tmp_path / "gate"
    held = start_gated(["colorize", clip, "-o", dst], gate)
    try:
        wait_for(lambda: leftovers(tmp_path))  # the held run has its temporary output open
        rc, other_err = cli("colorize", clip, "-o", dst, "--model", "grey", "-q")
        assert rc == 0, other_err
        first = dst.read_bytes()
        gate.touch()
        err = held.communicate(timeout=120)[1]
    finally:
        held.kill()
    assert held.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith(f"colorvid: {dst}: appeared while")
    assert dst.read_bytes() == first
    assert leftovers(tmp_path) == []


def test_colorize_into_an_empty_folder_made_for_it(cli, clip, tmp_path):
    (tmp_path / "frames").mkdir()
    rc, err = cli("colorize", clip, "-o", tmp_path / "frames", "--model", "grey", "-q")
    assert rc == 0, err
    assert len(list((tmp_path / "frames").iterdir())) == 4
    assert np.all([p.suffix == ".png" for p in (tmp_path / "frames").iterdir()])


@pytest.mark.parametrize("out", ["seq", "seq/%05d.png", "seq/00001.png"])
def test_overwrite_never_replaces_the_input(cli, tmp_path, out):
    seq = make_sequence(tmp_path / "seq", frames=2)
    before = {p.name: p.read_bytes() for p in seq.iterdir()}
    src = seq / "00001.png" if out.endswith("1.png") else seq
    rc, err = cli("colorize", src, "-o", tmp_path / out, "--model", "grey", "--overwrite")
    assert rc == 1
    assert "would replace the input" in err and "neither the input nor its folder" in err
    assert {p.name: p.read_bytes() for p in seq.iterdir()} == before


def test_a_dangling_link_under_the_output_name_is_refused_first(cli, clip, tmp_path):
    (tmp_path / "o.mp4").symlink_to(tmp_path / "nowhere.mp4")
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "grey")
    assert rc == 1
    assert err.strip() == (f"colorvid: {tmp_path / 'o.mp4'}: output already exists (use "
                           "--overwrite to replace it)")


def test_an_output_name_near_the_length_limit(cli, clip, tmp_path):
    name = "a" * 245 + ".mp4"  # valid (249 bytes); its temporary name must be too
    rc, err = cli("colorize", clip, "-o", tmp_path / name, "--model", "grey", "-q")
    assert rc == 0, err
    assert (tmp_path / name).is_file() and leftovers(tmp_path) == []
