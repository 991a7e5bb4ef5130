"""``colorvid weights``: convert released weights and inspect colorvid weights files.

    colorvid weights import zhang-eccv16 colorization_release_v2-9b330a0b.pth \
        -o zhang-full.safetensors
    colorvid weights import larsson autocolorize.caffemodel.h5 -o larsson-full.safetensors
    colorvid weights info zhang-full.safetensors

The converters read the released files without executing anything (``torch.load`` with
``weights_only=True``; h5py for the Caffe HDF5 snapshot) and check every layer name and shape.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from colorvid.core.cli import CLIError
from colorvid.core.files import OutputError
from colorvid.core.weights import WeightsError, read_config

__all__ = ["IMPORTERS", "add_parser"]

# Source format -> "module:function(src, dst, **options) -> config". Imported only when used, so
# `colorvid --help` stays fast and one broken importer does not break the others.
IMPORTERS: dict[str, str] = {
    "zhang-eccv16": "colorvid.plugins.models.zhang_import:import_released",
    "larsson": "colorvid.plugins.models.larsson_import:import_released",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="import released model weights, inspect weights files")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    wsub.required = True

    imp = wsub.add_parser("import", help="convert released weights to a colorvid .safetensors")
    imp.add_argument("format", choices=sorted(IMPORTERS), help="what the source file is")
    imp.add_argument("source", type=Path, help="the released file (.pth or .caffemodel.h5)")
    imp.add_argument("-o", "--output", type=Path, required=True, help="the .safetensors to write")
    imp.add_argument("--force", action="store_true", help="overwrite an existing output file")
    imp.add_argument("--anneal-scale", type=float, default=None,
                     help="zhang-eccv16 only: logit scale folded into model8.6 (default 2.606)")
    imp.set_defaults(func=run_import)

    info = wsub.add_parser("info", help="print the config header of a colorvid weights file")
    info.add_argument("file", type=Path)
    info.set_defaults(func=run_info)


def _importer(fmt: str):
    module_name, func_name = IMPORTERS[fmt].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def run_import(args: argparse.Namespace) -> int:
    if args.output.suffix != ".safetensors":
        raise CLIError(f"weights import: --output must end in .safetensors, got {args.output}")
    if args.output.exists() and not args.force:
        raise CLIError(f"weights import: {args.output} exists; pass --force to overwrite it")
    options = {}
    if args.anneal_scale is not None:
        if args.format != "zhang-eccv16":
            raise CLIError("weights import: --anneal-scale applies to zhang-eccv16 only")
        options["anneal_scale"] = args.anneal_scale
    try:
        config = _importer(args.format)(args.source, args.output, **options)
    except (WeightsError, OutputError) as e:  # OutputError: a full disk, an unwritable folder
        raise CLIError(str(e)) from e
    print(f"wrote {args.output}: model {config['model']!r} preset {config['preset']!r} "
          f"from {args.source.name}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    try:
        config = read_config(args.file)
    except WeightsError as e:
        raise CLIError(str(e)) from e
    json.dump(config, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0
