"""`colorvid colorize` as a separate process: y4m through pipes, vspipe, and interruption."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from colorvid.core.color import rgb_to_lab

_SCRIPT = Path(sys.executable).with_name("colorvid")
COLORVID = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "colorvid"]


def _l(frames: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    return rgb_to_lab(x)[:, 0]


def _y4m_frames(data: bytes) -> tuple[list[np.ndarray], object]:
    with av.open(io.BytesIO(data), format="yuv4mpegpipe") as c:
        rate = c.streams.video[0].average_rate
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], rate


def test_y4m_pipe_round_trip(carphone_y4m, decode_rgb):
    with open(carphone_y4m, "rb") as stdin:
        proc = subprocess.run([*COLORVID, "colorize", "-", "-o", "-", "--model", "grey"],
                              stdin=stdin, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.startswith(b"YUV4MPEG2 W176 H144 F30000:1001")
    frames, rate = _y4m_frames(proc.stdout)
    source = decode_rgb(carphone_y4m, "yuv4mpegpipe")
    assert len(frames) == len(source) == 12 and rate == Fraction(30000, 1001)
    assert (_l(frames) - _l(source)).abs().mean() < 1.0  # 4:2:0 round trip, L kept
    assert b"12 frames -> -" in proc.stderr  # progress and summary go to stderr only


def test_vspipe_into_colorvid(tmp_path):
    vspipe = shutil.which("vspipe", path=str(Path(sys.executable).parent)) or shutil.which("vspipe")
    if vspipe is None:
        pytest.skip("vspipe is not installed")
    # VSScript needs its runtime configuration; write it into a private config folder so the
    # user's own ~/.config stays untouched.
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    subprocess.run([sys.executable, "-m", "vapoursynth", "config"], env=env, check=True,
                   capture_output=True, timeout=60)
    script = tmp_path / "ramp.vpy"
    script.write_text(textwrap.dedent("""
        import vapoursynth as vs
        core = vs.core
        clips = [core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=1,
                                    fpsnum=24, fpsden=1, color=[40 + 30 * i, 128, 128])
                 for i in range(6)]
        core.std.Splice(clips).set_output()
    """))
    source = subprocess.run([vspipe, "-c", "y4m", str(script), "-"], env=env,
                            capture_output=True, timeout=60)
    assert source.returncode == 0, source.stderr.decode()
    proc = subprocess.run([*COLORVID, "colorize", "-", "-o", "-", "--model", "grey", "-q"],
                          input=source.stdout, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    out, rate = _y4m_frames(proc.stdout)
    ref, _ = _y4m_frames(source.stdout)
    assert len(out) == 6 and out[0].shape == (48, 64, 3) and rate == 24
    assert (_l(out) - _l(ref)).abs().max() < 1.0
    assert proc.stderr == b""  # -q: nothing at all on stderr


_SLOW_MAIN = textwrap.dedent("""
    import sys, time
    import colorvid
    from colorvid.core.cli import main
    from colorvid.core.interfaces import Colorizer

    class Slow(Colorizer):
        def __init__(self, **options):
            pass
        def predict_ab_lowres(self, L):
            time.sleep(0.15)  # a model slow enough to be interrupted mid-video
            return L.new_zeros((L.shape[0], 2, *L.shape[-2:]))

    class Plugin:
        @colorvid.hookimpl
        def register_colorizers(self, register):
            register("slow-test", Slow)

    colorvid.get_host().add_plugin(Plugin(), name="slow-test-plugin")
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
    ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_no_partial_output(sig, bunny_cut, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_MAIN, "colorize", str(bunny_cut), "-o",
         str(out_dir / "colour.mp4"), "--model", "slow-test", "--batch", "1", "--progress",
         "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # SIGINT as a terminal gives it, even when the suite runs as a background job (which
        # inherits SIGINT ignored; Python would keep it ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stderr:  # wait until frames are being encoded into the temp file
            if line.startswith("{") and json.loads(line)["frames"] >= 1:
                break
        assert [p.name.endswith(".part.mp4") for p in out_dir.iterdir()] == [True]
        proc.send_signal(sig)
        rest = proc.stderr.read()
        rc = proc.wait(timeout=60)
    finally:
        proc.kill()
    assert rc == 130, rest
    assert rest.strip().splitlines()[-1] == (
        f"colorvid: interrupted; {out_dir / 'colour.mp4'} was not written")
    assert list(out_dir.iterdir()) == []
