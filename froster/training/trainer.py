"""The FROSTER training loop: one process or many (torchrun + DDP), resumable to the bit.

Per step: the class prompt sets of the released protocol (one random template and the bare class
entry, ensembled on both sides; :mod:`froster.text`), bf16 autocast,
the FROSTER loss of :class:`froster.ResidualDistiller`, gradient-norm clipping, AdamW, and the
per-step warm-up + cosine learning rate. Per epoch: a summary (losses, learning rate, skipped
videos), the weight average, a checkpoint. At the end: ``final.safetensors``,
``avg.safetensors`` (averaging), ``patched.safetensors`` (patching) and the evaluation report.

Resuming restores weights, optimiser, schedule, averaging, the position in the epoch and every
random state, so ``N`` straight steps and ``N/2`` + resume + ``N/2`` give identical weights
(with ``data.num_workers=0``; with worker processes a mid-epoch resume re-seeds the workers, so
the augmentations of the rest of that epoch differ; resuming at an epoch end is exact either way).

A run holds its output directory's lock (:mod:`froster.training.run_lock`) from the moment its
data is known to be there until it ends, and sweeps the leftovers of killed saves under it. A
resume with a config that differs from the checkpoint's in anything that changes what is trained
is refused, naming each field, unless the change is allowed explicitly; it is then recorded.
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, cast

import numpy as np
import torch
from tqdm.auto import tqdm

from froster import distributed as D
from froster.clip_loading import load_state_dict_checked
from froster.protocols import VideoStudent
from froster.text import ALL_TEMPLATES, training_prompt_sets
from froster.training import checkpoint as C
from froster.training.averaging import EpochAverager, patch_weights
from froster.training.build import build_distiller, original_clip_state, set_grad_checkpointing, with_resolved_activations
from froster.training.config_diff import ConfigChangedError, apply_optim_config, config_changes, refusal
from froster.training.configs import RunConfig
from froster.training.data import class_prompts, prepare_synthetic, train_dataset, train_loader, with_synthetic_defaults
from froster.training.data_problems import TrainingDataError, no_full_batch, unreadable_epoch
from froster.training.optim import WarmupCosineSchedule, build_optimizer, clip_grad_norm
from froster.training.run_lock import lock_run_directory

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


class Trainer:
    """Trains a student with FROSTER as a :class:`RunConfig` describes.

    Args:
        config: The run.
        info: This process's place in the job; :func:`froster.distributed.init_distributed`
            when None (reads torchrun's environment).
    """

    def __init__(self, config: RunConfig, info: Optional[D.DistInfo] = None):
        self.info = info or D.init_distributed(config.train.device)
        config = dataclasses.replace(config, data=with_synthetic_defaults(config.data))
        config = with_resolved_activations(config)  # recorded with the weights: rebuilt without them later
        self.config, cfg = config, config
        self.out = Path(cfg.train.output_dir)
        if self.info.is_main:
            prepare_synthetic(cfg.data)
        D.barrier()
        self.dataset = train_dataset(cfg.data, cfg.train.seed)  # first: it says which data keys are unset
        self.classes = class_prompts(cfg.data.root, cfg.data.class_names, cfg.data.descriptions)
        # Only once the data is known to be there; before anything is built or written.
        self.writer: Optional[SummaryWriter] = None
        self._lock = lock_run_directory(self.out, self.info, sweep=True)
        try:
            self._build()
        except BaseException:
            self.close()  # a run that failed to start must not keep its directory locked
            raise

    def _build(self) -> None:
        cfg = self.config
        self.loader, self.sampler = train_loader(self.dataset, cfg.data, self.info.rank, self.info.world_size, cfg.train.seed)
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise no_full_batch(len(self.dataset), cfg.data.batch_size, self.info.world_size, cfg.data.train_split)
        self.distiller = build_distiller(cfg, self.info.device)
        cache = self.distiller.teacher_text_cache
        cache.max_entries = max(cache.max_entries, len(ALL_TEMPLATES))  # every prompt set encoded once
        if cfg.train.grad_checkpointing:
            set_grad_checkpointing(self.distiller.student, True)
        self.optimizer = build_optimizer(self.distiller, cfg.optim)
        self.schedule = WarmupCosineSchedule.from_config(self.optimizer, cfg.schedule, self.steps_per_epoch)
        self.model = D.wrap_ddp(self.distiller, self.info)
        avg = cfg.averaging
        self.averager = EpochAverager(avg.start_epoch, avg.end_epoch) if avg.enabled else None
        self.step, self.epoch, self.batches_in_epoch, self.epoch_skipped = 0, 0, 0, 0
        self._saved_at: Optional[int] = None
        self.config_changes: list[dict[str, Any]] = []  # resumes allowed to change the config
        _seed_process(cfg.train.seed + self.info.rank)
        if self.info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tensorboard"))

    # -- checkpoints -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step, "epoch": self.epoch, "batches_in_epoch": self.batches_in_epoch,
            "epoch_skipped": self.epoch_skipped, "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.info.world_size, "schedule": self.schedule.state_dict(),
            "averager": self.averager.state_dict() if self.averager else None,
            "config_changes": self.config_changes,
        }

    def close(self) -> None:
        """Release the run directory and the TensorBoard writer (also done when training ends)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def save(self) -> None:
        """Checkpoint now (rank 0 writes; every rank contributes its random state)."""
        if self._saved_at == self.step:
            return
        rngs = D.all_gather_objects(C.rng_state())
        if self.info.is_main:
            C.save_checkpoint(
                self.out / "checkpoints", self.step, model_state=self.distiller.state_dict(),
                optimizer_state=self.optimizer.state_dict(), rng_states=rngs, state=self.state(),
                config_json=self.config.to_json(), keep=self.config.train.keep_checkpoints,
                average_state=self.averager.average if self.averager else None,
            )
        self._saved_at = self.step
        D.barrier()

    def resume(self, path, allow_config_change: bool = False) -> None:
        """Continue from a checkpoint directory (or a run's output dir: its latest checkpoint).

        Args:
            path: The checkpoint.
            allow_config_change: Resume even when the config differs from the checkpoint's in
                fields outside :data:`froster.training.config_diff.RESUMABLE_CHANGES`; the new values
                apply (the optimiser's hyper-parameters included) and the change is recorded in
                ``state.json``.

        Raises:
            ConfigChangedError: The configs differ and ``allow_config_change`` is False, or the
                number of steps per epoch differs (the data, batch size or processes changed).
        """
        ckpt = C.load_checkpoint(path)
        state = ckpt["state"]
        changes = config_changes(ckpt["config_json"], self.config)
        if changes and not allow_config_change:
            raise refusal(str(ckpt["path"]), changes)
        if state["steps_per_epoch"] != self.steps_per_epoch:
            raise ConfigChangedError(
                f"{ckpt['path']} ran {state['steps_per_epoch']} steps per epoch, this run has {self.steps_per_epoch}: "
                "resume with the same data, batch size and number of processes"
            )
        load_state_dict_checked(self.distiller, ckpt["model"], source=str(ckpt["path"]))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        # The optimiser state carries the hyper-parameters it was built with; the config's apply.
        apply_optim_config(self.optimizer, self.distiller, self.config.optim)
        self.schedule.load_state_dict(state["schedule"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batches_in_epoch, self.epoch_skipped = state["batches_in_epoch"], state["epoch_skipped"]
        if self.averager is not None and state.get("averager"):
            self.averager.load_state_dict(state["averager"], ckpt["average"])
        if len(ckpt["rng"]) == self.info.world_size:
            C.set_rng_state(ckpt["rng"][self.info.rank])
        else:
            warnings.warn(f"checkpoint has random states of {len(ckpt['rng'])} processes, not {self.info.world_size}; re-seeding")
        self.config_changes = list(state.get("config_changes") or [])
        self._saved_at = self.step
        if changes:
            self.config_changes.append({"step": self.step, "changes": {k: list(v) for k, v in changes.items()}})
            self._saved_at = None  # the next save records the change, even at this step
            if self.info.is_main:
                listed = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changes.items())
                print(f"resuming with a changed config (allowed): {listed}", flush=True)

    # -- the loop --------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to the end (or to ``train.max_steps``), then write weights and evaluate.

        Returns:
            ``{"step", "epoch", "finished", "metrics"}`` (metrics when evaluated).
        """
        epochs, max_steps = self.config.schedule.epochs, self.config.train.max_steps
        if max_steps is not None and self.step >= max_steps and self.epoch < epochs:
            # Already there (a re-run of a stopped run, or max_steps=0): train nothing more.
            self.save()
            return {"step": self.step, "epoch": self.epoch, "finished": False}
        while self.epoch < epochs:
            if self._train_epoch():  # stopped at train.max_steps
                self.save()
                return {"step": self.step, "epoch": self.epoch, "finished": False}
            self.epoch, self.batches_in_epoch, self.epoch_skipped = self.epoch + 1, 0, 0
            if self.averager is not None and self.averager.wants(self.epoch):
                self.averager.update(self.distiller.state_dict())
            self.save()
        return {"step": self.step, "epoch": self.epoch, "finished": True, "metrics": self.finish()}

    def _train_epoch(self) -> bool:
        cfg, info = self.config, self.info
        self.sampler.set_epoch(self.epoch)
        self.sampler.start_at(self.batches_in_epoch * cfg.data.batch_size)
        # Seeds the workers' augmentations (num_workers > 0): per epoch and per rank.
        self.loader.generator.manual_seed((cfg.train.seed * 1000 + self.epoch) * 1000 + info.rank)
        self.model.train()
        sums: dict[str, torch.Tensor] = {}
        steps, start, from_start = 0, time.time(), self.batches_in_epoch == 0
        bar = tqdm(total=self.steps_per_epoch, initial=self.batches_in_epoch, desc=f"epoch {self.epoch + 1}/{cfg.schedule.epochs}",
                   disable=not (cfg.train.progress and info.is_main), leave=False)
        stopped = False
        for batch in self.loader:
            self.batches_in_epoch += 1
            self.epoch_skipped += int(batch["skipped"])
            # With several processes every rank must step together: skip when any rank has no video.
            if D.all_ranks_true("video" in batch, info.device):
                losses = self._step(batch)
                steps += 1
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + value
                if self.step % cfg.train.log_every_steps == 0:
                    bar.set_postfix(loss=f"{losses['loss'].item():.4f}", lr=f"{self.schedule.get_last_lr()[0]:.2e}")
            bar.update(1)
            if cfg.train.checkpoint_every_steps and self.step % cfg.train.checkpoint_every_steps == 0:
                self.save()
            if cfg.train.max_steps is not None and self.step >= cfg.train.max_steps:
                stopped = True
                break
        bar.close()
        if from_start and not stopped and D.all_reduce_sum(steps, info.device) == 0:
            # A whole epoch without a step: no batch had a readable video (on some rank).
            skipped = int(D.all_reduce_sum(self.epoch_skipped, info.device))
            seen = self.steps_per_epoch * cfg.data.batch_size * info.world_size
            raise unreadable_epoch(self.dataset, self.epoch, skipped, seen, cfg.data.train_split)
        self._summarize(sums, steps, time.time() - start, complete=not stopped)
        return stopped

    def _step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg, device = self.config, self.info.device
        video = batch["video"].to(device, non_blocking=True)  # (B, C, T, H, W)
        labels = batch["label"].to(device, non_blocking=True)  # (B,)
        # Stateless in the RNG: the template of step s depends on (seed, s) only, on every rank.
        step_rng = random.Random(cfg.train.seed * 1_000_003 + self.step)
        prompts = training_prompt_sets(self.classes, step_rng, cfg.train.prompt_protocol)
        with D.autocast(device, cfg.train.precision):
            output = self.model(video, prompts, labels)
        self.optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        grad_norm = clip_grad_norm(self.distiller.parameters(), cfg.optim.grad_clip)
        self.optimizer.step()
        lr = self.schedule.get_last_lr()[0]
        self.schedule.step()
        self.step += 1
        losses = {"loss": output.loss.detach(), **{k: v.detach() for k, v in output.losses.items()}}
        if self.writer is not None and self.step % cfg.train.log_every_steps == 0:
            for key, value in losses.items():
                self.writer.add_scalar(f"train/{key}", value.item(), self.step)
            self.writer.add_scalar("train/lr", lr, self.step)
            if grad_norm is not None:
                self.writer.add_scalar("train/grad_norm", grad_norm.item(), self.step)
            logit_scale = cast(VideoStudent, self.distiller.student).logit_scale
            self.writer.add_scalar("train/logit_scale", logit_scale.exp().item(), self.step)
        return losses

    def _summarize(self, sums: dict[str, torch.Tensor], steps: int, seconds: float, complete: bool) -> None:
        device = self.info.device
        total_steps = D.all_reduce_sum(steps, device)
        means = {k: D.all_reduce_sum(float(v), device) / max(total_steps, 1) for k, v in sums.items()}
        skipped = int(D.all_reduce_sum(self.epoch_skipped, device))
        if not self.info.is_main:
            return
        terms = ", ".join(f"{k} {v:.4f}" for k, v in means.items())
        state = "" if complete else " (stopped at train.max_steps)"
        print(
            f"epoch {self.epoch + 1}/{self.config.schedule.epochs}{state}: {steps} steps in {seconds:.1f} s, "
            f"{terms}, lr {self.schedule.get_last_lr()[0]:.3e}, skipped videos {skipped}",
            flush=True,
        )
        if self.writer is not None:
            for key, value in means.items():
                self.writer.add_scalar(f"epoch/{key}", value, self.epoch + 1)
            self.writer.add_scalar("epoch/skipped_videos", skipped, self.epoch + 1)
            self.writer.flush()

    # -- the end ---------------------------------------------------------------------------------

    def finish(self) -> Optional[dict]:
        """Write final / averaged / patched weights and evaluate the patched ones on ``eval.sets``
        (else the average, else the final weights)."""
        cfg = self.config
        final = self.distiller.state_dict()
        candidates = {"final": final}
        if self.averager is not None and self.averager.average is not None:
            candidates["avg"] = self.averager.averaged_like(final)
        if cfg.patching.ratio is not None:
            source = candidates["avg" if cfg.patching.source == "average" and "avg" in candidates else "final"]
            student = self.distiller.student
            to_key = getattr(student, "clip_state_dict_key", lambda key: key)

            def key_map(clip_key: str) -> Optional[str]:
                key = to_key(clip_key)
                return None if key is None else "student." + key

            candidates["patched"], _ = patch_weights(source, original_clip_state(cfg), cfg.patching.ratio, key_map)
        if self.info.is_main:
            metadata = {"format": "pt", "froster_config": cfg.to_json(), "step": str(self.step)}
            if self.config_changes:
                metadata["froster_config_changes"] = json.dumps(self.config_changes)
            for name, state in candidates.items():
                C.save_weights(self.out / f"{name}.safetensors", state, dict(metadata, weights=name))
        D.barrier()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if not (cfg.train.eval_at_end and cfg.eval.sets):
            return None
        from froster.evaluation.evaluator import evaluate_run

        chosen = "patched" if "patched" in candidates else "avg" if "avg" in candidates else "final"
        self.distiller.load_state_dict(candidates[chosen])
        report = evaluate_run(self.distiller.student, cfg, self.info, output_dir=str(self.out), progress=cfg.train.progress)
        report["weights"] = chosen
        return report


def _seed_process(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    config: RunConfig,
    resume: Optional[str] = "auto",
    info: Optional[D.DistInfo] = None,
    allow_config_change: bool = False,
) -> dict[str, Any]:
    """Build a :class:`Trainer`, resume when asked, and fit; the run directory is held throughout.

    Args:
        config: The run.
        resume: ``"auto"`` (the latest checkpoint in ``train.output_dir`` when there is one), a
            checkpoint path, or ``None`` to start afresh.
        info: Process-group information (read from the environment when None).
        allow_config_change: Resume even when the config differs (see :meth:`Trainer.resume`).
    """
    trainer = Trainer(config, info)
    try:
        if resume == "auto":
            found = C.latest_checkpoint(trainer.out / "checkpoints")
            resume = str(found) if found is not None else None
        if resume is not None:
            trainer.resume(resume, allow_config_change=allow_config_change)
            if trainer.info.is_main:
                print(f"resumed from {resume} at step {trainer.step} (epoch {trainer.epoch + 1})", flush=True)
        return trainer.fit()
    finally:
        trainer.close()


# Re-exported: the errors a run raises on purpose.
__all__ = ["ConfigChangedError", "Trainer", "TrainingDataError", "train"]
