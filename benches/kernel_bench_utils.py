"""Measurement helpers shared by the kernel benchmarks and benches/gpu_check.py.

Inputs are realistic: ab comes from real photographs shipped with scikit-image (random crops,
resized, converted to Lab), so the soft-encoding sees the in-gamut distribution of training
data rather than uniform noise. Sizes are chosen by the caller, never taken from the code
under test.
"""

from __future__ import annotations

import ctypes
import gc
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "copy_seconds",
    "dense_rebalanced_ce",
    "floor_bytes",
    "min_seconds",
    "peak_rss_bytes",
    "real_ab",
    "steady_state_malloc",
    "step_fn",
    "write_seconds",
]


def real_ab(b: int, h: int, w: int, seed: int = 0) -> Tensor:
    """``(b, 2, h, w)`` float32 ab from random crops of scikit-image's colour photographs."""
    import skimage.data

    from colorvid.core.color import rgb_to_lab

    photos = [
        skimage.data.astronaut(),
        skimage.data.coffee(),
        skimage.data.chelsea(),
        skimage.data.rocket(),
    ]
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(b):
        img = torch.from_numpy(photos[i % len(photos)]).permute(2, 0, 1).float() / 255.0
        ch, cw = img.shape[1] // 2, img.shape[2] // 2  # crops of half the photo
        y = int(torch.randint(0, img.shape[1] - ch + 1, (1,), generator=g))
        x = int(torch.randint(0, img.shape[2] - cw + 1, (1,), generator=g))
        crop = img[None, :, y : y + ch, x : x + cw]
        out.append(F.interpolate(crop, size=(h, w), mode="area")[0])
    return rgb_to_lab(torch.stack(out))[:, 1:].contiguous()


def dense_rebalanced_ce(logits: Tensor, ab: Tensor, weights: Tensor | None, k: int = 5,
                        sigma: float = 5.0) -> Tensor:
    """The loss as one would write it in plain torch, the fast way (the kernels' baseline): squared
    distances by the expanded square (one matmul), ``topk``, Gaussian weights, a dense
    ``(N, 313)`` target by ``scatter_``, ``log_softmax`` and autograd for the gradient."""
    from colorvid.core.bins import ab_bins

    centres = ab_bins(dtype=logits.dtype).to(logits.device)  # (313, 2)
    q = centres.shape[0]
    with torch.no_grad():
        p = ab.permute(0, 2, 3, 1).reshape(-1, 2)
        d2 = (p * p).sum(1, keepdim=True) - 2 * p @ centres.t() + (centres * centres).sum(1)
        dist, idx = d2.topk(k, dim=1, largest=False)
        z = torch.exp(-(dist - dist[:, :1]) / (2 * sigma * sigma))
        target = torch.zeros(p.shape[0], q, dtype=logits.dtype, device=logits.device)
        target.scatter_(1, idx, z / z.sum(1, keepdim=True))
        v = weights[idx[:, 0]] if weights is not None else None
    logp = torch.log_softmax(logits.permute(0, 2, 3, 1).reshape(-1, q), dim=1)
    per_pixel = -(target * logp).sum(1)
    return (per_pixel * v).mean() if v is not None else per_pixel.mean()


def step_fn(impl: str, logits: Tensor, ab: Tensor, weights: Tensor | None) -> Callable[[], Tensor]:
    """One forward + backward of the loss through ``impl`` (a colorvid implementation, or
    ``"dense"``: :func:`dense_rebalanced_ce`); returns the gradient of the logits.

    ``torch.autograd.grad`` rather than ``.backward()``: the logits here are a leaf, and
    accumulating into ``.grad`` would add a copy that a network's (non-leaf) logits never pay.
    """
    from colorvid.kernels import rebalanced_cross_entropy

    x = logits.detach().requires_grad_()

    def step() -> Tensor:
        if impl == "dense":
            loss = dense_rebalanced_ce(x, ab, weights)
        else:
            loss = rebalanced_cross_entropy(x, ab, weights, implementation=impl)
        return torch.autograd.grad(loss, x)[0]

    return step


def write_seconds(logits: Tensor, repeat: int = 5) -> float:
    """Time of writing one fresh logits-sized buffer (``empty_like`` + ``fill_``): the one write
    of a gradient beyond the clone's read and write."""
    return min_seconds(lambda: torch.empty_like(logits).fill_(0.0), repeat, logits.device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def min_seconds(
    fn: Callable[[], object], repeat: int = 5, device: torch.device | None = None
) -> float:
    """The fastest of ``repeat`` timed calls after one warm-up (the least disturbed by others)."""
    device = device or torch.device("cpu")
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def floor_bytes(logits: Tensor) -> int:
    """The memory floor of forward + backward: logits read once, gradient written once."""
    return 2 * logits.numel() * logits.element_size()


def copy_seconds(logits: Tensor, repeat: int = 5) -> float:
    """Time of ``logits.clone()``: read once, write a new same-sized buffer once.

    The achievable floor of an op that returns a fresh gradient. On the CPU a fresh buffer pays
    its page faults (torch's CPU allocator does not cache): at 32 x 313 x 64 x 64 a copy into a
    reused buffer took 12 ms, a clone 67 ms (19 ms with THP_MEM_ALLOC_ENABLE=1).
    """
    return min_seconds(logits.clone, repeat, logits.device)


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_rss_bytes(fn: Callable[[], object]) -> int | None:
    """Peak resident memory that one call of ``fn`` adds (CPU), or None where not measurable.

    Linux + glibc: a fixed mmap threshold makes every large buffer its own mapping, returned to
    the system when freed, so RSS follows live memory; ``/proc/self/clear_refs`` = 5 resets the
    high-water mark (VmHWM) just before the call. (tracemalloc cannot see torch's allocator.)
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    try:
        libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD = 64 KiB, which also stops its adaptation
        fn()  # warm-up: one-time allocations (thread stacks, caches) are not the op's
        gc.collect()
        libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_bytes("VmRSS")
        result = fn()
        peak = _status_bytes("VmHWM") - before
        del result
        return peak
    except (OSError, KeyError, AttributeError):
        return None
    finally:
        steady_state_malloc()


def steady_state_malloc() -> None:
    """Make glibc keep freed buffers for reuse, as a long-running training process ends up doing
    (its mmap threshold adapts upwards): timings then measure the op, not the kernel's page
    faults on fresh mappings. Set once for every provider and restored after each peak
    measurement, which needs the opposite (every buffer its own mapping). Without it, a
    31 MiB clone took 19 ms (4 KiB faults on a fresh mapping) instead of 2.5-3.5 ms."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 512 << 20)  # M_MMAP_THRESHOLD: buffers up to 512 MiB from the heap
        libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD (an int): keep up to 2 GiB freed
    except (OSError, AttributeError):
        pass


def peak_bytes(step: Callable[[], object], device: torch.device) -> int | None:
    """Memory one call of ``step`` adds at its peak: CUDA's allocator stats, else the RSS peak."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = step()
        torch.cuda.synchronize()
        del out
        return torch.cuda.max_memory_allocated() - base
    return peak_rss_bytes(step)
