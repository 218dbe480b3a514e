"""Fused Triton residual-distillation loss against the fp64 torch reference.

On CPU the kernels run in Triton's interpreter (``conftest.py`` sets ``TRITON_INTERPRET=1``);
on a GPU machine the same tests run compiled on CUDA tensors.
"""
from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():  # also when this file runs without the folder's conftest
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import froster.ops.triton_residual_distill as trd  # noqa: E402
from froster.ops import residual_distill_loss, residual_distill_loss_torch  # noqa: E402
from froster.ops._triton_residual_distill_kernels import bias_gelu_bwd_kernel, bias_gelu_fwd_kernel  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
GRAD_ARGS = ("z", "w1", "w2", "b1", "b2")
# One tolerance per dtype, relative to the largest magnitude of the fp64 reference. The half
# precision ones are about twice the error of the eager torch op in that dtype.
TOL = {torch.float32: 5e-6, torch.float16: 2.5e-3, torch.bfloat16: 1.6e-2}


def make_inputs(n, d, h, *, bias=True, seed=0):
    """fp64 CPU inputs shaped like FROSTER's: unit-norm rows, Kaiming-scaled projector weights."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return {
        "z": F.normalize(randn(n, d), dim=-1),
        "t": F.normalize(randn(n, d), dim=-1),
        "w1": randn(h, d) * math.sqrt(2.0 / d),
        "w2": randn(d, h) / math.sqrt(h),  # not zero-initialised: every gradient is non-trivial
        "b1": randn(h) * 0.1 if bias else None,
        "b2": randn(d) * 0.1 if bias else None,
    }


def run(fn, inputs, dtype, *, alpha, kind, grad_output=2.7, requires_grad=GRAD_ARGS):
    """Loss and input gradients of ``fn`` after ``(loss * grad_output).backward()``."""
    args = {}
    for name, value in inputs.items():
        if value is not None:
            value = value.to(DEVICE, dtype).detach()
            if name in requires_grad:
                value.requires_grad_()
        args[name] = value
    loss = fn(**args, alpha=alpha, kind=kind)
    if loss.requires_grad:
        (loss * grad_output).backward()
    grads = {k: v.grad for k, v in args.items() if k in requires_grad and v is not None}
    return loss.detach(), grads


def triton_loss(**kw):
    return residual_distill_loss(**kw, impl="triton")


def check_against_reference(inputs, dtype, *, alpha=0.1, kind="cosine", grad_output=2.7, **kw):
    """Runs the fused op in ``dtype`` and the reference in fp64 on the same rounded inputs."""
    rounded = {k: None if v is None else v.to(dtype).double() for k, v in inputs.items()}
    loss, grads = run(triton_loss, rounded, dtype, alpha=alpha, kind=kind, grad_output=grad_output, **kw)
    ref_loss, ref_grads = run(
        residual_distill_loss_torch, rounded, torch.float64,
        alpha=alpha, kind=kind, grad_output=grad_output, **kw,
    )
    assert loss.dtype == torch.float32 and loss.shape == ()
    assert_close_scaled(loss, ref_loss, TOL[dtype], "loss")
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        assert grad.dtype == dtype, name
        assert_close_scaled(grad, ref_grads[name], TOL[dtype], name)
    return grads, ref_grads


def assert_close_scaled(actual, expected, tol, name):
    assert torch.isfinite(actual).all(), f"{name} has non-finite values"
    scale = expected.abs().max().item()
    torch.testing.assert_close(
        actual.double(), expected, rtol=tol, atol=tol * max(scale, 1e-30), msg=lambda m: f"{name}: {m}"
    )


# (N, D, H): N in 1, 37, 64, 300; D in 31, 64, 512; H in D and D // 4 (7 for D = 31). Not the
# full product: the interpreter is slow at N = 300, D = 512.
FP32_SHAPES = [(1, 31, 31), (37, 31, 7), (64, 64, 64), (300, 64, 16), (37, 512, 128),
               (64, 512, 512), (300, 512, 128)]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", ["cosine", "l2"])
@pytest.mark.parametrize("shape", FP32_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_fp32_matches_reference(shape, kind, bias):
    check_against_reference(make_inputs(*shape, bias=bias), torch.float32, kind=kind)


@pytest.mark.parametrize("kind", ["cosine", "l2"])
@pytest.mark.parametrize("shape", [(37, 31, 7), (64, 512, 128), (300, 512, 512)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_matches_reference(dtype, shape, kind):
    check_against_reference(make_inputs(*shape, seed=1), dtype, kind=kind)


@pytest.mark.parametrize("grad_output", [0.0, -0.5])
def test_grad_output_scales_every_gradient(grad_output):
    check_against_reference(make_inputs(37, 64, 16), torch.float32, grad_output=grad_output)


@pytest.mark.parametrize("kind", ["cosine", "l2"])
def test_alpha_zero_is_the_plain_loss(kind):
    inputs = make_inputs(37, 64, 64)
    grads, _ = check_against_reference(inputs, torch.float32, alpha=0.0, kind=kind)
    for name in ("w1", "w2", "b1", "b2"):
        assert torch.count_nonzero(grads[name]) == 0, name
    z, t = inputs["z"].float().to(DEVICE), inputs["t"].float().to(DEVICE)
    plain = (1 - F.cosine_similarity(z, t)).mean() if kind == "cosine" else (z - t).norm(dim=-1).mean()
    loss, _ = run(triton_loss, inputs, torch.float32, alpha=0.0, kind=kind)
    torch.testing.assert_close(loss, plain)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", ["cosine", "l2"])
def test_zero_and_tiny_rows(kind, bias):
    """No NaN, and each row matches the reference, including its clamped-norm gradient."""
    inputs = make_inputs(12, 31, 16, bias=bias)
    z, t = inputs["z"], inputs["t"]
    z[0] = 0.0  # without biases z' = 0 here
    z[1] *= 1e-12  # |z'| below the eps of the cosine
    z[2] *= 3e-9
    t[3] = 0.0
    t[4] *= 1e-12
    z[5], t[5] = 0.0, 0.0
    grads, ref_grads = check_against_reference(inputs, torch.float32, kind=kind)
    # The clamped rows' gradients are huge (|dz| ~ 1 / eps); check every row on its own scale.
    for i, (row, ref_row) in enumerate(zip(grads["z"], ref_grads["z"])):
        assert_close_scaled(row, ref_row, TOL[torch.float32], f"dz row {i}")


def test_l2_zero_difference_has_zero_gradient():
    inputs = make_inputs(9, 31, 8)
    inputs["t"][:4] = inputs["z"][:4]  # alpha = 0: z' == t exactly on these rows
    grads, _ = check_against_reference(inputs, torch.float32, alpha=0.0, kind="l2")
    assert torch.count_nonzero(grads["z"][:4]) == 0


@settings(max_examples=6, deadline=None)
@given(
    n=st.integers(1, 80), d=st.integers(1, 96), h=st.integers(1, 96),
    kind=st.sampled_from(["cosine", "l2"]), bias=st.booleans(),
    alpha=st.floats(-1.0, 1.0, allow_nan=False), seed=st.integers(0, 2**16),
)
def test_drawn_shapes_match_reference(n, d, h, kind, bias, alpha, seed):
    check_against_reference(make_inputs(n, d, h, bias=bias, seed=seed), torch.float32, alpha=alpha, kind=kind)


@pytest.mark.parametrize("requires_grad", [("z",), ("w1", "w2", "b2")], ids=["frozen-projector", "frozen-z"])
def test_only_requested_gradients(requires_grad):
    grads, _ = check_against_reference(make_inputs(37, 64, 16), torch.float32, requires_grad=requires_grad)
    assert set(grads) == set(requires_grad)


def test_autocast_computes_in_the_autocast_dtype():
    inputs = make_inputs(37, 64, 16)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        loss, grads = run(triton_loss, inputs, torch.float32, alpha=0.1, kind="cosine")
    ref_loss, ref_grads = run(residual_distill_loss_torch, inputs, torch.float64, alpha=0.1, kind="cosine")
    assert_close_scaled(loss, ref_loss, TOL[torch.bfloat16], "loss")
    for name, grad in grads.items():
        assert grad.dtype == torch.float32, name  # gradients come back in the inputs' dtype
        assert_close_scaled(grad, ref_grads[name], TOL[torch.bfloat16], name)


def test_module_matches_functional():
    inputs = make_inputs(37, 31, 7)
    args = {k: v.float().to(DEVICE) for k, v in inputs.items()}
    module = trd.FusedResidualDistillLoss(alpha=0.3, kind="l2")
    assert repr(module) == "FusedResidualDistillLoss(alpha=0.3, kind='l2')"
    expected = trd.residual_distill_loss_triton(**args, alpha=0.3, kind="l2")
    torch.testing.assert_close(module(**args), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="kind"):
        trd.FusedResidualDistillLoss(kind="kl")


def test_gelu_kernels_match_exact_gelu():
    """The hand-made normal CDF: GELU and its derivative against fp64 erf, tails included."""
    x = torch.linspace(-12, 12, 20001, dtype=torch.float32, device=DEVICE)
    h = torch.empty_like(x)
    grid = (triton_cdiv(x.numel(), 1024),)
    bias_gelu_fwd_kernel[grid](x, x, h, x.numel(), 1, HAS_BIAS=False, RNE_BF16=False, BLOCK=1024)
    dgelu, h_scaled = torch.ones_like(x), torch.empty_like(x)
    bias_gelu_bwd_kernel[grid](dgelu, x, x, h_scaled, x.numel(), 1, 2.0,
                               HAS_BIAS=False, WRITE_H=True, RNE_BF16=False, BLOCK=1024)
    x64 = x.double()
    cdf = 0.5 * torch.erfc(-x64 / math.sqrt(2))
    gelu, dgelu_ref = x64 * cdf, cdf + x64 * torch.exp(-0.5 * x64**2) / math.sqrt(2 * math.pi)
    assert (h.double() - gelu).abs().max() <= 2e-7 * 12
    assert ((h.double() - gelu).abs() / x64.abs().clamp_min(1)).max() <= 2e-7
    assert (dgelu.double() / 2 - dgelu_ref).abs().max() <= 2e-7
    torch.testing.assert_close(h_scaled / 2, h, rtol=0, atol=0)
    tail = (x64 < -1) & (x64 > -7)  # relative precision survives where 1 + erf(x) cancels
    assert ((h.double() - gelu).abs() / gelu.abs())[tail].max() <= 1e-5


def triton_cdiv(a, b):
    return -(-a // b)


class TestDispatch:
    def test_auto_on_cpu_uses_torch(self, monkeypatch):
        def fail(*args, **kwargs):
            raise AssertionError("impl='auto' must not pick Triton for CPU tensors")

        monkeypatch.setattr(trd, "residual_distill_loss_triton", fail)
        args = {k: v.float() for k, v in make_inputs(5, 8, 4).items()}
        loss = residual_distill_loss(**args, impl="auto")
        torch.testing.assert_close(loss, residual_distill_loss_torch(**args))

    @pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
    def test_triton_on_cpu_without_interpreter_raises(self, monkeypatch):
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        args = {k: v.float() for k, v in make_inputs(5, 8, 4).items()}
        with pytest.raises(RuntimeError, match="needs CUDA tensors.*impl='torch'"):
            residual_distill_loss(**args, impl="triton")

    def test_bad_shapes_are_checked_before_launch(self):
        args = {k: v.float().to(DEVICE) for k, v in make_inputs(5, 8, 4).items()}
        args["w2"] = args["w2"].t()
        with pytest.raises(ValueError, match="w2"):
            trd.residual_distill_loss_triton(**args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
class TestOnGPU:
    """Compiled kernels on real hardware, at a training-sized shape."""

    @pytest.mark.parametrize("kind", ["cosine", "l2"])
    def test_bf16_large(self, kind):
        assert os.environ.get("TRITON_INTERPRET", "0") != "1"
        check_against_reference(make_inputs(4096, 512, 512), torch.bfloat16, kind=kind)

    def test_bf16_error_close_to_eager(self):
        """The fused op in bf16 is at most twice as far from fp64 as eager torch in bf16."""
        rounded = {k: v.to(torch.bfloat16).double() for k, v in make_inputs(4096, 512, 512).items()}

        def worst_error(fn):
            loss, grads = run(fn, rounded, torch.bfloat16, alpha=0.1, kind="cosine")
            ref_loss, ref_grads = run(residual_distill_loss_torch, rounded, torch.float64, alpha=0.1, kind="cosine")
            pairs = [(loss, ref_loss)] + [(grads[k], ref_grads[k]) for k in grads]
            return max(((a.double() - b).abs().max() / b.abs().max()).item() for a, b in pairs)

        assert worst_error(triton_loss) <= 2 * worst_error(residual_distill_loss_torch)

    def test_auto_picks_triton_on_cuda(self, monkeypatch):
        called = []
        real = trd.residual_distill_loss_triton
        monkeypatch.setattr(trd, "residual_distill_loss_triton", lambda *a, **k: called.append(1) or real(*a, **k))
        args = {k: v.float().cuda() for k, v in make_inputs(5, 8, 4).items()}
        residual_distill_loss(**args, impl="auto")
        assert called
