"""The Triton residual-projection loss (both paths) against the fp64 torch reference.

On CPU the kernels run in Triton's interpreter (the root conftest sets ``TRITON_INTERPRET=1``);
on a GPU machine the same tests run compiled on CUDA tensors. Launch counts, the device guard and
the fallbacks are in test_triton_launches.py.
"""
from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():  # also when this file runs without the root conftest
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import froster.ops.triton_residual_projection as trp  # noqa: E402
from froster.ops import residual_projection_loss, residual_projection_loss_torch  # noqa: E402
from froster.ops._gemm_kernels import bias_gelu_bwd_kernel, bias_gelu_fwd_kernel  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
GRAD_ARGS = ("z", "w1", "w2", "b1", "b2")
PATHS = ("fused", "gemm")
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
    """Loss and input gradients of ``fn`` after ``loss.backward(grad_output)``."""
    args = {}
    for name, value in inputs.items():
        if value is not None:
            value = (value.to(dtype) if value.is_cuda else value.to(DEVICE, dtype)).detach()
            if name in requires_grad:
                value.requires_grad_()
        args[name] = value
    loss = fn(**args, alpha=alpha, kind=kind)
    if loss.requires_grad:
        loss.backward(torch.tensor(grad_output, dtype=loss.dtype, device=loss.device))
    grads = {k: v.grad for k, v in args.items() if k in requires_grad and v is not None}
    return loss.detach(), grads


def on_path(path):
    def loss(**kw):
        return trp.residual_projection_loss_triton(**kw, path=path)

    return loss


def check_against_reference(inputs, dtype, *, path="fused", alpha=0.1, kind="cosine", grad_output=2.7, **kw):
    """Runs the Triton op in ``dtype`` and the reference in fp64 on the same rounded inputs."""
    rounded = {k: None if v is None else v.to(dtype).double() for k, v in inputs.items()}
    loss, grads = run(on_path(path), rounded, dtype, alpha=alpha, kind=kind, grad_output=grad_output, **kw)
    ref_loss, ref_grads = run(
        residual_projection_loss_torch, rounded, torch.float64,
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
        actual.double().cpu(), expected.cpu(), rtol=tol, atol=tol * max(scale, 1e-30), msg=lambda m: f"{name}: {m}"
    )


# (N, D, H): N in 1, 37, 64, 300; D in 31, 64, 512; H in D and D // 4 (7 for D = 31). Not the
# full product: the interpreter is slow at N = 300, D = 512.
FP32_SHAPES = [(1, 31, 31), (37, 31, 7), (64, 64, 64), (300, 64, 16), (37, 512, 128), (300, 512, 128)]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", ["cosine", "l2"])
@pytest.mark.parametrize("shape", FP32_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_fused_fp32_matches_reference(shape, kind, bias):
    check_against_reference(make_inputs(*shape, bias=bias), torch.float32, kind=kind)


@pytest.mark.parametrize("kind", ["cosine", "l2"])
@pytest.mark.parametrize("shape", [(1, 31, 31), (37, 31, 7), (300, 64, 16), (64, 512, 512)], ids=str)
def test_gemm_fp32_matches_reference(shape, kind):
    check_against_reference(make_inputs(*shape), torch.float32, path="gemm", kind=kind)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["cosine", "l2"])
@pytest.mark.parametrize("shape", [(37, 31, 7), (64, 512, 128)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_matches_reference(dtype, shape, kind, path):
    check_against_reference(make_inputs(*shape, seed=1), dtype, path=path, kind=kind)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_gradscaler_sized_grad_output_near_convergence(dtype, path):
    """FROSTER's first steps in half precision: no gradient is lost below the loss scale.

    The student starts as the teacher's CLIP and the projector as the identity (w2 = 0), so the
    rows nearly agree and d loss / d z' is tiny; GradScaler multiplies the loss by 2**16. A
    kernel that rounds ``g / N`` to fp16 before applying the scale flushes much of it to zero
    (such a kernel made 17 % of dz exactly 0 and dw2 75x worse than eager here). N = 256 rather
    than the 4096 of a large batch: the underflow depends on the size of ``g / N``, and rows 1e-4
    apart reach at N = 256 what rows 1e-2 apart reach at N = 4096, in a tenth of the
    interpreter's time.
    """
    inputs = make_inputs(256, 64, 64, bias=False, seed=2)
    inputs["w2"].zero_()
    g = torch.Generator().manual_seed(3)
    inputs["t"] = F.normalize(inputs["z"] + 1e-4 * torch.randn(256, 64, generator=g, dtype=torch.float64), dim=-1)
    rounded = {k: None if v is None else v.to(dtype).double() for k, v in inputs.items()}
    scale = 2.0**16

    def errors(fn, in_dtype):
        _, grads = run(fn, rounded, in_dtype, alpha=0.1, kind="cosine", grad_output=scale)
        return grads

    ref = errors(residual_projection_loss_torch, torch.float64)
    eager = errors(residual_projection_loss_torch, dtype)
    fused = errors(on_path(path), dtype)
    for name in ("z", "w2"):
        def error(grads):
            return ((grads[name].double().cpu() - ref[name].cpu()).abs().max() / ref[name].abs().max()).item()

        assert error(fused) <= 2 * error(eager), (name, error(fused), error(eager))
    zeros = {k: (v["z"] == 0).double().mean().item() for k, v in (("eager", eager), ("triton", fused))}
    assert zeros["triton"] <= zeros["eager"], zeros
    assert torch.count_nonzero(fused["w1"]) == 0  # w2 = 0: nothing reaches w1, exactly as in fp64


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("grad_output", [0.0, -0.5])
def test_grad_output_scales_every_gradient(grad_output, path):
    check_against_reference(make_inputs(37, 64, 16), torch.float32, path=path, grad_output=grad_output)


@pytest.mark.parametrize("kind", ["cosine", "l2"])
def test_alpha_zero_is_the_plain_loss(kind):
    inputs = make_inputs(37, 64, 64)
    grads, _ = check_against_reference(inputs, torch.float32, alpha=0.0, kind=kind)
    for name in ("w1", "w2", "b1", "b2"):
        assert torch.count_nonzero(grads[name]) == 0, name
    z, t = inputs["z"], inputs["t"]
    plain = (1 - (z * t).sum(-1) / (z.norm(dim=-1) * t.norm(dim=-1))).mean() if kind == "cosine" else (z - t).norm(dim=-1).mean()
    loss, _ = run(on_path("fused"), inputs, torch.float32, alpha=0.0, kind=kind)
    torch.testing.assert_close(loss.double().cpu(), plain, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", ["cosine", "l2"])
def test_zero_and_tiny_rows(kind, bias, path):
    """No NaN, and each row matches the reference, including its clamped-norm gradient."""
    inputs = make_inputs(12, 31, 16, bias=bias)
    z, t = inputs["z"], inputs["t"]
    z[0] = 0.0  # without biases z' = 0 here
    z[1] *= 1e-12  # |z'| below the eps of the cosine
    z[2] *= 3e-9
    t[3] = 0.0
    t[4] *= 1e-12
    z[5], t[5] = 0.0, 0.0
    grads, ref_grads = check_against_reference(inputs, torch.float32, path=path, kind=kind)
    # The clamped rows' gradients are huge (|dz| ~ 1 / eps); check every row on its own scale.
    for i, (row, ref_row) in enumerate(zip(grads["z"], ref_grads["z"])):
        assert_close_scaled(row, ref_row, TOL[torch.float32], f"dz row {i}")


@pytest.mark.parametrize("path", PATHS)
def test_l2_zero_difference_has_zero_gradient(path):
    inputs = make_inputs(9, 31, 8)
    inputs["t"][:4] = inputs["z"][:4]  # alpha = 0: z' == t exactly on these rows
    grads, _ = check_against_reference(inputs, torch.float32, path=path, alpha=0.0, kind="l2")
    assert torch.count_nonzero(grads["z"][:4]) == 0


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(1, 80), d=st.integers(1, 96), h=st.integers(1, 96),
    kind=st.sampled_from(["cosine", "l2"]), bias=st.booleans(), path=st.sampled_from(PATHS),
    alpha=st.floats(-1.0, 1.0, allow_nan=False), seed=st.integers(0, 2**16),
)
def test_drawn_shapes_match_reference(n, d, h, kind, bias, path, alpha, seed):
    check_against_reference(make_inputs(n, d, h, bias=bias, seed=seed), torch.float32, path=path, alpha=alpha, kind=kind)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("requires_grad", [("z",), ("w1", "w2", "b2"), ("w2", "b2"), ("b1",)],
                         ids=["frozen-projector", "frozen-z", "second-layer", "b1-only"])
def test_only_requested_gradients(requires_grad, path):
    grads, _ = check_against_reference(make_inputs(37, 64, 16), torch.float32, path=path, requires_grad=requires_grad)
    assert set(grads) == set(requires_grad)


def test_wide_features_take_the_gemm_path(monkeypatch):
    """D beyond the fused kernels goes through cuBLAS GEMMs, still matching the reference."""
    taken = []
    for name in ("FusedResidualProjectionLoss", "GemmResidualProjectionLoss"):
        function = getattr(trp, name)
        monkeypatch.setattr(function, "apply", lambda *a, _f=function.apply, _n=name: taken.append(_n) or _f(*a))
    check_against_reference(make_inputs(3, 1100, 8), torch.float32, path="auto")
    assert taken == ["GemmResidualProjectionLoss"]
    taken.clear()
    check_against_reference(make_inputs(3, 1024, 8), torch.float32, path="auto")
    assert taken == ["FusedResidualProjectionLoss"]
    wide = (torch.zeros(2, 1100), torch.ones(2, 1100), torch.zeros(4, 1100), torch.zeros(1100, 4))
    with pytest.raises(ValueError, match="path='fused' covers feature dims up to 1024, got D=1100"):
        trp.residual_projection_loss_triton(*(x.to(DEVICE) for x in wide), path="fused")


@pytest.mark.parametrize("path", PATHS)
def test_autocast_computes_in_the_autocast_dtype(path):
    inputs = make_inputs(37, 64, 16)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        loss, grads = run(on_path(path), inputs, torch.float32, alpha=0.1, kind="cosine")
    ref_loss, ref_grads = run(residual_projection_loss_torch, inputs, torch.float64, alpha=0.1, kind="cosine")
    assert_close_scaled(loss, ref_loss, TOL[torch.bfloat16], "loss")
    for name, grad in grads.items():
        assert grad.dtype == torch.float32, name  # gradients come back in the inputs' dtype
        assert_close_scaled(grad, ref_grads[name], TOL[torch.bfloat16], name)


def test_module_matches_the_formula_written_out():
    """``ResidualProjectionLoss`` against the l2 loss and its gradients derived by hand in fp64."""
    inputs = make_inputs(37, 31, 7)
    z, t, w1, w2, b1, b2 = (inputs[k] for k in ("z", "t", "w1", "w2", "b1", "b2"))
    module = trp.ResidualProjectionLoss(alpha=0.3, kind="l2")
    assert repr(module) == "ResidualProjectionLoss(alpha=0.3, kind='l2')"
    args = {k: v.float().to(DEVICE).requires_grad_(k != "t") for k, v in inputs.items()}
    module(**args).backward()

    pre = z @ w1.T + b1  # (N, H)
    cdf = 0.5 * torch.erfc(-pre / math.sqrt(2))
    z_proj = z + 0.3 * ((pre * cdf) @ w2.T + b2)
    diff = z_proj - t
    loss = diff.norm(dim=-1).mean()
    gs = diff / diff.norm(dim=-1, keepdim=True) / len(z)  # d loss / d z'
    dpre = 0.3 * (gs @ w2) * (cdf + pre * torch.exp(-0.5 * pre**2) / math.sqrt(2 * math.pi))
    expected = {"z": gs + dpre @ w1, "w1": dpre.T @ z, "w2": 0.3 * gs.T @ (pre * cdf), "b1": dpre.sum(0),
                "b2": 0.3 * gs.sum(0)}
    assert_close_scaled(module(**args).detach(), loss, TOL[torch.float32], "loss")
    for name, grad in expected.items():
        assert_close_scaled(args[name].grad, grad, TOL[torch.float32], name)
    with pytest.raises(ValueError, match="kind"):
        trp.ResidualProjectionLoss(kind="kl")


def test_gelu_kernels_match_exact_gelu():
    """The hand-made normal CDF: GELU and its derivative against fp64 erf, tails included."""
    x = torch.linspace(-12, 12, 20001, dtype=torch.float32, device=DEVICE)
    h = torch.empty_like(x)
    grid = (-(-x.numel() // 1024),)
    bias_gelu_fwd_kernel[grid](x, x, h, x.numel(), 1, HAS_BIAS=False, EMULATE_BF16=False, BLOCK=1024)
    dgelu, h_scaled = torch.ones_like(x), torch.empty_like(x)
    bias_gelu_bwd_kernel[grid](dgelu, x, x, h_scaled, x.numel(), 1, 2.0,
                               HAS_BIAS=False, WRITE_H=True, EMULATE_BF16=False, BLOCK=1024)
    x64 = x.double()
    cdf = 0.5 * torch.erfc(-x64 / math.sqrt(2))
    gelu, dgelu_ref = x64 * cdf, cdf + x64 * torch.exp(-0.5 * x64**2) / math.sqrt(2 * math.pi)
    assert (h.double() - gelu).abs().max() <= 2e-7 * 12
    assert ((h.double() - gelu).abs() / x64.abs().clamp_min(1)).max() <= 2e-7
    assert (dgelu.double() / 2 - dgelu_ref).abs().max() <= 2e-7
    torch.testing.assert_close(h_scaled / 2, h, rtol=0, atol=0)
    tail = (x64 < -1) & (x64 > -7)  # relative precision survives where 1 + erf(x) cancels
    assert ((h.double() - gelu).abs() / gelu.abs())[tail].max() <= 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
class TestOnGPU:
    """Compiled kernels on real hardware, at a training-sized shape."""

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("kind", ["cosine", "l2"])
    def test_bf16_large(self, kind, path):
        assert os.environ.get("TRITON_INTERPRET", "0") != "1"
        check_against_reference(make_inputs(4096, 512, 512), torch.bfloat16, path=path, kind=kind)

    @pytest.mark.parametrize("path", PATHS)
    def test_bf16_error_close_to_eager(self, path):
        """The fused op in bf16 is at most twice as far from fp64 as eager torch in bf16."""
        rounded = {k: v.to(torch.bfloat16).double() for k, v in make_inputs(4096, 512, 512).items()}

        def worst_error(fn):
            loss, grads = run(fn, rounded, torch.bfloat16, alpha=0.1, kind="cosine")
            ref_loss, ref_grads = run(residual_projection_loss_torch, rounded, torch.float64, alpha=0.1, kind="cosine")
            pairs = [(loss, ref_loss)] + [(grads[k], ref_grads[k]) for k in grads]
            return max(((a.double() - b).abs().max() / b.abs().max()).item() for a, b in pairs)

        assert worst_error(on_path(path)) <= 2 * worst_error(residual_projection_loss_torch)

    @pytest.mark.parametrize("path", PATHS)
    def test_results_are_bit_reproducible(self, path):
        """Row losses and weight gradients are summed in a fixed order: two runs agree to the bit.

        Only a GPU runs programs concurrently; the interpreter runs them one after another, where
        even float atomics would agree run to run.
        """
        inputs = make_inputs(4096, 512, 512)
        first = run(on_path(path), inputs, torch.float32, alpha=0.1, kind="cosine")
        second = run(on_path(path), inputs, torch.float32, alpha=0.1, kind="cosine")
        assert torch.equal(first[0], second[0])
        for name in first[1]:
            assert torch.equal(first[1][name], second[1][name]), name

    def test_auto_picks_triton_on_cuda(self, monkeypatch):
        called = []
        real = trp.residual_projection_loss_triton
        monkeypatch.setattr(trp, "residual_projection_loss_triton", lambda *a, **k: called.append(1) or real(*a, **k))
        args = {k: v.float().cuda() for k, v in make_inputs(5, 8, 4).items()}
        residual_projection_loss(**args, impl="auto")
        assert called

    @pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
    def test_second_gpu_while_first_is_current(self):
        inputs = make_inputs(64, 512, 512)
        with torch.cuda.device(0):
            check_against_reference(
                {k: v.to("cuda:1") for k, v in inputs.items()}, torch.float32, path="fused",
            )
