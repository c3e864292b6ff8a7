"""A resumable, seeded batch sampler: the data order is a pure function of (seed, batch number).

Every batch is a list of ``(index, sample_seed)`` keys; datasets use ``sample_seed`` for their random
augmentation, so a run resumed at batch ``k`` sees exactly the images and crops it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from i2i.errors import ConfigError


def _derive(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] & 0x7FFFFFFF)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 31-bit seed for one sample's augmentation, independent across (seed, epoch, index)."""
    return _derive(seed, epoch, index, 0)


class ResumableBatchSampler:
    """Endless shuffled batches (drop-last per epoch) that can start at any global batch number.

    Args:
        num_samples: Dataset length.
        batch_size: Samples per batch.
        seed: Run seed; epoch ``e`` uses the permutation drawn from ``(seed, e)``.
        start_batch: Global batch number to start from (batches already consumed).
        shuffle: Whether to permute the samples each epoch.

    Example:
        >>> batches = iter(ResumableBatchSampler(10, 4, seed=0, start_batch=3))
        >>> len(next(batches))
        4
    """

    def __init__(
        self, num_samples: int, batch_size: int, *, seed: int, start_batch: int = 0, shuffle: bool = True
    ) -> None:
        if seed < 0:
            raise ConfigError(f"seed: must be a non-negative integer, got {seed}")
        if num_samples < batch_size:
            raise ConfigError(
                f"data.batch_size: {batch_size} is larger than the dataset ({num_samples} samples); "
                "lower data.batch_size or add images"
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch
        self.shuffle = shuffle

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def epoch_order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_samples))
        generator = torch.Generator().manual_seed(_derive(self.seed, epoch, 1))
        return torch.randperm(self.num_samples, generator=generator).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, batch = divmod(self.start_batch, self.batches_per_epoch)
        while True:
            order = self.epoch_order(epoch)
            for b in range(batch, self.batches_per_epoch):
                chunk = order[b * self.batch_size : (b + 1) * self.batch_size]
                yield [(i, sample_seed(self.seed, epoch, i)) for i in chunk]
            epoch, batch = epoch + 1, 0
