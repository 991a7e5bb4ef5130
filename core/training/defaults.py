"""The recipe of the shipped default weights, in one command:

    python -m colorvid.core.training.defaults OUT --corpus ../shared/corpus --install

Data: a folder of real colour photos and videos (by default the project's corpus, whose
``MANIFEST.tsv`` gives every file's sha256, package and licence; any other folder of photos and
videos works, e.g. your own footage). It is decoded once into ``OUT/cache``
(core/training/data/cache.py) and served as crops at the scale of inference. Files under a
folder named ``heldout`` (and MANIFEST kinds ``video-heldout``) are never trained on: they are
the validation clips.

Stages (``--stages``), each a normal ``colorvid train`` run in ``OUT/<stage>/`` that stops after
``--minutes`` (checkpoints and weights written as it goes, so it can stop at any moment):

- ``sweep``: a few candidate sizes (preset, crop) trained ``--sweep-minutes`` each from scratch,
  scored on held-out frames (hue accuracy, chroma ratio); the table goes to
  ``OUT/sweep.json`` and the model card.
- ``mobilenet``: the per-frame CNN on the ImageNet MobileNetV2 encoder: the decoder learns, the
  encoder stays ImageNet's (frozen), from ``--mobilenet-init`` (default: the shipped weights
  when they exist, else a fresh decoder); ``--tune-encoder`` adds a run with the encoder
  learning at a tenth of the rate.
- ``zhang``: the per-frame CNN, continued from ``--init`` (default: the shipped weights, whose
  header carries the cumulative steps and hours; each run adds to them).
- ``lrcn``: the ConvLSTM over the new per-frame CNN of ``--cnn`` (mobilenet or zhang; the CNN
  frozen at those weights, only the LSTM learns: rebalanced L_seq plus the warping loss and the
  anchor, sequences of real video and synthetic pans).
- ``combine``: instead of ``lrcn``, no LSTM training: the shipped LSTM over the new Zhang CNN
  (``combine_lrcn``). The LSTM reads the CNN's 313 probabilities, so it carries over to a
  retrained CNN of the same bins (the model card's variants table measures it).
- ``larsson``: Larsson's hypercolumn net, continued from ``--larsson-init`` (default: the shipped
  weights; a run kept in checkpoints/ continues that way) with Adam at ``--lr`` (the
  paper's SGD schedule needs 80,000 steps, more than a CPU gives it).

``--install`` copies each stage's weights into the package (fp16) as it finishes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

from colorvid.core.training.trainer import TrainConfig, train
from colorvid.core.weights import default_weights_path, read_config, save_weights

__all__ = ["STAGES", "SWEEP", "combine_lrcn", "evaluate_weights", "install", "main"]

# The candidates of the sweep: (name, preset, crop, batch). tiny@176 costs 0.78 s per step of 8
# on this 2-core machine, tiny@128 0.42 s, small@176 1.49 s (benches/bench_training.py).
SWEEP = (("tiny-176", "tiny", 176, 8), ("tiny-128", "tiny", 128, 16),
         ("small-176", "small", 176, 8))
HELD_OUT = "video/heldout"
STAGES = ("sweep", "mobilenet", "zhang", "lrcn", "combine", "larsson")
CNNS = ("mobilenet", "zhang")  # the per-frame models an LRCN stage builds on


def install(run_file: Path) -> Path:
    """Copy trained weights into the package as fp16 (halves the size; inference casts back)."""
    config = read_config(run_file)
    tensors = load_file(str(run_file))
    state = {k: (v.half() if v.is_floating_point() and not k.endswith(
        ("running_mean", "running_var")) else v) for k, v in tensors.items()
        if not k.startswith("extra.")}
    extras = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    config["stored_dtype"] = "float16"
    target = default_weights_path(config["model"], config["preset"])
    return save_weights(target, state, config, extras)


def combine_lrcn(lstm_file: Path, cnn_file: Path, target: Path) -> Path:
    """An lrcn weights file with the LSTM (``proj``, ``lstm``, ``head``) of ``lstm_file`` over the
    CNN of ``cnn_file`` (a zhang file of the same bins), written atomically to ``target``.

    The header keeps the LSTM's training history (its cumulative steps and hours) and names the
    CNN file with its own totals. The LSTM file's decoding belongs to the old pair and is not
    carried over; the CNN's, when it has been calibrated, is (``calibrate.inherit_decoding``:
    an LRCN decodes as its CNN was calibrated on the photos). An uncalibrated CNN leaves the
    file uncalibrated: calibrate the CNN (``calibrate ZHANG --cache DIR --write``), then
    ``calibrate TARGET --from-cnn ZHANG``.
    """
    from colorvid.core.training.adapters import make_adapter
    from colorvid.core.training.calibrate import DECODE_KEYS, inherit_decoding

    lstm_header, cnn_header = read_config(lstm_file), read_config(cnn_file)
    if lstm_header.get("model") != "lrcn":
        raise ValueError(f"combine: {lstm_file} is a {lstm_header.get('model')!r} file; the "
                         "LSTM must come from an lrcn weights file")
    cnn = cnn_header.get("model")
    if cnn not in CNNS:
        raise ValueError(f"combine: {cnn_file} is a {cnn!r} file; the CNN must come from a "
                         f"weights file of {' or '.join(CNNS)}")
    preset = cnn_header.get("preset")
    # The LSTM of lstm_file over this CNN, whatever CNN it was trained over (LRCNAdapter).
    adapter = make_adapter("lrcn", preset, str(lstm_file),
                           {"cnn_init": str(cnn_file), "train_cnn": False})
    training = dict(lstm_header.get("training") or {})
    training["init"] = adapter.init_from
    training["cnn"] = {"file": Path(cnn_file).name,
                       "cumulative": (cnn_header.get("training") or {}).get("cumulative")}
    prior = load_file(str(cnn_file)).get("extra.prior")
    written = adapter.save(Path(target), prior, training)
    if any(k in cnn_header for k in DECODE_KEYS):
        written = inherit_decoding(written, cnn_file)
    return written


def _newest_cnn(out: Path, preset: str, model: str = "zhang") -> Path:
    """The CNN the lrcn and combine stages build on: this run's stage of ``model``, else the
    shipped file."""
    cnn = out / model / f"{model}-{preset}.safetensors"
    return cnn if cnn.is_file() else default_weights_path(model, preset)


def _shipped_lstm(preset: str) -> Path:
    """The shipped LRCN file whose LSTM a stage continues. A preset without its own (small,
    widened from tiny) takes tiny's: the LSTM reads the 313 probabilities, so its size does not
    depend on the CNN's widths."""
    shipped = default_weights_path("lrcn", preset)
    if not shipped.is_file() and preset == "small":
        shipped = default_weights_path("lrcn", "tiny")
    return shipped


def evaluate_weights(model: str, weights: Path, videos: list[Path], out: Path,
                     frames: int = 48, stride: int = 2) -> dict[str, float]:
    """Mean over ``videos`` of the colour metrics of one weights file (the sweep's score)."""
    from colorvid.core.evaluation.runner import EvalConfig, evaluate

    metrics = ["hue_accuracy", "chroma_ratio", "colorfulness", "psnr"]
    result = evaluate(videos, out, EvalConfig(
        models=[model], options={model: {"weights": str(weights)}}, metrics=metrics,
        frames=frames, stride=stride, write_clips=False, write_pictures=False), progress=None)
    scores: dict[str, float] = {}
    for metric in metrics:
        values = [c.value for c in result.cells if c.model == model and c.metric == metric
                  and c.value is not None]
        scores[metric] = round(sum(values) / len(values), 4) if values else float("nan")
    return scores


def _run(stage: str, cfg: TrainConfig, args: argparse.Namespace, report: dict) -> Path:
    start = time.time()
    result = train(cfg)
    report[stage] = {"steps": result["step"], "wall_s": round(time.time() - start, 1),
                     "loss": result.get("loss"), "val_loss": result.get("val_loss"),
                     "data_share": result.get("data_share"),
                     "frames_per_s": result.get("frames_per_s")}
    weights = Path(result["weights"])
    if args.install:
        print(f"installed {install(weights)}", file=sys.stderr)
    return weights


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m colorvid.core.training.defaults",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--corpus", type=Path, default=Path("../shared/corpus"),
                   help="folder of colour photos and videos (default ../shared/corpus)")
    p.add_argument("--stages", default="zhang,lrcn")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget per stage")
    p.add_argument("--sweep-minutes", type=float, default=4.0)
    p.add_argument("--preset", default=None,
                   help="zhang/lrcn preset (default: the shipped default's, i.e. the sweep's "
                   "winner: small where zhang-small ships, else tiny)")
    p.add_argument("--crop", type=int, default=176)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warp-weight", type=float, default=None,
                   help="lrcn stage: weight of the warping loss (default: the loss's, 0.05)")
    p.add_argument("--anchor-weight", type=float, default=None,
                   help="lrcn stage: weight of KL(CNN || LSTM) on each frame, which keeps the "
                   "LSTM from repainting a frame (default: the loss's, 0)")
    p.add_argument("--init", type=Path, default=None,
                   help="zhang weights to continue from (default: the shipped ones)")
    p.add_argument("--cnn", default=None, choices=CNNS,
                   help="the per-frame model the lrcn and combine stages build on (default: "
                   "zhang when this run trains zhang and not mobilenet, else mobilenet, the "
                   "default lrcn's)")
    p.add_argument("--mobilenet-init", type=Path, default=None,
                   help="mobilenet weights to continue from (default: the shipped ones, else a "
                   "fresh decoder on the ImageNet encoder), e.g. one in checkpoints/")
    p.add_argument("--tune-encoder", action="store_true",
                   help="mobilenet: after the frozen-encoder run, train the encoder too at a "
                   "tenth of the rate (measured worse; see the model card's variants)")
    p.add_argument("--mobilenet-crop", type=int, default=224,
                   help="mobilenet crop side (default 224)")
    p.add_argument("--mobilenet-batch", type=int, default=16)
    p.add_argument("--mobilenet-lr", type=float, default=3e-4)
    p.add_argument("--larsson-init", type=Path, default=None,
                   help="larsson weights to continue from (default: the shipped ones), e.g. a "
                   "run kept in checkpoints/")
    p.add_argument("--seed", type=int, default=None,
                   help="data seed (default: a new one per run, from the weights' run count, so "
                   "a continued run sees new crops)")
    p.add_argument("--precision", default="auto", choices=("fp32", "bf16", "auto"),
                   help="training precision (default auto: bf16 mixed precision where the CPU "
                   "or GPU computes bf16 natively, 3-4x the frames/s on an AMX CPU; else fp32)")
    p.add_argument("--ema", type=float, default=0.999,
                   help="the weights written are the exponential moving average of the trained "
                   "ones with this decay (default 0.999, a time constant of 1000 steps; 0: the "
                   "last step's weights)")
    p.add_argument("--degrade", type=float, default=0.0, metavar="SHARE",
                   help="share of training items whose L is softened and grainy like worn "
                   "footage, the colours kept clean (default 0: off; 0.5 measured no gain, see "
                   "the model card's variants)")
    p.add_argument("--mix", metavar="GROUP=SHARE,...",
                   help="share of training samples per corpus group, e.g. "
                   "photo=0.5,video=0.4,animation=0.1 (default: the cache's, photo 0.8 / video "
                   "0.15 / animation 0.05 for the CNNs, 0.5 / 0.3 / 0.2 for the LSTM)")
    p.add_argument("--distill", type=Path, metavar="TEACHER",
                   help="zhang stage: learn the per-pixel colour distribution of this zhang or "
                   "lrcn weights file (an lrcn teacher frame by frame), e.g. the shipped "
                   "lrcn-tiny, whose LSTM corrects its CNN's colours on single frames too")
    p.add_argument("--distill-weight", type=float, default=1.0, metavar="W",
                   help="with --distill: W x KL(teacher || student) + (1 - W) x the "
                   "rebalanced loss (default 1)")
    p.add_argument("--install", action="store_true", help="copy the weights into the package")
    args = p.parse_args(argv)
    if args.cnn is None:
        args.cnn = "zhang" if "zhang" in args.stages and "mobilenet" not in args.stages \
            else "mobilenet"
    if args.preset is None:  # the shipped file's preset of the CNN model, else its default
        from colorvid.plugins.models.common import SHIPPED_PRESETS

        model = "zhang" if "zhang" in args.stages and "mobilenet" not in args.stages \
            else args.cnn
        shipped = [p for p in SHIPPED_PRESETS if default_weights_path(model, p).is_file()]
        args.preset = shipped[0] if shipped else ("small" if model == "mobilenet" else "tiny")
    corpus = args.corpus.resolve()
    cache = args.out / "cache"
    held_out = sorted((corpus / HELD_OUT).glob("*")) if (corpus / HELD_OUT).is_dir() else []
    report: dict = {}
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise SystemExit(f"colorvid recipe: unknown stage(s) {', '.join(unknown) or '(none)'} in "
                         f"--stages {args.stages!r}; accepted: {', '.join(STAGES)}")
    if "lrcn" in stages and "combine" in stages:
        raise SystemExit("colorvid recipe: --stages takes lrcn (train the LSTM) or combine (the "
                         "shipped LSTM over the new CNN), not both")
    common = dict(corpus=[str(corpus)], cache=str(cache), checkpoint_every=100, val_every=200,
                  progress="bar", precision=args.precision, ema=args.ema or None,
                  degrade=args.degrade, mix=args.mix)

    def seed_for(init: Path | None) -> int:
        if args.seed is not None:
            return args.seed
        if init is not None and init.is_file():
            return int(((read_config(init).get("training") or {}).get("cumulative") or {})
                       .get("runs", 0))
        return 0

    if "sweep" in stages:
        table = []
        for name, preset, crop, batch in SWEEP:
            run = args.out / "sweep" / name
            weights = _run(f"sweep-{name}", TrainConfig(
                model="zhang", preset=preset, data=[], out=str(run), crop=crop, batch_size=batch,
                lr=1e-3, max_minutes=args.sweep_minutes, seed=0,
                resume=(run / "checkpoint.pt").exists(), **common), argparse.Namespace(
                    install=False), report)
            row = {"candidate": name, "preset": preset, "crop": crop, "batch": batch,
                   **report[f"sweep-{name}"]}
            if held_out:
                row.update(evaluate_weights("zhang", weights, held_out, run / "eval"))
            table.append(row)
            print(json.dumps(row), file=sys.stderr)
        (args.out / "sweep.json").write_text(json.dumps(table, indent=2))
    if "mobilenet" in stages:
        init = args.mobilenet_init or default_weights_path("mobilenet", args.preset)
        if args.mobilenet_init is not None and not init.is_file():
            raise SystemExit(f"colorvid recipe: --mobilenet-init {init}: no such file")
        mob = dict(model="mobilenet", preset=args.preset, data=[], crop=args.mobilenet_crop,
                   batch_size=args.mobilenet_batch, lr=args.mobilenet_lr, **common)
        init = init if init.is_file() else None
        run = args.out / "mobilenet"
        # The decoder on the frozen ImageNet encoder (its batch-norm statistics too). Tuning
        # the encoder as well (--tune-encoder, at a tenth of the rate) measured worse: on the
        # validation photos hue accuracy 0.641 against 0.699, and 4x the frame-to-frame change
        # of colour on footage (the model card's variants).
        _run("mobilenet", TrainConfig(
            out=str(run), max_minutes=args.minutes, init=str(init) if init else None,
            seed=seed_for(init), model_options={"freeze_encoder": True},
            resume=(run / "checkpoint.pt").exists(), **mob), args, report)
        if args.tune_encoder:
            tuned = args.out / "mobilenet-tuned"
            _run("mobilenet-tuned", TrainConfig(
                out=str(tuned), max_minutes=args.minutes,
                init=str(run / f"mobilenet-{args.preset}.safetensors"), seed=seed_for(None),
                model_options={"encoder_lr_scale": 0.1},
                resume=(tuned / "checkpoint.pt").exists(), **mob), args, report)
    if "zhang" in stages:
        init = args.init or default_weights_path("zhang", args.preset)
        init = init if init.is_file() else None
        run = args.out / "zhang"
        _run("zhang", TrainConfig(
            model="zhang", preset=args.preset, data=[], out=str(run), crop=args.crop,
            batch_size=args.batch_size, lr=args.lr, max_minutes=args.minutes,
            init=str(init) if init else None, seed=seed_for(init),
            distill=str(args.distill) if args.distill else None,
            distill_weight=args.distill_weight,
            resume=(run / "checkpoint.pt").exists(), **common), args, report)
    if "lrcn" in stages:
        cnn = _newest_cnn(args.out, args.preset, args.cnn)
        # Continue the shipped LSTM when it came from this recipe (its header counts the hours)
        # over the same kind of CNN, over the newest CNN; otherwise start the LSTM from scratch
        # on that CNN.
        shipped = _shipped_lstm(args.preset)
        previous = shipped.is_file() and bool(
            (read_config(shipped).get("training") or {}).get("cumulative")) and (
            read_config(shipped).get("architecture") or {}).get("cnn", "zhang") == args.cnn
        run = args.out / "lrcn"
        _run("lrcn", TrainConfig(
            model="lrcn", preset=args.preset, data=[], out=str(run), crop=min(args.crop, 128),
            loss_options={k: v for k, v in (("warp_weight", args.warp_weight),
                                             ("anchor_weight", args.anchor_weight))
                          if v is not None},
            batch_size=4, seq_len=6, lr=1e-3, max_minutes=args.minutes,
            init=str(shipped if previous else cnn), cnn_init=str(cnn) if previous else None,
            model_options={"cnn": args.cnn},
            train_cnn=False, seed=seed_for(shipped if previous else None),
            resume=(run / "checkpoint.pt").exists(), **common), args, report)
    if "combine" in stages:
        cnn = _newest_cnn(args.out, args.preset, args.cnn)
        shipped = _shipped_lstm(args.preset)
        if not shipped.is_file():
            raise SystemExit(f"colorvid recipe: combine needs a shipped LSTM ({shipped}); run "
                             "the lrcn stage instead")
        run = args.out / "lrcn"
        run.mkdir(parents=True, exist_ok=True)
        weights = combine_lrcn(shipped, cnn, run / f"lrcn-{args.preset}.safetensors")
        report["combine"] = {"weights": str(weights), "cnn": str(cnn), "lstm": str(shipped)}
        if args.install:
            print(f"installed {install(weights)}", file=sys.stderr)
    if "larsson" in stages:
        init = args.larsson_init or default_weights_path("larsson", "tiny")
        if args.larsson_init is not None and not init.is_file():
            raise SystemExit(f"colorvid recipe: --larsson-init {init}: no such file (give a "
                             "larsson weights file, e.g. one in checkpoints/)")
        run = args.out / "larsson"
        _run("larsson", TrainConfig(
            model="larsson", preset="tiny", data=[], out=str(run), crop=args.crop,
            batch_size=args.batch_size, lr=args.lr, optimizer="adam", max_minutes=args.minutes,
            init=str(init) if init.is_file() else None, seed=seed_for(init),
            resume=(run / "checkpoint.pt").exists(), **common), args, report)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def _main_interruptible(argv: list[str] | None = None) -> int:
    """``main`` for the command line: Ctrl-C ends with the stage's checkpoint saved and a line
    saying how to continue, not a traceback."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("colorvid recipe: interrupted; the running stage saved its checkpoint: run the "
              "same command again to continue it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(_main_interruptible())
