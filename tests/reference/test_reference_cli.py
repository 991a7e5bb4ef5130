"""``colorvid keyframes`` and ``colorvid colorize --reference``: the round trip on a small
synthetic video, and every error as one line with nothing written."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ab_error, grey

from colorvid.core.cli import main
from colorvid.core.video.decode import read_frames
from colorvid.core.video.images import read_image, write_image


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """Lossless H.264 (yuv444p, qp 0) so that decoded frames match what was written closely."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(25))
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = "yuv444p"
        s.options = {"qp": "0", "preset": "ultrafast"}
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(s.encode(None))
    return path


@pytest.fixture
def grey_video(tmp_path, two_shots) -> Path:
    return write_video(tmp_path / "old.mp4", grey(two_shots))


def test_keyframes_one_per_shot_named_by_frame_number(tmp_path, grey_video, capsys):
    assert main(["keyframes", str(grey_video), "-o", str(tmp_path / "refs")]) == 0
    names = sorted(p.name for p in (tmp_path / "refs").iterdir())
    assert names == ["000000.png", "000006.png"]
    assert "2 keyframe(s)" in capsys.readouterr().err
    # Grey, as the frames are.
    img = read_image(tmp_path / "refs" / "000006.png").astype(int)
    assert np.abs(img[..., 0] - img[..., 1]).max() <= 1


def test_keyframes_sharpest_and_colour(tmp_path, grey_video):
    assert main(["keyframes", str(grey_video), "-o", str(tmp_path / "refs"), "--pick",
                 "sharpest", "--colour", "--model", "grey", "--format", "jpg", "-q"]) == 0
    names = sorted(p.name for p in (tmp_path / "refs").iterdir())
    assert len(names) == 2 and all(n.endswith(".jpg") for n in names)
    assert int(names[0][:6]) < 6 <= int(names[1][:6])


def test_keyframes_refuses_an_existing_folder(tmp_path, grey_video, capsys):
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "000000.png").write_bytes(b"painted")
    assert main(["keyframes", str(grey_video), "-o", str(tmp_path / "refs")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "refs" / "000000.png").read_bytes() == b"painted"


def test_round_trip_keyframes_paint_colorize(tmp_path, grey_video, two_shots, capsys):
    refs = tmp_path / "refs"
    assert main(["keyframes", str(grey_video), "-o", str(refs), "-q"]) == 0
    for n in (0, 6):  # the colourist paints each keyframe (here: the true colour, 2x larger)
        big = np.repeat(np.repeat(two_shots[n], 2, axis=0), 2, axis=1)
        write_image(refs / f"{n:06d}.png", big)
    out = tmp_path / "colour.mp4"
    assert main(["colorize", str(grey_video), "-o", str(out), "--reference", str(refs),
                 "--model", "none", "--progress", "quiet"]) == 0
    frames = [rgb for _, rgb in read_frames(out)]
    assert len(frames) == 12
    assert ab_error(frames[0], two_shots[0]) < 2.5  # 4:2:0 and x264 at CRF 18
    assert np.mean([ab_error(f, t) for f, t in zip(frames, two_shots, strict=True)]) < 4.0


@pytest.mark.parametrize("case, message", [
    ("late", "reference for frame 40: the input has 12 frame(s)"),
    ("unreadable", "cannot read as an image"),
    ("grey", "the reference is grey"),
    ("twice", "two references for frame 6"),
    ("unnumbered", "must end in its frame number"),
    ("empty", "no reference image in the folder"),
    ("missing", "not a folder"),
])
def test_reference_errors_one_line_nothing_written(tmp_path, grey_video, two_shots, capsys,
                                                   case, message):
    refs = tmp_path / "refs"
    refs.mkdir()
    write_image(refs / "000000.png", two_shots[0])
    if case == "late":
        write_image(refs / "000040.png", two_shots[6])
    elif case == "unreadable":
        (refs / "000006.png").write_bytes(b"not an image")
    elif case == "grey":
        write_image(refs / "000006.png", grey(two_shots[6:7])[0])
    elif case == "twice":
        write_image(refs / "000006.png", two_shots[6])
        write_image(refs / "6.jpg", two_shots[6])
    elif case == "unnumbered":
        write_image(refs / "painted.png", two_shots[6])
    elif case == "empty":
        (refs / "000000.png").unlink()
    elif case == "missing":
        refs = tmp_path / "nowhere"
    out = tmp_path / "colour.mp4"
    code = main(["colorize", str(grey_video), "-o", str(out), "--reference", str(refs),
                 "--model", "none", "--progress", "quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["old.mp4", "refs"])


def test_reference_with_a_section_is_refused(tmp_path, grey_video, two_shots, capsys):
    refs = tmp_path / "refs"
    refs.mkdir()
    write_image(refs / "000000.png", two_shots[0])
    code = main(["colorize", str(grey_video), "-o", str(tmp_path / "c.mp4"), "--reference",
                 str(refs), "--model", "none", "--start", "1"])
    assert code == 1 and "--reference with --start" in capsys.readouterr().err
