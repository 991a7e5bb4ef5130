"""``colorvid ctt``: the colorization Turing test on the clips of a ``colorvid eval`` report.

    colorvid ctt serve report/            # http://127.0.0.1:8765/ : raters score clips 1-5
    colorvid ctt results report/ [--json] # mean score and 95% confidence interval per model
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from colorvid.core.cli import CLIError

__all__ = ["add_parser", "run_results", "run_serve"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ctt", help="colorization Turing test: human realism scores",
                       description="Serve a blind rating page for a report's clips, or "
                                   "summarise the scores.")
    ctt = p.add_subparsers(dest="ctt_command", metavar="ACTION")
    ctt.required = True

    serve = ctt.add_parser("serve", help="start the local rating page")
    serve.add_argument("report", metavar="REPORT_DIR", help="folder written by colorvid eval")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any)")
    serve.add_argument("--db", default=None, help="SQLite file (default REPORT_DIR/ctt.sqlite)")
    serve.add_argument("--seed", type=int, default=0, help="seed of the per-rater clip order")
    serve.add_argument("--no-original", action="store_true",
                       help="do not mix the original clips in as a control")
    serve.set_defaults(func=run_serve)

    results = ctt.add_parser("results", help="per-model mean score and confidence interval")
    results.add_argument("report", metavar="REPORT_DIR")
    results.add_argument("--db", default=None, help="SQLite file (default REPORT_DIR/ctt.sqlite)")
    results.add_argument("--confidence", type=float, default=0.95,
                         help="confidence level of the interval (default 0.95)")
    results.add_argument("--json", action="store_true", help="machine-readable output")
    results.set_defaults(func=run_results)


def run_serve(args: argparse.Namespace) -> int:
    from colorvid.core.evaluation.ctt import make_server

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be 0-65535, got {args.port}")
    try:
        server = make_server(args.report, host=args.host, port=args.port, db=args.db,
                             seed=args.seed, include_original=not args.no_original)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise CLIError(str(e)) from e
    print(f"colorvid ctt: {len(server.clips)} clips; rate at {server.url} (Ctrl-C to stop)",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def run_results(args: argparse.Namespace) -> int:
    from colorvid.core.evaluation.ctt import RatingStore, summarize

    if not 0 < args.confidence < 1:
        raise CLIError(f"--confidence must be between 0 and 1, got {args.confidence}")
    db = Path(args.db) if args.db else Path(args.report) / "ctt.sqlite"
    if not db.is_file():
        raise CLIError(f"no ratings database at {db}; start `colorvid ctt serve {args.report}` "
                       "and collect ratings first")
    scores = summarize(RatingStore(db).ratings(), confidence=args.confidence)
    if args.json:
        json.dump({"confidence": args.confidence,
                   "models": [dataclasses.asdict(s) for s in scores]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not scores:
        print("no ratings yet")
        return 0
    level = f"{args.confidence:.0%} CI"
    rows = [("model", "ratings", "raters", "mean", level)]
    for s in scores:
        ci = "n/a" if s.ci_low is None else f"{s.ci_low:.2f} - {s.ci_high:.2f}"
        rows.append((s.model, str(s.ratings), str(s.raters), f"{s.mean:.2f}", ci))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
    return 0
