"""The pipelined colorize (colorvid.core.video.engine): order kept, bounded, and an error or an
interrupt in any stage (decode, model, encode) stops every thread and leaves no output."""

from __future__ import annotations

import os
import random
import threading
import time

import numpy as np
import pytest
import torch
from torch import Tensor

import colorvid
from colorvid.core.interfaces import Colorizer
from colorvid.core.video.decode import VideoError, read_frames
from colorvid.core.video.engine import run_stages
from colorvid.core.video.pipeline import ColorizeError, VideoColorizer
from colorvid.core.video.transcode import Transcoder


def _pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("colorvid-")]


class FailingColorizer(Colorizer):
    """Constant chroma; raises ``error`` on call number ``fail_on`` (0-based), after ``delay``."""

    name = "failing-test"

    def __init__(self, fail_on: int | None = None, error: BaseException | None = None,
                 delay: float = 0.0) -> None:
        self.fail_on, self.error, self.delay = fail_on, error, delay
        self.calls = 0

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        time.sleep(self.delay)
        if self.calls == self.fail_on:
            raise self.error
        self.calls += 1
        return L.new_full((L.shape[0], 2, *L.shape[-2:]), 10.0)


class JitteryIdentity(Colorizer):
    """Stateless, ab = 0; sleeps a random time per call so stages finish out of step."""

    name = "jittery-test"

    def predict_ab_lowres(self, L: Tensor) -> Tensor:
        time.sleep(random.uniform(0, 0.01))
        return L.new_zeros((L.shape[0], 2, *L.shape[-2:]))


def test_run_stages_keeps_order_under_jitter():
    def slow_square(items):
        for x in items:
            time.sleep(random.uniform(0, 0.002))
            yield x * x

    def regroup(items):  # a stateful stage that flushes at the end
        pair = []
        for x in items:
            pair.append(x)
            if len(pair) == 2:
                yield tuple(pair)
                pair = []
        if pair:
            yield tuple(pair)

    out = list(run_stages(iter(range(41)), [("square", slow_square), ("pair", regroup)]))
    assert [x for p in out for x in p] == [x * x for x in range(41)]
    assert not _pipeline_threads()


def test_stream_keeps_frame_order(carphone_clip):
    frames = [rgb for _, rgb in read_frames(carphone_clip, count=12)]
    # every frame a distinct brightness, so a swap shows in the output's L
    frames = [np.clip(f.astype(int) + 9 * k, 0, 255).astype(np.uint8) for k, f in
              enumerate(frames)]
    vc = VideoColorizer(JitteryIdentity(), batch=2, pipelined=True)
    out = list(vc.stream(iter(frames)))
    sequential = [vc.colorize(f) for f in frames]
    assert len(out) == 12
    for got, want in zip(out, sequential, strict=True):
        np.testing.assert_array_equal(got, want)


def test_pipelined_and_sequential_streams_agree_for_temporal(test_colorizers, carphone_frames,
                                                            bunny_cut):
    bunny = [rgb[:108, :176].copy() for _, rgb in read_frames(bunny_cut, count=7)]
    frames = [f[:108, :176].copy() for f in carphone_frames] + bunny  # a cut at frame 10
    runs = []
    for pipelined in (True, False):
        vc = colorvid.open_colorizer("count-test", batch=3, pipelined=pipelined)
        runs.append((list(vc.stream(frames)), list(vc.scene_cuts), test_colorizers[-1].log))
    (out_p, cuts_p, log_p), (out_s, cuts_s, log_s) = runs
    assert cuts_p == cuts_s == [10] and log_p == log_s == list(range(10)) + list(range(7))
    for a, b in zip(out_p, out_s, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def carphone_frames(carphone_clip) -> list[np.ndarray]:
    return [rgb for _, rgb in read_frames(carphone_clip, count=10)]


# The error and interrupt tests run both engines: the threaded one and the sequential one that
# auto_pipelined picks on a CPU whose cores torch already uses.
ENGINES = pytest.mark.parametrize("pipelined", [True, False], ids=["threads", "sequential"])


def _assert_nothing_written(folder):
    assert list(folder.iterdir()) == []  # neither the output nor its hidden .part file
    assert not _pipeline_threads()


@ENGINES
def test_decode_error_stops_the_pipeline_and_writes_nothing(bunny_cut, tmp_path, monkeypatch,
                                                           pipelined):
    decode = Transcoder._decode

    def failing_decode(self, packet):
        if self.report.frames_in >= 7:
            raise VideoError(f"{self.src}: decode error at frame 7: Invalid data")
        yield from decode(self, packet)

    monkeypatch.setattr(Transcoder, "_decode", failing_decode)
    model = FailingColorizer()
    with pytest.raises(VideoError, match="decode error at frame 7") as info:
        colorvid.colorize_video(bunny_cut, tmp_path / "out.mp4",
                                VideoColorizer(model, batch=2, pipelined=pipelined))
    if pipelined:  # the engine notes which thread raised
        assert any("decode stage" in note for note in info.value.__notes__)
    assert model.calls <= 4  # frames 0..6 at most: nothing after the error reached the model
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("error", [RuntimeError("CUDA out of memory"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
@ENGINES
def test_model_error_stops_the_pipeline_and_writes_nothing(error, bunny_cut, tmp_path, pipelined):
    model = FailingColorizer(fail_on=2, error=error)
    start = time.monotonic()
    with pytest.raises(type(error)):
        colorvid.colorize_video(bunny_cut, tmp_path / "out.mp4",
                                VideoColorizer(model, batch=2, pipelined=pipelined))
    assert time.monotonic() - start < 20
    assert model.calls == 2
    _assert_nothing_written(tmp_path)


@ENGINES
def test_encode_error_stops_the_pipeline_and_writes_nothing(bunny_cut, tmp_path, monkeypatch,
                                                           pipelined):
    write = Transcoder.write
    read_back: list[int] = []

    def failing_write(self, rgb):
        if self.report.frames_out == 5:
            read_back.append(self.report.frames_in)
            raise VideoError(f"{self.dst}: write error: No space left on device")
        write(self, rgb)

    monkeypatch.setattr(Transcoder, "write", failing_write)
    model = FailingColorizer(delay=0.01)
    with pytest.raises(VideoError, match="No space left"):
        colorvid.colorize_video(bunny_cut, tmp_path / "out.mp4",
                                VideoColorizer(model, batch=2, pipelined=pipelined))
    assert read_back and read_back[0] < 30  # decoding had not run to the end of the clip
    _assert_nothing_written(tmp_path)


@ENGINES
def test_interrupt_in_the_callers_thread_stops_the_stages(carphone_frames, pipelined):
    """Ctrl-C lands in the caller's thread (the encoder, for colorvid colorize): the stream's
    threads stop and are joined when the generator is closed, even with the model mid-call."""
    model = FailingColorizer(delay=0.05)
    vc = VideoColorizer(model, batch=1, pipelined=pipelined)
    stream = vc.stream(iter(carphone_frames * 100))
    with pytest.raises(KeyboardInterrupt):
        for k, _ in enumerate(stream):
            if k == 3:
                raise KeyboardInterrupt
    start = time.monotonic()
    stream.close()
    assert time.monotonic() - start < 5 and not _pipeline_threads()
    assert model.calls <= 4 + vc.read_ahead  # 4 yielded: it stopped, far before the 1000 frames


@ENGINES
def test_source_error_in_stream_reaches_the_caller(pipelined):
    def frames():
        yield np.zeros((8, 8, 3), np.uint8)
        yield np.zeros((8, 8, 4), np.uint8)  # not a frame: the decode stage's _to_l refuses it

    vc = VideoColorizer(FailingColorizer(), batch=1, pipelined=pipelined)
    with pytest.raises(ValueError, match="HxWx3"):
        list(vc.stream(frames()))
    assert not _pipeline_threads()


def test_stream_runs_the_model_with_inference_mode_in_its_thread():
    seen = []

    class Probe(FailingColorizer):
        def predict_ab_lowres(self, L: Tensor) -> Tensor:
            seen.append((torch.is_inference_mode_enabled(), threading.current_thread().name))
            return super().predict_ab_lowres(L)

    list(VideoColorizer(Probe(), batch=1, pipelined=True).stream([np.zeros((4, 4), np.uint8)] * 2))
    assert seen == [(True, "colorvid-model")] * 2
    seen.clear()
    list(VideoColorizer(Probe(), batch=1, pipelined=False).stream([np.zeros((4, 4), np.uint8)]))
    assert seen == [(True, threading.current_thread().name)]


def test_auto_engine_follows_the_device_and_the_free_cores(monkeypatch):
    """pipelined=None: threads on CUDA, and on the CPU only when torch leaves a core free."""
    from colorvid.core.video import pipeline

    assert pipeline.auto_pipelined(torch.device("cuda")) is True
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert pipeline.auto_pipelined(torch.device("cpu")) is False
    assert VideoColorizer(FailingColorizer(), batch=1).pipelined is False
    assert VideoColorizer(FailingColorizer(), batch=1, pipelined=True).pipelined is True
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert pipeline.auto_pipelined(torch.device("cpu")) is True
    assert VideoColorizer(FailingColorizer(), batch=1).pipelined is True
    assert colorvid.open_colorizer("grey", pipelined=False).pipelined is False
    with pytest.raises(ValueError, match="pipelined must be True, False or None"):
        VideoColorizer(FailingColorizer(), pipelined="yes")


def test_usable_cpus_is_the_affinity_mask():
    from colorvid.core.video.pipeline import usable_cpus

    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


def test_check_chroma_refuses_non_finite_ab():
    class Broken(FailingColorizer):
        def predict_ab_lowres(self, L: Tensor) -> Tensor:
            return L.new_full((L.shape[0], 2, 2, 2), float("nan"))

    frames = [np.zeros((8, 8), np.uint8)] * 3
    with pytest.raises(ColorizeError, match="failing-test: the model's output holds NaN"):
        list(VideoColorizer(Broken(), batch=2).stream(frames))  # never black frames
    with pytest.raises(ValueError, match="failing-test: predicted ab contains NaN"):
        list(VideoColorizer(Broken(), batch=2, check_chroma=True).stream(frames))
    assert not _pipeline_threads()
