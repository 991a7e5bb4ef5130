"""A decoded training cache over a folder of colour photos and videos, and the dataset on it.

Decoding a 4K JPEG or an H.264 frame costs more than a training step of the tiny networks on
this CPU, so every source is decoded **once** into uint8 RGB arrays (``.npy`` files, read back
memory-mapped) at the scales the model trains at, and the training loop only crops:

    cache = build_cache(["../shared/corpus"], "runs/cache")     # decodes what is not cached yet
    data = CorpusDataset(cache, crop=176, seq_len=1, samples=4096)
    item = data[0]       # {"L": (1, 1, 176, 176), "ab": (1, 2, 176, 176), "shift": ..., ...}

Scales. Inference resizes the whole frame to the render size (256 x 256), so training crops are
cut from images whose *shorter side* is near 256: an object then covers the same number of
pixels in training as at inference (the old recipe trained on 147 px frames: 1.7x smaller
objects). Photos are stored at shorter sides ``PHOTO_SCALES`` (scale augmentation from 0.85x to
1.5x without resampling at run time); video frames at ``VIDEO_SCALE`` only.

Sampling. A sample picks a source with probability proportional to its area in megapixels,
capped at ``AREA_CAP_MP`` (per file, the 276 small GCompris pictures would be 2/3 of all samples;
uncapped, three 4K wallpapers would outweigh them all, though at training scale a 4K wallpaper
holds no more crops than a 1 MP photo), within each group (photos, live-action video, animation)
whose share of samples is set by ``mix``. Sources with almost no colour (under
``MIN_COLOURED`` of their pixels above chroma 5) are skipped: they teach only grey. A
``MANIFEST.tsv`` at a root is honoured: every file read is checked against its sha256, and files
whose kind says ``heldout`` are never used.

Sequences (``seq_len`` > 1, LRCN). From video: ``seq_len`` consecutive frames (25 fps), one
crop window for all. From photos: a synthetic camera pan, the crop window moving by a constant
whole number of 4-pixel steps per frame, so the flow between frames is known exactly, and on
the networks' 1/4-resolution grid it is a whole-cell shift (``shift`` in the item, in pixels;
NaN for real video, whose flow is unknown).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorvid.core.color import rgb_to_lab
from colorvid.core.evaluation.worn import soften_l
from colorvid.core.files import sha256_file
from colorvid.core.training.data.sources import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    MediaError,
    decode_resampled,
    warn_skipped,
)

__all__ = [
    "CACHE_VERSION",
    "CacheEntry",
    "CorpusDataset",
    "TrainingCache",
    "build_cache",
    "parse_mix",
    "read_manifest",
]

CACHE_VERSION = 1
# Shorter sides photos are cached at: 256 is the render size (the scale of inference); 224 and
# 384 give scale augmentation (objects 0.88x .. 1.5x their inference size).
PHOTO_SCALES: tuple[int, ...] = (224, 256, 320, 384)
VIDEO_SCALE = 256
# Video is cached as segments of consecutive frames, one segment every SEGMENT_EVERY_S seconds
# (whole films would not fit: Big Buck Bunny at 256 px is 5 GB; segments every 2 s are 1.2 GB).
SEGMENT_FRAMES = 12
SEGMENT_EVERY_S = 2.0
AREA_CAP_MP = 2.0
MIN_COLOURED = 0.02
# Default share of samples per group. Photos carry the natural colours; the live-action clips
# are few and pale; animation's colours are not nature's, so it is used mainly for motion.
DEFAULT_MIX = {"photo": 0.8, "video": 0.15, "animation": 0.05}
DEFAULT_SEQUENCE_MIX = {"photo": 0.5, "video": 0.3, "animation": 0.2}
PAN_STEP = 4  # pixels: one cell of the networks' 1/4-resolution output grid
GROUPS = ("photo", "video", "animation")


def parse_mix(text: str | dict[str, float] | None) -> dict[str, float] | None:
    """``"photo=0.5,video=0.4,animation=0.1"`` (or such a dict) -> the share of samples per
    group, checked; None stays None (the default mix). Groups left out get no samples; the
    shares need not sum to 1 (they are normalised over the groups a cache holds)."""
    if text is None:
        return None
    accepted = (f"accepted: GROUP=SHARE pairs separated by commas, GROUP one of "
                f"{', '.join(GROUPS)}, SHARE a number >= 0, at least one > 0 "
                f"(e.g. photo=0.5,video=0.4,animation=0.1)")
    if isinstance(text, dict):
        pairs = list(text.items())
    else:
        pairs = []
        for part in (p.strip() for p in str(text).split(",")):
            name, eq, value = part.partition("=")
            if not eq:
                raise ValueError(f"mix: {part!r} is not GROUP=SHARE; {accepted}")
            try:
                pairs.append((name.strip(), float(value)))
            except ValueError:
                raise ValueError(f"mix: the share of {name.strip()!r} is not a number "
                                 f"({value.strip()!r}); {accepted}") from None
    mix: dict[str, float] = {}
    for name, share in pairs:
        if name not in GROUPS:
            raise ValueError(f"mix: unknown group {name!r}; {accepted}")
        if name in mix:
            raise ValueError(f"mix: {name!r} is given twice; {accepted}")
        if not (isinstance(share, (int, float)) and np.isfinite(share) and share >= 0):
            raise ValueError(f"mix: the share of {name!r} must be a number >= 0, got {share!r}; "
                             f"{accepted}")
        mix[name] = float(share)
    if not any(v > 0 for v in mix.values()):
        raise ValueError(f"mix: no group has a share above 0; {accepted}")
    return mix


def read_manifest(root: Path) -> dict[str, dict[str, str]] | None:
    """``root/MANIFEST.tsv`` as {relative path: row}, or None when there is none."""
    path = root / "MANIFEST.tsv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}




def _group(path: Path, kind: str | None) -> str:
    if path.suffix.lower() in IMAGE_SUFFIXES or path.suffix.lower() == ".ppm":
        return "photo"
    if kind and "animation" in kind:
        return "animation"
    return "video"


@dataclasses.dataclass
class CacheEntry:
    """One decoded source: its arrays (``{scale: file}``), group, original size and weight."""

    source: str
    sha256: str
    group: str  # photo | video | animation
    width: int
    height: int
    files: dict[str, str]  # str(scale) -> npy file name (photos (H, W, 3); video (S, F, H, W, 3))
    coloured: float  # share of pixels with chroma > 5
    licence: str = ""
    package: str = ""

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


class TrainingCache:
    """The cache folder: ``index.json`` plus one ``.npy`` per (source, scale)."""

    def __init__(self, folder: str | os.PathLike[str], entries: list[CacheEntry],
                 skipped: list[str]) -> None:
        self.folder = Path(folder)
        self.entries = entries
        self.skipped = skipped
        self._arrays: dict[tuple[int, str], np.ndarray] = {}

    def array(self, index: int, scale: str) -> np.ndarray:
        key = (index, scale)
        if key not in self._arrays:
            self._arrays[key] = np.load(self.folder / self.entries[index].files[scale],
                                        mmap_mode="r")
        return self._arrays[key]

    def summary(self) -> dict[str, dict[str, float]]:
        """Per group: sources and megapixels (for the model card)."""
        out: dict[str, dict[str, float]] = {}
        for e in self.entries:
            g = out.setdefault(e.group, {"sources": 0, "megapixels": 0.0})
            g["sources"] += 1
            g["megapixels"] = round(g["megapixels"] + e.megapixels, 2)
        return out


def _resize_short(rgb: np.ndarray, short: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = short / min(h, w)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    if size == (w, h):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def _coloured_share(rgb: np.ndarray) -> float:
    small = _resize_short(rgb, 64) if min(rgb.shape[:2]) > 64 else rgb
    lab = rgb_to_lab(torch.from_numpy(np.array(small)).permute(2, 0, 1)[None]
                     .float() / 255.0)
    return float((lab[0, 1:].square().sum(0).sqrt() > 5.0).float().mean())


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


def _decode_video_segments(path: Path, fps: float, every_s: float, frames: int
                           ) -> np.ndarray:
    """Segments of ``frames`` consecutive frames at ``fps``, one every ``every_s`` seconds."""
    period = max(frames, round(every_s * fps))
    segments: list[np.ndarray] = []
    current: list[np.ndarray] = []
    for k, rgb in enumerate(decode_resampled(path, fps)):
        if k % period < frames:
            current.append(_resize_short(rgb, VIDEO_SCALE))
            if len(current) == frames:
                segments.append(np.stack(current))
                current = []
    if not segments:
        raise MediaError(f"{path}: fewer than {frames} frames")
    return np.stack(segments)  # (S, F, H, W, 3)


def _sources(roots: Sequence[str | os.PathLike[str]], exclude: Sequence[str]
             ) -> list[tuple[Path, dict[str, str] | None]]:
    found: list[tuple[Path, dict[str, str] | None]] = []
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES | {".ppm"}
    for root in map(Path, roots):
        if not root.exists():
            raise MediaError(f"{root}: no such file or folder")
        manifest = read_manifest(root) if root.is_dir() else None
        files = [root] if root.is_file() else sorted(
            f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
        for f in files:
            rel = f.relative_to(root).as_posix() if root.is_dir() else f.name
            if any(part in exclude for part in Path(rel).parts):
                continue
            row = None
            if manifest is not None:
                row = manifest.get(rel)
                if row is None:
                    warn_skipped(MediaError(f"{f}: not in {root / 'MANIFEST.tsv'}"))
                    continue
                if "heldout" in row.get("kind", ""):
                    continue  # validation footage: never trained on
            found.append((f, row))
    return found


def build_cache(
    roots: Sequence[str | os.PathLike[str]],
    folder: str | os.PathLike[str],
    *,
    exclude: Sequence[str] = ("heldout",),
    fps: float = 25.0,
    progress: bool = False,
) -> TrainingCache:
    """Decode every photo and video under ``roots`` into ``folder`` (skipping what is cached).

    A folder named in ``exclude`` (default ``heldout``) is never read. With a ``MANIFEST.tsv`` at
    a root, each file's sha256 must match it (a mismatch is an error: the corpus changed) and
    files whose kind contains ``heldout`` are skipped. Unreadable files are reported and skipped.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index_path = folder / "index.json"
    old: dict[str, dict] = {}
    if index_path.is_file():
        payload = json.loads(index_path.read_text())
        if payload.get("version") == CACHE_VERSION:
            old = {e["sha256"]: e for e in payload["entries"]}
    entries: list[CacheEntry] = []
    skipped: list[str] = []
    for n, (path, row) in enumerate(_sources(roots, exclude)):
        digest = sha256_file(path)
        if row is not None and row.get("sha256") and row["sha256"] != digest:
            raise MediaError(f"{path}: sha256 {digest[:12]}... does not match the MANIFEST "
                             f"({row['sha256'][:12]}...): the corpus changed; rebuild it")
        group = _group(path, row.get("kind") if row else None)
        cached = old.get(digest)
        if cached and all((folder / f).is_file() for f in cached["files"].values()):
            entries.append(CacheEntry(**{**cached, "source": str(path)}))
            continue
        if progress:
            print(f"cache: [{n + 1}] {path}", flush=True)
        try:
            entry = _decode(path, digest, group, folder, fps)
        except MediaError as e:
            skipped.append(str(e))
            warn_skipped(e)
            continue
        if row is not None:
            entry.licence, entry.package = row.get("licence", ""), row.get("package", "")
        entries.append(entry)
    payload = {"version": CACHE_VERSION, "entries": [dataclasses.asdict(e) for e in entries]}
    tmp = index_path.with_name(".index.json.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, index_path)
    return TrainingCache(folder, entries, skipped)


def _decode(path: Path, digest: str, group: str, folder: Path, fps: float) -> CacheEntry:
    stem = digest[:16]
    files: dict[str, str] = {}
    if group == "photo":
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as e:
            raise MediaError(f"{path}: cannot read image ({e})") from e
        h, w = rgb.shape[:2]
        coloured = _coloured_share(rgb)
        for scale in PHOTO_SCALES:
            name = f"{stem}-{scale}.npy"
            _save_npy(folder / name, _resize_short(rgb, scale))
            files[str(scale)] = name
    else:
        segments = _decode_video_segments(path, fps, SEGMENT_EVERY_S, SEGMENT_FRAMES)
        h, w = segments.shape[2:4]
        coloured = float(np.mean([_coloured_share(s[0]) for s in segments[:: max(
            1, len(segments) // 16)]]))
        name = f"{stem}-{VIDEO_SCALE}.npy"
        _save_npy(folder / name, segments)
        files[str(VIDEO_SCALE)] = name
    return CacheEntry(str(path), digest, group, int(w), int(h), files, round(coloured, 4))


DEGRADE_SCALE = (1.0, 3.0)  # softening: down-scale factor before scaling back up
DEGRADE_GRAIN = (0.0, 4.0)  # grain: standard deviation in L units (L is 0..100)


def degrade_l(L: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """``L`` (T, 1, H, W, 0..100) as worn footage shows it: softened by a bilinear down- and
    up-scale of a factor drawn from ``DEGRADE_SCALE`` (telecine, low-resolution transfers, VHS,
    upscaled SD video: the held-out carphone clip is 176x144 shown at 256) and given Gaussian
    grain of a standard deviation drawn from ``DEGRADE_GRAIN``, new in every frame as film grain
    is. One factor and one grain strength per sequence; all draws from ``rng`` (reproducible).
    """
    if L.dim() != 4 or L.shape[1] != 1:
        raise ValueError(f"degrade_l takes L as (T, 1, H, W), got {tuple(L.shape)}")
    t, _, h, w = L.shape
    factor = float(rng.uniform(*DEGRADE_SCALE))
    sigma = float(rng.uniform(*DEGRADE_GRAIN))
    L = soften_l(L, factor, min_side=4)
    if sigma > 0:
        grain = rng.standard_normal((t, 1, h, w), dtype=np.float32)
        L = L + torch.from_numpy(grain) * sigma
    return L.clamp(0.0, 100.0)


class CorpusDataset(torch.utils.data.Dataset):
    """Random crops (or sequences) drawn from a :class:`TrainingCache`.

    ``samples`` items per epoch; item ``i`` of epoch ``e`` depends only on (seed, e, i), so a
    resumed run sees what the uninterrupted run would have. Augmentation: horizontal flip, the
    cached scale, and a colour-neutral jitter of L only (contrast 0.8-1.2, brightness +-8: old
    film's exposure varies; its hues do not). With ``degrade`` > 0, that share of the training
    items also gets an L that looks like worn footage (:func:`degrade_l`: softened and grainy);
    the target colours stay the clean original's. ``holdout`` photos (every ``holdout``-th, by
    sha256 order) are left out of training and served centre-cropped when ``validation=True``.
    """

    def __init__(self, cache: TrainingCache, *, crop: int = 176, seq_len: int = 1,
                 samples: int = 4096, seed: int = 0, mix: dict[str, float] | None = None,
                 validation: bool = False, holdout: int = 20, max_pan: int = 3,
                 degrade: float = 0.0) -> None:
        if not 0.0 <= degrade <= 1.0:
            raise ValueError(f"degrade is the share of degraded training items, between 0 and 1; "
                             f"got {degrade}")
        if crop < 8 or crop > min(PHOTO_SCALES):
            raise ValueError(f"crop must be between 8 and {min(PHOTO_SCALES)} pixels, got {crop}")
        if seq_len < 1 or seq_len > SEGMENT_FRAMES:
            raise ValueError(f"seq_len must be between 1 and {SEGMENT_FRAMES}, got {seq_len}")
        self.cache, self.crop, self.seq_len, self.seed = cache, crop, seq_len, seed
        self.samples, self.validation, self.max_pan = samples, validation, max_pan
        self.degrade = degrade
        self.epoch = 0
        default = DEFAULT_MIX if seq_len == 1 else DEFAULT_SEQUENCE_MIX
        mix = dict(parse_mix(mix) or default)
        order = sorted(range(len(cache.entries)), key=lambda i: cache.entries[i].sha256)
        held = {i for k, i in enumerate(order)
                if cache.entries[i].group == "photo" and holdout and k % holdout == 0}
        self.skipped = [f"{cache.entries[i].source}: nearly grey ({cache.entries[i].coloured:.1%}"
                        " coloured pixels)" for i in order
                        if cache.entries[i].coloured < MIN_COLOURED]
        usable = [i for i in order if cache.entries[i].coloured >= MIN_COLOURED]
        if validation:
            self.indices = [i for i in usable if i in held]
            self.weights = np.full(len(self.indices), 1.0 / max(1, len(self.indices)))
        else:
            self.indices = [i for i in usable if i not in held]
            groups = {g: [i for i in self.indices if cache.entries[i].group == g] for g in mix}
            present = {g: v for g, v in mix.items() if groups[g] and v > 0}
            if not present:
                raise MediaError("the training cache holds no usable source (photos or video)")
            total = sum(present.values())
            weights = {}
            for g, share in present.items():
                area = np.array([min(cache.entries[i].megapixels, AREA_CAP_MP) for i in groups[g]])
                for i, a in zip(groups[g], area / area.sum() * share / total, strict=True):
                    weights[i] = a
            self.indices = [i for i in self.indices if i in weights]
            self.weights = np.array([weights[i] for i in self.indices])
        self.cumulative = np.cumsum(self.weights)
        self.names = [cache.entries[i].source for i in self.indices]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices) if self.validation else self.samples

    def frames_uint8(self) -> Iterator[np.ndarray]:
        """One frame per photo and per video segment at the render scale (the class prior)."""
        for i in self.indices:
            e = self.cache.entries[i]
            if e.group == "photo":
                yield np.asarray(self.cache.array(i, str(VIDEO_SCALE)))
            else:
                for segment in self.cache.array(i, str(VIDEO_SCALE)):
                    yield np.asarray(segment[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        g = np.random.default_rng([self.seed, self.epoch, index, 7])
        if self.validation:
            pick = index
        else:
            pick = int(np.searchsorted(self.cumulative, g.random() * self.cumulative[-1],
                                       side="right"))
            pick = min(pick, len(self.indices) - 1)
        entry_index = self.indices[pick]
        entry = self.cache.entries[entry_index]
        c, t = self.crop, self.seq_len
        shift = np.full(2, np.nan, dtype=np.float32)
        if entry.group == "photo":
            scale = str(VIDEO_SCALE) if self.validation else str(
                PHOTO_SCALES[int(g.integers(len(PHOTO_SCALES)))])
            image = self.cache.array(entry_index, scale)
            h, w = image.shape[:2]
            if self.validation:
                vy, vx = 0, 0
            else:
                # a pan that fits: |v| * (t - 1) * PAN_STEP + c <= side
                reach_y = (h - c) // (PAN_STEP * max(1, t - 1))
                reach_x = (w - c) // (PAN_STEP * max(1, t - 1))
                vy = int(g.integers(-min(self.max_pan, reach_y), min(self.max_pan, reach_y) + 1)) \
                    if t > 1 else 0
                vx = int(g.integers(-min(self.max_pan, reach_x), min(self.max_pan, reach_x) + 1)) \
                    if t > 1 else 0
            span_y, span_x = abs(vy) * PAN_STEP * (t - 1), abs(vx) * PAN_STEP * (t - 1)
            if self.validation:
                y0, x0 = (h - c) // 2, (w - c) // 2
            else:
                y0 = int(g.integers(0, h - c - span_y + 1)) + (span_y if vy < 0 else 0)
                x0 = int(g.integers(0, w - c - span_x + 1)) + (span_x if vx < 0 else 0)
            frames = np.stack([image[y0 + k * vy * PAN_STEP: y0 + k * vy * PAN_STEP + c,
                                     x0 + k * vx * PAN_STEP: x0 + k * vx * PAN_STEP + c]
                               for k in range(t)])
            shift[:] = (vy * PAN_STEP, vx * PAN_STEP)
        else:
            segments = self.cache.array(entry_index, str(VIDEO_SCALE))
            s = int(g.integers(len(segments)))
            f0 = int(g.integers(0, segments.shape[1] - t + 1))
            h, w = segments.shape[2:4]
            y0, x0 = int(g.integers(0, h - c + 1)), int(g.integers(0, w - c + 1))
            frames = np.asarray(segments[s, f0: f0 + t, y0: y0 + c, x0: x0 + c])
        if not self.validation and g.random() < 0.5:
            frames = frames[:, :, ::-1]
            shift[1] = -shift[1]
        rgb = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 255.0  # a copy: mmap
        lab = rgb_to_lab(rgb)  # (T, 3, c, c)
        L = lab[:, :1]
        if not self.validation:
            contrast, brightness = g.uniform(0.8, 1.2), g.uniform(-8.0, 8.0)
            L = ((L - 50.0) * contrast + 50.0 + brightness).clamp(0.0, 100.0)
            # drawn only when asked, so that runs without it see the crops they always did
            if self.degrade > 0 and g.random() < self.degrade:
                L = degrade_l(L, g)
        return {"L": L.contiguous(), "ab": lab[:, 1:].contiguous(),
                "source": torch.tensor(entry_index), "shift": torch.from_numpy(shift)}

