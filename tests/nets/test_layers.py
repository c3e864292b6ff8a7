"""Norm factory, named blocks and the reference weight init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from i2i.errors import ConfigError
from i2i.nets.layers import conv_norm_act, init_weights, named_sequential, norm_layer


def test_norm_layer_kinds() -> None:
    batch = norm_layer("batch", 8)
    assert isinstance(batch, nn.BatchNorm2d) and batch.affine and batch.track_running_stats
    instance = norm_layer("instance", 8)
    assert isinstance(instance, nn.InstanceNorm2d)
    assert not instance.affine and not instance.track_running_stats  # as junyanz: no params, no state
    assert list(instance.state_dict()) == []
    assert isinstance(norm_layer("none", 8), nn.Identity)
    with pytest.raises(ConfigError, match="unknown norm 'layer'; choose one of batch, instance, none"):
        norm_layer("layer", 8)


def test_named_sequential_and_conv_norm_act() -> None:
    block = named_sequential(conv=nn.Conv2d(1, 1, 1), norm=None, act=nn.ReLU())
    assert [n for n, _ in block.named_children()] == ["conv", "act"]
    batch = conv_norm_act(3, 8, 4, 2, 1, norm="batch", act=nn.LeakyReLU(0.2))
    assert batch.conv.bias is None and isinstance(batch.norm, nn.BatchNorm2d)
    assert batch(torch.zeros(2, 3, 16, 16)).shape == (2, 8, 8, 8)
    assert conv_norm_act(3, 8, 1, norm="instance").conv.bias is not None  # reference: bias with instance norm
    plain = conv_norm_act(3, 8, 1, norm="none")
    assert plain.conv.bias is None and not hasattr(plain, "norm")
    assert conv_norm_act(3, 8, 1, norm="batch", bias=True).conv.bias is not None


@pytest.fixture
def big_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(256, 256, 3), nn.BatchNorm2d(20000), nn.ConvTranspose2d(64, 64, 4), nn.Linear(512, 512)
    )


def test_init_normal(big_net: nn.Module) -> None:
    init_weights(big_net, "normal", 0.02)
    conv, bn, convt, lin = big_net
    for layer in (conv, convt, lin):
        assert layer.weight.std().item() == pytest.approx(0.02, rel=0.02)
        assert abs(layer.weight.mean().item()) < 1e-3
        assert torch.count_nonzero(layer.bias) == 0
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=1e-3)
    assert bn.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.count_nonzero(bn.bias) == 0


def test_init_xavier_kaiming_orthogonal(big_net: nn.Module) -> None:
    conv = big_net[0]
    fan = 256 * 3 * 3
    init_weights(big_net, "xavier", 0.02)
    assert conv.weight.std().item() == pytest.approx(0.02 * math.sqrt(2 / (fan + fan)), rel=0.02)
    init_weights(big_net, "kaiming")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan), rel=0.02)
    small = nn.Conv2d(64, 64, 3)
    init_weights(small, "orthogonal", 0.5)
    rows = small.weight.reshape(64, -1)  # (out, in * kH * kW): orthogonal rows, scaled by the gain
    torch.testing.assert_close(rows @ rows.T, 0.25 * torch.eye(64), atol=1e-5, rtol=0)
    assert torch.count_nonzero(small.bias) == 0


def test_init_returns_module_and_rejects_unknown_kind() -> None:
    net = nn.Conv2d(1, 1, 1)
    assert init_weights(net) is net
    with pytest.raises(ConfigError, match="unknown init 'uniform'; choose one of normal, xavier, kaiming"):
        init_weights(net, "uniform")


def test_init_skips_affine_free_norms() -> None:
    init_weights(nn.Sequential(nn.InstanceNorm2d(4), nn.BatchNorm2d(4, affine=False)))  # nothing to init
