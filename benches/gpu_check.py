"""One command for a CUDA machine: check the Triton kernels against the reference, then time them.

    .venv/bin/python benches/gpu_check.py            # about a minute on a recent GPU

1. Correctness: soft_encode and rebalanced_cross_entropy (loss and gradient) on CUDA through
   Triton against the torch reference: odd shapes, k in {1, 5, 10}, with and without class
   weights, every reduction, float32 plus float16/bfloat16 logits.
2. Tuning: fwd+bwd time over BLOCK_P x num_warps at 8 x 313 x 56 x 56 (the constants in
   kernels/triton_rebalanced_ce.py should be the best printed here).
3. Timing table at the training sizes: reference vs triton, speed-up, peak memory, achieved
   bandwidth over the floor (logits read once + gradient written once) and time / copy time.
   Targets: triton >= 5x the reference, within 1.5x of the floor.

Exit status: 0 when every check passes (timing targets are reported, not enforced), 1 when a
correctness check fails, 2 when there is no CUDA device (nothing was checked).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from kernel_bench_utils import (
    copy_seconds,
    floor_bytes,
    min_seconds,
    peak_bytes,
    real_ab,
    step_fn,
)

SIZES = [(8, 56, 56), (32, 64, 64)]
CHECK_SHAPES = [(1, 3, 5), (2, 17, 19), (3, 56, 57)]  # odd: partial Triton blocks


def _no_cuda_reason() -> str | None:
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return "TRITON_INTERPRET is set: unset it to run the compiled kernels on the GPU"
    if not torch.cuda.is_available():
        return f"no CUDA device visible to torch {torch.__version__} (torch.cuda.is_available())"
    return None


def _compare(
    name: str, got: torch.Tensor, want: torch.Tensor, atol: float, rtol: float
) -> str | None:
    try:
        torch.testing.assert_close(got.float(), want.float(), atol=atol, rtol=rtol)
    except AssertionError as e:
        return f"{name}: {str(e).splitlines()[0]} ... {str(e).splitlines()[-1]}"
    return None


def check_correctness() -> list[str]:
    """Every mismatch between Triton and the reference on CUDA, as lines (empty: all good)."""
    from colorvid.kernels import rebalanced_cross_entropy, soft_encode

    failures = []
    g = torch.Generator().manual_seed(0)
    for b, h, w in CHECK_SHAPES:
        ab = real_ab(b, h, w, seed=b + h).cuda()
        ab_far = (torch.rand(b, 2, h, w, generator=g) * 300 - 150).cuda()  # beyond the gamut
        for k in (1, 5, 10):
            for source, a in (("photo", ab), ("uniform", ab_far)):
                idx, wt = soft_encode(a, k, implementation="triton")
                ref_idx, ref_wt = soft_encode(a, k, implementation="reference")
                # FMA contraction on the GPU can reorder bins whose distances differ by 1 ulp.
                same = (idx == ref_idx).all(dim=1, keepdim=True).expand_as(idx)
                agree = same.float().mean().item()
                if agree < 0.9999:
                    failures.append(
                        f"soft_encode {source} {b}x{h}x{w} k={k}: indices agree on {agree:.5f}"
                    )
                bad = _compare(
                    f"soft_encode weights {source} {b}x{h}x{w} k={k}",
                    wt[same],
                    ref_wt[same],
                    1e-5,
                    1e-5,
                )
                if bad:
                    failures.append(bad)
            logits = (torch.randn(b, 313, h, w, generator=g) * 3).cuda()
            weights = (torch.rand(313, generator=g) * 4 + 0.1).cuda()
            for dtype, atol, rtol in (
                (torch.float32, 2e-5, 2e-5),
                (torch.float16, 2e-3, 1e-2),
                (torch.bfloat16, 2e-2, 5e-2),
            ):
                for cw in (None, weights):
                    for reduction in ("mean", "sum", "none"):
                        results = []
                        for impl in ("triton", "reference"):
                            x = logits.to(dtype).detach().requires_grad_()
                            loss = rebalanced_cross_entropy(
                                x, ab, cw, k, 5.0, reduction, implementation=impl
                            )
                            up = (
                                torch.linspace(-1, 2, loss.numel(), device="cuda")
                                .reshape(loss.shape)
                                .to(dtype)
                            )
                            loss.backward(up)
                            results.append((loss.detach(), x.grad))
                        label = f"{b}x{h}x{w} k={k} {dtype} weights={cw is not None} {reduction}"
                        for what, i in (("loss", 0), ("grad", 1)):
                            bad = _compare(
                                f"{what} {label}", results[0][i], results[1][i], atol, rtol
                            )
                            if bad:
                                failures.append(bad)
    # A non-finite logit off the target bins: the kernel's x - x check must still catch it
    # (a compiler folding x - x to 0 would not).
    for bad in (float("nan"), float("inf"), float("-inf")):
        logits = torch.zeros(1, 313, 3, 5, device="cuda")
        logits[0, 200, 1, 2] = bad
        try:
            rebalanced_cross_entropy(
                logits, torch.zeros(1, 2, 3, 5, device="cuda"), implementation="triton"
            )
            failures.append(f"a logit of {bad} was not refused")
        except ValueError:
            pass
    return failures


def tune() -> list[tuple[float, int, int]]:
    """(ms, BLOCK_P, num_warps) of fwd+bwd at 8 x 313 x 56 x 56, fastest first."""
    from colorvid.kernels.triton_rebalanced_ce import rebalanced_ce_triton

    b, h, w = SIZES[0]
    logits = torch.randn(b, 313, h, w, device="cuda") * 3
    ab = real_ab(b, h, w).cuda()
    weights = torch.rand(313, device="cuda") + 0.5
    rows = []
    for block_p in (8, 16, 32, 64):
        for warps in (4, 8):

            def step(block_p: int = block_p, warps: int = warps) -> object:
                return rebalanced_ce_triton(logits, ab, weights, 5, 5.0, 1.0, True, block_p, warps)

            try:
                rows.append((min_seconds(step, 20, logits.device) * 1e3, block_p, warps))
            except Exception as e:  # noqa: BLE001 - a config may exceed registers/shared memory
                print(f"  BLOCK_P={block_p} num_warps={warps}: failed ({type(e).__name__}: {e})")
    return sorted(rows)


def timing_table() -> list[str]:
    header = f"{'size':<16}{'provider':<11}{'ms':>9}{'speedup':>9}{'peak MiB':>10}"
    lines = [header + f"{'GB/s':>9}{'x floor':>9}"]
    for b, h, w in SIZES:
        g = torch.Generator().manual_seed(0)
        logits = (torch.randn(b, 313, h, w, generator=g) * 3).cuda()
        ab = real_ab(b, h, w).cuda()
        weights = (torch.rand(313, generator=g) * 4 + 0.1).cuda()
        copy = copy_seconds(logits, 20)
        ref = None
        for impl in ("reference", "triton"):
            step = step_fn(impl, logits, ab, weights)
            seconds = min_seconds(step, 10 if impl == "reference" else 50, logits.device)
            ref = ref or seconds
            peak_mib = peak_bytes(step, logits.device) / 2**20
            lines.append(
                f"{b}x313x{h}x{w:<5}{impl:<11}{seconds * 1e3:>9.3f}{ref / seconds:>8.1f}x"
                f"{peak_mib:>10.1f}{floor_bytes(logits) / seconds / 1e9:>9.1f}"
                f"{seconds / copy:>9.2f}"
            )
    lines.append(
        "x floor: time / time of logits.clone() (read once, write once); targets: "
        "speedup >= 5x, x floor <= 1.5"
    )
    return lines


def main() -> int:
    reason = _no_cuda_reason()
    if reason is not None:
        print(f"gpu_check: cannot run: {reason}. Nothing was checked; run this on a CUDA machine.")
        return 2
    start = time.perf_counter()
    print(f"gpu_check on {torch.cuda.get_device_name()} (torch {torch.__version__})")
    failures = check_correctness()
    print(f"correctness: {'OK' if not failures else f'{len(failures)} FAILED'}")
    for line in failures:
        print("  " + line)
    print("tuning BLOCK_P x num_warps at 8x313x56x56 (fwd+bwd, ms):")
    for ms, block_p, warps in tune():
        print(f"  {ms:8.3f}  BLOCK_P={block_p:<3} num_warps={warps}")
    for line in timing_table():
        print(line)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
