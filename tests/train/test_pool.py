from __future__ import annotations

import torch

from i2i.train.pool import ImagePool


def test_pool_fills_then_mixes_history():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as is
    out = pool.query(torch.full((64, 1, 1, 1), 9.0))
    old = (out < 9).sum().item()
    assert 0 < old <= 4  # some old images come back (each at most once), most are new
    assert len(pool.images) == 4


def test_pool_state_round_trip_gives_identical_choices():
    torch.manual_seed(1)
    a = ImagePool(3)
    a.query(torch.randn(5, 2, 2, 2))
    b = ImagePool(50)
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 2, 2, 2)
    state = torch.get_rng_state()
    out_a = a.query(x)
    torch.set_rng_state(state)
    out_b = b.query(x)
    assert torch.equal(out_a, out_b)


def test_empty_and_disabled_pools():
    empty = ImagePool(5)
    restored = ImagePool(5)
    restored.load_state_dict(empty.state_dict())
    assert restored.images == []
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = ImagePool(0).query(x)
    assert torch.equal(out, x) and not out.requires_grad
