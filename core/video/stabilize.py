"""Flow-guided temporal stabilisation of any colorizer's chroma: flicker removal for models
that colour each frame on its own.

Per frame t, on a working grid (the frame area-shrunk to at most ``max_side`` pixels a side;
colorizers predict chroma at 256 px or less, so nothing of theirs is lost):

1. DIS optical flow between the input luma of t and t-1, both ways
   (:class:`colorvid.core.video.flow.FlowEstimator`);
2. the previous *stabilised* chroma ``S_{t-1}`` and its weight ``w_{t-1}`` warped onto frame t;
3. a confidence ``c`` per pixel (:func:`colorvid.core.video.flow.flow_confidence`, tolerant):
   forward-backward consistency times agreement of the warped luma, each 1 within its bound
   (Sundaram's, and the frame's luma noise) and falling off beyond. Occluded, uncovered and
   mismatched pixels get ``c ~ 0`` and take the model's new prediction ``A_t`` as it is;
4. a confidence-weighted running mean with decay ``s`` (the *strength*)::

       k   = s * c * warp(w_{t-1})           weight of the history at this pixel
       S_t = (k * warp(S_{t-1}) + A_t) / (k + 1)
       w_t = k + 1

   On a still, confident pixel ``w`` grows to ``1 / (1 - s)``, so the history's share is ``s``
   (0.95: 95% history, 5% new prediction); after a cut or an occlusion it starts at 1 and the
   first frames are a plain mean of what was seen (not 95% of the first frame).

The luma is never touched: the output is the input L with ``S_t`` as its chroma.

*Bidirectional* (the default where frames come from a file or a stream): the same pass also runs
backwards in time, and the two are merged counting ``A_t`` once::

    final_t = (w_f S_f + w_b S_b - A_t) / (w_f + w_b - 1)

a two-sided average with no lag (a one-way pass trails moving colour edges) that is as steady
on the first frames after a cut as on the last ones. The backward pass needs frames ahead:
they are taken in blocks of ``block`` frames plus ``lookahead`` more to warm the backward pass
up, so at most ``block + lookahead`` frames are held (their working-grid arrays and the caller's
payload, e.g. the full-size L), whatever the video's length; output is
``block + lookahead`` frames behind input. The flows both passes need are estimated once.

Both passes restart at scene cuts: no colour crosses a cut in either direction.

>>> import numpy as np
>>> stab = Stabilizer(StabilizeOptions(strength=0.85, bidirectional=False))
>>> L = np.full((48, 64), 50.0, np.float32)
>>> out = [stab.push(L, np.full((2, 12, 16), 10.0 + t, np.float32)) for t in range(3)]
>>> [len(o) for o in out]   # forward mode: each frame comes out as soon as it goes in
[1, 1, 1]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from colorvid.core.video.flow import (
    DEFAULT_PRESET,
    PRESETS,
    FlowEstimator,
    FlowPreset,
    flow_confidence,
    warp,
)

__all__ = [
    "DEFAULT_MAX_SIDE",
    "DEFAULT_STRENGTH",
    "MAX_STRENGTH",
    "StabilizeOptions",
    "Stabilizer",
    "stabilize_sequence",
    "stabilize_window",
    "to_working_grid",
    "working_size",
]

DEFAULT_STRENGTH = 0.95  # share of the history on a confident still pixel (measured: docs)
MAX_STRENGTH = 0.98  # 1 would never forget; 0.98 already averages ~50 frames
DEFAULT_MAX_SIDE = 320  # working grid: colorizers' chroma is 256 px or less; DIS medium 7 ms
DEFAULT_BLOCK = 16  # frames the backward pass hands out at once
DEFAULT_LOOKAHEAD = 16  # frames beyond a block that warm the backward pass up (w reaches 90%)


@dataclasses.dataclass(frozen=True)
class StabilizeOptions:
    """How :class:`Stabilizer` smooths chroma.

    Attributes:
        strength: share of the (warped) history on a confident still pixel, in [0, 0.98];
            0 passes the model's chroma through.
        bidirectional: also run backwards and merge (needs ``block + lookahead`` frames ahead);
            False: forward only, each frame out as soon as it is in.
        max_side: the working grid's longest side in pixels (flow and blending run there).
        preset: DIS preset (:data:`colorvid.core.video.flow.PRESETS`).
        block, lookahead: the bidirectional pass's frames handed out at once, and frames
            beyond them that warm the backward pass up.
    """

    strength: float = DEFAULT_STRENGTH
    bidirectional: bool = True
    max_side: int = DEFAULT_MAX_SIDE
    preset: FlowPreset = DEFAULT_PRESET
    block: int = DEFAULT_BLOCK
    lookahead: int = DEFAULT_LOOKAHEAD

    def __post_init__(self) -> None:
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= MAX_STRENGTH:
            raise ValueError(f"stabilize: strength must be a number from 0 to {MAX_STRENGTH} "
                             f"(share of the history; default {DEFAULT_STRENGTH}), got {s!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"stabilize: bidirectional must be True or False, got "
                             f"{self.bidirectional!r}")
        for key, low in (("max_side", 16), ("block", 1), ("lookahead", 0)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"stabilize: {key} must be an integer >= {low}, got {v!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"stabilize: preset must be one of {', '.join(PRESETS)}, got "
                             f"{self.preset!r}")

    @classmethod
    def coerce(cls, value: Any) -> StabilizeOptions | None:
        """``None``/``False`` -> None (off); ``True`` -> defaults; a number -> that strength;
        a :class:`StabilizeOptions` as it is. Anything else is a ``ValueError``."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, (int, float)):
            return cls(strength=float(value))
        raise ValueError(f"stabilize must be None, True, a strength from 0 to {MAX_STRENGTH} or "
                         f"StabilizeOptions, got {value!r}")


def working_size(height: int, width: int, max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """The working grid ``(h, w)``: the frame shrunk (aspect kept) so its longest side is at
    most ``max_side``; never enlarged."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclasses.dataclass
class _Frame:
    """One frame on the working grid, as the passes need it."""

    L: np.ndarray  # (h, w) float32, Lab L
    ab: np.ndarray  # (2, h, w) float32, the model's chroma
    cut: bool  # a new shot starts here: nothing is carried into it
    payload: Any  # the caller's (e.g. the full-size L), handed back with the output
    to_prev: np.ndarray | None = None  # flow frame -> previous frame (h, w, 2)
    from_prev: np.ndarray | None = None  # flow previous frame -> frame
    S: np.ndarray | None = None  # forward pass: stabilised chroma
    w: np.ndarray | None = None  # forward pass: its weight (h, w)


def _resize(x: np.ndarray, size: tuple[int, int], *, area: bool) -> np.ndarray:
    """(h, w) or (C, h, w) float32 -> ``size``; area averaging to shrink L, bilinear for ab."""
    if x.shape[-2:] == size:
        return np.ascontiguousarray(x, dtype=np.float32)
    shrink = x.shape[-2] >= size[0] and x.shape[-1] >= size[1]
    mode = cv2.INTER_AREA if area and shrink else cv2.INTER_LINEAR
    planes = x[None] if x.ndim == 2 else x
    out = np.stack([cv2.resize(np.ascontiguousarray(p, dtype=np.float32), size[::-1],
                               interpolation=mode) for p in planes])
    return out[0] if x.ndim == 2 else out


def to_working_grid(L: np.ndarray, ab: np.ndarray, max_side: int = DEFAULT_MAX_SIDE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """L ``(H, W)`` and ab ``(2, h, w)`` (any sizes) -> both on the working grid of L's size
    (L area-averaged, ab bilinear), float32."""
    size = working_size(*L.shape, max_side)
    return _resize(L, size, area=True), _resize(ab, size, area=False)


def stabilize_window(L: Sequence[np.ndarray], ab: Sequence[np.ndarray],
                     flows: Sequence[tuple[np.ndarray, np.ndarray] | None],
                     strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """The forward pass over a window of one shot, from a fresh start at its first frame:
    the stabilised chroma of its last frame. What a filter that must not depend on the order
    frames are requested in runs (frame n from frames n-k..n only).

    ``L[i]``, ``ab[i]``: frame i on the working grid (:func:`to_working_grid`); ``flows[i]``:
    ``(flow i -> i-1, flow i-1 -> i)`` (:meth:`FlowEstimator.pair`), None for i = 0.
    """
    if not (len(L) == len(ab) == len(flows)) or not len(L):
        raise ValueError(f"stabilize_window: L, ab and flows need one entry per frame (at least "
                         f"one), got {len(L)}, {len(ab)}, {len(flows)}")
    S, w = ab[0], np.ones(L[0].shape, np.float32)
    for i in range(1, len(L)):
        pair = flows[i]
        if pair is None:
            raise ValueError(f"stabilize_window: flows[{i}] is missing")
        S, w = (ab[i], np.ones_like(w)) if strength == 0 else _step(
            S, w, ab[i], L[i], L[i - 1], pair[0], pair[1], strength)
    return S


def _step(S_prev: np.ndarray, w_prev: np.ndarray, ab: np.ndarray, L: np.ndarray,
          L_prev: np.ndarray, flow: np.ndarray, reverse: np.ndarray,
          strength: float) -> tuple[np.ndarray, np.ndarray]:
    """One step of either pass: the history of the neighbour frame warped onto this one and
    blended with this frame's prediction ``ab`` (see the module doc)."""
    conf = flow_confidence(L, L_prev, flow, reverse, tolerant=True)
    k = np.float32(strength) * conf * warp(w_prev, flow)
    S = (k * warp(S_prev, flow) + ab) / (k + 1.0)
    return S.astype(np.float32), (k + 1.0).astype(np.float32)


class Stabilizer:
    """Stabilises a stream of frames' chroma; feed frames in order with :meth:`push`, then
    :meth:`flush` at the end. Not thread-safe.

    >>> stab = Stabilizer()              # bidirectional, strength 0.95
    >>> # for L, ab in frames: for payload, ab_stab in stab.push(L, ab, payload=...): ...
    >>> # for payload, ab_stab in stab.flush(): ...
    """

    def __init__(self, options: StabilizeOptions | None = None) -> None:
        self.options = options or StabilizeOptions()
        self.flow = FlowEstimator(self.options.preset)
        self._pending: list[_Frame] = []  # bidirectional: frames the backward pass still needs
        self._last: _Frame | None = None  # the frame before the next one

    @property
    def delay(self) -> int:
        """The most frames :meth:`push` holds before handing them out."""
        o = self.options
        return o.block + o.lookahead if o.bidirectional else 0

    def reset(self) -> list[tuple[Any, np.ndarray]]:
        """End the current sequence (a new video, or a new frame size): returns its frames
        still held, as :meth:`flush`."""
        return self.flush()

    def push(self, L: np.ndarray, ab: np.ndarray, *, cut: bool = False,
             payload: Any = None) -> list[tuple[Any, np.ndarray]]:
        """Add the next frame: ``L`` ``(H, W)`` Lab L at any size, ``ab`` ``(2, h, w)`` the
        model's chroma at any size; ``cut``: a new shot starts here.

        Returns the frames now ready, oldest first, as ``(payload, ab)`` with ``ab``
        ``(2, h', w')`` float32 on the working grid (upsample it onto the full-size L).
        """
        o = self.options
        if L.ndim != 2 or ab.ndim != 3 or ab.shape[0] != 2:
            raise ValueError(f"Stabilizer.push: L must be (H, W) and ab (2, h, w), got "
                             f"{tuple(L.shape)} and {tuple(ab.shape)}")
        size = working_size(*L.shape, o.max_side)
        f = _Frame(L=_resize(L, size, area=True), ab=_resize(ab, size, area=False), cut=cut,
                   payload=payload)
        last = self._last
        if last is not None and last.L.shape != size:
            out = self.flush()  # a new frame size is a new sequence
            last = None
        else:
            out = []
        f.cut = f.cut or last is None
        if f.cut or o.strength == 0:
            f.S, f.w = f.ab, np.ones(size, np.float32)
        else:
            f.to_prev, f.from_prev = self.flow.pair(f.L, last.L)
            f.S, f.w = _step(last.S, last.w, f.ab, f.L, last.L, f.to_prev, f.from_prev,
                             o.strength)
        self._last = f
        if not o.bidirectional:
            return out + [(f.payload, f.S)]
        self._pending.append(f)
        if len(self._pending) >= o.block + o.lookahead:
            out += self._backward(o.block)
        return out

    def flush(self) -> list[tuple[Any, np.ndarray]]:
        """Hand out every frame still held (the end of the video); the next push starts a
        new sequence."""
        out = self._backward(len(self._pending)) if self._pending else []
        self._pending = []
        self._last = None
        return out

    def _backward(self, count: int) -> list[tuple[Any, np.ndarray]]:
        """Run the backward pass over every pending frame, from the newest back to the oldest;
        merge and hand out the oldest ``count``."""
        frames = self._pending
        s = self.options.strength
        merged: list[np.ndarray] = [np.empty(0)] * count
        S_b = w_b = None
        for i in range(len(frames) - 1, -1, -1):
            f = frames[i]
            nxt = frames[i + 1] if i + 1 < len(frames) else None
            if nxt is None or nxt.cut or s == 0:
                S_b, w_b = f.ab, np.ones_like(f.w)
            else:  # the flows of the pair (f, nxt), estimated once by the forward pass
                S_b, w_b = _step(S_b, w_b, f.ab, f.L, nxt.L, nxt.from_prev, nxt.to_prev, s)
            if i < count:
                merged[i] = ((f.w * f.S + w_b * S_b - f.ab) / (f.w + w_b - 1.0)).astype(
                    np.float32)
        out = [(f.payload, m) for f, m in zip(frames[:count], merged, strict=True)]
        del frames[:count]
        return out


def stabilize_sequence(L: Sequence[np.ndarray] | np.ndarray, ab: Sequence[np.ndarray] | np.ndarray,
                       options: StabilizeOptions | float | None = None, *,
                       cuts: Sequence[bool] | None = None) -> Iterator[np.ndarray]:
    """Stabilise a whole sequence at once: ``L`` ``(T, H, W)``, ``ab`` ``(T, 2, h, w)`` ->
    stabilised ab per frame (working grid), in order. ``cuts[t]``: a new shot starts at t.

    >>> import numpy as np
    >>> L = np.full((5, 24, 32), 50.0, np.float32)
    >>> ab = np.random.default_rng(0).normal(0, 3, (5, 2, 24, 32)).astype(np.float32)
    >>> len(list(stabilize_sequence(L, ab)))
    5
    """
    opts = StabilizeOptions.coerce(options if options is not None else True)
    stab = Stabilizer(opts)
    if len(L) != len(ab) or (cuts is not None and len(cuts) != len(L)):
        raise ValueError(f"stabilize_sequence: L, ab (and cuts) need one entry per frame, got "
                         f"{len(L)}, {len(ab)}" + ("" if cuts is None else f", {len(cuts)}"))
    for t in range(len(L)):
        for _, out in stab.push(np.asarray(L[t]), np.asarray(ab[t]),
                                cut=bool(cuts[t]) if cuts is not None else False):
            yield out
    for _, out in stab.flush():
        yield out
