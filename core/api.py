"""Convenience functions over the process-wide plugin host."""

from __future__ import annotations

from typing import Any

from colorvid.core.host import KINDS, get_host
from colorvid.core.interfaces import Colorizer, Loss, Metric

__all__ = ["create_colorizer", "create_loss", "create_metric", "list_plugins"]


def create_colorizer(name: str, **options: Any) -> Colorizer:
    """Instantiate a registered colorizer, e.g. ``create_colorizer("grey")``."""
    obj = get_host().create("colorizer", name, **options)
    if not isinstance(obj, Colorizer):
        raise TypeError(f"colorizer {name!r} factory returned {type(obj).__name__}, "
                        "not a colorvid.Colorizer")
    return obj


def create_loss(name: str, **options: Any) -> Loss:
    """Instantiate a registered loss."""
    obj = get_host().create("loss", name, **options)
    if not isinstance(obj, Loss):
        raise TypeError(f"loss {name!r} factory returned {type(obj).__name__}, not a colorvid.Loss")
    return obj


def create_metric(name: str, **options: Any) -> Metric:
    """Instantiate a registered metric."""
    obj = get_host().create("metric", name, **options)
    if not isinstance(obj, Metric):
        raise TypeError(
            f"metric {name!r} factory returned {type(obj).__name__}, not a colorvid.Metric"
        )
    return obj


def list_plugins(kind: str | None = None) -> list[dict[str, str]]:
    """One record per registered object: name, kind, plugin, distribution, version, description."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; accepted: {', '.join(KINDS)}")
    return [e.record() for e in get_host().entries(kind)]  # type: ignore[arg-type]
