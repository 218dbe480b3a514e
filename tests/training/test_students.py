"""The trainer works with every registered student; gradient checkpointing changes no gradient."""
from __future__ import annotations

import json

import pytest
import torch

from froster import build_student, list_students
from froster.testing import synthetic_video, tiny_build_kwargs, tiny_prompts
from froster.training.build import set_grad_checkpointing
from froster.training.trainer import Trainer


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
    trainer.close()
    after = trainer.distiller.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())

    from froster.evaluation.evaluator import evaluate_run

    metrics = evaluate_run(trainer.distiller.student, config)["sets"]["synthetic"]
    assert metrics["num_videos"] == 4
    correct = _correct_by_hand(trainer.distiller.student, config, "synthetic")
    assert metrics["top1"] == pytest.approx(100.0 * sum(correct.values()) / len(correct))
    assert metrics["per_class"] == pytest.approx({name: 100.0 * right for name, right in correct.items()})


def _correct_by_hand(student, config, set_name: str) -> dict[str, bool]:
    """Whether the student gets each test video right (one video per class here), computed here:
    text features of the 29 prompt sets ensembled, each view's logits, softmax averaged over views."""
    from froster.losses import student_logits
    from froster.protocols import encode_video_for_head
    from froster.text import evaluation_prompt_sets
    from froster.training.data import class_prompts, eval_dataset

    spec = config.eval.sets[set_name]
    assert config.eval.view_average == "probs" and config.eval.ensemble
    root = spec.root if spec.root is not None else config.data.root
    dataset = eval_dataset(config.data, spec, student)  # frames normalised as the student expects
    classes = class_prompts(root, spec.class_names, spec.descriptions)
    student.eval()
    with torch.no_grad():
        per_set = torch.stack([student.encode_text(student.tokenizer(p)) for p in evaluation_prompt_sets(classes)])  # (J, K, D)
        unit = per_set / per_set.norm(dim=-1, keepdim=True)
        direction = unit.mean(dim=0) / unit.mean(dim=0).norm(dim=-1, keepdim=True)  # (K, D)
        text = direction * per_set.norm(dim=-1).mean(dim=0)[:, None]  # (K, D), the usual length
        correct = {}
        for item in (dataset[i] for i in range(len(dataset))):
            views = item["video"]  # (V, C, T, H, W)
            encoding = encode_video_for_head(student, views)
            probs = student_logits(student, encoding.features, text, **encoding.head_inputs).softmax(dim=-1).mean(dim=0)  # (K,)
            name = dataset.class_names[item["label"]]
            assert name not in correct  # one video per class
            correct[name] = bool(probs.argmax() == item["label"])
    return correct


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
