"""The ``ensemble`` colorizer: per-pixel weighted average of the ab of member colorizers.

The paper averaged Zhang and Larsson and got the most realistic videos of its study (CTT 4.5).
Members are any registered colorizers, by name, each with its own options; each runs at its own
internal resolution and its chroma is upsampled onto the full-resolution L before averaging.

>>> import colorvid, torch
>>> ens = colorvid.create_colorizer("ensemble", members=["grey", "grey"])
>>> float(ens.predict_ab(torch.full((1, 1, 8, 8), 50.0)).abs().max())
0.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

import colorvid
from colorvid.core.host import accepted_options
from colorvid.core.interfaces import Colorizer, check_l

__all__ = ["EnsembleColorizer"]

DEFAULT_MEMBERS = ("zhang", "larsson")  # the paper's ensemble


class EnsembleColorizer(Colorizer):
    """Weighted per-pixel mean of member colorizers' ab.

    Args:
        members: colorizer names (default zhang + larsson).
        weights: one non-negative weight per member (default equal); normalised to sum 1.
        member_options: per-member keyword options, ``{"zhang": {"weights": "z.safetensors"}}``.
        device, preset, pretrained: passed to every member that is not given its own.
    """

    temporal = False

    def __init__(self, members: Sequence[str] = DEFAULT_MEMBERS,
                 weights: Sequence[float] | None = None,
                 member_options: Mapping[str, Mapping[str, Any]] | None = None,
                 **common: Any) -> None:
        if isinstance(members, str):
            members = [m.strip() for m in members.split(",") if m.strip()]
        members = list(members)
        if not members:
            raise ValueError("ensemble: members must name at least one colorizer")
        if "ensemble" in members:
            raise ValueError("ensemble: an ensemble cannot contain itself")
        if weights is None:
            weights = [1.0] * len(members)
        weights = [float(w) for w in weights]
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"ensemble: weights must be {len(members)} non-negative numbers with "
                             f"a positive sum (one per member), got {weights}")
        member_options = dict(member_options or {})
        unknown = set(member_options) - set(members)
        if unknown:
            raise ValueError(f"ensemble: member_options for {sorted(unknown)}, which are not "
                             f"members ({members})")
        self.member_names = members
        self.weights = [w / sum(weights) for w in weights]
        self.members: list[Colorizer] = []
        host = colorvid.get_host()
        for name in members:
            # Shared options go to the members that take them (grey has no weights); a member's
            # own options are passed as given, so a typo there is still an error.
            accepted = accepted_options(host.entry("colorizer", name).factory)
            shared = {k: v for k, v in common.items() if accepted is None or k in accepted}
            options = {**shared, **member_options.get(name, {})}
            self.members.append(colorvid.create_colorizer(name, **options))
        self.device = self.members[0].device

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        # No internal resolution of its own (render_size None): each member resizes for itself,
        # so the "low-res" path is the full one. predict_sequence reaches the members this way.
        return self.predict_ab(L)

    def predict_ab(self, L: Tensor) -> Tensor:
        """Each member at its own resolution, upsampled onto L, then the weighted mean."""
        check_l(L, "ensemble")
        total = torch.zeros((L.shape[0], 2, *L.shape[-2:]), dtype=torch.float32, device=L.device)
        for weight, member in zip(self.weights, self.members, strict=False):
            if weight:
                total += weight * member.predict_ab(L).float().to(L.device)
        return total.to(L.dtype)


@colorvid.hookimpl
def register_colorizers(register) -> None:
    register("ensemble", EnsembleColorizer,
             description="Per-pixel weighted mean of member colorizers (default zhang + larsson)")
