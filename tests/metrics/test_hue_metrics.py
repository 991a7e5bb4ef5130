"""hue_accuracy and chroma_ratio (design.md section 5), checked against frames built in Lab with
known hues and chromas, independently of the implementation's formula."""

from __future__ import annotations

import math

import pytest
import torch

import colorvid
from colorvid.core.color import lab_to_rgb


def _frame(hue_deg: float, chroma: float, L: float = 60.0, size: int = 8) -> torch.Tensor:
    """A flat (1, 3, size, size) RGB frame of one Lab colour (in gamut for the values used)."""
    a = chroma * math.cos(math.radians(hue_deg))
    b = chroma * math.sin(math.radians(hue_deg))
    lab = torch.tensor([L, a, b], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, size, size)
    return lab_to_rgb(lab.clone())


def _acc(pred, ref) -> float:
    return colorvid.create_metric("hue_accuracy").compute(pred, ref)


def _ratio(pred, ref) -> float:
    return colorvid.create_metric("chroma_ratio").compute(pred, ref)


def test_registered_with_direction():
    for name in ("hue_accuracy", "chroma_ratio"):
        assert name in colorvid.get_host().names("metric")
        assert colorvid.create_metric(name).higher_is_better


@pytest.mark.parametrize(("shift", "hit"), [(0, True), (20, True), (-25, True), (40, False),
                                            (180, False)])
def test_hue_within_30_degrees_counts(shift, hit):
    ref = _frame(130, 30)  # foliage green
    pred = _frame(130 + shift, 30)
    assert _acc(pred, ref) == pytest.approx(1.0 if hit else 0.0, abs=0.02)


def test_olive_grass_is_not_green():
    assert _acc(_frame(80, 30), _frame(130, 30)) == pytest.approx(0.0, abs=1e-9)


def test_grey_scores_zero_and_identity_one():
    ref = _frame(40, 35)
    grey = _frame(0, 0)
    assert _acc(grey, ref) == 0.0 and _ratio(grey, ref) == pytest.approx(0.0, abs=0.01)
    assert _acc(ref, ref) == pytest.approx(1.0)
    assert _ratio(ref, ref) == pytest.approx(1.0, abs=1e-6)


def test_faint_colour_with_the_right_hue_still_misses_below_chroma_5():
    assert _acc(_frame(40, 3), _frame(40, 35)) == 0.0


def test_chroma_ratio_is_the_ratio_of_means():
    assert _ratio(_frame(40, 15), _frame(40, 30)) == pytest.approx(0.5, abs=0.02)


def test_weighted_by_the_original_chroma_over_coloured_pixels_only():
    # left half: chroma 30, hue right; right half: chroma 15, hue wrong -> 30 / 45 = 2/3.
    ref = torch.cat([_frame(40, 30), _frame(40, 15)], dim=3)
    pred = torch.cat([_frame(40, 30), _frame(220, 15)], dim=3)
    assert _acc(pred, ref) == pytest.approx(2 / 3, abs=0.02)
    # pixels the original has as grey (chroma <= 10) are not judged at all
    ref2 = torch.cat([_frame(200, 40), _frame(0, 0)], dim=3)
    pred2 = torch.cat([_frame(200, 40), _frame(90, 50)], dim=3)
    assert _acc(pred2, ref2) == pytest.approx(1.0, abs=0.02)


def test_frames_without_colour_are_skipped_and_all_grey_is_nan():
    grey = _frame(0, 0)
    video_ref = torch.cat([grey, _frame(300, 30)])
    video_pred = torch.cat([grey, _frame(300, 30)])
    assert _acc(video_pred, video_ref) == pytest.approx(1.0)
    assert math.isnan(_acc(grey, grey))


def test_shape_errors_name_the_metric():
    with pytest.raises(ValueError, match="hue_accuracy: pred and ref shapes differ"):
        _acc(_frame(0, 30, size=8), _frame(0, 30, size=6))


def test_still_flicker_counts_colour_change_only_where_the_scene_is_still():
    m = colorvid.create_metric("still_flicker")
    assert m.name == "still_flicker" and not m.higher_is_better
    ref = torch.cat([_frame(40, 30)] * 3)  # a still scene
    steady = torch.cat([_frame(40, 20)] * 3)
    assert m.compute(steady, ref) == pytest.approx(0.0, abs=1e-9)
    flicker = torch.cat([_frame(40, 20), _frame(100, 20), _frame(40, 20)])
    value = m.compute(flicker, ref)
    # hue jumps 60 degrees at chroma 20: the chord is 20 Lab units, per 20 of chroma -> ~1
    assert value == pytest.approx(1.0, abs=0.1)
    # the same jumps where the original changes too are not flicker
    moving = torch.cat([_frame(40, 30), _frame(100, 30), _frame(40, 30)])
    assert math.isnan(m.compute(flicker, moving))
    # grey output has no colour to flicker: NaN, not a win
    assert math.isnan(m.compute(torch.cat([_frame(0, 0)] * 3), ref))


def _split(left: torch.Tensor, right: torch.Tensor, left_cols: int) -> torch.Tensor:
    """A frame whose first ``left_cols`` columns are ``left`` and the rest ``right``."""
    out = right.clone()
    out[..., :left_cols] = left[..., :left_cols]
    return out


def _sector(pred, ref) -> float:
    return colorvid.create_metric("hue_accuracy_sector").compute(pred, ref)


def test_sector_score_counts_each_hue_sector_equally():
    assert colorvid.create_metric("hue_accuracy_sector").higher_is_better
    # The original: 6 of 8 columns warm orange (hue 60 deg), 2 columns sky blue (hue 250).
    ref = _split(_frame(60, 40), _frame(250, 40), 6)
    tint = _frame(60, 40)  # one warm tint everywhere
    # hue_accuracy rewards the tint by area (0.75); the sector score sees one sector of two.
    assert _acc(tint, ref) == pytest.approx(0.75)
    assert _sector(tint, ref) == pytest.approx(0.5)
    assert _sector(ref, ref) == pytest.approx(1.0)
    assert _sector(_frame(0, 0), ref) == pytest.approx(0.0)  # grey


def test_sector_below_two_percent_of_the_chroma_is_not_counted():
    # 1 of 64 columns blue (1.6% of the chroma): only the warm sector counts.
    ref = _split(_frame(60, 40, size=64), _frame(250, 40, size=64), 63)
    assert _sector(_frame(60, 40, size=64), ref) == pytest.approx(1.0)
    # 2 of 64 (3.1%): it counts, and the tint misses it.
    ref = _split(_frame(60, 40, size=64), _frame(250, 40, size=64), 62)
    assert _sector(_frame(60, 40, size=64), ref) == pytest.approx(0.5)


def test_sector_score_is_nan_without_coloured_pixels():
    grey = _frame(0, 0)
    assert math.isnan(_sector(grey, grey))
