"""colorvid train: learning, atomic checkpoints, bit-for-bit resume, Ctrl-C, torchrun (2 ranks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import interrupt_after_logging, popen_interruptible

import colorvid
from colorvid.core.training import TrainConfig, make_adapter, train
from colorvid.core.training.checkpoint import load_checkpoint
from colorvid.core.training.trainer import TrainError
from colorvid.core.weights import read_config

# Small and fast: 32 px crops of the 176x144 clip, 12 frames.
FAST = ["--crop", "32", "--max-frames", "12", "--batch-size", "2", "--lr", "1e-3",
        "--progress", "quiet"]


def _config(clip: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model="zhang", data=[str(clip)], out=str(out), crop=32, max_frames=12,
                batch_size=2, lr=1e-3, progress="quiet", steps=4)
    base.update(kw)
    return TrainConfig(**base)


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    adapter = make_adapter("zhang", "tiny")
    loss_fn = colorvid.create_loss("rebalanced_ce")
    g = torch.Generator().manual_seed(1)
    rgb = torch.rand(2, 1, 3, 32, 32, generator=g)
    lab = colorvid.rgb_to_lab(rgb)
    batch = {"L": lab[:, :, :1], "ab": lab[:, :, 1:]}
    opt = torch.optim.Adam(adapter.net.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = loss_fn(adapter.module(batch["L"]), adapter.targets(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_train_writes_weights_prior_split_and_metrics(carphone_clip, tmp_path):
    out = tmp_path / "run"
    result = train(_config(carphone_clip, out, steps=3))
    assert result["step"] == 3
    weights = out / "zhang-tiny.safetensors"
    config = read_config(weights)
    assert config["model"] == "zhang" and config["preset"] == "tiny"
    assert config["training"]["steps"] == 3 and config["training"]["train_videos"] == [
        carphone_clip.name]
    assert "extra.prior" in load_file(weights)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3]
    assert all(r["loss"] > 0 and r["frames_per_s"] > 0 for r in lines if "loss" in r)
    # The trained file loads as a colorizer.
    model = colorvid.create_colorizer("zhang", weights=str(weights), render_size=32)
    assert model.predict_ab(torch.full((1, 1, 40, 40), 50.0)).shape == (1, 2, 40, 40)
    # A second run into the same folder is refused; resuming with other settings too.
    with pytest.raises(TrainError, match="--resume"):
        train(_config(carphone_clip, out))
    with pytest.raises(TrainError, match="different settings \\(batch_size\\)"):
        train(_config(carphone_clip, out, batch_size=3, resume=True))


def test_resume_continues_bit_for_bit(carphone_clip, tmp_path):
    straight = tmp_path / "straight"
    train(_config(carphone_clip, straight, steps=7))  # 6 items/epoch of 2: crosses an epoch
    split = tmp_path / "split"
    train(_config(carphone_clip, split, steps=4))
    assert load_checkpoint(split / "checkpoint.pt")["step"] == 4
    train(_config(carphone_clip, split, steps=7, resume=True))
    a = load_file(straight / "zhang-tiny.safetensors")
    b = load_file(split / "zhang-tiny.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ca, cb = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(split / "checkpoint.pt")
    assert (ca["step"], ca["epoch"], ca["pos"]) == (cb["step"], cb["epoch"], cb["pos"])


def test_lrcn_trains_from_zhang_weights_and_loads(carphone_clip, tmp_path):
    zhang = tmp_path / "zhang"
    train(_config(carphone_clip, zhang, steps=1))
    out = tmp_path / "lrcn"
    train(_config(carphone_clip, out, model="lrcn", init=str(zhang / "zhang-tiny.safetensors"),
                  seq_len=3, steps=2))
    config = read_config(out / "lrcn-tiny.safetensors")
    assert config["training"]["init"].endswith("zhang-tiny.safetensors")
    lrcn = colorvid.create_colorizer("lrcn", weights=str(out / "lrcn-tiny.safetensors"),
                                     render_size=32)
    ab, _ = lrcn.predict_sequence(torch.full((4, 1, 32, 48), 50.0))
    assert ab.shape == (4, 2, 32, 48) and torch.isfinite(ab).all()
    with pytest.raises(TrainError, match="image folders give single frames"):
        train(_config(carphone_clip, tmp_path / "x", model="lrcn", images=[str(tmp_path)]))


def test_unknown_loss_and_missing_outputs_are_clear_errors(carphone_clip, tmp_path):
    with pytest.raises(TrainError, match="unknown loss 'nope'"):
        train(_config(carphone_clip, tmp_path / "a", loss="nope"))
    with pytest.raises(TrainError, match="reads \\['seq_logits'\\]"):
        train(_config(carphone_clip, tmp_path / "b", loss="lrcn"))


def test_loss_options_reach_the_loss_and_the_weights_header(carphone_clip, tmp_path):
    zhang = tmp_path / "zhang"
    train(_config(carphone_clip, zhang, steps=1))
    out = tmp_path / "lrcn"
    cfg = _config(carphone_clip, out, model="lrcn", init=str(zhang / "zhang-tiny.safetensors"),
                  seq_len=3, steps=1, loss_options={"warp_weight": 0.3})
    from colorvid.core.training.trainer import Trainer

    trainer = Trainer(cfg)
    assert trainer.loss.warp_weight == 0.3
    trainer.run()
    header = read_config(out / "lrcn-tiny.safetensors")
    assert header["training"]["loss_options"] == {"warp_weight": 0.3}
    with pytest.raises(TrainError, match=r"does not take option\(s\) warp_wieght; it accepts: "
                       r"anchor_weight, beta, k, rebalance_seq, sigma, temperature, "
                       r"warp_weight"):
        Trainer(_config(carphone_clip, tmp_path / "x", model="lrcn", seq_len=3,
                        loss_options={"warp_wieght": 0.3}))
    with pytest.raises(TrainError, match="warp_weight must be >= 0"):
        Trainer(_config(carphone_clip, tmp_path / "y", model="lrcn", seq_len=3,
                        loss_options={"warp_weight": -1}))


def test_optimizer_choice_reaches_the_optimizer_header_and_resume(carphone_clip, tmp_path):
    from colorvid.core.cli import main
    from colorvid.core.training.trainer import Trainer

    assert isinstance(Trainer(_config(carphone_clip, tmp_path / "z")).optimizer,
                      torch.optim.Adam)  # zhang's default: the paper's Adam
    assert isinstance(Trainer(_config(carphone_clip, tmp_path / "l", model="larsson")).optimizer,
                      torch.optim.SGD)  # larsson's: the paper's SGD
    trainer = Trainer(_config(carphone_clip, tmp_path / "a", model="larsson", optimizer="adam"))
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    out = tmp_path / "cli"
    assert main(["train", "--model", "zhang", "--data", str(carphone_clip), "--out", str(out),
                 "--steps", "1", "--optimizer", "sgd", *FAST]) == 0
    assert read_config(out / "zhang-tiny.safetensors")["training"]["optimizer"] == "sgd"
    assert load_checkpoint(out / "checkpoint.pt")["run"]["optimizer"] == "sgd"
    with pytest.raises(TrainError, match="optimizer 'rmsprop' is not known; accepted: 'adam'"):
        Trainer(_config(carphone_clip, tmp_path / "r", optimizer="rmsprop"))
    with pytest.raises(TrainError, match="optimizer"):  # a resumed run keeps its optimizer
        Trainer(_config(carphone_clip, out, steps=2, optimizer="adam", resume=True))


def test_cli_loss_option_values_and_errors():
    from colorvid.core.cli import CLIError
    from colorvid.core.cli.train import parse_loss_options

    assert parse_loss_options(["warp_weight=0.2", "k=4", "rebalance_seq=false", "x=abc"]) == {
        "warp_weight": 0.2, "k": 4, "rebalance_seq": False, "x": "abc"}
    for bad in ("warp_weight", "=1", "two words=1"):
        with pytest.raises(CLIError, match="--loss-option must be KEY=VALUE"):
            parse_loss_options([bad])


def _cli(*args: str, **kw) -> subprocess.Popen:
    return popen_interruptible([sys.executable, "-m", "colorvid", *args], **kw)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_then_resume(carphone_clip, tmp_path):
    out = tmp_path / "run"
    proc = _cli("train", "--model", "zhang", "--data", str(carphone_clip), "--out", str(out),
                "--steps", "100000", *FAST)
    err = interrupt_after_logging(proc, out / "metrics.jsonl", 120)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert step >= 2
    done = _cli("train", "--model", "zhang", "--data", str(carphone_clip), "--out", str(out),
                "--steps", str(step + 1), "--resume", *FAST)
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == step + 1


def test_kill_sigterm_saves_a_checkpoint_like_ctrl_c(carphone_clip, tmp_path):
    """A background run (whose SIGINT a shell ignores) is stopped with `kill`: it saves."""
    out = tmp_path / "run"
    proc = _cli("train", "--model", "zhang", "--data", str(carphone_clip), "--out", str(out),
                "--steps", "100000", *FAST)
    deadline = time.time() + 120
    while time.time() < deadline and (not (out / "metrics.jsonl").exists() or
                                      len((out / "metrics.jsonl").read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] >= 2


@pytest.mark.slow
def test_torchrun_two_cpu_processes_end_with_identical_weights(carphone_clip, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLORVID_")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "colorvid", "train",
         "--model", "zhang", "--data", str(carphone_clip), "--out", str(out), "--steps", "3",
         *FAST],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = json.loads((out / "ranks.json").read_text())
    assert ranks["world_size"] == 2
    assert len(set(ranks["digests"])) == 1
    assert read_config(out / "zhang-tiny.safetensors")["training"]["world_size"] == 2


class _L1Logits(colorvid.Loss):
    """A third-party loss: mean |logits| (only here to prove any registered loss trains)."""

    requires = ("logits",)

    def __call__(self, outputs, batch):
        return outputs["logits"].abs().mean()


class _LossPlugin:
    @colorvid.hookimpl
    def register_losses(self, register):
        register("l1-logits", _L1Logits)


def test_train_accepts_a_third_party_loss(carphone_clip, tmp_path, fresh_host):
    fresh_host.add_plugin(_LossPlugin(), name="loss-plugin")
    try:
        result = train(_config(carphone_clip, tmp_path / "run", loss="l1-logits", steps=2))
    finally:
        fresh_host.unregister("loss-plugin")
    assert result["step"] == 2
    assert read_config(tmp_path / "run" / "zhang-tiny.safetensors")["training"]["loss"] == (
        "l1-logits")


def test_bf16_precision_trains_records_itself_and_auto_follows_the_hardware(carphone_clip,
                                                                           tmp_path):
    from colorvid.core.training.trainer import resolve_precision
    from colorvid.plugins.models.common import native_bf16

    out = tmp_path / "bf16"
    result = train(_config(carphone_clip, out, steps=3, precision="bf16"))
    assert result["step"] == 3 and torch.isfinite(torch.tensor(result["loss"]))
    header = read_config(out / "zhang-tiny.safetensors")
    assert header["training"]["precision"] == "bf16"
    # The weights stay float32 (mixed precision: only the forward runs in bf16).
    assert all(v.dtype == torch.float32 for k, v in load_file(
        str(out / "zhang-tiny.safetensors")).items() if k.endswith(".weight"))
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(TrainError, match="precision 'fp8' is not known; accepted: 'fp32', "
                                         "'bf16', 'auto'"):
        train(_config(carphone_clip, tmp_path / "bad", precision="fp8"))
    # The CLI takes it too.
    run = tmp_path / "cli"
    assert colorvid_cli(["train", "--model", "zhang", "--data", str(carphone_clip), "--out",
                         str(run), "--steps", "2", "--precision", "bf16", "--ema", "0.9",
                         *FAST]) == 0
    header = read_config(run / "zhang-tiny.safetensors")["training"]
    assert header["precision"] == "bf16" and header["ema"] == 0.9


def colorvid_cli(argv: list[str]) -> int:
    from colorvid.core import cli

    return cli.main(argv)


def test_ema_weights_are_the_average_and_survive_resume(carphone_clip, tmp_path):
    plain, ema = tmp_path / "plain", tmp_path / "ema"
    train(_config(carphone_clip, plain, steps=4))
    train(_config(carphone_clip, ema, steps=4, ema=0.5))
    a, b = (load_file(str(d / "zhang-tiny.safetensors")) for d in (plain, ema))
    checkpoint = load_checkpoint(ema / "checkpoint.pt")
    # The live weights of both runs are equal (the average does not touch training) ...
    live = checkpoint["model"]
    assert all(torch.equal(live[k], a[k].to(live[k].dtype)) for k in a if k in live)
    # ... and the file holds their average, which differs from the last step's.
    key = "model1.0.weight"
    assert not torch.equal(a[key], b[key])
    assert read_config(ema / "zhang-tiny.safetensors")["training"]["ema"] == 0.5
    # One average per trained parameter (the frozen decoder has none).
    assert len(checkpoint["ema"]) == sum(1 for p in make_adapter("zhang", "tiny").net.parameters()
                                         if p.requires_grad)
    # Resumed, the average goes on from the checkpoint's.
    cfg = _config(carphone_clip, ema, steps=6, ema=0.5, resume=True)
    train(cfg)
    assert read_config(ema / "zhang-tiny.safetensors")["training"]["steps"] == 6
    with pytest.raises(TrainError, match="ema must be a decay between 0 and 1"):
        train(_config(carphone_clip, tmp_path / "bad", ema=1.5))


def test_prefetched_batches_train_exactly_as_batches_built_in_line(carphone_clip, tmp_path):
    runs = {}
    for prefetch in (True, False):
        out = tmp_path / f"prefetch-{prefetch}"
        train(_config(carphone_clip, out, steps=5, prefetch=prefetch))
        runs[prefetch] = load_file(str(out / "zhang-tiny.safetensors"))
    assert all(torch.equal(runs[True][k], runs[False][k]) for k in runs[True])


def test_an_update_with_a_non_finite_gradient_is_skipped(carphone_clip, tmp_path):
    from colorvid.core.training.trainer import Trainer

    trainer = Trainer(_config(carphone_clip, tmp_path / "check", steps=1))
    for p in trainer._trained:
        p.grad = torch.zeros_like(p)
    assert trainer._grads_finite()
    trainer._trained[0].grad[..., 0] = float("inf")
    assert not trainer._grads_finite()

    class NonFinite(Trainer):  # every gradient judged non-finite: no update may happen
        def _grads_finite(self) -> bool:
            return False

    skipping = NonFinite(_config(carphone_clip, tmp_path / "run", steps=2))
    start = [p.detach().clone() for p in skipping._trained]
    assert skipping.run()["step"] == 2
    assert all(torch.equal(a, b) for a, b in zip(start, skipping._trained, strict=True))
    header = read_config(tmp_path / "run" / "zhang-tiny.safetensors")
    assert header["training"]["skipped_steps"] == 2
