"""ResidualDistiller: the FROSTER loss, the frozen teacher, checkpoints and configuration."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from froster import DistillConfig, ResidualDistiller, residual_distill_loss, video_text_logits
from froster.teachers import ModuleTeacher
from froster.testing import synthetic_video, tiny_prompts

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


def test_distillation_is_per_frame_by_default_and_pooled_on_request(student, teacher):
    video, prompts = synthetic_video(3, 4), tiny_prompts(3)
    with torch.no_grad():
        student_frames, teacher_frames = student.encode_video(video), teacher.encode_frames(video)
    for target, (s, t) in {
        "frames": (student_frames, teacher_frames),
        "pooled": (student_frames.mean(1), teacher_frames.mean(1)),
    }.items():
        distiller = ResidualDistiller(student, teacher, video_target=target)
        torch.nn.init.normal_(distiller.video_projector.fc2.weight)  # make rows matter
        expected = residual_distill_loss(s, t, distiller.video_projector, impl="torch")
        got = distiller(video, prompts).losses["video_distill_loss"]
        torch.testing.assert_close(got, expected)


def test_student_with_pooled_output_is_distilled_against_pooled_teacher(teacher):
    student = ToyVideoStudent(embed_dim=32, pooled=True, tokenizer=teacher.tokenizer)
    out = ResidualDistiller(student, teacher)(synthetic_video(2, 4), tiny_prompts(3), labels=torch.tensor([0, 2]))
    assert torch.isfinite(out.loss)


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
    assert distiller.video_projector.alpha == 0.5
    out = distiller(synthetic_video(2, 4), tiny_prompts(3), labels=torch.tensor([0, 1]))
    assert torch.isfinite(out.loss)
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


def test_bf16_autocast(student, teacher):
    distiller = ResidualDistiller(student, teacher)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = distiller(synthetic_video(2, 4), tiny_prompts(3), labels=torch.tensor([0, 1]))
    out.loss.backward()
    reference = ResidualDistiller(copy.deepcopy(student), teacher)(synthetic_video(2, 4), tiny_prompts(3), labels=torch.tensor([0, 1]))
    assert out.loss.dtype == torch.float32
    assert out.loss.item() == pytest.approx(reference.loss.item(), rel=0.05)


def test_to_moves_and_casts_the_teacher_too(student, teacher):
    distiller = ResidualDistiller(student, teacher).double()
    assert next(teacher.parameters()).dtype == torch.float64
    out = distiller(synthetic_video(2, 4).double(), tiny_prompts(3), labels=torch.tensor([0, 1]))
    assert torch.isfinite(out.loss)


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
    from froster.testing import TINY_CLIP_NAME
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
