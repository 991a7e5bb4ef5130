"""Dense optical flow on luma, backward warping, and how far a warped pixel can be trusted.

What the temporal stabiliser (:mod:`colorvid.core.video.stabilize`) and reference propagation
build on: OpenCV's DIS flow (Kroeger et al., "Fast optical flow using dense inverse search",
ECCV 2016) on the CPU, ``cv2.remap`` for warping, and two checks of each warped pixel.

Convention, as :func:`colorvid.plugins.metrics_temporal.farneback_flow`: a flow ``F`` (H, W, 2)
estimated from ``src`` to ``dst`` says where each pixel of ``src`` is found in ``dst``,
``src(x) ~ dst(x + F(x))``, in pixels (x then y). To bring something of frame t-1 onto frame t,
estimate ``F = flow(L_t, L_{t-1})`` and :func:`warp` frame t-1's array by it.

Confidence of a warped pixel, from two independent checks:

- forward-backward consistency (Sundaram et al., ECCV 2010): following ``F`` and then the reverse
  flow ``R`` must come back to the start, ``|F(x) + R(x + F(x))|^2 <= 0.01 (|F|^2 + |R|^2) + 0.5``
  (the bound ``colorvid``'s ``warp_error`` metric uses to mask occlusions). It fails where a pixel
  is occluded or uncovered, where the flow is unreliable, and where it leaves the frame;
- the luma warp error ``|L_t(x) - L_{t-1}(x + F(x))|``: the flow can be consistent both ways and
  still wrong (untextured areas, a new object with the background's motion); the pixel's own
  luma must agree. Its scale follows the frame's noise (the median error, within bounds), so
  grain or compression noise does not read as motion.

Both give a soft weight in [0, 1] (:func:`consistency_confidence`, :func:`luma_confidence`);
:func:`flow_confidence` multiplies them.

Presets (``FlowEstimator(preset=...)``): mean luma error after warping frame t-1 onto t (8-bit
codes, 9 pairs per clip; "none" is without flow) and time per flow, frames area-shrunk to 320
pixels on the long side, on the 2-core machine:

    clip (source size)       none   ultrafast        fast            medium
    carphone (176x144)       5.13   2.93  0.3 ms    2.91  0.5 ms    2.61  2.4 ms
    cityCC0 (720x405)        8.65   4.44  0.9 ms    4.68  1.5 ms    4.09  6.7 ms
    single_face (640x360)    2.35   1.27  0.8 ms    1.20  1.3 ms    1.11  6.1 ms
    tree.avi (320x240)       4.52   4.70  1.0 ms    4.53  1.7 ms    4.35  7.4 ms
    vtest.avi (768x576)      2.29   1.38  1.0 ms    1.33  1.6 ms    0.95  7.6 ms

``medium`` is the default: 7-30% closer than the others on every clip, and on small frames with
one moving object (the tests' 72x96 clips) ``ultrafast`` and ``fast`` spread the object's motion
over the still background, which ``medium`` does not. Its 7 ms at 320 px is small next to a
colorizer's frame (``ultrafast`` is there for larger working sizes: 49 ms against 220 ms a flow
at 1280x720). Rerun: ``python benches/bench_stabilize.py --flow-presets``.

>>> import numpy as np
>>> est = FlowEstimator()
>>> a = np.random.default_rng(0).uniform(0, 100, (48, 64)).astype(np.float32)
>>> flow = est(a, a)            # (48, 64, 2) float32: a still frame has no motion
>>> warp(a, flow).shape
(48, 64)
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "FlowEstimator",
    "consistency_confidence",
    "flow_confidence",
    "forward_backward_error",
    "inside_frame",
    "luma_confidence",
    "luma_warp_error",
    "resize_flow",
    "to_luma8",
    "warp",
]

FlowPreset = Literal["ultrafast", "fast", "medium"]
PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
DEFAULT_PRESET: FlowPreset = "medium"  # the measurements in the module doc
# Sundaram et al.'s bound: |F + R|^2 <= 0.01 (|F|^2 + |R|^2) + 0.5 (pixels squared).
FB_RELATIVE = 0.01
FB_ABSOLUTE = 0.5
# Luma error scale in Lab L units: the median error times LUMA_NOISE_FACTOR, kept within
# [LUMA_SCALE_MIN, LUMA_SCALE_MAX]. 2 L units is about 5 codes of 8-bit luma: below that a
# difference is noise or compression on most footage; 8 caps the scale on frames where much of
# the picture moved (the median is then motion, not noise).
LUMA_SCALE_MIN = 2.0
LUMA_SCALE_MAX = 8.0
LUMA_NOISE_FACTOR = 2.0

EDGE_MARGIN = 0.5  # pixels beyond the edge pixels' centres that still count as inside

ArrayLike = np.ndarray | torch.Tensor


def _numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}")
    return x


def _plane(x: ArrayLike, who: str) -> np.ndarray:
    """(H, W), (1, H, W) or (1, 1, H, W) -> (H, W)."""
    a = _numpy(x)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{who}: expected one plane (H, W), got shape {tuple(_numpy(x).shape)}")
    return a


def _as_l(x: ArrayLike) -> np.ndarray:
    """A plane in Lab L units: uint8 luma is scaled by 1 / 2.55, floats are taken as L."""
    a = _plane(x, "flow_confidence")
    return a.astype(np.float32) / np.float32(2.55) if a.dtype == np.uint8 else a


def to_luma8(L: ArrayLike) -> np.ndarray:
    """Lab L (float, 0..100) or 8-bit luma (uint8) -> contiguous uint8 ``(H, W)`` for DIS.

    Float input is read as Lab L and scaled by 2.55 (0..100 -> 0..255); uint8 passes through.
    """
    a = _plane(L, "to_luma8")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"to_luma8: expected Lab L as floats (0..100) or uint8 luma, got "
                        f"{a.dtype}")
    return np.ascontiguousarray(np.clip(a * 2.55 + 0.5, 0, 255).astype(np.uint8))


class FlowEstimator:
    """DIS optical flow between two luma planes; one object serves a whole video.

    Not thread-safe (the OpenCV object keeps scratch buffers): one estimator per thread.

    Args:
        preset: ``medium`` (default), ``fast`` or ``ultrafast`` (see the module doc).

    >>> import numpy as np
    >>> est = FlowEstimator("medium")
    >>> cur = np.zeros((32, 32), np.uint8)
    >>> fwd, bwd = est.pair(cur, cur)   # both directions at once
    """

    def __init__(self, preset: FlowPreset = DEFAULT_PRESET) -> None:
        if preset not in PRESETS:
            raise ValueError(f"FlowEstimator: preset must be one of {', '.join(PRESETS)}, got "
                             f"{preset!r}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def __call__(self, src: ArrayLike, dst: ArrayLike) -> np.ndarray:
        """Flow ``(H, W, 2)`` float32 with ``src(x) ~ dst(x + F(x))``.

        ``src`` and ``dst``: Lab L (float, 0..100) or uint8 luma, ``(H, W)`` (leading 1-sized
        axes are dropped), the same size.
        """
        a, b = to_luma8(src), to_luma8(dst)
        if a.shape != b.shape:
            raise ValueError(f"FlowEstimator: src and dst sizes differ: {a.shape} vs {b.shape}")
        if min(a.shape) < 2:
            return np.zeros((*a.shape, 2), np.float32)
        return self._dis.calc(a, b, None)

    def pair(self, src: ArrayLike, dst: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(flow src -> dst, flow dst -> src)``: what the consistency check needs."""
        a, b = to_luma8(src), to_luma8(dst)
        return self(a, b), self(b, a)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow ``(h, w, 2)`` resampled to ``size = (H, W)``, its vectors scaled to match."""
    h, w = flow.shape[:2]
    H, W = size
    if (h, w) == (H, W):
        return flow
    out = cv2.resize(flow, (W, H), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= W / w
    out[..., 1] *= H / h
    return out


def _sample_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    ys, xs = np.indices((h, w), dtype=np.float32)
    return xs + flow[..., 0], ys + flow[..., 1]


def _check_flow(flow: np.ndarray, who: str) -> np.ndarray:
    flow = _numpy(flow)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"{who}: flow must have shape (H, W, 2), got {tuple(flow.shape)}")
    return np.ascontiguousarray(flow, dtype=np.float32)


def warp(x: ArrayLike, flow: np.ndarray, *, channels_last: bool | None = None) -> np.ndarray:
    """Backward warping: ``out(p) = x(p + flow(p))``, bilinear, edges replicated.

    ``x`` is ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` (numpy or torch); the layout is read from
    where ``flow``'s ``(H, W)`` appears, or forced by ``channels_last``. Returns float32 numpy in
    the layout of ``x``. Pixels sampled from outside the frame take the nearest edge value:
    :func:`inside_frame` tells which they are.
    """
    flow = _check_flow(flow, "warp")
    a = _numpy(x)
    hw = flow.shape[:2]
    if a.ndim == 2:
        layout = "hw"
    elif a.ndim == 3:
        if channels_last is None:
            if a.shape[1:] == hw:
                channels_last = False
            elif a.shape[:2] == hw:
                channels_last = True
        layout = {True: "hwc", False: "chw", None: "?"}[channels_last]
    else:
        layout = "?"
    if layout == "?" or (layout == "hw" and a.shape != hw) or \
            (layout == "chw" and a.shape[1:] != hw) or (layout == "hwc" and a.shape[:2] != hw):
        raise ValueError(f"warp: x must be (H, W), (C, H, W) or (H, W, C) with (H, W) = {hw} "
                         f"(the flow's), got {tuple(a.shape)}")
    map_x, map_y = _sample_maps(flow)

    def remap(p: np.ndarray) -> np.ndarray:
        return cv2.remap(np.ascontiguousarray(p, dtype=np.float32), map_x, map_y,
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    if layout == "hw":
        return remap(a)
    planes = a if layout == "chw" else np.moveaxis(a, -1, 0)
    out = np.stack([remap(p) for p in planes])
    return out if layout == "chw" else np.moveaxis(out, 0, -1)


def inside_frame(flow: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: True where ``p + flow(p)`` lies inside the frame (warping is defined),
    within half a pixel of the edge pixels' centres (what replicated edges answer correctly)."""
    flow = _check_flow(flow, "inside_frame")
    h, w = flow.shape[:2]
    map_x, map_y = _sample_maps(flow)
    m = EDGE_MARGIN
    return (map_x >= -m) & (map_x <= w - 1 + m) & (map_y >= -m) & (map_y <= h - 1 + m)


def forward_backward_error(flow: np.ndarray, reverse: np.ndarray) -> np.ndarray:
    """How far following ``flow`` then ``reverse`` lands from the start, relative to the
    Sundaram bound: ``|F + R'|^2 / (0.01 (|F|^2 + |R'|^2) + 0.5)`` with ``R'(p) = R(p + F(p))``.

    ``(H, W)`` float32; at most 1 where the pair passes Sundaram et al.'s test, ``inf`` where
    ``p + F(p)`` leaves the frame. ``flow`` goes from frame A to B, ``reverse`` from B to A.
    """
    flow = _check_flow(flow, "forward_backward_error")
    reverse = _check_flow(reverse, "forward_backward_error")
    if flow.shape != reverse.shape:
        raise ValueError(f"forward_backward_error: flow and reverse shapes differ: "
                         f"{flow.shape} vs {reverse.shape}")
    back = warp(reverse, flow, channels_last=True)
    loop = flow + back
    bound = FB_RELATIVE * ((flow * flow).sum(-1) + (back * back).sum(-1)) + FB_ABSOLUTE
    err = (loop * loop).sum(-1) / bound
    err[~inside_frame(flow)] = np.inf
    return err.astype(np.float32)


def luma_warp_error(L: ArrayLike, L_ref: ArrayLike, flow: np.ndarray) -> np.ndarray:
    """``|L(p) - L_ref(p + flow(p))|`` ``(H, W)`` float32, in the units of the inputs.

    ``flow`` is the flow from ``L`` to ``L_ref`` (as :class:`FlowEstimator` gives it).
    """
    cur = _plane(L, "luma_warp_error").astype(np.float32)
    return np.abs(cur - warp(_plane(L_ref, "luma_warp_error"), flow))


def consistency_confidence(fb_error: np.ndarray, *, tolerant: bool = False) -> np.ndarray:
    """Weight in [0, 1] from :func:`forward_backward_error`: ``exp(-e / 2)``, so 1 where the
    loop closes exactly, 0.61 at Sundaram's bound, 0.14 at 4x it, 0 outside the frame.

    ``tolerant``: 1 anywhere within Sundaram's bound (``e <= 1``: the test passes) and
    ``exp(-(e - 1) / 2)`` beyond it, the same fall-off moved to the bound.
    """
    e = np.asarray(fb_error, np.float32)
    return np.exp(-0.5 * (np.maximum(e - 1.0, 0.0) if tolerant else e)).astype(np.float32)


def luma_confidence(error: np.ndarray, scale: float | None = None, *,
                    tolerant: bool = False) -> np.ndarray:
    """Weight in [0, 1] from :func:`luma_warp_error` (Lab L units): ``exp(-(e / s)^2 / 2)``.

    ``scale`` ``s`` None (the default) follows the frame's noise: ``2 x`` the median error,
    within [2, 8] L units (see the module doc). ``tolerant``: 1 for an error within the scale
    (``e <= s``: noise) and ``exp(-((e - s) / s)^2 / 2)`` beyond it.
    """
    e = np.asarray(error, np.float32)
    if scale is None:
        noise = float(np.median(e)) if e.size else 0.0
        scale = min(max(LUMA_NOISE_FACTOR * noise, LUMA_SCALE_MIN), LUMA_SCALE_MAX)
    if not scale > 0:
        raise ValueError(f"luma_confidence: scale must be > 0, got {scale}")
    x = e / np.float32(scale)
    if tolerant:
        x = np.maximum(x - 1.0, 0.0)
    return np.exp(-0.5 * x ** 2).astype(np.float32)


def flow_confidence(L: ArrayLike, L_ref: ArrayLike, flow: np.ndarray,
                    reverse: np.ndarray | None = None, *,
                    luma_scale: float | None = None, tolerant: bool = False) -> np.ndarray:
    """How far ``warp(x_ref, flow)`` can stand in for frame ``L``'s own ``x``: ``(H, W)`` in
    [0, 1], the product of :func:`luma_confidence` and (with ``reverse``, the flow from
    ``L_ref`` to ``L``) :func:`consistency_confidence`; 0 where ``p + flow(p)`` leaves the frame.

    ``L`` and ``L_ref`` are Lab L (0..100) planes or uint8 luma (read as L = code / 2.55);
    ``flow`` goes from ``L`` to ``L_ref``. ``tolerant``: both checks give full weight within
    their bounds (noise-level luma error, a loop inside Sundaram's bound) and fall off beyond
    them, as the stabiliser uses it: a still pixel then keeps all of its history rather than
    0.6-0.8 of it (the soft checks' value on grain and compression noise; docs/stabilize.md
    has the measurements).
    """
    flow = _check_flow(flow, "flow_confidence")
    conf = luma_confidence(luma_warp_error(_as_l(L), _as_l(L_ref), flow), luma_scale,
                           tolerant=tolerant)
    if reverse is not None:
        conf *= consistency_confidence(forward_backward_error(flow, reverse), tolerant=tolerant)
    else:
        conf[~inside_frame(flow)] = 0.0
    return conf
