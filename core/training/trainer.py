"""The training loop behind ``colorvid train``.

One process, or N under ``torchrun --nproc_per_node N -m colorvid train ...``
(DistributedDataParallel: gloo on CPU, nccl on CUDA). Every rank builds the same model from the
same seed; the :class:`~colorvid.core.training.data.SequenceSampler` hands each rank whole
sequences; gradients are averaged, so all ranks hold identical weights after every step.
Rank 0 writes the run folder:

    RUN_DIR/checkpoint.pt            latest checkpoint (atomic; --resume continues from it)
    RUN_DIR/<model>-<preset>.safetensors   the trained weights + config + class prior
    RUN_DIR/prior.safetensors        the class-rebalancing weights of the training split
    RUN_DIR/split.json               which videos went to train / val / test
    RUN_DIR/metrics.jsonl            one JSON object per step (and per validation)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from colorvid.core.bins import AB_BINS_SHA256
from colorvid.core.color import rgb_to_lab
from colorvid.core.host import accepted_options, get_host
from colorvid.core.interfaces import Loss
from colorvid.core.training.adapters import TrainAdapter, make_adapter
from colorvid.core.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from colorvid.core.training.data import (
    IMAGE_SUFFIXES,
    ImageFolderDataset,
    SequenceSampler,
    Split,
    VideoSequenceDataset,
    collate_sequences,
    find_clips,
    find_media,
    split_by_video,
)
from colorvid.plugins.losses import class_kl

__all__ = ["PRECISIONS", "TrainConfig", "TrainError", "Trainer", "resolve_precision", "train"]

CHECKPOINT = "checkpoint.pt"


class TrainError(RuntimeError):
    """A training run cannot start or continue; the message says why and what to do."""


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on. None means the model's paper default (adapters.py)."""

    model: str
    data: list[str]
    out: str
    preset: str = "tiny"
    loss: str | None = None
    # Options of the loss beyond the class weights, e.g. {"warp_weight": 0.2} for lrcn; each
    # must be one the loss's factory accepts.
    loss_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    init: str | None = None  # starting weights (fine-tuning; LRCN: a zhang file for its CNN)
    images: list[str] = dataclasses.field(default_factory=list)  # image folders (seq_len 1)
    # Folders of photos and videos served from a decoded cache (core/training/data/cache.py):
    # crops at the inference scale, sampled by area; MANIFEST.tsv honoured; folders named
    # "heldout" skipped.
    corpus: list[str] = dataclasses.field(default_factory=list)
    cache: str | None = None  # the decoded cache's folder (default: RUN_DIR/../cache)
    samples_per_epoch: int = 4096  # corpus samples per epoch (crops are drawn anew each epoch)
    train_cnn: bool = True  # LRCN: train the CNN too (the paper), or only the LSTM
    cnn_init: str | None = None  # LRCN: a zhang file for the CNN when --init is an lrcn file
    # Options of the model's training adapter (--model-option), e.g. {"freeze_encoder": True}
    # for mobilenet; each must be one the adapter documents.
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_minutes: float | None = None  # stop (checkpoint and weights written) after this long
    steps: int | None = None
    batch_size: int = 8
    lr: float | None = None
    # "adam" or "sgd" (default: the paper's for the model; Adam makes a small Larsson learn in
    # the hours a CPU has, where the paper's SGD needs its 80,000 steps)
    optimizer: str | None = None
    crop: int | None = None
    seq_len: int | None = None
    seq_mode: str = "all"  # LRCN: L_seq on every frame ("all") or the last one ("last")
    rebalance: bool = True  # class rebalancing (False: the plain cross-entropy, for comparison)
    fps: float = 25.0
    max_frames: int | None = None  # per video, to bound memory and time
    seed: int = 0
    checkpoint_every: int = 500
    val_every: int = 500
    val_batches: int = 4
    device: str | None = None
    # "fp32", or "bf16": the forward in bfloat16 autocast with channels-last activations, the
    # loss, the weights and the optimiser in float32 (mixed precision). "auto" is bf16 where the
    # hardware multiplies bf16 natively (CPUs with AMX or AVX512-BF16, CUDA cards that support
    # it) and fp32 elsewhere. bf16 trains the tiny Zhang 2.5x faster and `small` 2.9x on a 2-core
    # AMX CPU (benches/bench_training.py); on a CPU without native bf16 it is slower.
    precision: str = "fp32"
    # Exponential moving average of the trained parameters (Polyak averaging), e.g. 0.999: the
    # weights file and the validation loss use the average, which smooths out the step-to-step
    # noise of a constant learning rate (the CPU runs stop on a clock, never at a decayed lr).
    # None: the weights are the last step's. BatchNorm statistics are the live network's.
    ema: float | None = None
    # Build the next batch in a thread while a step computes: None (auto) where torch leaves a
    # CPU core free or trains on a GPU. On the 2-core CPU the thread cost more than the wait it
    # hid: tiny Zhang, 128 px, batch 16, bf16: 153 frames/s with 13.7% of each step spent
    # building the batch in line, 111-115 frames/s with the thread (0.4% wait); fp32 60-62 vs
    # 51-54 (two paired rounds, benches/bench_training.py's data).
    prefetch: bool | None = None
    # Share of corpus training items whose L is degraded like worn footage (softened, grainy;
    # data/cache.py degrade_l) while the target colours stay clean: B&W film and video reach a
    # colorizer blurrier and noisier than the photographs it learns from. 0: off.
    degrade: float = 0.0
    # Share of corpus training samples per group ({"photo": .., "video": .., "animation": ..};
    # data/cache.py parse_mix). None: the cache's default (DEFAULT_MIX, DEFAULT_SEQUENCE_MIX).
    mix: dict[str, float] | None = None
    # Distillation: a teacher weights file (a zhang file, or an lrcn file read frame by frame,
    # its LSTM starting from an empty state on each frame) whose per-pixel class distribution
    # a zhang student learns to match, KL(teacher || student) on the 1/4 grid, at weight
    # ``distill_weight`` beside (1 - distill_weight) x the model's own loss. None: off.
    distill: str | None = None
    distill_weight: float = 1.0
    progress: str = "bar"  # bar | json | quiet
    resume: bool = False

    def identity(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        keep = ("model", "preset", "loss", "batch_size", "crop", "seq_len", "seq_mode", "fps",
                "max_frames", "seed", "lr", "rebalance", "samples_per_epoch", "train_cnn")
        out = {k: getattr(self, k) for k in keep}
        out["corpus"] = sorted(str(Path(d).resolve()) for d in self.corpus)
        out["data"] = sorted(str(Path(d).resolve()) for d in self.data)
        out["images"] = sorted(str(Path(d).resolve()) for d in self.images)
        if self.loss_options:  # only when set: checkpoints written before the option resume
            out["loss_options"] = dict(sorted(self.loss_options.items()))
        if self.optimizer:  # the same
            out["optimizer"] = self.optimizer
        if self.model_options:  # the same
            out["model_options"] = dict(sorted(self.model_options.items()))
        if self.degrade:  # the same
            out["degrade"] = self.degrade
        if self.mix:  # the same
            from colorvid.core.training.data.cache import parse_mix

            out["mix"] = dict(sorted(parse_mix(self.mix).items()))
        if self.distill:  # the same
            out["distill"] = {"teacher": str(Path(self.distill).resolve()),
                              "weight": self.distill_weight}
        return out


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision`` ("fp32", "bf16" or "auto") as the run uses it on ``device``."""
    if precision not in PRECISIONS:
        raise TrainError(f"precision {precision!r} is not known; accepted: "
                         f"{', '.join(map(repr, PRECISIONS))}")
    if precision == "auto":
        from colorvid.plugins.models.common import native_bf16

        return "bf16" if native_bf16(device) else "fp32"
    return precision


class Trainer:
    """Builds everything from a :class:`TrainConfig`; :meth:`run` trains; rank 0 writes files."""

    def __init__(self, config: TrainConfig) -> None:
        self.cfg = config
        self.rank, self.world = _distributed()
        self.out = Path(config.out)
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available()
                                                     else "cpu"))
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.manual_seed(config.seed)
        self.adapter: TrainAdapter = make_adapter(config.model, config.preset, config.init,
                                                  {**config.model_options,
                                                   "seq_mode": config.seq_mode,
                                                   "train_cnn": config.train_cnn,
                                                   "cnn_init": config.cnn_init})
        # Totals over every run behind the starting weights (their header), this run added.
        self.base = _cumulative_of(config.init, config.model)
        self.elapsed = {"cpu_s": 0.0, "wall_s": 0.0, "samples": 0, "steps": 0}
        hp = self.adapter.hp
        self.steps = config.steps or hp.steps
        self.crop = config.crop or hp.crop
        self.seq_len = config.seq_len or hp.seq_len
        self.lr = config.lr or hp.lr
        if config.optimizer not in (None, "adam", "sgd"):
            raise TrainError(f"optimizer {config.optimizer!r} is not known; accepted: 'adam', "
                             "'sgd'")
        self.optimizer_name = config.optimizer or hp.optimizer
        self.precision = resolve_precision(config.precision, self.device)
        self.loss_name = config.loss or self.adapter.default_loss
        self._check_resume_target()
        self._build_data()
        uses_prior = self.adapter.uses_prior and config.rebalance
        self.prior = self._estimate_prior() if uses_prior else None
        self.loss = self._build_loss()
        self.teacher = self._build_teacher()
        self.adapter.net.to(self.device)
        if self.precision == "bf16":
            # Channels-last: a bf16 training step of Zhang tiny / small / full at 128 px ran
            # 1.28-1.36x faster in this layout than in NCHW on the 2-core AMX CPU (the same
            # step timed in both layouts; the state dict is unchanged).
            self.adapter.net.to(memory_format=torch.channels_last)
        self.module = self.adapter.module
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.module = torch.nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        self.optimizer, self.scheduler = self._build_optimizer()
        if config.ema is not None and not 0.0 < config.ema < 1.0:
            raise TrainError(f"ema must be a decay between 0 and 1 (e.g. 0.999), got "
                             f"{config.ema}")
        self._trained = [p for p in self.adapter.net.parameters() if p.requires_grad]
        self.ema = [p.detach().clone() for p in self._trained] if config.ema else None
        self._decoding: dict[str, Any] | None = None  # _inherited_decoding's, once read
        self.step, self.epoch, self.pos = 0, 0, 0
        self.skipped_steps = 0  # updates skipped for a non-finite gradient (this process)
        self._data_thread: concurrent.futures.ThreadPoolExecutor | None = None
        if config.prefetch is None:
            from colorvid.core.video.pipeline import usable_cpus

            self.prefetch = self.device.type == "cuda" or torch.get_num_threads() < usable_cpus()
        else:
            self.prefetch = bool(config.prefetch)
        if config.resume:
            self._restore()

    # -- setup ----------------------------------------------------------------------------------
    def _build_teacher(self) -> TrainAdapter | None:
        """The distillation teacher (``distill``): its network, frozen, in eval mode."""
        cfg = self.cfg
        if not cfg.distill:
            return None
        from colorvid.core.weights import read_config

        if cfg.model != "zhang":
            raise TrainError(f"--distill trains a zhang student (313-bin logits on the same "
                             f"grid); model {cfg.model!r} is not one: train it without --distill")
        if not (isinstance(cfg.distill_weight, (int, float)) and
                0.0 < cfg.distill_weight <= 1.0):
            raise TrainError(f"distill weight is the share of the loss given to the teacher, "
                             f"above 0 and at most 1 (e.g. 0.5), got {cfg.distill_weight!r}")
        path = Path(cfg.distill)
        if not path.is_file():
            raise TrainError(f"--distill {path}: no such weights file (a zhang or lrcn "
                             "safetensors file)")
        try:
            header = read_config(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable header is the same user error
            raise TrainError(f"--distill {path}: not a colorvid weights file ({exc})") from None
        model, preset = header.get("model"), header.get("preset")
        if model not in ("zhang", "lrcn") or not preset:
            raise TrainError(f"--distill {path}: a teacher is a zhang or lrcn weights file; "
                             f"this one holds model {model!r}")
        if header.get("bins_sha256") not in (None, AB_BINS_SHA256):
            raise TrainError(f"--distill {path}: its classes are not this build's 313 ab bins")
        teacher = make_adapter(model, preset, str(path), {"train_cnn": False})
        teacher.net.requires_grad_(False)
        teacher.net.eval().to(self.device)
        if self.precision == "bf16":
            teacher.net.to(memory_format=torch.channels_last)
        return teacher

    def _teacher_logits(self, L: Tensor) -> Tensor:
        """The teacher's class logits of each frame of L ``(N, 1, c, c)``, ``(N, 313, h, w)``:
        an LRCN's sequence logits of that frame alone (what a per-frame student can learn)."""
        net = self.teacher.net
        if self.teacher.model == "lrcn":
            logits = net.frame_logits(L)
            seq, _ = net.temporal(logits[:, None])
            return seq[:, 0]
        return net.logits(L)

    def _check_resume_target(self) -> None:
        ckpt = self.out / CHECKPOINT
        if ckpt.exists() and not self.cfg.resume:
            raise TrainError(f"{self.out} already holds a run ({ckpt.name}); pass --resume to "
                             "continue it, or a new --out")
        if self.cfg.resume and not ckpt.exists():
            raise TrainError(f"--resume: {ckpt} does not exist; start without --resume")

    def _build_corpus(self) -> None:
        from colorvid.core.training.data.cache import CorpusDataset, build_cache

        cfg = self.cfg
        folder = Path(cfg.cache) if cfg.cache else self.out.parent / "cache"
        cache = build_cache(cfg.corpus, folder, progress=cfg.progress != "quiet")
        self.split = Split([], [], [])
        common = dict(crop=self.crop, seq_len=self.seq_len, seed=cfg.seed)
        train_set = CorpusDataset(cache, samples=cfg.samples_per_epoch, degrade=cfg.degrade,
                                  mix=cfg.mix, **common)
        self.train_sets = [train_set]
        val = CorpusDataset(cache, validation=True, **common)
        self.val_set = val if len(val) else None
        self.num_items = len(train_set)
        self.corpus_summary = {"groups": cache.summary(), "sources": len(train_set.names),
                               "validation_photos": len(val),
                               "skipped": cache.skipped + train_set.skipped}
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            _write_json(self.out / "split.json", {
                "train": train_set.names, "val": val.names, "test": [],
                "skipped": self.corpus_summary["skipped"], "cache": str(folder),
                "groups": self.corpus_summary["groups"]})

    def _build_data(self) -> None:
        cfg = self.cfg
        self.corpus_summary = None
        if not 0.0 <= cfg.degrade <= 1.0:
            raise TrainError(f"degrade is the share of degraded training items, between 0 and "
                             f"1 (e.g. 0.5), got {cfg.degrade}")
        if cfg.degrade and not cfg.corpus:
            raise TrainError("--degrade works on --corpus training (its decoded cache); with "
                             "--data or --images leave it at 0")
        if cfg.mix is not None:
            from colorvid.core.training.data.cache import parse_mix

            if not cfg.corpus:
                raise TrainError("--mix sets the shares of --corpus training (its photo, video "
                                 "and animation groups); with --data or --images leave it out")
            try:
                cfg.mix = parse_mix(cfg.mix)
            except ValueError as exc:
                raise TrainError(str(exc)) from None
        if cfg.corpus:
            if cfg.data or cfg.images:
                raise TrainError("--corpus serves photos and videos itself; do not combine it "
                                 "with --data or --images")
            self._build_corpus()
            return
        videos = find_clips(cfg.data) if cfg.data else []
        self.split = split_by_video(videos, seed=cfg.seed)
        if cfg.images and self.seq_len != 1:
            raise TrainError(f"{cfg.model} trains on sequences of {self.seq_len} frames; image "
                             "folders give single frames (use them with zhang or larsson)")
        common = dict(crop=self.crop, seed=cfg.seed)
        train_sets = []
        if self.split.train:
            train_sets.append(VideoSequenceDataset(
                self.split.train, seq_len=self.seq_len, fps=cfg.fps, max_frames=cfg.max_frames,
                **common))
        if cfg.images:
            train_sets.append(ImageFolderDataset(find_media(cfg.images, IMAGE_SUFFIXES),
                                                 **common))
        self.train_sets = [d for d in train_sets if len(d)]
        if not self.train_sets:
            raise TrainError("no training data: the training split holds no usable video "
                             f"(found {len(videos)} videos under {', '.join(cfg.data) or '-'})")
        self.val_set = None
        if self.split.val:
            val = VideoSequenceDataset(self.split.val, seq_len=self.seq_len, fps=cfg.fps,
                                       max_frames=cfg.max_frames, random_crop=False, **common)
            self.val_set = val if len(val) else None
        self.num_items = sum(len(d) for d in self.train_sets)
        if self.num_items < self.cfg.batch_size * self.world:
            raise TrainError(f"only {self.num_items} training sequences for batch size "
                             f"{self.cfg.batch_size} x {self.world} processes; lower --batch-size "
                             "or add data")
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            split = {name: [str(p) for p in getattr(self.split, name)]
                     for name in ("train", "val", "test")}
            split["images"] = [n for d in self.train_sets if isinstance(d, ImageFolderDataset)
                               for n in d.names]
            split["skipped"] = [s for d in self.train_sets for s in d.skipped]
            _write_json(self.out / "split.json", split)

    def _item(self, index: int) -> dict[str, Tensor]:
        for d in self.train_sets:
            if index < len(d):
                return d[index]
            index -= len(d)
        raise IndexError(index)

    def _estimate_prior(self) -> Tensor:
        """Nearest-bin counts over every training frame (full frames, not crops) -> weights."""
        from colorvid.kernels import PriorEstimator, save_prior

        est = PriorEstimator()
        for d in self.train_sets:
            for frame in d.frames_uint8():
                rgb = torch.tensor(frame).permute(2, 0, 1)[None].float() / 255.0
                est.update(rgb_to_lab(rgb)[:, 1:])
        weights = est.weights()
        if self.rank == 0:
            save_prior(self.out / "prior.safetensors", weights, est.counts)
        return weights

    def _build_loss(self) -> Loss:
        host = get_host()
        try:
            entry = host.entry("loss", self.loss_name)
        except KeyError as e:
            raise TrainError(str(e.args[0])) from None
        accepted = accepted_options(entry.factory)
        options: dict[str, Any] = {}
        if self.prior is not None and (accepted is None or "class_weights" in accepted):
            options["class_weights"] = self.prior.to(self.device)
        extra = dict(self.cfg.loss_options)
        unknown = sorted(k for k in extra if k == "class_weights" or (
            accepted is not None and k not in accepted))
        if unknown:
            names = sorted((accepted or set()) - {"class_weights"})
            raise TrainError(f"loss {self.loss_name!r} does not take option(s) "
                             f"{', '.join(unknown)}; it accepts: {', '.join(names) or 'none'}"
                             " (class_weights come from the data)")
        options.update(extra)
        try:
            loss = entry.create(**options)
        except (TypeError, ValueError) as e:
            raise TrainError(f"loss {self.loss_name!r}: {e}") from e
        if not isinstance(loss, Loss):
            raise TrainError(f"loss {self.loss_name!r} is not a colorvid.Loss")
        return loss

    def _build_optimizer(self):
        hp = self.adapter.hp
        try:
            params = self.adapter.param_groups(self.lr)
        except ValueError as e:
            raise TrainError(str(e)) from None
        if self.optimizer_name == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, betas=hp.betas,
                                   weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=self.lr, momentum=hp.momentum,
                                  weight_decay=hp.weight_decay)
        if hp.milestones:
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(hp.milestones), hp.gamma)
        else:
            sched = torch.optim.lr_scheduler.StepLR(opt, hp.step_size, hp.gamma)
        return opt, sched

    @contextlib.contextmanager
    def averaged(self):
        """Inside: the network holds the EMA of its trained parameters (when ``ema`` is set)."""
        if self.ema is None:
            yield
            return
        live = [p.detach().clone() for p in self._trained]
        with torch.no_grad():
            torch._foreach_copy_(self._trained, self.ema)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self._trained, live)

    # -- checkpoints ----------------------------------------------------------------------------
    def write_weights(self, last: dict[str, Any]) -> Path | None:
        """RUN_DIR/<model>-<preset>.safetensors (atomic): the weights now, with their history."""
        if self.rank != 0:
            return None
        cfg, bs = self.cfg, self.cfg.batch_size
        training = {"steps": self.step, "batch_size": bs, "world_size": self.world,
                    **({"model_options": dict(cfg.model_options)} if cfg.model_options else {}),
                    "loss": self.loss_name, "loss_options": dict(cfg.loss_options),
                    "lr": self.lr, "optimizer": self.optimizer_name, "crop": self.crop,
                    "precision": self.precision,
                    "seq_len": self.seq_len, "fps": cfg.fps, "seed": cfg.seed,
                    "rebalanced": self.prior is not None,
                    "init": self.adapter.init_from,
                    "cumulative": self.cumulative(),
                    "data_wait_share": last.get("data_share"),
                    "corpus": self.corpus_summary,
                    "train_videos": [Path(p).name for p in self.split.train],
                    "val_videos": [Path(p).name for p in self.split.val],
                    "test_videos": [Path(p).name for p in self.split.test],
                    "final": {k: v for k, v in last.items() if isinstance(v, (int, float))}}
        if self.ema is not None:
            training["ema"] = cfg.ema
        if self.skipped_steps:
            training["skipped_steps"] = self.skipped_steps
        if cfg.degrade:
            training["degrade"] = cfg.degrade
        if cfg.mix:
            training["mix"] = dict(sorted(cfg.mix.items()))
        if self.teacher is not None:
            training["distill"] = {"teacher": str(cfg.distill), "teacher_model":
                                   self.teacher.model, "weight": cfg.distill_weight}
        with self.averaged():
            return self.adapter.save(self.out / f"{cfg.model}-{cfg.preset}.safetensors",
                                     self.prior, training, self._inherited_decoding())

    def _inherited_decoding(self) -> dict[str, Any]:
        """The decoding (temperature, saturation, prior correction) of the file training
        started from, so that continued weights colour as their start did until they are
        calibrated again (without it a fine-tuned shipped model fell back to the paper's
        T = 0.38 with no prior correction and came out far more saturated). An LRCN takes its
        CNN's when ``cnn_init`` names one (it decodes as its CNN was calibrated). Nothing for a
        run from scratch or a start without a calibrated decoding. Read once per run."""
        if self._decoding is None:
            from colorvid.core.training.calibrate import decoding_of

            cfg = self.cfg
            source = cfg.cnn_init if cfg.model == "lrcn" and cfg.cnn_init else cfg.init
            self._decoding = decoding_of(source, (
                "the decoding of the weights this run started from; calibrate again (python "
                "-m colorvid.core.training.calibrate) to choose one for these")) if source else {}
        return self._decoding

    def _state(self) -> dict[str, Any]:
        return {
            "format": "colorvid-checkpoint", "version": 1, "run": self.cfg.identity(),
            "model": self.adapter.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "step": self.step, "epoch": self.epoch,
            "pos": self.pos, "rng": torch.get_rng_state(), "prior": self.prior,
            "elapsed": self._elapsed_now(),
            "ema": self.ema,
        }

    def _elapsed_now(self) -> dict[str, float]:
        """This run's CPU and wall time, steps and samples so far (resumed runs included)."""
        out = dict(self.elapsed)
        if hasattr(self, "_clock"):
            cpu0, wall0 = self._clock
            out["cpu_s"] += time.process_time() - cpu0
            out["wall_s"] += time.perf_counter() - wall0
        return out

    def cumulative(self) -> dict[str, float]:
        """Steps, samples and hours behind the weights: the init file's totals plus this run."""
        now = self._elapsed_now()
        return {"steps": int(self.base["steps"] + now["steps"]),
                "samples": int(self.base["samples"] + now["samples"]),
                "cpu_hours": round(self.base["cpu_hours"] + now["cpu_s"] / 3600, 6),
                "wall_hours": round(self.base["wall_hours"] + now["wall_s"] / 3600, 6),
                "runs": int(self.base["runs"]) + 1}

    def save(self) -> None:
        if self.rank == 0:
            save_checkpoint(self.out / CHECKPOINT, self._state())

    def _restore(self) -> None:
        try:
            state = load_checkpoint(self.out / CHECKPOINT)
        except CheckpointError as e:
            raise TrainError(str(e)) from e
        saved, current = state.get("run") or {}, self.cfg.identity()
        if saved != current:
            # both sides' keys: an option set in one run only (e.g. degrade) is a difference
            diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise TrainError(f"--resume: the run in {self.out} was started with different "
                             f"settings ({', '.join(diff)}); use the same ones or a new --out")
        self.adapter.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.pos = state["step"], state["epoch"], state["pos"]
        torch.set_rng_state(state["rng"])
        if state.get("elapsed"):
            self.elapsed = dict(state["elapsed"])
        if self.ema is not None:  # a checkpoint without one starts the average here
            saved = state.get("ema")
            self.ema = [t.clone() for t in saved] if saved else [
                p.detach().clone() for p in self._trained]
        if state.get("prior") is not None:
            self.prior = state["prior"]
            self.loss = self._build_loss()

    def weights_digest(self) -> str:
        """sha256 of every parameter and buffer, in state-dict order (equal weights, equal hash)."""
        h = hashlib.sha256()
        for key, value in self.adapter.net.state_dict().items():
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def _sync_buffers(self) -> None:
        """Average BatchNorm running statistics over ranks.

        DDP keeps parameters identical (averaged gradients) and copies rank 0's buffers at each
        forward, but the last forward's running-stat update is per rank: average it so every
        rank ends with the same (and better estimated) statistics.
        """
        if self.world == 1:
            return
        with torch.no_grad():
            for buf in self.adapter.net.buffers():
                if buf.is_floating_point():
                    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                    buf.div_(self.world)

    def _record_rank_digests(self) -> None:
        """Every rank's weights digest into RUN_DIR/ranks.json: DDP must keep them identical."""
        digests = [self.weights_digest()]
        if self.world > 1:
            digests = [None] * self.world
            dist.all_gather_object(digests, self.weights_digest())
        if self.rank == 0:
            _write_json(self.out / "ranks.json", {"world_size": self.world, "digests": digests})

    # -- the loop -------------------------------------------------------------------------------
    def _loss_of(self, batch: dict[str, Tensor]) -> Tensor:
        L = batch["L"].to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.precision == "bf16"):
            outputs = self.module(L)
        if self.precision == "bf16":  # the loss (and its kernels) in float32
            outputs = {k: v.float() if v.is_floating_point() else v for k, v in outputs.items()}
        missing = [k for k in self.loss.requires if k not in outputs]
        if missing:
            raise TrainError(f"loss {self.loss_name!r} reads {missing}, which model "
                             f"{self.cfg.model!r} does not output (it gives {sorted(outputs)})")
        targets = {k: v.to(self.device) for k, v in self.adapter.targets(batch).items()}
        if self.teacher is None:
            return self.loss(outputs, targets)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                             enabled=self.precision == "bf16"):
            taught = self._teacher_logits(L.flatten(0, 1))
        kl = class_kl(taught, outputs["logits"])
        w = float(self.cfg.distill_weight)
        return kl if w == 1.0 else w * kl + (1.0 - w) * self.loss(outputs, targets)

    def _grads_finite(self) -> bool:
        """Whether every gradient of the trained parameters is finite (one reduction)."""
        grads = [p.grad for p in self._trained if p.grad is not None]
        if not grads:
            return True
        norms = torch._foreach_norm(grads)
        return bool(torch.isfinite(torch.stack(norms)).all())

    def _train_mode(self) -> None:
        """The network in train mode, its frozen modules in eval mode: a frozen CNN
        (``--freeze-cnn``) keeps its batch-norm running statistics as well as its weights, so
        the LRCN's per-frame colours stay those of the Zhang file it started from."""
        self.adapter.net.train()
        for module in self.adapter.frozen():
            module.eval()

    def validate(self) -> float | None:
        if self.val_set is None:
            return None
        self.adapter.net.eval()
        losses = []
        with torch.no_grad(), self.averaged():
            bs = self.cfg.batch_size
            for b in range(min(self.cfg.val_batches, math.ceil(len(self.val_set) / bs))):
                items = [self.val_set[i] for i in range(b * bs, min(len(self.val_set),
                                                                    (b + 1) * bs))]
                losses.append(float(self._loss_of(collate_sequences(items))))
        self._train_mode()
        return sum(losses) / len(losses)

    def _prefetch(self, order: list[int], start: int) -> concurrent.futures.Future:
        """The batch of ``order[start:start + batch_size]``: built in the data thread when
        prefetching, else now (a finished future)."""
        items = order[start: start + self.cfg.batch_size]
        if not self.prefetch:
            done: concurrent.futures.Future = concurrent.futures.Future()
            done.set_result(collate_sequences([self._item(i) for i in items]))
            return done
        if self._data_thread is None:
            self._data_thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="colorvid-data")
        return self._data_thread.submit(
            lambda: collate_sequences([self._item(i) for i in items]))

    def run(self) -> dict[str, Any]:
        """Train to ``steps``; returns the final figures. Ctrl-C saves a checkpoint first."""
        cfg, bs = self.cfg, self.cfg.batch_size
        sampler = SequenceSampler(self.num_items, seed=cfg.seed, rank=self.rank,
                                  world_size=self.world)
        log = _Log(self.out / "metrics.jsonl" if self.rank == 0 else None, cfg.progress,
                   self.steps, self.step)
        self._train_mode()
        last: dict[str, Any] = {}
        self._clock = (time.process_time(), time.perf_counter())
        data_s = step_s = 0.0
        # `kill PID` (SIGTERM) stops a background run as Ctrl-C does: checkpoint first. (A
        # shell's background job ignores SIGINT, so SIGTERM is how such runs are stopped.)
        restore_sigterm = _sigterm_as_interrupt()
        try:
            while self.step < self.steps:
                sampler.set_epoch(self.epoch, start=self.pos)
                for d in self.train_sets:
                    d.set_epoch(self.epoch)
                order = list(sampler)
                finished_epoch = True
                starts = list(range(0, len(order) - bs + 1, bs))
                # With ``prefetch`` the next batch is built in a thread while this step
                # computes (items depend only on (seed, epoch, index), so the batches are the
                # same as built in line: resume stays bit for bit).
                pending = self._prefetch(order, starts[0]) if starts else None
                for j, b in enumerate(starts):
                    t0 = time.perf_counter()
                    batch = pending.result()
                    pending = self._prefetch(order, starts[j + 1]) if j + 1 < len(starts) \
                        else None
                    t1 = time.perf_counter()
                    loss = self._loss_of(batch)
                    if not torch.isfinite(loss):
                        raise TrainError(f"the loss became {float(loss)} at step {self.step + 1}; "
                                         "the last checkpoint is kept: lower --lr and --resume")
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if self._grads_finite():
                        self.optimizer.step()
                    else:  # a finite loss with an infinite gradient: skip the update, as
                        # mixed-precision scalers do, so no weights file holds NaN
                        self.skipped_steps += 1
                    self.scheduler.step()
                    if self.ema is not None:
                        with torch.no_grad():
                            torch._foreach_lerp_(self.ema, self._trained, 1.0 - cfg.ema)
                    self.step += 1
                    self.pos += bs
                    frames = bs * self.seq_len * self.world
                    self.elapsed["steps"] += 1
                    self.elapsed["samples"] += bs * self.world
                    loss_value = loss.item()
                    t2 = time.perf_counter()
                    data_s, step_s = data_s + (t1 - t0), step_s + (t2 - t0)
                    last = log.step(self.step, loss_value, self.optimizer.param_groups[0]["lr"],
                                    frames, data_s / step_s if step_s > 0 else 0.0)
                    if self.step % cfg.val_every == 0 or self.step == self.steps:
                        val = self.validate()
                        if val is not None:
                            last["val_loss"] = log.validation(self.step, val)
                    if self.step % cfg.checkpoint_every == 0:
                        self.save()
                        self.write_weights(last)
                    out_of_time = cfg.max_minutes is not None and \
                        time.perf_counter() - self._clock[1] > cfg.max_minutes * 60
                    if cfg.max_minutes is not None and self.world > 1:  # all ranks stop together
                        flag = torch.tensor([float(out_of_time)], device=self.device)
                        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                        out_of_time = bool(flag.item())
                    if out_of_time:
                        self.steps = self.step
                    if self.step >= self.steps:
                        finished_epoch = b + 2 * bs > len(order)
                        break
                if pending is not None:  # not used: finish it before the epoch changes
                    pending.result()
                if finished_epoch:
                    self.epoch, self.pos = self.epoch + 1, 0
        except KeyboardInterrupt:
            self.save()
            log.close()
            print(f"colorvid train: interrupted at step {self.step}; checkpoint saved to "
                  f"{self.out / CHECKPOINT} (continue with --resume)", file=sys.stderr)
            raise
        finally:
            restore_sigterm()
            if self._data_thread is not None:
                self._data_thread.shutdown(wait=True, cancel_futures=True)
                self._data_thread = None
        self._sync_buffers()
        self.save()
        log.close()
        self._record_rank_digests()
        weights = self.write_weights(last)
        return {"step": self.step, "weights": str(weights) if weights else None, **last}


def _sigterm_as_interrupt():
    """Raise KeyboardInterrupt on SIGTERM (main thread only); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


class _Log:
    """Per-step JSONL records (rank 0) and a progress line on stderr."""

    def __init__(self, path: Path | None, mode: str, total: int, start_step: int) -> None:
        if mode not in ("bar", "json", "quiet"):
            raise TrainError(f"--progress must be bar, json or quiet, got {mode!r}")
        self.file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self.mode, self.total = mode, total
        self.start, self.start_step = time.perf_counter(), start_step
        self.frames = 0
        self.last_print = 0.0
        self.tty = sys.stderr.isatty()

    def _write(self, record: dict[str, Any]) -> None:
        if self.file:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def step(self, step: int, loss: float, lr: float, frames: int,
             data_share: float = 0.0) -> dict[str, Any]:
        self.frames += frames
        elapsed = time.perf_counter() - self.start
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        rate = (step - self.start_step) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else None
        record = {"step": step, "loss": round(loss, 6), "lr": lr, "frames_per_s": round(fps, 2),
                  "elapsed_s": round(elapsed, 2), "eta_s": None if eta is None else round(eta, 1),
                  "data_share": round(data_share, 4)}
        self._write(record)
        if self.file is not None and self.mode != "quiet":
            now = time.perf_counter()
            if self.mode == "json":
                print(json.dumps(record), file=sys.stderr)
            elif now - self.last_print >= (0.2 if self.tty else 5.0) or step == self.total:
                self.last_print = now
                eta_s = "?" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}"
                line = (f"step {step}/{self.total}  loss {loss:.4f}  {fps:.1f} frames/s  "
                        f"ETA {eta_s}")
                print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
                      file=sys.stderr, flush=True)
        return record

    def validation(self, step: int, val_loss: float) -> float:
        self._write({"step": step, "val_loss": round(val_loss, 6)})
        return val_loss

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None
            if self.mode == "bar" and self.tty:
                print(file=sys.stderr)


def _cumulative_of(init: str | None, model: str) -> dict[str, float]:
    """The ``training.cumulative`` totals in a starting weights file's header (zeros if none, or
    if the file is another model's: an LRCN started from Zhang weights starts its own count)."""
    base = {"steps": 0, "samples": 0, "cpu_hours": 0.0, "wall_hours": 0.0, "runs": 0}
    if not init or not Path(init).is_file():
        return base
    from colorvid.core.weights import read_config

    config = read_config(init)
    if config.get("model") != model:
        return base
    found = (config.get("training") or {}).get("cumulative") or {}
    return {k: type(v)(found.get(k, v)) for k, v in base.items()}


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def train(config: TrainConfig) -> dict[str, Any]:
    """Run a training job to the end; returns the final step, weights path and last metrics."""
    trainer = Trainer(config)
    try:
        result = trainer.run()
        if dist.is_initialized():
            # Every rank done before gloo tears down: a rank that destroyed its group while the
            # other was still finishing aborted now and then ("terminate called without an
            # active exception", exit -6) on a loaded machine.
            dist.barrier()
        return result
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
