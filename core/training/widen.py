"""Widen trained Zhang weights to a wider preset without changing what the network computes.

    python -m colorvid.core.training.widen plugins/weights/zhang-tiny.safetensors small OUT

Function-preserving widening (Net2WiderNet, Chen, Goodfellow and Shlens, "Net2Net", ICLR 2016):
each new channel of a layer copies an existing one (its incoming filter, bias and BatchNorm
entries), and the next layer's weights on a channel and its copies split what the original
channel's weight was, so the wider net's logits equal the narrow net's. The split is by random
shares that sum to 1 rather than equal ones: copies then get different gradients and can drift
apart (equal shares keep copies identical for ever). Training the wider net starts from the
narrow one's hours instead of from scratch; the header keeps the narrow file's cumulative
training counts (the steps behind these weights) and records the widening.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from colorvid.core.weights import read_config, save_weights

__all__ = ["widen_zhang", "widen_file", "main"]


def _shares(mapping: Tensor, n_old: int, generator: torch.Generator) -> Tensor:
    """Per new channel, its share of the original channel's outgoing weight (sums to 1 over a
    channel and its copies; an uncopied channel keeps 1)."""
    raw = torch.rand(mapping.numel(), generator=generator, dtype=torch.float64) + 0.5
    total = torch.zeros(n_old, dtype=torch.float64).index_add_(0, mapping, raw)
    return (raw / total[mapping]).float()


def widen_zhang(narrow: nn.Module, wide: nn.Module, seed: int = 0) -> None:
    """Copy ``narrow`` (a ZhangNet) into ``wide`` (a ZhangNet of widths >= narrow's), so that
    ``wide.logits(L) == narrow.logits(L)`` up to float rounding, in eval and in train mode."""
    from colorvid.plugins.models.zhang_net import ZhangNet

    if not isinstance(narrow, ZhangNet) or not isinstance(wide, ZhangNet):
        raise TypeError("widen_zhang: both networks must be ZhangNet")
    if narrow.config.num_bins != wide.config.num_bins:
        raise ValueError("widen_zhang: the networks have different numbers of bins "
                         f"({narrow.config.num_bins} vs {wide.config.num_bins})")
    small = [m for m in narrow.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d,
                                                          nn.BatchNorm2d))]
    large = [m for m in wide.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d,
                                                        nn.BatchNorm2d))]
    generator = torch.Generator().manual_seed(seed)
    # The channel each current activation channel copies, and its outgoing share.
    mapping = torch.arange(1)
    shares = torch.ones(1)
    with torch.no_grad():
        for a, b in zip(small, large, strict=True):
            if isinstance(a, nn.BatchNorm2d):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(b, name).copy_(getattr(a, name)[mapping])
                b.num_batches_tracked.copy_(a.num_batches_tracked)
                continue
            if a is narrow.model_out:
                b.weight.copy_(a.weight)
                continue
            transposed = isinstance(a, nn.ConvTranspose2d)
            weight = a.weight.transpose(0, 1) if transposed else a.weight  # (out, in, k, k)
            n_out_old, n_out_new = weight.shape[0], b.out_channels
            if n_out_new < n_out_old:
                raise ValueError(f"widen_zhang: the wide net is narrower at a layer "
                                 f"({n_out_new} < {n_out_old} channels)")
            # Incoming side: the copies of an input channel split its weight.
            weight = weight[:, mapping] * shares.view(1, -1, 1, 1)
            out_map = torch.cat([torch.arange(n_out_old), torch.randint(
                n_out_old, (n_out_new - n_out_old,), generator=generator)])
            weight = weight[out_map]
            b.weight.copy_(weight.transpose(0, 1) if transposed else weight)
            if a.bias is not None:
                b.bias.copy_(a.bias[out_map])
            mapping, shares = out_map, _shares(out_map, n_out_old, generator)


def widen_file(src: Path, preset: str, out: Path, seed: int = 0) -> Path:
    """Widen a zhang weights file to ``preset``; writes ``out`` (atomically) and returns it."""
    from colorvid.plugins.models.common import load_into
    from colorvid.plugins.models.zhang_net import ZhangConfig, ZhangNet

    config = read_config(src)
    if config.get("model") != "zhang":
        raise ValueError(f"widen: {src} holds {config.get('model')!r} weights; only zhang "
                         "weights can be widened")
    narrow = ZhangNet(ZhangConfig.from_dict(config["architecture"]))
    extras = load_into(narrow, "zhang", config["preset"], src, pretrained=True).extras
    wide = ZhangNet(ZhangConfig.preset(preset))
    widen_zhang(narrow, wide, seed=seed)
    header = dict(config)
    header.pop("stored_dtype", None)
    header["preset"] = preset
    header["architecture"] = wide.config.to_dict()
    training = dict(header.get("training") or {})
    training["widened_from"] = {"preset": config.get("preset"),
                                "widths": list(narrow.config.widths), "seed": seed,
                                "method": "Net2WiderNet, random outgoing shares"}
    header["training"] = training
    return save_weights(out, wide.state_dict(), header, extras)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m colorvid.core.training.widen",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("weights", type=Path, help="zhang weights file (e.g. the tiny preset's)")
    p.add_argument("preset", help="the wider preset: small or full")
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from colorvid.core.weights import WeightsError

    try:
        print(widen_file(args.weights, args.preset, args.out, args.seed))
    except (ValueError, WeightsError) as e:
        print(f"widen: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
