"""U-Net specifics: size checks, dropout placement, bias rules, widths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from i2i.errors import ConfigError
from i2i.nets import UNetGenerator, build


def test_input_size_must_be_a_multiple() -> None:
    net = UNetGenerator(num_downs=5, base_channels=4).eval()
    assert net.multiple == 32
    with pytest.raises(ValueError, match=r"divisible by 32, got 48x64"):
        net(torch.zeros(1, 3, 48, 64))
    assert net(torch.zeros(1, 3, 64, 96)).shape == (1, 3, 64, 96)  # non-square is fine


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="num_downs must be >= 5"):
        UNetGenerator(num_downs=3)
    with pytest.raises(ConfigError, match="must be >= 1"):
        UNetGenerator(base_channels=0)
    with pytest.raises(ConfigError, match="unknown norm"):
        UNetGenerator(norm="Batch")


@pytest.mark.parametrize(("num_downs", "levels"), [(5, []), (7, [4, 5]), (8, [4, 5, 6])])
def test_dropout_only_in_the_deep_middle_decoders(num_downs: int, levels: list[int]) -> None:
    # Reference: the num_downs - 5 blocks between the innermost and the four outer levels, width base * 8.
    net = UNetGenerator(num_downs=num_downs, base_channels=2, dropout=True)
    found = [i for i, block in enumerate(net.up) if any(isinstance(m, nn.Dropout) for m in block)]
    assert found == levels
    assert not any(isinstance(m, nn.Dropout) for m in UNetGenerator(num_downs=8, base_channels=2).modules())


def test_dropout_is_active_in_train_mode_only() -> None:
    net = UNetGenerator(num_downs=6, base_channels=4, dropout=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.equal(net.train()(x), net(x))
        assert torch.equal(net.eval()(x), net(x))


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_biases_follow_the_reference(norm: str) -> None:
    net = UNetGenerator(num_downs=6, base_channels=4, norm=norm)
    convs = {n: m for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    with_bias = {n for n, m in convs.items() if m.bias is not None}
    assert with_bias == (set(convs) if norm == "instance" else {"up.0.conv"})
    norms = [m for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))]
    assert len(norms) == (
        0 if norm == "none" else 2 * 6 - 3
    )  # no norm at the outermost/innermost downs, last up


def test_widths_and_reference_parameter_count() -> None:
    with torch.device("meta"):  # full-size pix2pix generator: shapes only, no memory or init cost
        net = build("unet_256")
    assert [b.conv.out_channels for b in net.down] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert sum(p.numel() for p in net.parameters()) == 54_413_955  # as junyanz unet_256, batch norm
