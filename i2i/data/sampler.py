"""A resumable, seeded batch sampler: the data order is a pure function of (seed, batch number).

Every batch is a list of ``(index, sample_seed)`` keys; datasets use ``sample_seed`` for their random
augmentation, so a run resumed at batch ``k`` sees exactly the images and crops it would have seen.

With several processes (``world_size > 1``) it is also the distributed sampler: every process draws the
same per-epoch permutation from ``(seed, epoch)``, a global batch is ``batch_size * world_size``
consecutive samples of it, and process ``rank`` takes its own ``batch_size`` of them, so the processes
never see the same sample in an epoch and a sample gets the same augmentation seed on any world size.
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
        rank: This process's rank among ``world_size`` processes.
        world_size: Number of processes sharing each global batch.

    Example:
        >>> batches = iter(ResumableBatchSampler(10, 4, seed=0, start_batch=3))
        >>> len(next(batches))
        4
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        seed: int,
        start_batch: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if seed < 0:
            raise ConfigError(f"seed: must be a non-negative integer, got {seed}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        if num_samples < batch_size * world_size:
            processes = f" times {world_size} processes" if world_size > 1 else ""
            raise ConfigError(
                f"data.batch_size: {batch_size}{processes} is larger than the dataset ({num_samples} "
                "samples); lower data.batch_size or add images"
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size

    @property
    def batches_per_epoch(self) -> int:
        """Global batches (of ``batch_size * world_size`` samples) per epoch; the remainder is dropped."""
        return self.num_samples // (self.batch_size * self.world_size)

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
                start = (b * self.world_size + self.rank) * self.batch_size
                chunk = order[start : start + self.batch_size]
                yield [(i, sample_seed(self.seed, epoch, i)) for i in chunk]
            epoch, batch = epoch + 1, 0


def convert_position(batches_seen: int, batches_per_epoch: int, new_batches_per_epoch: int) -> int:
    """A data position counted in another world size's global batches, in this one's.

    The epoch is kept, and the position within it rounded down, so a run resumed on a different number
    of processes goes on in the same epoch (it may see a few samples of that epoch twice).
    """
    epoch, within = divmod(batches_seen, batches_per_epoch)
    return epoch * new_batches_per_epoch + within * new_batches_per_epoch // batches_per_epoch
