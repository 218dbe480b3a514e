"""The student contract, checked for every registered student with no per-student edit."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from froster.losses import student_logits
from froster.protocols import VideoStudent, check_student, encode_video_for_head
from froster.registry import build_student, list_students
from froster.testing import synthetic_video, tiny_prompts

from .conftest import NUM_FRAMES, build_tiny

STUDENTS = list_students()
B, K = 2, 5


@pytest.fixture(params=STUDENTS)
def name(request) -> str:
    return request.param


def _outputs(student, video, tokens):
    return student.encode_video(video), student.encode_text(tokens)


def _logits(student, video, text):
    # The head with whatever extra inputs the student hands it (X-CLIP: its patch tokens).
    encoding = encode_video_for_head(student, video)
    return student_logits(student, encoding.features, text, **encoding.head_inputs)


def test_every_student_module_is_registered_on_import():
    # A student module left out of froster/adapters/__init__.py would silently drop out of every
    # test parametrized over list_students(): a fresh interpreter, as a user's, must list exactly
    # the students that the modules declare, each built by its own module.
    import froster.adapters

    declared = {}
    for path in sorted(Path(froster.adapters.__path__[0]).glob("*.py")):
        for student in re.findall(r'^@register_student\("(\w+)"\)', path.read_text(), flags=re.MULTILINE):
            declared[student] = f"froster.adapters.{path.stem}"
    code = "import froster, froster.registry as r; print([(n, r.get_student_builder(n).__module__) for n in froster.list_students()])"
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert ast.literal_eval(listed.strip().splitlines()[-1]) == sorted(declared.items())
    assert STUDENTS == sorted(declared)


def test_unknown_student_lists_known_names():
    with pytest.raises(KeyError) as info:
        build_student("no-such-student")
    for known in STUDENTS:
        assert known in str(info.value)


def test_contract_attributes_and_shapes(name):
    student = build_tiny(name)
    check_student(student)
    assert isinstance(student, VideoStudent)
    assert student.num_frames == NUM_FRAMES
    assert isinstance(student.logit_scale, torch.nn.Parameter) and student.logit_scale.numel() == 1
    tokens = student.tokenizer(tiny_prompts(K))
    assert tokens.ndim == 2 and tokens.shape[0] == K and not tokens.is_floating_point()

    frames, text = _outputs(student, synthetic_video(B, NUM_FRAMES), tokens)
    assert frames.shape == (B, NUM_FRAMES, student.embed_dim)
    assert text.shape == (K, student.embed_dim)
    assert torch.isfinite(frames).all() and torch.isfinite(text).all()
    # Not normalised: the distiller normalises.
    assert not torch.allclose(frames.norm(dim=-1), torch.ones(B, NUM_FRAMES))
    logits = _logits(student, synthetic_video(B, NUM_FRAMES), text)
    assert logits.shape == (B, K) and torch.isfinite(logits).all()


def test_gradients_reach_exactly_the_trainable_parameters(name):
    student = build_tiny(name)
    student.train()
    video = synthetic_video(B, NUM_FRAMES)
    frames, text = _outputs(student, video, student.tokenizer(tiny_prompts(K)))
    torch.manual_seed(1)
    # Random weights so that no gradient cancels by symmetry.
    loss = (frames * torch.randn_like(frames)).sum() + (text * torch.randn_like(text)).sum() + student.logit_scale.exp().sum()
    # A head's own modules (e.g. X-CLIP's) train through the logits.
    loss = loss + (_logits(student, video, text) * torch.randn(B, K)).sum()
    loss.backward()
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in student.named_parameters() if p.grad is not None}
    assert trainable, "a student must have trainable parameters"
    assert with_grad == trainable, f"no grad: {sorted(trainable - with_grad)[:5]}; grad on frozen: {sorted(with_grad - trainable)[:5]}"
    assert all(torch.isfinite(p.grad).all() for n, p in student.named_parameters() if n in with_grad)

    n_total = sum(p.numel() for p in student.parameters())
    n_trainable = sum(p.numel() for p in student.parameters() if p.requires_grad)
    assert 0 < n_trainable <= n_total
    assert n_trainable == sum(p.numel() for n, p in student.named_parameters() if n in with_grad)


def test_state_dict_round_trip_reproduces_outputs(name):
    source, target = build_tiny(name, seed=0).eval(), build_tiny(name, seed=1).eval()
    video, tokens = synthetic_video(B, NUM_FRAMES), source.tokenizer(tiny_prompts(K))
    with torch.no_grad():
        before = _outputs(target, video, tokens)
        target.load_state_dict(source.state_dict())
        expected, actual = _outputs(source, video, tokens), _outputs(target, video, tokens)
    assert not torch.allclose(before[0], expected[0]), "seeds should give different students"
    for e, a in zip(expected, actual):
        torch.testing.assert_close(a, e)


def test_videos_of_a_batch_do_not_interact(name):
    student = build_tiny(name).eval()
    video = synthetic_video(3, NUM_FRAMES)
    with torch.no_grad():
        together = student.encode_video(video)
        alone = torch.cat([student.encode_video(video[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_bf16_autocast_on_cpu_is_finite_and_close_to_fp32(name):
    student = build_tiny(name).eval()
    video, tokens = synthetic_video(B, NUM_FRAMES), student.tokenizer(tiny_prompts(K))
    with torch.no_grad():
        reference = _outputs(student, video, tokens)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = _outputs(student, video, tokens)
    for ref, out in zip(reference, low):
        assert out.shape == ref.shape and torch.isfinite(out).all()
        # bf16 keeps ~3 significant digits: compare directions, one tolerance for all students.
        assert F.cosine_similarity(out.float(), ref, dim=-1).min() > 0.99


@pytest.mark.parametrize(
    "shape, expected",
    [((B, 3, NUM_FRAMES + 1, 32, 32), f"num_frames={NUM_FRAMES}"), ((B, 3, 32, 32), "(B, C, T, H, W)"), ((B, 1, NUM_FRAMES, 32, 32), "3 channels")],
    ids=["frames", "rank", "channels"],
)
def test_bad_video_raises_a_named_value_error(name, shape, expected):
    student = build_tiny(name)
    with pytest.raises(ValueError) as info:
        student.encode_video(torch.zeros(shape))
    # The argument, what was expected and what came.
    for word in ("video", expected, str(tuple(shape))):
        assert word in str(info.value)


def test_trains_inside_the_distiller_with_the_teacher_untouched(name):
    from froster import ResidualDistiller
    from froster.teachers import OpenCLIPTeacher
    from froster.testing import TINY_CLIP_NAME, tiny_clip_overrides

    student = build_tiny(name)
    torch.manual_seed(1)
    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, pretrained=None, **tiny_clip_overrides())
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {n: p.detach().clone() for n, p in student.named_parameters()}
    distiller = ResidualDistiller(student, teacher, alpha=0.1, beta=2.0, kind="cosine")
    distiller.train()
    assert not {id(p) for p in teacher.parameters()} & {id(p) for p in distiller.parameters()}
    optimizer = torch.optim.AdamW([p for p in distiller.parameters() if p.requires_grad], lr=1e-3)

    video, prompts, labels = synthetic_video(B, NUM_FRAMES), tiny_prompts(K), torch.tensor([0, 3])
    losses = []
    for _ in range(4):
        out = distiller(video, prompts, labels=labels)
        assert out.logits.shape == (B, K)
        assert {"ce_loss", "video_distill_loss", "text_distill_loss"} <= set(out.losses)
        assert all(torch.isfinite(v) for v in out.losses.values()) and torch.isfinite(out.loss)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0], losses

    assert not teacher.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), f"teacher weight {key} changed"
    for n, p in student.named_parameters():
        moved = not torch.equal(p.detach(), student_before[n])
        assert moved == p.requires_grad, f"{'frozen' if not p.requires_grad else 'trainable'} parameter {n} {'moved' if moved else 'did not move'}"
