"""The interfaces that colorizer, loss and metric plugins implement.

Units everywhere: Lab, with L in [0, 100] and ab in Lab units (roughly -110..110); frames are
``(B, 1, H, W)`` for L and ``(B, 2, H, W)`` for ab. Network normalisation happens inside models
(see :mod:`colorvid.core.color`).

A colorizer implements :meth:`Colorizer.predict_ab_lowres`, which sees L already resized to its
internal ``render_size``; the base class handles resizing and upsamples the chroma back onto the
full-resolution L, so every colorizer accepts L at any resolution. Temporal colorizers (LRCN) also
override :meth:`Colorizer.new_state` and :meth:`Colorizer.predict_sequence_lowres`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MAX_RENDER_SIZE", "Colorizer", "Loss", "Metric", "check_l"]

# The largest internal resolution accepted anywhere (CLI, Python API, VapourSynth): a 4096 px
# square is already 16x a 1024 render; above it one bicubic resize of a batch of 8 needs GBs.
MAX_RENDER_SIZE = 4096


def check_l(L: Tensor, who: str = "colorizer") -> None:
    """Validate a batch of L frames: a float tensor ``(B, 1, H, W)`` with finite values."""
    if not isinstance(L, Tensor):
        raise TypeError(f"{who}: L must be a torch.Tensor, got {type(L).__name__}")
    if L.dim() != 4 or L.shape[1] != 1:
        raise ValueError(f"{who}: L must have shape (B, 1, H, W), got {tuple(L.shape)}")
    if not L.is_floating_point():
        raise TypeError(f"{who}: L must be floating point (Lab units 0..100), got {L.dtype}")
    if L.shape[-1] < 1 or L.shape[-2] < 1:
        raise ValueError(f"{who}: L must be at least 1x1 pixels, got {tuple(L.shape)}")


class Colorizer(abc.ABC):
    """Predicts ab for L. Subclass and implement :meth:`predict_ab_lowres`.

    Attributes:
        name: the registered name (set by the host when created through it).
        temporal: True when predictions depend on previous frames (state is carried).
        render_size: the internal resolution the model runs at (square), or None to run at the
            input resolution.
    """

    name: ClassVar[str] = "colorizer"
    temporal: ClassVar[bool] = False
    render_size: int | None = None
    device: torch.device = torch.device("cpu")

    # -- what a plugin implements -------------------------------------------------------------
    @abc.abstractmethod
    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        """L ``(B, 1, h, w)`` at the internal resolution -> ab ``(B, 2, h', w')`` (Lab units).

        The output may be at any resolution (e.g. h/4 for Zhang); the base class upsamples it.
        """

    def new_state(self) -> Any:
        """Fresh temporal state (None for stateless colorizers)."""
        return None

    def predict_sequence_lowres(
        self, L: Tensor, state: Any, resets: Tensor | None = None
    ) -> tuple[Tensor, Any]:
        """Frames of one sequence in order, ``(T, 1, h, w)`` -> ``((T, 2, h', w'), new_state)``.

        ``resets[t]`` is True where the state must be reset before frame t (a scene cut).
        Stateless colorizers use the default, which treats the frames as a batch.
        """
        return self.predict_ab_lowres(L), state

    # -- what callers use ---------------------------------------------------------------------
    def to_render(self, L: Tensor) -> Tensor:
        """Resize full-resolution L to the internal resolution (bicubic, as the Zhang demo)."""
        if self.render_size is None or tuple(L.shape[-2:]) == (self.render_size,) * 2:
            return L
        size = (self.render_size, self.render_size)
        return F.interpolate(L, size=size, mode="bicubic", align_corners=False).clamp(0.0, 100.0)

    @staticmethod
    def upsample_ab(ab: Tensor, size: Sequence[int]) -> Tensor:
        """Bilinear upsampling of predicted chroma onto the full-resolution frame."""
        if tuple(ab.shape[-2:]) == tuple(size):
            return ab
        return F.interpolate(ab, size=tuple(size), mode="bilinear", align_corners=False)

    def predict_ab(self, L: Tensor) -> Tensor:
        """Independent frames: L ``(B, 1, H, W)`` -> ab ``(B, 2, H, W)``, same resolution."""
        check_l(L, self.name)
        ab = self.predict_ab_lowres(self.to_render(L))
        return self.upsample_ab(ab, L.shape[-2:]).to(L.dtype)

    def predict_sequence(
        self, L: Tensor, state: Any = None, resets: Tensor | None = None
    ) -> tuple[Tensor, Any]:
        """Consecutive frames ``(T, 1, H, W)`` -> ``(ab (T, 2, H, W), state)``.

        Pass the returned state into the next call to continue a video; ``None`` starts fresh.
        """
        check_l(L, self.name)
        if resets is not None and (resets.dim() != 1 or resets.shape[0] != L.shape[0]):
            raise ValueError(
                f"{self.name}: resets must be a 1-D bool tensor with one entry per frame "
                f"({L.shape[0]}), got shape {tuple(resets.shape)}"
            )
        if state is None:
            state = self.new_state()
        ab, state = self.predict_sequence_lowres(self.to_render(L), state, resets)
        return self.upsample_ab(ab, L.shape[-2:]).to(L.dtype), state

    def colorize_lab(self, L: Tensor) -> Tensor:
        """L ``(B, 1, H, W)`` -> Lab ``(B, 3, H, W)`` with the input L kept exactly."""
        return torch.cat((L, self.predict_ab(L)), dim=1)


class Loss(abc.ABC):
    """A training loss. ``outputs`` are what the model returned (by name), ``batch`` the data.

    Attributes:
        name: the registered name.
        requires: keys the loss reads from ``outputs`` (e.g. ``("logits",)``); the trainer checks
            that the model provides them before training starts.
    """

    name: ClassVar[str] = "loss"
    requires: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def __call__(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        """Return a scalar loss tensor (differentiable w.r.t. ``outputs``)."""


class Metric(abc.ABC):  # noqa: B024 - per_frame or compute: either one is the implementation
    """A per-video quality metric comparing a colorized video with the original.

    Inputs are RGB videos as float64 tensors in [0, 1], shaped ``(T, 3, H, W)``. Per-frame metrics
    implement :meth:`per_frame`; the default :meth:`compute` is the mean over frames (the paper's
    per-frame-then-mean protocol). Temporal metrics override :meth:`compute`.
    """

    name: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool] = False

    def per_frame(self, pred: Tensor, ref: Tensor) -> Tensor:
        """One value per frame, ``(T,)``. Not available for purely temporal metrics."""
        raise NotImplementedError(f"{self.name} has no per-frame form")

    def compute(self, pred: Tensor, ref: Tensor) -> float:
        """One value for the video."""
        return float(self.per_frame(pred, ref).mean())

    @staticmethod
    def check_pair(pred: Tensor, ref: Tensor, who: str) -> None:
        """Validate that pred and ref are matching (T, 3, H, W) RGB videos."""
        for label, x in (("pred", pred), ("ref", ref)):
            if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
                shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"{who}: {label} must be an RGB video (T, 3, H, W), got {shape}")
        if pred.shape != ref.shape:
            raise ValueError(
                f"{who}: pred and ref shapes differ: {tuple(pred.shape)} vs {tuple(ref.shape)}"
            )
