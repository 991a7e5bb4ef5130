"""Reference frames: colour images named by the frame number they show, checked before any work.

A reference folder holds one image per painted frame, named by its frame number (counted from 0,
the first frame of the input): ``000120.png``, ``120.jpg`` or ``ref_000120.tif`` all mean frame
120 (the number at the end of the name; the layout ``colorvid keyframes`` writes). Any format
``colorvid`` reads (png, jpg, webp, tif/tiff, bmp; 8 or 16 bit), any resolution: each reference
is resized to the frame, and only its chroma is used (the frame keeps its own luma, so a
colourist's grade of the brightness does not matter). Other files (notes, hidden files) are
ignored.

Every problem is one line (:class:`ReferenceError`) raised before anything is written: a name
without a frame number, two images for one frame, an unreadable image, a grey image (nothing to
propagate), a number past the end of the input.

>>> refs = load_references("refs/")  # doctest: +SKIP
>>> sorted(refs)                     # doctest: +SKIP
[0, 120]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from colorvid.core.color import rgb_to_lab
from colorvid.core.frames import to_rgb_float
from colorvid.core.video.decode import VideoError
from colorvid.core.video.images import ACCEPTED, IMAGE_EXTS, read_image
from colorvid.core.video.pipeline import ColorizeError

__all__ = [
    "GREY_CHROMA",
    "ReferenceError",
    "check_numbers",
    "check_references",
    "load_references",
    "reference_number",
]

# A reference whose 99th-percentile Lab chroma is below this is grey: it carries no colour to
# propagate (a keyframe handed back unpainted). 3 Lab units: JPEG and 4:2:0 chroma noise on a grey
# frame stays under 2; the palest painted skin is above 8.
GREY_CHROMA = 3.0
_NUMBER = re.compile(r"(\d+)$")


class ReferenceError(ColorizeError):
    """A reference the user must fix; the message says which file or frame and what is accepted."""


def reference_number(path: str | Path) -> int | None:
    """The frame number a reference file's name ends in (``ref_000120.png`` -> 120), else None."""
    m = _NUMBER.search(Path(path).stem)
    return int(m.group(1)) if m else None


def _chroma_p99(rgb: np.ndarray) -> float:
    x = to_rgb_float(rgb)
    # Every 4th pixel each way is plenty for a percentile and keeps a 4K reference cheap.
    ab = rgb_to_lab(x[..., ::4, ::4])[0, 1:]
    return float(torch.quantile(torch.hypot(ab[0], ab[1]).flatten(), 0.99))


def check_references(references: Mapping[int, np.ndarray], where: Mapping[int, str] | None = None
                     ) -> dict[int, np.ndarray]:
    """Check in-memory references ``{frame number: RGB (H, W, 3) uint8/uint16/float}``.

    ``where`` names each one in messages (a file path); by default ``frame N``. Returns a new
    dict sorted by frame number. Raises :class:`ReferenceError`.
    """
    out: dict[int, np.ndarray] = {}
    for number in sorted(references):
        image = references[number]
        name = (where or {}).get(number, f"reference for frame {number}")
        if not isinstance(number, (int, np.integer)) or isinstance(number, bool) or number < 0:
            raise ReferenceError(f"{name}: frame numbers must be integers >= 0, got {number!r}")
        if not isinstance(image, (np.ndarray, torch.Tensor)) or image.ndim != 3 \
                or image.shape[-1] != 3:
            shape = getattr(image, "shape", type(image).__name__)
            raise ReferenceError(f"{name}: a reference must be a colour image (H, W, 3), got "
                                 f"{shape}")
        array = image.numpy() if isinstance(image, torch.Tensor) else image
        if _chroma_p99(array) < GREY_CHROMA:
            raise ReferenceError(f"{name}: the reference is grey (no colour to carry); paint it "
                                 "or remove it")
        out[int(number)] = array
    return out


def load_references(folder: str | Path) -> dict[int, np.ndarray]:
    """Read a reference folder -> ``{frame number: RGB (H, W, 3)}``, checked (see the module doc).

    Raises :class:`ReferenceError` (one line) on the first problem.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ReferenceError(f"--reference {folder}: not a folder; accepted: a folder of colour "
                             "images named by frame number (000120.png)")
    paths: dict[int, Path] = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_EXTS \
                or not path.is_file():
            continue
        number = reference_number(path)
        if number is None:
            raise ReferenceError(f"{path}: a reference's name must end in its frame number "
                                 "(000120.png, ref_000120.jpg)")
        if number in paths:
            raise ReferenceError(f"two references for frame {number}: {paths[number].name} and "
                                 f"{path.name}; keep one")
        paths[number] = path
    if not paths:
        raise ReferenceError(f"--reference {folder}: no reference image in the folder; "
                             f"accepted: {ACCEPTED} files named by frame number (000120.png)")
    images: dict[int, np.ndarray] = {}
    for number, path in paths.items():
        try:
            images[number] = read_image(path)
        except VideoError as e:
            raise ReferenceError(str(e)) from e
    return check_references(images, {n: str(p) for n, p in paths.items()})


def check_numbers(numbers: list[int] | tuple[int, ...] | Mapping[int, object], frames: int
                  ) -> None:
    """Raise :class:`ReferenceError` when a reference's frame number is past the input's end."""
    late = [n for n in numbers if n >= frames]
    if late:
        raise ReferenceError(f"reference for frame {late[0]}: the input has {frames} frame(s) "
                             f"(numbers 0..{frames - 1}); nothing written")
