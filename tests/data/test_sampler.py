from __future__ import annotations

from itertools import islice

import pytest

from i2i.data.sampler import ResumableBatchSampler, convert_position, sample_seed
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


def test_ranks_split_each_global_batch_without_overlap():
    world = 3
    ranks = [
        list(islice(iter(ResumableBatchSampler(20, 2, seed=5, rank=r, world_size=world)), 6))
        for r in range(world)
    ]
    single = list(islice(iter(ResumableBatchSampler(20, 2 * world, seed=5)), 6))
    for step in range(6):
        together = [key for r in range(world) for key in ranks[r][step]]
        assert together == single[step]  # rank r holds its slice of the global batch, seeds included
    epoch = [i for r in range(world) for batch in ranks[r][:3] for i, _ in batch]
    assert len(epoch) == len(set(epoch)) == 18  # 20 // 6 = 3 global batches per epoch, no repeats


def test_one_process_is_the_plain_sampler():
    plain = list(islice(iter(ResumableBatchSampler(10, 3, seed=2, start_batch=4)), 5))
    assert plain == list(islice(iter(ResumableBatchSampler(10, 3, seed=2, start_batch=4, world_size=1)), 5))


def test_position_converts_between_world_sizes_by_epoch():
    assert convert_position(7, 5, 10) == 14  # epoch 1, 2/5 through -> epoch 1, 4/10 through
    assert convert_position(7, 5, 2) == 2  # epoch 1, 2/5 -> 0/2: the same epoch, rounded down
    with pytest.raises(ConfigError, match="data.batch_size: 4 times 3 processes is larger than the dataset"):
        ResumableBatchSampler(10, 4, seed=0, world_size=3)
