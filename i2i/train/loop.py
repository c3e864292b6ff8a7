"""The Trainer: one adversarial training loop for every method.

Read it top to bottom: :meth:`Trainer.fit` pulls batches, :meth:`Trainer.train_step` does one
discriminator update (``n_critic`` times) then one generator update, and the rest is bookkeeping
(precision, EMA, schedules, logging, samples, checkpoints, exact resume).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import re
import sys
import warnings
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from i2i.config import Config, OptimizerConfig, config_to_dict, dump_config
from i2i.data.badimages import BAD_IMAGES_KEY, SkipBadImages, one_line
from i2i.data.images import save_image
from i2i.data.sampler import ResumableBatchSampler, convert_position
from i2i.device import autocast_dtype, select_device, select_precision
from i2i.errors import CheckpointError, ConfigError, DataError, I2IError
from i2i.metrics.base import higher_is_better
from i2i.train import conv_tuning, distributed, fastpath
from i2i.train.checkpoint import (
    checkpoint_path,
    config_differences,
    find_resumable,
    list_checkpoints,
    load_verified,
    prune_checkpoints,
    save_best,
    save_checkpoint,
)
from i2i.train.ema import EMA
from i2i.train.guard import StepHealth, grads_finite, nonfinite_nets
from i2i.train.logging import MetricsLogger, sample_grid
from i2i.train.method import Method, adam, group_parameters
from i2i.train.schedule import lr_factor
from i2i.train.signals import GracefulStop, TrainingInterrupted, isolate_worker_signals, signal_name

if TYPE_CHECKING:  # the evaluator's metrics take seconds to import; only runs that evaluate pay for it
    from i2i.train.evaluation import Evaluator

log = logging.getLogger(__name__)


STAT_PREFIX = "stat/"
BAD_IMAGE_POLICIES = ("error", "skip")


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


def to_device(batch: Mapping[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    """The batch's tensors on ``device``; images (4-D float tensors) in NHWC when ``channels_last``."""
    return {
        k: fastpath.image_to_memory_format(v.to(device, non_blocking=True), channels_last)
        if isinstance(v, Tensor)
        else v
        for k, v in batch.items()
    }


class _NoMetrics:
    """The metrics log of processes other than rank 0, which write nothing."""

    def log(self, step: int, values: Mapping[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class TrainResult:
    """Where a finished run left its files."""

    run_dir: Path
    checkpoint: Path
    step: int
    last_logs: dict[str, float]
    counters: dict[str, int] = field(default_factory=dict)  # skipped steps and bad images, see Trainer


class Trainer:
    """Trains a :class:`~i2i.train.method.Method` on a dataset.

    Reliability: a step whose loss or gradients are NaN/Inf is skipped (named in a warning, counted in
    the metrics as ``skipped/nonfinite``) and ``train.max_nonfinite_steps`` of them in a row stop the
    run; fp16 updates the GradScaler skipped are counted as ``skipped/amp``; a model with non-finite
    weights is never saved; SIGTERM/SIGINT end the run at a step boundary with a checkpoint
    (:class:`~i2i.train.signals.TrainingInterrupted`); a bad image stops the run with a checkpoint, or is
    skipped and counted (``skipped/bad_images``) with ``data.on_bad_image=skip``.

    Args:
        cfg: The resolved run config (``train``, ``optim``, ``data.batch_size``, ``seed``, ``run_dir``).
        method: The method, with its nets built (on the CPU; the Trainer moves them).
        train_set: Dataset whose ``__getitem__`` accepts ``(index, sample_seed)`` keys.
        sample_batch: A fixed batch for the sample grids (e.g. the first test images); None for none.
        progress: Show a progress bar (defaults to when stderr is a terminal).
        evaluator: Computes the ``eval`` block's metrics every ``eval.every`` steps (rank 0 only); they are
            logged as ``eval/<name>``, and a checkpoint is saved at each evaluation when
            ``train.best_metric`` is one of them.

    Attributes:
        eval_metrics: Latest evaluation results by name (e.g. ``"fid"``), filled by :meth:`evaluate`;
            ``train.best_metric`` is looked up here first, then among the loss terms logged since the
            last checkpoint.
    """

    def __init__(
        self,
        cfg: Config,
        method: Method,
        train_set: Dataset,
        *,
        sample_batch: Mapping[str, Any] | None = None,
        progress: bool | None = None,
        evaluator: Evaluator | None = None,
    ) -> None:
        self.cfg = cfg
        self.method = method
        self.train_set = train_set
        self.sample_batch = sample_batch
        self.progress = sys.stderr.isatty() if progress is None else progress
        tcfg = cfg.train
        if tcfg.grad_accum < 1 or tcfg.n_critic < 1:
            raise ConfigError("train.grad_accum and train.n_critic must be at least 1")
        if cfg.data.on_bad_image not in BAD_IMAGE_POLICIES:
            raise ConfigError(
                f"data.on_bad_image: {cfg.data.on_bad_image!r}; choose {' or '.join(BAD_IMAGE_POLICIES)}"
            )
        fastpath.check_speed_config(tcfg)
        # Under torchrun: join the process group; on CUDA each process takes its local rank's GPU.
        self.dist, device_name = distributed.init_from_env(tcfg.device)
        self.progress = self.progress and self.dist.is_main
        self.device = select_device(device_name)
        self.precision = select_precision(tcfg.precision, self.device)
        fastpath.configure_backends(tcfg, self.device)
        self.channels_last = fastpath.use_channels_last(tcfg.channels_last, self.device)
        for name, net in method.nets.items():
            net.to(self.device)
            fastpath.to_memory_format(net, self.channels_last)
            if self.dist.enabled and tcfg.sync_batchnorm:
                method.nets[name] = distributed.convert_sync_batchnorm(net, self.device)
        missing = [g for g in method.groups if g not in cfg.optim]
        if missing:
            raise ConfigError(f"optim.{missing[0]}: no optimizer settings for the {missing[0]!r} nets")
        fused = fastpath.fused_flag(tcfg.fused_optimizer, self.device)
        self.optimizers = {  # a group may be empty: SRGAN training SRResNet alone has no D
            g: adam(group_parameters(method, g), self._optim_settings(g), fused=fused)
            for g in method.groups
            if method.groups[g]
        }

        self.sampler = ResumableBatchSampler(
            len(train_set),
            cfg.data.batch_size,
            seed=cfg.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.batches_per_step = tcfg.grad_accum * tcfg.n_critic
        self.steps_per_epoch = max(1, self.sampler.batches_per_epoch // self.batches_per_step)
        self.total_steps = tcfg.max_steps or (tcfg.epochs + tcfg.epochs_decay) * self.steps_per_epoch
        factor = lr_factor(
            tcfg.lr_schedule, total_steps=self.total_steps, epochs=tcfg.epochs, epochs_decay=tcfg.epochs_decay
        )
        self.schedulers = {
            g: torch.optim.lr_scheduler.LambdaLR(o, factor) for g, o in self.optimizers.items()
        }
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.ema = {n: EMA(method.nets[n], tcfg.ema_decay) for n in method.ema_nets} if tcfg.ema_decay else {}
        trained = list(dict.fromkeys(n for g in method.groups.values() for n in g))
        if tcfg.compile:  # after the EMA copies, which must stay plain modules
            for name in trained:
                fastpath.compile_net(method.nets[name])
        # CPU conv backend tuning, for runs long enough to win its cost back; not under compile, whose
        # graphs it would break (and which then picks its own kernels).
        self.conv_autotune = (
            not tcfg.compile
            and tcfg.conv_autotune
            and self.device.type == "cpu"
            and self.total_steps >= conv_tuning.MIN_STEPS
        )
        if self.conv_autotune:
            conv_tuning.install(method.nets)
        # DDP wrappers of the trained nets; train_step routes calls through them (see distributed.swapped).
        self._ddp = (
            {
                name: distributed.wrap(
                    method.nets[name],
                    self.dist,
                    self.device,
                    find_unused_parameters=tcfg.ddp_find_unused_parameters,
                )
                for name in trained
                if any(p.requires_grad for p in method.nets[name].parameters())
            }
            if self.dist.enabled
            else {}
        )
        self.step = 0
        self.batches_seen = 0
        self.run_dir = cfg.run_dir
        self.checkpoint_dir = self.run_dir / "checkpoints"
        # Reliability bookkeeping (saved in checkpoints, so a resumed run logs the same counts).
        self.nonfinite_steps = 0  # steps with an update skipped for NaN/Inf losses or gradients
        self.nonfinite_streak = 0  # of them, how many in a row up to now
        self.amp_skipped = 0  # fp16 updates the GradScaler skipped (inf/NaN gradients at that scale)
        self.bad_images: list[str] = []  # problems met with data.on_bad_image=skip, one per file
        self.best: dict[str, Any] = {"metric": tcfg.best_metric, "value": None, "step": None}
        self.eval_metrics: dict[str, float] = {}
        self.evaluator = evaluator
        if evaluator is not None and self.dist.is_main:
            evaluator.prepare(self.device)  # loads Inception etc. now: missing weights stop the run here
        self._since_save: dict[str, float] = defaultdict(float)
        self._since_save_count = 0
        self._saved_step: int | None = None
        self._health = StepHealth({})
        self._scaler_pending = False
        self._warned_best = False

    # ------------------------------------------------------------------ the loop

    def fit(self, resume: str | None = None, *, stop_at: int | None = None) -> TrainResult:
        """Train until ``total_steps``, saving a checkpoint at the end.

        Args:
            resume: None, ``"auto"`` (this run's newest complete checkpoint) or a checkpoint path.
            stop_at: Stop (and save) at this step instead, e.g. to split a run over several jobs; the
                schedule is still that of the whole run.

        Raises:
            TrainingInterrupted: on SIGTERM/SIGINT, after saving a checkpoint at the current step.
            TrainingError: after ``train.max_nonfinite_steps`` steps in a row with NaN/Inf losses.
            DataError: an image cannot be read (``data.on_bad_image=error``); a checkpoint of the last
                completed step is saved first.
        """
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        if not resume and list_checkpoints(self.checkpoint_dir):
            raise CheckpointError(
                f"{self.run_dir} already holds checkpoints of an earlier run; continue it with "
                "--resume auto, or start a new run under another name (--set name=...)"
            )
        if self.dist.is_main:  # rank 0 writes every file of the run
            self._prepare_run_dir()
        if resume:
            self.resume(resume)
        else:
            seed_everything(distributed.rank_seed(self.cfg.seed, self.dist.rank))
        batches = self._batches()
        metrics = self._open_metrics()
        running: dict[str, float] = defaultdict(float)
        count = 0
        last_logs: dict[str, float] = {}
        last_checkpoint = None
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress, unit="step")
        try:
            with GracefulStop() as stop:
                while self.step < end:
                    try:
                        step_batches = self._fetch_step(batches)
                    except Exception:
                        if not stop.requested:  # e.g. workers killed by the same SIGTERM: still save
                            raise
                        raise self._interrupted(stop.signum, last_checkpoint) from None
                    terms = self.train_step(iter(step_batches))
                    self.step += 1
                    bar.update(1)
                    for key, value in terms.items():
                        running[key] += value
                        self._since_save[key] += value
                    count += 1
                    self._since_save_count += 1
                    done = self.step == end
                    if done or self.step % max(1, self.cfg.train.log_every) == 0:
                        last_logs = self.dist.mean_logs({k: v / count for k, v in running.items()})
                        last_logs.update(self.counters())
                        metrics.log(self.step, last_logs)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in last_logs.items() if k != "lr"})
                        running.clear()
                        count = 0
                    evaluate_now = self.evaluator is not None and self.evaluator.due(self.step, done)
                    if evaluate_now and self.dist.is_main:
                        self.evaluate(metrics)
                    # Keeping the best checkpoint by an eval metric needs a checkpoint of each evaluated step.
                    save_eval = evaluate_now and self._best_key() in self.evaluator.names  # type: ignore[union-attr]
                    every = self.cfg.train.save_every
                    if done or (every > 0 and self.step % every == 0) or save_eval:
                        last_checkpoint = self.save()
                    every = self.cfg.train.sample_every
                    sample_now = done or (every > 0 and self.step % every == 0)
                    if self.sample_batch is not None and self.dist.is_main and sample_now:
                        try:
                            self.save_samples()
                        except OSError as exc:  # a sample grid is not worth stopping the run for
                            log.warning("could not write the sample grid of step %d: %s", self.step, exc)
                    # Every process stops at the same step, or the others would wait for it forever.
                    if self.dist.any_true(stop.requested) and not done:
                        if count:  # the steps since the last log line, so none goes unrecorded
                            metrics.log(
                                self.step, {**{k: v / count for k, v in running.items()}, **self.counters()}
                            )
                        raise self._interrupted(stop.signum, last_checkpoint)
        finally:
            batches.close()  # shuts the DataLoader workers down now, also on errors
            bar.close()
            metrics.close()
        if last_checkpoint is None:  # resumed a run that had already finished
            last_checkpoint = self.save()
        return TrainResult(self.run_dir, last_checkpoint, self.step, last_logs, self.counters())

    def counters(self) -> dict[str, int]:
        """The non-zero reliability counts, as logged: ``skipped/nonfinite``, ``skipped/amp``, ..."""
        counts = {
            "skipped/nonfinite": self.nonfinite_steps,
            "skipped/amp": self.amp_skipped,
            "skipped/bad_images": len(self.bad_images),
        }
        return {k: v for k, v in counts.items() if v}

    def train_step(self, batches: Iterator[dict[str, Any]]) -> dict[str, float]:
        """One generator step: ``n_critic`` discriminator updates, then one generator update.

        With one micro-batch and on the last critic update, the generator's forward pass is shared by
        both updates (as in the reference implementation); otherwise it is recomputed for the generator.
        An update whose loss or gradients are not finite is skipped (see :class:`Trainer`).
        """
        tcfg, method = self.cfg.train, self.method
        accum, n_critic = tcfg.grad_accum, tcfg.n_critic
        # All of the step's batches first: a bad file then stops the run before any update.
        groups = [[next(batches) for _ in range(accum)] for _ in range(n_critic)]
        logs: dict[str, float] = defaultdict(float)
        self._health = StepHealth(method.nets)
        d_nets = [method.nets[n] for n in method.groups["d"]]
        g_groups = [g for g in self.optimizers if g != "d"]
        outs: list[dict[str, Tensor]] = []
        group: list[dict[str, Any]] = []
        for critic, cpu_group in enumerate(groups):
            group = [to_device(batch, self.device, self.channels_last) for batch in cpu_group]
            reuse = accum == 1 and critic == n_critic - 1
            _requires_grad(d_nets, True)
            if "d" in self.optimizers:
                self.optimizers["d"].zero_grad(set_to_none=True)
            finite = True
            # A shared forward pass runs G through its DDP wrapper too: G's update backpropagates it later.
            with self._parallel(["d", *(g_groups if reuse else [])]):
                for i, batch in enumerate(group):
                    with self._no_sync(last=i == accum - 1):
                        with self._autocast():
                            with torch.set_grad_enabled(reuse):
                                out = method.forward(batch)
                            terms = method.d_step(batch, out)
                            # No D loss terms (no D, or SRGAN's pixel-loss pre-training): no D update.
                            d_update = any(not k.startswith(STAT_PREFIX) for k in terms)
                            if d_update:
                                loss = self._total(terms, logs, scale=1.0 / (accum * n_critic))
                        if reuse:
                            outs.append(out)
                        if not d_update:
                            continue
                        # Several processes skip an update together, or one would wait in the all-reduce.
                        finite = self.dist.all_true(finite and loss is not None)
                        if finite:
                            self.scaler.scale(loss / accum).backward()
            if d_update:
                self._apply("d", finite)
            self._update_scaler()

        _requires_grad(d_nets, False)  # no D weight gradients from the generator's loss
        for g in g_groups:
            self.optimizers[g].zero_grad(set_to_none=True)
        finite = True
        with self._parallel(g_groups):  # the frozen D runs unwrapped: DDP would wait for its gradients
            for i, batch in enumerate(group):
                with self._no_sync(last=i == accum - 1):
                    with self._autocast():
                        out = outs[i] if reuse else method.forward(batch)
                        loss = self._total(method.g_step(batch, out), logs, scale=1.0 / accum)
                    finite = self.dist.all_true(finite and loss is not None)
                    if finite:
                        self.scaler.scale(loss / accum).backward()
        _requires_grad(d_nets, True)
        for g in g_groups:
            self._apply(g, finite)
        self._update_scaler()
        self._after_nonfinite()

        for name, ema in self.ema.items():
            ema.update(method.nets[name])
        logs["lr"] = next(iter(self.optimizers.values())).param_groups[0]["lr"]  # the rate this step used
        with warnings.catch_warnings():  # a skipped update is not the misuse this warning is about
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
            for scheduler in self.schedulers.values():
                scheduler.step()
        return dict(logs)

    def _parallel(self, groups: list[str]) -> contextlib.AbstractContextManager:
        """With several processes: in this block, the nets of ``groups`` run through their DDP wrappers."""
        names = [n for g in groups for n in self.method.groups[g] if n in self._ddp]
        if not names:
            return contextlib.nullcontext()
        return distributed.swapped(self.method.nets, {n: self._ddp[n] for n in names})

    def _no_sync(self, *, last: bool) -> contextlib.AbstractContextManager:
        """Accumulate gradients locally on all but the last micro-batch of an update (one all-reduce)."""
        stack = contextlib.ExitStack()
        if not last:
            for wrapper in self._ddp.values():
                stack.enter_context(wrapper.no_sync())
        return stack

    def _optim_settings(self, group: str) -> OptimizerConfig:
        """``optim.<group>`` with the learning rate scaled for the number of processes (train.lr_scaling)."""
        settings = self.cfg.optim[group]
        lr = distributed.scaled_lr(settings.lr, self.dist.world_size, self.cfg.train.lr_scaling)
        return dataclasses.replace(settings, lr=lr)

    def _total(self, terms: Mapping[str, Tensor], logs: dict[str, float], *, scale: float) -> Tensor | None:
        """Sum the loss terms (``stat/...`` entries are diagnostics: logged, not optimised).

        Returns None, noting the culprit terms, when the sum is not finite.
        """
        losses = {k: v for k, v in terms.items() if not k.startswith(STAT_PREFIX)}
        total = sum(losses.values())
        if not torch.isfinite(total):
            bad = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items() if not torch.isfinite(v))
            self._health.bad_terms.append(bad or f"total={float(total):.4g}")
            return None
        for key, value in terms.items():
            logs[key] += float(value.detach()) * scale
        return total

    def _apply(self, group: str, finite: bool) -> None:
        """Step one optimizer, or skip the update (zeroing its gradients) if anything was not finite."""
        optimizer = self.optimizers[group]
        if finite and not self.scaler.is_enabled() and not grads_finite(optimizer):
            self._health.bad_grads.append(group)
            finite = False
        if not finite:
            optimizer.zero_grad(set_to_none=True)
            self._health.skipped.append(group)
            return
        self.scaler.step(optimizer)
        self._scaler_pending = True

    def _update_scaler(self) -> None:
        """GradScaler update after each optimizer round; counts the fp16 updates it skipped."""
        if not self._scaler_pending:
            return
        self._scaler_pending = False
        if not self.scaler.is_enabled():
            return
        before = self.scaler.get_scale()
        self.scaler.update()
        if self.scaler.get_scale() < before:  # it found inf/NaN gradients and skipped the update
            self.amp_skipped += 1

    def _after_nonfinite(self) -> None:
        """Count a step with skipped updates; undo poisoned buffers; stop after too many in a row."""
        health, step = self._health, self.step + 1
        if health.ok:
            self.nonfinite_streak = 0
            return
        self.nonfinite_steps += 1
        self.nonfinite_streak += 1
        log.warning(health.finish(self.method.nets, step))
        limit = self.cfg.train.max_nonfinite_steps
        if limit > 0 and self.nonfinite_streak >= limit:
            saved = (
                f"the last checkpoint is step {self._saved_step}" if self._saved_step else "none was saved"
            )
            raise TrainingError(
                f"{self.nonfinite_streak} steps in a row had non-finite losses or gradients (the last: "
                f"{health.describe(step)}); training stopped without saving ({saved}). Lower the learning "
                "rate (optim.*.lr), try train.precision=fp32, or check the data (i2i data check ROOT), then "
                "continue with --resume auto"
            )

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = autocast_dtype(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _batches(self) -> Iterator[dict[str, Any]]:
        """Endless batches starting where the run left off (``batches_seen``)."""
        sampler = ResumableBatchSampler(
            len(self.train_set),
            self.cfg.data.batch_size,
            seed=self.cfg.seed,
            start_batch=self.batches_seen,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        skip = self.cfg.data.on_bad_image == "skip"
        workers = self.cfg.data.num_workers
        loader = DataLoader(
            SkipBadImages(self.train_set) if skip else self.train_set,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            worker_init_fn=isolate_worker_signals if workers > 0 else None,
            # Its own generator: creating the iterator must not draw from the global RNG, or a resumed
            # run (which creates one more iterator) would see different dropout noise.
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )
        iterator = iter(loader)
        try:
            for batch in iterator:
                self.batches_seen += 1
                if skip and isinstance(batch, dict):
                    self._note_bad_images(batch.pop(BAD_IMAGES_KEY, []))
                yield batch
        finally:  # stop the workers now (an error's traceback would keep them alive until it is freed)
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

    def _note_bad_images(self, reports: list[str]) -> None:
        for report in reports:
            for problem in filter(None, report.splitlines()):
                if problem not in self.bad_images:
                    self.bad_images.append(problem)
                    log.warning("skipping a bad image (%d so far): %s", len(self.bad_images), problem)

    def _fetch_step(self, batches: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
        """The next step's batches; on a bad image, save the last completed step and say what to do.

        With several processes a bad image met by one stops them all together, since the step's gradient
        all-reduce and the checkpoint need every process (one tiny all-reduce per step tells them).
        """
        start = self.batches_seen
        problem: str | None = None
        try:
            fetched = [next(batches) for _ in range(self.batches_per_step)]
        except DataError as exc:
            problem = self._bad_data_message(exc)
        except BaseException:
            self.batches_seen = start
            raise
        if self.dist.enabled and self.dist.any_true(problem is not None):
            reports = self.dist.broadcast(self.dist.gather(problem))
            rank, problem = next((r, p) for r, p in enumerate(reports) if p is not None)
            problem = f"process {rank} of {self.dist.world_size}: {problem}"
        if problem is not None:
            self.batches_seen = start  # nothing of this step was used: resume refetches it
            raise self._stopped_on_bad_data(problem)
        return fetched

    @staticmethod
    def _bad_data_message(exc: DataError) -> str:
        # From a DataLoader worker the message holds the worker's traceback; its last line is the error.
        message = str(exc).strip().splitlines()[-1] if "Traceback" in str(exc) else one_line(str(exc))
        return message.removeprefix("i2i.errors.DataError: ")

    def _stopped_on_bad_data(self, message: str) -> DataError:
        saved = ""
        if self.step > 0 and self._saved_step != self.step:
            try:  # collective with several processes: every one of them is here
                saved = f"; saved {self.save()}"
            except I2IError as save_exc:
                saved = f"; could not save a checkpoint ({save_exc})"
        root = self.cfg.data.root or "DATASET_FOLDER"
        return DataError(
            f"{message} Training stopped at step {self.step}{saved}. Fix or remove the file and continue "
            f"with --resume auto; `i2i data check {root}` lists every problem at once, and "
            "--on-bad-image skip (data.on_bad_image=skip) skips bad images instead."
        )

    def _interrupted(self, signum: int | None, last_checkpoint: Path | None) -> TrainingInterrupted:
        if last_checkpoint is None or self._saved_step != self.step:
            last_checkpoint = self.save()
        log.warning(
            "stopped by %s at step %d; saved %s; continue with --resume auto",
            signal_name(signum or 0),
            self.step,
            last_checkpoint,
        )
        return TrainingInterrupted(signum or 0, self.step, last_checkpoint, self.run_dir)

    def _prepare_run_dir(self) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(dump_config(self.cfg), encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(
                f"cannot write to the run folder {self.run_dir}: {exc.strerror or exc}; choose a writable "
                "output_dir (--set output_dir=...) or free some disk space"
            ) from exc

    def _open_metrics(self) -> MetricsLogger | _NoMetrics:
        if not self.dist.is_main:
            return _NoMetrics()
        try:
            return MetricsLogger(self.run_dir, after_step=self.step)
        except OSError as exc:
            raise CheckpointError(
                f"cannot write the metrics log in {self.run_dir}: {exc.strerror or exc}; choose a writable "
                "output_dir (--set output_dir=...) or free some disk space"
            ) from exc

    # ------------------------------------------------------------------ samples and checkpoints

    def evaluate(self, metrics: MetricsLogger | _NoMetrics) -> dict[str, float]:
        """Compute the ``eval`` metrics with :meth:`eval_nets` and log them as ``eval/<name>``."""
        assert self.evaluator is not None
        results = self.evaluator.evaluate(self.method, self.eval_nets(), self.device, autocast=self._autocast)
        self.eval_metrics = dict(results)
        metrics.log(self.step, {f"eval/{k}": v for k, v in results.items()})
        log.info("step %d: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in results.items()))
        return results

    def _best_key(self) -> str:
        """``train.best_metric`` as the evaluator names it (``eval/fid`` and ``fid`` are the same)."""
        return self.cfg.train.best_metric.removeprefix("eval/")

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
            "counters": {
                "nonfinite_steps": self.nonfinite_steps,
                "nonfinite_streak": self.nonfinite_streak,
                "amp_skipped": self.amp_skipped,
                "bad_images": list(self.bad_images),
            },
            "best": dict(self.best),
            "world_size": self.dist.world_size,  # batches_seen counts global batches of this many processes
            "conv_choices": conv_tuning.choices(),  # CPU conv backends, so a resumed run computes the same
            "specs": self.method.specs,
            "config": config_to_dict(self.cfg),
        }

    def save(self) -> Path:
        """Save a checkpoint of the current step (and ``best.safetensors`` if it is the best so far).

        Raises:
            TrainingError: the weights hold NaN/Inf (nothing is written: such a model is never saved).
            CheckpointError: the folder cannot be written; the previous checkpoints are kept.
        """
        path = checkpoint_path(self.checkpoint_dir, self.step)
        # With several processes every one calls save(); rank 0 collects their RNG states and method states
        # (each rank's own image pools) and writes.
        rank_rng = self.dist.gather(rng_state()) if self.dist.enabled else None
        rank_method = self.dist.gather(self.method.state_dict()) if self.dist.enabled else None
        if not self.dist.is_main:
            self._saved_step = self.step
            self._since_save.clear()
            self._since_save_count = 0
            return path
        bad = nonfinite_nets({**self.method.nets, **{f"ema.{n}": e.shadow for n, e in self.ema.items()}})
        if bad:
            name, tensors = next(iter(bad.items()))
            raise TrainingError(
                f"not saving a checkpoint at step {self.step}: net {name} has non-finite weights "
                f"({', '.join(tensors[:3])}); the earlier checkpoints in {self.checkpoint_dir} are kept. "
                "Lower the learning rate (optim.*.lr) or try train.precision=fp32, then continue with "
                "--resume auto"
            )
        improved = self._update_best()
        state = self.state_dict()
        if rank_rng is not None:
            state["rank_rng"] = rank_rng
        if rank_method is not None and any(rank_method):
            state["rank_method"] = rank_method
        path = save_checkpoint(state, path)
        if improved:
            save_best(path)
            log.info("new best %s=%.4g: %s", self.best["metric"], self.best["value"], path)
        prune_checkpoints(self.checkpoint_dir, self.cfg.train.keep_last)
        self._saved_step = self.step
        self._since_save.clear()
        self._since_save_count = 0
        log.info("saved checkpoint %s", path)
        return path

    def _update_best(self) -> bool:
        """Whether this step is the best so far by ``train.best_metric`` (higher is better for PSNR, SSIM
        and CLIP score, lower for FID, KID, LPIPS and loss terms)."""
        metric = self.cfg.train.best_metric
        if not metric:
            return False
        if self.best.get("metric") != metric:  # resumed with another best_metric: start over
            self.best = {"metric": metric, "value": None, "step": None}
        value = self.eval_metrics.get(self._best_key())
        if value is None and self._since_save_count and metric in self._since_save:
            value = self._since_save[metric] / self._since_save_count
        if value is None:
            pending = self.evaluator is not None and self._best_key() in self.evaluator.names
            if not pending and not self._warned_best and self._since_save_count:
                self._warned_best = True
                log.warning(
                    "train.best_metric %r is not a logged term (%s); best.safetensors is not kept",
                    metric,
                    ", ".join(sorted(self._since_save)),
                )
            return False
        value, best = float(value), self.best["value"]
        not_better = best is not None and (value <= best if higher_is_better(metric) else value >= best)
        if not math.isfinite(value) or not_better:
            return False
        self.best = {"metric": metric, "value": value, "step": self.step}
        return True

    def resume(self, resume: str) -> None:
        """Restore the full state from ``resume`` (a path, or ``auto`` for this run's newest checkpoint).

        With several processes rank 0 reads the file and sends the state to the others (no shared file
        system needed); a checkpoint written by any number of processes resumes on any other number.
        """
        found: tuple[Path, Any] | None | I2IError = None
        if self.dist.is_main:
            try:
                found = self._find_checkpoint(resume)
            except I2IError as exc:  # every process raises it, instead of waiting for a state
                found = exc
        found = self.dist.broadcast(found)
        if isinstance(found, I2IError):
            raise found
        if found is None:
            log.info("no checkpoint in %s; starting a new run", self.checkpoint_dir)
            seed_everything(distributed.rank_seed(self.cfg.seed, self.dist.rank))
            return
        path, state = found
        changed = self._check_compatible(path, state["config"])
        try:
            for name, net in self.method.nets.items():
                net.load_state_dict(state["nets"][name])
            for name, ema in self.ema.items():
                if name in state["ema"]:
                    ema.load_state_dict(state["ema"][name])
                else:  # EMA switched on for a resumed run: start it from the current weights
                    ema.shadow.load_state_dict(self.method.nets[name].state_dict())
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
        except (KeyError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise CheckpointError(f"{path}: its state does not fit the current nets ({first})") from exc
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        saved_world = int(state.get("world_size", 1))
        rescaled = saved_world != self.dist.world_size and self.cfg.train.lr_scaling != "none"
        if "optim" in changed or rescaled:
            self._apply_optim_config()
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.method.load_state_dict(self._method_state(state))
        conv_tuning.load_choices(state.get("conv_choices", {}))
        self._restore_rng(state)
        self.step = int(state["step"])
        self.batches_seen = int(state["batches_seen"])
        if saved_world != self.dist.world_size:
            old_epoch = max(1, len(self.train_set) // (self.cfg.data.batch_size * saved_world))
            self.batches_seen = convert_position(self.batches_seen, old_epoch, self.sampler.batches_per_epoch)
            log.warning(
                "%s was written by %d process(es), resumed on %d: the effective batch is now %d "
                "(data.batch_size x processes x train.grad_accum); the data position is kept by epoch",
                path,
                saved_world,
                self.dist.world_size,
                self.cfg.data.batch_size * self.dist.world_size * self.cfg.train.grad_accum,
            )
        counters = state.get("counters", {})
        self.nonfinite_steps = int(counters.get("nonfinite_steps", 0))
        self.nonfinite_streak = int(counters.get("nonfinite_streak", 0))
        self.amp_skipped = int(counters.get("amp_skipped", 0))
        self.bad_images = list(counters.get("bad_images", []))
        self.best = dict(state.get("best") or self.best)
        self._saved_step = self.step
        log.info("resumed from %s at step %d", path, self.step)

    def _find_checkpoint(self, resume: str) -> tuple[Path, Any] | None:
        """The checkpoint ``resume`` names and its state; None for ``auto`` when there is none yet."""
        if resume == "auto":
            return find_resumable(self.checkpoint_dir)
        path = Path(resume)
        try:
            state, _ = load_verified(path)
        except CheckpointError as exc:
            raise CheckpointError(
                f"{exc}; pass another checkpoint, or --resume auto for the newest complete one"
            ) from exc
        return path, state

    def _method_state(self, state: Mapping[str, Any]) -> Mapping[str, Any]:
        """This process's method state (image pools): its own if the world size is the same, else rank 0's."""
        per_rank = state.get("rank_method")
        if per_rank is not None and len(per_rank) == self.dist.world_size:
            return per_rank[self.dist.rank]
        return state["method"]

    def _restore_rng(self, state: Mapping[str, Any]) -> None:
        """This process's RNG states: its own when the world size is the same, else fresh per-rank seeds."""
        per_rank = state.get("rank_rng")
        if self.dist.rank == 0:
            set_rng_state(state["rng"])
        elif per_rank is not None and len(per_rank) == self.dist.world_size:
            set_rng_state(per_rank[self.dist.rank])
        else:
            seed_everything(distributed.rank_seed(self.cfg.seed + int(state["step"]), self.dist.rank))

    def _check_compatible(self, path: Path, saved: Mapping[str, Any]) -> set[str]:
        """Refuse a checkpoint whose ``RESUME_KEYS`` settings differ, unless allowed; returns the sections."""
        diffs = config_differences(saved, config_to_dict(self.cfg))
        if not diffs:
            return set()
        listed = "; ".join(d for _, d in diffs[:5]) + (
            f"; ... ({len(diffs)} in all)" if len(diffs) > 5 else ""
        )
        if self.cfg.train.allow_config_change:
            log.warning("%s: resuming with a changed config (train.allow_config_change): %s", path, listed)
            return {section for section, _ in diffs}
        raise CheckpointError(
            f"{path}: cannot resume: the checkpoint was trained with a different {listed} (use the config "
            "saved in the run folder, config.yaml, or --set train.allow_config_change=true to resume anyway)"
        )

    def _apply_optim_config(self) -> None:
        """After loading optimizers whose settings changed: use the config's lr, betas, weight decay."""
        for name, opt in self.optimizers.items():
            settings, scheduler = self._optim_settings(name), self.schedulers[name]
            scheduler.base_lrs = [settings.lr] * len(opt.param_groups)
            for group, factor in zip(opt.param_groups, scheduler.lr_lambdas, strict=True):
                group.update(
                    initial_lr=settings.lr,
                    lr=settings.lr * factor(scheduler.last_epoch),
                    betas=settings.betas,
                    weight_decay=settings.weight_decay,
                )


def _requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        net.requires_grad_(flag)
