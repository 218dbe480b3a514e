"""Plots of `benchmarks/run.py` results, drawn from the JSON file only.

Re-draw a committed result::

    python benchmarks/plot.py benchmarks/results/cpu-2026-12-01/vit-b-16/results.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

# (key prefix, legend label, colour) of the kinds of training step.
STEP_KINDS = (
    ("student", "student alone (CE)", "#4c72b0"),
    ("cached", "distilled, this library", "#55a868"),
    ("half_teacher", "distilled, text cache + half teacher", "#8172b2"),
    ("text_cache", "distilled, text cache only", "#ccb974"),
    ("reference", "distilled, released code's way", "#c44e52"),
)


def _title(data: dict[str, Any]) -> str:
    machine, s = data.get("machine", {}), data.get("settings", {})
    what = f"{s.get('clip', '?')} ({'random' if s.get('pretrained') is None else s.get('pretrained')} weights)"
    shape = f"T={s.get('frames')} B={s.get('batch')} K={s.get('classes')} {s.get('dtype')}, {s.get('steps')} timed steps"
    load = f", load avg {machine['load_avg_1m']}" if machine.get("load_avg_1m") is not None else ""
    return f"{what}, {shape}\n{machine.get('device_name', '?')} ({machine.get('device', '?')}{load}), {machine.get('date_utc', '')[:10]}"


def plot_results(json_path: str | Path, png_path: Optional[str | Path] = None) -> Path:
    """Draw step times and distillation overheads per student from a results JSON file.

    Left: median training-step time of the student alone and distilled (whiskers p10-p90).
    Right: distilled / student step-time ratio (median of per-round ratios, whiskers its 90 %
    bootstrap interval), from the same run; 1.0 is no overhead.

    Args:
        json_path: A ``results.json`` written by ``benchmarks/run.py``.
        png_path: Where to write; ``results.png`` beside the JSON file when ``None``.

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    json_path = Path(json_path)
    png_path = Path(png_path) if png_path else json_path.with_suffix(".png")
    data = json.loads(json_path.read_text())
    rows = [r for r in data["results"] if r.get("student_step_ms") is not None]
    names = [r["student"] for r in rows]
    x = np.arange(len(rows))
    kinds = [k for k in STEP_KINDS if any(r.get(f"{k[0]}_step_ms") is not None for r in rows)]

    fig, (ax_time, ax_ratio) = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(rows) + 4), 4.2))
    width = 0.8 / max(len(kinds), 1)
    for i, (key, label, colour) in enumerate(kinds):
        median = np.array([r.get(f"{key}_step_ms") or np.nan for r in rows], dtype=float)
        p90 = np.array([r.get(f"{key}_step_p90_ms") or np.nan for r in rows], dtype=float)
        p10 = np.array([r.get(f"{key}_step_p10_ms", r.get(f"{key}_step_ms")) or np.nan for r in rows], dtype=float)
        spread = [np.nan_to_num(np.clip(median - p10, 0, None)), np.nan_to_num(np.clip(p90 - median, 0, None))]
        ax_time.bar(x + (i - (len(kinds) - 1) / 2) * width, median, width, yerr=spread,
                    capsize=2, label=label, color=colour)
    ax_time.set_xticks(x, names)
    ax_time.set_ylabel("training step, ms (median, whiskers p10-p90)")
    ax_time.set_ylim(top=ax_time.get_ylim()[1] * (1.25 if len(rows) >= 3 else 1.2 + 0.12 * len(kinds)))  # legend room
    ax_time.legend(fontsize=7, loc="upper left", ncols=1 if len(rows) < 3 else min(len(kinds), 3))

    ratio_kinds = [k for k in kinds if k[0] != "student"]
    width = 0.8 / max(len(ratio_kinds), 1)
    for i, (key, label, colour) in enumerate(ratio_kinds):
        ratio = np.array([r.get(f"{key}_overhead") or np.nan for r in rows], dtype=float)
        low = np.array([r.get(f"{key}_overhead_ci90_low", r.get(f"{key}_overhead")) or np.nan for r in rows], dtype=float)
        high = np.array([r.get(f"{key}_overhead_ci90_high", r.get(f"{key}_overhead")) or np.nan for r in rows], dtype=float)
        interval = [np.nan_to_num(np.clip(ratio - low, 0, None)), np.nan_to_num(np.clip(high - ratio, 0, None))]
        bars = ax_ratio.bar(x + (i - (len(ratio_kinds) - 1) / 2) * width, ratio, width, yerr=interval, capsize=2,
                            label=label, color=colour)
        ax_ratio.bar_label(bars, fmt="%.2fx", fontsize=7)
    ax_ratio.axhline(1.0, color="black", linewidth=0.8)
    ax_ratio.set_xticks(x, names)
    ax_ratio.set_ylabel("distilled / student step time\n(median of rounds, 90% bootstrap CI)")
    ax_ratio.set_ylim(top=ax_ratio.get_ylim()[1] * (1.2 if len(rows) >= 3 else 1.15 + 0.12 * len(ratio_kinds)))
    ax_ratio.legend(fontsize=7, loc="upper left", ncols=1 if len(rows) < 3 else min(len(ratio_kinds), 2))

    fig.suptitle(_title(data), fontsize=9)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_path", help="results.json written by benchmarks/run.py")
    parser.add_argument("png_path", nargs="?", help="output PNG (default: beside the JSON)")
    args = parser.parse_args(argv)
    if not Path(args.json_path).is_file():
        parser.error(f"json_path: {args.json_path} is not a file")
    print(plot_results(args.json_path, args.png_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
