from __future__ import annotations

from itertools import islice

import pytest

from i2i.data.sampler import ResumableBatchSampler, sample_seed
from i2i.errors import ConfigError


def test_each_epoch_is_a_permutation_without_remainder():
    sampler = ResumableBatchSampler(10, 3, seed=0)
    batches = list(islice(iter(sampler), 6))  # two epochs of 3 batches (drop last)
    first = [i for batch in batches[:3] for i, _ in batch]
    second = [i for batch in batches[3:] for i, _ in batch]
    assert len(set(first)) == 9 and len(set(second)) == 9
    assert first != second  # reshuffled each epoch


def test_starting_at_batch_k_continues_the_same_sequence():
    full = list(islice(iter(ResumableBatchSampler(10, 3, seed=7)), 8))
    resumed = list(islice(iter(ResumableBatchSampler(10, 3, seed=7, start_batch=5)), 3))
    assert resumed == full[5:8]


def test_seeds_differ_by_epoch_and_run_seed():
    assert sample_seed(0, 0, 1) != sample_seed(0, 1, 1) != sample_seed(1, 1, 1)
    assert sample_seed(3, 2, 1) == sample_seed(3, 2, 1)
    assert list(islice(iter(ResumableBatchSampler(10, 2, seed=0)), 1)) != list(
        islice(iter(ResumableBatchSampler(10, 2, seed=1)), 1)
    )


def test_unshuffled_order_and_errors():
    sampler = ResumableBatchSampler(4, 2, seed=0, shuffle=False)
    assert [[i for i, _ in b] for b in islice(iter(sampler), 2)] == [[0, 1], [2, 3]]
    with pytest.raises(ConfigError, match="data.batch_size: 8 is larger than the dataset"):
        ResumableBatchSampler(4, 8, seed=0)
    with pytest.raises(ConfigError, match="seed: must be a non-negative"):
        ResumableBatchSampler(4, 2, seed=-1)
