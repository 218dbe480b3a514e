"""Compare student backbones under FROSTER: size, FLOPs, step time, distillation overhead, memory.

    python benchmarks/run.py --student xclip            # one student, tiny CLIP, CPU: seconds
    python benchmarks/run.py --student all --out runs/  # every registered student, side by side
    python benchmarks/run.py --student vclip --clip ViT-B-16 --frames 8 --batch 8 \\
        --device cuda --dtype bf16 --profile

Without ``--clip`` the run uses a tiny CLIP config embedded in the library (random weights,
nothing downloaded). ``--clip`` measures real sizes, with random weights unless ``--pretrained``
names an open_clip tag or a weights file. Writes results.json / .csv / .md / .png to ``--out``.
See docs/benchmarks.md for what every figure means.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import sys
from pathlib import Path
from typing import Optional

# benchmarks/ is a folder of scripts, not a package: make the sibling modules importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _harness import machine_info, markdown_table, python_command, write_results  # noqa: E402
from students_bench import DTYPES, MEMORY_METHODS, TEACHER_MODES, BenchSettings, bench_student, teacher_pool  # noqa: E402

# (key, header, format) of the terminal and markdown table. Ratios are medians of per-round
# ratios; their 90 % bootstrap intervals are in the *_ci90_* keys and in the lines ratio_lines() prints.
COLUMNS = [
    ("student", "student", ""),
    ("params_total", "params (M)", lambda n: f"{n / 1e6:.2f}"),
    ("params_trainable", "trainable (M)", lambda n: f"{n / 1e6:.2f}"),
    ("student_gflops", "GFLOPs/clip", ".3g"),
    ("teacher_gflops", "teacher GFLOPs/clip", ".3g"),
    ("student_step_ms", "student step ms", ".1f"),
    ("cached_step_ms", "distilled ms (cached)", ".1f"),
    ("cached_overhead", "overhead (cached)", ".2f"),
    ("text_cache_overhead", "overhead (text cache only)", ".2f"),
    ("half_teacher_overhead", "overhead (+ half teacher)", ".2f"),
    ("reference_step_ms", "distilled ms (reference)", ".1f"),
    ("reference_overhead", "overhead (reference)", ".2f"),
    ("reference_vs_cached", "reference / cached", ".2f"),
    ("student_peak_mb", "student peak MB", ".0f"),
    ("cached_peak_mb", "distilled peak MB (cached)", ".0f"),
    ("reference_peak_mb", "distilled peak MB (reference)", ".0f"),
    ("infer_clips_per_s", "inference clips/s", ".3g"),
]
RATIOS = ("cached_overhead", "text_cache_overhead", "half_teacher_overhead", "reference_overhead", "reference_vs_cached")


def ratio_lines(rows) -> list[str]:
    """One line per student and ratio: median, p10-p90 of the rounds, 90 % bootstrap interval."""
    lines = []
    for row in rows:
        for key in RATIOS:
            if row.get(key) is not None:
                lines.append(f"{row['student']} {key}: {row[key]:.3f} (rounds p10-p90 {row[key + '_p10']:.3f}-"
                             f"{row[key + '_p90']:.3f}; 90% CI of the median {row[key + '_ci90_low']:.3f}-"
                             f"{row[key + '_ci90_high']:.3f})")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="all", help="a registered student, a comma-separated list, or 'all' (default)")
    parser.add_argument("--clip", default=None, help="open_clip model name, e.g. ViT-B-16 (default: embedded tiny config)")
    parser.add_argument("--pretrained", default=None, help="open_clip pretrained tag or weights file (default: random weights)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip T (default 8)")
    parser.add_argument("--batch", type=int, default=2, help="clips per training step B (default 2)")
    parser.add_argument("--classes", type=int, default=None,
                        help="class prompts K encoded per step (default: 400 as Kinetics-400 with --clip, 32 with the tiny config)")
    parser.add_argument("--image-size", type=int, default=None, help="frame size (default: the CLIP config's)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    parser.add_argument("--dtype", default="auto", choices=["auto", *DTYPES], help="student autocast dtype (auto: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--modes", default="all",
                        help=f"distilled modes, comma-separated, of {', '.join(TEACHER_MODES)}, or 'all' (default); "
                             "reference: the released code's way, cached: this library's")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of every kind before timing (default 3)")
    parser.add_argument("--steps", type=int, default=20, help="timed rounds, one step of every kind each (default 20)")
    parser.add_argument("--memory", default="auto", choices=MEMORY_METHODS,
                        help="peak memory per kind in a fresh process (process), in this one (inline), or auto "
                             "(process on CPU, inline on CUDA)")
    parser.add_argument("--out", default=None, help="output folder (default runs/bench-<timestamp>/)")
    parser.add_argument("--profile", action="store_true", help="write a torch.profiler trace per student to <out>/profile/<student>/")
    parser.add_argument("--profile-steps", type=int, default=2, help="steps per profiler trace (default 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 with the tiny config, whose ops are too small to split; torch's choice otherwise)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _resolve_device(parser: argparse.ArgumentParser, name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        parser.error(f"--device: {name!r} is not a device; use cpu, cuda, cuda:N or auto")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device: {name!r} is not supported; use cpu, cuda, cuda:N or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {name}: CUDA is not available on this machine (torch {torch.__version__})")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        parser.error(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def _resolve_dtype(parser: argparse.ArgumentParser, dtype: str, device: torch.device) -> str:
    if dtype == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cuda" and dtype == "bf16" and not torch.cuda.is_bf16_supported():
        parser.error(f"--dtype bf16: {torch.cuda.get_device_name(device)} does not support bfloat16; use fp16 or fp32")
    if device.type == "cpu" and dtype == "fp16":
        parser.error("--dtype fp16: float16 autocast is not supported for training on cpu; use bf16 or fp32")
    if device.type == "cpu" and dtype == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        parser.error("--dtype bf16: this CPU has no native bfloat16 support; use fp32")
    return dtype


def parse_args(argv: Optional[list[str]] = None) -> tuple[argparse.Namespace, BenchSettings, list[str]]:
    """Parse and check every flag; a bad one exits with code 2 and a message naming it."""
    import open_clip

    from froster import list_students

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.classes is None:
        args.classes = 400 if args.clip else 32
    modes = TEACHER_MODES if args.modes == "all" else tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if not modes or any(m not in TEACHER_MODES for m in modes):
        parser.error(f"--modes: {args.modes!r} names an unknown mode; known: {', '.join(TEACHER_MODES)} (or 'all')")
    known = list_students()
    names = known if args.student == "all" else [n.strip() for n in args.student.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"--student: unknown student {', '.join(map(repr, unknown)) or repr(args.student)}; "
                     f"known students: {', '.join(known)} (or 'all')")
    for flag in ("frames", "batch", "classes", "steps", "profile_steps", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.warmup < 1:
        # The first step creates optimiser state and gradients: it is never timed.
        parser.error(f"--warmup must be >= 1, got {args.warmup}")
    if args.clip is not None and args.clip not in open_clip.list_models():
        parser.error(f"--clip: {args.clip!r} is not an open_clip model name; e.g. ViT-B-32, ViT-B-16, ViT-L-14")
    if args.pretrained is not None:
        if args.clip is None:
            parser.error("--pretrained needs --clip: the embedded tiny config has no pretrained weights")
        if not os.path.isfile(args.pretrained) and args.pretrained not in open_clip.list_pretrained_tags_by_model(args.clip):
            parser.error(f"--pretrained: {args.pretrained!r} is neither a file nor an open_clip tag of {args.clip} "
                         f"({', '.join(open_clip.list_pretrained_tags_by_model(args.clip)) or 'none'})")
    if args.image_size is not None:
        patch = open_clip.get_model_config(args.clip)["vision_cfg"]["patch_size"] if args.clip else 16
        if args.image_size < patch or args.image_size % patch:
            parser.error(f"--image-size {args.image_size} is not a positive multiple of the patch size {patch}")
    device = _resolve_device(parser, args.device)
    dtype = _resolve_dtype(parser, args.dtype, device)

    out = Path(args.out or Path("runs") / f"bench-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    settings = BenchSettings(
        clip=args.clip, pretrained=args.pretrained, frames=args.frames, batch=args.batch, classes=args.classes,
        image_size=args.image_size, device=str(device), dtype=dtype,
        teacher_modes=modes, warmup=args.warmup, steps=args.steps, memory=args.memory,
        profile_dir=str(out / "profile") if args.profile else None,
        profile_steps=args.profile_steps,
    )
    args.out = out
    return args, settings, names


def _quiet_random_weights(record: logging.LogRecord) -> bool:
    # The header already says when weights are random; open_clip would repeat it for every model.
    return "No pretrained weights loaded" not in record.getMessage()


def main(argv: Optional[list[str]] = None) -> int:
    from tqdm import tqdm

    from plot import plot_results

    args, settings, names = parse_args(argv)
    torch.manual_seed(args.seed)
    # Spare threads only add contention to tiny ops, badly so on a busy machine.
    threads = args.threads or (1 if settings.clip is None and settings.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    if _quiet_random_weights not in logging.getLogger().filters:
        logging.getLogger().addFilter(_quiet_random_weights)
    print(f"Model: {settings.describe_weights()}.", flush=True)
    print(f"Device: {settings.device}, dtype {settings.dtype}; T={settings.frames} B={settings.batch} K={settings.classes}; "
          f"students: {', '.join(names)}", flush=True)

    merged = settings.merged_modes()
    for kept, same in merged.items():
        print(f"On {settings.device}, {', '.join(same)} {'is' if len(same) == 1 else 'are'} the same step as {kept} "
              "(half-precision teacher and fused kernel are CUDA-only): measured once, as " + kept, flush=True)
    teachers = teacher_pool(settings)
    rows = []
    # delay: runs of a few seconds print no bar at all.
    with tqdm(total=settings.phases() * len(names), unit="step", delay=2.0, file=sys.stderr) as bar:
        for name in names:
            bar.set_description(name)
            try:
                rows.append(bench_student(name, settings, teachers, tick=bar.update))
            except Exception as error:  # one broken student must not lose the others' figures
                rows.append({"student": name, "error": f"{type(error).__name__}: {error}"})

    meta = {"machine": machine_info(settings.device), "settings": settings.to_dict(), "command": python_command()}
    columns = [c for c in COLUMNS if any(c[0] in row for row in rows)]
    paths = write_results(rows, args.out, meta, columns=columns, title="FROSTER student benchmark",
                          notes=ratio_lines(rows))
    table = markdown_table(rows, columns)
    png = plot_results(paths["json"], args.out / "results.png")

    print("\n" + table)
    print("\n".join(ratio_lines(rows)))
    print(f"\nMachine: {meta['machine']['device_name']}; torch {torch.__version__}. Step times are medians of "
          f"{settings.steps} rounds (kinds interleaved, order rotated each round) after {settings.warmup} warm-up "
          f"steps each; ratios are medians of per-round ratios. Memory: {settings.memory_method()}.")
    for row in rows:
        for key in (k for k in row if k.endswith("error")):
            print(f"{row['student']}: {key}: {row[key]}", file=sys.stderr)
    print(f"Results: {paths['json']}, {paths['csv']}, {paths['md']}, {png}")
    if settings.profile_dir:
        print(f"Profiles: tensorboard --logdir {settings.profile_dir}  (needs torch-tb-profiler; PYTORCH_PROFILER tab)")
    return 1 if any(k.endswith("error") for r in rows for k in r) else 0


if __name__ == "__main__":
    sys.exit(main())
