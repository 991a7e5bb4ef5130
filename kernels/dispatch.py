"""Choosing an implementation (cpp, triton, reference) for a kernel call.

Each implementation states which devices and dtypes it runs and, when it cannot, why. Choosing by
itself, the dispatcher takes the first that fits in :data:`AUTO_ORDER` and falls back quietly;
when the user forced one (``COLORVID_KERNELS=cpp`` or ``implementation="cpp"``) it runs that one
or raises :class:`KernelUnavailableError` with the reason; when none fits, one error lists every
reason.

>>> import torch
>>> select_implementation("soft_encode", torch.zeros(1, 2, 1, 1))
'cpp'
>>> select_implementation("soft_encode", torch.zeros(1, 2, 1, 1), "reference")
'reference'
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch
from torch import Tensor

__all__ = [
    "AUTO_ORDER",
    "ENV_VAR",
    "IMPLEMENTATIONS",
    "KernelUnavailableError",
    "select_implementation",
    "unsupported_reason",
]

#: Every implementation name, in the order the dispatcher tries them when choosing by itself:
#: triton first (it only accepts CUDA tensors), then cpp (CPU float32/float64), then the torch
#: reference, which runs everywhere but builds the dense target.
IMPLEMENTATIONS: tuple[str, ...] = ("triton", "cpp", "reference")
AUTO_ORDER = IMPLEMENTATIONS
ENV_VAR = "COLORVID_KERNELS"

_CPP_DTYPES = (torch.float32, torch.float64)
# Triton computes in float32 whatever it loads; float64 would silently lose precision there.
_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class KernelUnavailableError(RuntimeError):
    """No implementation can run this call (or the one the user forced cannot)."""


@functools.cache
def _cpp_import_error() -> str | None:
    try:
        from colorvid.kernels import _cpu
    except ImportError as e:  # a source checkout that was never built
        return f"the _cpu extension is not built ({e}); run `make install`"
    missing = [f for f in ("soft_encode", "rebalanced_ce") if not hasattr(_cpu, f)]
    if missing:
        return f"the _cpu extension is stale (lacks {', '.join(missing)}); run `make install`"
    return None


@functools.cache
def _triton_import_error() -> str | None:
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    return None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def unsupported_reason(
    name: str, device: torch.device, dtype: torch.dtype, forced: bool
) -> str | None:
    """Why implementation ``name`` cannot run on ``device``/``dtype``, or None when it can.

    ``forced``: the user asked for this implementation; only then does triton accept CPU tensors
    under ``TRITON_INTERPRET=1`` (the interpreter is a testing tool, far too slow to pick itself).
    """
    if name == "reference":
        if not dtype.is_floating_point:
            return f"accepts floating-point tensors, got {dtype}"
        return None
    if name == "cpp":
        if device.type != "cpu":
            return f"runs on CPU tensors only, got device {device}"
        if dtype not in _CPP_DTYPES:
            return f"accepts float32 or float64, got {dtype}"
        return _cpp_import_error()
    if name == "triton":
        error = _triton_import_error()
        if error is not None:
            return error
        if dtype not in _TRITON_DTYPES:
            return f"accepts float32, float16 or bfloat16 (it computes in float32), got {dtype}"
        if device.type == "cuda":
            return None
        if device.type == "cpu" and _interpreting():
            if forced:
                return None
            return (
                "CPU tensors run Triton only through TRITON_INTERPRET=1, "
                "which is never chosen automatically"
            )
        return f"runs on CUDA tensors (or CPU under TRITON_INTERPRET=1), got device {device}"
    raise ValueError(f"unknown implementation {name!r}; accepted: {', '.join(IMPLEMENTATIONS)}")


def _requested(implementation: str | None) -> tuple[str | None, str]:
    """The forced implementation, if any, and where the choice came from (for messages)."""
    if implementation is not None:
        return implementation, f"implementation={implementation!r}"
    env = os.environ.get(ENV_VAR, "").strip()
    if env and env != "auto":
        return env, f"{ENV_VAR}={env}"
    return None, ""


def select_implementation(op: str, tensor: Tensor, implementation: str | None = None) -> str:
    """The implementation that runs ``op`` on ``tensor`` (its device and dtype decide).

    ``implementation`` (or else the ``COLORVID_KERNELS`` environment variable) forces one of
    :data:`IMPLEMENTATIONS`; ``None``/``"auto"`` chooses the first that fits.
    """
    forced, source = _requested(implementation)
    if forced is not None:
        if forced not in IMPLEMENTATIONS:
            raise ValueError(
                f"{op}: {source} is not an implementation; accepted: "
                f"{', '.join(IMPLEMENTATIONS)} or auto"
            )
        reason = unsupported_reason(forced, tensor.device, tensor.dtype, forced=True)
        if reason is not None:
            raise KernelUnavailableError(
                f"{op}: {source} cannot run on a {tensor.device.type} {tensor.dtype} tensor: "
                f"{forced} {reason}"
            )
        return forced
    reasons = []
    for name in AUTO_ORDER:
        reason = unsupported_reason(name, tensor.device, tensor.dtype, forced=False)
        if reason is None:
            return name
        reasons.append(f"{name}: {reason}")
    raise KernelUnavailableError(
        f"{op}: no implementation runs on a {tensor.device.type} {tensor.dtype} tensor; "
        + "; ".join(reasons)
    )
