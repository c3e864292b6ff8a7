"""The Trainer: one adversarial training loop for every method.

Read it top to bottom: :meth:`Trainer.fit` pulls batches, :meth:`Trainer.train_step` does one
discriminator update (``n_critic`` times) then one generator update, and the rest is bookkeeping
(precision, EMA, schedules, logging, samples, checkpoints, exact resume).
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from i2i.config import Config, config_to_dict, dump_config
from i2i.data.images import save_image
from i2i.data.sampler import ResumableBatchSampler
from i2i.device import autocast_dtype, select_device, select_precision
from i2i.errors import CheckpointError, ConfigError, I2IError
from i2i.train.checkpoint import (
    checkpoint_path,
    find_resumable,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from i2i.train.ema import EMA
from i2i.train.logging import MetricsLogger, sample_grid
from i2i.train.method import Method, adam, group_parameters
from i2i.train.schedule import lr_factor

log = logging.getLogger(__name__)


STAT_PREFIX = "stat/"


class TrainingError(I2IError):
    """Training cannot go on (e.g. the losses became NaN)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np.random.get_state()[0], np.random.get_state()[1].tolist(), *np.random.get_state()[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


@dataclass
class TrainResult:
    """Where a finished run left its files."""

    run_dir: Path
    checkpoint: Path
    step: int
    last_logs: dict[str, float]


class Trainer:
    """Trains a :class:`~i2i.train.method.Method` on a dataset.

    Args:
        cfg: The resolved run config (``train``, ``optim``, ``data.batch_size``, ``seed``, ``run_dir``).
        method: The method, with its nets built (on the CPU; the Trainer moves them).
        train_set: Dataset whose ``__getitem__`` accepts ``(index, sample_seed)`` keys.
        sample_batch: A fixed batch for the sample grids (e.g. the first test images); None for none.
        progress: Show a progress bar (defaults to when stderr is a terminal).
    """

    def __init__(
        self,
        cfg: Config,
        method: Method,
        train_set: Dataset,
        *,
        sample_batch: Mapping[str, Any] | None = None,
        progress: bool | None = None,
    ) -> None:
        self.cfg = cfg
        self.method = method
        self.train_set = train_set
        self.sample_batch = sample_batch
        self.progress = sys.stderr.isatty() if progress is None else progress
        tcfg = cfg.train
        if tcfg.grad_accum < 1 or tcfg.n_critic < 1:
            raise ConfigError("train.grad_accum and train.n_critic must be at least 1")
        self.device = select_device(tcfg.device)
        self.precision = select_precision(tcfg.precision, self.device)
        for net in method.nets.values():
            net.to(self.device)
        missing = [g for g in method.groups if g not in cfg.optim]
        if missing:
            raise ConfigError(f"optim.{missing[0]}: no optimizer settings for the {missing[0]!r} nets")
        self.optimizers = {g: adam(group_parameters(method, g), cfg.optim[g]) for g in method.groups}

        self.sampler = ResumableBatchSampler(len(train_set), cfg.data.batch_size, seed=cfg.seed)
        batches_per_step = tcfg.grad_accum * tcfg.n_critic
        self.steps_per_epoch = max(1, self.sampler.batches_per_epoch // batches_per_step)
        self.total_steps = tcfg.max_steps or (tcfg.epochs + tcfg.epochs_decay) * self.steps_per_epoch
        factor = lr_factor(
            tcfg.lr_schedule, total_steps=self.total_steps, epochs=tcfg.epochs, epochs_decay=tcfg.epochs_decay
        )
        self.schedulers = {
            g: torch.optim.lr_scheduler.LambdaLR(o, factor) for g, o in self.optimizers.items()
        }
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.ema = {n: EMA(method.nets[n], tcfg.ema_decay) for n in method.ema_nets} if tcfg.ema_decay else {}
        self.step = 0
        self.batches_seen = 0
        self.run_dir = cfg.run_dir
        self.checkpoint_dir = self.run_dir / "checkpoints"

    # ------------------------------------------------------------------ the loop

    def fit(self, resume: str | None = None, *, stop_at: int | None = None) -> TrainResult:
        """Train until ``total_steps``, saving a checkpoint at the end.

        Args:
            resume: None, ``"auto"`` (this run's newest complete checkpoint) or a checkpoint path.
            stop_at: Stop (and save) at this step instead, e.g. to split a run over several jobs; the
                schedule is still that of the whole run.
        """
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        if not resume and list_checkpoints(self.checkpoint_dir):
            raise CheckpointError(
                f"{self.run_dir} already holds checkpoints of an earlier run; continue it with "
                "--resume auto, or start a new run under another name (--set name=...)"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(dump_config(self.cfg), encoding="utf-8")
        if resume:
            self.resume(resume)
        else:
            seed_everything(self.cfg.seed)
        batches = self._batches()
        metrics = MetricsLogger(self.run_dir, after_step=self.step)
        running: dict[str, float] = defaultdict(float)
        count = 0
        last_logs: dict[str, float] = {}
        last_checkpoint = None
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress, unit="step")
        try:
            while self.step < end:
                terms = self.train_step(batches)
                self.step += 1
                bar.update(1)
                for key, value in terms.items():
                    running[key] += value
                count += 1
                done = self.step == end
                if done or self.step % max(1, self.cfg.train.log_every) == 0:
                    last_logs = {k: v / count for k, v in running.items()}
                    metrics.log(self.step, last_logs)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in last_logs.items() if k != "lr"})
                    running.clear()
                    count = 0
                every = self.cfg.train.sample_every
                if self.sample_batch is not None and (done or (every > 0 and self.step % every == 0)):
                    self.save_samples()
                every = self.cfg.train.save_every
                if done or (every > 0 and self.step % every == 0):
                    last_checkpoint = self.save()
        finally:
            bar.close()
            metrics.close()
        if last_checkpoint is None:  # resumed a run that had already finished
            last_checkpoint = self.save()
        return TrainResult(self.run_dir, last_checkpoint, self.step, last_logs)

    def train_step(self, batches: Iterator[dict[str, Any]]) -> dict[str, float]:
        """One generator step: ``n_critic`` discriminator updates, then one generator update.

        With one micro-batch and on the last critic update, the generator's forward pass is shared by
        both updates (as in the reference implementation); otherwise it is recomputed for the generator.
        """
        tcfg, method = self.cfg.train, self.method
        accum = tcfg.grad_accum
        logs: dict[str, float] = defaultdict(float)
        d_nets = [method.nets[n] for n in method.groups["d"]]
        for critic in range(tcfg.n_critic):
            group = [to_device(next(batches), self.device) for _ in range(accum)]
            reuse = accum == 1 and critic == tcfg.n_critic - 1
            outs = []
            _requires_grad(d_nets, True)
            self.optimizers["d"].zero_grad(set_to_none=True)
            for batch in group:
                with self._autocast():
                    with torch.set_grad_enabled(reuse):
                        out = method.forward(batch)
                    loss = self._total(method.d_step(batch, out), logs, scale=1.0 / (accum * tcfg.n_critic))
                self.scaler.scale(loss / accum).backward()
                if reuse:
                    outs.append(out)
            self.scaler.step(self.optimizers["d"])

        _requires_grad(d_nets, False)  # no D weight gradients from the generator's loss
        g_groups = [g for g in self.optimizers if g != "d"]
        for g in g_groups:
            self.optimizers[g].zero_grad(set_to_none=True)
        for i, batch in enumerate(group):
            with self._autocast():
                out = outs[i] if reuse else method.forward(batch)
                loss = self._total(method.g_step(batch, out), logs, scale=1.0 / accum)
            self.scaler.scale(loss / accum).backward()
        _requires_grad(d_nets, True)
        for g in g_groups:
            self.scaler.step(self.optimizers[g])
        self.scaler.update()

        for name, ema in self.ema.items():
            ema.update(method.nets[name])
        logs["lr"] = next(iter(self.optimizers.values())).param_groups[0]["lr"]  # the rate this step used
        for scheduler in self.schedulers.values():
            scheduler.step()
        return dict(logs)

    def _total(self, terms: Mapping[str, Tensor], logs: dict[str, float], *, scale: float) -> Tensor:
        """Sum the loss terms (``stat/...`` entries are diagnostics: logged, not optimised)."""
        losses = {k: v for k, v in terms.items() if not k.startswith(STAT_PREFIX)}
        total = sum(losses.values())
        if not torch.isfinite(total):
            bad = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items() if not torch.isfinite(v))
            raise TrainingError(
                f"non-finite loss {bad} at step {self.step + 1}; lower the learning rate (optim.*.lr), "
                "try train.precision=fp32, or check the data for broken images"
            )
        for key, value in terms.items():
            logs[key] += float(value.detach()) * scale
        return total

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = autocast_dtype(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _batches(self) -> Iterator[dict[str, Any]]:
        """Endless batches starting where the run left off (``batches_seen``)."""
        sampler = ResumableBatchSampler(
            len(self.train_set), self.cfg.data.batch_size, seed=self.cfg.seed, start_batch=self.batches_seen
        )
        workers = self.cfg.data.num_workers
        loader = DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            # Its own generator: creating the iterator must not draw from the global RNG, or a resumed
            # run (which creates one more iterator) would see different dropout noise.
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )
        for batch in loader:
            self.batches_seen += 1
            yield batch

    # ------------------------------------------------------------------ samples and checkpoints

    def eval_nets(self) -> dict[str, nn.Module]:
        """The nets to use for samples and inference: EMA copies where EMA is on."""
        return {**self.method.nets, **{name: ema.shadow for name, ema in self.ema.items()}}

    @torch.no_grad()
    def save_samples(self) -> Path:
        nets = self.eval_nets()
        modes = {name: net.training for name, net in nets.items()}
        for net in nets.values():
            net.eval()
        try:
            with self._autocast():
                images = self.method.samples(to_device(self.sample_batch, self.device), nets)
        finally:
            for name, net in nets.items():
                net.train(modes[name])
        path = self.run_dir / "samples" / f"step_{self.step:08d}.png"
        save_image(sample_grid(images), path)
        return path

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "batches_seen": self.batches_seen,
            "nets": {n: net.state_dict() for n, net in self.method.nets.items()},
            "ema": {n: ema.state_dict() for n, ema in self.ema.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "method": self.method.state_dict(),
            "rng": rng_state(),
            "specs": self.method.specs,
            "config": config_to_dict(self.cfg),
        }

    def save(self) -> Path:
        path = save_checkpoint(self.state_dict(), checkpoint_path(self.checkpoint_dir, self.step))
        prune_checkpoints(self.checkpoint_dir, self.cfg.train.keep_last)
        log.info("saved checkpoint %s", path)
        return path

    def resume(self, resume: str) -> None:
        """Restore the full state from ``resume`` (a path, or ``auto`` for this run's newest checkpoint)."""
        if resume == "auto":
            found = find_resumable(self.checkpoint_dir)
            if found is None:
                log.info("no checkpoint in %s; starting a new run", self.checkpoint_dir)
                seed_everything(self.cfg.seed)
                return
            path, state = found
        else:
            path, state = Path(resume), load_checkpoint(resume)
        self._check_compatible(path, state["config"])
        for name, net in self.method.nets.items():
            net.load_state_dict(state["nets"][name])
        for name, ema in self.ema.items():
            if name in state["ema"]:
                ema.load_state_dict(state["ema"][name])
            else:  # EMA switched on for a resumed run: start it from the current weights
                ema.shadow.load_state_dict(self.method.nets[name].state_dict())
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.method.load_state_dict(state["method"])
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.batches_seen = int(state["batches_seen"])
        log.info("resumed from %s at step %d", path, self.step)

    def _check_compatible(self, path: Path, saved: Mapping[str, Any]) -> None:
        current = config_to_dict(self.cfg)
        for section in ("method", "model"):
            if saved.get(section) != current.get(section):
                key = _first_difference(saved.get(section), current.get(section), section)
                raise CheckpointError(
                    f"{path}: cannot resume: the checkpoint was trained with a different {key} "
                    "(use the config saved in the run folder, config.yaml)"
                )


def _first_difference(a: Any, b: Any, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    return f"{path} ({a!r} in the checkpoint, {b!r} now)"


def _requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        net.requires_grad_(flag)
