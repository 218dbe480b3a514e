"""``froster summarize``: several runs' metrics.json as the paper's tables, checked against hand sums.

The metrics files are written by the evaluator's own writer (:func:`froster.evaluation.metrics.to_json`
over :func:`classification_metrics` of known scores), and each run folder carries its config the
way checkpoints store it; the expected numbers are computed here from the accuracies by hand.
"""
from __future__ import annotations

import csv
import io
import statistics

import pytest
import torch

from froster.cli import main
from froster.evaluation import metrics as M
from froster.recipes import load_recipe


def _scores(correct: int, total: int, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores whose top-1 accuracy is exactly ``correct / total``."""
    labels = torch.arange(total) % classes
    predicted = torch.where(torch.arange(total) < correct, labels, (labels + 1) % classes)
    return torch.nn.functional.one_hot(predicted, classes).float(), labels


def _run(folder, sets: dict[str, tuple[int, int]], groups=None, student="vclip", base_classes=None):
    """A run folder: metrics.json as the evaluator writes it, and checkpoints/<latest>/config.json."""
    results = {}
    for name, (correct, total) in sets.items():
        scores, labels = _scores(correct, total)
        results[name] = M.classification_metrics(scores, labels, base_classes=base_classes if name == "combined" else None)
        results[name]["skipped"] = 0
    summary = M.summarize_groups(results, groups or {})
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(M.to_json(results, summary, {"view_average": "probs"}))
    config = load_recipe("tiny_synthetic", [f"student.name={student}"])
    checkpoint = folder / "checkpoints" / "step_000000010"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text(config.to_json())
    (folder / "checkpoints" / "latest").write_text("step_000000010")
    return folder


def _hm(base: float, novel: float) -> float:
    return 2 * base * novel / (base + novel)


@pytest.fixture
def runs(tmp_path):
    b2n = {1: ((40, 50), (30, 50)), 2: ((45, 50), (25, 50)), 3: ((42, 50), (29, 50))}  # (base, novel) correct of 50
    folders = [_run(tmp_path / f"b2n_ucf101_s{k}", {"ucf101_base": base, "ucf101_novel": novel}) for k, (base, novel) in b2n.items()]
    cross = {"ucf101_split1": (42, 50), "ucf101_split2": (43, 50), "ucf101_split3": (41, 50),
             "hmdb51_split1": (27, 50), "hmdb51_split2": (28, 50), "hmdb51_split3": (26, 50)}
    groups = {name: name.split("_")[0] for name in cross}
    folders.append(_run(tmp_path / "k400_cross_dataset", cross, groups))
    folders.append(_run(tmp_path / "other", {"ucf101_base": (10, 50), "ucf101_novel": (5, 50)}, student="vificlip"))
    return folders, b2n, cross


def test_markdown_is_the_papers_layout_with_hand_computed_cells(runs, capsys):
    folders, b2n, cross = runs
    assert main(["summarize", *map(str, folders)]) == 0
    text = capsys.readouterr().out
    base = [100 * b[0] / 50 for b, _ in b2n.values()]
    novel = [100 * n[0] / 50 for _, n in b2n.values()]
    row = (f"| vclip | {statistics.mean(base):.1f} ± {statistics.pstdev(base):.1f} | "
           f"{statistics.mean(novel):.1f} ± {statistics.pstdev(novel):.1f} | "
           f"{_hm(statistics.mean(base), statistics.mean(novel)):.1f} | UCF101 3 |")
    assert "| method | UCF101 base | UCF101 novel | UCF101 HM | splits |" in text
    assert row in text, text
    assert f"| vificlip | 20.0 | 10.0 | {_hm(20, 10):.1f} | UCF101 1 |" in text
    ucf = [100 * cross[f"ucf101_split{k}"][0] / 50 for k in (1, 2, 3)]
    hmdb = [100 * cross[f"hmdb51_split{k}"][0] / 50 for k in (1, 2, 3)]
    assert "| method | UCF101 | HMDB51 | splits |" in text
    assert (f"| vclip | {statistics.mean(ucf):.1f} ± {statistics.pstdev(ucf):.1f} | "
            f"{statistics.mean(hmdb):.1f} ± {statistics.pstdev(hmdb):.1f} | UCF101 3, HMDB51 3 |") in text


def test_csv_has_one_row_per_method_with_means_stds_and_counts(runs, tmp_path):
    folders, b2n, _ = runs
    out = tmp_path / "table.csv"
    assert main(["summarize", *map(str, folders), "--csv", str(out)]) == 0
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    base = [100 * b[0] / 50 for b, _ in b2n.values()]
    novel = [100 * n[0] / 50 for _, n in b2n.values()]
    vclip = rows["vclip"]
    assert float(vclip["ucf101_base_mean"]) == pytest.approx(statistics.mean(base), abs=1e-4)
    assert float(vclip["ucf101_novel_std"]) == pytest.approx(statistics.pstdev(novel), abs=1e-4)
    assert float(vclip["ucf101_hm"]) == pytest.approx(_hm(statistics.mean(base), statistics.mean(novel)), abs=1e-4)
    assert vclip["ucf101_b2n_splits"] == "3" and vclip["hmdb51_top1_splits"] == "3"
    assert float(vclip["hmdb51_top1_mean"]) == pytest.approx(54.0)
    assert rows["vificlip"]["hmdb51_top1_mean"] == ""


def test_labels_single_sets_with_base_classes_and_eval_folders(tmp_path, capsys):
    """LABEL=PATH names a row; a set evaluated with base_classes gives base/novel directly; an
    eval-* folder inside a run is found."""
    scores = torch.eye(4)[[0, 1, 2, 3, 1, 0]]  # videos of classes 0..3, then 0 and 1 wrong
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    result = M.classification_metrics(scores, labels, base_classes=[0, 1])
    run = tmp_path / "run" / "eval-avg"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(M.to_json({"k400": result}, {}))
    assert main(["summarize", f"mine={tmp_path / 'run'}"]) == 0
    text = capsys.readouterr().out
    # base: classes 0 and 1, videos 0, 1, 4, 5 -> 2 of 4 right among {0, 1}; novel: 2 of 2.
    assert f"| mine | 50.0 | 100.0 | {_hm(50, 100):.1f} | K400 1 |" in text


def test_errors_name_the_path(tmp_path, capsys):
    assert main(["summarize", str(tmp_path / "nowhere")]) == 1
    assert "no metrics.json" in capsys.readouterr().err
