"""The GAN specializations, each a small :class:`~i2i.train.method.Method` on the shared core."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping
from typing import Any

from torch.utils.data import Dataset, default_collate

from i2i.config import Config
from i2i.errors import ConfigError
from i2i.methods.cyclegan import CycleGAN, CycleGANConfig
from i2i.methods.gan import GAN, GANConfig
from i2i.methods.pix2pix import Pix2Pix, Pix2PixConfig
from i2i.methods.srgan import SRGAN, SRGANConfig
from i2i.methods.text2image import TextToImageGAN, TextToImageGANConfig
from i2i.train import Trainer, TrainResult
from i2i.train.loop import seed_everything

METHODS: dict[str, Any] = {
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
    "gan": GAN,
    "text2image": TextToImageGAN,
    "srgan": SRGAN,
}


def method_class(name: str) -> Any:
    """The method class registered as ``name`` (``Pix2Pix`` for ``"pix2pix"``)."""
    if name not in METHODS:
        raise ConfigError(f"method: unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def build_method(cfg: Config) -> Any:
    """The method for ``cfg``, its nets initialised from ``cfg.seed`` (the same weights every time)."""
    cls = method_class(cfg.method)
    seed_everything(cfg.seed)
    return cls(cfg.model)


def first_items(dataset: Dataset, count: int) -> Mapping[str, Any] | None:
    """A batch of the first ``count`` items of ``dataset`` (the fixed batch for sample grids)."""
    n = min(count, len(dataset))
    return default_collate([dataset[i] for i in range(n)]) if n else None


def train(cfg: Config, *, resume: str | None = None, progress: bool | None = None) -> TrainResult:
    """Build the method and data that ``cfg`` describes and train it with the shared Trainer."""
    from i2i.train.evaluation import Evaluator  # its metrics take a while to import: only when training

    method = build_method(cfg)
    datasets = method_class(cfg.method).datasets
    train_set, test_set = datasets(cfg)
    evaluator = Evaluator.from_config(cfg, test_set, datasets=datasets, method=method)
    trainer = Trainer(
        cfg, method, train_set, sample_batch=first_items(test_set, 4), progress=progress, evaluator=evaluator
    )
    return trainer.fit(resume=resume)


def dry_run(cfg: Config) -> TrainResult:
    """One training step on a tiny synthetic dataset, in a temporary folder: checks a config end to end."""
    cfg = copy.deepcopy(cfg)
    batch = cfg.data.batch_size * cfg.train.grad_accum * cfg.train.n_critic
    cfg.data.source = "synthetic"
    cfg.data.synthetic.num_train = batch
    cfg.data.synthetic.num_test = 2  # an eval block (eval.every) needs two held-out images
    cfg.data.synthetic.size = cfg.data.crop_size
    cfg.data.num_workers = 0
    cfg.train.max_steps = 1
    with tempfile.TemporaryDirectory(prefix="i2i-dry-run-") as tmp:
        cfg.output_dir = tmp
        return train(cfg, progress=False)


__all__ = [
    "METHODS",
    "GAN",
    "GANConfig",
    "CycleGAN",
    "CycleGANConfig",
    "Pix2Pix",
    "Pix2PixConfig",
    "SRGAN",
    "SRGANConfig",
    "TextToImageGAN",
    "TextToImageGANConfig",
    "build_method",
    "dry_run",
    "first_items",
    "method_class",
    "train",
]
