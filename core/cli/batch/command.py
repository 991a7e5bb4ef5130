"""``colorvid batch INPUT... -o OUTDIR``: colorize a collection (files, folders searched
recursively, or ``--list FILE``) with the model loaded once per worker, resumably, on this
machine or a Ray cluster (``--ray ADDRESS``); ``colorvid batch --status OUTDIR`` summarises.

    colorvid batch archive/ -o colour/ --model lrcn
    colorvid batch --list reels.txt -o /shared/colour --ray auto
    colorvid batch --status colour/

Each input is colorized exactly as ``colorvid colorize INPUT -o OUTPUT`` would with the same
options (the same function, :func:`colorvid.core.cli.colorize.colorize_input`); the manifest
``OUTDIR/colorvid-batch.sqlite`` records every input, and a rerun of the same command does only
what is not done (docs/batch.md). Exit status: 0 when every input is done, 1 when some failed,
130 when interrupted (rerun to go on), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from colorvid.core.cli import CLIError
from colorvid.core.cli.colorize import EXIT_INTERRUPTED, add_options

__all__ = ["add_parser", "colorize_options", "run", "status_text"]

LOCK_NAME = ".colorvid-batch.lock"
SHOWN_ERRORS = 20  # failed inputs listed by --status and at the end of a run


def _count(what: str, minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, got {value}")
        return value

    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch", help="colorize many files, resumably, locally or on a Ray cluster",
        description="Colorize every input under INPUT... into OUTDIR, mirroring the input tree "
        "(below the inputs' common parent folder). Folders are searched recursively for "
        "videos, image sequences (a folder of numbered frames) and stills. Each input is "
        "colorized exactly as 'colorvid colorize' would with the same options. A manifest "
        "(OUTDIR/colorvid-batch.sqlite) records each input; rerunning the same command skips "
        "what is done, retries what failed and redoes what changed. Ctrl-C stops cleanly.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="video or image files and folders (searched recursively)")
    p.add_argument("-o", "--output", dest="outdir", metavar="OUTDIR",
                   help="output folder (created; holds the outputs and the manifest)")
    p.add_argument("--list", dest="list_file", metavar="FILE",
                   help="read inputs from FILE, one path a line (- for stdin; blank lines and "
                   "lines starting with # skipped)")
    p.add_argument("--status", metavar="OUTDIR",
                   help="print OUTDIR's manifest summary (done / failed / left, and the failed "
                   "inputs' errors) and exit")
    p.add_argument("--workers", type=_count("--workers", 1), metavar="N",
                   help="workers, each loading the model once (default: one per CUDA device, "
                   "else one per 4 CPU cores; on Ray: one per GPU, else one per "
                   "--cpus-per-worker CPUs)")
    p.add_argument("--cpus-per-worker", type=_count("--cpus-per-worker", 1), metavar="C",
                   help="CPU cores per CPU worker (default: the cores shared out evenly; on "
                   "Ray 4, or the cluster's CPUs when fewer)")
    p.add_argument("--retries", type=_count("--retries", 0), default=2, metavar="N",
                   help="tries again, in this run, of an input whose worker died or failed "
                   "unexpectedly (default 2; a corrupt input is not retried until the next run)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run on the Ray cluster at ADDRESS (host:port, or auto for the one "
                   "'ray start' began on this machine); needs pip install colorvid[ray]")
    add_options(p)
    p.set_defaults(func=run)


def colorize_options(args: argparse.Namespace) -> dict[str, Any]:
    """The colorize options in ``args`` (those :func:`add_options` defines), by name."""
    probe = argparse.ArgumentParser(add_help=False)
    add_options(probe)
    return {a.dest: getattr(args, a.dest) for a in probe._actions if a.dest != "help"}


def _read_list(path: str) -> list[str]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise CLIError(f"--list {path}: cannot read ({e.strerror or e})") from None
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.status is not None:
        if args.inputs or args.outdir or args.list_file:
            raise CLIError("--status OUTDIR takes no INPUT, -o or --list")
        print(status_text(Path(args.status)))
        return 0
    if not args.outdir:
        raise CLIError("batch: -o OUTDIR is required (or --status OUTDIR)")
    inputs = list(args.inputs) + (_read_list(args.list_file) if args.list_file else [])
    if not inputs:
        raise CLIError("batch: no input; accepted: files or folders, or --list FILE")
    outdir = Path(os.path.abspath(args.outdir))
    if outdir.exists() and not outdir.is_dir():
        raise CLIError(f"{args.outdir}: not a folder; -o takes an output folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"{args.outdir}: cannot create the output folder ({e.strerror})") from e
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        with _locked(outdir):
            return _run(args, inputs, outdir)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _locked:
    """One driver per OUTDIR: a second one would write the same outputs and manifest."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / LOCK_NAME

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise CLIError(f"{self.path.parent}: another colorvid batch is writing to this "
                           "folder; wait for it or stop it (colorvid batch --status shows its "
                           "progress)") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _check_options(options: dict[str, Any]) -> None:
    """What would fail every input alike is refused before any work: an unknown model, an
    encoder option that the encoder refuses."""
    from colorvid.core.host import get_host
    from colorvid.core.video.transcode import encoder_name, encoder_options

    try:
        get_host().entry("colorizer", options["model"])
    except KeyError as e:
        raise CLIError(str(e.args[0]) if e.args else f"unknown colorizer {options['model']!r}",
                       1) from None
    try:
        encoder_options(encoder_name(options.get("codec") or "libx264"), options.get("crf"),
                        options.get("preset"))
    except Exception as e:  # noqa: BLE001 - the encoder's own one-line reason
        raise CLIError(str(e).splitlines()[0], 1) from None
    weights = options.get("weights")
    if weights is not None and not Path(weights).is_file():
        raise CLIError(f"--weights {weights}: no such file", 1)


def _run(args: argparse.Namespace, inputs: list[str], outdir: Path) -> int:
    from colorvid.core.cli.batch.driver import BatchError, decide, drive
    from colorvid.core.cli.batch.manifest import Manifest
    from colorvid.core.cli.batch.plan import job_identity, plan_items
    from colorvid.core.cli.batch.progress import BatchProgress

    mode = "quiet" if args.quiet else args.progress
    options = colorize_options(args)
    _check_options(options)
    items, ignored = plan_items(inputs, outdir, stills=args.stills)
    if not items:
        raise CLIError(f"batch: no video, image sequence or still found in {', '.join(inputs)}"
                       + (f" ({ignored} other files)" if ignored else ""), 1)
    jobs = {kind: job_identity(options, kind) for kind in sorted({i.kind for i in items})}
    job_ids = {kind: job_id for kind, (job_id, _) in jobs.items()}
    with Manifest(outdir) as manifest:
        manifest.add_jobs({job_id: job for job_id, job in jobs.values()})
        manifest.set_meta("command", " ".join(["colorvid", "batch", *sys.argv[2:]])
                          if sys.argv[1:2] == ["batch"] else "colorvid batch")
        d = decide(items, job_ids, manifest.rows(), outdir, args.overwrite)
        manifest.plan([(i, job_ids[i.kind], "pending", None) for i, _ in d.run]
                      + [(i, job_ids[i.kind], "failed", i.error) for i in d.failed])
        if mode != "quiet":
            print(f"colorvid: batch: {len(items)} inputs: {len(d.run)} to colorize, "
                  f"{len(d.skip)} already done, {len(d.failed)} unusable"
                  + (f"; {ignored} other files ignored" if ignored else ""), file=sys.stderr)
        outcome = None
        if d.run:
            progress = BatchProgress(len(d.run), sum(i.size for i, _ in d.run), mode)
            pool = _pool(args, options)
            try:
                outcome = drive(pool, manifest, d.run, outdir, retries=args.retries,
                                progress=progress)
            except BatchError as e:
                raise CLIError(str(e), 1) from None
            progress.close()
        counts = manifest.counts()
        failed = list(manifest.failed())
    if mode != "quiet":
        print(f"colorvid: batch: {counts['done']} done, {counts['failed']} failed, "
              f"{counts['pending'] + counts['running']} left; manifest "
              f"{outdir / 'colorvid-batch.sqlite'}", file=sys.stderr)
    if outcome is not None and outcome.interrupted:
        raise CLIError("interrupted; finished outputs and the manifest are kept: rerun the same "
                       "command to go on", EXIT_INTERRUPTED)
    if failed:
        for row in failed[:SHOWN_ERRORS]:
            print(f"colorvid: failed: {row.input}: {row.error}", file=sys.stderr)
        if len(failed) > SHOWN_ERRORS:
            print(f"colorvid: ... and {len(failed) - SHOWN_ERRORS} more (colorvid batch "
                  f"--status {outdir})", file=sys.stderr)
        return 1
    return 0


def _pool(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    from colorvid.core.cli.batch.local import LocalPool, local_slots
    from colorvid.core.video.pipeline import usable_cpus

    if args.ray:
        try:
            from colorvid.core.cli.batch.ray_pool import RayPool, connect, default_ray_workers

            ray = connect(args.ray)
        except ImportError:
            raise CLIError("--ray: Ray is not installed; accepted: pip install colorvid[ray]",
                           2) from None
        except Exception as e:  # noqa: BLE001 - Ray's own reason, one line
            text = str(e).strip().splitlines()
            raise CLIError(f"--ray {args.ray}: cannot connect ({text[0] if text else e}); "
                           "accepted: host:port of a running head, or auto after "
                           "'ray start --head'", 1) from None
        slots = default_ray_workers(ray, args.device, args.workers, args.cpus_per_worker)
        return RayPool(ray, args.ray, options, slots)
    slots = local_slots(args.device, args.workers, args.cpus_per_worker, usable_cpus())
    return LocalPool(options, slots)


def status_text(outdir: Path) -> str:
    """What ``--status OUTDIR`` prints: the counts, then each failed input with its error."""
    from colorvid.core.cli.batch.manifest import MANIFEST_NAME, Manifest

    if not (outdir / MANIFEST_NAME).is_file():
        raise CLIError(f"{outdir}: no {MANIFEST_NAME} here; accepted: the OUTDIR of a "
                       "colorvid batch", 1)
    with Manifest(outdir, readonly=True) as m:
        counts = m.counts()
        failed = list(m.failed())
        frames = m.db.execute("SELECT coalesce(sum(frames), 0) FROM items "
                              "WHERE status = 'done'").fetchone()[0]
        command = m.meta("command")
    lines = [f"{outdir}: {counts['done']} done ({frames} frames), {counts['failed']} failed, "
             f"{counts['pending'] + counts['running']} left"
             + (f" ({counts['running']} running)" if counts["running"] else "")]
    if command:
        lines.append(f"last command: {command}")
    for row in failed[:SHOWN_ERRORS]:
        lines.append(f"failed: {row.input}: {row.error}")
    if len(failed) > SHOWN_ERRORS:
        lines.append(f"... and {len(failed) - SHOWN_ERRORS} more: sqlite3 "
                     f"{outdir / MANIFEST_NAME} \"select input, error from items where "
                     "status = 'failed'\"")
    return "\n".join(lines)
