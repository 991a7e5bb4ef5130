"""LRCN (Sahay & Choudhary): the Zhang CNN per frame, a convolutional LSTM across frames.

Per frame t the CNN gives 313-bin logits z_t ``(B, 313, h, w)`` at 1/4 resolution. A 1x1
projection of x_t = 313 softmax(z_t) feeds a ConvLSTM whose output, per pixel, is a correction
added to the CNN's logits:

    s_t = z_t + head(h_t),   (h_t, c_t) = ConvLSTM(proj(x_t), (h_{t-1}, c_{t-1}))

Why a *convolutional* LSTM (3x3 gates) and not a per-pixel one: objects move between frames, so
the colour evidence for pixel (x, y) at t-1 sits near, not at, (x, y); 3x3 gates let the state
follow motion of about one cell (4 px) per frame. Why probabilities: logits are unbounded and
their scale differs between models; probabilities are bounded. Why times 313: raw probabilities
average 1/313 per channel, so the gates would barely see them at default init; scaled, each
channel averages 1.
Why the projection and small widths: in window mode every frame runs 6 LSTM steps, so the LSTM
must be cheap next to the CNN. Gates straight over the 313 channels with 64 hidden cost 3.6 GMAC
per step at 64x64 (the tiny LRCN ran 0.8 frames/s on this CPU, 6x the CNN's work); projected to
32 channels with 32 hidden they cost 0.3 GMAC per step.
Why residual with a zero-initialised head: with the CNN initialised from Zhang weights and the
LSTM from scratch (the paper's setup), the untrained LRCN is exactly Zhang, and training only has
to learn the temporal correction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from colorvid.plugins.models.zhang_net import BinDecoding, ZhangConfig, ZhangNet

__all__ = ["ConvLSTMCell", "LRCNConfig", "LRCNNet", "LSTMState", "build_frame_net",
           "frame_colorizer_class"]

LSTMState = tuple[Tensor, Tensor]


def frame_colorizer_class(cnn: str) -> type:
    """The class of the per-frame 313-bin colorizer registered as ``cnn`` (its factory's
    ``frame_colorizer``: zhang, mobilenet, or a plugin's subclass of ZhangColorizer), which
    gives ``build_net(preset)`` and the render ``stride``."""
    from colorvid.core.host import get_host

    try:
        factory = get_host().entry("colorizer", cnn).factory
    except KeyError as e:
        raise ValueError(f"lrcn: cnn {cnn!r} is not a registered colorizer ({e.args[0]})") from None
    cls = getattr(factory, "frame_colorizer", None)
    if cls is None or not callable(getattr(cls, "build_net", None)):
        raise ValueError(f"lrcn: cnn {cnn!r} is not a per-frame 313-bin colorizer (its factory "
                         "names no frame_colorizer class with build_net(preset), as zhang's and "
                         "mobilenet's do)")
    return cls


def build_frame_net(cnn: str, preset: str) -> BinDecoding:
    """The per-frame 313-bin net under the LSTM: ``build_net(preset)`` of the colorizer
    registered as ``cnn``."""
    if cnn == "zhang":  # the paper's CNN, without a trip through the plugin host
        return ZhangNet(ZhangConfig.preset(preset))
    net = frame_colorizer_class(cnn).build_net(preset)
    if not isinstance(net, BinDecoding):
        raise ValueError(f"lrcn: cnn {cnn!r} builds a {type(net).__name__}, not a 313-bin "
                         "BinDecoding net")
    return net


@dataclasses.dataclass(frozen=True)
class LRCNConfig:
    zhang: ZhangConfig = ZhangConfig()  # the CNN's widths when ``cnn`` is "zhang"
    # Channels the 313 probabilities are projected to before the LSTM, and the LSTM's hidden
    # channels: 64 / 128 for the released-size CNN, 32 / 32 for tiny (see the module docstring).
    inputs: int = 64
    hidden: int = 128
    # Gate kernel: 3x3 follows ~1 cell (4 px) of motion per frame; 5x5 doubled the LSTM cost for
    # no gain on the tiny model's validation loss.
    kernel: int = 3
    # The registered per-frame colorizer whose net gives the 313 logits (build_frame_net), at
    # the same preset as the LRCN; "zhang" is the paper's.
    cnn: str = "zhang"
    preset_name: str = "full"

    @classmethod
    def preset(cls, name: str, cnn: str = "zhang") -> LRCNConfig:
        if name == "full":
            return cls(ZhangConfig.preset("full"), inputs=64, hidden=128, cnn=cnn,
                       preset_name=name)
        if name in ("tiny", "small"):
            return cls(ZhangConfig.preset(name), inputs=32, hidden=32, cnn=cnn,
                       preset_name=name)
        raise ValueError(f"lrcn: unknown preset {name!r}; accepted: 'tiny', 'small', 'full'")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inputs": self.inputs, "hidden": self.hidden,
                               "kernel": self.kernel}
        if self.cnn == "zhang":
            return {"zhang": self.zhang.to_dict(), **out}
        return {"cnn": self.cnn, **out}


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: gates = conv([x, h]); c' = f c + i g; h' = o tanh(c')."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)
        with torch.no_grad():  # forget-gate bias 1: remember by default early in training
            self.gates.bias.zero_()
            self.gates.bias[hidden : 2 * hidden].fill_(1.0)

    def zero_state(self, x: Tensor) -> LSTMState:
        shape = (x.shape[0], self.hidden, *x.shape[-2:])
        return x.new_zeros(shape), x.new_zeros(shape)

    def forward(self, x: Tensor, state: LSTMState | None) -> LSTMState:
        h, c = state if state is not None else self.zero_state(x)
        i, f, o, g = self.gates(torch.cat((x, h), dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class LRCNNet(nn.Module):
    """``cnn`` (a ZhangNet, or another per-frame 313-bin net), ``proj`` (1x1), ``lstm``
    (ConvLSTMCell), ``head`` (1x1)."""

    def __init__(self, config: LRCNConfig | None = None) -> None:
        super().__init__()
        self.config = config or LRCNConfig()
        if self.config.cnn == "zhang":
            self.cnn: BinDecoding = ZhangNet(self.config.zhang)
        else:
            self.cnn = build_frame_net(self.config.cnn, self.config.preset_name)
        q = self.cnn.model_out.in_channels
        self.proj = nn.Conv2d(q, self.config.inputs, 1)
        self.lstm = ConvLSTMCell(self.config.inputs, self.config.hidden, self.config.kernel)
        self.head = nn.Conv2d(self.config.hidden, q, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def frame_logits(self, L: Tensor) -> Tensor:
        """Lab L ``(N, 1, H, W)`` -> CNN logits ``(N, 313, H/4, W/4)``."""
        return self.cnn.logits(L)

    def step(self, logits: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState]:
        """One frame: CNN logits ``(B, 313, h, w)`` -> (sequence logits, new state)."""
        x = torch.softmax(logits, dim=1) * logits.shape[1]  # mean 1 per channel (see above)
        h, c = self.lstm(self.proj(x), state)
        return logits + self.head(h), (h, c)

    def temporal(self, logits: Tensor, state: LSTMState | None = None,
                 resets: Tensor | None = None) -> tuple[Tensor, LSTMState | None]:
        """CNN logits of a sequence ``(B, T, 313, h, w)`` -> sequence logits, same shape.

        ``resets`` ``(T,)`` bool: the state is cleared before frame t where True.
        """
        out = []
        for t in range(logits.shape[1]):
            if resets is not None and bool(resets[t]):
                state = None
            s, state = self.step(logits[:, t], state)
            out.append(s)
        return torch.stack(out, dim=1), state

    def forward(self, L: Tensor) -> tuple[Tensor, Tensor]:
        """Training forward: L ``(B, T, 1, H, W)`` -> (CNN logits, sequence logits), each
        ``(B, T, 313, H/4, W/4)``."""
        b, t = L.shape[:2]
        logits = self.frame_logits(L.flatten(0, 1))
        logits = logits.view(b, t, *logits.shape[1:])
        seq, _ = self.temporal(logits)
        return logits, seq
