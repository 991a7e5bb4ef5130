"""Evaluation: grey each video, colorize it with each model, score every metric against the
original, and write a report (``results.csv``, ``results.json``, ``report.md``, pictures, clips).

The data path per video is the one users get: RGB uint8 -> L (:func:`frames_to_l`) ->
``colorizer.predict_ab`` -> :func:`lab_to_frames` -> RGB uint8, and metrics compare that with the
decoded original. The ``grey`` baseline (ab = 0) is always the first row.

>>> from colorvid.core.evaluation.runner import EvalConfig, evaluate
>>> result = evaluate(["clip.mp4"], "report", EvalConfig(models=["grey"]))  # doctest: +SKIP
>>> result.summary()["grey"]["rmse_ab"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from colorvid.core.api import create_colorizer, create_metric
from colorvid.core.frames import lab_to_frames
from colorvid.core.host import get_host
from colorvid.core.interfaces import Colorizer, Metric
from colorvid.core.video.decode import probe, read_frames
from colorvid.core.video.images import is_image_file, is_pattern, open_images, to_8bit
from colorvid.core.video.pipeline import VideoColorizer
from colorvid.core.video.stabilize import StabilizeOptions

__all__ = [
    "BASELINE",
    "STABILIZED_SUFFIX",
    "VIDEO_SUFFIXES",
    "Cell",
    "claim_report_folder",
    "EvalConfig",
    "EvalResult",
    "VideoRecord",
    "colorize_frames",
    "colorize_frames_both",
    "evaluate",
    "find_videos",
]

BASELINE = "grey"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".y4m")
# The report's column order: the paper's RMSE first, then the field's usual order; metrics of
# third-party plugins follow alphabetically.
METRIC_ORDER = ("rmse_ab", "rmse_rgb", "psnr", "ssim", "colorfulness", "colorfulness_gap",
                "hue_accuracy", "chroma_ratio", "cdc", "warp_error", "still_flicker")
# Frames colorized per forward pass of a stateless model: bounds memory on long videos.
BATCH_FRAMES = 8
# The row of a model run through the temporal stabiliser (EvalConfig.stabilize): "zhang+stabilize"
STABILIZED_SUFFIX = "+stabilize"


@dataclasses.dataclass
class EvalConfig:
    """What to evaluate and how.

    Attributes:
        models: registered colorizer names, or ``NAME@LABEL`` for a variant of NAME with its
            own options (its own row); the grey baseline is added in front when missing.
        options: per-model keyword options for ``create_colorizer`` (e.g. ``{"zhang":
            {"weights": "z.pth"}}``).
        metrics: metric names (None: every registered metric).
        frames: at most this many frames per video (None: all); ``stride`` keeps every n-th.
        seed: ``torch.manual_seed`` before every (video, model) run, so results repeat.
        sheet_columns: frames shown per contact sheet.
        write_clips: encode each colorized video (WebM, for ``colorvid ctt serve``).
        write_pictures: draw the contact sheet and flicker plot of each video.
        device: device passed to colorizers that accept one (None: their default).
        stabilize: also score each model (not the grey baseline) through the temporal
            stabiliser at this strength (:mod:`colorvid.core.video.stabilize`,
            bidirectional), as the row ``<model>+stabilize`` after the model's own.
    """

    models: Sequence[str] = (BASELINE,)
    options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    metrics: Sequence[str] | None = None
    frames: int | None = None
    stride: int = 1
    seed: int = 0
    sheet_columns: int = 6
    write_clips: bool = True
    write_pictures: bool = True
    device: str | None = None
    stabilize: float | None = None

    def validate(self) -> None:
        if self.frames is not None and (not isinstance(self.frames, int) or self.frames < 1):
            raise ValueError(f"frames must be a positive int or None, got {self.frames!r}")
        if not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"stride must be an int >= 1, got {self.stride!r}")
        if not isinstance(self.sheet_columns, int) or self.sheet_columns < 1:
            raise ValueError(f"sheet_columns must be an int >= 1, got {self.sheet_columns!r}")
        if self.stabilize is not None:
            StabilizeOptions.coerce(self.stabilize)  # a clear ValueError when out of range
        unknown = set(self.options) - set(self.model_names())
        if unknown:
            raise ValueError(f"options given for models that are not evaluated: "
                             f"{', '.join(sorted(unknown))}; evaluated: "
                             f"{', '.join(self.model_names())}")

    def model_names(self) -> list[str]:
        names = [BASELINE] + [m for m in self.models if m != BASELINE]
        return list(dict.fromkeys(names))  # keep order, drop repeats

    def row_names(self) -> list[str]:
        """The report's rows: each model, then (with ``stabilize``) its stabilised run."""
        rows = []
        for name in self.model_names():
            rows.append(name)
            if self.stabilize is not None and name != BASELINE:
                rows.append(name + STABILIZED_SUFFIX)
        return rows


@dataclasses.dataclass
class VideoRecord:
    """One input video: its report name, source path, frames used and any read error."""

    name: str
    path: str
    frames: int = 0
    width: int = 0
    height: int = 0
    fps: float | None = None
    error: str | None = None


@dataclasses.dataclass
class Cell:
    """One (video, model, metric) result: a value, or the error that prevented it."""

    video: str
    model: str
    metric: str
    value: float | None
    error: str | None = None


@dataclasses.dataclass
class EvalResult:
    """Everything a report is made of; ``problems`` lists failures outside the score table."""

    config: EvalConfig
    videos: list[VideoRecord]
    models: list[str]
    metrics: list[str]
    higher_is_better: dict[str, bool]
    descriptions: dict[str, str]
    cells: list[Cell]
    clips: list[dict[str, str]] = dataclasses.field(default_factory=list)
    pictures: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def value(self, video: str, model: str, metric: str) -> Cell | None:
        for c in self.cells:
            if (c.video, c.model, c.metric) == (video, model, metric):
                return c
        return None

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Mean over the videos where the value exists (None when it failed everywhere)."""
        out: dict[str, dict[str, float | None]] = {}
        for model in self.models:
            out[model] = {}
            for metric in self.metrics:
                vals = [c.value for c in self.cells if c.model == model and c.metric == metric
                        and c.value is not None]
                out[model][metric] = float(np.mean(vals)) if vals else None
        return out


def _sequence_folders(p: Path) -> list[Path] | None:
    """A folder of image sequences: the DAVIS layout (``JPEGImages/480p/<sequence>/00000.jpg``),
    a folder of sequence folders, or one sequence folder; None when it holds none."""
    for root in (p / "JPEGImages" / "480p", p / "JPEGImages", p):
        if root.is_dir():
            subs = sorted(d for d in root.iterdir() if d.is_dir() and _has_images(d))
            if subs:
                return subs
    return [p] if _has_images(p) else None


def _has_images(p: Path) -> bool:
    return any(f.is_file() and is_image_file(f) for f in p.iterdir())


def find_videos(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (their video files, sorted, not recursive) into video paths;
    image sequences (a folder of frames, a ``%05d`` pattern, the DAVIS layout) count as videos."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if is_pattern(p):
            found.append(p)
        elif p.is_dir() and not any(f.suffix.lower() in VIDEO_SUFFIXES for f in p.iterdir()):
            seqs = _sequence_folders(p)
            if not seqs:
                raise ValueError(f"videos: folder {p} holds no video files "
                                 f"({', '.join(VIDEO_SUFFIXES)}) and no image sequences")
            found.extend(seqs)
        elif p.is_dir():
            vids = sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_SUFFIXES)
            if not vids:
                raise ValueError(f"videos: folder {p} holds no video files "
                                 f"({', '.join(VIDEO_SUFFIXES)})")
            found.extend(vids)
        elif p.is_file():
            found.append(p)
        else:
            raise ValueError(f"videos: {p} is neither a file nor a folder")
    if not found:
        raise ValueError("videos: give at least one video file or folder")
    return found


def _unique_names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        stem = p.parent.name if is_pattern(p) else (p.name if p.is_dir() else p.stem)
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "video"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def _description(metric: str) -> str:
    try:
        return get_host().entry("metric", metric).description
    except KeyError:
        return ""


def _error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip()


def _decode(path: Path, config: EvalConfig) -> tuple[list[tuple[int, np.ndarray]], float | None]:
    """A video's or an image sequence's frames (every ``stride``-th, at most ``frames``) as RGB
    uint8, and the frame rate (sequences: 25 fps)."""
    if is_pattern(path) or path.is_dir():
        source = open_images(path)
        out = []
        for i, rgb in enumerate(source.frames()):
            if config.frames is not None and len(out) >= config.frames:
                break
            if i % config.stride == 0:
                out.append((i, to_8bit(rgb)))
        return out, source.fps
    info = probe(path)
    rate = float(info.frame_rate) if info.frame_rate else None
    return list(read_frames(path, count=config.frames, stride=config.stride)), rate


def colorize_frames(colorizer: Colorizer, frames: np.ndarray, *,
                    stabilize: StabilizeOptions | float | None = None) -> np.ndarray:
    """RGB uint8 ``(T, H, W, 3)`` -> colorized RGB uint8: only the frames' L reaches the model.

    Runs colorize's engine (:meth:`VideoColorizer.stream`: RGB -> L, the model and Lab -> RGB,
    in threads or one after another as colorize chooses, ``BATCH_FRAMES`` at a time), with one
    temporal state for the whole video
    (no scene-cut resets, as the models are scored on their own memory) and the model's chroma
    checked (shape, finite). ``stabilize``: through the temporal stabiliser (which restarts at
    scene cuts).
    """
    return colorize_frames_both(colorizer, frames, stabilize=stabilize)[1]


def colorize_frames_both(colorizer: Colorizer, frames: np.ndarray, *,
                         stabilize: StabilizeOptions | float | None = None
                         ) -> tuple[np.ndarray | None, np.ndarray]:
    """As :func:`colorize_frames`; with ``stabilize`` also the raw model's frames from the same
    model run (the chroma before the stabiliser): ``(raw or None, output)``."""
    vc = VideoColorizer(colorizer, batch=BATCH_FRAMES, scene_cuts=False, check_chroma=True,
                        stabilize=stabilize)
    raw: list[np.ndarray] = []
    if vc.stabilize is not None:
        vc.raw_chroma_hook = lambda L, ab: raw.append(lab_to_frames(L, ab, upsample=True))
    out = np.empty(frames.shape[:3] + (3,), np.uint8)
    n = 0
    for n, rgb in enumerate(vc.stream(frames), start=1):
        out[n - 1] = rgb
    if n != len(frames):
        raise ValueError(f"{colorizer.name}: {n} frames colorized of {len(frames)}")
    return (np.concatenate(raw) if raw else None), out


def _to_video_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.float64) / 255.0


class _Progress:
    """A progress bar over videos x models on stderr (plain lines when stderr is not a TTY)."""

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.start = time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        if self.stream is None:
            return
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        elapsed = time.monotonic() - self.start
        line = (f"eval [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{elapsed:5.1f}s {label}")
        if self.tty:
            end = "\n" if self.done >= self.total else ""
            self.stream.write("\r" + line.ljust(100)[:100] + end)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def claim_report_folder(out: Path, overwrite: bool) -> bool:
    """Make the report folder ``out``; refuse one that holds anything unless ``overwrite``.
    Returns whether it was created (so that a caller may remove it when the run fails)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file; --out takes a report folder")
    if out.is_dir():
        if any(out.iterdir()) and not overwrite:
            raise ValueError(f"{out}: already exists and is not empty (use --overwrite to "
                             "replace its report files; other files in it are kept)")
        return False
    try:
        out.mkdir(parents=True)
    except OSError as e:
        raise ValueError(f"{out}: cannot create the report folder: {e.strerror or e}") from e
    return True


def _create_colorizer(name: str, config: EvalConfig) -> Colorizer:
    """The colorizer of a report row: ``NAME`` or ``NAME@LABEL`` (a variant of NAME with its own
    options, e.g. ``lrcn@tiny`` with ``{"preset": "tiny"}``, scored beside ``lrcn``)."""
    options = dict(config.options.get(name, {}))
    if config.device is not None and "device" not in options:
        options["device"] = config.device
    return create_colorizer(name.partition("@")[0], **options)


def evaluate(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    config: EvalConfig | None = None,
    *,
    progress: TextIO | None = sys.stderr,
    overwrite: bool = False,
) -> EvalResult:
    """Run the evaluation and write the report into ``out_dir``; returns the results.

    Failures of one model or metric on one video are recorded as cells with an error and the run
    goes on; an unreadable video is recorded in ``videos[i].error``. ``out_dir`` must be new or
    empty unless ``overwrite``, which replaces the report's files and keeps any others (colorvid
    ctt's ratings).
    """
    from colorvid.core.evaluation import report  # pictures and files (matplotlib, PIL)

    config = config or EvalConfig()
    config.validate()
    paths = find_videos(inputs)
    out = Path(out_dir)
    claim_report_folder(out, overwrite)
    names = _unique_names(paths)
    models = config.model_names()
    rows = config.row_names()  # models and their stabilised runs, in the report's order
    host = get_host()
    if config.metrics is not None:
        metric_names = list(dict.fromkeys(config.metrics))
    else:
        registered = host.names("metric")
        metric_names = [m for m in METRIC_ORDER if m in registered]
        metric_names += [m for m in registered if m not in METRIC_ORDER]
    started = time.monotonic()

    metrics: dict[str, Metric | BaseException] = {}
    for m in metric_names:
        try:
            metrics[m] = create_metric(m)
        except Exception as e:  # noqa: BLE001 - reported per cell, run continues
            metrics[m] = e
    result = EvalResult(
        config=config, videos=[], models=rows, metrics=metric_names,
        higher_is_better={m: bool(getattr(v, "higher_is_better", False))
                          for m, v in metrics.items()},
        descriptions={m: _description(m) for m in metric_names},
        cells=[],
    )
    colorizers: dict[str, Colorizer | BaseException] = {}
    for model in models:
        try:
            colorizers[model] = _create_colorizer(model, config)
        except Exception as e:  # noqa: BLE001
            colorizers[model] = e
            if progress is not None:  # said once here, not again for every video
                progress.write(f"eval: model {model} cannot be created: {_error_text(e)}\n")

    bar = _Progress(len(paths) * len(rows), progress)
    for path, name in zip(paths, names, strict=False):
        record = VideoRecord(name=name, path=str(path))
        result.videos.append(record)
        try:
            decoded, rate = _decode(path, config)
            if not decoded:
                raise ValueError("no frames decoded")
            indices = [i for i, _ in decoded]
            ref = np.stack([f for _, f in decoded])
            record.frames, record.height, record.width = ref.shape[0], ref.shape[1], ref.shape[2]
            if rate:
                record.fps = rate / config.stride
        except Exception as e:  # noqa: BLE001 - unreadable video: report, go on
            record.error = _error_text(e)
            for model in rows:
                for m in metric_names:
                    result.cells.append(Cell(name, model, m, None, f"video: {record.error}"))
                bar.step(f"{name} (unreadable)")
            continue
        ref_t = _to_video_tensor(ref)
        outputs: dict[str, np.ndarray] = {}
        for model in rows:
            colorizer = colorizers[model.removesuffix(STABILIZED_SUFFIX)]
            try:
                if isinstance(colorizer, BaseException):
                    raise colorizer
                if model not in colorizers:  # "<model>+stabilize": made with the model's row
                    if model not in outputs:
                        raise ValueError("the model's own run failed (see its row)")
                else:
                    torch.manual_seed(config.seed)
                    stabilize = config.stabilize if model != BASELINE else None
                    raw, stabilized = colorize_frames_both(colorizer, ref, stabilize=stabilize)
                    if raw is not None:  # one model run gives both rows
                        outputs[model], outputs[model + STABILIZED_SUFFIX] = raw, stabilized
                    else:
                        outputs[model] = stabilized
            except Exception as e:  # noqa: BLE001
                err = _error_text(e)
                if progress is not None and not isinstance(colorizer, BaseException):
                    progress.write(f"\neval: model {model} failed on {name}: {err}\n")
                for m in metric_names:
                    result.cells.append(Cell(name, model, m, None, f"model: {err}"))
                bar.step(f"{name} x {model} FAILED")
                continue
            pred_t = _to_video_tensor(outputs[model])
            for m in metric_names:
                metric = metrics[m]
                try:
                    if isinstance(metric, BaseException):
                        raise metric
                    value = float(metric.compute(pred_t, ref_t))
                    result.cells.append(Cell(name, model, m, value))
                except Exception as e:  # noqa: BLE001
                    result.cells.append(Cell(name, model, m, None, f"metric: {_error_text(e)}"))
            bar.step(f"{name} x {model}")
        # Pictures and clips are extras: a failure there is reported, the scores still stand.
        try:
            if config.write_pictures:
                result.pictures[name] = report.write_pictures(out, name, ref, outputs, config,
                                                             indices)
            if config.write_clips:
                result.clips.extend(report.write_clips(out, name, ref, outputs, record.fps))
        except Exception as e:  # noqa: BLE001
            result.problems.append(f"{name}: pictures or clips failed: {_error_text(e)}")
    result.seconds = time.monotonic() - started
    report.write_reports(out, result)
    return result

