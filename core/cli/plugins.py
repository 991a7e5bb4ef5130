"""``colorvid plugins [--json] [--kind KIND]``: what is registered, and from where."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from colorvid.core.host import KINDS, PluginLoadWarning, get_host


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list installed colorizers, losses and metrics")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--kind", choices=KINDS, help="only this kind")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        # The errors are part of this command's own output; no duplicate warning lines.
        warnings.simplefilter("ignore", PluginLoadWarning)
        host = get_host()
        entries = host.entries(args.kind)
    if args.json:
        payload = {
            "plugins": [e.record() for e in entries],
            "errors": [e.record() for e in host.errors],
        }
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    rows = [("NAME", "KIND", "DISTRIBUTION", "VERSION", "DESCRIPTION")]
    rows += [(e.name, e.kind, e.distribution, e.version, e.description) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=False)) + "  " + r[4])
    for err in host.errors:
        print(f"error: {err}", file=sys.stderr)
    return 0
