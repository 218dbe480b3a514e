"""Every shipped recipe parses, names files `froster data prepare` writes, and builds its datasets.

The paper's benchmarks each have recipes: base-to-novel on K400, HMDB51, UCF101 and SSv2 (one
recipe per few-shot split, base and novel evaluated as two sets) and cross-dataset K400 ->
UCF101 / HMDB51 / K600 (three test splits each).
"""
from __future__ import annotations

import copy
import dataclasses

import pytest

from froster.recipes import list_recipes, load_recipe, recipe_dict

pytest.importorskip("av")

B2N_DATASETS = ("k400", "hmdb51", "ucf101", "ssv2")
DATA_RECIPES = [name for name in list_recipes() if name != "tiny_synthetic"]


def _files(config) -> list[str]:
    files = [config.data.train_split, config.data.class_names, config.data.descriptions]
    for spec in config.eval.sets.values():
        files += [spec.split, spec.class_names, spec.base_classes, spec.descriptions]
    return [f for f in files if f is not None]


def _true_classes_match(out, truth, split: str, class_names: str) -> int:
    """Every video of ``split`` is, by its file name, of the class its label names in ``class_names``."""
    from froster.data.annotations import read_split
    from froster.data.classes import read_class_names
    from froster.data.prepare.layout import name_key, stem

    classes = read_class_names(out / class_names)
    records = read_split(out / split, root=out)
    truth_of = {video: cls for per_dataset in truth.values() for video, cls in per_dataset.items()}
    for record in records:
        assert name_key(classes[record.label]) == name_key(truth_of[stem(record.path)]), (split, class_names, record)
    return len(records)


@pytest.mark.parametrize("name", DATA_RECIPES)
def test_recipe_names_prepared_files_and_builds_its_datasets(prepared, name):
    from froster.training.data import eval_dataset, train_dataset

    _, out, truth, _ = prepared
    config = load_recipe(name, [f"data.root={out}"])
    for file in _files(config):
        assert (out / file).is_file(), f"{name}: {file} is not written by froster data prepare"
    assert _true_classes_match(out, truth, config.data.train_split, config.data.class_names)
    for spec in config.eval.sets.values():
        assert _true_classes_match(out, truth, spec.split, spec.class_names)
    # Train-side sizes shrunk so the tiny videos are read fast; paths and labels are the recipe's.
    data = dataclasses.replace(config.data, image_size=32, short_side=(32, 40), num_frames=2)
    train = train_dataset(data, seed=0)
    item = train[0]
    assert item["video"].shape == (3, 2, 32, 32)
    for set_name, spec in config.eval.sets.items():
        test = eval_dataset(data, spec)
        assert len(test) > 0 and test[0]["video"].shape == (data.num_test_clips, 3, 2, 32, 32), set_name


def test_every_benchmark_of_the_paper_has_recipes():
    names = set(list_recipes())
    for dataset in B2N_DATASETS:
        for k in (1, 2, 3):
            config = load_recipe(f"b2n_{dataset}_s{k}")
            assert config.data.train_split == f"{dataset}/b2n/train_s{k}.txt"
            assert set(config.eval.sets) == {f"{dataset}_base", f"{dataset}_novel"}
            assert config.train.output_dir == f"runs/b2n_{dataset}_s{k}"
    cross = load_recipe("k400_cross_dataset")
    groups = {}
    for spec in cross.eval.sets.values():
        groups.setdefault(spec.group, []).append(spec.split)
    assert {g: len(s) for g, s in groups.items()} == {"ucf101": 3, "hmdb51": 3, "k600": 3}
    assert {"k400_cross_dataset", "base_to_novel"} <= names


def test_base_to_novel_recipes_carry_the_papers_values_and_differ_only_in_data():
    """METHOD.md: ViT-B/16, 8 frames at 224, AdamW lr 3.33e-6 wd 0.01 (no decay on 1-D), cosine with
    2 warm-up epochs, grad clip 1.0, bf16, 12 epochs, 3 clips x 1 crop, 4 per GPU (32 on 8 GPUs)."""
    reference = None
    for dataset in B2N_DATASETS:
        for k in (1, 2, 3):
            c = load_recipe(f"b2n_{dataset}_s{k}")
            assert (c.student.name, c.student.clip, c.student.pretrained) == ("vclip", "ViT-B-16", "openai")
            assert (c.teacher.clip, c.teacher.pretrained) == ("ViT-B-16", "openai")
            assert (c.data.num_frames, c.data.image_size, c.data.num_test_clips, c.data.batch_size) == (8, 224, 3, 4)
            assert (c.optim.lr, c.optim.weight_decay, c.optim.decay_1d, c.optim.grad_clip) == (3.33e-6, 0.01, False, 1.0)
            assert (c.schedule.epochs, c.schedule.warmup_epochs, c.train.precision) == (12, 2.0, "bf16")
            assert (c.distill.alpha, c.distill.beta, c.distill.kind) == (0.1, 2.0, "cosine")
            assert not c.averaging.enabled and c.data.backend == "auto" and c.data.shots_per_class is None
            # The few-shot subset is the published file itself (16 per base class).
            raw = copy.deepcopy(recipe_dict(f"b2n_{dataset}_s{k}"))
            for key in ("train_split", "class_names", "sampling"):
                raw["data"].pop(key)
            raw["train"].pop("output_dir")
            raw["eval"].pop("sets")
            reference = reference or raw
            assert raw == reference, f"b2n_{dataset}_s{k} differs from the others beyond its data"
