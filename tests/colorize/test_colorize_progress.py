"""Progress reporting: JSON lines, the bar, quiet."""

from __future__ import annotations

import io
import json

import pytest

from colorvid.core.video.progress import Progress


def test_json_lines_report_frames_fps_and_eta():
    out = io.StringIO()
    with Progress(total=10, mode="json", stream=out, interval=0.0) as p:
        for _ in range(10):
            p.advance()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["frames"] for r in lines] == list(range(1, 11)) + [10]
    assert lines[-1]["done"] is True and lines[-1]["eta_s"] is None
    assert all(r["total"] == 10 and r["fps"] >= 0 for r in lines)
    assert lines[0]["eta_s"] is not None and lines[0]["done"] is False


def test_bar_without_terminal_prints_lines():
    out = io.StringIO()
    with Progress(total=4, mode="bar", stream=out, interval=0.0) as p:
        p.advance(2)
    text = out.getvalue()
    assert "2/4 frames" in text and "fps" in text and "ETA" in text and "\r" not in text
    unknown = io.StringIO()
    with Progress(total=None, mode="bar", stream=unknown, interval=0.0) as p:
        p.advance(3)
    assert "3 frames" in unknown.getvalue() and "ETA" not in unknown.getvalue()


def test_quiet_writes_nothing_and_bad_mode_is_refused():
    out = io.StringIO()
    with Progress(total=3, mode="quiet", stream=out, interval=0.0) as p:
        p.advance(3)
    assert out.getvalue() == "" and p.snapshot()["frames"] == 3
    with pytest.raises(ValueError, match="progress mode must be one of bar, json, quiet"):
        Progress(mode="loud")  # type: ignore[arg-type]
