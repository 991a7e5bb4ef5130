"""What the input has is kept, applied, or reported in one line: rotation, EXIF orientation,
animation, streams a container cannot hold, a cut-off last frame, unreadable frames."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from fault_helpers import leftovers
from fault_media import (
    make_animated_webp,
    make_jpeg_with_orientation,
    make_sequence,
    make_video,
    make_y4m,
)
from PIL import Image

from colorvid.core.video.decode import read_frames


def test_display_rotation_is_kept_on_video_output(cli, tmp_path):
    src = make_video(tmp_path / "phone.mp4", w=32, h=16, rotation=-90)
    rc, err = cli("colorize", src, "-o", tmp_path / "o.mp4", "--model", "grey", "-q")
    assert rc == 0, err
    with av.open(str(tmp_path / "o.mp4")) as c:
        frame = next(c.decode(video=0))
    assert (frame.rotation, frame.width, frame.height) == (-90, 32, 16)


def test_display_rotation_is_applied_on_image_output(cli, tmp_path):
    src = make_video(tmp_path / "phone.mp4", w=32, h=16, rotation=-90)
    assert [f.shape for _, f in read_frames(src)][0] == (32, 16, 3)  # shown upright
    rc, err = cli("colorize", src, "-o", tmp_path / "f" / "%03d.png", "--model", "grey", "-q")
    assert rc == 0, err
    assert cv2.imread(str(tmp_path / "f" / "000.png")).shape == (32, 16, 3)


def test_exif_orientation_is_applied(cli, tmp_path):
    src = make_jpeg_with_orientation(tmp_path / "photo.jpg", 6, w=48, h=32)
    rc, err = cli("colorize", src, "-o", tmp_path / "o.png", "--model", "grey", "-q")
    assert rc == 0, err
    assert cv2.imread(str(tmp_path / "o.png")).shape == (48, 32, 3)


def test_animated_webp_is_colorized_whole(cli, tmp_path):
    src = make_animated_webp(tmp_path / "anim.webp", frames=3)
    rc, err = cli("colorize", src, "-o", tmp_path / "o.mp4", "--model", "grey", "-q")
    assert rc == 0, err
    assert len(list(read_frames(tmp_path / "o.mp4"))) == 3
    rc, err = cli("colorize", src, "-o", tmp_path / "o.png", "--model", "grey", "-q")
    assert rc == 1 and "one image holds one frame" in err


def test_multi_page_tiff_is_refused(cli, tmp_path):
    pages = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 90)]
    pages[0].save(tmp_path / "scan.tif", save_all=True, append_images=pages[1:])
    rc, err = cli("colorize", tmp_path / "scan.tif", "-o", tmp_path / "o.png", "--model", "grey")
    assert rc == 1
    assert "holds 2 pages or frames; accepted: single images" in err
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("audio", "ext"), [("mp3", "mp4"), ("flac", "mov")])
def test_a_stream_the_container_cannot_hold_fails_before_the_first_frame(cli, tmp_path, audio,
                                                                          ext):
    src = make_video(tmp_path / "in.mkv", audio=audio)
    rc, err = cli("colorize", src, "-o", tmp_path / f"o.{ext}", "--model", "grey", "-q")
    assert rc == 1
    assert "container cannot hold these streams" in err and f"audio ({audio}" in err
    assert "choose another output extension" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


def test_pcm_audio_into_mp4(cli, tmp_path):
    src = make_video(tmp_path / "in.mkv", audio="pcm_s16le")
    rc, err = cli("colorize", src, "-o", tmp_path / "o.mp4", "--model", "grey", "-q")
    assert rc == 0, err  # FFmpeg >= 7 muxes PCM into mp4; elsewhere the header check says so
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]


def test_y4m_ending_inside_a_frame_is_reported(cli, tmp_path):
    src = make_y4m(tmp_path / "cut.y4m", frames=3, cut=100)
    rc, err = cli("colorize", src, "-o", tmp_path / "o.y4m", "--model", "grey", "-q")
    assert rc == 0, err
    assert err.strip() == (f"colorvid: warning: {src}: the stream ends inside frame 2 (1442 of "
                           "its 1542 bytes); that incomplete frame was dropped")
    whole = make_y4m(tmp_path / "whole.y4m", frames=3)
    rc, err = cli("colorize", whole, "-o", tmp_path / "o2.y4m", "--model", "grey", "-q")
    assert rc == 0 and err == ""


def test_variable_frame_rate_is_not_reported_as_ended_early(cli, tmp_path):
    src = make_video(tmp_path / "vfr.mkv", frames=6, pts=[0, 40, 80, 200, 240, 400],
                     time_base=Fraction(1, 1000))
    rc, err = cli("colorize", src, "-o", tmp_path / "o.mkv", "--model", "grey", "-q")
    assert rc == 0, err
    assert err == ""
    assert len(list(read_frames(tmp_path / "o.mkv"))) == 6


def test_skip_errors_skips_an_unreadable_frame_of_a_sequence(cli, tmp_path):
    seq = make_sequence(tmp_path / "seq", frames=4)
    (seq / "00002.png").write_bytes((seq / "00002.png").read_bytes()[:60])
    out = tmp_path / "out"
    rc, err = cli("colorize", seq, "-o", out, "--model", "grey", "-q")
    assert rc == 1 and "00002.png: cannot read as an image" in err
    assert not out.exists() and leftovers(tmp_path) == []
    rc, err = cli("colorize", seq, "-o", out, "--model", "grey", "-q", "--skip-errors")
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "00003.png"]
    assert "skipped 1 undecodable frame(s): 2" in err


def test_rotation_an_output_cannot_hold_is_reported(cli, tmp_path):
    src = make_video(tmp_path / "phone.mp4", w=32, h=16, rotation=-90)
    rc, err = cli("colorize", src, "-o", tmp_path / "o.avi", "--model", "grey", "-q")
    assert rc == 0, err
    assert err.strip() == (f"colorvid: warning: {src}: its display rotation (-90 degrees) cannot "
                           "be kept in avi output; the frames are written as stored (.mp4, .mov "
                           "or .mkv keep it)")
