"""The VapourSynth path: ``Reference(clip, references, frames=[...])`` in a real core."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ab_error, grey

from colorvid.core.vapoursynth.filter import FilterError

vs = pytest.importorskip("vapoursynth")


def rgb_clip(frames: list[np.ndarray]):
    blank = vs.core.std.BlankClip(format=vs.RGB24, width=frames[0].shape[1],
                                  height=frames[0].shape[0], length=len(frames), keep=False)

    def fill(n, f):
        out = f.copy()
        for p in range(3):
            np.asarray(out[p])[...] = frames[n][..., p]
        return out

    return vs.core.std.ModifyFrame(blank, clips=blank, selector=fill)


def frames_of(clip) -> list[np.ndarray]:
    return [np.stack([np.asarray(f[p]) for p in range(3)], axis=-1)
            for f in clip.frames(close=True)]


def test_reference_clip_colours_each_shot(two_shots):
    from colorvid.core.vapoursynth.reference import Reference

    clip = rgb_clip(grey(two_shots))
    refs = rgb_clip([two_shots[0], two_shots[6]])
    out = Reference(clip, refs, frames=[0, 6])
    assert out.format.id == vs.RGB24 and out.num_frames == 12
    got = frames_of(out)
    assert ab_error(got[0], two_shots[0]) < 1.0 and ab_error(got[6], two_shots[6]) < 1.0
    assert np.mean([ab_error(g, t) for g, t in zip(got, two_shots, strict=True)]) < 3.0
    # Any order of requests gives the same frames.
    assert np.array_equal(np.asarray(out.get_frame(9)[1]), got[9][..., 1])


@pytest.mark.parametrize("args, message", [
    ({"frames": [0]}, "frames lists 1 number(s) for a references clip of 2"),
    ({"frames": [0, 40]}, "frame number 40 is outside the clip"),
    ({"frames": [6, 6]}, "two references for frame 6"),
    ({"frames": [0, 6], "reach": "film"}, "reach must be one of"),
])
def test_reference_errors(two_shots, args, message):
    from colorvid.core.vapoursynth.reference import Reference

    clip = rgb_clip(grey(two_shots))
    refs = rgb_clip([two_shots[0], two_shots[6]])
    with pytest.raises(FilterError, match="^colorvid.Reference: " + re.escape(message)):
        Reference(clip, refs, **args)


def test_reference_refuses_grey_and_wrong_formats(two_shots):
    from colorvid.core.vapoursynth.reference import Reference

    clip = rgb_clip(grey(two_shots))
    with pytest.raises(FilterError, match="^colorvid.Reference: .*grey"):
        Reference(clip, rgb_clip(grey(two_shots[:1])), frames=[0])
    yuv = vs.core.resize.Bicubic(clip, format=vs.YUV420P8, matrix_s="709")
    with pytest.raises(FilterError, match="^colorvid.Reference: clip must be RGB24 or Gray8"):
        Reference(yuv, rgb_clip(two_shots[:1]), frames=[0])
