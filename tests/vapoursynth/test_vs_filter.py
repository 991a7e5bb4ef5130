"""core.colorvid.* on real VapourSynth: formats, luma kept exactly, colour maths, props."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vs_helpers import all_frames, frame_planes

from colorvid.core.color import rgb_to_lab
from colorvid.core.vapoursynth.color import grey_to_l

vs = pytest.importorskip("vapoursynth")

FORMATS = ["GRAY8", "YUV420P8", "YUV420P10", "RGB24", "RGBS"]
SOURCES = ["blank", "carphone"]


@pytest.fixture
def source(request, blank, carphone):
    return {"blank": blank, "carphone": carphone}


def _lab_of(clip) -> torch.Tensor:
    """Lab of every frame of a clip (converted to RGBS by zimg from the clip's own props)."""
    rgb = clip
    if clip.format.color_family != vs.RGB or clip.format.sample_type != vs.FLOAT:
        rgb = clip.resize.Point(format=vs.RGBS)
    planes = np.stack([np.stack(f) for f in all_frames(rgb)])  # (T, 3, H, W)
    return rgb_to_lab(torch.from_numpy(planes).double().clamp(0, 1))


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_grey_model_keeps_luma(core, source, kind, fmt):
    """The grey colorizer (ab = 0) returns the input's luma/L with neutral colour."""
    clip = source[kind](getattr(vs, fmt))
    out = core.colorvid.Colorize(clip, model="grey")
    assert out.num_frames == clip.num_frames and (out.width, out.height) == (clip.width,
                                                                             clip.height)
    ins, outs = all_frames(clip), all_frames(out)
    family = clip.format.color_family
    if family == vs.YUV:
        assert out.format.id == clip.format.id
        neutral = 128 << (clip.format.bits_per_sample - 8)
        for a, b in zip(ins, outs, strict=False):
            np.testing.assert_array_equal(b[0], a[0])  # luma untouched, bit for bit
            assert (b[1] == neutral).all() and (b[2] == neutral).all()
    elif family == vs.GRAY:
        assert out.format.id == vs.RGB24
        limited = clip.get_frame(0).props.get("_Range", 1) == 0  # zimg's GRAY is limited
        for a, b in zip(ins, outs, strict=False):
            assert np.array_equal(b[0], b[1]) and np.array_equal(b[1], b[2])
            # y -> L -> grey sRGB is the identity up to rounding (and range expansion)
            y = a[0].astype(float)
            expected = np.clip((y - 16) * 255 / 219, 0, 255) if limited else y
            assert np.abs(b[0] - expected).max() <= 1
    else:
        assert out.format.id == clip.format.id
        L_in, lab_out = _lab_of(clip)[:, 0], _lab_of(out)
        tol = 1e-3 if fmt == "RGBS" else 0.6  # float keeps L; 8-bit rounding moves it < 0.6
        assert (lab_out[:, 0] - L_in).abs().max() < tol
        assert lab_out[:, 1:].abs().max() < tol + 0.2


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_constant_colour_matches_zimg(core, source, test_colorizers, kind, fmt):
    """A constant-ab colorizer: zimg's own conversion of our output gives that ab back."""
    clip = source[kind](getattr(vs, fmt))
    out = core.colorvid.Colorize(clip, model="vs-const")
    lab = _lab_of(out)
    # Only pixels where (L, 25, -40) is inside the sRGB gamut can show it; chroma subsampling
    # and 8-bit rounding blur the rest a little.
    L = lab[:, 0]
    inside = (L > 35) & (L < 80)
    assert inside.float().mean() > 0.2
    a, b = lab[:, 1][inside], lab[:, 2][inside]
    assert (a - 25).abs().median() < 1.5 and (b + 40).abs().median() < 1.5
    if clip.format.color_family == vs.YUV:
        for x, y in zip(all_frames(clip), all_frames(out), strict=False):
            np.testing.assert_array_equal(y[0], x[0])


def test_gray_input_to_chosen_format(core, blank, test_colorizers):
    """GRAY -> the format asked for; YUV output shares the GRAY plane as its luma."""
    gray = blank(vs.GRAY8)
    yuv = core.colorvid.Colorize(gray, model="vs-const", format=vs.YUV420P8)
    assert yuv.format.id == vs.YUV420P8
    for x, y in zip(all_frames(gray), all_frames(yuv), strict=False):
        np.testing.assert_array_equal(y[0], x[0])
        assert y[1].mean() > 128 + 5 or y[2].mean() > 128 + 5 or y[1].mean() < 128 - 5
    rgbs = core.colorvid.Colorize(blank(vs.GRAYS), model="grey")
    assert rgbs.format.id == vs.RGBS
    g16 = core.colorvid.Colorize(blank(vs.GRAY16), model="grey", format=vs.RGB30)
    assert g16.format.id == vs.RGB30 and int(all_frames(g16)[0][0].max()) <= 1023


def test_numpy_colour_maths_matches_core_color():
    """The filter's numpy conversions agree with colorvid.core.color (the torch reference)."""
    from colorvid.core.color import lab_to_rgb as torch_lab_to_rgb
    from colorvid.core.vapoursynth.color import lab_to_rgb, rgb_to_l

    y = np.linspace(0, 1, 1001, dtype=np.float32)[None]
    ref = rgb_to_lab(torch.from_numpy(y).double().expand(3, 1, -1))[0]
    assert np.abs(grey_to_l(y) - ref.numpy()).max() < 1e-3
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0, 1, (3, 17, 23)).astype(np.float32)
    lab = rgb_to_lab(torch.from_numpy(rgb).double())
    assert np.abs(rgb_to_l(rgb) - lab[0].numpy()).max() < 1e-3
    L = rng.uniform(0, 100, (17, 23)).astype(np.float32)
    ab = rng.uniform(-100, 100, (2, 17, 23)).astype(np.float32)
    want = torch_lab_to_rgb(torch.from_numpy(np.concatenate((L[None], ab))).double())
    assert np.abs(lab_to_rgb(L, ab) - want.numpy()).max() < 1e-4


def test_full_range_yuv_and_props(core, blank, test_colorizers):
    """Frame props are copied; colour props describe the output; _Range is honoured."""
    clip = blank(vs.YUV444P8).std.SetFrameProps(MyProp=7, _Matrix=1, _Range=1)
    out = core.colorvid.Colorize(clip, model="grey")
    f = out.get_frame(0)
    assert f.props["MyProp"] == 7
    assert (f.props["_Matrix"], f.props["_Primaries"], int(f.props["_Range"])) == (1, 1, 1)
    full = frame_planes(f)
    assert (full[1] == 128).all() and (full[2] == 128).all()
    rgb = core.colorvid.Colorize(blank(vs.RGB24).std.SetFrameProps(MyProp=3), model="vs-const")
    p = rgb.get_frame(1).props
    assert p["MyProp"] == 3
    assert (p["_Matrix"], p["_Primaries"], p["_Transfer"], int(p["_Range"])) == (0, 1, 13, 1)
    # Limited vs full range input of the same picture: L read the same way, same colour.
    limited = blank(vs.YUV444P8)
    full_in = limited.resize.Point(format=vs.YUV444P8, range_in_s="limited", range_s="full")
    a = _lab_of(core.colorvid.Colorize(limited, model="vs-const"))
    b = _lab_of(core.colorvid.Colorize(full_in, model="vs-const"))
    assert (a - b).abs().median() < 1.0


def test_unspecified_matrix_guess(core, test_colorizers):
    """Untagged YUV: BT.601 for SD, BT.709 above 576 lines (what players assume)."""
    for height, expected in ((480, 6), (720, 1)):
        clip = core.std.BlankClip(format=vs.YUV420P8, width=64, height=height, length=1)
        out = core.colorvid.Colorize(clip, model="vs-const")
        assert out.get_frame(0).props["_Matrix"] == expected
