"""The dispatcher: automatic choice, COLORVID_KERNELS, loud failures listing every reason."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import random_ab, random_logits

from colorvid.kernels import (
    IMPLEMENTATIONS,
    KernelUnavailableError,
    rebalanced_cross_entropy,
    select_implementation,
    soft_encode,
)
from colorvid.kernels.dispatch import unsupported_reason

CPU = torch.device("cpu")


def test_auto_picks_cpp_for_cpu_float_and_the_reference_for_half():
    assert select_implementation("op", torch.zeros(1)) == "cpp"
    assert select_implementation("op", torch.zeros(1, dtype=torch.float64)) == "cpp"
    # cpp refuses half; triton never runs interpreted unless asked: the reference, quietly.
    assert select_implementation("op", torch.zeros(1, dtype=torch.float16)) == "reference"
    assert select_implementation("op", torch.zeros(1, dtype=torch.bfloat16)) == "reference"


def test_every_implementation_states_its_limits():
    assert unsupported_reason("reference", CPU, torch.float16, forced=False) is None
    assert "float32 or float64" in unsupported_reason("cpp", CPU, torch.float16, forced=False)
    assert "CPU tensors only" in unsupported_reason(
        "cpp", torch.device("cuda"), torch.float32, forced=False
    )
    assert "float32" in unsupported_reason(
        "triton", torch.device("cuda"), torch.float64, forced=True
    )
    assert "never chosen automatically" in unsupported_reason(
        "triton", CPU, torch.float32, forced=False
    )
    assert (
        unsupported_reason("triton", CPU, torch.float32, forced=True) is None
    )  # conftest interprets
    assert "floating-point" in unsupported_reason("reference", CPU, torch.int64, forced=False)
    with pytest.raises(ValueError, match="unknown implementation 'cuda'"):
        unsupported_reason("cuda", CPU, torch.float32, forced=False)


def test_triton_needs_cuda_or_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    reason = unsupported_reason("triton", CPU, torch.float32, forced=True)
    assert "CUDA tensors" in reason and "TRITON_INTERPRET=1" in reason


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_environment_variable_forces_an_implementation(monkeypatch, name):
    monkeypatch.setenv("COLORVID_KERNELS", name)
    assert select_implementation("op", torch.zeros(1)) == name
    # ...and the forced one really runs: the loss agrees with the reference.
    logits, ab = random_logits(1, 2, 3, seed=30), random_ab(1, 2, 3, seed=31)
    expected = rebalanced_cross_entropy(logits, ab, implementation="reference")
    torch.testing.assert_close(rebalanced_cross_entropy(logits, ab), expected, atol=1e-5, rtol=1e-5)


def test_argument_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("COLORVID_KERNELS", "reference")
    assert select_implementation("op", torch.zeros(1), "cpp") == "cpp"
    monkeypatch.setenv("COLORVID_KERNELS", "auto")
    assert select_implementation("op", torch.zeros(1)) == "cpp"


def test_forced_choice_that_cannot_run_fails_loudly(monkeypatch):
    monkeypatch.setenv("COLORVID_KERNELS", "cpp")
    with pytest.raises(
        KernelUnavailableError,
        match=r"COLORVID_KERNELS=cpp cannot run .*float16.*float32 or float64",
    ):
        soft_encode(random_ab(1, 1, 1).half())
    with pytest.raises(KernelUnavailableError, match="implementation='cpp' cannot run"):
        rebalanced_cross_entropy(
            random_logits(1, 1, 1).half(), random_ab(1, 1, 1), implementation="cpp"
        )


def test_unknown_name_lists_the_accepted_ones(monkeypatch):
    monkeypatch.setenv("COLORVID_KERNELS", "cuda")
    with pytest.raises(
        ValueError,
        match="COLORVID_KERNELS=cuda is not an implementation; "
        "accepted: triton, cpp, reference or auto",
    ):
        soft_encode(random_ab(1, 1, 1))


def test_nothing_fits_lists_every_reason():
    with pytest.raises(KernelUnavailableError) as info:
        rebalanced_cross_entropy(torch.zeros(1, 313, 1, 1, dtype=torch.int32), random_ab(1, 1, 1))
    message = str(info.value)
    assert "no implementation runs on a cpu torch.int32 tensor" in message
    for name in IMPLEMENTATIONS:
        assert f"{name}: " in message
