"""The trainer works with every registered student; gradient checkpointing changes no gradient."""
from __future__ import annotations

import json

import pytest
import torch

from froster import build_student, list_students
from froster.testing import synthetic_video, tiny_prompts
from froster.training.build import set_grad_checkpointing
from froster.training.trainer import Trainer
from froster.testing import tiny_build_kwargs


@pytest.mark.parametrize("name", list_students())
def test_one_training_step_and_evaluation_for_every_student(name, tiny_config, tmp_path):
    kwargs = tiny_build_kwargs(name, num_frames=4)
    clip, _, frames = kwargs.pop("clip"), kwargs.pop("pretrained"), kwargs.pop("num_frames")
    config = tiny_config(
        f"student.name={name}", f"student.clip={clip}", f"student.options={json.dumps(kwargs)}",
        "student.clip_overrides={}", f"data.num_frames={frames}", "train.max_steps=1", "averaging.enabled=false",
    )
    trainer = Trainer(config)
    before = {k: v.clone() for k, v in trainer.distiller.state_dict().items()}
    assert not trainer.fit()["finished"]
    after = trainer.distiller.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())

    from froster.evaluation.evaluator import evaluate_run

    metrics = evaluate_run(trainer.distiller.student, config)["sets"]["synthetic"]
    assert 0.0 <= metrics["top1"] <= 100.0 and metrics["num_videos"] == 4


@pytest.mark.parametrize("name", list_students())
def test_gradient_checkpointing_gives_the_same_gradients(name):
    torch.manual_seed(0)
    student = build_student(name, **tiny_build_kwargs(name, num_frames=4)).eval()  # eval: no dropout draws
    size = getattr(student, "image_size", None) or (32, 32)
    video, tokens = synthetic_video(frames=4, size=size[0]), student.tokenizer(tiny_prompts())

    def gradients():
        student.zero_grad()
        student(video, tokens).sum().backward()
        return {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}

    plain = gradients()
    assert set_grad_checkpointing(student, True) >= 1
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys()
    assert all(torch.allclose(plain[k], checkpointed[k], atol=1e-6) for k in plain)
