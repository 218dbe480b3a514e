"""What FROSTER is for, on a CPU: fine-tuning forgets what CLIP knew about unseen classes; distillation keeps it.

A tiny open_clip CLIP is pretrained on captioned images of a generated world (coloured shapes),
so that it knows every shape and colour from a single frame. It is the frozen teacher and the
starting point of every student. A video student (``vclip`` by default) built from it is then
fine-tuned on 8 base actions (16 videos each) through ``froster.ResidualDistiller``:

* plain fine-tuning (beta = 0), FROSTER (alpha 0.1, beta 2, cosine, per frame), plain
  distillation without the residual projector (alpha = 0, so ``z' = z``), and the frozen CLIP
  zero-shot;
* scored on the base actions and on two sets of novel actions, one per regime: novel actions made
  of shapes and colours that no base video shows (``unseen``), and new combinations of the base
  shapes and colours (``recombined``). See ``open_vocab_demo/world.py``.

Usage::

    python benchmarks/open_vocab.py                   # the registered protocol, about 8.5 min of CPU time
    python benchmarks/open_vocab.py --quick           # one seed, shorter: about 2 min
    python benchmarks/open_vocab.py --report runs/open_vocab-.../results.json   # re-draw tables and plot

Writes ``results.json`` (machine, protocol, every seed x method x grid cell, the curves),
``results.csv``, ``results.md`` (every row), ``summary.md`` (mean ± std over seeds, paired
differences) and ``results.png`` (accuracy against training steps) into ``--out``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

# Run as a script (`python benchmarks/open_vocab.py`) or loaded by the tests: the sibling
# modules import from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _harness import machine_info, python_command, write_results  # noqa: E402
from open_vocab_demo import datasets as D  # noqa: E402
from open_vocab_demo import finetune as F  # noqa: E402
from open_vocab_demo import pretrain as P  # noqa: E402
from open_vocab_demo import report as R  # noqa: E402
from open_vocab_demo import world as W  # noqa: E402


@dataclass(frozen=True)
class Protocol:
    """Everything a run depends on; the result files store it whole.

    Attributes:
        seeds: Each seed draws its own CLIP initialisation, pretraining images, videos, projector
            initialisation and batch order.
        frames: Frames per video (T).
        shots: Training videos per base class.
        test_per_class: Test videos per class, for the base set and each novel set.
        look: How frames are drawn (:class:`open_vocab_demo.world.Look`).
        clip: The tiny CLIP's dimensions.
        pretrain: The CLIP's contrastive pretraining.
        student: The registered froster student fine-tuned from the CLIP.
        train: The fine-tuning loop's batch, weight decay and gradient clipping.
        lrs: The learning rates of the grid.
        epochs: The epoch counts of the grid (the learning rate is constant after a one-epoch
            warm-up, so the ``E``-epoch cell is the longest run's state after ``E`` epochs).
        curve_epochs: Where the curves are sampled besides the grid epochs.
    """

    seeds: tuple[int, ...]
    frames: int = 4
    shots: int = 16
    test_per_class: int = 30
    look: W.Look = W.Look()
    clip: P.ClipSize = P.ClipSize()
    pretrain: P.PretrainConfig = P.PretrainConfig()
    student: str = "vclip"
    train: F.TrainConfig = F.TrainConfig()
    lrs: tuple[float, ...] = (3e-4, 1e-3)
    epochs: tuple[int, ...] = (4, 8, 16)
    curve_epochs: tuple[int, ...] = (1, 2, 4, 6, 8, 12, 16)

    def eval_epochs(self) -> list[int]:
        return sorted(set(self.epochs) | {e for e in self.curve_epochs if e <= max(self.epochs)})


# The pre-registered protocol. Fixed, with its grid (2 learning rates x 3 epoch counts, every cell
# reported), before any method was compared at it; the world, the pretraining budget and the
# timing were sized on seed 0, which is therefore not among the reported seeds.
REGISTERED = Protocol(seeds=(1, 2, 3), pretrain=P.PretrainConfig(steps=800, lr=2e-3, warmup=100))
# --quick: the same world and grid shape, one seed, half the pretraining and training.
QUICK = dataclasses.replace(REGISTERED, seeds=(1,), pretrain=P.PretrainConfig(steps=400, lr=2e-3, warmup=50),
                            epochs=(2, 4, 8), curve_epochs=(1, 2, 4, 6, 8))


def run(protocol: Protocol, progress: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    """Pretrain, fine-tune every method at every grid cell for every seed, and score them.

    Returns:
        ``rows`` (one per seed x method x grid cell, plus the frozen CLIP per seed), ``curves``
        (one per seed x method x learning rate: the scores at each evaluated epoch) and timings.
    """
    tokenizer = W.WordTokenizer(protocol.clip.context_length)
    world = W.make_world()
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    timings = {"pretrain_wall_s": 0.0, "pretrain_cpu_s": 0.0, "finetune_wall_s": 0.0, "finetune_cpu_s": 0.0}
    for seed in protocol.seeds:
        wall, cpu = time.perf_counter(), time.process_time()
        clip = P.build_clip(protocol.clip, protocol.look, tokenizer, seed)
        stats = P.pretrain(clip, tokenizer, protocol.pretrain, protocol.look, seed, progress)
        timings["pretrain_wall_s"] += time.perf_counter() - wall
        timings["pretrain_cpu_s"] += time.process_time() - cpu
        _say(f"seed {seed}: pretrained CLIP, loss {stats['pretrain_loss']:.3f}, "
             f"image-to-caption top-1 {stats['pretrain_image_acc']:.1f}% over {len(W.SHAPES) * len(W.COLOURS)} objects")

        wall, cpu = time.perf_counter(), time.process_time()
        teacher = F.make_teacher(clip, tokenizer)
        data = D.make_data(world, protocol.shots, protocol.test_per_class, protocol.frames, 10_000 + seed, protocol.look)
        frozen = F.zero_shot(clip, teacher, tokenizer, data, protocol.frames)
        rows.append({"seed": seed, "method": F.FROZEN, "lr": None, "epochs": 0, **stats, **frozen})
        _say(f"seed {seed}: frozen CLIP {_scores(frozen)}")
        initial = F.untrained(protocol.student, clip, teacher, tokenizer, data, protocol.frames)
        for lr in protocol.lrs:
            for method in F.METHODS:
                result = F.train(method, protocol.student, clip, teacher, tokenizer, data, lr, max(protocol.epochs),
                                 protocol.eval_epochs(), protocol.train, seed, initial=initial, progress=progress)
                curves.append({"seed": seed, "method": method.name, "lr": lr, "points": result.curve})
                at = {point["epoch"]: point for point in result.curve}
                for epochs in protocol.epochs:
                    scores = {k: v for k, v in at[epochs].items() if k not in ("epoch", "step")}
                    rows.append({"seed": seed, "method": method.name, "lr": lr, "epochs": epochs, "steps": at[epochs]["step"], **scores})
                _say(f"seed {seed}: {method.name:8s} lr {lr:g}, {max(protocol.epochs)} epochs: {_scores(result.curve[-1])}")
        timings["finetune_wall_s"] += time.perf_counter() - wall
        timings["finetune_cpu_s"] += time.process_time() - cpu
    return rows, curves, timings


def _scores(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {scores[k]:.1f}" for k in R.METRICS)


def _say(text: str) -> None:
    print(text, flush=True)


COLUMNS = [("seed", "seed", "d"), ("method", "method", ""), ("lr", "lr", "g"), ("epochs", "epochs", "d"),
           *[(m, m.replace("_", " "), ".1f") for m in R.METRICS]]


def write_report(json_path: Path) -> None:
    """summary.md and results.png from a results.json, and the summary on the terminal."""
    summary = R.write_summary(json_path)
    R.plot(json_path)
    _say(summary.read_text())


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed, shorter pretraining and training (about 2 min)")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the protocol's seeds")
    parser.add_argument("--pretrain-steps", type=int, help="override the pretraining steps")
    parser.add_argument("--lrs", type=float, nargs="+", help="override the grid's learning rates")
    parser.add_argument("--epochs", type=int, nargs="+", help="override the grid's epoch counts")
    parser.add_argument("--shots", type=int, help="override the training videos per base class")
    parser.add_argument("--test-per-class", type=int, help="override the test videos per class")
    parser.add_argument("--student", help="override the student (a registered name)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, help="output folder (default runs/open_vocab-<timestamp>/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--report", type=Path, metavar="RESULTS_JSON", help="only re-draw summary.md and the plot of a results.json")
    return parser.parse_args(argv)


def protocol_from(args: argparse.Namespace) -> tuple[Protocol, str]:
    """The protocol the arguments ask for and its name (``registered``, ``quick`` or ``custom``)."""
    protocol, name = (QUICK, "quick") if args.quick else (REGISTERED, "registered")
    changes: dict[str, Any] = {}
    for field in ("seeds", "lrs", "epochs"):
        if getattr(args, field) is not None:
            changes[field] = tuple(getattr(args, field))
    for field in ("shots", "test_per_class", "student"):
        if getattr(args, field) is not None:
            changes[field] = getattr(args, field)
    if args.pretrain_steps is not None:
        steps = args.pretrain_steps
        changes["pretrain"] = dataclasses.replace(protocol.pretrain, steps=steps, warmup=min(protocol.pretrain.warmup, max(1, steps // 5)))
    for field in ("seeds", "lrs", "epochs"):
        if field in changes and (not changes[field] or (field != "seeds" and min(changes[field]) <= 0)):
            raise SystemExit(f"--{field} needs positive values, got {list(changes[field])}")
    for field in ("shots", "test_per_class"):
        if field in changes and changes[field] <= 0:
            raise SystemExit(f"--{field.replace('_', '-')} must be positive, got {changes[field]}")
    if args.pretrain_steps is not None and args.pretrain_steps <= 0:
        raise SystemExit(f"--pretrain-steps must be positive, got {args.pretrain_steps}")
    return (dataclasses.replace(protocol, **changes), "custom") if changes else (protocol, name)


def main(argv: Optional[Sequence[str]] = None) -> Path:
    """Run the demonstration (or re-draw a report); returns the results.json path."""
    args = parse_args(argv)
    if args.report is not None:
        if not args.report.is_file():
            raise SystemExit(f"--report: {args.report} is not a file")
        write_report(args.report)
        return args.report
    protocol, name = protocol_from(args)
    torch.set_num_threads(args.threads)
    out = args.out or Path("runs") / time.strftime("open_vocab-%Y%m%d-%H%M%S")
    machine = machine_info("cpu")  # at the start: the commit and load the run began with
    world = W.make_world()
    wall = time.perf_counter()
    rows, curves, timings = run(protocol, progress=not args.no_progress)
    timings["total_wall_s"] = time.perf_counter() - wall
    timings["total_cpu_s"] = timings["pretrain_cpu_s"] + timings["finetune_cpu_s"]
    timings["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    meta = {
        "machine": machine,
        "settings": {"protocol": name, "seeds": list(protocol.seeds), "student": protocol.student,
                     "lrs": list(protocol.lrs), "epochs": list(protocol.epochs)},
        "command": python_command() if argv is None else "python benchmarks/open_vocab.py " + " ".join(argv),
        "protocol_name": name,
        "protocol": dataclasses.asdict(protocol),
        "world": {"base": [a.name for a in world.base], **{k: [a.name for a in v] for k, v in world.novel_sets().items()}},
        "chance": 100.0 / len(world.base),
        "timings": timings,
        "curves": curves,
    }
    paths = write_results(rows, out, meta, columns=COLUMNS, title="Open-vocabulary demonstration: every seed and grid cell")
    write_report(paths["json"])
    _say(f"wrote {out}/ (results.json, results.csv, results.md, summary.md, results.png)")
    return paths["json"]


if __name__ == "__main__":
    main()
