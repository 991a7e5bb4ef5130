"""Worn copies of colour clips (core/evaluation/worn.py): L softened and grained, colours kept."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from colorvid.core.color import rgb_to_lab
from colorvid.core.evaluation.worn import WornError, main, make_worn, wear_frame


def _frames(n: int = 6, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Sharp colour stripes that move right by 2 px a frame."""
    x = np.arange(w)
    out = []
    for k in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        band = ((x + 2 * k) // 8) % 2 == 0
        img[:, band] = (200, 60, 40)
        img[:, ~band] = (40, 120, 200)
        out.append(img)
    return out


def _clip(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv444p"
        vs.options = {"crf": "0"}
        for img in _frames():
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode(None))
    return path


def _lab(rgb: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)[0]


def test_wear_frame_softens_and_grains_l_and_keeps_the_colours():
    rgb = _frames(1)[0]
    g = torch.Generator().manual_seed(0)
    soft = wear_frame(rgb, g, scale=4.0, grain=0.0)
    grainy = wear_frame(rgb, g, scale=1.0, grain=5.0)
    a, s, n = _lab(rgb), _lab(soft), _lab(grainy)
    edges = lambda lab: float((lab[0, :, 1:] - lab[0, :, :-1]).abs().mean())  # noqa: E731
    assert edges(s) < 0.8 * edges(a)  # softer edges
    # grain: L differs by about the asked standard deviation; a and b far less
    diff = (n[0] - a[0])
    assert 3.0 < float(diff.std()) < 7.0
    assert float((n[1:] - a[1:]).abs().mean()) < 1.5
    # the same seed gives the same frame
    again = wear_frame(rgb, torch.Generator().manual_seed(0), scale=4.0, grain=0.0)
    assert np.array_equal(again, soft)
    with pytest.raises(WornError, match="uint8 RGB"):
        wear_frame(rgb.astype(np.float32), g)
    with pytest.raises(WornError, match="between 1 .none. and 8"):
        wear_frame(rgb, g, scale=0.5)


def test_make_worn_writes_every_frame_atomically_and_reproducibly(tmp_path):
    src = _clip(tmp_path / "src.mp4")
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    assert make_worn(src, a, seed=3) == 6
    assert make_worn(src, b, seed=3) == 6
    fa = [f.to_ndarray(format="rgb24") for f in av.open(str(a)).decode(video=0)]
    fb = [f.to_ndarray(format="rgb24") for f in av.open(str(b)).decode(video=0)]
    assert len(fa) == 6 and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    # grain is new in every frame: two frames' L differ beyond their motion
    orig = _frames()
    la = [_lab(x)[0] - _lab(o)[0] for x, o in zip(fa, orig, strict=True)]
    assert not torch.allclose(la[0], la[1], atol=0.5)
    # colours stay the original's (up to the codec and the softening at the stripe edges)
    ab_err = np.mean([float((_lab(x)[1:] - _lab(o)[1:]).abs().median()) for x, o in
                      zip(fa, orig, strict=True)])
    assert ab_err < 2.0
    assert not list(tmp_path.glob(".*.part"))


def test_bad_clips_leave_nothing_and_the_cli_says_why(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(WornError, match="cannot read it as a video"):
        make_worn(bad, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*.part"))
    folder = tmp_path / "clips"
    folder.mkdir()
    _clip(folder / "one.mp4")
    assert main([str(folder), "--out", str(tmp_path / "worn"), "--grain", "2"]) == 0
    assert (tmp_path / "worn" / "one.mp4").is_file()
    assert main([str(bad), "--out", str(tmp_path / "worn2")]) == 2
    assert "cannot read it as a video" in capsys.readouterr().err
