"""Training from a corpus folder: the cached data path, time-boxed runs, cumulative counters
across continued runs, LRCN with a frozen CNN, and the LRCN loss's rebalanced L_seq and warping
term."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import colorvid
from colorvid.core.training import TrainConfig, train
from colorvid.core.training.trainer import TrainError
from colorvid.core.weights import read_config


def _photo(path: Path, seed: int, w: int = 160, h: int = 120) -> None:
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 90)], -1)
    for _ in range(10):
        cy, cx, r = g.integers(0, h), g.integers(0, w), g.integers(6, 30)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = g.integers(0, 256, 3)
    Image.fromarray(img.astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for k in range(25):  # 25 photos: every 20th (by sha256) is held out for validation
        _photo(root / f"p{k:02d}.png", k)
    return root


def _cfg(corpus: Path, out: Path, cache: Path, **kw) -> TrainConfig:
    base = dict(model="zhang", data=[], corpus=[str(corpus)], cache=str(cache), out=str(out),
                crop=32, batch_size=2, lr=1e-3, progress="quiet", steps=3, samples_per_epoch=16,
                checkpoint_every=2, val_every=2)
    base.update(kw)
    return TrainConfig(**base)


def _cli_train_header(corpus: Path, cache: Path, out: Path, *extra: str) -> dict:
    """``colorvid train`` (zhang, one step) on the corpus with ``extra`` options; the header's
    training record of what it wrote."""
    done = subprocess.run([sys.executable, "-m", "colorvid", "train", "--model", "zhang",
                           "--corpus", str(corpus), "--cache", str(cache), "--out", str(out),
                           "--crop", "32", "--batch-size", "2", "--steps", "1",
                           "--samples-per-epoch", "8", *extra, "-q"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return read_config(out / "zhang-tiny.safetensors")["training"]


def test_corpus_run_records_cumulative_steps_samples_and_hours(corpus, tmp_path):
    cache = tmp_path / "cache"
    first = train(_cfg(corpus, tmp_path / "a", cache))
    head = read_config(first["weights"])["training"]
    assert head["cumulative"]["steps"] == 3 and head["cumulative"]["samples"] == 6
    assert head["cumulative"]["cpu_hours"] > 0 and head["cumulative"]["runs"] == 1
    assert head["corpus"]["groups"]["photo"]["sources"] == 25
    assert 0.0 <= head["data_wait_share"] < 1.0
    assert "val_loss" in first
    second = train(_cfg(corpus, tmp_path / "b", cache, init=first["weights"], steps=2, seed=1))
    total = read_config(second["weights"])["training"]["cumulative"]
    assert total["steps"] == 5 and total["samples"] == 10 and total["runs"] == 2
    assert total["cpu_hours"] > head["cumulative"]["cpu_hours"]


def test_max_minutes_stops_a_run_with_its_weights_written(corpus, tmp_path):
    result = train(_cfg(corpus, tmp_path / "run", tmp_path / "cache", steps=1000,
                        max_minutes=1e-4))
    assert result["step"] == 1
    assert Path(result["weights"]).is_file() and (tmp_path / "run" / "checkpoint.pt").is_file()


def test_mix_is_recorded_resumed_and_refused_where_it_cannot_apply(corpus, tmp_path):
    cache = tmp_path / "cache"
    run = tmp_path / "m"
    result = train(_cfg(corpus, run, cache, mix="photo=1,video=0.5", steps=2))
    assert read_config(result["weights"])["training"]["mix"] == {"photo": 1.0, "video": 0.5}
    with pytest.raises(TrainError, match=r"different settings \(mix\)"):
        train(_cfg(corpus, run, cache, steps=3, resume=True))
    assert train(_cfg(corpus, run, cache, mix={"video": 0.5, "photo": 1.0}, steps=3,
                      resume=True))["step"] == 3
    with pytest.raises(TrainError, match="unknown group 'film'"):
        train(_cfg(corpus, tmp_path / "bad", cache, mix="film=1"))
    with pytest.raises(TrainError, match="--mix sets the shares of --corpus"):
        train(dataclasses.replace(_cfg(corpus, tmp_path / "bad2", cache, mix="photo=1"),
                                  corpus=[], data=[str(corpus)]))
    head = _cli_train_header(corpus, cache, tmp_path / "cli", "--mix", "photo=0.7,video=0.3")
    assert head["mix"] == {"photo": 0.7, "video": 0.3}


def test_degrade_is_recorded_resumed_and_refused_where_it_cannot_apply(corpus, tmp_path):
    cache = tmp_path / "cache"
    run = tmp_path / "d"
    result = train(_cfg(corpus, run, cache, degrade=0.5, steps=2))
    assert read_config(result["weights"])["training"]["degrade"] == 0.5
    # a resumed run must keep the share (it is part of what the run trains on)
    with pytest.raises(TrainError, match=r"different settings \(degrade\)"):
        train(_cfg(corpus, run, cache, degrade=0.0, steps=3, resume=True))
    assert train(_cfg(corpus, run, cache, degrade=0.5, steps=3, resume=True))["step"] == 3
    with pytest.raises(TrainError, match="between 0 and 1"):
        train(_cfg(corpus, tmp_path / "bad", cache, degrade=2.0))
    with pytest.raises(TrainError, match="--degrade works on --corpus"):
        train(dataclasses.replace(_cfg(corpus, tmp_path / "bad2", cache, degrade=0.5),
                                  corpus=[], data=[str(corpus)]))
    # the CLI passes it on
    header = _cli_train_header(corpus, cache, tmp_path / "cli", "--degrade", "0.25")
    assert header["degrade"] == 0.25


def test_lrcn_with_frozen_cnn_learns_only_the_lstm(corpus, tmp_path):
    cache = tmp_path / "cache"
    zhang = train(_cfg(corpus, tmp_path / "z", cache, steps=2))["weights"]
    result = train(_cfg(corpus, tmp_path / "l", cache, model="lrcn", seq_len=3, init=zhang,
                        train_cnn=False, steps=2))
    from safetensors.torch import load_file

    z, lrcn = load_file(zhang), load_file(result["weights"])
    assert torch.equal(lrcn["cnn.model1.0.weight"], z["model1.0.weight"])  # CNN untouched
    for key in z:  # its batch-norm statistics too (the CNN runs in eval mode)
        if "running" in key or "num_batches" in key:
            assert torch.equal(lrcn[f"cnn.{key}"], z[key]), key
    assert not torch.equal(lrcn["head.weight"], torch.zeros_like(lrcn["head.weight"]))


def test_distill_learns_the_teachers_distribution_and_refuses_what_it_cannot_teach(corpus,
                                                                                  tmp_path):
    import json

    cache = tmp_path / "cache"
    zhang = train(_cfg(corpus, tmp_path / "z", cache, steps=2))["weights"]
    # A student that starts as its teacher (weights unmoved) is at KL 0 on the validation photos
    # (both in eval mode); the header records the teacher.
    still = train(_cfg(corpus, tmp_path / "same", cache, init=zhang, distill=zhang, lr=1e-30,
                       steps=1, val_every=1))
    assert abs(still["val_loss"]) < 1e-5
    head = read_config(still["weights"])["training"]["distill"]
    assert head == {"teacher": zhang, "teacher_model": "zhang", "weight": 1.0}
    # An LRCN teacher is read frame by frame: its LSTM's correction is what the student learns.
    lrcn = train(_cfg(corpus, tmp_path / "l", cache, model="lrcn", seq_len=3, init=zhang,
                      train_cnn=False, steps=2, lr=1e-2))["weights"]
    taught = train(_cfg(corpus, tmp_path / "t", cache, init=zhang, distill=lrcn, lr=1e-30,
                        steps=1, val_every=1, distill_weight=1.0))
    assert taught["val_loss"] > 1e-6
    mixed = train(_cfg(corpus, tmp_path / "mx", cache, init=zhang, distill=lrcn,
                       distill_weight=0.5, steps=2))
    assert np.isfinite(mixed["loss"])
    assert read_config(mixed["weights"])["training"]["distill"]["teacher_model"] == "lrcn"
    losses = [json.loads(line)["loss"] for line in
              (tmp_path / "mx" / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(losses) == 2 and all(np.isfinite(losses))
    with pytest.raises(TrainError, match=r"different settings \(distill\)"):
        train(_cfg(corpus, tmp_path / "mx", cache, init=zhang, steps=3, resume=True))
    for kw, why in ((dict(model="lrcn", seq_len=2, distill=zhang), "trains a zhang student"),
                    (dict(distill=str(tmp_path / "none.safetensors")), "no such weights file"),
                    (dict(distill=zhang, distill_weight=0.0), "above 0 and at most 1"),
                    (dict(distill=zhang, distill_weight=1.5), "above 0 and at most 1")):
        with pytest.raises(TrainError, match=why):
            train(_cfg(corpus, tmp_path / "bad", cache, **kw))
    larsson = train(_cfg(corpus, tmp_path / "ls", cache, model="larsson", steps=1))["weights"]
    with pytest.raises(TrainError, match="a teacher is a zhang or lrcn weights file"):
        train(_cfg(corpus, tmp_path / "bad2", cache, distill=larsson))
    cli = _cli_train_header(corpus, cache, tmp_path / "cli", "--init", zhang, "--distill", lrcn,
                            "--distill-weight", "0.75")["distill"]
    assert cli == {"teacher": lrcn, "teacher_model": "lrcn", "weight": 0.75}


def test_cli_train_corpus_and_its_errors(corpus, tmp_path):
    cmd = [sys.executable, "-m", "colorvid", "train", "--model", "zhang", "--corpus", str(corpus),
           "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--crop", "32",
           "--batch-size", "2", "--steps", "2", "--samples-per-epoch", "8", "--max-minutes", "5",
           "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "zhang-tiny.safetensors").is_file()
    bad = subprocess.run([sys.executable, "-m", "colorvid", "train", "--model", "zhang", "--out",
                          str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--data VIDEOS... or --corpus FOLDERS..." in bad.stderr
    both = subprocess.run(cmd[:-1] + ["--data", str(corpus), "-q", "--out", str(tmp_path / "y")],
                          capture_output=True, text=True, timeout=120)
    assert both.returncode != 0 and "do not combine it with --data" in both.stderr


def _seq_batch(b: int, t: int, c: int, shift: tuple[int, int] | None):
    g = torch.Generator().manual_seed(0)
    ab = torch.randn(b, t, 2, c, c, generator=g) * 20
    L = torch.rand(b, t, 1, c, c, generator=g) * 100
    out = {"ab": ab.flatten(0, 1), "seq_ab": ab.flatten(0, 1), "L": L.flatten(0, 1),
           "seq_L": L.flatten(0, 1), "seq_shape": torch.tensor([b, t])}
    s = torch.full((b, 2), float("nan")) if shift is None else torch.tensor([shift] * b).float()
    out["shift"] = s
    return out


def test_warp_loss_is_zero_for_consistent_pans_and_grows_with_flicker():
    loss = colorvid.create_loss("lrcn", warp_weight=1.0)
    b, t, c = 2, 4, 32
    h = c // 4
    base = torch.randn(1, 313, h + 3 * t, h + 3 * t)
    # a pan of 1 cell per frame downwards: frame t shows frame t-1 moved by one cell
    frames = [base[:, :, k: k + h, 0:h] for k in range(t)]
    consistent = torch.cat(frames * b).requires_grad_()
    batch = _seq_batch(b, t, c, (4, 0))
    value = loss.warp_loss(consistent, batch["seq_ab"][:, :, ::4, ::4], batch)
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-5)
    flicker = consistent.detach() + torch.randn_like(consistent) * 3
    assert float(loss.warp_loss(flicker, batch["seq_ab"][:, :, ::4, ::4], batch)) > 1.0
    flicker.requires_grad_()
    loss.warp_loss(flicker, batch["seq_ab"][:, :, ::4, ::4], batch).backward()
    assert flicker.grad is not None and flicker.grad.abs().sum() > 0


def test_warp_loss_on_real_video_masks_pixels_whose_truth_changed():
    loss = colorvid.create_loss("lrcn", warp_weight=1.0)
    b, t, c = 1, 3, 16
    batch = _seq_batch(b, t, c, None)
    logits = torch.randn(b * t, 313, c // 4, c // 4)
    # the truth changes everywhere (random L and ab per frame): nothing is judged
    assert float(loss.warp_loss(logits, batch["seq_ab"][:, :, ::4, ::4], batch)) == 0.0
    still = {**batch, "seq_L": batch["seq_L"][:1].repeat(t, 1, 1, 1)}
    seq_ab = batch["seq_ab"][:1, :, ::4, ::4].repeat(t, 1, 1, 1)
    assert float(loss.warp_loss(logits, seq_ab, still)) > 0.0


def test_lrcn_seq_loss_is_rebalanced_when_weights_are_given():
    w = torch.rand(313) * 4 + 0.1
    plain = colorvid.create_loss("lrcn", class_weights=w, rebalance_seq=False, warp_weight=0.0)
    rebal = colorvid.create_loss("lrcn", class_weights=w, warp_weight=0.0)
    logits = torch.randn(2, 313, 4, 4)
    batch = {"ab": torch.randn(2, 2, 16, 16) * 30, "seq_ab": torch.randn(2, 2, 16, 16) * 30}
    outputs = {"logits": logits.detach(), "seq_logits": logits}
    assert float(plain(outputs, batch)) != pytest.approx(float(rebal(outputs, batch)))
    with pytest.raises(ValueError, match="warp_weight must be >= 0"):
        colorvid.create_loss("lrcn", warp_weight=-1)


def test_lrcn_anchor_weight_adds_the_divergence_from_the_cnn_on_each_frame():
    from colorvid.plugins.losses import class_kl

    g = torch.Generator().manual_seed(1)
    cnn = torch.randn(4, 313, 3, 3, generator=g, requires_grad=True)
    batch = {"ab": torch.randn(4, 2, 12, 12, generator=g) * 20}
    batch["seq_ab"] = batch["ab"]
    assert float(class_kl(cnn, cnn)) == pytest.approx(0.0, abs=1e-6)
    seq = (cnn.detach() + torch.randn(4, 313, 3, 3, generator=g)).requires_grad_(True)
    plain = colorvid.create_loss("lrcn", warp_weight=0.0)
    anchored = colorvid.create_loss("lrcn", warp_weight=0.0, anchor_weight=2.0)
    outputs = {"logits": cnn, "seq_logits": seq}
    kl = class_kl(cnn, seq)
    # the divergence, independently: sum p (log p - log q) over the 313 classes, mean over pixels
    p, q = torch.softmax(cnn.detach(), 1), torch.softmax(seq.detach(), 1)
    assert float(kl) == pytest.approx(float((p * (p.log() - q.log())).sum(1).mean()), rel=1e-4)
    assert float(anchored(outputs, batch)) == pytest.approx(
        float(plain(outputs, batch)) + 2.0 * float(kl), rel=1e-5)
    class_kl(cnn, seq).backward()
    assert cnn.grad is None and seq.grad is not None  # the CNN's side is the fixed anchor
    # seq_mode "last": each sequence's one LSTM frame against its last CNN frame
    last = seq.detach()[[1, 3]]
    two = {"logits": cnn.detach(), "seq_logits": last}
    batch2 = {"ab": batch["ab"], "seq_ab": batch["ab"][[1, 3]]}
    assert float(anchored(two, batch2)) == pytest.approx(
        float(plain(two, batch2)) + 2.0 * float(class_kl(cnn.detach()[[1, 3]], last)), rel=1e-5)
    with pytest.raises(ValueError, match="anchor_weight must be >= 0"):
        colorvid.create_loss("lrcn", anchor_weight=-0.5)


def test_recipe_runs_its_stages_with_the_warp_weight(corpus, tmp_path):
    from colorvid.core.training.defaults import main
    from colorvid.core.weights import default_weights_path

    out = tmp_path / "recipe"
    assert main([str(out), "--corpus", str(corpus), "--stages", "zhang,lrcn", "--minutes",
                 "0.01", "--crop", "32", "--batch-size", "2", "--warp-weight", "0.2",
                 "--anchor-weight", "1.5", "--mix", "photo=1"]) == 0
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["zhang"]["steps"] >= 1 and report["lrcn"]["steps"] >= 1
    zhang = read_config(out / "zhang" / "zhang-tiny.safetensors")["training"]
    shipped = read_config(default_weights_path("zhang", "tiny"))["training"]["cumulative"]
    assert zhang["cumulative"]["runs"] == shipped["runs"] + 1  # continued the shipped file
    assert "degrade" not in zhang  # off unless asked (the recipe's default)
    lrcn = read_config(out / "lrcn" / "lrcn-tiny.safetensors")["training"]
    assert lrcn["loss_options"] == {"warp_weight": 0.2, "anchor_weight": 1.5}
    assert zhang["mix"] == lrcn["mix"] == {"photo": 1.0}  # --mix reaches every stage
    assert "CNN from" in lrcn["init"] and str(out / "zhang") in lrcn["init"]


@pytest.mark.slow
def test_recipe_ctrl_c_saves_the_stage_and_says_how_to_continue(corpus, tmp_path):
    from train_helpers import interrupt_after_logging, popen_interruptible

    out = tmp_path / "recipe"
    proc = popen_interruptible(
        [sys.executable, "-m", "colorvid.core.training.defaults", str(out), "--corpus",
         str(corpus), "--stages", "zhang", "--minutes", "5", "--crop", "32", "--batch-size", "2"])
    err = interrupt_after_logging(proc, out / "zhang" / "metrics.jsonl", 180)
    assert proc.returncode == 130, err
    assert "run the same command again to continue it" in err and "Traceback" not in err
    assert (out / "zhang" / "checkpoint.pt").is_file()


def test_recipe_larsson_stage_continues_the_given_file_and_refuses_a_missing_one(corpus,
                                                                               tmp_path):
    from colorvid.core.training.defaults import main
    from colorvid.core.weights import default_weights_path

    first = tmp_path / "first"
    assert main([str(first), "--corpus", str(corpus), "--stages", "larsson", "--minutes", "0.01",
                 "--crop", "32", "--batch-size", "2"]) == 0
    kept = first / "larsson" / "larsson-tiny.safetensors"
    runs = read_config(kept)["training"]["cumulative"]["runs"]
    shipped = read_config(default_weights_path("larsson", "tiny"))["training"]
    assert runs == ((shipped or {}).get("cumulative") or {}).get("runs", 0) + 1
    second = tmp_path / "second"
    assert main([str(second), "--corpus", str(corpus), "--stages", "larsson", "--minutes", "0.01",
                 "--crop", "32", "--batch-size", "2", "--larsson-init", str(kept)]) == 0
    cont = read_config(second / "larsson" / "larsson-tiny.safetensors")["training"]
    assert cont["cumulative"]["runs"] == runs + 1 and str(kept) in cont["init"]
    with pytest.raises(SystemExit, match="--larsson-init .*no such file"):
        main([str(tmp_path / "third"), "--corpus", str(corpus), "--stages", "larsson",
              "--larsson-init", str(tmp_path / "missing.safetensors")])


def test_recipe_combine_puts_the_shipped_lstm_over_the_new_cnn(corpus, tmp_path):
    from safetensors.torch import load_file

    from colorvid.core.training.defaults import main
    from colorvid.core.weights import default_weights_path

    out = tmp_path / "recipe"
    assert main([str(out), "--corpus", str(corpus), "--stages", "zhang,combine", "--minutes",
                 "0.01", "--crop", "32", "--batch-size", "2"]) == 0
    cnn_file = out / "zhang" / "zhang-tiny.safetensors"
    combined = out / "lrcn" / "lrcn-tiny.safetensors"
    cnn, lrcn = load_file(str(cnn_file)), load_file(str(combined))
    shipped = load_file(str(default_weights_path("lrcn", "tiny")))
    for key in ("model1.0.weight", "model8.0.weight"):  # the CNN is the new zhang file's
        assert torch.equal(lrcn[f"cnn.{key}"].float(), cnn[key].float())
    for key in ("head.weight", "lstm.gates.weight", "proj.bias"):  # the LSTM the shipped one
        assert torch.equal(lrcn[key].float(), shipped[key].float())
    head = read_config(combined)
    shipped_head = read_config(default_weights_path("lrcn", "tiny"))
    assert head["model"] == "lrcn"
    # The new CNN kept the decoding of the shipped zhang it continued, and the LRCN takes it.
    cnn_head = read_config(cnn_file)
    assert cnn_head["calibration"]["inherited_from"] == "zhang-tiny.safetensors"
    for key in ("decode_temperature", "decode_saturation", "decode_prior_correction"):
        assert head.get(key) == cnn_head.get(key)
    assert head["training"]["cumulative"] == shipped_head["training"]["cumulative"]
    assert head["training"]["cnn"]["cumulative"] == \
        read_config(cnn_file)["training"]["cumulative"]
    # Over a calibrated CNN (the shipped one) the LRCN decodes as that CNN was calibrated.
    from colorvid.core.training.defaults import combine_lrcn

    shipped_cnn = default_weights_path("zhang", "tiny")
    over = combine_lrcn(default_weights_path("lrcn", "tiny"), shipped_cnn,
                        tmp_path / "over-shipped.safetensors")
    want = read_config(shipped_cnn)
    got = read_config(over)
    assert got["calibration"]["inherited_from"] == "zhang-tiny.safetensors"
    for key in ("decode_temperature", "decode_saturation", "decode_prior_correction"):
        assert got.get(key) == want.get(key)
    clr = colorvid.create_colorizer("lrcn", weights=str(combined), device="cpu")
    ab = clr.predict_ab(torch.rand(1, 1, 48, 64) * 100)  # loads as a normal lrcn file
    assert ab.shape == (1, 2, 48, 64) and torch.isfinite(ab).all()


def test_recipe_refuses_unknown_or_conflicting_stages(corpus, tmp_path):
    from colorvid.core.training.defaults import combine_lrcn, main
    from colorvid.core.weights import default_weights_path

    with pytest.raises(SystemExit, match="unknown stage.*zhnag.*accepted: sweep, mobilenet, zhang"):
        main([str(tmp_path / "a"), "--corpus", str(corpus), "--stages", "zhnag"])
    with pytest.raises(SystemExit, match="lrcn .* or combine"):
        main([str(tmp_path / "b"), "--corpus", str(corpus), "--stages", "lrcn,combine"])
    zhang = default_weights_path("zhang", "tiny")
    with pytest.raises(ValueError, match="LSTM must come from an lrcn"):
        combine_lrcn(zhang, zhang, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="CNN must come from a weights file of mobilenet or zhang"):
        combine_lrcn(default_weights_path("lrcn", "tiny"), default_weights_path("lrcn", "tiny"),
                     tmp_path / "y.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_continued_weights_keep_the_decoding_they_started_from(corpus, tmp_path):
    from colorvid.core.training.calibrate import write_temperature

    cache = tmp_path / "cache"
    start = train(_cfg(corpus, tmp_path / "a", cache, steps=1))["weights"]
    assert "decode_temperature" not in read_config(start)  # from scratch: the defaults
    write_temperature(start, 0.7, {"note": "photos"}, saturation=1.5, prior_correction=1.0)
    cont = train(_cfg(corpus, tmp_path / "b", cache, steps=1, init=start))["weights"]
    head = read_config(cont)
    assert (head["decode_temperature"], head["decode_saturation"],
            head["decode_prior_correction"]) == (0.7, 1.5, 1.0)
    assert head["calibration"]["inherited_from"] == Path(start).name
    z = colorvid.create_colorizer("zhang", weights=str(cont), device="cpu")
    assert (z.temperature, z.saturation, z.prior_correction) == (0.7, 1.5, 1.0)
    # an LRCN over that CNN decodes as the CNN was calibrated
    lrcn = train(_cfg(corpus, tmp_path / "l", cache, model="lrcn", seq_len=3, init=start,
                      train_cnn=False, steps=1))["weights"]
    assert read_config(lrcn)["decode_saturation"] == 1.5


def test_recipe_mobilenet_stage_then_an_lrcn_over_it(corpus, tmp_path):
    from colorvid.core.training.defaults import main

    out = tmp_path / "recipe"
    assert main([str(out), "--corpus", str(corpus), "--stages", "mobilenet,lrcn", "--preset",
                 "tiny", "--cnn", "mobilenet", "--minutes", "0.01", "--crop", "32",
                 "--mobilenet-crop", "64", "--mobilenet-batch", "2", "--batch-size", "2"]) == 0
    cnn = read_config(out / "mobilenet" / "mobilenet-tiny.safetensors")
    assert cnn["training"]["model_options"] == {"freeze_encoder": True}
    assert "ImageNet MobileNetV2" in cnn["training"]["init"]
    lrcn = read_config(out / "lrcn" / "lrcn-tiny.safetensors")
    assert lrcn["architecture"]["cnn"] == "mobilenet"
    assert str(out / "mobilenet") in lrcn["training"]["init"]
