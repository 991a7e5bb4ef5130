"""The Python side of the VapourSynth filter ``core.colorvid.*``.

The native plugin (``csrc/vapoursynth``) registers ``LRCN``, ``Zhang``, ``Larsson``,
``Ensemble`` and ``Colorize`` and calls in here under the GIL:

- :func:`native_create` when a script calls e.g. ``core.colorvid.LRCN(clip)``: validates the
  clip and every option before any work, builds the colorizer through the plugin host and
  returns a :class:`FilterSession` plus the output format;
- :meth:`FilterSession.process` for each output frame, from several VapourSynth threads at once:
  planes -> L ``(1, 1, H, W)`` -> batcher (one model call for concurrent frames) -> ab -> planes.

Temporal colorizers (``temporal = True``, e.g. LRCN) see a window of frames n-window+1..n, cut at
the latest scene change (``_SceneChangePrev`` on a frame, or ``_SceneChangeNext`` on the one
before), so frame n never depends on the order frames are requested in. A temporal colorizer that
implements :class:`WindowedColorizer` gets one CNN pass per frame: per-frame features are cached
by frame number and reused by the next windows. Others fall back to
``predict_sequence`` over the whole window (window-many CNN passes per frame).

>>> import vapoursynth as vs  # doctest: +SKIP
>>> rgb = vs.core.colorvid.Colorize(grey_clip, model="grey")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from colorvid.core.host import get_host
from colorvid.core.interfaces import MAX_RENDER_SIZE, Colorizer
from colorvid.core.vapoursynth.batch import Batcher, FeatureCache
from colorvid.core.vapoursynth.color import (
    CF_GRAY,
    CF_RGB,
    CF_YUV,
    VideoFormat,
    decode_format_id,
    read_l,
    resolve_matrix,
    resolve_range,
    write_planes,
)

__all__ = [
    "DEFAULT_WINDOW",
    "FUNCTIONS",
    "FilterError",
    "FilterOptions",
    "FilterSession",
    "WindowedColorizer",
    "native_create",
]

# VapourSynth function -> registered colorizer name (Colorize takes model="name").
FUNCTIONS: dict[str, str | None] = {
    "LRCN": "lrcn",
    "Zhang": "zhang",
    "Larsson": "larsson",
    "Ensemble": "ensemble",
    "Colorize": None,
}
# n-5..n: the paper's LRCN sequences are 6 frames long.
DEFAULT_WINDOW = 6
_MAX_BATCH = 64
_MAX_STREAMS = 16


class FilterError(Exception):
    """A user-facing error; the message starts with ``colorvid.<Function>: ``."""


@runtime_checkable
class WindowedColorizer(Protocol):
    """The building blocks a temporal colorizer exposes for one CNN pass per frame in the filter
    (``colorvid.plugins.lrcn`` implements them).

    ``frame_features(L)``: L ``(N, 1, h, w)`` at the render size -> per-frame features
    ``(N, ...)`` (LRCN: CNN logits at h/4), a pure function of each frame, so they are cached.
    ``window_logits(features)``: ``(T, ...)`` of consecutive frames, oldest first -> ``(1, ...)``
    for the last frame, from a fresh temporal state.
    ``decode_logits(logits)``: ``(N, ...)`` -> ab ``(N, 2, h', w')`` (any resolution).
    """

    def frame_features(self, L_render: Tensor) -> Tensor: ...

    def window_logits(self, features: Tensor) -> Tensor: ...

    def decode_logits(self, logits: Tensor) -> Tensor: ...


@dataclasses.dataclass(frozen=True)
class FilterOptions:
    """The keyword options of every ``core.colorvid`` function (None: not given)."""

    model: str | None = None
    weights: str | None = None
    device: str | None = None
    fp16: bool = False
    num_streams: int | None = None
    batch_size: int | None = None
    render_size: int | None = None
    window: int | None = None
    format: int | None = None
    preset: str | None = None
    members: tuple[str, ...] | None = None
    dtype: str | None = None  # "float32", "bfloat16", "auto" (the colorizer's default)

    @classmethod
    def parse(cls, who: str, args: Mapping[str, Sequence[Any]]) -> FilterOptions:
        """From the native side's ``{name: [values]}``; checks ranges, names the bad option."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, seq in args.items():
            if key not in known:
                raise FilterError(f"{who}: unknown option {key!r}")
            values[key] = tuple(seq) if key == "members" else seq[0]
        opts = cls(**values)
        for key, lo, hi in (("num_streams", 1, _MAX_STREAMS), ("batch_size", 1, _MAX_BATCH),
                            ("render_size", 8, MAX_RENDER_SIZE), ("window", 1, 64)):
            v = getattr(opts, key)
            if v is not None and not lo <= v <= hi:
                raise FilterError(f"{who}: {key} must be between {lo} and {hi}, got {v}")
        if opts.fp16 not in (0, 1, False, True):
            raise FilterError(f"{who}: fp16 must be 0 or 1 (False/True), got {opts.fp16}")
        return dataclasses.replace(opts, fp16=bool(opts.fp16))


def _device(who: str, name: str | None) -> torch.device | None:
    """Parse and check ``device``: 'cpu', 'cuda' or 'cuda:N' that this torch can use."""
    if name is None:
        return None
    accepted = "accepted: 'cpu', 'cuda', 'cuda:N'"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise FilterError(f"{who}: device {name!r} is not a device name; {accepted}") from None
    if dev.type not in ("cpu", "cuda"):
        raise FilterError(f"{who}: device {name!r} is not supported; {accepted}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise FilterError(f"{who}: device {name!r} is not usable: torch sees no CUDA GPU "
                              f"(torch {torch.__version__}); use device='cpu'")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise FilterError(f"{who}: device {name!r} is not usable: only {count} CUDA "
                              f"device(s) (cuda:0..cuda:{count - 1})")
    return dev


def _create_colorizer(who: str, function: str, opts: FilterOptions
                      ) -> tuple[Colorizer, bool]:
    """The colorizer, and whether the filter must run it under fp16 autocast."""
    name = FUNCTIONS[function] or opts.model
    if not name:
        raise FilterError(f"{who}: model must name a registered colorizer")
    host = get_host()
    try:
        entry = host.entry("colorizer", name)
    except KeyError:
        available = ", ".join(host.names("colorizer")) or "none"
        what = "unknown model" if FUNCTIONS[function] is None else "the colorizer is missing:"
        raise FilterError(f"{who}: {what} {name!r}; registered colorizers: {available}") from None
    if opts.weights is not None and not Path(opts.weights).is_file():
        raise FilterError(f"{who}: weights file {opts.weights!r} does not exist")
    given: dict[str, Any] = {"weights": opts.weights, "preset": opts.preset,
                             "device": opts.device, "render_size": opts.render_size,
                             "members": opts.members, "window": opts.window,
                             "dtype": opts.dtype, "fp16": True if opts.fp16 else None}
    try:
        params = inspect.signature(entry.factory).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):  # builtins without a signature: pass what was given
        params, takes_any = {}, True
    kwargs = {}
    autocast = False
    for key, value in given.items():
        if value is None:
            continue
        if takes_any or key in params:
            kwargs[key] = list(value) if key == "members" else value
        elif key == "fp16":
            autocast = True  # the filter runs the model under torch.autocast instead
        elif key != "window":  # the window is the filter's business; passed on when taken
            accepted = ", ".join(k for k in params if k in given) or "none"
            raise FilterError(f"{who}: colorizer {name!r} does not take the option {key}= "
                              f"(its options among these: {accepted})")
    try:
        colorizer = entry.create(**kwargs)
    except Exception as e:
        source = f"weights {opts.weights!r}" if opts.weights else "its default weights"
        raise FilterError(f"{who}: cannot create colorizer {name!r} from {source}: "
                          f"{type(e).__name__}: {e}") from e
    if not isinstance(colorizer, Colorizer):
        raise FilterError(f"{who}: colorizer {name!r} factory returned "
                          f"{type(colorizer).__name__}, not a colorvid.Colorizer")
    return colorizer, autocast


def _output_format(who: str, src: VideoFormat, opts: FilterOptions) -> VideoFormat:
    if src.family != CF_GRAY:
        if opts.format is not None:
            raise FilterError(f"{who}: format applies to GRAY input only; {src.name} "
                              "input keeps its format")
        return src
    if opts.format is None:  # GRAY8 -> RGB24, GRAY16 -> RGB48, GRAYS -> RGBS
        return VideoFormat(CF_RGB, src.sample_type, src.bits)
    out = decode_format_id(opts.format)
    problem = out.problem()
    if problem is None and out.family == CF_YUV and (out.sample_type, out.bits) != (
            src.sample_type, src.bits):
        problem = "YUV output must have the sample type and bits of the GRAY input (its luma)"
    if problem is None and out.family == CF_GRAY:
        problem = "the output must have colour (RGB or YUV)"
    if problem is not None:
        raise FilterError(f"{who}: format {opts.format} ({out.name}) is not usable: {problem}")
    return out


def native_create(function: str, info: Mapping[str, int],
                  args: Mapping[str, Sequence[Any]]) -> tuple[FilterSession, tuple[int, ...]]:
    """Called by the native plugin: validate, build the session, return it with the output spec.

    The spec is ``(family, sample_type, bits, sub_w, sub_h, window, copy_luma, write_mask)``.
    """
    who = f"colorvid.{function}"
    try:
        return _native_create(who, function, info, args)
    except FilterError:
        raise
    except Exception as e:
        raise FilterError(f"{who}: {type(e).__name__}: {e}") from e


def _native_create(who: str, function: str, info: Mapping[str, int],
                   args: Mapping[str, Sequence[Any]]) -> tuple[FilterSession, tuple[int, ...]]:
    if function not in FUNCTIONS:
        raise FilterError(f"{who}: unknown function; accepted: {', '.join(FUNCTIONS)}")
    opts = FilterOptions.parse(who, args)
    if info["color_family"] == 0:
        raise FilterError(f"{who}: clip must have a constant format (variable-format clips are "
                          "not supported)")
    if info["width"] == 0 or info["height"] == 0:
        raise FilterError(f"{who}: clip must have a constant frame size (variable-size clips are "
                          "not supported)")
    src = VideoFormat(info["color_family"], info["sample_type"], info["bits"], info["sub_w"],
                      info["sub_h"])
    if (problem := src.problem()) is not None:
        raise FilterError(f"{who}: clip must be GRAY, YUV or RGB with 8-16 bit integer or "
                          f"16/32-bit float samples: {problem}")
    out = _output_format(who, src, opts)
    device = _device(who, opts.device)
    if opts.fp16 and (device is None or device.type != "cuda"):
        raise FilterError(f"{who}: fp16=True needs a CUDA device (device='cuda'), got "
                          f"device={opts.device!r}")
    colorizer, autocast = _create_colorizer(who, function, opts)
    if opts.window is not None and not colorizer.temporal:
        raise FilterError(f"{who}: window applies to temporal colorizers (LRCN); "
                          f"{colorizer.name!r} works frame by frame")
    model_device = torch.device(getattr(colorizer, "device", None) or "cpu")
    # Batching pays on a GPU; on a CPU one frame already keeps every core busy, and a batch is
    # padded to its full size (below) so a bigger default would only waste work.
    batch = opts.batch_size or (8 if model_device.type == "cuda" else 1)
    session = FilterSession(
        who, colorizer, src, out, info["width"], info["height"],
        window=(opts.window or DEFAULT_WINDOW) if colorizer.temporal else 1,
        batch_size=batch, num_streams=opts.num_streams or 1, autocast=autocast,
    )
    copy_luma = out.family == CF_YUV
    mask = 0b110 if copy_luma else 0b111
    spec = (out.family, out.sample_type, out.bits, out.sub_w, out.sub_h, session.window,
            int(copy_luma), mask)
    return session, spec


def _closed(items: list[Any]) -> list[Any]:
    raise FilterError("colorvid: the filter has been freed")


_CLOSED: Batcher[Any, Any] = Batcher(_closed)
_CLOSED.close()


@dataclasses.dataclass
class _Window:
    """One temporal request: frames ``indices`` (oldest first) ending at the requested one."""

    indices: list[int]
    known: dict[int, Tensor]  # features found in the cache when the request was made
    missing: dict[int, Tensor]  # L of the frames whose features must be computed


class FilterSession:
    """One filter instance: the colorizer, the batcher and (temporal) the feature cache."""

    def __init__(self, who: str, colorizer: Colorizer, src: VideoFormat, out: VideoFormat,
                 width: int, height: int, *, window: int = 1, batch_size: int = 1,
                 num_streams: int = 1, autocast: bool = False) -> None:
        self.who = who
        self.colorizer = colorizer
        self.src, self.out = src, out
        self.width, self.height = width, height
        self.window = window
        self.batch_size = batch_size
        self.autocast = autocast
        self.device = torch.device(getattr(colorizer, "device", None) or "cpu")
        self.windowed = colorizer.temporal and isinstance(colorizer, WindowedColorizer)
        # Linear playback with batch_size * num_streams frames in flight needs the last
        # `window` features of each; twice that leaves room for requests arriving out of order.
        self.cache = FeatureCache(2 * (window + batch_size * num_streams))
        if not colorizer.temporal:
            run = self._run_frames
        elif self.windowed:
            run = self._run_windows
        else:
            run = self._run_sequences
        self.batcher: Batcher[Any, Tensor] = Batcher(run, batch_size, num_streams)

    # -- called by the native plugin ----------------------------------------------------------
    def process(self, n: int, frames: Sequence[tuple[int, Sequence[Any], Sequence[int],
                                                     Mapping[str, int]]],
                dst: Sequence[tuple[int, Any, int]]) -> tuple[list[tuple[str, int]], list[str]]:
        """Colorize frame ``n``: ``frames`` are ``(index, planes, strides, props)`` for
        n-window+1..n, ``dst`` the writable output planes ``(plane, buffer, stride)``.

        Returns the frame props to set and the ones to delete.
        """
        try:
            return self._process(n, frames, dst)
        except FilterError:
            raise
        except Exception as e:
            raise FilterError(f"{self.who}: frame {n}: {type(e).__name__}: {e}") from e

    def close(self) -> None:
        """Called when VapourSynth frees the filter: drop the model and cached features.

        The batcher holds a bound method of this session (a reference cycle); dropping it and
        the model here frees their memory now rather than at the next garbage collection.
        """
        self.batcher.close()
        self.batcher = _CLOSED
        self.cache.clear()
        self.colorizer = None  # type: ignore[assignment]

    # -- per frame ----------------------------------------------------------------------------
    def _process(self, n, frames, dst):
        index, planes, strides, props = frames[-1]
        if index != n:
            raise FilterError(f"{self.who}: internal error: got frame {index} for {n}")
        full = resolve_range(props, default_full=self.src.family != CF_YUV)
        matrix = None
        if self.out.family == CF_YUV:
            matrix = resolve_matrix(props, self.height, self.who, n)
        L = self._l(planes, strides, full, n)  # (1, 1, H, W) on the model's device
        if not self.colorizer.temporal:
            ab = self.batcher.submit(L)
        else:
            used = frames[self._window_start(frames):]
            if self.windowed:
                known, missing = {}, {}
                for i, p, s, pr in used:
                    cached = self.cache.get(i)
                    if cached is not None:
                        known[i] = cached
                    else:
                        missing[i] = L if i == n else self._l(p, s, resolve_range(pr, full), i)
                ab = self.batcher.submit(_Window([f[0] for f in used], known, missing))
            else:
                seq = [L if i == n else self._l(p, s, resolve_range(pr, full), i)
                       for i, p, s, pr in used]
                ab = self.batcher.submit(torch.cat(seq))
        write_planes(self._host(L)[0, 0], self._host(ab)[0], self.out, self.width, self.height,
                     full, matrix, dst)
        return self._props(props, full, matrix)

    def _l(self, planes, strides, full, n: int) -> Tensor:
        L = read_l(planes, strides, self.src, self.width, self.height, full)
        # A float clip can hold NaN or infinity; the network would spread it over the whole
        # frame (an all-NaN output), so it is refused with the frame's number.
        if not np.isfinite(L).all():
            raise FilterError(f"{self.who}: frame {n} holds NaN or infinity; accepted: finite "
                              "samples (replace them first, e.g. std.Expr(clip, 'x x = x 0 ?') "
                              "turns NaN into 0)")
        return torch.from_numpy(L)[None, None].to(self.device)

    @staticmethod
    def _host(x: Tensor):
        return x.detach().float().cpu().numpy()

    @staticmethod
    def _window_start(frames) -> int:
        """Position in ``frames`` of the first frame of the current scene."""
        start = 0
        for k in range(1, len(frames)):
            if frames[k][3].get("_SceneChangePrev") or frames[k - 1][3].get("_SceneChangeNext"):
                start = k
        return start

    def _props(self, props, full, matrix) -> tuple[list[tuple[str, int]], list[str]]:
        # Our colours are sRGB / BT.709 primaries: that is what the Lab conversion assumes.
        if self.out.family == CF_RGB:
            return [("_Matrix", 0), ("_Primaries", 1), ("_Transfer", 13), ("_Range", 1)], [
                "_ColorRange"]
        sets = [("_Matrix", int(matrix)), ("_Primaries", 1), ("_Range", 1 if full else 0)]
        if "_Transfer" not in props or props["_Transfer"] == 2:
            sets.append(("_Transfer", 1))
        return sets, ["_ColorRange"]

    # -- batch runners (run by whichever waiting thread leads the batch) ----------------------
    @contextlib.contextmanager
    def _model_context(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.autocast:
                with torch.autocast(device_type="cuda", dtype=torch.float16):
                    yield
            else:
                yield

    def _padded(self, x: Tensor) -> Tensor:
        """Pad the batch to ``batch_size``: the model always sees one shape, so a frame's result
        cannot depend on how many requests happened to arrive with it (batch-size dependent
        kernels otherwise differ in the last bit, e.g. oneDNN's batch-1 convolution)."""
        if x.shape[0] >= self.batch_size:
            return x
        pad = x.new_zeros((self.batch_size - x.shape[0], *x.shape[1:]))
        return torch.cat((x, pad))

    def _run_frames(self, items: list[Tensor]) -> list[Tensor]:
        x = torch.cat(items)
        with self._model_context():
            ab = self.colorizer.predict_ab(self._padded(x))[: len(items)].float()
        return list(ab.split(1))

    def _run_sequences(self, items: list[Tensor]) -> list[Tensor]:
        out = []
        with self._model_context():
            for seq in items:  # (T, 1, H, W), each from a fresh state
                ab, _ = self.colorizer.predict_sequence(seq, None)
                out.append(ab[-1:].float())
        return out

    def _run_windows(self, items: list[_Window]) -> list[Tensor]:
        model = self.colorizer
        feats: dict[int, Tensor] = {}
        need: dict[int, Tensor] = {}
        for w in items:
            for i in w.indices:
                if i in feats or i in need:
                    continue
                got = w.known.get(i)
                if got is None:
                    got = self.cache.get(i)
                if got is not None:
                    feats[i] = got
                else:
                    need[i] = w.missing[i]
        size = (self.height, self.width)
        with self._model_context():
            keys = list(need)
            for c in range(0, len(keys), self.batch_size):
                chunk = keys[c : c + self.batch_size]
                L = model.to_render(torch.cat([need[i] for i in chunk]))
                f = model.frame_features(self._padded(L))
                for j, i in enumerate(chunk):
                    feats[i] = f[j]
                    self.cache.put(i, f[j])
            # The LSTM over each window (batch 1, cheap next to the CNN), then one batched decode.
            logits = [model.window_logits(torch.stack([feats[i] for i in w.indices]))
                      for w in items]
            out: list[Tensor] = []
            for c in range(0, len(items), self.batch_size):
                chunk = torch.cat(logits[c : c + self.batch_size])
                ab = model.decode_logits(self._padded(chunk))[: chunk.shape[0]]
                out.extend(model.upsample_ab(ab.float(), size).split(1))
        return out
