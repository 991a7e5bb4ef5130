"""Colorize a video from reference frames: what ``colorvid colorize --reference`` runs.

:class:`ReferenceColorizer` has the frame-stream interface of
:class:`~colorvid.core.video.pipeline.VideoColorizer` (``stream``, ``colorize``,
``scene_cuts``), so every input and output ``colorvid colorize`` handles works with references
too. The stream is cut into shots with the same detector as the automatic models
(:mod:`colorvid.core.video.scenecut`); each shot is held in memory (its luma: 2.4 MB a frame at
1024 x 576) and then:

- a shot with references is propagated from them (:mod:`colorvid.core.reference.propagate`) at
  the work resolution (at most :data:`WORK_SIDE` pixels a side; chroma needs no more and the flow
  is 4x cheaper than at 1024 x 576); a pixel the flow loses takes the colour found by matching
  the shot's references by content. The automatic colorizer does not paint over a shot that has
  a reference: on the corpus's training clips, the colour carried or matched from the shot's own
  reference was nearer the truth than ``lrcn``'s at every level of the propagation's
  confidence, the least confident pixels included (docs/references.md);
- a reference frame itself gets the reference's own chroma at full resolution;
- a shot without a reference gets the automatic colorizer's colour (``fallback``), or, with
  ``reach="video"``, colour matched by content from every reference (DeepExemplar-style: one
  painted frame colours the shots that show the same place), blended with the automatic colour
  by the match confidence; with neither it stays grey.

>>> import colorvid
>>> from colorvid.core.reference import ReferenceColorizer, load_references
>>> rc = ReferenceColorizer(load_references("refs/"),              # doctest: +SKIP
...                         fallback=colorvid.open_colorizer("lrcn"))
>>> for rgb in rc.stream(frames): ...                               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from colorvid.core.color import rgb_to_lab
from colorvid.core.frames import frames_to_l, lab_to_frames, to_rgb_float
from colorvid.core.reference.folder import (
    ReferenceError,
    check_numbers,
    check_references,
    load_references,
)
from colorvid.core.reference.match import ReferenceMatcher
from colorvid.core.reference.propagate import propagate, shot_flow, shot_motion
from colorvid.core.video.pipeline import VideoColorizer
from colorvid.core.video.scenecut import DEFAULT_THRESHOLD, SceneCutDetector

__all__ = ["REACHES", "WORK_SIDE", "Reach", "ReferenceColorizer", "input_frames",
           "open_reference_colorizer", "reference_ab", "work_size"]

Reach = Literal["shot", "video"]
REACHES: tuple[str, ...] = ("shot", "video")
WORK_SIDE = 512  # the work resolution's longer side (see the module doc)
_OUT_BATCH = 8  # frames per Lab -> RGB call, as VideoColorizer's default batch


def work_size(height: int, width: int, side: int = WORK_SIDE) -> tuple[int, int]:
    """The work resolution ``(h, w)`` of a frame: the longer side at most ``side``, aspect kept."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def reference_ab(image: np.ndarray, size: tuple[int, int]) -> Tensor:
    """A reference image RGB ``(h, w, 3)`` -> its Lab ab ``(2, H, W)`` at the frame ``size``."""
    H, W = size
    if image.shape[:2] != (H, W):
        shrink = image.shape[0] > H or image.shape[1] > W
        image = cv2.resize(np.ascontiguousarray(image), (W, H),
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return rgb_to_lab(to_rgb_float(image))[0, 1:].contiguous()


def _shrink(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, C, h, w)`` by area averaging (identity at the same size)."""
    return x if tuple(x.shape[-2:]) == size else F.interpolate(x, size=size, mode="area")


class ReferenceColorizer:
    """Frames in, frames out, coloured from references (see the module doc).

    Args:
        references: ``{frame number: RGB image (H, W, 3)}``, numbers counted from 0 at the
            first frame of the stream (:func:`~colorvid.core.reference.folder.load_references`
            reads a folder); checked here (grey images are refused).
        fallback: the automatic colorizer for what propagation and matching cannot reach, and
            for shots without a reference (None: no automatic colour).
        reach: ``"shot"`` (default): a reference colours its own shot only; ``"video"``: shots
            without a reference are coloured by content matching from every reference.
        frames: the input's frame count when known: numbers past it are refused up front
            (otherwise when the stream ends, before the output is finished).
        scene_threshold: the scene-cut detector's threshold.
        flow_preset: the DIS preset (:data:`colorvid.core.video.flow.PRESETS`).
        work_side: the work resolution's longer side.
        match: colour lost pixels by content matching (False: only flow and the fallback).
    """

    def __init__(self, references: Mapping[int, np.ndarray], fallback: VideoColorizer | None
                 = None, *, reach: Reach = "shot", frames: int | None = None,
                 scene_threshold: float = DEFAULT_THRESHOLD, flow_preset: str = "medium",
                 work_side: int = WORK_SIDE, match: bool = True) -> None:
        if reach not in REACHES:
            raise ValueError(f"reach must be one of {', '.join(REACHES)}, got {reach!r}")
        if not isinstance(work_side, int) or work_side < 16:
            raise ValueError(f"work_side must be an integer >= 16, got {work_side!r}")
        self.references = check_references(references)
        if not self.references:
            raise ReferenceError("no reference given; accepted: {frame number: colour image}")
        if frames is not None:
            check_numbers(self.references, frames)
        self.fallback = fallback
        self.reach = reach
        self.work_side = work_side
        self.match = match
        self.detector = SceneCutDetector(scene_threshold)
        self.flow_preset = flow_preset
        self.scene_cuts: list[int] = []  # frame numbers where the last stream's shots begin
        self.fallback_frames = 0  # frames of the last stream that got automatic colour

    # The interface colorvid.core.video.media uses on a VideoColorizer.
    def colorize(self, frame: np.ndarray | Tensor) -> np.ndarray:
        """One frame, taken as frame 0 of a stream of one."""
        return next(iter(self.stream([frame])))

    def stream(self, frames: Iterable[np.ndarray | Tensor]) -> Iterator[np.ndarray]:
        """Colorize frames in order; yields RGB uint8 ``(H, W, 3)`` per frame, a shot at a time.

        Raises :class:`~colorvid.core.reference.folder.ReferenceError` when the stream ends
        before a reference's frame number (after yielding the frames: writers that finish only
        on success, as ``colorvid colorize``'s, then write nothing).
        """
        self.detector.reset()
        self.scene_cuts = []
        self.fallback_frames = 0
        shot: list[Tensor] = []
        start = count = 0
        for frame in frames:
            L = frames_to_l(frame, "cpu")  # (1, 1, H, W)
            if shot and L.shape != shot[0].shape:
                self.detector.reset()  # a new frame size starts a new shot, as in the models
                cut = True
            else:
                cut = bool(self.detector(L)[0]) and bool(shot)
            if cut:
                yield from self._shot(start, shot)
                self.scene_cuts.append(count)
                start, shot = count, []
            shot.append(L)
            count += 1
        if shot:
            yield from self._shot(start, shot)
        check_numbers(self.references, count)

    # -- one shot ---------------------------------------------------------------------------------
    def _shot(self, start: int, shot: list[Tensor]) -> Iterator[np.ndarray]:
        L_full = torch.cat(shot)  # (T, 1, H, W)
        T, _, H, W = L_full.shape
        size = work_size(H, W, self.work_side)
        L_work = _shrink(L_full, size)[:, 0].numpy()  # (T, h, w)
        own = {n - start: img for n, img in self.references.items() if start <= n < start + T}
        full_ab = {t: reference_ab(img, (H, W)) for t, img in own.items()}  # (2, H, W) each
        ab: np.ndarray | None = None
        conf: np.ndarray | None = None
        if own:
            refs = {t: _shrink(a[None], size)[0].numpy() for t, a in full_ab.items()}
            matchers = {t: ReferenceMatcher([(L_work[t], a)]) for t, a in refs.items()} \
                if self.match else None
            flow = shot_flow(*size, self.flow_preset)
            ab, conf = propagate(L_work, refs, shot_motion(L_work, flow), matchers, flow)
        elif self.reach == "video":
            ab, conf = self._matched_shot(L_work, size)
        ab, conf = self._with_fallback(L_full, ab, conf, size, set(own))
        for s in range(0, T, _OUT_BATCH):
            idx = range(s, min(T, s + _OUT_BATCH))
            plain = [t for t in idx if t not in full_ab]
            rgb: dict[int, np.ndarray] = {}
            if plain:
                chroma = torch.from_numpy(ab[plain]) if ab is not None \
                    else torch.zeros(len(plain), 2, 1, 1)
                rgb.update(zip(plain, lab_to_frames(L_full[plain], chroma, upsample=True),
                               strict=True))
            for t in idx:
                if t in full_ab:  # the reference's own chroma, at full resolution
                    rgb[t] = lab_to_frames(L_full[t:t + 1], full_ab[t][None])[0]
                yield rgb[t]

    def _matched_shot(self, L_work: np.ndarray, size: tuple[int, int]
                      ) -> tuple[np.ndarray, np.ndarray]:
        """A shot with no reference of its own, coloured by content from every reference: its
        first frame by matching, the rest propagated from it (matching where tracks are lost)."""
        pairs = []
        for img in self.references.values():
            lab = _shrink(rgb_to_lab(to_rgb_float(img)), size)[0].numpy()
            pairs.append((lab[0], lab[1:]))
        # Another shot: where things are in the frame says little, what they look like all.
        matcher = ReferenceMatcher(pairs, position_weight=0.0)
        first_ab, first_q = matcher(L_work[0])
        flow = shot_flow(*size, self.flow_preset)
        ab, conf = propagate(L_work, {0: first_ab}, shot_motion(L_work, flow),
                             {0: matcher} if self.match else None, flow)
        return ab, conf * first_q.mean()

    def _with_fallback(self, L_full: Tensor, ab: np.ndarray | None, conf: np.ndarray | None,
                       size: tuple[int, int], references: set[int]
                       ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The automatic colour for a shot without a reference: all of it, or (``reach="video"``,
        colour matched from other shots' references) blended with the matched colour by the
        match's confidence. A shot with references keeps their colour (see the module doc)."""
        if self.fallback is None or references:
            return ab, conf
        T = L_full.shape[0]
        self.fallback_frames += T
        grey = lab_to_frames(L_full, torch.zeros(T, 2, 1, 1), upsample=True)
        auto = np.stack(list(self.fallback.stream(grey)))  # (T, H, W, 3) uint8
        auto_ab = _shrink(rgb_to_lab(to_rgb_float(auto))[:, 1:], size).numpy()
        if ab is None or conf is None:
            return auto_ab.astype(np.float32), np.zeros((T, *size), np.float32)
        c = conf[:, None]
        return (c * ab + (1.0 - c) * auto_ab).astype(np.float32), conf


def input_frames(src: str) -> int | None:
    """The frame count of a video file or image sequence when it is known without decoding."""
    from colorvid.core.video.decode import probe
    from colorvid.core.video.images import open_images
    from colorvid.core.video.media import is_image_input

    try:
        if is_image_input(src):
            return len(open_images(src))
        return probe(src).frames or None
    except Exception:  # noqa: BLE001 - the decoder reports unreadable inputs properly later
        return None


def open_reference_colorizer(folder: str | Path, fallback: VideoColorizer | None = None, *,
                             src: str | None = None, reach: Reach = "shot",
                             **options: object) -> ReferenceColorizer:
    """:func:`~colorvid.core.reference.folder.load_references` + :class:`ReferenceColorizer`,
    with the frame numbers checked against ``src``'s frame count when it is known up front."""
    references = load_references(folder)
    frames = input_frames(src) if src is not None and src != "-" else None
    return ReferenceColorizer(references, fallback, reach=reach, frames=frames,
                              **options)  # type: ignore[arg-type]
