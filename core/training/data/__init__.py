"""Training data: videos decoded with PyAV at a fixed frame rate, split by video, served as
Lab sequences with one random crop shared by every frame of a sequence.

>>> from colorvid.core.training.data import find_media, split_by_video, VideoSequenceDataset
>>> split = split_by_video(find_media(["clips/"]), seed=0)  # doctest: +SKIP
>>> ds = VideoSequenceDataset(split.train, seq_len=6, crop=224)  # doctest: +SKIP
>>> item = ds[0]; item["L"].shape, item["ab"].shape  # doctest: +SKIP
(torch.Size([6, 1, 224, 224]), torch.Size([6, 2, 224, 224]))

``sources`` finds and decodes media, ``sequences`` serves them as datasets, ``cache`` decodes a
corpus once and serves inference-scale crops from it. Part of the training layer: may import
what ``colorvid.core.training`` may (in practice the base modules of ``colorvid.core``).
"""

from colorvid.core.training.data.sequences import (
    ImageFolderDataset,
    SequenceSampler,
    VideoSequenceDataset,
    collate_sequences,
)
from colorvid.core.training.data.sources import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    MediaError,
    Split,
    decode_resampled,
    find_clips,
    find_media,
    load_image,
    split_by_video,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "ImageFolderDataset",
    "MediaError",
    "SequenceSampler",
    "Split",
    "VideoSequenceDataset",
    "collate_sequences",
    "decode_resampled",
    "find_clips",
    "find_media",
    "load_image",
    "split_by_video",
]
