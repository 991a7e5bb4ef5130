"""``colorvid export``: the per-frame networks as ONNX files for vs-mlrt.

    colorvid export onnx --model zhang -o zhang.onnx
    colorvid export onnx --model ensemble --preset full --input rgb -o ensemble-rgb.onnx

The graph (:mod:`colorvid.core.vapoursynth.mlrt`) takes a GRAYS (``--input gray``) or RGBS
(``--input rgb``) clip and gives an RGBS clip, with the resize to the render size, the network,
the ab upsampling and Lab -> RGB inside; in a VapourSynth script:

    rgb = core.ort.Model(core.resize.Point(clip, format=vs.GRAYS), "zhang.onnx")
"""

from __future__ import annotations

import argparse
from pathlib import Path

from colorvid.core.cli import CLIError
from colorvid.core.cli.signals import interrupts_from_signals
from colorvid.core.files import OutputError, check_output_folder

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from colorvid.core.vapoursynth.mlrt import EXPORTABLE, INPUTS

    p = sub.add_parser("export", help="export a network for other runtimes (vs-mlrt's ONNX)")
    esub = p.add_subparsers(dest="export_command", metavar="FORMAT")
    esub.required = True
    onnx = esub.add_parser("onnx", help="an ONNX network in vs-mlrt's conventions "
                                        "(core.ort.Model, core.trt.Model, ...)")
    onnx.add_argument("--model", required=True, choices=sorted(EXPORTABLE),
                      help="the colorizer (lrcn: its per-frame path, no temporal context)")
    onnx.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    onnx.add_argument("--weights", type=Path, default=None,
                      help="a colorvid .safetensors (default: the shipped weights of the preset)")
    onnx.add_argument("--preset", default=None, help="tiny or full (default: the weights')")
    onnx.add_argument("--render-size", type=int, default=None,
                      help="the network's internal resolution (default: the model's)")
    onnx.add_argument("--input", choices=INPUTS, default="gray",
                      help="the clip vs-mlrt is given: GRAYS (gray, default) or RGBS (rgb)")
    onnx.add_argument("--force", action="store_true", help="overwrite an existing output file")
    onnx.set_defaults(func=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    from colorvid.core.vapoursynth.mlrt import build_colorizer, export_onnx

    if args.output.suffix != ".onnx":
        raise CLIError(f"export onnx: --output must end in .onnx, got {args.output}")
    if args.output.exists() and not args.force:
        raise CLIError(f"export onnx: {args.output} exists; pass --force to overwrite it")
    try:
        check_output_folder(args.output)
    except OutputError as e:
        raise CLIError(f"export onnx: {e}") from e
    if args.weights is not None and not args.weights.is_file():
        raise CLIError(f"export onnx: weights file {args.weights} does not exist")
    options = {"weights": args.weights, "preset": args.preset, "render_size": args.render_size}
    if args.model == "ensemble":
        options.pop("render_size")  # each member keeps its own
        if args.weights is not None:
            raise CLIError("export onnx: --weights does not apply to ensemble (its members "
                           "load their own)")
    try:
        colorizer = build_colorizer(args.model, **options)
    except (ValueError, OSError, TypeError) as e:
        raise CLIError(f"export onnx: cannot create {args.model!r}: {e}") from e
    try:
        with interrupts_from_signals():
            export_onnx(colorizer, args.output, input=args.input, overwrite=args.force)
    except OutputError as e:
        raise CLIError(f"export onnx: {e}", 1) from e
    except KeyboardInterrupt:
        raise CLIError(f"interrupted; {args.output} was not written", 130) from None
    except ImportError as e:
        raise CLIError(f"export onnx: {e.name or e} is missing; "
                       "pip install 'colorvid[export]'") from e
    print(f"wrote {args.output}: {args.model} ({args.input.upper()} in, RGB out); "
          f"core.ort.Model(clip, {str(args.output)!r})")
    return 0
