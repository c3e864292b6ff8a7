"""In-training evaluation: every ``eval.every`` steps, translate the held-out images and compute metrics.

The Trainer calls :meth:`Evaluator.evaluate` with its evaluation nets (the EMA copies when EMA is on), logs
the results as ``eval/<metric>`` (TensorBoard and ``metrics.jsonl``) and can keep ``best.safetensors`` by
one of them (``train.best_metric: fid``; lower is better for FID/KID/LPIPS, higher for PSNR/SSIM/CLIP score).

What is compared:

- paired data (Pix2Pix): ``G(a)`` with its target ``b``: FID/KID between the outputs and the targets, and
  LPIPS/PSNR/SSIM image by image;
- unpaired data (CycleGAN): ``G(a)`` over the source domain's held-out images against the target domain's
  held-out images (every one of them, in order, not the random partners of training), FID/KID only;
- other methods say it themselves with an ``evaluation_batch(batch, nets)`` method returning
  ``{"fake": (B, C, H, W) in [-1, 1], "real": tensor or None, "paired": bool, "texts": prompts or None}``.

The reference images' features are extracted once, at the first evaluation. Evaluation runs under
``torch.random.fork_rng`` and uses no global random state, so a run with evaluation trains exactly like one
without, and resumes exactly.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate

from i2i.config import Config, EvalConfig
from i2i.data.images import image_to_tensor, read_image
from i2i.data.synthetic_domains import SyntheticUnpairedDataset, render_scene, scene_seed
from i2i.data.unpaired import UnpairedDataset
from i2i.errors import ConfigError
from i2i.metrics.base import METRIC_NAMES, PAIRED_METRICS, MetricSet, to_uint8
from i2i.metrics.build import build_metrics, check_options
from i2i.metrics.distances import FeatureDistances

log = logging.getLogger(__name__)


class _DomainImages(Sequence):
    """The target-domain images of an unpaired dataset, each once, in order, with the held-out transform."""

    def __init__(self, dataset: UnpairedDataset | SyntheticUnpairedDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        d = self.dataset
        return len(d.files_b) if isinstance(d, UnpairedDataset) else d.num

    def __getitem__(self, index: int) -> Tensor:  # type: ignore[override]
        d = self.dataset
        if isinstance(d, UnpairedDataset):
            image = read_image(d.files_b[index], min_size=d.min_size)
        else:
            image, _ = render_scene(scene_seed(d.seed, d.split, "B", index), d.size, "B")
        return image_to_tensor(image) if d.transform is None else d.transform(image, image, index)[0]


@dataclass
class EvalData:
    """What an evaluation runs on.

    Attributes:
        inputs: Dataset whose items hold the generator input ``"a"`` (and target ``"b"`` when paired).
        count: How many of its items to evaluate (the first ones).
        paired: Whether ``b`` is the target of ``a``.
        references: Unpaired data: the target domain's images, (3, H, W) in [-1, 1]; None when paired.
    """

    inputs: Dataset
    count: int
    paired: bool
    references: Sequence[Tensor] | None = None

    @classmethod
    def from_dataset(cls, dataset: Dataset, num_samples: int = 0) -> EvalData:
        """Paired unless ``dataset`` is of an unpaired kind; the first ``num_samples`` items (0: all)."""
        if isinstance(dataset, (UnpairedDataset, SyntheticUnpairedDataset)):
            num_a = len(dataset.files_a) if isinstance(dataset, UnpairedDataset) else dataset.num
            references: Sequence[Tensor] = _DomainImages(dataset)
            if num_samples:
                references = [references[i] for i in range(min(num_samples, len(references)))]
            return cls(dataset, min(num_a, num_samples or num_a), False, references)
        count = len(dataset)  # type: ignore[arg-type]
        return cls(dataset, min(count, num_samples or count), True)


def _result_names(metrics: Sequence[str]) -> tuple[str, ...]:
    return tuple(n for m in metrics for n in (("kid", "kid_std") if m == "kid" else (m,)))


def generator_name(specs: Mapping[str, Mapping[str, Any]]) -> str:
    """The net that translates a -> b: the one marked ``AtoB``, else the first (the default for inference)."""
    return next((n for n, s in specs.items() if s.get("direction") == "AtoB"), next(iter(specs)))


class Evaluator:
    """Computes the ``eval`` block's metrics on held-out data with the current nets.

    Args:
        cfg: The ``eval`` settings (``every``, ``metrics``, ``batch_size``...).
        data: The held-out data.
        metrics: The metrics, or a function of the device that builds them (see
            :func:`i2i.metrics.build.build_metrics`); :meth:`prepare` calls it, so that only the process that
            evaluates loads the networks.

    Attributes:
        names: The metric names the results will hold (``fid``, ``kid``, ``kid_std``, ``psnr``...).
    """

    def __init__(
        self, cfg: EvalConfig, data: EvalData, metrics: MetricSet | Callable[[torch.device], MetricSet]
    ) -> None:
        bad = [n for n in cfg.metrics if n in PAIRED_METRICS]
        if bad and not data.paired:
            raise ConfigError(
                f"eval.metrics: {', '.join(bad)} compare each output with its own target, but the evaluation "
                "data are unpaired; use fid and/or kid"
            )
        self.cfg, self.data = cfg, data
        self.metrics = metrics if isinstance(metrics, MetricSet) else None
        self._build = None if isinstance(metrics, MetricSet) else metrics
        self.names = self.metrics.names if self.metrics else _result_names(cfg.metrics)
        self._references_done = False

    def prepare(self, device: torch.device) -> None:
        """Build the metrics (load Inception, LPIPS...) on ``device`` now, so that missing weights stop the
        run before training rather than at the first evaluation."""
        if self.metrics is None:
            assert self._build is not None
            self.metrics = self._build(device)

    def due(self, step: int, done: bool) -> bool:
        """Whether to evaluate after ``step`` (every ``eval.every`` steps, and at the end)."""
        every = self.cfg.every
        return every > 0 and (done or step % every == 0)

    def _batches(self) -> Iterator[dict[str, Any]]:
        size = self.cfg.batch_size
        for start in range(0, self.data.count, size):
            indices = range(start, min(start + size, self.data.count))
            yield default_collate([self.data.inputs[i] for i in indices])

    @torch.no_grad()
    def evaluate(
        self,
        method: Any,
        nets: Mapping[str, nn.Module],
        device: torch.device,
        *,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> dict[str, float]:
        """Run the nets over the held-out data and compute the metrics.

        Args:
            method: The method (its ``specs`` name the a -> b generator; or its ``evaluation_batch``).
            nets: The nets to evaluate, EMA copies substituted.
            device: Where the nets are.
            autocast: The Trainer's precision context for the generator's forward pass.
        """
        self.prepare(device)
        assert self.metrics is not None
        modes = {name: net.training for name, net in nets.items()}
        devices = [device] if device.type == "cuda" else []
        try:
            for net in nets.values():
                net.eval()
            with torch.random.fork_rng(devices=devices):
                self.metrics.reset(keep_real=self._references_done)
                if self.data.references is not None and not self._references_done:
                    self._add_references()
                for batch in self._batches():
                    self._add_batch(method, nets, batch, device, autocast)
                results = self.metrics.compute()
        finally:
            for name, net in nets.items():
                net.train(modes[name])
        self._references_done = True
        return results

    def _add_references(self) -> None:
        refs = self.data.references
        assert refs is not None and self.metrics is not None
        for start in range(0, len(refs), self.cfg.batch_size):
            chunk = torch.stack([refs[i] for i in range(start, min(start + self.cfg.batch_size, len(refs)))])
            self.metrics.update(real=to_uint8(chunk), paired=False)

    def _add_batch(
        self,
        method: Any,
        nets: Mapping[str, nn.Module],
        batch: dict[str, Any],
        device: torch.device,
        autocast: Callable[[], contextlib.AbstractContextManager],
    ) -> None:
        batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
        texts = None
        with autocast():
            if hasattr(method, "evaluation_batch"):
                out = method.evaluation_batch(batch, nets)
                fake, real = out["fake"], out.get("real")
                paired, texts = bool(out.get("paired", True)), out.get("texts")
            else:
                fake = nets[generator_name(method.specs)](batch["a"])
                real, paired = (batch["b"], True) if self.data.paired else (None, False)
        assert self.metrics is not None
        fake_u8 = to_uint8(fake.float())
        real_u8 = to_uint8(real.float()) if real is not None else None
        for metric in self.metrics.metrics:
            # A fixed reference set (FID/KID) is kept from the first evaluation: only its fakes are new.
            keep = isinstance(metric, FeatureDistances) and self._references_done
            if metric.paired:
                if not paired:
                    raise ConfigError(f"eval.metrics: {', '.join(metric.names)} need paired data")
                metric.update(fake_u8, real_u8)
            else:
                metric.update(fake_u8, None if keep else real_u8, texts=texts)

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        test_set: Dataset,
        *,
        datasets: Callable[[Config], tuple[Dataset, Dataset]] | None = None,
        metrics: MetricSet | None = None,
        method: Any = None,
    ) -> Evaluator | None:
        """The evaluator the ``eval`` block describes, or None when ``eval.every`` is 0.

        Args:
            cfg: The run config.
            test_set: The method's held-out set (``eval.source: test``).
            datasets: The method's ``datasets(cfg)`` function, to build ``eval.source: folder`` data.
            metrics: Metrics to use instead of building them (tests).
            method: The method, to check that it can be evaluated (a translation method, or one with an
                ``evaluation_batch``).

        Raises:
            ConfigError: a bad ``eval`` setting, or ``train.best_metric`` naming a metric not computed.
        """
        ecfg = cfg.eval
        best = cfg.train.best_metric.removeprefix("eval/")
        if ecfg.every < 0:
            raise ConfigError(f"eval.every must be >= 0, got {ecfg.every}")
        if ecfg.every == 0:
            if best in METRIC_NAMES:
                raise ConfigError(
                    f"train.best_metric: {best} is an evaluation metric; turn evaluation on with eval.every=N"
                )
            return None
        check_options(ecfg)
        if best in METRIC_NAMES and best not in ecfg.metrics:
            raise ConfigError(
                f"train.best_metric: {best} is not among eval.metrics ({', '.join(ecfg.metrics)})"
            )
        if ecfg.num_samples < 0:
            raise ConfigError(f"eval.num_samples must be >= 0, got {ecfg.num_samples}")
        dataset = test_set
        if ecfg.source == "folder":
            if not ecfg.folder:
                raise ConfigError(
                    "eval.folder: set the dataset folder to evaluate on (eval.source is folder)"
                )
            if datasets is None:
                raise ConfigError("eval.source: folder needs the method's dataset builder")
            other = copy.deepcopy(cfg)
            split = ecfg.split or cfg.data.test_split
            other.data.source, other.data.root = "folder", ecfg.folder
            other.data.train_split = other.data.test_split = split
            dataset = datasets(other)[1]
        elif ecfg.source != "test":
            raise ConfigError(f"eval.source: {ecfg.source!r}; choose test or folder")
        data = EvalData.from_dataset(dataset, ecfg.num_samples)
        if method is not None and not hasattr(method, "evaluation_batch") and "a" not in data.inputs[0]:
            raise ConfigError(
                f"eval: method {cfg.method} cannot be evaluated yet: only methods whose batches hold an "
                "input 'a' and a target 'b', or that define evaluation_batch, can; set eval.every=0"
            )
        if data.count < 2:
            raise ConfigError(
                f"eval: {data.count} held-out image(s); FID and the other metrics need at least 2"
            )
        return cls(ecfg, data, metrics or (lambda device: build_metrics(ecfg, device=device)))


__all__ = ["EvalData", "Evaluator", "generator_name"]
