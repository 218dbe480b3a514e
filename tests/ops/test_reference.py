"""The torch reference of the residual-projection loss (the CPU path): formulas and properties."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from froster.ops import residual_projection, residual_projection_loss, residual_projection_loss_torch

SHAPES = st.tuples(st.integers(1, 16), st.integers(1, 32), st.integers(1, 32))
POSITIVE = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)


def draw_inputs(n, d, h, seed, *, bias=True):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return {
        "z": randn(n, d), "t": randn(n, d), "w1": randn(h, d), "w2": randn(d, h),
        "b1": randn(h) if bias else None, "b2": randn(d) if bias else None,
    }


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), c=POSITIVE)
def test_cosine_is_zero_for_parallel_rows(shape, seed, c):
    x = draw_inputs(*shape, seed)
    x["t"] = c * x["z"]
    loss = residual_projection_loss_torch(**x, alpha=0.0, kind="cosine")
    assert abs(loss.item()) < 1e-12


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), c=POSITIVE, alpha=st.floats(-2, 2))
def test_cosine_is_zero_when_projection_is_parallel_to_teacher(shape, seed, c, alpha):
    x = draw_inputs(*shape, seed)
    z_proj = residual_projection(x["z"], x["w1"], x["w2"], x["b1"], x["b2"], alpha=alpha)
    x["t"] = c * z_proj
    loss = residual_projection_loss_torch(**x, alpha=alpha, kind="cosine")
    # Rows where z' happens to vanish are clamped (cos = 0); random inputs never hit them.
    assert abs(loss.item()) < 1e-10


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16))
def test_l2_is_zero_with_zero_gradient_for_equal_rows(shape, seed):
    x = draw_inputs(*shape, seed)
    x["t"] = x["z"].clone()
    x["z"].requires_grad_()
    loss = residual_projection_loss_torch(**x, alpha=0.0, kind="l2")
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(x["z"].grad) == 0  # the norm's gradient at 0 is 0, not NaN


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), c=POSITIVE, alpha=st.floats(-2, 2))
def test_cosine_is_invariant_to_positive_scaling_of_teacher(shape, seed, c, alpha):
    x = draw_inputs(*shape, seed)
    loss = residual_projection_loss_torch(**x, alpha=alpha, kind="cosine")
    x["t"] = c * x["t"]
    torch.testing.assert_close(residual_projection_loss_torch(**x, alpha=alpha, kind="cosine"), loss)


def exact_gelu(x):
    """GELU written out with the normal CDF, ``x * Phi(x)``, in fp64."""
    return x * 0.5 * torch.erfc(-x / math.sqrt(2))


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), alpha=st.floats(-2, 2), bias=st.booleans())
def test_projection_matches_its_formula(shape, seed, alpha, bias):
    x = draw_inputs(*shape, seed, bias=bias)
    hidden = exact_gelu(x["z"] @ x["w1"].T + (x["b1"] if bias else 0.0))
    expected = x["z"] + alpha * (hidden @ x["w2"].T + (x["b2"] if bias else 0.0))
    got = residual_projection(x["z"], x["w1"], x["w2"], x["b1"], x["b2"], alpha=alpha)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), alpha=st.floats(-2, 2))
def test_losses_match_their_formulas(shape, seed, alpha):
    x = draw_inputs(*shape, seed)
    z_proj = x["z"] + alpha * (exact_gelu(x["z"] @ x["w1"].T + x["b1"]) @ x["w2"].T + x["b2"])
    cos = (z_proj * x["t"]).sum(-1) / (z_proj.norm(dim=-1) * x["t"].norm(dim=-1))
    torch.testing.assert_close(residual_projection_loss_torch(**x, alpha=alpha, kind="cosine"), (1 - cos).mean())
    l2 = (z_proj - x["t"]).norm(dim=-1).mean()
    torch.testing.assert_close(residual_projection_loss_torch(**x, alpha=alpha, kind="l2"), l2)


def test_zero_rows_follow_the_clamped_cosine():
    """A zero row of z' or t counts as cos = 0 (loss 1); its gradient is that of the clamped norm.

    Without biases a zero z row gives z' = 0. Written out, with ``n(v) = max(|v|, eps)``::

        d loss / d z'_i = -(t_i / (n(z'_i) n(t_i)) - cos_i z'_i / (n(z'_i) |z'_i|)) / N,   0 / 0 := 0
    """
    eps, alpha = 1e-8, 0.1
    x = draw_inputs(4, 8, 8, 0, bias=False)
    x["z"][0], x["t"][1] = 0.0, 0.0
    x["z"].requires_grad_()
    loss = residual_projection_loss_torch(**x, alpha=alpha, kind="cosine")
    loss.backward()

    z, t, w1, w2 = (x[k].detach() for k in ("z", "t", "w1", "w2"))
    pre = z @ w1.T
    z_proj = z + alpha * exact_gelu(pre) @ w2.T
    nz, nt = z_proj.norm(dim=-1).clamp_min(eps), t.norm(dim=-1).clamp_min(eps)
    cos = (z_proj * t).sum(-1) / (nz * nt)
    unit = torch.where(z_proj.norm(dim=-1, keepdim=True) > 0, z_proj / z_proj.norm(dim=-1, keepdim=True), 0.0)
    gs = -(t / (nz * nt)[:, None] - (cos / nz)[:, None] * unit) / len(z)
    dgelu = 0.5 * torch.erfc(-pre / math.sqrt(2)) + pre * torch.exp(-0.5 * pre**2) / math.sqrt(2 * math.pi)
    dz = gs + (alpha * (gs @ w2) * dgelu) @ w1
    assert cos[0] == 0 and cos[1] == 0
    torch.testing.assert_close(loss, (1 - cos).mean())
    torch.testing.assert_close(x["z"].grad, dz, rtol=1e-10, atol=1e-10 * dz.abs().max().item())


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)], ids=str)
def test_half_precision_inputs_give_an_fp32_loss_close_to_fp64(dtype, tol):
    """The loss is reduced in fp32 (a half-precision reduction over rows would lose digits)."""
    x = {k: v.to(dtype) for k, v in draw_inputs(64, 32, 32, 0).items()}
    loss = residual_projection_loss(**x, impl="torch")
    expected = residual_projection_loss_torch(**{k: v.double() for k, v in x.items()})
    assert loss.dtype == torch.float32
    assert abs(loss.item() - expected.item()) <= tol * abs(expected.item())


def _bad(name):
    x = draw_inputs(3, 8, 4, 0)
    bad = {"z": x["z"][0], "t": x["t"][:, :5], "w1": x["w1"][:, :5], "w2": x["w2"].T,
           "b1": x["b1"][:3], "b2": x["b2"][:7]}
    x[name] = bad[name]
    return x


@pytest.mark.parametrize("name", ["z", "t", "w1", "w2", "b1", "b2"])
def test_bad_shape_errors_name_the_argument(name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        residual_projection_loss(**_bad(name))


def test_bad_kind_impl_and_empty_batch():
    x = draw_inputs(3, 8, 4, 0)
    with pytest.raises(ValueError, match="kind"):
        residual_projection_loss(**x, kind="kl")
    with pytest.raises(ValueError, match="impl"):
        residual_projection_loss(**x, impl="cuda")
    x["z"], x["t"] = x["z"][:0], x["t"][:0]
    with pytest.raises(ValueError, match="no rows"):
        residual_projection_loss(**x)
