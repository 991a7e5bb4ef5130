"""The ``lrcn`` colorizer: Zhang's CNN + a ConvLSTM over its logits (the paper's contribution).

Two ways to run it on video:

- ``window=6`` (default): frame n depends only on frames n-5..n (since the last scene cut): the
  LSTM runs from a zero state over that window. Results do not depend on the order frames are
  requested in (what a VapourSynth previewer or a seek needs) and match training, which used
  sequences of 6. Each frame costs one CNN pass (outputs of recent frames are cached) and six
  LSTM steps (0.3 GMAC each at the tiny preset and 256 px, against ~3 for the CNN).
- ``window=None``: streaming, sequence-in/sequence-out: one CNN pass and one LSTM step per frame,
  the state carried across the whole shot.

>>> import colorvid, torch
>>> lrcn = colorvid.create_colorizer("lrcn", pretrained=False, render_size=32)
>>> ab, state = lrcn.predict_sequence(torch.full((8, 1, 24, 40), 50.0))
>>> tuple(ab.shape)
(8, 2, 24, 40)
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import colorvid
from colorvid.core.bins import AB_BINS_SHA256
from colorvid.core.interfaces import Colorizer
from colorvid.plugins.lrcn_net import LRCNConfig, LRCNNet, frame_colorizer_class
from colorvid.plugins.models.common import (
    cast_keeping_decoder,
    pick_memory_format,
    resolve_prior_correction,
    resolve_saturation,
    setup_network,
)
from colorvid.plugins.models.zhang_net import ANNEAL_TEMPERATURE, DECODE_MODES, DecodeMode

__all__ = ["LRCNColorizer", "create_lrcn"]

MODEL_NAME = "lrcn"
DEFAULT_RENDER_SIZE = 256
DEFAULT_WINDOW = 6  # the paper's sequence length
_STRIDE = 8


def _cnn_of(cnn: str | None, weights: Any, preset: str | None, pretrained: bool) -> str:
    """The per-frame net under the LSTM: ``cnn`` when given (it must match the weights file),
    else the weights file's (its header's ``architecture.cnn``; files without one hold a
    Zhang CNN), else zhang."""
    from colorvid.core.weights import default_weights_path, read_config
    from colorvid.plugins.models.common import pick_preset

    if cnn is not None and (not isinstance(cnn, str) or not cnn):
        raise ValueError(f"lrcn: cnn must be the name of a per-frame 313-bin colorizer (zhang, "
                         f"mobilenet), got {cnn!r}")
    path = None
    if weights is not None and os.path.isfile(weights):
        path = weights
    elif weights is None and (pretrained or cnn is None):
        # the shipped file's architecture, trained or (pretrained=False) not
        found = default_weights_path(MODEL_NAME, pick_preset(MODEL_NAME, preset, None))
        path = found if found.is_file() else None
    in_file = None
    if path is not None:
        in_file = (read_config(path).get("architecture") or {}).get("cnn", "zhang")
    if cnn is not None and in_file is not None and cnn != in_file:
        raise ValueError(f"lrcn: cnn={cnn!r}, but {path} holds an LSTM over {in_file!r}; "
                         f"pass cnn={in_file!r} or other weights")
    return cnn or in_file or "zhang"


class LRCNColorizer(Colorizer):
    """LRCN as a (temporal) colorizer. Options as Zhang's, plus ``window`` and ``cnn`` (the
    per-frame 313-bin colorizer under the LSTM, ``zhang`` or ``mobilenet``; default: the
    weights file's)."""

    name = MODEL_NAME
    temporal = True

    def __init__(
        self,
        *,
        weights: str | os.PathLike[str] | None = None,
        preset: str | None = None,
        device: str | torch.device | None = None,
        render_size: int | None = None,
        pretrained: bool = True,
        fp16: bool = False,
        dtype: str | torch.dtype | None = None,
        window: int | None = DEFAULT_WINDOW,
        decode: DecodeMode = "annealed_mean",
        temperature: float | None = None,
        saturation: float | None = None,
        prior_correction: float | None = None,
        cnn: str | None = None,
    ) -> None:
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 1):
            raise ValueError(f"lrcn: window must be a positive number of frames or None "
                             f"(streaming), got {window!r}")
        if decode not in DECODE_MODES:
            raise ValueError(f"lrcn: decode must be one of {', '.join(DECODE_MODES)}, "
                             f"got {decode!r}")
        self.cnn = _cnn_of(cnn, weights, preset, pretrained)
        stride = _STRIDE if self.cnn == "zhang" else max(
            _STRIDE, int(getattr(frame_colorizer_class(self.cnn), "stride", _STRIDE)))
        setup_network(self, MODEL_NAME, lambda p: LRCNNet(LRCNConfig.preset(p, self.cnn)),
                      weights=weights, preset=preset,
                      device=device, render_size=render_size, pretrained=pretrained, fp16=fp16,
                      dtype=dtype, default_render_size=DEFAULT_RENDER_SIZE, stride=stride,
                      expect_config={"bins_sha256": AB_BINS_SHA256})
        self.window = window
        self.decode_mode: DecodeMode = decode
        if temperature is not None and (isinstance(temperature, bool) or not isinstance(
                temperature, (int, float)) or temperature <= 0):
            raise ValueError(f"lrcn: temperature must be a number > 0, got {temperature!r}")
        # As zhang: the weights file may name the temperature it was calibrated for.
        file_t = (self.weights_config or {}).get("decode_temperature")
        self.temperature = float(temperature or file_t or ANNEAL_TEMPERATURE)
        self.saturation = resolve_saturation(saturation, self.weights_config, MODEL_NAME)
        # Undoes the rebalancing on the sequence logits (the LSTM still sees the CNN's own).
        self.prior_correction = resolve_prior_correction(prior_correction, self, self.net.cnn,
                                                         MODEL_NAME)
        self.net.eval().to(device=self.device)
        cast_keeping_decoder(self.net, self.dtype, self.net.cnn)  # decoding stays float32
        # bfloat16 on the CPU (the default where the CPU computes it natively): the CNN runs
        # channels-last, oneDNN's AMX layout, as zhang. Over 16 frames of carphone the frames
        # differ from float32's by 0.18 of a code on average (the LSTM carries the CNN's bf16
        # rounding; keeping the LSTM in float32 changed neither that nor helped the speed).
        self.memory_format = pick_memory_format(None, self.device, self.dtype) \
            if self.device.type == "cpu" else torch.contiguous_format
        self.net.cnn.to(memory_format=self.memory_format)

    # -- building blocks (also used by the VapourSynth filter's per-frame cache) ---------------
    def frame_features(self, L_render: Tensor) -> Tensor:
        """L at the internal resolution ``(N, 1, h, w)`` -> CNN logits ``(N, 313, h/4, w/4)``."""
        with torch.inference_mode():
            return self.net.frame_logits(L_render.to(self.device, self.dtype).contiguous(
                memory_format=self.memory_format))

    def decode_logits(self, logits: Tensor) -> Tensor:
        """Sequence logits ``(N, 313, h, w)`` -> ab ``(N, 2, 4h, 4w)``, as Zhang's forward."""
        with torch.inference_mode():
            ab = self.net.cnn.decode(logits, self.decode_mode, self.temperature)  # in float32
            ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
            return ab * self.saturation

    def window_logits(self, features: Tensor) -> Tensor:
        """CNN logits of frames n-k..n ``(k+1, 313, h, w)`` -> sequence logits of frame n
        ``(1, 313, h, w)``, the LSTM run from a zero state over them."""
        with torch.inference_mode():
            seq, _ = self.net.temporal(features[None])
            return seq[:, -1]

    # -- the Colorizer interface ----------------------------------------------------------------
    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        """Independent frames: each is a sequence of one (no temporal context)."""
        feats = self.frame_features(L)
        with torch.inference_mode():
            seq, _ = self.net.temporal(feats[:, None])
        return self.decode_logits(seq[:, 0]).to(L.device)

    def new_state(self) -> dict[str, Any]:
        return {"recent": deque(maxlen=max((self.window or 1) - 1, 1)), "lstm": None}

    def predict_sequence_lowres(self, L: Tensor, state: Any, resets: Tensor | None = None
                                ) -> tuple[Tensor, Any]:
        feats = self.frame_features(L)  # one CNN pass per frame, batched: (T, 313, h, w)
        out = []
        recent: deque = state["recent"]
        for t in range(feats.shape[0]):
            if resets is not None and bool(resets[t]):
                recent.clear()
                state["lstm"] = None
            if self.window is None:  # streaming: one LSTM step
                with torch.inference_mode():
                    seq, state["lstm"] = self.net.step(feats[t : t + 1], state["lstm"])
            else:
                frames = [*list(recent)[-(self.window - 1):], feats[t]] if self.window > 1 \
                    else [feats[t]]
                seq = self.window_logits(torch.stack(frames))
                if self.window > 1:
                    recent.append(feats[t])
            out.append(seq)
        ab = self.decode_logits(torch.cat(out)) if out else L.new_zeros((0, 2, *L.shape[-2:]))
        return ab.to(L.device), state


def create_lrcn(**options: Any) -> LRCNColorizer:
    """LRCN (Zhang CNN + ConvLSTM), temporal; options: see LRCNColorizer."""
    return LRCNColorizer(**options)


@colorvid.hookimpl
def register_colorizers(register) -> None:
    register(MODEL_NAME, create_lrcn,
             description="LRCN: Zhang CNN + ConvLSTM over its logits (temporal, window of 6)")
