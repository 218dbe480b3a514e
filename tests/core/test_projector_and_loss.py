"""The residual projector and the functional FROSTER loss against plain fp64 formulas."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from froster import ResidualProjector, residual_distill_loss
from froster.ops import residual_projection_loss, residual_projection_loss_torch

SETTINGS = settings(max_examples=20, deadline=None)


def _reference_loss(s, t, projector, kind):
    """FROSTER's Eq. in fp64, written out by hand."""
    z = s.double() / s.double().norm(dim=-1, keepdim=True)
    t = t.double() / t.double().norm(dim=-1, keepdim=True)
    w1, w2 = projector.fc1.weight.double(), projector.fc2.weight.double()
    hidden = 0.5 * (z @ w1.T) * (1 + torch.erf((z @ w1.T) / math.sqrt(2)))
    z_proj = z + projector.alpha * hidden @ w2.T
    if kind == "cosine":
        cos = (z_proj * t).sum(-1) / (z_proj.norm(dim=-1) * t.norm(dim=-1))
        return (1 - cos).mean()
    return (z_proj - t).norm(dim=-1).mean()


def test_projector_defaults_match_the_reference_code():
    projector = ResidualProjector(64)
    assert projector.fc1.bias is None and projector.fc2.bias is None
    assert projector.hidden_dim == 64 and projector.alpha == 0.1
    assert torch.count_nonzero(projector.fc2.weight) == 0
    # Kaiming-normal (fan-in, gain sqrt(2)): std = sqrt(2 / 64).
    assert projector.fc1.weight.std().item() == pytest.approx(math.sqrt(2 / 64), rel=0.15)


@SETTINGS
@given(rows=st.integers(1, 16), dim=st.integers(1, 48), seed=st.integers(0, 2**16))
def test_projector_starts_as_identity(rows, dim, seed):
    torch.manual_seed(seed)
    projector = ResidualProjector(dim)
    z = torch.randn(rows, dim)
    assert torch.equal(projector(z), z)


@SETTINGS
@given(
    batch=st.integers(1, 4),
    frames=st.integers(1, 5),
    dim=st.integers(2, 40),
    kind=st.sampled_from(["cosine", "l2"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_functional_loss_matches_fp64_formula(batch, frames, dim, kind, dtype, seed):
    torch.manual_seed(seed)
    projector = ResidualProjector(dim).to(dtype)
    torch.nn.init.normal_(projector.fc2.weight, std=0.3)  # a trained-looking projector
    s, t = torch.randn(batch, frames, dim, dtype=dtype), torch.randn(batch, frames, dim, dtype=dtype)
    loss = residual_distill_loss(s, t, projector, kind=kind, impl="torch")
    tol = 1e-5 if dtype == torch.float32 else 1e-6
    assert loss.item() == pytest.approx(_reference_loss(s, t, projector, kind).item(), abs=tol)


@SETTINGS
@given(dim=st.integers(2, 32), scale=st.floats(0.01, 100.0), seed=st.integers(0, 2**16))
def test_cosine_loss_is_zero_when_parallel_and_scale_invariant(dim, scale, seed):
    torch.manual_seed(seed)
    z = torch.randn(7, dim, dtype=torch.float64)
    w1, w2 = torch.randn(dim, dim, dtype=torch.float64), torch.randn(dim, dim, dtype=torch.float64)
    t = 0.5 * z  # z' == z with alpha = 0, so z' is parallel to t
    zero = residual_projection_loss_torch(z, t, w1, w2, alpha=0.0, kind="cosine")
    assert zero.item() == pytest.approx(0.0, abs=1e-12)
    t = torch.randn(7, dim, dtype=torch.float64)
    base = residual_projection_loss_torch(z, t, w1, w2, alpha=0.3, kind="cosine")
    scaled_t = residual_projection_loss_torch(z, scale * t, w1, w2, alpha=0.3, kind="cosine")
    assert scaled_t.item() == pytest.approx(base.item(), abs=1e-9)


@SETTINGS
@given(dim=st.integers(2, 32), scale=st.floats(0.01, 100.0), seed=st.integers(0, 2**16))
def test_functional_loss_invariant_to_positive_scaling_of_either_side(dim, scale, seed):
    # The functional form normalises both sides, so both kinds are scale invariant there.
    torch.manual_seed(seed)
    projector = ResidualProjector(dim).double()
    torch.nn.init.normal_(projector.fc2.weight)
    s, t = torch.randn(5, dim, dtype=torch.float64), torch.randn(5, dim, dtype=torch.float64)
    for kind in ("cosine", "l2"):
        base = residual_distill_loss(s, t, projector, kind=kind, impl="torch")
        assert residual_distill_loss(scale * s, t, projector, kind=kind, impl="torch").item() == pytest.approx(base.item(), rel=1e-9)
        assert residual_distill_loss(s, scale * t, projector, kind=kind, impl="torch").item() == pytest.approx(base.item(), rel=1e-9)


def test_l2_gradient_is_the_unit_difference_and_zero_where_equal():
    """With w2 = 0 (z' = z): d loss / d z = (z - t) / |z - t| / N per row, 0 on rows where z = t."""
    z = torch.randn(9, 16, dtype=torch.float64)
    t = torch.randn(9, 16, dtype=torch.float64)
    t[:4] = z[:4]
    w1, w2 = torch.randn(16, 16, dtype=torch.float64), torch.zeros(16, 16, dtype=torch.float64)
    z.requires_grad_(True)
    loss = residual_projection_loss_torch(z, t, w1, w2, alpha=0.1, kind="l2")
    loss.backward()
    diff = z.detach() - t
    distance = diff.norm(dim=-1, keepdim=True)
    expected = torch.where(distance > 0, diff / distance.clamp_min(1e-300), 0.0) / len(z)
    assert loss.item() == pytest.approx(distance.sum().item() / len(z), rel=1e-12)
    assert torch.count_nonzero(z.grad[:4]) == 0
    torch.testing.assert_close(z.grad, expected, rtol=1e-12, atol=1e-15)


def test_zero_rows_give_finite_loss_and_grads():
    z = torch.zeros(3, 8, requires_grad=True)
    t = torch.randn(3, 8)
    w1, w2 = torch.randn(8, 8, requires_grad=True), torch.randn(8, 8, requires_grad=True)
    loss = residual_projection_loss_torch(z, t, w1, w2, alpha=0.1, kind="cosine")
    loss.backward()
    assert loss.item() == pytest.approx(1.0)
    for grad in (z.grad, w1.grad, w2.grad):
        assert torch.isfinite(grad).all()


def test_functional_loss_rejects_mismatched_rows_and_dims():
    projector = ResidualProjector(8)
    with pytest.raises(ValueError, match="leading"):
        residual_distill_loss(torch.randn(2, 3, 8), torch.randn(2, 4, 8), projector)
    with pytest.raises(ValueError, match="project_to_teacher"):
        residual_distill_loss(torch.randn(2, 6), torch.randn(2, 6), projector)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(z=torch.randn(4)), "z must be 2-D"),
        (dict(t=torch.randn(4, 5)), "t must have the shape of z"),
        (dict(w1=torch.randn(8, 5)), "w1 must be"),
        (dict(w2=torch.randn(8, 7)), "w2 must be"),
        (dict(b1=torch.randn(3)), "b1 must be"),
        (dict(kind="cos"), "kind must be one of"),
        (dict(impl="cuda"), "impl must be one of"),
    ],
)
def test_op_errors_name_the_argument(kwargs, message):
    op = residual_projection_loss
    args = dict(z=torch.randn(4, 6), t=torch.randn(4, 6), w1=torch.randn(8, 6), w2=torch.randn(6, 8))
    options = {k: kwargs.pop(k) for k in ("kind", "impl") if k in kwargs}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        op(args["z"], args["t"], args["w1"], args["w2"], args.get("b1"), args.get("b2"), **options)


@pytest.mark.parametrize("kind", ["cosine", "l2"])
def test_projector_gradients_match_the_derivation(kind):
    """d loss / d (w1, w2) of the functional form against the chain rule written out in fp64.

    With z, t the normalised rows, a = z w1^T, z' = z + alpha gelu(a) w2^T and
    g = d loss / d z' (cosine: -(t / (|z'||t|) - cos z' / |z'|^2) / N; l2: (z' - t) / |z' - t| / N)::

        d w2 = alpha g^T gelu(a);   d w1 = (alpha (g w2) * gelu'(a))^T z
    """
    torch.manual_seed(0)
    projector = ResidualProjector(12).double()
    torch.nn.init.normal_(projector.fc2.weight)
    s, t = torch.randn(6, 12, dtype=torch.float64), torch.randn(6, 12, dtype=torch.float64)
    residual_distill_loss(s, t, projector, kind=kind, impl="torch").backward()

    alpha, w1, w2 = projector.alpha, projector.fc1.weight.detach(), projector.fc2.weight.detach()
    z, t = s / s.norm(dim=-1, keepdim=True), t / t.norm(dim=-1, keepdim=True)
    a = z @ w1.T
    cdf = 0.5 * torch.erfc(-a / math.sqrt(2))
    z_proj = z + alpha * (a * cdf) @ w2.T
    if kind == "cosine":
        norm = z_proj.norm(dim=-1, keepdim=True)
        cos = (z_proj * t).sum(-1, keepdim=True) / norm
        g = -(t / norm - cos * z_proj / norm**2) / len(z)
    else:
        g = (z_proj - t) / (z_proj - t).norm(dim=-1, keepdim=True) / len(z)
    dgelu = cdf + a * torch.exp(-0.5 * a**2) / math.sqrt(2 * math.pi)
    torch.testing.assert_close(projector.fc2.weight.grad, alpha * g.T @ (a * cdf), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(projector.fc1.weight.grad, (alpha * (g @ w2) * dgelu).T @ z, rtol=1e-10, atol=1e-12)
