"""Helpers of the VapourSynth filter tests: clips from numpy planes, and in-process colorizers
registered through the plugin host like an installed third-party plugin would be."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

import colorvid
from colorvid.core.interfaces import Colorizer

PLUGIN_NAME = "vs-test-colorizers"


# -- clips -----------------------------------------------------------------------------------
def clip_from_planes(core, fmt: int, frames: Sequence[Sequence[np.ndarray]], fps: int = 25):
    """A clip of ``fmt`` whose frame n has the planes ``frames[n]`` (numpy, one per plane)."""
    first = frames[0][0]
    blank = core.std.BlankClip(format=fmt, width=first.shape[1], height=first.shape[0],
                               length=len(frames), fpsnum=fps, fpsden=1, keep=False)

    def fill(n: int, f):
        out = f.copy()
        for p, plane in enumerate(frames[n]):
            np.asarray(out[p])[...] = plane
        return out

    return core.std.ModifyFrame(blank, clips=blank, selector=fill)


def frame_planes(frame) -> list[np.ndarray]:
    """Copies of every plane of a VideoFrame."""
    return [np.array(frame[p], copy=True) for p in range(frame.format.num_planes)]


def all_frames(clip) -> list[list[np.ndarray]]:
    return [frame_planes(f) for f in clip.frames(close=True)]


# -- in-process third-party colorizers ----------------------------------------------------------
class ConstColorizer(Colorizer):
    """ab = (25, -40) everywhere, whatever the input."""

    AB = (25.0, -40.0)
    created: ClassVar[list[weakref.ref]] = []

    def __init__(self, device: str | None = None, render_size: int | None = None) -> None:
        self.device = torch.device(device or "cpu")
        self.render_size = render_size
        self.batches: list[int] = []
        ConstColorizer.created.append(weakref.ref(self))

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        self.batches.append(L.shape[0])
        a, b = self.AB
        return torch.stack((torch.full_like(L[:, 0], a), torch.full_like(L[:, 0], b)), dim=1)


class ConvColorizer(Colorizer):
    """A small random (seeded) conv net: real oneDNN convolutions, whose batch-1 path differs in
    the last bit from larger batches."""

    created: ClassVar[list[weakref.ref]] = []

    def __init__(self, device: str | None = None) -> None:
        ConvColorizer.created.append(weakref.ref(self))
        self.device = torch.device(device or "cpu")
        g = torch.Generator().manual_seed(7)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 2, 3, padding=1),
        )
        for p in self.net.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.3
        self.net.eval()
        self.calls = 0

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        self.calls += 1
        return torch.tanh(self.net((L - 50.0) / 100.0)) * 60.0


def _window_ab(L: Tensor) -> Tensor:
    """ab of the last of frames ``L (T, 1, h, w)``: a = mean(L) - L_last, b = 4 T - 12."""
    a = L.mean(0) - L[-1]
    return torch.cat((a, torch.full_like(a, 4.0 * L.shape[0] - 12.0)))[None]


class WindowTemporalColorizer(Colorizer):
    """Temporal, with the filter's WindowedColorizer building blocks (cached features)."""

    temporal = True
    feature_frames: ClassVar[list[int]] = []  # frames pushed through frame_features, per call

    def __init__(self, device: str | None = None) -> None:
        self.device = torch.device(device or "cpu")

    def frame_features(self, L_render: Tensor) -> Tensor:
        WindowTemporalColorizer.feature_frames.append(L_render.shape[0])
        return L_render.clone()

    def window_logits(self, features: Tensor) -> Tensor:
        return _window_ab(features)

    def decode_logits(self, logits: Tensor) -> Tensor:
        return logits

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        return torch.cat([_window_ab(L[i : i + 1]) for i in range(L.shape[0])])


class SequenceTemporalColorizer(Colorizer):
    """Temporal through predict_sequence only (the filter's fallback path); same maths."""

    temporal = True

    def __init__(self, device: str | None = None) -> None:
        self.device = torch.device(device or "cpu")

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        return torch.cat([_window_ab(L[i : i + 1]) for i in range(L.shape[0])])

    def predict_sequence_lowres(self, L, state, resets=None):
        return torch.cat([_window_ab(L[: t + 1]) for t in range(L.shape[0])]), state


class ColorizerTestPlugin:
    @colorvid.hookimpl
    def register_colorizers(self, register) -> None:
        register("vs-const", ConstColorizer)
        register("vs-conv", ConvColorizer)
        register("vs-window", WindowTemporalColorizer)
        register("vs-sequence", SequenceTemporalColorizer)
