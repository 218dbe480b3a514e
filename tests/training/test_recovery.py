"""Run directories that went wrong: changed configs, lost ``latest`` pointers, leftovers of killed
saves, re-runs at ``train.max_steps``, unreadable training sets. No run is lost or restarted silently."""
from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

from froster.training import checkpoint as C
from froster.training.trainer import Trainer, train


def _state(out) -> dict:
    return json.loads((C.latest_checkpoint(out / "checkpoints") / "state.json").read_text())


def test_resume_with_a_changed_config_is_refused_naming_every_changed_field(tiny_config, tmp_path):
    from froster.training.trainer import ConfigChangedError

    common = ("train.eval_at_end=false", "data.num_workers=0")
    assert train(tiny_config(*common, "train.max_steps=1"), resume="auto")["step"] == 1
    changed = tiny_config(*common, "train.max_steps=2", "optim.lr=0.001", "distill.beta=1.5")
    with pytest.raises(ConfigChangedError) as error:
        train(changed, resume="auto")
    message = str(error.value)
    assert "optim.lr: 0.0003 in the checkpoint, 0.001 now" in message
    assert "distill.beta: 2.0 in the checkpoint, 1.5 now" in message
    assert "train.max_steps" not in message, "how long to train is not a change of the run"
    assert _state(tmp_path / "run")["step"] == 1, "nothing was trained or written"

    # Said explicitly: the new values apply (the learning rate too, not the one in the optimiser
    # state) and the change is recorded with the run.
    trainer = Trainer(changed)
    trainer.resume(str(tmp_path / "run"), allow_config_change=True)
    assert [g["initial_lr"] for g in trainer.optimizer.param_groups] == [0.001, 0.001]
    assert trainer.distiller.config.beta == 1.5
    assert trainer.fit()["step"] == 2
    trainer.close()
    record = _state(tmp_path / "run")["config_changes"]
    assert record == [{"step": 1, "changes": {"distill.beta": [2.0, 1.5], "optim.lr": [0.0003, 0.001]}}]


def test_cli_resume_needs_allow_config_change(video_root, tmp_path, capsys):
    from froster.cli import main

    from .conftest import tiny_overrides

    base = tiny_overrides(video_root, tmp_path / "run", "train.eval_at_end=false")
    assert main(["train", "--config", "tiny_synthetic", *base, "train.max_steps=1"]) == 0
    capsys.readouterr()
    assert main(["train", "--config", "tiny_synthetic", *base, "train.max_steps=2", "optim.lr=0.001"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr: 0.0003 in the checkpoint, 0.001 now" in err and "--allow-config-change" in err
    assert main(["train", "--config", "tiny_synthetic", *base, "train.max_steps=2", "optim.lr=0.001", "--allow-config-change"]) == 0
    assert _state(tmp_path / "run")["config_changes"][0]["changes"] == {"optim.lr": [0.0003, 0.001]}


def _save(directory, step):
    model = torch.nn.Linear(2, 2)
    return C.save_checkpoint(
        directory, step, model_state=model.state_dict(), optimizer_state=torch.optim.AdamW(model.parameters()).state_dict(),
        rng_states=[C.rng_state()], state={"epoch": 0}, config_json="{}", keep=5,
    )


def test_missing_or_dangling_latest_falls_back_to_the_newest_valid_checkpoint(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step)
    (tmp_path / "latest").unlink()
    with pytest.warns(UserWarning, match="no checkpoints/latest.*step_000000003"):
        assert C.latest_checkpoint(tmp_path).name == "step_000000003"

    (tmp_path / "latest").write_text("step_000000009")  # dangling
    (tmp_path / "step_000000003" / "state.json").unlink()  # and the newest one incomplete
    with pytest.warns(UserWarning, match="step_000000009.*does not exist.*step_000000002"):
        assert C.latest_checkpoint(tmp_path).name == "step_000000002"
    with pytest.warns(UserWarning, match="step_000000002"):  # froster eval --checkpoint <run> too
        assert C.resolve_checkpoint(tmp_path).name == "step_000000002"

    for step in (1, 2):
        (tmp_path / f"step_00000000{step}" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(C.CheckpointError, match="none of the 3 checkpoints .* is complete"):
        C.latest_checkpoint(tmp_path)


def test_training_resumes_from_the_newest_checkpoint_when_latest_is_lost(tiny_config, tmp_path, capsys):
    common = ("train.eval_at_end=false", "data.num_workers=0")
    train(tiny_config(*common, "train.max_steps=1"), resume="auto")
    (tmp_path / "run" / "checkpoints" / "latest").unlink()
    with pytest.warns(UserWarning, match="no checkpoints/latest"):
        result = train(tiny_config(*common, "train.max_steps=2"), resume="auto")
    assert result["step"] == 2 and "resumed from" in capsys.readouterr().out


def test_leftovers_of_killed_saves_are_swept_only_under_the_lock(tiny_config, tmp_path):
    from froster.training.run_lock import RunDirectoryInUse, lock_run_directory

    out = tmp_path / "run"
    checkpoints = out / "checkpoints"
    staging = checkpoints / ".step_000000007.k2j4x.tmp"
    staging.mkdir(parents=True)
    (staging / "model.safetensors").write_bytes(b"\0" * 1000)
    leftovers = [staging, checkpoints / ".latest.a81x.tmp", out / ".final.safetensors.9dk2.tmp"]
    for path in leftovers[1:]:
        path.write_bytes(b"partial")
    mine = out / ".notes.tmp"  # not a name froster writes: left alone
    mine.write_text("user file")

    held = lock_run_directory(out)  # another run holds the directory: nothing is touched
    with pytest.raises(RunDirectoryInUse):
        Trainer(tiny_config("train.eval_at_end=false"))
    assert all(p.exists() for p in leftovers)
    held.release()

    trainer = Trainer(tiny_config("train.eval_at_end=false"))
    trainer.close()
    assert not any(p.exists() for p in leftovers) and mine.exists()


def test_a_run_that_fails_to_start_releases_its_directory(tiny_config, tmp_path):
    from froster.training.overrides import ConfigError
    from froster.training.run_lock import lock_run_directory

    with pytest.raises(ConfigError, match="student.name: unknown student 'no_such_student'") as error:
        Trainer(tiny_config("student.name=no_such_student"))  # fails after it took the lock
    # While the error (and the half-built trainer its traceback holds) is still alive:
    assert error.value is not None
    lock_run_directory(tmp_path / "run").release()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = _save(tmp_path / "checkpoints", 1)
        C.save_weights(tmp_path / "final.safetensors", {"w": torch.ones(2)})
    finally:
        os.umask(old)
    for file in (path / "model.safetensors", path / "state.json", tmp_path / "checkpoints" / "latest", tmp_path / "final.safetensors"):
        assert oct(file.stat().st_mode & 0o777) == oct(0o666 & ~umask), file
    assert oct(path.stat().st_mode & 0o777) == oct(0o777 & ~umask)


def test_max_steps_is_never_overshot_and_zero_trains_nothing(tiny_config, tmp_path):
    common = ("train.eval_at_end=false", "data.num_workers=0")
    for _ in range(3):  # re-running a run that reached max_steps trains nothing more
        assert train(tiny_config(*common, "train.max_steps=1"), resume="auto")["step"] == 1
    assert _state(tmp_path / "run")["step"] == 1

    trainer = Trainer(tiny_config(*common, "train.max_steps=0", output_dir=tmp_path / "zero"))
    before = {k: v.clone() for k, v in trainer.distiller.state_dict().items()}
    assert trainer.fit()["step"] == 0
    trainer.close()
    assert all(torch.equal(before[k], v) for k, v in trainer.distiller.state_dict().items())


def test_a_training_set_of_only_unreadable_videos_is_refused(tiny_config, tmp_path):
    from froster.data.synthetic import write_corrupt_video
    from froster.training.trainer import TrainingDataError

    lines = [f"{write_corrupt_video(tmp_path / f'broken_{i}.mp4', mode='garbage', seed=i)} {i % 4}" for i in range(8)]
    split = tmp_path / "all_broken.txt"
    split.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TrainingDataError) as error:
            train(tiny_config(f"data.train_split={split}"), resume=None)
    message = str(error.value)
    assert "all 8 videos" in message and "broken_0.mp4" in message
    assert not (tmp_path / "run" / "final.safetensors").exists()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_split_smaller_than_one_batch_says_how_small(tiny_config, video_root, tmp_path):
    from froster.training.trainer import TrainingDataError

    split = tmp_path / "three.txt"
    split.write_text("\n".join((video_root / "train.txt").read_text().splitlines()[:3]) + "\n")
    with pytest.raises(TrainingDataError, match="3 training videos give no full batch of 4 .* data.batch_size=3 or less"):
        Trainer(tiny_config(f"data.train_split={split}"))
