"""What a batch colorizes: the inputs found under the paths given, where each one's output goes,
and the two identities that decide whether a rerun redoes it.

>>> items, root = plan_items(["archive"], "out")  # doctest: +SKIP
>>> items[0].kind, items[0].output                   # doctest: +SKIP
('video', 'reel1/a.mp4')

*Inputs.* A file is an input of its own: an image file is a still, anything else a video. A
folder is searched recursively (hidden files and folders, and OUTDIR, skipped): each video file
(by extension, :data:`VIDEO_EXTS`) is an input; a folder whose images all end in a number is
one image sequence, as ``colorvid colorize FOLDER`` would read it (``--stills``: never); other
images are stills, one input each. Files of other kinds are counted and left alone.

*Outputs* mirror the inputs below the folder the paths given have in common (a folder given
counts as itself, a file as its parent): ``colorvid batch archive -o out`` writes
``out/reel1/a.mp4`` for ``archive/reel1/a.mp4``, ``colorvid batch a/x.mp4 b/y.mp4 -o out``
writes ``out/a/x.mp4`` and ``out/b/y.mp4``. A sequence becomes a folder of frames with the
same names, a still an image with the same name.

*Identities.* An input is identified by its path, size and modification time (a sequence: its
frame count, total size and newest frame), not by a hash of its content: reading a 10,000-file
archive to hash it would take as long as a day's colorization takes to plan, and tools that
rewrite a file change its modification time. The job is identified by the model, a SHA-256 of
its weights (``--weights`` or the shipped default files), the plugin's distribution and
version, and every colorize option that can change the output of that kind of input
(:func:`job_identity`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from colorvid.core.files import sha256_file
from colorvid.core.video.decode import VideoError
from colorvid.core.video.images import is_image_file, open_images

__all__ = ["IGNORED_OPTIONS", "KINDS", "VIDEO_EXTS", "Item", "find_inputs", "job_identity",
           "plan_items", "weights_digest"]

VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v", ".mpg", ".mpeg", ".ts",
              ".mts", ".mxf", ".wmv", ".flv", ".ogv", ".dv", ".3gp")
KINDS = ("video", "sequence", "still")

# colorize options that never change an output's pixels or bytes: they choose speed, where the
# model runs (float rounding aside) and what is printed. Every other option, including ones
# added to colorize later, is part of the job's identity.
NEUTRAL_OPTIONS = frozenset({"batch", "pipeline", "quiet", "progress", "overwrite", "device"})
# Options that a kind of input does not use ("stills" chooses how folders are planned, so it
# changes the items themselves, not how one is colorized).
IGNORED_OPTIONS: Mapping[str, frozenset[str]] = {
    "video": frozenset({"fps", "stills"}),
    "sequence": frozenset({"fps", "stills", "codec", "crf", "preset", "skip_errors"}),
    "still": frozenset({"fps", "stills", "codec", "crf", "preset", "skip_errors", "start",
                        "duration"}),
}


@dataclasses.dataclass(frozen=True)
class Item:
    """One input of the batch and where its output goes."""

    input: str  # absolute path: a video or image file, or a sequence's folder
    kind: str  # "video", "sequence" or "still"
    output: str  # relative to OUTDIR
    size: int  # bytes (a sequence: all its frames)
    mtime_ns: int  # last modification (a sequence: its newest frame)
    files: int  # 1, or a sequence's frame count
    error: str | None = None  # found while planning: recorded as failed, never run

    @property
    def identity(self) -> tuple[int, int, int]:
        return (self.size, self.mtime_ns, self.files)


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _hidden(name: str) -> bool:
    return name.startswith(".")


def find_inputs(paths: Iterable[str | os.PathLike[str]], *, stills: bool = False,
                skip: Path | None = None) -> tuple[list[tuple[Path, str, str | None]], int]:
    """The inputs under ``paths``: ``([(path, kind, error or None)], files ignored)``.

    ``skip`` (OUTDIR) is never searched. A path that does not exist is an input with an error,
    so that a long ``--list`` is recorded and goes on rather than stopping at one typo.
    """
    found: list[tuple[Path, str, str | None]] = []
    ignored = 0
    seen: set[Path] = set()

    def add(path: Path, kind: str, error: str | None = None) -> None:
        if path not in seen:
            seen.add(path)
            found.append((path, kind, error))

    for given in paths:
        p = Path(os.path.abspath(given))
        if p.is_file():
            add(p, "still" if is_image_file(p) else "video")
        elif p.is_dir():
            ignored += _walk(p, stills, skip, add)
        else:
            add(p, "video", f"{given}: no such file or folder")
    return found, ignored


def _walk(top: Path, stills: bool, skip: Path | None, add) -> int:
    ignored = 0
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not _hidden(d)
                         and (skip is None or (here / d).resolve() != skip))
        files = sorted(f for f in files if not _hidden(f))
        images = [f for f in files if is_image_file(f)]
        if images:
            try:
                source = open_images(here, stills=stills)
            except VideoError as e:
                add(here, "sequence", str(e).splitlines()[0])
            else:
                if source.kind == "sequence":
                    add(here, "sequence")
                else:
                    for f in images:
                        add(here / f, "still")
        for f in files:
            if Path(f).suffix.lower() in VIDEO_EXTS:
                add(here / f, "video")
            elif not is_image_file(f):
                ignored += 1
    return ignored


def _identity(path: Path, kind: str) -> tuple[int, int, int]:
    if kind != "sequence":
        return (*_stat(path), 1)
    size = newest = count = 0
    for f in path.iterdir():
        if f.is_file() and is_image_file(f) and not _hidden(f.name):
            s, m = _stat(f)
            size, newest, count = size + s, max(newest, m), count + 1
    return size, newest, count


def plan_items(paths: Iterable[str | os.PathLike[str]], outdir: str | os.PathLike[str], *,
               stills: bool = False) -> tuple[list[Item], int]:
    """Every input under ``paths`` with its output path (relative to ``outdir``) and identity;
    returns ``(items, files ignored)``. Problems with one input are in its ``error``."""
    paths = list(paths)
    out = Path(os.path.abspath(outdir))
    found, ignored = find_inputs(paths, stills=stills, skip=out.resolve() if out.exists()
                                 else None)
    if not found:
        return [], ignored
    root = Path(os.path.commonpath([str(_base(Path(os.path.abspath(p)), found))
                                     for p in paths]))
    items = []
    for path, kind, error in found:
        rel = path.relative_to(root).as_posix()
        if error is None:
            try:
                size, mtime, files = _identity(path, kind)
            except OSError as e:
                size = mtime = files = 0
                error = f"{path}: cannot read ({e.strerror or e})"
        else:
            size = mtime = files = 0
        items.append(Item(str(path), kind, rel, size, mtime, files, error))
    return _refuse_nested(items), ignored


def _base(given: Path, found: list[tuple[Path, str, str | None]]) -> Path:
    """The folder a given path's outputs are placed relative to: a folder itself (its contents
    are mirrored), a file's parent, or the parent of a folder that is itself one sequence.
    It depends on the paths given, never on what is found, so that adding a file to an
    archive does not move the outputs of the others."""
    if given.is_dir() and not any(p == given for p, kind, _ in found if kind == "sequence"):
        return given
    return given.parent


def _refuse_nested(items: list[Item]) -> list[Item]:
    """A sequence's output is a folder renamed into place whole: no other output may be inside
    it (a folder holding frames and videos, or frames and subfolders of media)."""
    outputs = sorted(i.output for i in items)
    result = []
    for item in items:
        if item.kind == "sequence" and item.error is None:
            prefix = item.output + "/"
            inside = [o for o in outputs if o.startswith(prefix)]
            if inside:
                item = dataclasses.replace(item, error=(
                    f"{item.input}: holds an image sequence and other media ({inside[0]}); "
                    "accepted: the frames of a sequence in a folder of their own"))
        result.append(item)
    return result


_DIGESTS: dict[Path, str] = {}


def _sha256(path: Path) -> str:
    """A file's sha256, computed once per path in a batch (the weights of every item)."""
    key = path.resolve()
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(key)
    return _DIGESTS[key]


def weights_digest(model: str, weights: str | None) -> str:
    """SHA-256 of ``weights``, else of the model's shipped default weights (every preset's file
    ``<model>-<preset>.safetensors``, in preset order); ``"none"`` for a model without any."""
    from colorvid.core.weights import PRESETS, default_weights_path

    if weights is not None:
        return _sha256(Path(weights))
    files = [default_weights_path(model, p) for p in PRESETS]
    digests = [f"{f.name}:{_sha256(f)}" for f in files if f.is_file()]
    if not digests:
        return "none"
    if len(digests) == 1:
        return digests[0].split(":", 1)[1]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def _plugin_of(model: str) -> str:
    from colorvid.core.host import get_host

    try:
        record = get_host().entry("colorizer", model).record()
    except KeyError:
        return "unknown"
    return f"{record['distribution']} {record['version']}"


def job_identity(options: Mapping[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    """``(job id, job)`` for one kind of input: the job is what decides its output (model,
    weights digest, plugin, the options that kind uses); the id is 16 hex digits of its
    SHA-256, what the manifest compares."""
    model = str(options["model"])
    weights = options.get("weights")
    job = {
        "model": model,
        "weights_sha256": weights_digest(model, weights),
        "plugin": _plugin_of(model),
        "options": {k: v for k, v in sorted(options.items())
                    if k not in NEUTRAL_OPTIONS and k not in IGNORED_OPTIONS[kind]
                    and k not in ("model", "weights")},  # weights: by content, above
    }
    text = json.dumps(job, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16], json.loads(text)
