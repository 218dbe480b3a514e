"""benchmarks/open_vocab.py: the generated world, the training loop's grid claim, and a tiny end-to-end run."""
from __future__ import annotations

import json

import pytest
import torch

from .conftest import load_bench_module

# The end-to-end run: one seed, a short pretraining, one learning rate, two epoch counts.
TINY_ARGS = ["--seeds", "0", "--pretrain-steps", "150", "--lrs", "1e-3", "--epochs", "1", "2",
             "--shots", "4", "--test-per-class", "8", "--no-progress"]


@pytest.fixture(scope="module")
def open_vocab():
    threads = torch.get_num_threads()
    yield load_bench_module("open_vocab")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_run(open_vocab, tmp_path_factory):
    out = tmp_path_factory.mktemp("open_vocab")
    json_path = open_vocab.main([*TINY_ARGS, "--out", str(out)])
    return out, json.loads(json_path.read_text())


def test_world_regimes_are_what_they_claim(open_vocab):
    W = open_vocab.W
    world = W.make_world()
    base_shapes, base_colours = {a.shape for a in world.base}, {a.colour for a in world.base}
    # unseen: no shape and no colour of a novel action is in any base video
    assert not {a.shape for a in world.unseen} & base_shapes
    assert not {a.colour for a in world.unseen} & base_colours
    # recombined: every shape and colour is a base one, every combination is new
    assert {a.shape for a in world.recombined} <= base_shapes and {a.colour for a in world.recombined} <= base_colours
    assert not {(a.shape, a.colour) for a in world.recombined} & {(a.shape, a.colour) for a in world.base}
    # within each set, neither the shape nor the colour alone names a class
    for actions in (world.base, world.unseen, world.recombined):
        assert len({a.name for a in actions}) == len(actions) == 8
        for attribute in ("shape", "colour"):
            values = [getattr(a, attribute) for a in actions]
            assert all(values.count(v) == 2 for v in values)


def test_tokenizer_pools_at_eot_and_refuses_unknown_words(open_vocab):
    W = open_vocab.W
    tokenizer = W.WordTokenizer(context_length=10)
    tokens = tokenizer(["a video of a red square", "a blue ring"])
    assert tokens.shape == (2, 10)
    # open_clip's argmax pooling reads the sentence feature where the largest id is: <eot>.
    assert tokens.argmax(dim=-1).tolist() == [7, 4]
    assert tokenizer.vocab[tokens[0, 6]] == "square"
    with pytest.raises(ValueError, match="surfing"):
        tokenizer(["a photo of a surfing"])
    with pytest.raises(ValueError, match="context_length"):
        W.WordTokenizer(context_length=4)(["a video of a red square"])


def test_videos_show_the_static_cue_in_every_frame_and_move_by_the_motion_cue(open_vocab):
    W = open_vocab.W
    look = W.Look(pixel_noise=0.0, colour_jitter=0.0, clutter=0, radius=(4.0, 4.0))
    action = W.Action(shape=0, colour=0, velocity=(2.0, 0.0))  # red square, 2 px/frame to the right
    torch.manual_seed(0)
    videos, labels = W.videos([action], per_class=6, frames=4, generator=torch.Generator().manual_seed(3), look=look)
    assert videos.shape == (6, 3, 4, 32, 32) and labels.tolist() == [0] * 6
    mean, std = torch.tensor(W.PIXEL_MEAN).view(1, 3, 1, 1, 1), torch.tensor(W.PIXEL_STD).view(1, 3, 1, 1, 1)
    pixels = videos * std + mean  # (N, 3, T, H, W) in [0, 1]
    red = (pixels[:, 0] > 0.9) & (pixels[:, 1] < 0.2) & (pixels[:, 2] < 0.2)  # (N, T, H, W)
    area = red.sum(dim=(-1, -2)).float()  # (N, T)
    assert (area > 0.5 * 8 * 8 * 0.64).all()  # the square (side 0.8 * 2 * radius) is in every frame
    xs = torch.arange(32, dtype=torch.float32)
    centre_x = (red.float().sum(dim=-2) * xs).sum(dim=-1) / area  # (N, T)
    centre_y = (red.float().sum(dim=-1) * xs).sum(dim=-1) / area  # (N, T)
    # At most one of the 3 steps of a video meets an edge (the path is shorter than the room),
    # so its largest step is a full one: 2 px times the video's speed factor in [0.8, 1.2].
    largest = centre_x.diff(dim=1).abs().max(dim=1).values  # (N,)
    assert ((largest > 1.6 - 0.3) & (largest < 2.4 + 0.3)).all(), largest
    assert (centre_y.diff(dim=1).abs() < 0.3).all()  # no vertical motion


def test_a_grid_cell_is_the_prefix_of_the_longer_run(open_vocab):
    """The protocol reads the E-epoch cell off the longest run; that holds only if the loop's
    schedule and randomness do not depend on the total number of epochs."""
    W, P, F, D = open_vocab.W, open_vocab.P, open_vocab.F, open_vocab.D
    tokenizer, look = W.WordTokenizer(), W.Look()
    clip = P.build_clip(P.ClipSize(layers=1), look, tokenizer, seed=0)  # random weights are enough here
    teacher = F.make_teacher(clip, tokenizer)
    data = D.make_data(W.make_world(), shots=2, test_per_class=2, frames=2, seed=0, look=look)
    froster = next(m for m in F.METHODS if m.name == "froster")
    config = F.TrainConfig(batch=4)
    short = F.train(froster, "vclip", clip, teacher, tokenizer, data, 1e-3, 1, [1], config, seed=5, progress=False)
    longer = F.train(froster, "vclip", clip, teacher, tokenizer, data, 1e-3, 2, [1, 2], config, seed=5, progress=False)
    assert short.curve[-1] == longer.curve[1]
    assert longer.curve[1]["step"] == 4 and longer.curve[2]["step"] == 8


def test_summary_statistics_against_hand_computed_values(open_vocab):
    R = open_vocab.R

    def row(seed, method, hm_unseen):
        return {"seed": seed, "method": method, "lr": 1e-3, "epochs": 2, "base": 90.0, "novel_unseen": 80.0,
                "hm_unseen": hm_unseen, "novel_recombined": 70.0, "hm_recombined": 60.0}

    data = {"results": [row(1, "finetune", 70.0), row(2, "finetune", 74.0), row(1, "froster", 75.0), row(2, "froster", 73.0)]}
    summary = {r["method"]: r for r in R.summarize(data)}
    assert summary["finetune"]["hm_unseen_mean"] == pytest.approx(72.0)
    assert summary["finetune"]["hm_unseen_std"] == pytest.approx(2 ** 0.5 * 2)  # sample std of 70, 74
    (diff,) = R.paired_differences(data)
    assert diff["comparison"] == "froster - finetune"
    assert diff["hm_unseen_mean"] == pytest.approx(2.0)  # (75 - 70 + 73 - 74) / 2, paired by seed
    assert diff["hm_unseen_std"] == pytest.approx((2 * 3.0 ** 2) ** 0.5)  # sample std of +5, -1
    assert diff["hm_unseen_positive"] == "1/2"


def test_tiny_run_reports_every_method_and_cell_and_the_teacher_knows_the_world(tiny_run):
    out, data = tiny_run
    rows = data["results"]
    lrs, epochs, seeds = data["protocol"]["lrs"], data["protocol"]["epochs"], data["protocol"]["seeds"]
    assert (lrs, epochs, seeds, data["protocol_name"]) == ([1e-3], [1, 2], [0], "custom")
    cells = {(r["seed"], r["method"], r["lr"], r["epochs"]) for r in rows}
    expected = {(s, m, lr, e) for s in seeds for m in ("finetune", "froster", "distill") for lr in lrs for e in epochs}
    assert cells == expected | {(0, "frozen_clip", None, 0)} and len(rows) == len(cells)
    metrics = ("base", "novel_unseen", "hm_unseen", "novel_recombined", "hm_recombined")
    for r in rows:
        assert all(0.0 <= r[m] <= 100.0 for m in metrics), r
    # The frozen CLIP, after even this short pretraining, reads the world's objects from single
    # frames far above chance (1 in 8) on base and on both novel sets: the world and the
    # pretraining work, so the teacher has something to keep.
    (frozen,) = [r for r in rows if r["method"] == "frozen_clip"]
    assert data["chance"] == pytest.approx(12.5)
    for metric in ("base", "novel_unseen", "novel_recombined"):
        assert frozen[metric] > 2.5 * data["chance"], (metric, frozen)
    # every curve starts at step 0 and holds every grid epoch
    for curve in data["curves"]:
        assert curve["points"][0]["step"] == 0 and {1, 2} <= {p["epoch"] for p in curve["points"]}
    summary = (out / "summary.md").read_text()
    assert summary.count("| FROSTER (alpha=0.1, beta=2) | 0.001 |") == 2
    assert (out / "results.png").stat().st_size > 10_000 and (out / "results.csv").exists()


def test_bad_arguments_name_the_flag(open_vocab):
    with pytest.raises(SystemExit, match="--epochs"):
        open_vocab.main(["--epochs", "0"])
    with pytest.raises(SystemExit, match="--shots"):
        open_vocab.main(["--shots", "0"])
    with pytest.raises(SystemExit, match="--report"):
        open_vocab.main(["--report", "no-such-dir/results.json"])
