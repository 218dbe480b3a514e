"""ResidualDistiller under DistributedDataParallel: 2 gloo processes on the CPU."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from froster import ResidualDistiller
from froster.teachers import OpenCLIPTeacher
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts

from .toy_models import ToyVideoStudent

STEPS = 2


def _build():
    torch.manual_seed(0)
    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, **tiny_clip_overrides())
    student = ToyVideoStudent(embed_dim=32, tokenizer=teacher.tokenizer)
    distiller = ResidualDistiller(student, teacher)
    torch.nn.init.normal_(distiller.video_projector.fc2.weight, std=0.1)
    torch.nn.init.normal_(distiller.text_projector.fc2.weight, std=0.1)
    return distiller


def _data(step):
    return synthetic_video(4, 4, seed=step), torch.tensor([0, 1, 2, 3]).roll(step)


def _train(distiller, step_batches):
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.5)
    for video, labels in step_batches:
        optimizer.zero_grad()
        distiller(video, tiny_prompts(4), labels=labels).loss.backward()
        optimizer.step()


def _worker(rank, world_size, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        distiller = _build()
        teacher_before = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}
        # No find_unused_parameters: every trainable parameter takes part in each step.
        model = DistributedDataParallel(distiller)
        shard = slice(rank * 2, rank * 2 + 2)
        batches = [(video[shard], labels[shard]) for video, labels in map(_data, range(STEPS))]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        for video, labels in batches:
            optimizer.zero_grad()
            model(video, tiny_prompts(4), labels=labels).loss.backward()
            optimizer.step()
        teacher_same = all(torch.equal(v, teacher_before[k]) for k, v in distiller.teacher.state_dict().items())
        torch.save({"state": distiller.state_dict(), "teacher_same": teacher_same}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_ddp_matches_single_process_on_the_full_batch(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(r["teacher_same"] for r in ranks)
    assert not any(k.startswith("teacher") for k in ranks[0]["state"])

    single = _build()
    _train(single, [_data(step) for step in range(STEPS)])
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][name], ranks[1]["state"][name], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-4, atol=1e-6)
