"""`colorvid colorize` end to end on real clips: files, timing, audio, metadata, errors."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from colorvid.core.cli import build_parser, main
from colorvid.core.color import rgb_to_lab


def _l(frames: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    return rgb_to_lab(x)[:, 0]


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["colorize", *map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _stream_facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        audio = []
        for s in c.streams.audio:
            audio.append([(p.pts * p.time_base, p.dts * p.time_base, bytes(p))
                          for p in c.demux(s) if p.dts is not None])
        return {
            "rate": v.average_rate, "time_base": v.time_base,
            "duration": v.duration * v.time_base, "size": (v.width, v.height),
            "metadata": dict(c.metadata), "audio": audio,
            "audio_meta": [dict(s.metadata) for s in c.streams.audio],
        }


def test_default_model_is_lrcn():
    args = build_parser().parse_args(["colorize", "in.mp4", "-o", "out.mp4"])
    assert args.model == "lrcn" and args.batch >= 1 and args.progress == "bar"


def test_end_to_end_keeps_timing_audio_metadata_and_l(bunny_cut, tmp_path, capsys,
                                                      test_colorizers, decode_rgb, const_ab):
    out = tmp_path / "colour.mp4"
    rc, stdout, err = _cli(capsys, bunny_cut, "-o", out, "--model", "const-test", "--batch", "4",
                           "--progress", "json")
    assert rc == 0, err
    assert stdout == ""  # stdout stays free for video
    src, dst = _stream_facts(bunny_cut), _stream_facts(out)
    frames_in, frames_out = decode_rgb(bunny_cut), decode_rgb(out)
    assert len(frames_out) == len(frames_in) == 30
    assert dst["rate"] == src["rate"] == 25
    assert dst["duration"] == src["duration"] == Fraction(6, 5)
    assert dst["size"] == src["size"]
    # audio: present, and every packet identical (bytes and timestamps)
    assert len(dst["audio"]) == 1 and len(dst["audio"][0]) > 0
    assert dst["audio"] == src["audio"]
    assert dst["audio_meta"][0]["language"] == "eng"
    assert dst["metadata"]["title"] == "colorvid test clip"
    # L kept within encoding tolerance; colour added
    assert (_l(frames_in) - _l(frames_out)).abs().mean() < 1.5
    lab = rgb_to_lab(torch.from_numpy(frames_out[10]).permute(2, 0, 1)[None].float() / 255)[0]
    mid = (lab[0] > 30) & (lab[0] < 70)
    assert abs(lab[1][mid].mean().item() - const_ab[0]) < 6
    assert '"done": true' in err and "30 frames ->" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colour.mp4"]  # no temp files left


def test_other_containers_and_codecs(carphone_y4m, tmp_path, capsys, decode_rgb):
    for name, codec in (("a.mkv", None), ("b.webm", None), ("c.mp4", "mpeg4"), ("d.y4m", None)):
        args = [carphone_y4m, "-o", tmp_path / name, "--model", "grey", "-q"]
        rc, _, err = _cli(capsys, *args, *(["--codec", codec] if codec else []))
        assert rc == 0, err
        assert len(decode_rgb(tmp_path / name)) == 12, name


def _x264_settings(path: Path) -> str:
    """The settings x264 writes into its stream (an SEI message: 'x264 - core ... options: ...')."""
    data = path.read_bytes()
    start = data.index(b"options: ")
    return data[start:data.index(b"\x00", start)].decode("ascii", "replace")


def test_preset_reaches_the_encoder(carphone_y4m, tmp_path, capsys, decode_rgb):
    settings = {}
    for preset in (None, "ultrafast", "slow"):
        out = tmp_path / f"{preset}.mp4"
        rc, _, err = _cli(capsys, carphone_y4m, "-o", out, "--model", "grey", "-q",
                          *(["--preset", preset] if preset else []))
        assert rc == 0, err
        assert len(decode_rgb(out)) == 12
        settings[preset] = _x264_settings(out)
    # x264's presets differ in subpel refinement: medium (the default) 7, ultrafast 0, slow 8
    assert " subme=7 " in settings[None] and " crf=18.0 " in settings[None]
    assert " subme=0 " in settings["ultrafast"] and " subme=8 " in settings["slow"]


def test_pipeline_option_picks_the_engine(test_colorizers, carphone_y4m, tmp_path, capsys,
                                          decode_rgb):
    from colorvid.core.video.pipeline import auto_pipelined

    outputs, threads = {}, {}
    for mode in ("threads", "sequential", "auto"):
        out = tmp_path / f"{mode}.mp4"
        rc, _, err = _cli(capsys, carphone_y4m, "-o", out, "--model", "count-test", "-q",
                          "--pipeline", mode)
        assert rc == 0, err
        outputs[mode], threads[mode] = decode_rgb(out), test_colorizers[-1].threads
    assert threads["threads"] == {"colorvid-model"}
    assert threads["sequential"] == {threading.current_thread().name}
    auto = "threads" if auto_pipelined(torch.device("cpu")) else "sequential"
    assert threads["auto"] == threads[auto]
    for mode in ("sequential", "auto"):  # the same frames whichever engine ran them
        np.testing.assert_array_equal(outputs[mode], outputs["threads"])


def test_encoder_options_defaults_ranges_and_presets():
    from colorvid.core.video.decode import VideoError
    from colorvid.core.video.transcode import PRESETS, encoder_name, encoder_options

    assert encoder_options("libx264") == {"crf": "18"}
    assert encoder_options("libx265", 0, "veryslow") == {"crf": "0", "preset": "veryslow"}
    assert encoder_options("libvpx-vp9", 40) == {"crf": "40", "b": "0"}
    assert encoder_options("libsvtav1", preset="8") == {"crf": "30", "preset": "8"}
    assert encoder_options("mpeg4") == {}
    assert PRESETS["libx264"][0] == "ultrafast" and PRESETS["libsvtav1"][0] == "13"
    assert encoder_name("h264") == "libx264"
    for args, message in ((("libvpx-vp9", 64), "accepted 0-63"), (("libsvtav1", 0), "1-63"),
                          (("libsvtav1", None, "14"), "not a libsvtav1 preset"),
                          (("mpeg4", None, "fast"), "has no preset"),
                          (("rawvideo", 3), "has no crf")):
        with pytest.raises(VideoError, match=message):
            encoder_options(*args)
    with pytest.raises(VideoError, match="not an available video encoder"):
        encoder_name("nope")


def test_colorize_video_api_takes_the_preset(carphone_y4m, tmp_path, decode_rgb):
    import colorvid

    out = tmp_path / "api.mkv"
    report = colorvid.colorize_video(carphone_y4m, out, "grey", preset="veryfast", crf=23)
    assert report.frames_out == 12 and len(decode_rgb(out)) == 12
    settings = _x264_settings(out)
    assert " subme=2 " in settings and " crf=23.0 " in settings  # veryfast: subme 2


def test_overwrite(carphone_y4m, tmp_path, capsys, decode_rgb):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    rc, _, err = _cli(capsys, carphone_y4m, "-o", out, "--model", "grey", "-q")
    assert rc == 1 and out.read_bytes() == b"old" and "already exists" in err
    rc, _, err = _cli(capsys, carphone_y4m, "-o", out, "--model", "grey", "-q", "--overwrite")
    assert rc == 0, err
    assert len(decode_rgb(out)) == 12
    assert out.stat().st_mode & 0o777 != 0o600  # not the private mode of the temporary file


@pytest.fixture(scope="module")
def broken_inputs(carphone_clip, carphone_y4m, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("broken")
    # audio only: no video stream
    audio = d / "tone.m4a"
    with av.open(str(audio), "w") as c:
        s = c.add_stream("aac", rate=16000)
        t = np.arange(16000) / 16000
        frame = av.AudioFrame.from_ndarray(
            (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp",
            layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    # MJPEG whose 5th frame is damaged: the decoder rejects exactly that frame
    mjpeg = d / "damaged.mkv"
    with av.open(str(carphone_clip)) as inp, av.open(str(mjpeg), "w") as out:
        s = out.add_stream("mjpeg", rate=25)
        s.width, s.height, s.pix_fmt = 176, 144, "yuvj420p"
        for k, f in enumerate(inp.decode(video=0)):
            if k == 10:
                break
            f = f.reformat(format="yuvj420p")
            f.pts, f.time_base = k, Fraction(1, 25)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    data = bytearray(mjpeg.read_bytes())
    soi = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    data[soi[4]:soi[4] + 600] = bytes(600)
    mjpeg.write_bytes(bytes(data))
    # y4m whose 4th FRAME header is overwritten: the demuxer cannot go on
    y4m = bytearray(carphone_y4m.read_bytes())
    first = y4m.find(b"FRAME")
    pos = first + 3 * (176 * 144 * 3 // 2 + 6)
    y4m[pos:pos + 5] = b"XXXXX"
    bad_y4m = d / "damaged.y4m"
    bad_y4m.write_bytes(bytes(y4m))
    return {"audio": audio, "mjpeg": mjpeg, "y4m": bad_y4m}


ERRORS = {
    "missing input": (lambda b, c: ["nope.mp4"], [], "nope.mp4: no such file"),
    "no video stream": (lambda b, c: [b["audio"]], [], "no video stream"),
    "decode error": (lambda b, c: [b["mjpeg"]], [], "decode error at frame 4"),
    "unreadable container": (lambda b, c: [b["y4m"]], [], "unreadable data after frame 3"),
    "unknown model": (lambda b, c: [c], ["--model", "nope"], "unknown colorizer 'nope'"),
    "broken model": (lambda b, c: [c], ["--model", "broken-test"],
                     "cannot create colorizer 'broken-test'"),
    "no cuda": (lambda b, c: [c], ["--device", "cuda:7"], "CUDA"),
    "bad device": (lambda b, c: [c], ["--device", "gpu0"], "not a torch device"),
    "bad extension": (lambda b, c: [c], ["-o", "{tmp}/out.xyz"], "extension '.xyz'"),
    "no extension": (lambda b, c: [c], ["-o", "{tmp}/out"], "no extension"),
    "missing folder": (lambda b, c: [c], ["-o", "{tmp}/nope/out.mp4"], "does not exist"),
    "output is input": (lambda b, c: [c], ["-o", "{input}"], "output is the input"),
    "bad codec": (lambda b, c: [c], ["--codec", "nope"], "--codec 'nope'"),
    "crf without crf": (lambda b, c: [c], ["-o", "{tmp}/o.y4m", "--crf", "20"], "has no crf"),
    "crf out of range": (lambda b, c: [c], ["--crf", "52"], "accepted 0-51"),
    "bad preset": (lambda b, c: [c], ["--preset", "warp"], "not a libx264 preset"),
    "preset without preset": (lambda b, c: [c], ["-o", "{tmp}/o.webm", "--preset", "fast"],
                              "has no preset"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_are_one_line_with_non_zero_exit(case, broken_inputs, carphone_y4m, tmp_path,
                                                capsys, test_colorizers):
    make_input, extra, message = ERRORS[case]
    source = make_input(broken_inputs, carphone_y4m)
    extra = [a.replace("{tmp}", str(tmp_path)).replace("{input}", str(source[0])) for a in extra]
    before = sorted(carphone_y4m.parent.iterdir())
    output = [] if "-o" in extra else ["-o", tmp_path / "out.mp4"]
    model = [] if "--model" in extra else ["--model", "grey"]
    rc, stdout, err = _cli(capsys, *source, *output, *model,
                           *extra, "-q")
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("colorvid: ") and message in lines[0], err
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left
    assert sorted(carphone_y4m.parent.iterdir()) == before


def test_skip_errors_drops_only_the_damaged_frame(broken_inputs, tmp_path, capsys, decode_rgb):
    out = tmp_path / "o.mkv"
    rc, _, err = _cli(capsys, broken_inputs["mjpeg"], "-o", out, "--model", "grey", "-q",
                      "--skip-errors")
    assert rc == 0, err
    assert len(decode_rgb(out)) == 9
    assert "skipped 1 undecodable frame(s): 4" in err


def test_dtype_option_reaches_the_model_and_is_refused_where_it_has_none(carphone_y4m, tmp_path,
                                                                          capsys):
    from PIL import Image

    outputs = {}
    for dtype in ("float32", "bfloat16"):  # PNG frames: no codec between the two
        out = tmp_path / dtype
        rc, _, err = _cli(capsys, carphone_y4m, "-o", f"{out}/%05d.png", "--model", "zhang",
                          "-q", "--render-size", "64", "--dtype", dtype)
        assert rc == 0, err
        outputs[dtype] = np.stack([np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))]
                                  ).astype(np.float64)
    # The option reached the network (bf16 rounds differently) and the colours agree to a
    # fraction of a code.
    assert outputs["float32"].shape[0] > 0
    assert not np.array_equal(outputs["float32"], outputs["bfloat16"])
    assert np.abs(outputs["float32"] - outputs["bfloat16"]).mean() < 0.5
    rc, _, err = _cli(capsys, carphone_y4m, "-o", tmp_path / "grey.mp4", "--model", "grey",
                      "--dtype", "float32")
    assert rc == 1 and "--dtype: model 'grey' has no precision option (it takes device)" in err
    assert not (tmp_path / "grey.mp4").exists()
