from __future__ import annotations

import pytest
import torch

from i2i.train.ema import EMA


def test_ema_averages_parameters_and_copies_buffers():
    net = torch.nn.BatchNorm1d(2)
    ema = EMA(net, decay=0.75)
    with torch.no_grad():
        net.weight.fill_(2.0)  # shadow starts at 1.0
        net.running_mean.fill_(5.0)
    ema.update(net)
    assert torch.allclose(ema.shadow.weight, torch.full((2,), 0.75 * 1.0 + 0.25 * 2.0))
    assert torch.equal(ema.shadow.running_mean, net.running_mean)
    assert not ema.shadow.training and not any(p.requires_grad for p in ema.shadow.parameters())


def test_ema_state_round_trip_and_bad_decay():
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, decay=0.5)
    other = EMA(torch.nn.Linear(2, 2), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.shadow.weight, ema.shadow.weight)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        EMA(net, decay=1.0)
