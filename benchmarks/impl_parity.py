"""Train ResidualDistiller twice from one seed, impl="triton" and impl="torch", and compare the losses.

    python benchmarks/impl_parity.py --device cuda --steps 300 --out runs/parity   # on a GPU
    python benchmarks/impl_parity.py --device cpu --steps 2 --embed-dim 32         # plumbing, interpreter

The student is the embedded tiny CLIP (2 blocks, width 64; nothing downloaded) with its output
width set to ``--embed-dim`` (512 by default, FROSTER's ViT-B/16 width, so the projectors and the
fused op run at their real size). Both runs start from the same weights and see the same videos,
labels and prompt sets; only the distillation loss's implementation differs. Every step's losses
go to ``parity.csv``; ``parity.json`` holds the machine, the settings and the largest differences.
On CPU the Triton kernels run in Triton's interpreter (set here before Triton is imported).
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TERMS = ("loss", "ce_loss", "video_distill_loss", "text_distill_loss")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4, help="clips per step B (default 4)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip T (default 8): B*T video rows")
    parser.add_argument("--classes", type=int, default=32, help="class prompts K: text rows (default 32)")
    parser.add_argument("--embed-dim", type=int, default=512, help="feature width D of student and teacher (default 512)")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="student autocast dtype (default fp32)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for parity.csv and parity.json")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for flag in ("steps", "batch", "frames", "classes", "embed_dim"):
        if getattr(args, flag) < 1:
            build_parser().error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports Triton
    import torch

    logging.getLogger().setLevel(logging.ERROR)  # open_clip says "random weights" for every model
    from _harness import append_results_csv, machine_info, python_command
    from _training_steps import bench_classes
    from froster import ResidualDistiller, build_student
    from froster.teachers import OpenCLIPTeacher
    from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_build_kwargs, tiny_clip_overrides
    from froster.text import training_prompt_sets

    if args.device == "cuda" and not torch.cuda.is_available():
        build_parser().error("--device cuda but no CUDA device is available")
    device = torch.device(args.device)
    overrides = tiny_clip_overrides(embed_dim=args.embed_dim)
    torch.manual_seed(args.seed)
    student = build_student("vclip", **{**tiny_build_kwargs("vclip", args.frames), **overrides}).to(device)
    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, None, device=args.device, **overrides)
    classes = bench_classes(args.classes)

    def run(impl: str) -> list[dict[str, float]]:
        torch.manual_seed(args.seed)
        distiller = ResidualDistiller(copy.deepcopy(student), teacher, impl=impl).to(device).train()
        optimizer = torch.optim.AdamW(distiller.parameters(), lr=args.lr, weight_decay=0.01)
        rng, data = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
        losses = []
        for step in range(args.steps):
            video = synthetic_video(args.batch, args.frames, overrides["vision_cfg"]["image_size"], seed=args.seed + step).to(device)
            labels = torch.randint(0, args.classes, (args.batch,), generator=data).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
                out = distiller(video, training_prompt_sets(classes, rng), labels)
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append({"loss": out.loss.item(), **{k: v.item() for k, v in out.losses.items()}})
        return losses

    reference, triton = run("torch"), run("triton")
    rows = []
    for step, (a, b) in enumerate(zip(reference, triton)):
        row = {"step": step}
        for term in TERMS:
            row[f"torch_{term}"], row[f"triton_{term}"] = a[term], b[term]
            row[f"abs_diff_{term}"] = abs(a[term] - b[term])
            row[f"rel_diff_{term}"] = abs(a[term] - b[term]) / max(abs(a[term]), 1e-12)
        rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "parity.csv"
    if csv_path.exists():
        csv_path.unlink()
    append_results_csv(csv_path, rows)
    summary = {
        "machine": machine_info(args.device),
        "command": python_command(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "video_rows": args.batch * args.frames, "text_rows": args.classes,
        **{f"max_rel_diff_{t}": max(r[f"rel_diff_{t}"] for r in rows) for t in TERMS},
        **{f"max_abs_diff_{t}": max(r[f"abs_diff_{t}"] for r in rows) for t in TERMS},
        "first_step_rel_diff_loss": rows[0]["rel_diff_loss"],
        "last_step": {"torch": reference[-1], "triton": triton[-1]},
    }
    (args.out / "parity.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{args.steps} steps, {args.dtype}, D={args.embed_dim}, {args.batch * args.frames} video rows, "
          f"{args.classes} text rows on {summary['machine']['device_name']}")
    for term in TERMS:
        print(f"{term}: largest difference {summary[f'max_abs_diff_{term}']:.3g} "
              f"(relative {summary[f'max_rel_diff_{term}']:.3g})")
    print(f"Results: {csv_path}, {args.out / 'parity.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
