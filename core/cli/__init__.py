"""colorvid.core.cli: the ``colorvid`` command line (this module: the argparse front, ``main``).

Each sub-command lives in ``colorvid.core.cli.<name>`` (listed in :data:`COMMAND_MODULES`) and
provides ``add_parser(subparsers)``; the parser's ``func(args) -> int`` runs it. ``demo`` is the
script of ``make demo`` (``python -m colorvid.core.cli.demo``), not a sub-command.

Errors the user can fix (bad input, unknown names) are printed as one line on stderr with a
non-zero exit status, never as a traceback.

The top layer: may import anything of colorvid, and nothing outside this folder imports it
(``colorvid/__main__.py`` aside). ``python -m colorvid`` runs :func:`main`; this package has
no ``__main__`` of its own, so that importing anything here runs nothing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "CLIError", "build_parser", "main"]

COMMAND_MODULES: tuple[str, ...] = (
    "colorvid.core.cli.plugins",
    "colorvid.core.cli.weights",
    "colorvid.core.cli.eval",
    "colorvid.core.cli.ctt",
    "colorvid.core.cli.colorize",
    "colorvid.core.cli.keyframes",
    "colorvid.core.cli.batch",
    "colorvid.core.cli.train",
    "colorvid.core.cli.export",
)


class CLIError(Exception):
    """A user-facing error: printed as ``colorvid: <message>`` with exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    from colorvid.core.host import _own_version

    parser = argparse.ArgumentParser(
        prog="colorvid", description="Automatic colorization of black-and-white video."
    )
    parser.add_argument("--version", action="version", version=f"colorvid {_own_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"colorvid: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("colorvid: interrupted", file=sys.stderr)
        return 130

