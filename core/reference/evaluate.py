"""Score reference propagation against the truth: the clip's own colour frames as references.

For a colour clip, the true frames at chosen numbers become the references (``"shots"``: the
first frame of every shot, as a colourist would paint them; ``"first"``: frame 0 only); the clip
is greyed, colorized from those references, and scored with the registered metrics on every
other frame. Two rows per clip:

- ``static``: each reference's ab pasted unchanged onto every frame from it to the next
  reference (frames before the first take the first), no motion, no cuts: the baseline;
- ``propagated``: :class:`~colorvid.core.reference.colorizer.ReferenceColorizer`.

Plus, for the propagated row, ``reference_ab_error``: the mean Lab ab distance between the
output's reference frames and the references (the reference frames' own fidelity).

>>> rows = evaluate_clip("carphone.mp4", references="shots")  # doctest: +SKIP
>>> rows["propagated"]["psnr"] - rows["static"]["psnr"]      # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from colorvid.core.api import create_metric
from colorvid.core.color import rgb_to_lab
from colorvid.core.frames import frames_to_l, lab_to_frames, to_rgb_float
from colorvid.core.reference.colorizer import Reach, ReferenceColorizer
from colorvid.core.video.decode import read_frames
from colorvid.core.video.pipeline import VideoColorizer
from colorvid.core.video.scenecut import SceneCutDetector

__all__ = ["METRICS", "evaluate_clip", "reference_numbers", "score", "static_copy"]

METRICS: tuple[str, ...] = ("hue_accuracy", "psnr")
ReferenceChoice = Literal["shots", "first"]
_CHUNK = 16  # frames per metric call: bounds the float64 copies the metrics make


def reference_numbers(frames: Sequence[np.ndarray], choice: ReferenceChoice) -> list[int]:
    """Frame 0 and (``"shots"``) the first frame after each scene cut the detector finds."""
    if choice == "first":
        return [0]
    detector = SceneCutDetector()
    cuts = [t for t, frame in enumerate(frames) if bool(detector(frames_to_l(frame))[0])]
    return [0, *cuts]


def static_copy(frames: Sequence[np.ndarray], references: dict[int, np.ndarray]
                ) -> list[np.ndarray]:
    """The baseline: each frame's luma with the ab of the latest reference at or before it."""
    numbers = sorted(references)
    ab = {n: rgb_to_lab(to_rgb_float(references[n]))[:, 1:] for n in numbers}
    out = []
    for t, frame in enumerate(frames):
        src = max([n for n in numbers if n <= t], default=numbers[0])
        out.append(lab_to_frames(frames_to_l(frame), ab[src])[0])
    return out


def score(pred: Sequence[np.ndarray], truth: Sequence[np.ndarray], skip: set[int],
          metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Mean over the frames not in ``skip`` of each metric's per-frame value (NaN skipped)."""
    keep = [t for t in range(len(truth)) if t not in skip]
    out = {}
    for name in metrics:
        metric = create_metric(name)
        values = []
        for s in range(0, len(keep), _CHUNK):
            idx = keep[s:s + _CHUNK]
            p = to_rgb_float(np.stack([pred[t] for t in idx])).double()
            r = to_rgb_float(np.stack([truth[t] for t in idx])).double()
            values.append(metric.per_frame(p, r))
        v = torch.cat(values)
        v = v[~v.isnan()]
        out[name] = float(v.mean()) if v.numel() else float("nan")
    return out


def _ab_error(pred: np.ndarray, truth: np.ndarray) -> float:
    a = rgb_to_lab(to_rgb_float(pred).double())[0, 1:]
    b = rgb_to_lab(to_rgb_float(truth).double())[0, 1:]
    return float(torch.linalg.vector_norm(a - b, dim=0).mean())


def evaluate_clip(path: str | Path, *, references: ReferenceChoice = "shots",
                  fallback: VideoColorizer | None = None, reach: Reach = "shot",
                  metrics: Sequence[str] = METRICS, frames: int | None = None
                  ) -> dict[str, dict[str, float]]:
    """``{"static": {metric: value}, "propagated": {metric: value, "reference_ab_error": .,
    "frames_per_second": .}}`` for one colour clip (see the module doc)."""
    truth = [rgb for _, rgb in read_frames(path, count=frames)]
    numbers = reference_numbers(truth, references)
    refs = {n: truth[n] for n in numbers}
    skip = set(numbers)
    rc = ReferenceColorizer(refs, fallback, reach=reach, frames=len(truth))
    grey = [lab_to_frames(frames_to_l(f), torch.zeros(1, 2, 1, 1), upsample=True)[0]
            for f in truth]
    began = time.perf_counter()
    pred = list(rc.stream(grey))
    seconds = time.perf_counter() - began
    rows = {"static": score(static_copy(grey, refs), truth, skip, metrics),
            "propagated": score(pred, truth, skip, metrics)}
    rows["propagated"]["reference_ab_error"] = float(np.mean([_ab_error(pred[n], truth[n])
                                                              for n in numbers]))
    rows["propagated"]["frames_per_second"] = len(truth) / seconds
    rows["propagated"]["references"] = float(len(numbers))
    return rows
