"""Fixtures of the kernel tests (helpers live in kernel_helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_forced_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose implementations explicitly; a COLORVID_KERNELS in the shell must not leak in."""
    monkeypatch.delenv("COLORVID_KERNELS", raising=False)
