"""Datasets of Lab frame sequences, and a resumable, distributed sampler that keeps them whole.

An item is one sequence of ``seq_len`` consecutive frames of one video (frames in order), all
cropped at the same place: ``{"L": (T, 1, c, c), "ab": (T, 2, c, c), "source": int}`` in Lab
units. Images are sequences of length 1. Crop positions depend only on (seed, epoch, item), so a
resumed run sees exactly the crops the uninterrupted run would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from colorvid.core.color import rgb_to_lab
from colorvid.core.training.data.sources import (
    MediaError,
    decode_resampled,
    load_image,
    warn_skipped,
)

__all__ = ["ImageFolderDataset", "SequenceSampler", "VideoSequenceDataset", "collate_sequences"]


def _crop_origin(h: int, w: int, crop: int, seed: int, epoch: int, index: int,
                 random_crop: bool) -> tuple[int, int]:
    if not random_crop:
        return (h - crop) // 2, (w - crop) // 2
    g = np.random.default_rng([seed, epoch, index])
    return int(g.integers(0, h - crop + 1)), int(g.integers(0, w - crop + 1))


def _to_lab(frames_uint8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    rgb = torch.tensor(frames_uint8).permute(0, 3, 1, 2).float() / 255.0
    lab = rgb_to_lab(rgb)  # (T, 3, c, c)
    return lab[:, :1].contiguous(), lab[:, 1:].contiguous()


class _CroppedFrames(Dataset):
    """Shared machinery: in-memory uint8 clips, the (clip, start) index and the crops."""

    def __init__(self, seq_len: int, crop: int, seed: int, random_crop: bool) -> None:
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if crop < 8:
            raise ValueError(f"crop must be >= 8 pixels, got {crop}")
        self.seq_len, self.crop, self.seed, self.random_crop = seq_len, crop, seed, random_crop
        self.epoch = 0
        self.clips: list[np.ndarray] = []  # (N, H, W, 3) uint8 each
        self.names: list[str] = []
        self.skipped: list[str] = []  # "path: reason" of every file left out
        self.items: list[tuple[int, int]] = []  # (clip, first frame)

    def set_epoch(self, epoch: int) -> None:
        """Crops are drawn anew each epoch (deterministically)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip_index, start = self.items[index]
        frames = self.clips[clip_index][start : start + self.seq_len]
        h, w = frames.shape[1:3]
        y, x = _crop_origin(h, w, self.crop, self.seed, self.epoch, index, self.random_crop)
        L, ab = _to_lab(frames[:, y : y + self.crop, x : x + self.crop])
        return {"L": L, "ab": ab, "source": torch.tensor(clip_index)}

    def frames_uint8(self) -> Iterator[np.ndarray]:
        """Every stored frame once (for the class prior), uint8 (H, W, 3)."""
        for clip in self.clips:
            yield from clip


class VideoSequenceDataset(_CroppedFrames):
    """Sequences of ``seq_len`` consecutive frames from videos decoded at ``fps``.

    Args:
        videos: video files (e.g. one split of :func:`~colorvid.core.training.data.split_by_video`).
        seq_len: frames per sequence (the paper: 6).
        crop: square crop side, the same for every frame of a sequence (224 Zhang, 256 Larsson).
        fps: frame rate the videos are resampled to (the paper: 25).
        short_side: videos are rescaled so their shorter side has this many pixels; default
            ``ceil(crop * 8 / 7)`` (256 for a 224 crop), leaving room for random crops.
        stride: first frames of consecutive sequences are this far apart (default ``seq_len``:
            non-overlapping sequences).
        max_frames: decode at most this many frames per video.
        random_crop: random crop positions (training); False gives centre crops (validation).
        seed: seed of the crop positions.

    Files that cannot be decoded, or are shorter than ``seq_len`` frames, are reported by name
    (a :class:`~colorvid.core.training.data.sources.MediaWarning`, and in ``skipped``) and left out.
    """

    def __init__(self, videos: Sequence[str | Path], *, seq_len: int = 6, crop: int = 224,
                 fps: float = 25.0, short_side: int | None = None, stride: int | None = None,
                 max_frames: int | None = None, random_crop: bool = True, seed: int = 0) -> None:
        super().__init__(seq_len, crop, seed, random_crop)
        short_side = short_side or math.ceil(crop * 8 / 7)
        if short_side < crop:
            raise ValueError(f"short_side ({short_side}) must be >= crop ({crop})")
        stride = stride or seq_len
        for path in videos:
            try:
                frames = list(decode_resampled(path, fps, short_side, max_frames))
                if len(frames) < seq_len:
                    raise MediaError(f"{path}: {len(frames)} frames, fewer than seq_len={seq_len}")
            except MediaError as e:
                self.skipped.append(str(e))
                warn_skipped(e)
                continue
            clip_index = len(self.clips)
            self.clips.append(np.stack(frames))
            self.names.append(str(path))
            self.items += [(clip_index, s) for s in range(0, len(frames) - seq_len + 1, stride)]


class ImageFolderDataset(_CroppedFrames):
    """Still images as sequences of one frame (``L`` is ``(1, 1, c, c)``)."""

    def __init__(self, images: Sequence[str | Path], *, crop: int = 224,
                 short_side: int | None = None, random_crop: bool = True, seed: int = 0) -> None:
        super().__init__(1, crop, seed, random_crop)
        short_side = short_side or math.ceil(crop * 8 / 7)
        for path in images:
            try:
                rgb = load_image(path, short_side)
            except MediaError as e:
                self.skipped.append(str(e))
                warn_skipped(e)
                continue
            self.items.append((len(self.clips), 0))
            self.clips.append(rgb[None])
            self.names.append(str(path))


def collate_sequences(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch: L ``(B, T, 1, c, c)``, ab ``(B, T, 2, c, c)``, source ``(B,)``."""
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


class SequenceSampler(Sampler[int]):
    """Item order for one rank: a seeded permutation per epoch, split across ranks.

    Each item is a whole sequence, so sequences never straddle ranks or batches. Every rank gets
    the same number of items (the permutation is padded by wrapping around), which keeps
    DistributedDataParallel's collective calls in step. ``start`` skips the first items of the
    epoch: how a resumed run continues at its data position.
    """

    def __init__(self, num_items: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1) -> None:
        if num_items < 1:
            raise ValueError("the dataset is empty: no sequence to sample")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got {rank} / {world_size}")
        self.num_items, self.seed, self.shuffle = num_items, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def per_rank(self) -> int:
        return math.ceil(self.num_items / self.world_size)

    def __len__(self) -> int:
        return self.per_rank() - self.start

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_items, generator=g).tolist()
        else:
            order = list(range(self.num_items))
        total = self.per_rank() * self.world_size
        order = (order * math.ceil(total / len(order)))[:total]
        mine = order[self.rank :: self.world_size]
        return iter(mine[self.start :])
