"""Still images and image sequences: what ``colorvid colorize``/``eval``/``train`` accept besides
video files.

An *image sequence* is a folder of numbered frames (``00000.png``, ``shot_0001.tif``, ...) or a
printf pattern (``frames/%05d.png``); frames are ordered by number, not by name. A folder is a
sequence when every image in it has a number at the end of its name, and a folder of *stills*
(unrelated photos, colorized one by one with no temporal state) otherwise, or whenever the
caller asks for stills (``--stills``). Formats: png, jpg/jpeg, webp, tif/tiff, bmp; 8 or 16 bit.

Rules (one-line :class:`VideoError` otherwise): a folder must hold at least one image; the
frames of a sequence must all have one size; a gap in the numbering is a warning (the frames
present are used, in order), reported with the first missing number.

Reading applies a JPEG's (or TIFF's, WebP's) EXIF orientation, so a photo comes out the way
viewers show it. An animated WebP or PNG is a video (:func:`is_animated`); a multi-page TIFF is
refused rather than read as its first page.

Writing is atomic like video output: files go to a hidden temporary folder (or file) next to the
target and are moved into place when everything is written, never over a target that appeared
meanwhile unless ``overwrite`` (:mod:`colorvid.core.files`). An output pattern has exactly one
``%d`` field; a single image holds one frame.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from colorvid.core.files import (
    OutputError,
    check_output_folder,
    discard,
    publish,
    temp_beside,
    write_bytes,
)
from colorvid.core.video.decode import VideoError

__all__ = ["IMAGE_EXTS", "DEFAULT_FPS", "FPS_RANGE", "ImageSource", "ImageWriter", "check_pattern",
           "is_animated", "is_image_file", "is_pattern", "open_images", "read_image", "to_8bit",
           "write_image"]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
DEEP_EXTS = (".png", ".tif", ".tiff")  # formats that keep 16 bits
DEFAULT_FPS = 25.0
# Frame rates a sequence may be given: below 0.01 (one frame in 100 s) the rate's fraction
# rounds to 0 in the 1/1001 grid encoders use; above 1000 no player shows it.
FPS_RANGE = (0.01, 1000.0)
ACCEPTED = "png, jpg, webp, tif/tiff or bmp"
_PATTERN = re.compile(r"%(0?\d*)d")
_NUMBER = re.compile(r"(\d+)$")
_ANIMATED_EXTS = (".webp", ".png")  # PyAV decodes every frame of these (webp, apng)
_PAGED_EXTS = (".tif", ".tiff", ".webp")  # formats whose later frames cv2.imread would drop
# Decode with EXIF orientation applied (IMREAD_UNCHANGED would ignore it), any depth kept.
_READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def is_pattern(path: str | Path) -> bool:
    """True for a printf frame pattern such as ``frames/%05d.png``."""
    return bool(_PATTERN.search(Path(path).name))


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS and not is_pattern(path)


def _frame_count(path: str | Path) -> int:
    try:
        return int(cv2.imcount(str(path)))
    except cv2.error:
        return 1


def is_animated(path: str | Path) -> bool:
    """True for an existing animated WebP or PNG: read as a video (every frame), not a still."""
    p = Path(path)
    return p.suffix.lower() in _ANIMATED_EXTS and p.is_file() and _frame_count(p) > 1


def check_pattern(path: str | Path) -> None:
    """An output pattern needs exactly one integer field (``out/%05d.png``) and no other ``%``."""
    name = Path(path).name
    fields = _PATTERN.findall(name)
    rest = _PATTERN.sub("", name)
    if len(fields) != 1 or "%" in rest:
        raise VideoError(f"{path}: an output pattern takes exactly one frame-number field, such "
                         "as %05d, and no other %")


def read_image(path: str | Path) -> np.ndarray:
    """One image -> RGB ``(H, W, 3)`` uint8 or uint16 (16-bit files stay 16-bit), writable."""
    img = cv2.imread(str(path), _READ_FLAGS)
    if img is None:
        raise VideoError(f"{path}: cannot read as an image; accepted: {ACCEPTED}")
    if Path(path).suffix.lower() in _PAGED_EXTS and (pages := _frame_count(path)) > 1:
        raise VideoError(f"{path}: holds {pages} pages or frames; accepted: single images (split "
                         "a multi-page file into one file per page first)")
    if img.dtype not in (np.uint8, np.uint16):
        raise VideoError(f"{path}: {img.dtype} samples; accepted: 8 or 16 bit images")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def to_8bit(rgb: np.ndarray) -> np.ndarray:
    """A frame as uint8: 16-bit samples rounded to the nearest 8-bit level (v / 257), 8-bit kept."""
    if rgb.dtype == np.uint16:
        return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return rgb


def write_image(path: str | Path, rgb: np.ndarray, *, deep: bool = False) -> None:
    """Write RGB uint8 ``rgb``; ``deep`` writes 16 bits where the format has them (png, tif)."""
    p = Path(path)
    out = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    if deep and p.suffix.lower() in DEEP_EXTS and out.dtype == np.uint8:
        out = out.astype(np.uint16) * 257
    # Encoded in memory and written here: cv2.imwrite reports a full disk as success (a
    # truncated file) or as an unknown format; Python's write names the real cause.
    try:
        ok, data = cv2.imencode(p.suffix.lower(), out)
    except cv2.error:
        ok = False
    if not ok:
        raise VideoError(f"{p}: cannot write this image format; accepted: {ACCEPTED}")
    write_bytes(p, data.tobytes())


@dataclasses.dataclass
class ImageSource:
    """Frames found on disk: ``kind`` is ``"sequence"`` or ``"stills"``."""

    kind: str
    paths: list[Path]
    numbers: list[int | None]
    fps: float = DEFAULT_FPS
    warnings: list[str] = dataclasses.field(default_factory=list)
    pattern: str | None = None  # e.g. %05d, for output numbering
    skipped: list[int] = dataclasses.field(default_factory=list)  # numbers left out, unreadable

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def deep(self) -> bool:
        """True when the first readable image is 16 bit."""
        for p in self.paths:
            try:
                return read_image(p).dtype == np.uint16
            except VideoError:
                continue  # unreadable: frames() stops there or skips it (--skip-errors)
        return False

    def section(self, start: int | None, count: int | None) -> None:
        """Keep frames numbered ``start`` on (``count`` of them): ``--start``/``--duration``."""
        keep = [i for i, n in enumerate(self.numbers)
                if start is None or (n if n is not None else i) >= start]
        if count is not None:
            keep = keep[:count]
        if not keep:
            raise VideoError(f"--start {start}: no frame numbered {start} or later "
                             f"(frames {self.numbers[0]}..{self.numbers[-1]})")
        self.paths = [self.paths[i] for i in keep]
        self.numbers = [self.numbers[i] for i in keep]

    def frames(self, skip_errors: bool = False) -> Iterator[np.ndarray]:
        """The images in order; ``skip_errors`` leaves out unreadable ones (their indices in
        :attr:`skipped`) instead of stopping at the first."""
        size = None
        self.skipped = []
        for i, (p, number) in enumerate(list(zip(self.paths, self.numbers, strict=True))):
            try:
                img = read_image(p)
            except VideoError:
                if not skip_errors:
                    raise
                # Dropped from paths/numbers too, so that the k-th frame yielded is paths[k]
                # (the writer names its output from them).
                k = i - len(self.skipped)
                del self.paths[k], self.numbers[k]
                self.skipped.append(i if number is None else number)
                continue
            if self.kind == "sequence":
                if size is None:
                    size = img.shape[:2]
                elif img.shape[:2] != size:
                    raise VideoError(
                        f"{p}: {img.shape[1]}x{img.shape[0]}, but the sequence's frames are "
                        f"{size[1]}x{size[0]}; a sequence's frames must all have one size "
                        "(use --stills for unrelated images)")
            yield img


def _numbered(paths: list[Path]) -> list[int] | None:
    found = [_NUMBER.search(p.stem) for p in paths]
    return None if any(m is None for m in found) else [int(m.group(1)) for m in found]


def _check_gaps(src: ImageSource, where: str) -> None:
    nums = src.numbers
    for a, b in zip(nums, nums[1:], strict=False):
        if b == a:
            raise VideoError(f"{where}: two frames numbered {a}; a sequence needs one file per "
                             "number")
        if b != a + 1:
            src.warnings.append(f"{where}: gap in the numbering: frame {a + 1} is missing "
                                f"(next is {b}); continuing with the frames present")
            return


def open_images(src: str | Path, *, fps: float = DEFAULT_FPS, stills: bool = False
                ) -> ImageSource:
    """Find the frames of an image file, a folder or a printf pattern (see the module doc)."""
    p = Path(src)
    if is_pattern(p):
        folder = p.parent
        if not folder.is_dir():
            raise VideoError(f"{src}: folder {folder} does not exist")
        m = _PATTERN.search(p.name)
        head, tail = p.name[:m.start()], p.name[m.end():]
        rx = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + "$")
        found = sorted((int(mm.group(1)), f) for f in folder.iterdir()
                       if (mm := rx.match(f.name)))
        if not found:
            raise VideoError(f"{src}: no file matches the pattern; accepted: a pattern like "
                             "frames/%05d.png naming existing frames")
        out = ImageSource("sequence", [f for _, f in found], [n for n, _ in found], fps,
                          pattern=m.group(0))
        _check_gaps(out, str(src))
        return out
    if p.is_file():
        if not is_image_file(p):
            raise VideoError(f"{p}: not an image; accepted: {ACCEPTED}")
        return ImageSource("stills", [p], [None], fps)
    if not p.is_dir():
        raise VideoError(f"{p}: no such file or folder")
    files = [f for f in p.iterdir() if f.is_file() and is_image_file(f)]
    if not files:
        raise VideoError(f"{p}: folder holds no images; accepted: {ACCEPTED} files")
    numbers = None if stills else _numbered(files)
    if numbers is None:
        files.sort(key=lambda f: f.name)
        return ImageSource("stills", files, [None] * len(files), fps)
    order = sorted(range(len(files)), key=lambda i: (numbers[i], files[i].name))
    out = ImageSource("sequence", [files[i] for i in order], [numbers[i] for i in order], fps)
    digits = {len(_NUMBER.search(f.stem).group(1)) for f in files}
    out.pattern = f"%0{digits.pop()}d" if len(digits) == 1 else "%d"
    _check_gaps(out, str(p))
    return out


class ImageWriter:
    """Write colorized frames as an image, a numbered sequence (``out/%05d.png``) or a folder of
    stills (same names), atomically: nothing appears under the target until :meth:`finish`."""

    def __init__(self, dst: str | Path, *, overwrite: bool = False, deep: bool = False) -> None:
        self.dst = Path(dst)
        self.deep = deep
        self.pattern = is_pattern(self.dst)
        self.target = self.dst.parent if self.pattern else self.dst
        self.single = not self.pattern and is_image_file(self.dst)
        self.overwrite = overwrite
        if not self.pattern and not self.single and self.dst.suffix:
            raise VideoError(f"{dst}: not an image output; accepted: a {ACCEPTED} file, a "
                             "pattern like out/%05d.png, or a folder")
        if self.pattern:
            check_pattern(self.dst)
            if not is_image_file(self.dst.with_name(self.dst.name.replace("%", ""))):
                raise VideoError(f"{dst}: a pattern names image files; accepted: a pattern "
                                 f"ending in a {ACCEPTED} extension, like out/%05d.png")
        if self.target.exists() and not self.target.is_dir() and not self.single:
            raise VideoError(f"{self.target}: is a file, not a folder for the frames")
        check_output_folder(self.target)
        if self.target.exists():
            busy = not self.target.is_dir() or any(self.target.iterdir())
            if self.single or busy:
                if not overwrite:
                    raise VideoError(f"{self.target}: output already exists (use --overwrite "
                                     "to replace it)")
                if self.target.is_dir() and not self.single:
                    # --overwrite replaces the whole folder at the end: never one holding
                    # anything but frames (a user's notes, a subfolder, the source itself).
                    other = sorted(f.name for f in self.target.iterdir()
                                   if not (f.is_file() and is_image_file(f)))
                    if other:
                        raise VideoError(
                            f"{self.target}: --overwrite replaces a folder of frames only, and "
                            f"this one also holds {', '.join(other[:3])}"
                            f"{' ...' if len(other) > 3 else ''}; choose a new or empty folder")
        self.tmp: Path | None = temp_beside(self.target, folder=not self.single)
        self.written = 0

    def write(self, rgb: np.ndarray, *, number: int | None = None,
              name: str | None = None) -> None:
        """One frame: numbered (pattern output), named (folder output) or the single image."""
        if self.single:
            if self.written:
                raise VideoError(f"{self.dst}: one image holds one frame, and the input has "
                                 "more; write a pattern (out/%05d.png) or a folder, or choose "
                                 "one frame (--start, --duration)")
            path = self.tmp
        elif self.pattern:
            n = self.written if number is None else number
            path = self.tmp / (self.dst.name % n)
        else:
            path = self.tmp / (name or f"{self.written:05d}.png")
        write_image(path, rgb, deep=self.deep)
        self.written += 1

    def finish(self) -> None:
        """Move the written frames into place (see :func:`colorvid.core.files.publish`)."""
        tmp, self.tmp = self.tmp, None
        try:
            publish(tmp, self.target, overwrite=self.overwrite)
        except OutputError as e:
            raise VideoError(str(e)) from e

    def abort(self) -> None:
        discard(self.tmp)
        self.tmp = None

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()

