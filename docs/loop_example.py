"""FROSTER in your own training loop: ResidualDistiller + your optimiser, data and schedule.

Runs as is on a CPU in a few seconds (a tiny random CLIP, synthetic clips). For real training
swap the two model lines for the commented ones and feed your own video loader. The test suite
executes this file (tests/training/test_docs_loop.py).
"""
import random

import torch

from froster import ResidualDistiller, build_student
from froster.evaluation.evaluator import class_text_features, video_scores
from froster.teachers import OpenCLIPTeacher
from froster.testing import synthetic_video, tiny_clip_overrides
from froster.text import class_texts_from, training_prompt_sets

torch.manual_seed(0)
class_names = ["juggling", "abseiling", "surfing", "archery"]
classes = class_texts_from(class_names)  # with descriptions: class_texts_from(class_names, descriptions)
rng = random.Random(0)
num_frames, batch = 4, 2

# Real: build_student("vclip", clip="ViT-B-16", pretrained="openai", num_frames=8)
student = build_student("vclip", clip="ViT-B-16", pretrained=None, num_frames=num_frames, **tiny_clip_overrides())
# Real: OpenCLIPTeacher.from_pretrained("ViT-B-16", "openai", precision="bf16", device="cuda")
teacher = OpenCLIPTeacher.from_pretrained("ViT-B-16", None, **tiny_clip_overrides())
distiller = ResidualDistiller(student, teacher, alpha=0.1, beta=2.0)  # cosine L_fd, per-frame targets

# distiller.parameters() are the student's and the two projectors'; the teacher is not among
# them (nor in distiller.state_dict()). No weight decay on 1-D parameters, as in the paper.
params = [p for p in distiller.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(
    [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.01},
     {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
    lr=1e-4,
)

distiller.train()
for step in range(4):
    video = synthetic_video(batch=batch, frames=num_frames, seed=step)  # (B, C, T, H, W): your loader here
    labels = torch.randint(0, len(class_names), (batch,))  # (B,)
    prompts = training_prompt_sets(classes, rng)  # the released protocol: a random template + the bare entry
    # Both sets are ensembled on each side; the teacher's features are cached per prompt set.
    out = distiller(video, prompts, labels)  # out.loss = ce + beta * (video + text distillation)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    print(f"step {step}: loss {out.loss.item():.4f}", {k: round(v.item(), 4) for k, v in out.losses.items()})

# Inference uses the student alone: projectors and teacher play no part. The class features are
# the 29-prompt ensemble; the 3 test clips' probabilities are averaged by video_scores.
student.eval()
text = class_text_features(student, classes)  # (K, D)
views = synthetic_video(batch=3, frames=num_frames, seed=99)[None]  # (1, V=3, C, T, H, W)
probs = video_scores(student, views, text, view_average="probs")  # (1, K)
print({name: round(p, 3) for name, p in zip(class_names, probs[0].tolist())})

# Save what you trained: student + projectors (the teacher reloads from its source).
state = distiller.state_dict()
assert not any(key.startswith("teacher") for key in state)
