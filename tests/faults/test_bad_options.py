"""Options and outputs that cannot work are one line and a non-zero exit before the first frame,
and leave nothing behind."""

from __future__ import annotations

import pytest
from fault_helpers import leftovers
from fault_media import make_sequence, make_video

from colorvid.core.interfaces import MAX_RENDER_SIZE


@pytest.mark.parametrize(("flag", "value"), [("--start", "inf"), ("--start", "nan"),
                                             ("--duration", "nan"), ("--duration", "inf")])
def test_times_must_be_finite(cli, clip, tmp_path, flag, value):
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "grey", flag, value)
    assert rc == 1
    assert err.strip() == (f"colorvid: {flag} '{value}': not a finite time; accepted: seconds "
                           "(12.5) or [HH:]MM:SS[.mmm]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_start_past_the_end_says_so(cli, clip, tmp_path):
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "grey", "-q",
                  "--start", "100")
    assert rc == 1
    assert err.strip() == (f"colorvid: --start 100: past the end of {clip}, which is 0.160 s "
                           "long; nothing written")
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()


def test_render_size_has_an_upper_bound(cli, clip, tmp_path):
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "grey",
                  "--render-size", "40000")
    assert rc == 2
    assert f"--render-size must be from 16 to {MAX_RENDER_SIZE}, got 40000" in err
    import colorvid

    with pytest.raises(ValueError, match=f"from 16 to {MAX_RENDER_SIZE}"):
        colorvid.VideoColorizer(colorvid.create_colorizer("grey"), render_size=40000)
    with pytest.raises(ValueError, match=f"up to {MAX_RENDER_SIZE}"):
        colorvid.create_colorizer("zhang", pretrained=False, render_size=40000)


@pytest.mark.parametrize("ext", ["mp4", "png"])
def test_an_audio_codec_is_refused(cli, clip, tmp_path, ext):
    src = clip if ext == "mp4" else make_sequence(tmp_path / "seq")
    rc, err = cli("colorize", src, "-o", tmp_path / "o.mp4", "--model", "grey", "--codec", "aac")
    assert rc == 1
    assert err.strip() == ("colorvid: --codec 'aac': encodes audio; accepted: a video encoder "
                           "such as libx264, libx265, libvpx-vp9 or libsvtav1")
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()


def test_codec_the_container_cannot_hold_is_refused_before_the_first_frame(cli, tmp_path):
    seq = make_sequence(tmp_path / "seq")
    rc, err = cli("colorize", seq, "-o", tmp_path / "o.webm", "--model", "grey", "--codec",
                  "libx264")
    assert rc == 1
    assert "the webm container cannot hold libx264 video" in err
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.webm").exists()


def test_pattern_with_two_fields(cli, clip, tmp_path):
    (tmp_path / "frames").mkdir()
    rc, err = cli("colorize", clip, "-o", tmp_path / "frames" / "%05d_%05d.png", "--model",
                  "grey")
    assert rc == 1
    assert err.strip().endswith("an output pattern takes exactly one frame-number field, such "
                                "as %05d, and no other %")
    assert list((tmp_path / "frames").iterdir()) == []


def test_pattern_under_a_file(cli, clip, tmp_path):
    (tmp_path / "file.mp4").write_bytes(b"x")
    rc, err = cli("colorize", clip, "-o", tmp_path / "file.mp4" / "%05d.png", "--model", "grey",
                  "--overwrite")
    assert rc == 1
    assert err.strip() == (f"colorvid: {tmp_path / 'file.mp4'}: is a file, not a folder for the "
                           "frames")
    assert (tmp_path / "file.mp4").read_bytes() == b"x" and leftovers(tmp_path) == []


def test_output_in_an_unwritable_folder(cli, clip):
    rc, err = cli("colorize", clip, "-o", "/proc/x.mp4", "--model", "grey")
    assert rc == 1
    assert err.strip().startswith("colorvid: /proc/x.mp4: cannot write in /proc: ")


def test_output_folder_missing(cli, clip, tmp_path):
    rc, err = cli("colorize", clip, "-o", tmp_path / "nope" / "o.mp4", "--model", "grey")
    assert rc == 1
    assert err.strip() == (f"colorvid: {tmp_path / 'nope' / 'o.mp4'}: output folder "
                           f"{tmp_path / 'nope'} does not exist")


def test_one_image_cannot_hold_a_video(cli, clip, tmp_path):
    rc, err = cli("colorize", clip, "-o", tmp_path / "x.png", "--model", "grey", "-q")
    assert rc == 1
    assert "one image holds one frame, and the input has more" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize("fps", ["inf", "nan", "1e-9", "0"])
def test_sequence_frame_rate_must_be_usable(cli, tmp_path, fps):
    seq = make_sequence(tmp_path / "seq")
    rc, err = cli("colorize", seq, "-o", tmp_path / "o.mp4", "--model", "grey", "--fps", fps)
    assert rc == 2
    assert f"--fps must be a number from 0.01 to 1000, got '{fps}'" in err


def test_huge_start_is_past_the_end(cli, clip, tmp_path):
    rc, err = cli("colorize", clip, "-o", tmp_path / "o.mp4", "--model", "grey", "--start",
                  "1e308")
    assert rc == 1
    assert err.strip() == (f"colorvid: --start 1e+308: past the end of {clip}, which is 0.160 s "
                           "long; nothing written")


def test_start_on_video_to_frames_counts_the_video_frames(cli, tmp_path):
    src = make_video(tmp_path / "v.mp4", frames=6, rate=10)  # 0.1 s a frame
    rc, err = cli("colorize", src, "-o", tmp_path / "f" / "%03d.png", "--model", "grey", "-q",
                  "--start", "0.3")  # with --fps's 25 this would have been frame 8: none
    assert rc == 0, err
    assert len(list((tmp_path / "f").iterdir())) == 3
