"""Reference propagation in a VapourSynth script: a clip, a clip of painted frames, their numbers.

    import vapoursynth as vs
    from colorvid.core.vapoursynth.reference import Reference
    refs = vs.core.imwri.Read(["000000.png", "000120.png"])      # or any RGB24 clip
    out = Reference(clip, refs, frames=[0, 120], model="lrcn")  # RGB24

A pure-Python function (not a ``core.colorvid`` one): propagation needs each shot whole, forward
and backward, so the work runs when the function is called, one pass over ``clip`` in order
through :class:`~colorvid.core.reference.colorizer.ReferenceColorizer` (the engine of
``colorvid colorize --reference``), and the returned clip serves its frames in any order from
the result (held in memory: 3 bytes a pixel a frame). Everything is checked before that pass;
every message starts with ``colorvid.Reference:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from colorvid.core.reference.colorizer import REACHES, ReferenceColorizer
from colorvid.core.reference.folder import ReferenceError
from colorvid.core.vapoursynth.filter import FilterError
from colorvid.core.video.pipeline import ColorizeError, open_colorizer

__all__ = ["Reference"]

WHO = "colorvid.Reference"


def _rgb(frame: Any) -> np.ndarray:
    """An RGB24 or GRAY8 VideoFrame -> RGB uint8 ``(H, W, 3)``."""
    planes = [np.asarray(frame[p]) for p in range(frame.format.num_planes)]
    return np.ascontiguousarray(np.stack(planes * 3 if len(planes) == 1 else planes, axis=-1))


def _check_format(vs: Any, clip: Any, name: str, formats: tuple[int, ...]) -> None:
    if not isinstance(clip, vs.VideoNode):
        raise FilterError(f"{WHO}: {name} must be a clip (vs.VideoNode), got "
                          f"{type(clip).__name__}")
    if clip.format is None or clip.format.id not in formats or not clip.width:
        accepted = " or ".join(vs.core.get_video_format(f).name for f in formats)
        raise FilterError(f"{WHO}: {name} must be {accepted} with constant format and size, "
                          f"got {clip.format.name if clip.format else 'variable format'}; "
                          "convert it with core.resize (e.g. format=vs.RGB24)")


def Reference(clip: Any, references: Any, *, frames: Sequence[int], model: str | None = None,
              reach: str = "shot", weights: str | None = None, device: str | None = None
              ) -> Any:
    """``clip`` (RGB24 or GRAY8, its luma is kept) coloured from ``references`` (RGB24, any
    size; frame i of it paints frame ``frames[i]`` of ``clip``) -> RGB24.

    ``model``: the automatic colorizer for what the references cannot reach (None: none);
    ``reach``: ``"shot"`` or ``"video"`` (see ``colorvid colorize --reference-reach``).
    Raises :class:`~colorvid.core.vapoursynth.filter.FilterError` with one line.
    """
    import vapoursynth as vs

    _check_format(vs, clip, "clip", (vs.RGB24.value, vs.GRAY8.value))
    _check_format(vs, references, "references", (vs.RGB24.value,))
    numbers = list(frames)
    if len(numbers) != references.num_frames:
        raise FilterError(f"{WHO}: frames lists {len(numbers)} number(s) for a references clip "
                          f"of {references.num_frames} frame(s); give one number per reference")
    if reach not in REACHES:
        raise FilterError(f"{WHO}: reach must be one of {', '.join(REACHES)}, got {reach!r}")
    seen: set[int] = set()
    for n in numbers:
        if not isinstance(n, int) or not 0 <= n < clip.num_frames:
            raise FilterError(f"{WHO}: frame number {n!r} is outside the clip (0.."
                              f"{clip.num_frames - 1})")
        if n in seen:
            raise FilterError(f"{WHO}: two references for frame {n}; keep one")
        seen.add(n)
    try:
        images = {n: _rgb(references.get_frame(i)) for i, n in enumerate(numbers)}
        fallback = None if model is None else open_colorizer(model, weights, device)
        rc = ReferenceColorizer(images, fallback, reach=reach,  # type: ignore[arg-type]
                                frames=clip.num_frames)
    except (ReferenceError, ColorizeError) as e:
        raise FilterError(f"{WHO}: {e}") from e
    out = list(rc.stream(_rgb(f) for f in clip.frames(close=True)))
    blank = vs.core.std.BlankClip(clip, format=vs.RGB24, keep=False)

    def fill(n: int, f: Any) -> Any:
        dst = f.copy()
        for p in range(3):
            np.asarray(dst[p])[...] = out[n][..., p]
        return dst

    return vs.core.std.ModifyFrame(blank, clips=blank, selector=fill)
