"""Carry references' chroma through a shot along the optical flow of its luma, both ways.

For one shot of ``T`` frames (luma at the work resolution) and references at some of them:

1. *Motion* (:func:`shot_motion`): DIS flow (:mod:`colorvid.core.video.flow`) between each pair
   of neighbours, both ways, and for each way a *keep* weight per pixel: how far the neighbour's
   warped value may stand in for the pixel's own. It is :func:`~colorvid.core.video.flow.
   flow_confidence` (forward-backward consistency times luma agreement) mapped through a ramp,
   ``clip((c - 0.2) / 0.4, 0, 1)``: a well-tracked pixel scores 0.8-0.9 there on real footage
   and must keep all its colour, or a chain of 30 frames would fade (0.85^30 = 0.008).
2. *Chains* from every reference, forward to the next reference (or the shot's end) and backward
   to the previous one: ``ab_t = keep * warp(ab_{t-1}) + (1 - keep) * match_t`` with the same
   update for the chain's confidence ``q`` (1 at the reference). ``match_t`` is the colour found
   by content in the chain's reference (:mod:`colorvid.core.reference.match`), computed only
   where a pixel lost its track this step (revealed, occluded or left the frame), and then
   carried on like the rest so that it does not flicker. Each chain also composes its flows
   back to the reference and samples the reference once where that track never broke (a chain
   of bilinear warps blurs and fades colour a little every frame), and, while that track covers
   less than 98% of the frame, tries a flow straight from the frame to the reference; each is
   used where the reference's luma at the sampled point agrees with the frame's.
3. *Blend*: between references ``r1 < t < r2`` the forward chain weighs ``(r2 - t) / (r2 - r1)``
   times its confidence and the backward one the rest; before the first and after the last
   reference of a shot, only one chain reaches. The result's confidence is the better chain's.

Scene cuts bound all of this: a shot is propagated on its own (:mod:`colorvid.core.reference.
colorizer` cuts the video).

>>> est = shot_flow(288, 512)                               # doctest: +SKIP
>>> motion = shot_motion(L, est)                             # doctest: +SKIP  L (T, h, w)
>>> ab, conf = propagate(L, {0: ab0}, motion, matchers, est)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from colorvid.core.reference.match import ReferenceMatcher
from colorvid.core.video.flow import FlowEstimator, flow_confidence, luma_confidence, warp

__all__ = ["KEEP_FULL", "KEEP_NONE", "ShotMotion", "keep_weight", "propagate", "shot_flow",
           "shot_motion"]

# The ramp from flow confidence to keep weight (see the module doc): at or below 0.2 a pixel is
# lost (occluded, revealed, off the frame), at or above 0.6 it is tracked.
KEEP_NONE = 0.2
KEEP_FULL = 0.6
# The flow straight from a frame to its reference (a third DIS call a frame) is estimated only
# while the composed track covers less than this share of the frame: on a still shot it adds
# nothing. Carphone from its first frame: 35.19 -> 36.32 dB with it (the track covers 30-55%).
LONG_RANGE_BELOW = 0.98


def shot_flow(height: int, width: int, preset: str = "medium") -> FlowEstimator:
    """A DIS estimator for frames of this size whose finest level keeps >= 144 rows or columns.

    DIS's presets stop at half resolution (finest scale 1), too coarse for small frames:
    carphone (176 x 144) from its first frame, medium preset: 34.86 dB at finest scale 1, 35.19
    at 0 (hue accuracy 0.945 -> 0.955). At 512 x 288 the rule gives the preset's own scale 1.
    """
    estimator = FlowEstimator(preset)  # type: ignore[arg-type]
    scale = int(np.clip(np.floor(np.log2(max(min(height, width), 1) / 144.0)), 0, 3))
    estimator._dis.setFinestScale(scale)
    return estimator


def keep_weight(confidence: np.ndarray) -> np.ndarray:
    """Flow confidence ``(h, w)`` in [0, 1] -> keep weight, ``clip((c - 0.2) / 0.4, 0, 1)``."""
    return np.clip((confidence - KEEP_NONE) / (KEEP_FULL - KEEP_NONE), 0.0, 1.0).astype(
        np.float32)


@dataclasses.dataclass
class ShotMotion:
    """Flows and keep weights between the neighbours of one shot.

    ``to_prev[t]`` is the flow from frame t to t-1 (to warp frame t-1's values onto t) and
    ``keep_prev[t]`` its keep weight; ``to_next[t]`` / ``keep_next[t]`` go from t to t+1.
    Entries with no neighbour are None.
    """

    to_prev: list[np.ndarray | None]
    keep_prev: list[np.ndarray | None]
    to_next: list[np.ndarray | None]
    keep_next: list[np.ndarray | None]


def shot_motion(L: np.ndarray, estimator: FlowEstimator) -> ShotMotion:
    """Luma ``(T, h, w)`` (Lab L) -> :class:`ShotMotion`: two DIS flows per neighbour pair."""
    T = L.shape[0]
    none: list = [None] * T
    motion = ShotMotion(list(none), list(none), list(none), list(none))
    for t in range(1, T):
        back, ahead = estimator(L[t], L[t - 1]), estimator(L[t - 1], L[t])
        motion.to_prev[t] = back
        motion.keep_prev[t] = keep_weight(flow_confidence(L[t], L[t - 1], back, ahead))
        motion.to_next[t - 1] = ahead
        motion.keep_next[t - 1] = keep_weight(flow_confidence(L[t - 1], L[t], ahead, back))
    return motion


def _chains(L: np.ndarray, references: Mapping[int, np.ndarray], order: range,
            flows: list[np.ndarray | None], keeps: list[np.ndarray | None],
            matchers: Mapping[int, ReferenceMatcher] | None,
            long_range: FlowEstimator | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One direction: (ab ``(T, 2, h, w)``, confidence ``(T, h, w)``, source reference ``(T,)``,
    -1 where no reference comes before in this direction)."""
    T, h, w = L.shape
    ab_out = np.zeros((T, 2, h, w), np.float32)
    q_out = np.zeros((T, h, w), np.float32)
    source = np.full(T, -1)
    ab = q = to_ref = direct = None
    ref = -1
    ref_planes = np.empty((3, h, w), np.float32)  # the reference's L and ab, warped together
    for t in order:
        if t in references:
            ref = t
            ab, q = references[t], np.ones((h, w), np.float32)
            to_ref, direct = np.zeros((2, h, w), np.float32), np.ones((h, w), np.float32)
            ref_planes = np.concatenate((L[t][None], references[t]))
        elif ab is not None:
            flow, keep = flows[t], keeps[t]
            # Everything carried moves with one warp (the sampling maps are built once): the
            # chain's colour and confidence, the direct track's weight and its flow to the
            # reference (channels ab, q, direct, to_ref).
            moved = warp(np.concatenate((ab, q[None], direct[None], to_ref)), flow)
            ab, q, direct = moved[:2], moved[2] * keep, moved[3] * keep
            to_ref = flow.transpose(2, 0, 1) + moved[4:]
            # Matched where the track is mostly lost; elsewhere the warped colour is the fill.
            lost = keep < 0.5
            matcher = None if matchers is None else matchers.get(ref)
            if matcher is not None and lost.any():
                match_ab, match_q = matcher(L[t], lost)
                # A poor match leaves the warped colour (a neighbour's) in place.
                fill = match_q * match_ab + (1.0 - match_q) * ab
                ab = keep * ab + (1.0 - keep) * fill
                q = q + (1.0 - keep) * match_q
            # The direct track: the flows composed back to the reference, which is sampled once
            # (a chain of bilinear warps blurs and fades the colour a little at every frame),
            # trusted where the track never broke and the reference's luma there agrees.
            sampled = warp(ref_planes, np.ascontiguousarray(to_ref.transpose(1, 2, 0)))
            agree = luma_confidence(np.abs(L[t] - sampled[0]))
            d = direct * agree
            ab = d * sampled[1:] + (1.0 - d) * ab
            if long_range is not None and (d > 0.5).mean() < LONG_RANGE_BELOW:
                jumped = warp(ref_planes, long_range(L[t], L[ref]))
                fit = luma_confidence(np.abs(L[t] - jumped[0]))
                better = np.clip(fit - np.maximum(d, keep * agree), 0.0, 1.0)
                ab = better * jumped[1:] + (1.0 - better) * ab
        else:
            continue
        ab_out[t], q_out[t], source[t] = ab, q, ref
    return ab_out, q_out, source


def propagate(L: np.ndarray, references: Mapping[int, np.ndarray], motion: ShotMotion,
              matchers: Mapping[int, ReferenceMatcher] | None = None,
              long_range: FlowEstimator | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Chroma for every frame of a shot from its references (see the module doc).

    Args:
        L: luma ``(T, h, w)`` in Lab L units at the work resolution.
        references: ``{frame index in the shot: ab (2, h, w)}``, at least one.
        motion: the shot's :func:`shot_motion`.
        matchers: ``{frame index: ReferenceMatcher}`` for the colour of lost pixels (None: a lost
            pixel keeps the warped colour of its edge, with confidence 0).
        long_range: the estimator of the flow straight to the reference (None: not tried).

    Returns:
        ``(ab (T, 2, h, w), confidence (T, h, w))``; reference frames have their ab and 1.
    """
    if not references:
        raise ValueError("propagate: at least one reference is needed")
    T = L.shape[0]
    ab_f, q_f, r_f = _chains(L, references, range(T), motion.to_prev, motion.keep_prev,
                             matchers, long_range)
    ab_b, q_b, r_b = _chains(L, references, range(T - 1, -1, -1), motion.to_next,
                             motion.keep_next, matchers, long_range)
    ab = np.empty_like(ab_f)
    conf = np.empty_like(q_f)
    for t in range(T):
        if r_b[t] < 0 or r_f[t] == t:
            ab[t], conf[t] = ab_f[t], q_f[t]
        elif r_f[t] < 0:
            ab[t], conf[t] = ab_b[t], q_b[t]
        else:
            ahead = (t - r_f[t]) / (r_b[t] - r_f[t])  # 0 at the earlier reference, 1 at the later
            w_f = (1.0 - ahead) * q_f[t] + 1e-3 * (1.0 - ahead)
            w_b = ahead * q_b[t] + 1e-3 * ahead
            ab[t] = (w_f * ab_f[t] + w_b * ab_b[t]) / (w_f + w_b)
            conf[t] = np.maximum(q_f[t], q_b[t])
    return ab, conf
