"""Properties of the torch reference of the residual-distillation loss (the CPU path)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from froster.ops import residual_distill_loss, residual_distill_loss_torch, residual_projection

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
    loss = residual_distill_loss_torch(**x, alpha=0.0, kind="cosine")
    assert abs(loss.item()) < 1e-12


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), c=POSITIVE, alpha=st.floats(-2, 2))
def test_cosine_is_zero_when_projection_is_parallel_to_teacher(shape, seed, c, alpha):
    x = draw_inputs(*shape, seed)
    z_proj = residual_projection(x["z"], x["w1"], x["w2"], x["b1"], x["b2"], alpha=alpha)
    x["t"] = c * z_proj
    loss = residual_distill_loss_torch(**x, alpha=alpha, kind="cosine")
    # Rows where z' happens to vanish are clamped (cos = 0); random inputs never hit them.
    assert abs(loss.item()) < 1e-10


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16))
def test_l2_is_zero_with_zero_gradient_for_equal_rows(shape, seed):
    x = draw_inputs(*shape, seed)
    x["t"] = x["z"].clone()
    x["z"].requires_grad_()
    loss = residual_distill_loss_torch(**x, alpha=0.0, kind="l2")
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(x["z"].grad) == 0  # the norm's gradient at 0 is 0, not NaN


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), c=POSITIVE, alpha=st.floats(-2, 2))
def test_cosine_is_invariant_to_positive_scaling_of_teacher(shape, seed, c, alpha):
    x = draw_inputs(*shape, seed)
    loss = residual_distill_loss_torch(**x, alpha=alpha, kind="cosine")
    x["t"] = c * x["t"]
    torch.testing.assert_close(residual_distill_loss_torch(**x, alpha=alpha, kind="cosine"), loss)


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), alpha=st.floats(-2, 2))
def test_zero_initialised_second_layer_is_identity(shape, seed, alpha):
    x = draw_inputs(*shape, seed, bias=False)
    z_proj = residual_projection(x["z"], x["w1"], torch.zeros_like(x["w2"]), x["b1"], alpha=alpha)
    assert torch.equal(z_proj, x["z"])


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, seed=st.integers(0, 2**16), alpha=st.floats(-2, 2))
def test_losses_match_their_formulas(shape, seed, alpha):
    x = draw_inputs(*shape, seed)
    h = torch.nn.functional.gelu(x["z"] @ x["w1"].T + x["b1"])
    z_proj = x["z"] + alpha * (h @ x["w2"].T + x["b2"])
    cos = (z_proj * x["t"]).sum(-1) / (z_proj.norm(dim=-1) * x["t"].norm(dim=-1))
    torch.testing.assert_close(residual_distill_loss_torch(**x, alpha=alpha, kind="cosine"), (1 - cos).mean())
    l2 = (z_proj - x["t"]).norm(dim=-1).mean()
    torch.testing.assert_close(residual_distill_loss_torch(**x, alpha=alpha, kind="l2"), l2)


def test_zero_rows_give_finite_loss_and_gradients():
    x = draw_inputs(4, 8, 8, 0, bias=False)
    x["z"][0], x["t"][1] = 0.0, 0.0
    x["z"].requires_grad_()
    loss = residual_distill_loss_torch(**x, kind="cosine")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x["z"].grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_give_fp32_loss(dtype):
    x = {k: v.to(dtype) for k, v in draw_inputs(4, 8, 8, 0).items()}
    assert residual_distill_loss(**x, impl="torch").dtype == torch.float32


def _bad(name):
    x = draw_inputs(3, 8, 4, 0)
    bad = {"z": x["z"][0], "t": x["t"][:, :5], "w1": x["w1"][:, :5], "w2": x["w2"].T,
           "b1": x["b1"][:3], "b2": x["b2"][:7]}
    x[name] = bad[name]
    return x


@pytest.mark.parametrize("name", ["z", "t", "w1", "w2", "b1", "b2"])
def test_bad_shape_errors_name_the_argument(name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        residual_distill_loss(**_bad(name))


def test_bad_kind_impl_and_empty_batch():
    x = draw_inputs(3, 8, 4, 0)
    with pytest.raises(ValueError, match="kind"):
        residual_distill_loss(**x, kind="kl")
    with pytest.raises(ValueError, match="impl"):
        residual_distill_loss(**x, impl="cuda")
    x["z"], x["t"] = x["z"][:0], x["t"][:0]
    with pytest.raises(ValueError, match="no rows"):
        residual_distill_loss(**x)
