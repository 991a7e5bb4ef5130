"""colorvid eval's report folder, the VapourSynth filter and the Python API on values they cannot
use."""

from __future__ import annotations

import os

import numpy as np
import pytest

import colorvid


def _eval(cli, clip, out, *extra):
    return cli("eval", clip, "--model", "grey", "--metric", "psnr", "--no-clips",
               "--no-pictures", "--quiet", "--out", out, *extra)


def test_eval_refuses_an_existing_report_folder(cli, clip, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "ctt.sqlite").write_bytes(b"ratings")
    rc, err = _eval(cli, clip, out)
    assert rc == 2
    assert err.strip() == (f"colorvid: {out}: already exists and is not empty (use --overwrite "
                           "to replace its report files; other files in it are kept)")
    assert sorted(p.name for p in out.iterdir()) == ["ctt.sqlite"]
    rc, err = _eval(cli, clip, out, "--overwrite")
    assert rc == 0, err
    assert (out / "ctt.sqlite").read_bytes() == b"ratings"
    umask = os.umask(0)
    os.umask(umask)
    for name in ("report.md", "results.csv", "results.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_eval_into_a_file(cli, clip, tmp_path):
    rc, err = _eval(cli, clip, clip)
    assert rc == 2 and err.strip() == f"colorvid: {clip}: is a file; --out takes a report folder"


@pytest.mark.parametrize("value", [2.0, -0.5, 255.0])
def test_api_refuses_float_frames_outside_0_1(value):
    vc = colorvid.open_colorizer("grey")
    with pytest.raises(ValueError, match=r"float frames must hold values in \[0, 1\]"):
        vc.colorize(np.full((8, 8), value, np.float32))
    vc.colorize(np.full((8, 8), 1.0 + 1e-4, np.float32))  # rounding is clamped, not refused


def test_vapoursynth_refuses_a_frame_with_nan():
    vs = pytest.importorskip("vapoursynth")
    core = vs.core
    if not hasattr(core, "colorvid"):
        pytest.skip("the colorvid VapourSynth plugin is not loaded")
    plane = np.full((16, 16), 0.5, np.float32)
    plane[3, 3] = np.nan
    blank = core.std.BlankClip(format=vs.GRAYS, width=16, height=16, length=1, keep=False)

    def fill(n, f):
        out = f.copy()
        np.asarray(out[0])[...] = plane
        return out

    clip = core.std.ModifyFrame(blank, clips=blank, selector=fill)
    with pytest.raises(vs.Error, match="colorvid.Colorize: frame 0 holds NaN or infinity"):
        core.colorvid.Colorize(clip, model="grey").get_frame(0)
