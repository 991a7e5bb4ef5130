"""rebalanced_cross_entropy: loss and gradient of every implementation against the reference."""

from __future__ import annotations

import math

import pytest
import torch
from kernel_helpers import random_ab, random_class_weights, random_logits, skip_unless_runs

from colorvid.kernels import rebalanced_cross_entropy, soft_encode_dense
from colorvid.kernels.reference import rebalanced_cross_entropy_reference

# (B, H, W): a single pixel; odd sizes leaving partial C++ tiles (128 px) and Triton blocks;
# more pixels than one tile (several threads, a partial last tile).
# (2, 16, 24) and (1, 12, 12): whole 128-pixel tiles with hw % 8 == 0, the AVX2 build's
# streaming-store path (and a partial last tile beside it in the second).
CPP_SHAPES = [(1, 1, 1), (2, 5, 3), (3, 9, 17), (2, 16, 24), (1, 12, 12)]
# The interpreter runs ~0.1-0.5 s per call: 1 x 313 x 3 x 5 and one with B = 2.
TRITON_SHAPES = [(1, 3, 5), (2, 2, 3)]
# (dtype, atol, rtol): float32 exp in C++ is a polynomial within ~1.5e-7 relative.
TOLERANCES = {torch.float32: (2e-5, 2e-5), torch.float64: (1e-10, 1e-10)}


def _loss_and_grad(impl, logits, ab, weights, k, reduction, upstream=None):
    x = logits.detach().clone().requires_grad_()
    if impl == "reference":
        loss = rebalanced_cross_entropy_reference(x, ab, weights, k, 5.0, reduction)
    else:
        loss = rebalanced_cross_entropy(x, ab, weights, k, 5.0, reduction, implementation=impl)
    grad_out = torch.ones_like(loss) if upstream is None else upstream
    loss.backward(grad_out)
    return loss.detach(), x.grad


def _compare(impl, shape, k, weighted, reduction, dtype):
    b, h, w = shape
    seed = b * 100 + h * 10 + w + k
    logits = random_logits(b, h, w, seed=seed, dtype=dtype)
    ab = random_ab(b, h, w, seed=seed + 1, dtype=dtype)
    weights = random_class_weights(seed + 2, dtype) if weighted else None
    upstream = None
    if reduction == "none":  # a non-uniform upstream gradient exercises the per-pixel scaling
        upstream = torch.linspace(-1.0, 2.0, b * h * w, dtype=dtype).reshape(b, h, w)
    ref_loss, ref_grad = _loss_and_grad("reference", logits, ab, weights, k, reduction, upstream)
    loss, grad = _loss_and_grad(impl, logits, ab, weights, k, reduction, upstream)
    atol, rtol = TOLERANCES[dtype]
    assert loss.dtype == dtype and loss.shape == ref_loss.shape
    torch.testing.assert_close(loss, ref_loss, atol=atol, rtol=rtol)
    torch.testing.assert_close(grad, ref_grad, atol=atol, rtol=rtol)


@pytest.mark.parametrize("shape", CPP_SHAPES)
@pytest.mark.parametrize("k", [1, 5, 10])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cpp_matches_reference_float32(shape, k, weighted, reduction):
    skip_unless_runs("cpp")
    _compare("cpp", shape, k, weighted, reduction, torch.float32)


@pytest.mark.parametrize("k", [1, 5, 10])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cpp_matches_reference_float64(k, reduction):
    skip_unless_runs("cpp", torch.float64)
    _compare("cpp", (2, 7, 9), k, True, reduction, torch.float64)


@pytest.mark.triton
@pytest.mark.parametrize("shape", TRITON_SHAPES)
@pytest.mark.parametrize("k", [1, 5, 10])
@pytest.mark.parametrize(
    ("weighted", "reduction"), [(True, "mean"), (False, "sum"), (True, "none")]
)
def test_triton_matches_reference(shape, k, weighted, reduction):
    skip_unless_runs("triton")
    _compare("triton", shape, k, weighted, reduction, torch.float32)


@pytest.mark.triton
def test_triton_half_precision_logits():
    skip_unless_runs("triton", torch.float16)
    logits = random_logits(1, 3, 5, seed=7)
    ab = random_ab(1, 3, 5, seed=8)
    ref_loss, ref_grad = _loss_and_grad("reference", logits.half(), ab, None, 5, "mean")
    loss, grad = _loss_and_grad("triton", logits.half(), ab, None, 5, "mean")
    assert loss.dtype == grad.dtype == torch.float16
    torch.testing.assert_close(loss, ref_loss, atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(grad, ref_grad, atol=1e-4, rtol=1e-2)


def test_gradcheck_float64_tiny():
    # 2 pixels x 313 logits: the full numerical Jacobian is 1252 loss evaluations per check;
    # fast_mode (a random projection) covers the per-pixel "none" output cheaply.
    skip_unless_runs("cpp", torch.float64)
    logits = random_logits(1, 1, 2, seed=9, dtype=torch.float64).requires_grad_()
    ab = random_ab(1, 1, 2, seed=10, dtype=torch.float64)
    weights = random_class_weights(11, torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: rebalanced_cross_entropy(x, ab, weights, 5, 5.0, "mean", implementation="cpp"),
        (logits,),
    )
    assert torch.autograd.gradcheck(
        lambda x: rebalanced_cross_entropy(x, ab, weights, 10, 5.0, "none", implementation="cpp"),
        (logits,),
        fast_mode=True,
    )
    assert torch.autograd.gradcheck(
        lambda x: rebalanced_cross_entropy(x, ab, None, 1, 5.0, "sum", implementation="reference"),
        (logits,),
        fast_mode=True,
    )


def test_uniform_logits_cost_log_313():
    logits = torch.zeros(2, 313, 3, 4, requires_grad=True)
    loss = rebalanced_cross_entropy(logits, random_ab(2, 3, 4))
    assert math.isclose(loss.item(), math.log(313), rel_tol=1e-6)


def test_mean_divides_by_pixels_not_by_the_weights():
    # Every pixel has v = 2: "mean" must give 2 x the unweighted mean (torch's weighted
    # cross_entropy would divide by sum(v) and give 1 x).
    logits, ab = random_logits(1, 4, 5, seed=12), random_ab(1, 4, 5, seed=13)
    plain = rebalanced_cross_entropy(logits, ab)
    doubled = rebalanced_cross_entropy(logits, ab, torch.full((313,), 2.0))
    torch.testing.assert_close(doubled, 2 * plain)
    total = rebalanced_cross_entropy(logits, ab, reduction="sum")
    torch.testing.assert_close(plain, total / 20)


def test_gradient_is_v_times_softmax_minus_target():
    logits, ab = random_logits(1, 3, 3, seed=14), random_ab(1, 3, 3, seed=15)
    weights = random_class_weights(16)
    x = logits.clone().requires_grad_()
    rebalanced_cross_entropy(x, ab, weights, reduction="sum").backward()
    target = soft_encode_dense(ab, 5)
    v = weights[target.argmax(dim=1)]  # the nearest bin carries the largest weight
    expected = v[:, None] * (torch.softmax(logits, dim=1) - target)
    torch.testing.assert_close(x.grad, expected, atol=1e-6, rtol=1e-5)


def test_upstream_gradient_scales_the_fused_gradient():
    logits, ab = random_logits(1, 2, 3, seed=17), random_ab(1, 2, 3, seed=18)
    grads = []
    for factor in (1.0, 3.0):
        x = logits.clone().requires_grad_()
        (factor * rebalanced_cross_entropy(x, ab, implementation="cpp")).backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], 3 * grads[0])


def test_gradient_flows_through_a_network():
    # Non-leaf logits: the gradient reaches the parameters of the layer that made them.
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 313, 1)
    feats = torch.randn(2, 4, 3, 5)
    ab = random_ab(2, 3, 5, seed=19)
    for impl in ("cpp", "reference"):
        conv.zero_grad()
        rebalanced_cross_entropy(conv(feats), ab, implementation=impl).backward()
        if impl == "cpp":
            fused = conv.weight.grad.clone()
    torch.testing.assert_close(fused, conv.weight.grad, atol=1e-6, rtol=1e-5)


def test_no_gradient_work_without_grad():
    logits, ab = random_logits(1, 2, 2, seed=20), random_ab(1, 2, 2, seed=21)
    with torch.no_grad():
        loss = rebalanced_cross_entropy(logits.requires_grad_(), ab, implementation="cpp")
    assert not loss.requires_grad
    assert not rebalanced_cross_entropy(logits.detach(), ab, implementation="cpp").requires_grad


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_second_backward_gives_the_same_gradient(reduction):
    # The fused gradient is kept and never scaled in place: retain_graph=True must not drift.
    x = random_logits(1, 2, 2, seed=22).requires_grad_()
    loss = rebalanced_cross_entropy(
        x, random_ab(1, 2, 2, seed=23), reduction=reduction, implementation="cpp"
    )
    upstream = torch.full_like(loss, 2.0)
    first = torch.autograd.grad(loss, x, upstream, retain_graph=True)[0]
    second = torch.autograd.grad(loss, x, upstream)[0]
    torch.testing.assert_close(first, second)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # interpreter NaN
@pytest.mark.parametrize(
    "impl", ["cpp", "reference", pytest.param("triton", marks=pytest.mark.triton)]
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_logits_are_refused(impl, bad):
    skip_unless_runs(impl)
    logits = random_logits(1, 2, 3, seed=24)
    logits[0, 200, 1, 2] = bad  # not a target bin of that pixel: the loss alone could hide it
    with pytest.raises(ValueError, match="logits contain NaN or infinity"):
        rebalanced_cross_entropy(logits, random_ab(1, 2, 3, seed=25), implementation=impl)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"logits": torch.zeros(1, 312, 2, 2)},
            ValueError,
            r"logits must have shape \(B, 313, h, w\)",
        ),
        ({"logits": torch.zeros(313, 2, 2)}, ValueError, "logits must have shape"),
        ({"logits": "x"}, TypeError, "logits must be a torch.Tensor"),
        ({"ab": torch.zeros(1, 2, 4, 4)}, ValueError, "ab must be .* at the logits' resolution"),
        ({"ab": torch.zeros(2, 2, 2, 2)}, ValueError, "at the logits' resolution"),
        ({"ab": torch.zeros(1, 3, 2, 2)}, ValueError, r"ab must have shape \(B, 2, H, W\)"),
        ({"ab": torch.full((1, 2, 2, 2), float("nan"))}, ValueError, "ab contains NaN"),
        ({"class_weights": torch.ones(312)}, ValueError, r"class_weights must have shape \(313,\)"),
        (
            {"class_weights": torch.ones(313, dtype=torch.int64)},
            TypeError,
            "class_weights must be floating",
        ),
        ({"class_weights": -torch.ones(313)}, ValueError, "class_weights must be finite and >= 0"),
        ({"class_weights": [1.0] * 313}, TypeError, "class_weights must be a torch.Tensor"),
        ({"reduction": "avg"}, ValueError, "reduction must be one of mean, sum, none"),
        ({"k": 0}, ValueError, "k must be an int"),
        ({"sigma": -1.0}, ValueError, "sigma must be a finite float > 0"),
        ({"logits": torch.zeros(1, 313, 2, 2, device="meta")}, ValueError, "same device"),
    ],
)
def test_bad_input_is_named(kwargs, error, match):
    args = {
        "logits": torch.zeros(1, 313, 2, 2),
        "ab": torch.zeros(1, 2, 2, 2),
        "class_weights": None,
        "k": 5,
        "sigma": 5.0,
        "reduction": "mean",
    } | kwargs
    with pytest.raises(error, match=match):
        rebalanced_cross_entropy(**args)


def test_cpp_binding_checks_its_buffers():
    skip_unless_runs("cpp")
    from colorvid.core.bins import ab_bins
    from colorvid.kernels import _cpu

    x, ab = torch.zeros(1, 313, 2, 2), torch.zeros(1, 2, 2, 2)
    loss = torch.empty(1, 2, 2)
    centres = ab_bins().numpy()
    with pytest.raises(TypeError, match="ab must have dtype float32"):
        _cpu.rebalanced_ce(
            x.numpy(), ab.double().numpy(), centres, None, 5, 5.0, 1.0, loss.numpy(), None
        )
    with pytest.raises(ValueError, match=r"grad must have shape \(1, 313, 2, 2\)"):
        _cpu.rebalanced_ce(
            x.numpy(), ab.numpy(), centres, None, 5, 5.0, 1.0, loss.numpy(), loss.numpy()
        )
    with pytest.raises(ValueError, match=r"class_weights must have shape \(313\)"):
        _cpu.rebalanced_ce(
            x.numpy(), ab.numpy(), centres, loss.numpy(), 5, 5.0, 1.0, loss.numpy(), None
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_baseline_build_matches_the_reference(dtype):
    # On an AVX2 machine the SSE2 baseline build (what other x86 CPUs run) is otherwise untested.
    skip_unless_runs("cpp", dtype)
    from colorvid.core.bins import ab_bins
    from colorvid.kernels import _cpu

    logits, ab = (
        random_logits(2, 7, 9, seed=26, dtype=dtype),
        random_ab(2, 7, 9, seed=27, dtype=dtype),
    )
    weights = random_class_weights(28, dtype)
    scale = 1.0 / logits[:, 0].numel()
    loss, grad = torch.empty(2, 7, 9, dtype=dtype), torch.empty_like(logits)
    _cpu.rebalanced_ce(
        logits.numpy(),
        ab.numpy(),
        ab_bins(dtype=dtype).numpy(),
        weights.numpy(),
        5,
        5.0,
        scale,
        loss.numpy(),
        grad.numpy(),
        0,
        False,
    )
    ref_loss, ref_grad = _loss_and_grad("reference", logits, ab, weights, 5, "mean")
    atol, rtol = TOLERANCES[dtype]
    torch.testing.assert_close(loss.sum() * scale, ref_loss, atol=atol, rtol=rtol)
    torch.testing.assert_close(grad, ref_grad, atol=atol, rtol=rtol)


def test_empty_and_misplaced_inputs_are_refused():
    with pytest.raises(ValueError, match="logits must hold at least one pixel"):
        rebalanced_cross_entropy(torch.zeros(1, 313, 0, 2), torch.zeros(1, 2, 0, 2))
    with pytest.raises(ValueError, match="class_weights must be on the logits' device cpu"):
        rebalanced_cross_entropy(
            torch.zeros(1, 313, 1, 1), torch.zeros(1, 2, 1, 1), torch.ones(313, device="meta")
        )
