"""ResidualDistiller: the FROSTER loss, the frozen teacher, checkpoints and configuration."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from froster import DistillConfig, ResidualDistiller, video_text_logits
from froster.teachers import ModuleTeacher
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_prompts

from .toy_models import ToyImageTextModel, ToyVideoStudent


def _step(distiller, video, prompts, labels, optimizer):
    optimizer.zero_grad()
    out = distiller(video, prompts, labels=labels)
    out.loss.backward()
    optimizer.step()
    return out


def test_output_is_ce_plus_beta_times_distillation(student, teacher):
    distiller = ResidualDistiller(student, teacher, alpha=0.1, beta=2.0, kind="cosine")
    video, prompts, labels = synthetic_video(2, 4), tiny_prompts(5), torch.tensor([1, 4])
    out = distiller(video, prompts, labels=labels)
    assert out.logits.shape == (2, 5)
    assert set(out.losses) == {"ce_loss", "video_distill_loss", "text_distill_loss"}
    expected = out.losses["ce_loss"] + 2.0 * (out.losses["video_distill_loss"] + out.losses["text_distill_loss"])
    torch.testing.assert_close(out.loss, expected)
    # CE on the student's features before the projector (ViFi-CLIP head for this student).
    student_text = student.encode_text(student.tokenizer(prompts))
    logits = video_text_logits(student.encode_video(video), student_text, student.logit_scale)
    torch.testing.assert_close(out.losses["ce_loss"], F.cross_entropy(logits, labels))


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))  # exact GELU, as the projectors use


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def _randomise_projectors(distiller: ResidualDistiller) -> None:
    # fc2 starts at zero, which would hide alpha and the whole residual branch.
    for projector in (distiller.video_projector, distiller.text_projector):
        torch.nn.init.normal_(projector.fc2.weight, std=0.5)


def _reference_losses(distiller: ResidualDistiller, video, prompts, labels, **config_changes) -> dict[str, float]:
    """FROSTER's loss written out in fp64 from fp64 copies of the student and of the teacher's CLIP.

    CE on exp(logit_scale) * cos(mean_t student frames, student text); each distillation term is
    1 - cos(z', t) or ||z' - t|| with z' = z + alpha * W2 gelu(W1 z), on unit student rows z and
    unit teacher rows t: B*T frames ("frames"), or B time-averaged videos ("pooled", or when the
    student itself returns (B, D)).
    """
    config = distiller.config.replace(**config_changes)
    student = copy.deepcopy(distiller.student).double()
    clip = copy.deepcopy(distiller.teacher.model).double()
    tokens = distiller.teacher.tokenizer(prompts)  # student and teacher share the vocabulary here
    video = video.double()
    b, c, t, h, w = video.shape
    with torch.no_grad():
        student_video, student_text = student.encode_video(video), student.encode_text(tokens)  # (B, T, D) or (B, D); (K, D)
        teacher_frames = clip.encode_image(video.transpose(1, 2).reshape(b * t, c, h, w)).reshape(b, t, -1)  # (B, T, D)
        teacher_text = clip.encode_text(tokens)  # (K, D)
        student_pooled = student_video if student_video.dim() == 2 else student_video.mean(dim=1)  # (B, D)

        def distill(s: torch.Tensor, target: torch.Tensor, projector) -> torch.Tensor:
            z, target = _unit(s), _unit(target)
            w1, w2 = projector.fc1.weight.double(), projector.fc2.weight.double()
            projected = z + config.alpha * _gelu(z @ w1.T) @ w2.T
            if config.kind == "cosine":
                return (1.0 - (projected * target).sum(-1) / projected.norm(dim=-1)).mean()
            return (projected - target).norm(dim=-1).mean()

        logits = student.logit_scale.exp() * _unit(student_pooled) @ _unit(student_text).T  # (B, K)
        ce = (logits.logsumexp(dim=-1) - logits[torch.arange(b), labels]).mean()
        if config.video_target == "pooled" or student_video.dim() == 2:
            video_loss = distill(student_pooled, teacher_frames.mean(dim=1), distiller.video_projector)
        else:
            video_loss = distill(student_video, teacher_frames, distiller.video_projector)
        text_loss = distill(student_text, teacher_text, distiller.text_projector)
    losses = {"ce_loss": ce, "video_distill_loss": video_loss, "text_distill_loss": text_loss}
    losses["loss"] = ce + config.beta * (video_loss + text_loss)
    return {k: v.item() for k, v in losses.items()}


def _assert_losses_match(out, expected: dict[str, float], rel: float, absolute: float = 0.0) -> None:
    got = {"loss": out.loss.item(), **{k: v.item() for k, v in out.losses.items()}}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=rel, abs=absolute), key


# fp32 forward against the fp64 reference: a few hundred fp32 ulps (eps 1.2e-7) at most.
FP32_REL, FP32_ABS = 1e-5, 1e-6


@pytest.mark.parametrize("target", ["frames", "pooled"])
def test_distillation_is_per_frame_by_default_and_pooled_on_request(student, teacher, target):
    video, prompts, labels = synthetic_video(3, 4), tiny_prompts(3), torch.tensor([0, 2, 1])
    overrides = {} if target == "frames" else {"video_target": "pooled"}
    distiller = ResidualDistiller(student, teacher, **overrides)
    assert distiller.config.video_target == target
    _randomise_projectors(distiller)
    expected = _reference_losses(distiller, video, prompts, labels)
    _assert_losses_match(distiller(video, prompts, labels=labels), expected, FP32_REL, FP32_ABS)
    # The two targets are different numbers here, so the check above tells them apart.
    other = _reference_losses(distiller, video, prompts, labels, video_target="pooled" if target == "frames" else "frames")
    assert abs(other["video_distill_loss"] - expected["video_distill_loss"]) > 1e-3


def test_student_with_pooled_output_is_distilled_against_pooled_teacher(teacher):
    student = ToyVideoStudent(embed_dim=32, pooled=True, tokenizer=teacher.tokenizer)
    distiller = ResidualDistiller(student, teacher)
    _randomise_projectors(distiller)
    video, prompts, labels = synthetic_video(2, 4), tiny_prompts(3), torch.tensor([0, 2])
    expected = _reference_losses(distiller, video, prompts, labels)
    _assert_losses_match(distiller(video, prompts, labels=labels), expected, FP32_REL, FP32_ABS)


def test_projectors_learn_only_from_distillation(student, teacher):
    distiller = ResidualDistiller(student, teacher)
    out = distiller(synthetic_video(2, 4), tiny_prompts(4), labels=torch.tensor([0, 3]))
    out.losses["ce_loss"].backward(retain_graph=True)
    for projector in (distiller.video_projector, distiller.text_projector):
        assert all(p.grad is None for p in projector.parameters())
    (out.losses["video_distill_loss"] + out.losses["text_distill_loss"]).backward()
    for projector in (distiller.video_projector, distiller.text_projector):
        assert projector.fc2.weight.grad.abs().sum() > 0


def test_teacher_is_frozen_for_good(student, teacher):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    distiller = ResidualDistiller(student, teacher)
    teacher_params = {id(p) for p in teacher.parameters()}
    assert not teacher_params & {id(p) for p in distiller.parameters()}
    assert not any(k.startswith("teacher") for k in distiller.state_dict())
    distiller.train()
    teacher.train()
    assert not teacher.training and not any(m.training for m in teacher.modules())
    optimizer = torch.optim.AdamW(distiller.parameters(), lr=1e-2)
    for _ in range(3):
        _step(distiller, synthetic_video(2, 4, seed=None), tiny_prompts(4), torch.tensor([0, 1]), optimizer)
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, before[name]), name
    with pytest.raises(RuntimeError, match="frozen"):
        teacher.requires_grad_(True)


def test_teacher_text_features_are_computed_once_per_prompt_set(student):
    model = ToyImageTextModel()
    teacher = ModuleTeacher(model, tokenizer=student.tokenizer, embed_dim=32)
    distiller = ResidualDistiller(student, teacher)
    video = synthetic_video(2, 4)
    for _ in range(3):
        distiller(video, tiny_prompts(4))
    assert model.text_calls == 1
    distiller(video, tiny_prompts(3))
    assert model.text_calls == 2
    tokens = student.tokenizer(tiny_prompts(4))
    distiller(video, tokens)
    distiller(video, tokens.clone())
    assert model.text_calls == 3


def test_state_dict_round_trip_reproduces_outputs(student, teacher, tmp_path):
    distiller = ResidualDistiller(student, teacher)
    optimizer = torch.optim.AdamW(distiller.parameters(), lr=1e-2)
    video, prompts, labels = synthetic_video(2, 4), tiny_prompts(4), torch.tensor([2, 3])
    for _ in range(2):
        _step(distiller, video, prompts, labels, optimizer)
    torch.save(distiller.state_dict(), tmp_path / "distiller.pt")
    (tmp_path / "config.json").write_text(distiller.config.to_json())

    fresh_student = ToyVideoStudent(embed_dim=32, tokenizer=teacher.tokenizer)
    config = DistillConfig.from_json((tmp_path / "config.json").read_text())
    restored = ResidualDistiller(fresh_student, teacher, config)
    restored.load_state_dict(torch.load(tmp_path / "distiller.pt", weights_only=True))
    distiller.eval(), restored.eval()
    a, b = distiller(video, prompts, labels=labels), restored(video, prompts, labels=labels)
    torch.testing.assert_close(a.loss, b.loss, rtol=0, atol=0)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)


def test_l2_kind_and_config_overrides(student, teacher):
    distiller = ResidualDistiller(student, teacher, DistillConfig(beta=1.0), kind="l2", alpha=0.5)
    assert distiller.config.kind == "l2" and distiller.config.beta == 1.0
    assert distiller.video_projector.alpha == distiller.text_projector.alpha == 0.5
    _randomise_projectors(distiller)
    video, prompts, labels = synthetic_video(2, 4), tiny_prompts(3), torch.tensor([0, 1])
    expected = _reference_losses(distiller, video, prompts, labels)  # ||z' - t||, alpha 0.5, beta 1
    _assert_losses_match(distiller(video, prompts, labels=labels), expected, FP32_REL, FP32_ABS)
    cosine = _reference_losses(distiller, video, prompts, labels, kind="cosine")
    assert abs(cosine["video_distill_loss"] - expected["video_distill_loss"]) > 1e-2  # the kinds differ here
    with pytest.raises(TypeError, match="unknown DistillConfig field"):
        ResidualDistiller(student, teacher, alhpa=0.1)
    with pytest.raises(ValueError, match="kind must be one of"):
        ResidualDistiller(student, teacher, kind="kl")


def test_dim_mismatch_is_an_error_unless_projecting(teacher):
    student = ToyVideoStudent(embed_dim=24, tokenizer=teacher.tokenizer)
    with pytest.raises(ValueError, match=r"student features have width 24 but the teacher's have 32.*project_to_teacher=True"):
        ResidualDistiller(student, teacher)
    distiller = ResidualDistiller(student, teacher, project_to_teacher=True)
    assert distiller.to_teacher.weight.shape == (32, 24)
    out = distiller(synthetic_video(2, 4), tiny_prompts(3), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert distiller.to_teacher.weight.grad.abs().sum() > 0


def test_without_labels_only_distillation_is_computed(student, teacher):
    out = ResidualDistiller(student, teacher)(synthetic_video(2, 4), tiny_prompts(3))
    assert "ce_loss" not in out.losses
    torch.testing.assert_close(out.loss, 2.0 * (out.losses["video_distill_loss"] + out.losses["text_distill_loss"]))


def test_predict_needs_no_teacher(student, teacher):
    distiller = ResidualDistiller(student, teacher)
    logits = distiller.predict(synthetic_video(2, 4), tiny_prompts(3))
    assert logits.shape == (2, 3) and not logits.requires_grad


# bf16 keeps 8 significant bits: unit roundoff u = 2**-8. Under CPU autocast the GEMMs round their
# inputs and outputs to bf16 (relative error <= u each) and accumulate in fp32, and the distiller
# reduces the losses in fp32 on features normalised in fp32, so each term stays within about one
# rounding, u, of the fp64 value; one bf16 epsilon (2u) leaves a factor two. A student that starts
# as its teacher (as every FROSTER student starts as the teacher's CLIP) makes 1 - cos small: a
# distance reduced in bf16 would then lose its digits to cancellation, tens of u.
BF16_REL = torch.finfo(torch.bfloat16).eps


def _student_that_is_its_teacher():
    import open_clip

    tokenizer = open_clip.get_tokenizer(TINY_CLIP_NAME, context_length=8)
    model = ToyImageTextModel(embed_dim=32)
    student = ToyVideoStudent(embed_dim=32, num_frames=4, tokenizer=tokenizer)
    student.frame_proj.load_state_dict(model.image_proj.state_dict())
    student.token_embedding.load_state_dict(model.token_embedding.state_dict())
    return student, ModuleTeacher(model, tokenizer=tokenizer, embed_dim=32)


@pytest.mark.parametrize("start", ["random", "teacher"])
def test_bf16_autocast_is_within_bf16_precision_and_fp32_is_tight(student, teacher, start):
    if start == "teacher":
        student, teacher = _student_that_is_its_teacher()
    distiller = ResidualDistiller(student, teacher)
    _randomise_projectors(distiller)
    video, prompts, labels = synthetic_video(2, 4), tiny_prompts(3), torch.tensor([0, 1])
    expected = _reference_losses(distiller, video, prompts, labels)
    if start == "teacher":
        assert expected["video_distill_loss"] < 0.05 and expected["text_distill_loss"] < 0.05
    _assert_losses_match(distiller(video, prompts, labels=labels), expected, FP32_REL, FP32_ABS)
    # A copy: its teacher text features are computed under autocast, not taken from the fp32 cache.
    low_precision = copy.deepcopy(distiller)
    low_precision.teacher_text_cache.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = low_precision(video, prompts, labels=labels)
    assert low.loss.dtype == torch.float32 and all(v.dtype == torch.float32 for v in low.losses.values())
    _assert_losses_match(low, expected, BF16_REL)
    low.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in low_precision.parameters() if p.grad is not None)


def test_to_moves_and_casts_the_teacher_too(student, teacher):
    distiller = ResidualDistiller(student, teacher).double()
    assert next(teacher.parameters()).dtype == torch.float64
    _randomise_projectors(distiller)
    video, prompts, labels = synthetic_video(2, 4).double(), tiny_prompts(3), torch.tensor([0, 1])
    out = distiller(video, prompts, labels=labels)
    assert out.loss.dtype == torch.float64
    expected = _reference_losses(distiller, video, prompts, labels)
    # The distillation runs in fp64 end to end, teacher included: only fp64 rounding is left.
    for key in ("video_distill_loss", "text_distill_loss"):
        assert out.losses[key].item() == pytest.approx(expected[key], rel=1e-12, abs=1e-12), key
    # The head takes its logits in fp32 whatever the features' dtype (video_text_logits).
    _assert_losses_match(out, expected, FP32_REL, FP32_ABS)


@settings(max_examples=12, deadline=None)
@given(
    batch=st.integers(1, 3),
    frames=st.integers(1, 4),
    dim=st.sampled_from([4, 17, 32]),
    classes=st.integers(1, 6),
    kind=st.sampled_from(["cosine", "l2"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_loss_matches_an_explicit_computation(batch, frames, dim, classes, kind, dtype, seed):
    torch.manual_seed(seed)
    import open_clip

    tokenizer = open_clip.get_tokenizer(TINY_CLIP_NAME, context_length=8)
    student = ToyVideoStudent(embed_dim=dim, num_frames=frames, tokenizer=tokenizer).to(dtype)
    teacher = ModuleTeacher(ToyImageTextModel(embed_dim=dim), tokenizer=tokenizer, embed_dim=dim)
    distiller = ResidualDistiller(student, teacher, kind=kind, beta=1.5).to(dtype)
    for projector in (distiller.video_projector, distiller.text_projector):
        torch.nn.init.normal_(projector.fc2.weight, std=0.5)
    video = torch.randn(batch, 3, frames, 8, 8, dtype=dtype)
    prompts = tiny_prompts(classes)
    labels = torch.randint(0, classes, (batch,))
    out = distiller(video, prompts, labels=labels)

    tokens = tokenizer(prompts)
    with torch.no_grad():
        sv, st_ = student.encode_video(video), student.encode_text(tokens)
        tv, tt = teacher.encode_frames(video), teacher.model.encode_text(tokens)
        ce = F.cross_entropy(video_text_logits(sv, st_, student.logit_scale), labels)

        def fd(s, t, projector):
            z, t = F.normalize(s.double(), dim=-1), F.normalize(t.double(), dim=-1)
            w1, w2 = projector.fc1.weight.double(), projector.fc2.weight.double()
            zp = z + projector.alpha * F.gelu(z @ w1.T) @ w2.T
            return (1 - F.cosine_similarity(zp, t, dim=-1)).mean() if kind == "cosine" else (zp - t).norm(dim=-1).mean()

        expected = ce.double() + 1.5 * (fd(sv, tv, distiller.video_projector) + fd(st_, tt, distiller.text_projector))
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    assert out.loss.item() == pytest.approx(expected.item(), abs=tol, rel=tol)
