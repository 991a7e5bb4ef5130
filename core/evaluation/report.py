"""The files of a ``colorvid eval`` report: results.csv / results.json / report.md, a contact sheet
and a flicker plot per video, and WebM clips of every output (what ``colorvid ctt`` shows).

Layout of a report folder::

    results.csv  results.json  report.md
    sheets/<video>.png          rows: original, then each model; columns: frames over the video
    plots/<video>.png           per-frame colourfulness and frame-to-frame chroma change
    clips/<video>/<model>.webm  and clips/<video>/original.webm

Every file is written to a temporary name in its folder and moved into place (os.replace).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from colorvid.core import files
from colorvid.core.color import rgb_to_lab

if TYPE_CHECKING:
    from colorvid.core.evaluation.runner import EvalConfig, EvalResult

__all__ = [
    "chroma_change",
    "json_number",
    "write_clips",
    "write_pictures",
    "write_reports",
]

# Thumbnails wider than this are scaled down so a sheet of 6 columns stays readable on screen.
THUMB_WIDTH = 240
LABEL_WIDTH = 90


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path`` then move it over ``path`` (with
    the mode a plain ``open`` gives: :func:`colorvid.core.files.atomic_write`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write(path, write)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def json_number(x: float | None) -> float | str | None:
    """JSON has no infinity: +-inf become the strings "inf" / "-inf", NaN becomes null."""
    if x is None or math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def chroma_change(frames: np.ndarray) -> np.ndarray:
    """Mean over pixels of the Lab ab distance between consecutive frames: ``(T - 1,)``.

    A steady colorization of a slow scene stays low; flicker shows up as spikes.
    """
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.float64) / 255.0
    ab = rgb_to_lab(x)[:, 1:]
    d = ab[1:] - ab[:-1]
    return (d * d).sum(dim=1).sqrt().mean(dim=(1, 2)).numpy()


# -- pictures -------------------------------------------------------------------------------------
def _contact_sheet(ref: np.ndarray, outputs: dict[str, np.ndarray], columns: int,
                   indices: list[int]) -> Any:
    from PIL import Image, ImageDraw

    t, h, w, _ = ref.shape
    picks = np.unique(np.linspace(0, t - 1, min(columns, t)).round().astype(int))
    scale = min(1.0, THUMB_WIDTH / w)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    rows = [("original", ref)] + list(outputs.items())
    pad = 4
    sheet = Image.new("RGB", (LABEL_WIDTH + len(picks) * (tw + pad) + pad,
                              len(rows) * (th + pad) + pad + 14), "white")
    draw = ImageDraw.Draw(sheet)
    for j, idx in enumerate(picks):
        draw.text((LABEL_WIDTH + pad + j * (tw + pad), 2), f"frame {indices[idx]}", fill="black")
    for i, (label, frames) in enumerate(rows):
        y = 14 + pad + i * (th + pad)
        draw.text((4, y + th // 2 - 6), label[:14], fill="black")
        for j, idx in enumerate(picks):
            thumb = Image.fromarray(frames[idx]).resize((tw, th), Image.Resampling.BILINEAR)
            sheet.paste(thumb, (LABEL_WIDTH + pad + j * (tw + pad), y))
    return sheet


def _flicker_plot(ref: np.ndarray, outputs: dict[str, np.ndarray], title: str, path: Path,
                  indices: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from colorvid.plugins.metrics import colorfulness

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    series = [("original", ref)] + list(outputs.items())
    for k, (label, frames) in enumerate(series):
        style = {"color": "black", "linewidth": 2.0} if k == 0 else {"linewidth": 1.2}
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.float64) / 255.0
        top.plot(indices, colorfulness(x).numpy(), label=label, **style)
        if len(frames) > 1:
            bottom.plot(indices[1:], chroma_change(frames), label=label, **style)
    top.set_ylabel("colourfulness M")
    top.set_title(f"{title}: per-frame colourfulness and chroma change (flicker)")
    bottom.set_ylabel("mean |ab_t - ab_t-1|")
    bottom.set_xlabel("source frame")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.legend(fontsize=8, ncol=min(4, len(series)))
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)


def write_pictures(out: Path, video: str, ref: np.ndarray, outputs: dict[str, np.ndarray],
                   config: EvalConfig, indices: list[int] | None = None) -> dict[str, str]:
    """Contact sheet and flicker plot of one video; returns their paths relative to ``out``.

    ``indices`` are the source frame numbers of ``ref``'s frames (labels of the sheet).
    """
    indices = list(range(len(ref))) if indices is None else indices
    sheet = _contact_sheet(ref, outputs, config.sheet_columns, indices)
    sheet_path = out / "sheets" / f"{video}.png"
    atomic_write(sheet_path, lambda tmp: sheet.save(tmp, format="PNG"))
    plot_path = out / "plots" / f"{video}.png"
    _flicker_plot(ref, outputs, video, plot_path, indices)
    return {"sheet": sheet_path.relative_to(out).as_posix(),
            "plot": plot_path.relative_to(out).as_posix()}


def _encode_webm(path: Path, frames: np.ndarray, fps: float | None) -> None:
    import av

    # yuv420p needs even sizes: drop the last row / column when odd.
    frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
    rate = Fraction(fps or 25.0).limit_denominator(1001)

    def write(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="webm") as c:
            s = c.add_stream("libvpx", rate=rate)
            s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            s.bit_rate = 2_000_000
            for f in frames:
                for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(packet)
            for packet in s.encode():
                c.mux(packet)

    atomic_write(path, write)


def write_clips(out: Path, video: str, ref: np.ndarray, outputs: dict[str, np.ndarray],
                fps: float | None) -> list[dict[str, str]]:
    """WebM (VP8) of the original and every output; returns records for results.json."""
    clips = []
    for model, frames in [("original", ref)] + list(outputs.items()):
        path = out / "clips" / video / f"{model}.webm"
        _encode_webm(path, frames, fps)
        clips.append({"video": video, "model": model, "path": path.relative_to(out).as_posix()})
    return clips


# -- tables ---------------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    if x is None:
        return "failed"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.5g}"


def _arrow(result: EvalResult, metric: str) -> str:
    return "↑" if result.higher_is_better.get(metric) else "↓"


def _table(result: EvalResult, values: dict[str, dict[str, float | None]],
           notes: dict[tuple[str, str], str] | None = None) -> list[str]:
    head = "| model | " + " | ".join(f"{m} {_arrow(result, m)}" for m in result.metrics) + " |"
    lines = [head, "|---" * (len(result.metrics) + 1) + "|"]
    best: dict[str, float] = {}
    for m in result.metrics:
        vals = [v[m] for v in values.values() if v.get(m) is not None and not math.isnan(v[m])]
        if len(vals) > 1:  # "best" needs something to beat
            best[m] = max(vals) if result.higher_is_better.get(m) else min(vals)
    for model, row in values.items():
        cells = []
        for m in result.metrics:
            text = _fmt(row.get(m))
            if row.get(m) is not None and best.get(m) == row[m]:
                text = f"**{text}**"
            cells.append(text + (notes or {}).get((model, m), ""))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def _markdown(result: EvalResult) -> str:
    from colorvid.core.host import _own_version

    cfg = result.config
    ok_videos = [v for v in result.videos if v.error is None]
    lines = [
        "# colorvid evaluation", "",
        f"{len(result.videos)} video(s), {len(result.models)} model(s); frames per video: "
        f"{cfg.frames or 'all'}, stride {cfg.stride}, seed {cfg.seed}; colorvid "
        f"{_own_version()}, {result.seconds:.1f} s. The `grey` row is the baseline (ab = 0: the "
        "grey input itself).", "",
        "## Summary (mean over videos)", "",
        "↓ lower is better, ↑ higher is better; best value of each column in bold.", "",
    ]
    counts: dict[tuple[str, str], str] = {}
    for model in result.models:
        for m in result.metrics:
            n = sum(1 for c in result.cells if c.model == model and c.metric == m
                    and c.value is not None)
            if 0 < n < len(result.videos):
                counts[(model, m)] = f" ({n}/{len(result.videos)})"
    lines += _table(result, result.summary(), counts) + ["", "## Metrics", ""]
    lines += [f"- `{m}` {_arrow(result, m)}: {result.descriptions.get(m, '')}"
              for m in result.metrics]
    lines += ["", "## Videos", ""]
    for v in result.videos:
        if v.error is not None:
            lines += [f"### {v.name}", "", f"Could not be read: {v.error}", ""]
            continue
        per = {model: {m: (c.value if (c := result.value(v.name, model, m)) else None)
                       for m in result.metrics} for model in result.models}
        lines += [f"### {v.name}", "", f"`{v.path}`: {v.width}x{v.height}, {v.frames} frames "
                  "evaluated.", ""] + _table(result, per) + [""]
        pics = result.pictures.get(v.name, {})
        if "sheet" in pics:
            lines += [f"![{v.name} contact sheet]({pics['sheet']})", ""]
        if "plot" in pics:
            lines += [f"![{v.name} flicker plot]({pics['plot']})", ""]
    failed = [c for c in result.cells if c.error is not None]
    if failed or result.problems:
        lines += ["## Failures", ""]
        seen = set()
        for c in failed:
            # A model or video failure fails every metric alike: list it once.
            whole = c.error.startswith(("model", "video"))
            key = (c.video, c.model, c.error if whole else c.metric)
            if key in seen:
                continue
            seen.add(key)
            what = c.model if whole else f"{c.model} / {c.metric}"
            lines.append(f"- {c.video} / {what}: {c.error}")
        lines += [f"- {p}" for p in result.problems] + [""]
    if not ok_videos:
        lines += ["No video could be read.", ""]
    return "\n".join(lines)



def _records(result: EvalResult) -> dict[str, Any]:
    import dataclasses

    cfg = dataclasses.asdict(result.config)
    cfg["models"], cfg["metrics"] = list(result.config.models), result.config.metrics
    return {
        "config": cfg,
        "videos": [dataclasses.asdict(v) for v in result.videos],
        "models": result.models,
        "metrics": [{"name": m, "higher_is_better": result.higher_is_better.get(m, False),
                     "description": result.descriptions.get(m, "")} for m in result.metrics],
        "results": [{"video": c.video, "model": c.model, "metric": c.metric,
                     "value": json_number(c.value), "error": c.error} for c in result.cells],
        "summary": {model: {m: json_number(v) for m, v in row.items()}
                    for model, row in result.summary().items()},
        "clips": result.clips,
        "pictures": result.pictures,
        "problems": result.problems,
        "seconds": result.seconds,
    }


def write_reports(out: Path, result: EvalResult) -> None:
    """results.csv (one row per video, model, metric), results.json and report.md."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video", "model", "metric", "value", "error"])
    for c in result.cells:
        w.writerow([c.video, c.model, c.metric, "" if c.value is None else repr(c.value),
                    c.error or ""])
    _write_text(out / "results.csv", buf.getvalue())
    _write_text(out / "results.json", json.dumps(_records(result), indent=2) + "\n")
    _write_text(out / "report.md", _markdown(result))
