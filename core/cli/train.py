"""``colorvid train``: fine-tune Zhang / Larsson or train LRCN on your videos.

    colorvid train --model lrcn --data clips/ --out runs/lrcn [--preset tiny|full]
    colorvid train --model zhang --corpus photos_and_videos/ --out runs/z --crop 176
    torchrun --nproc_per_node 2 -m colorvid train --model zhang --data clips/ --out runs/z
"""

from __future__ import annotations

import argparse
import sys

from colorvid.core.cli import CLIError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or fine-tune a colorizer (mobilenet, zhang, lrcn, ...)",
                       description="Train a colorizer on videos (split 80/10/10 by video). "
                       "Defaults are the paper's hyper-parameters.")
    p.add_argument("--model", required=True, metavar="NAME",
                   help="a trainable colorizer: zhang, lrcn, larsson, mobilenet, or one a plugin "
                        "registers with the register_trainers hook")
    p.add_argument("--data", nargs="+", default=[], metavar="DIR",
                   help="video files, image sequences (folders of numbered frames, e.g. the "
                   "DAVIS layout, or a pattern such as frames/%%05d.png) or folders of them "
                   "(searched recursively), split 80/10/10 by clip")
    p.add_argument("--corpus", nargs="+", default=[], metavar="DIR",
                   help="folders of colour photos and videos, decoded once into a cache and "
                   "sampled by area (a MANIFEST.tsv there is checked; 'heldout' folders and "
                   "MANIFEST kinds are never used); instead of --data/--images")
    p.add_argument("--cache", metavar="DIR",
                   help="the decoded cache of --corpus (default RUN_DIR/../cache; reused)")
    p.add_argument("--samples-per-epoch", type=int, default=4096, metavar="N",
                   help="--corpus: crops drawn per epoch (default 4096)")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="stop after M minutes of training (checkpoint and weights written)")
    p.add_argument("--freeze-cnn", dest="train_cnn", action="store_false",
                   help="LRCN: train only the LSTM; the CNN keeps its starting (Zhang) weights")
    p.add_argument("--images", nargs="+", default=[], metavar="DIR",
                   help="image folders as a second source (single frames: zhang, larsson)")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--preset", default="tiny", choices=("tiny", "small", "full"))
    p.add_argument("--loss", help="any registered loss (default: the model's own)")
    p.add_argument("--loss-option", dest="loss_options", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="an option of the loss, e.g. warp_weight=0.2 for lrcn (repeatable; "
                   "VALUE is read as a number, true/false, or else kept as text)")
    p.add_argument("--model-option", dest="model_options", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="an option of the model's training (repeatable), e.g. mobilenet's "
                        "freeze_encoder=true or encoder_lr_scale=0.1")
    p.add_argument("--cnn-init", metavar="FILE",
                   help="lrcn: the per-frame CNN's weights (a zhang or mobilenet file) when "
                        "--init is an lrcn file whose LSTM continues over this CNN")
    p.add_argument("--init", metavar="FILE",
                   help="starting weights (LRCN: a zhang file for its CNN; default the shipped "
                   "zhang weights)")
    p.add_argument("--steps", type=int, help="iterations (default: the paper's)")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per step per process")
    p.add_argument("--lr", type=float, help="learning rate (default: the paper's)")
    p.add_argument("--optimizer", choices=("adam", "sgd"),
                   help="default: the paper's (adam for zhang and lrcn, sgd for larsson)")
    p.add_argument("--crop", type=int, help="crop side (default 224 zhang/lrcn, 256 larsson)")
    p.add_argument("--seq-len", type=int, help="frames per sequence (default 6 lrcn, 1 others)")
    p.add_argument("--seq-mode", default="all", choices=("all", "last"),
                   help="LRCN: L_seq on every frame (sequence-out) or on the last (the paper)")
    p.add_argument("--no-rebalance", dest="rebalance", action="store_false",
                   help="plain cross-entropy, no class rebalancing (for comparison)")
    p.add_argument("--fps", type=float, default=25.0, help="resample videos to this rate")
    p.add_argument("--max-frames", type=int, help="decode at most this many frames per video")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="N")
    p.add_argument("--val-every", type=int, default=500, metavar="N")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="write the exponential moving average of the weights (e.g. 0.999) "
                   "instead of the last step's: smoother weights from a constant learning rate")
    p.add_argument("--degrade", type=float, default=0.0, metavar="SHARE",
                   help="with --corpus: this share of training items (0-1) gets an L softened "
                   "and grainy like worn footage, the colours kept clean (default 0)")
    p.add_argument("--mix", metavar="GROUP=SHARE,...",
                   help="with --corpus: the share of training samples per group, e.g. "
                   "photo=0.5,video=0.4,animation=0.1 (default photo=0.8,video=0.15,"
                   "animation=0.05; for sequences photo=0.5,video=0.3,animation=0.2)")
    p.add_argument("--distill", metavar="TEACHER",
                   help="a zhang student learns the per-pixel colour distribution of this "
                   "zhang or lrcn weights file (an lrcn teacher frame by frame)")
    p.add_argument("--distill-weight", type=float, default=1.0, metavar="W",
                   help="with --distill: the loss is W x KL(teacher || student) + (1 - W) x "
                   "the model's own (default 1: the teacher alone)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                   help="bf16: mixed precision (bfloat16 forward, float32 weights and loss); "
                   "auto: bf16 where the CPU or GPU computes it natively (AMX, AVX512-BF16), "
                   "else fp32 (default fp32)")
    p.add_argument("--progress", default="bar", choices=("bar", "json", "quiet"))
    p.add_argument("-q", "--quiet", action="store_true", help="same as --progress quiet")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.set_defaults(func=run)


def parse_loss_options(items: list[str], flag: str = "--loss-option",
                       example: str = "warp_weight=0.2") -> dict[str, object]:
    """``["warp_weight=0.2", "rebalance_seq=false"]`` -> ``{"warp_weight": 0.2, ...}``."""
    options: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CLIError(f"{flag} must be KEY=VALUE with KEY a name, got {item!r} "
                           f"(e.g. {flag} {example})")
        value: object = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    continue
        options[key] = value
    return options


def run(args: argparse.Namespace) -> int:
    from colorvid.core.training.data import MediaError
    from colorvid.core.training.trainer import TrainConfig, TrainError, train
    from colorvid.core.weights import WeightsError

    if not args.data and not args.corpus:
        raise CLIError("give the training data: --data VIDEOS... or --corpus FOLDERS...")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise CLIError(f"--max-minutes must be a positive number, got {args.max_minutes}")
    for name in ("steps", "batch_size", "crop", "seq_len", "max_frames", "checkpoint_every",
                 "val_every", "samples_per_epoch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    config = TrainConfig(
        model=args.model, data=args.data, out=args.out, preset=args.preset, loss=args.loss,
        loss_options=parse_loss_options(args.loss_options),
        model_options=parse_loss_options(args.model_options, "--model-option",
                                         "freeze_encoder=true"),
        init=args.init, cnn_init=args.cnn_init, images=args.images, corpus=args.corpus,
        cache=args.cache,
        samples_per_epoch=args.samples_per_epoch, train_cnn=args.train_cnn,
        max_minutes=args.max_minutes,
        steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, optimizer=args.optimizer, crop=args.crop, seq_len=args.seq_len,
        seq_mode=args.seq_mode,
        rebalance=args.rebalance, fps=args.fps,
        max_frames=args.max_frames, seed=args.seed, checkpoint_every=args.checkpoint_every,
        val_every=args.val_every, device=args.device, precision=args.precision, ema=args.ema,
        degrade=args.degrade, mix=args.mix, distill=args.distill,
        distill_weight=args.distill_weight,
        progress="quiet" if args.quiet else args.progress, resume=args.resume,
    )
    try:
        result = train(config)
    except (TrainError, MediaError, WeightsError, ValueError) as e:
        raise CLIError(str(e)) from e
    if result.get("weights"):
        print(f"colorvid train: {result['step']} steps; weights in {result['weights']}",
              file=sys.stderr)
    return 0
