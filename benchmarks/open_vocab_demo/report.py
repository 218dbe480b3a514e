"""Summaries, markdown tables and the plot of an ``open_vocab.py`` run, drawn from its JSON file only.

Re-draw a committed result::

    python benchmarks/open_vocab.py --report benchmarks/results/open_vocab-cpu-<date>/results.json
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

NOVEL_SETS = ("unseen", "recombined")
METRICS = ("base", *(f"{kind}_{name}" for name in NOVEL_SETS for kind in ("novel", "hm")))
METHOD_LABELS = {
    "frozen_clip": "frozen CLIP (zero-shot)",
    "finetune": "fine-tune (beta=0)",
    "froster": "FROSTER (alpha=0.1, beta=2)",
    "distill": "distillation, no projector (alpha=0)",
}
COLOURS = {"frozen_clip": "black", "finetune": "#c44e52", "froster": "#55a868", "distill": "#4c72b0"}
# FROSTER and plain distillation often overlap: distillation is drawn first, dotted, under FROSTER.
STYLES = {"finetune": "-", "distill": ":", "froster": "-"}
# Paired comparisons reported per grid cell: (method, reference).
PAIRS = (("froster", "finetune"), ("distill", "finetune"), ("froster", "distill"))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def _cells(rows: Sequence[dict[str, Any]]) -> list[tuple[str, Optional[float], int]]:
    """(method, lr, epochs) of every row: frozen CLIP first, then by learning rate, epochs and method."""
    cells: list[tuple[str, Optional[float], int]] = []
    for row in rows:
        cell = (row["method"], row["lr"], row["epochs"])
        if cell not in cells:
            cells.append(cell)
    return sorted(cells, key=lambda c: (c[0] != "frozen_clip", c[1] or 0.0, c[2], list(METHOD_LABELS).index(c[0])))


def summarize(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per grid cell (and the frozen CLIP): mean and std over seeds of every metric."""
    rows = data["results"]
    summary = []
    for method, lr, epochs in _cells(rows):
        runs = [r for r in rows if (r["method"], r["lr"], r["epochs"]) == (method, lr, epochs)]
        row: dict[str, Any] = {"method": method, "lr": lr, "epochs": epochs, "seeds": len(runs)}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean_std([r[metric] for r in runs])
        summary.append(row)
    return summary


def paired_differences(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per grid cell, HM of one method minus another on the same seed: mean, std, seeds above zero."""
    rows = data["results"]
    by_key = {(r["method"], r["lr"], r["epochs"], r["seed"]): r for r in rows}
    out = []
    for method, lr, epochs in _cells(rows):
        for first, second in PAIRS:
            if method != first or (second, lr, epochs) not in {(m, l, e) for m, l, e, _ in by_key}:
                continue
            row: dict[str, Any] = {"comparison": f"{first} - {second}", "lr": lr, "epochs": epochs}
            for name in NOVEL_SETS:
                diffs = [r[f"hm_{name}"] - by_key[(second, lr, epochs, r["seed"])][f"hm_{name}"]
                         for (m, l, e, _), r in by_key.items() if (m, l, e) == (first, lr, epochs)]
                row[f"hm_{name}_mean"], row[f"hm_{name}_std"] = mean_std(diffs)
                row[f"hm_{name}_positive"] = f"{sum(d > 0 for d in diffs)}/{len(diffs)}"
            out.append(row)
    return out


def _pm(row: dict[str, Any], metric: str, signed: bool = False) -> str:
    return f"{row[f'{metric}_mean']:{'+' if signed else ''}.1f} ± {row[f'{metric}_std']:.1f}"


def markdown(data: dict[str, Any]) -> str:
    """The summary table (every grid cell) and the paired HM differences, as markdown."""
    lines = ["| method | lr | epochs | base | novel unseen | HM unseen | novel recombined | HM recombined |",
             "|---|---|---|---|---|---|---|---|"]
    for row in summarize(data):
        lr = "-" if row["lr"] is None else f"{row['lr']:g}"
        epochs = "-" if row["method"] == "frozen_clip" else str(row["epochs"])
        lines.append(f"| {METHOD_LABELS[row['method']]} | {lr} | {epochs} | " + " | ".join(_pm(row, m) for m in METRICS) + " |")
    lines += ["", "| HM difference, same seed | lr | epochs | unseen | seeds > 0 | recombined | seeds > 0 |",
              "|---|---|---|---|---|---|---|"]
    for row in paired_differences(data):
        lines.append(f"| {row['comparison']} | {row['lr']:g} | {row['epochs']} | {_pm(row, 'hm_unseen', True)} | "
                     f"{row['hm_unseen_positive']} | {_pm(row, 'hm_recombined', True)} | {row['hm_recombined_positive']} |")
    return "\n".join(lines)


def write_summary(json_path: str | Path) -> Path:
    """Write ``summary.md`` beside the JSON file: the machine, the protocol, the tables."""
    json_path = Path(json_path)
    data = json.loads(json_path.read_text())
    machine = data["machine"]
    seeds = data["protocol"]["seeds"]
    text = [
        "# Open-vocabulary demonstration: summary", "",
        f"Machine: {machine.get('cpu')} ({machine.get('cpu_count')} cores, {machine.get('torch_threads')} torch thread(s), "
        f"load average {machine.get('load_avg_1m')}), torch {machine.get('torch')}, open_clip {machine.get('open_clip')}, "
        f"{machine.get('date_utc')}, commit {machine.get('git_commit')}.", "",
        f"Command: `{data['command']}` (protocol: {data['protocol_name']}). Mean ± sample std over seeds {seeds}; "
        f"top-1 %, chance {data['chance']:.1f} %. {_time(data['timings'])}", "",
        markdown(data), "",
    ]
    path = json_path.with_name("summary.md")
    path.write_text("\n".join(text))
    return path


def _time(timings: dict[str, Any]) -> str:
    """Wall and CPU time: on a shared machine the CPU time is what the run costs on an idle one."""
    cpu = timings.get("total_cpu_s", timings["pretrain_cpu_s"] + timings["finetune_cpu_s"])
    return f"Wall time {timings['total_wall_s']:.0f} s, CPU time of the process {cpu:.0f} s."


def plot(json_path: str | Path, png_path: Optional[str | Path] = None) -> Path:
    """Accuracy against training steps: rows are learning rates; columns base, novel unseen, novel
    recombined. Lines are means over seeds, bands one std; the frozen CLIP is the dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    json_path = Path(json_path)
    png_path = Path(png_path) if png_path else json_path.with_suffix(".png")
    data = json.loads(json_path.read_text())
    curves, frozen = data["curves"], [r for r in data["results"] if r["method"] == "frozen_clip"]
    lrs = sorted({c["lr"] for c in curves})
    columns = (("base", "base classes"), ("novel_unseen", "novel: unseen concepts"), ("novel_recombined", "novel: recombined concepts"))
    fig, axes = plt.subplots(len(lrs), len(columns), figsize=(4.2 * len(columns), 3.2 * len(lrs)), squeeze=False, sharex=True)
    for i, lr in enumerate(lrs):
        for j, (metric, title) in enumerate(columns):
            ax = axes[i][j]
            teacher, _ = mean_std([r[metric] for r in frozen])
            ax.axhline(teacher, color=COLOURS["frozen_clip"], linestyle="--", linewidth=1, label=METHOD_LABELS["frozen_clip"])
            for method in ("finetune", "distill", "froster"):
                runs = [c["points"] for c in curves if c["method"] == method and c["lr"] == lr]
                if not runs:
                    continue
                steps = np.array([p["step"] for p in runs[0]])
                values = np.array([[p[metric] for p in run] for run in runs])  # (seeds, points)
                mean = values.mean(axis=0)
                std = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
                ax.plot(steps, mean, color=COLOURS[method], linestyle=STYLES[method], label=METHOD_LABELS[method], marker=".")
                ax.fill_between(steps, mean - std, mean + std, color=COLOURS[method], alpha=0.15, linewidth=0)
            ax.set_title(f"{title}, lr {lr:g}", fontsize=9)
            ax.grid(alpha=0.3)
            if i == len(lrs) - 1:
                ax.set_xlabel("training steps")
            if j == 0:
                ax.set_ylabel("top-1 %")
    handles, labels = axes[0][0].get_legend_handles_labels()
    machine = data["machine"]
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize=8)
    fig.suptitle(f"Tiny CLIP on a generated world, {len(data['protocol']['seeds'])} seed(s), mean ± std; "
                 f"{machine.get('cpu')}, {machine.get('date_utc', '')[:10]}", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
