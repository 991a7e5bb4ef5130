"""Reference propagation on synthetic clips with exact ground truth: a pan, a moving object, a
cut between two references, references at the first, middle and last frames."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ab, ab_error, grey, picture

from colorvid.core.reference import ReferenceColorizer, ReferenceError
from colorvid.core.reference.evaluate import static_copy


def seen(t: int, n: int) -> tuple[slice, slice]:
    """The part of pan frame ``t`` that reference frame ``n`` shows (the pan moves 1 px down and
    2 px right a frame): the rest is new to the reference, and nothing can know its colour."""
    dy, dx = n - t, 2 * (n - t)
    return slice(max(0, dy), min(48, 48 + dy)), slice(max(0, dx), min(64, 64 + dx))


def seen_error(out: np.ndarray, truth: np.ndarray, t: int, n: int) -> float:
    ys, xs = seen(t, n)
    return ab_error(out[ys, xs], truth[ys, xs])


def colorize(frames, numbers, **options):
    rc = ReferenceColorizer({n: frames[n] for n in numbers}, **options)
    return list(rc.stream(grey(frames))), rc


def test_pan_follows_the_motion_and_beats_the_static_copy(pan):
    out, _ = colorize(pan, [0])
    static = static_copy(grey(pan), {0: pan[0]})
    errors = [seen_error(out[t], pan[t], t, 0) for t in range(1, len(pan))]
    static_errors = [seen_error(static[t], pan[t], t, 0) for t in range(1, len(pan))]
    # The static copy drifts off as the picture moves; the flow keeps the colour on it.
    assert np.mean(errors) < 0.4 * np.mean(static_errors), (errors, static_errors)
    assert max(errors) < 3.0, errors


@pytest.mark.parametrize("numbers", [[0], [6], [11], [0, 6, 11]],
                         ids=["first", "middle", "last", "first-middle-last"])
def test_references_at_first_middle_last_frames(pan, numbers):
    out, _ = colorize(pan, numbers)
    for n in numbers:  # a reference frame comes out with the reference's chroma
        assert ab_error(out[n], pan[n]) < 1.0
    nearest = {t: min(numbers, key=lambda n: abs(n - t)) for t in range(len(pan))}
    errors = [seen_error(out[t], pan[t], t, nearest[t]) for t in range(len(pan))
              if t not in numbers]
    assert np.mean(errors) < 2.0, errors
    if len(numbers) == 3:  # more references, closer to the truth over whole frames
        single, _ = colorize(pan, [0])
        assert np.mean([ab_error(out[t], pan[t]) for t in range(len(pan))]) < \
            np.mean([ab_error(single[t], pan[t]) for t in range(len(pan))])


def test_moving_object_keeps_its_colour(moving_object):
    out, _ = colorize(moving_object, [0])
    last, truth = out[-1], moving_object[-1]
    x = 4 + 3 * 9
    inside = (slice(19, 29), slice(x + 3, x + 13))  # the square's core, away from its edges
    hue = np.degrees(np.arctan2(ab(last)[1][inside], ab(last)[0][inside]))
    true_hue = np.degrees(np.arctan2(ab(truth)[1][inside], ab(truth)[0][inside]))
    assert np.median(np.abs((hue - true_hue + 180) % 360 - 180)) < 15
    # Where the square was at the reference the background shows again, in its own colour.
    bg = (slice(19, 29), slice(6, 16))
    assert np.abs(ab(last)[:, bg[0], bg[1]] - ab(truth)[:, bg[0], bg[1]]).mean() < 6


def test_cut_bounds_each_reference_to_its_shot(two_shots):
    out, rc = colorize(two_shots, [0, 6])
    assert rc.scene_cuts == [6]
    for t in range(12):
        assert ab_error(out[t], two_shots[t]) < 3.0, t
    # The second shot's references: nothing of the first shot's orange leaks in (b > 0).
    assert all(ab(out[t])[1].mean() < -10 for t in range(6, 12))


def test_shot_without_reference_falls_back(two_shots):
    out, _ = colorize(two_shots, [0])  # no fallback model: the second shot stays grey
    assert all(np.abs(ab(out[t])).max() < 1.0 for t in range(6, 12))
    out, _ = colorize(two_shots, [0], reach="video")  # colour by content from frame 0
    assert all(np.abs(ab(out[t])).mean() > 3.0 for t in range(6, 12))


def test_fallback_model_colours_a_shot_without_reference(two_shots):
    import colorvid

    fallback = colorvid.open_colorizer("grey")
    out, rc = colorize(two_shots, [6], fallback=fallback)
    assert rc.fallback_frames == 6  # the first shot, whole; the referenced one not at all
    assert all(np.abs(ab(out[t])).max() < 1.0 for t in range(6))  # grey's colour
    assert ab_error(out[6], two_shots[6]) < 1.0
    # The referenced shot is what it is without a fallback: the model never paints over it.
    alone, _ = colorize(two_shots, [6])
    assert all(np.array_equal(out[t], alone[t]) for t in range(6, 12))


def test_reference_of_another_size_is_resized(pan):
    big = np.repeat(np.repeat(pan[0], 3, axis=0), 3, axis=1)  # 144 x 192
    rc = ReferenceColorizer({0: big})
    out = list(rc.stream(grey(pan[:3])))
    assert out[0].shape == pan[0].shape
    assert ab_error(out[0], pan[0]) < 1.0


def test_only_the_reference_chroma_is_used(pan):
    """A colourist's grade of the brightness does not change the frame's luma."""
    from colorvid.core.frames import frames_to_l

    brighter = np.clip(pan[0].astype(int) + 40, 0, 255).astype(np.uint8)
    out = list(ReferenceColorizer({0: brighter}).stream(grey(pan[:2])))
    assert float((frames_to_l(out[0]) - frames_to_l(pan[0])).abs().max()) < 0.6


def test_errors_of_in_memory_references(pan):
    with pytest.raises(ReferenceError, match="grey"):
        ReferenceColorizer({0: grey(pan[:1])[0]})
    with pytest.raises(ReferenceError, match="frame 20: the input has 12 frame"):
        ReferenceColorizer({20: pan[0]}, frames=12)
    rc = ReferenceColorizer({20: pan[0]})  # count unknown up front: refused when it ends
    with pytest.raises(ReferenceError, match="frame 20"):
        list(rc.stream(grey(pan)))
    with pytest.raises(ReferenceError, match="colour image"):
        ReferenceColorizer({0: np.zeros((4, 4), np.uint8)})


def test_repeatable(pan):
    a, _ = colorize(pan, [0, 11])
    b, _ = colorize(pan, [0, 11])
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_picture_helper_is_coloured():
    assert np.abs(ab(picture((16, 16)))).mean() > 5

