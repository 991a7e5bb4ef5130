"""Benchmarks: collect ``bench_*.py`` files and print the kernels' summary table at the end."""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    """Collect bench_*.py here unless the ini's python_files already does."""
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    if parent.session.isinitpath(file_path):  # named on the command line: pytest collects it
        return None
    patterns = parent.config.getini("python_files")
    if any(fnmatch.fnmatch(file_path.name, p) for p in patterns):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def pytest_terminal_summary(terminalreporter) -> None:
    module = sys.modules.get("bench_kernels")
    rows = getattr(module, "RESULTS", None)
    if not rows:
        return
    tr = terminalreporter
    tr.section("rebalanced_cross_entropy forward + backward")
    tr.write_line(
        f"{'size':<18}{'provider':<11}{'ms':>9}{'speedup':>9}{'vs dense':>9}{'peak MiB':>10}"
        f"{'peak/ref':>10}{'GB/s':>8}{'x floor':>9}{'x c+w':>7}"
    )
    for r in rows:
        tr.write_line(
            f"{r['size']:<18}{r['provider']:<11}{r['ms']:>9.1f}{r['speedup']:>8.1f}x"
            f"{r['vs_dense']:>8.1f}x{_fmt(r['peak_mib'], '.1f'):>10}"
            f"{_fmt(r['peak_ratio'], '.2f'):>10}{r['gbps']:>8.2f}{r['x_floor']:>9.2f}"
            f"{r['x_clone_write']:>7.2f}"
        )
    tr.write_line(
        "speedup: reference time / time; vs dense: plain dense torch (benches/"
        "kernel_bench_utils.dense_rebalanced_ce) time / time; peak: memory one step adds; GB/s: "
        "(logits read + gradient written) / time; x floor: time / time of logits.clone() (read "
        "once, write once); x c+w: time / (clone + one more write)"
    )
