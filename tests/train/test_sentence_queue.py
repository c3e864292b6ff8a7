"""The sentence queue: fills, then overwrites the oldest entries; round-trips through its state."""

from __future__ import annotations

import pytest
import torch

from i2i.train.sentence_queue import SentenceQueue


def test_fills_then_overwrites_the_oldest() -> None:
    queue = SentenceQueue(3)
    assert len(queue) == 0 and queue.embeddings is None
    queue.push(torch.ones(2, 4), torch.tensor([0, 1]))
    assert len(queue) == 2
    queue.push(torch.full((2, 4), 2.0), torch.tensor([2, 3]))  # one fills the queue, one overwrites id 0
    assert sorted(queue.ids.tolist()) == [1, 2, 3] and queue.embeddings.shape == (3, 4)
    queue.push(torch.zeros(5, 4), torch.arange(10, 15))  # more than it holds: the last three stay
    assert sorted(queue.ids.tolist()) == [12, 13, 14] and queue.embeddings.abs().sum() == 0


def test_push_detaches_and_does_not_change_earlier_tensors_in_place() -> None:
    queue = SentenceQueue(2)
    queue.push(torch.ones(2, 3, requires_grad=True), torch.tensor([0, 1]))
    old = queue.embeddings
    assert not old.requires_grad
    queue.push(torch.zeros(1, 3), torch.tensor([2]))
    assert old.sum() == 6  # a loss built from the old entries can still run backward


def test_size_zero_stays_empty() -> None:
    queue = SentenceQueue(0)
    queue.push(torch.ones(2, 3), torch.tensor([0, 1]))
    assert len(queue) == 0


def test_state_round_trip() -> None:
    queue = SentenceQueue(3)
    queue.push(torch.randn(4, 2), torch.arange(4))
    copy = SentenceQueue(3)
    copy.load_state_dict(queue.state_dict())
    assert torch.equal(copy.embeddings, queue.embeddings) and torch.equal(copy.ids, queue.ids)
    queue.push(torch.ones(1, 2), torch.tensor([9]))
    copy.push(torch.ones(1, 2), torch.tensor([9]))
    assert torch.equal(copy.embeddings, queue.embeddings) and copy.next == queue.next
    empty = SentenceQueue(3)
    empty.load_state_dict(SentenceQueue(3).state_dict())
    assert len(empty) == 0


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="queue size must be >= 0"):
        SentenceQueue(-1)
