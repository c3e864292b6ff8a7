"""PatchGAN specifics: output sizes per depth, bias rules, logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from i2i.nets import PatchDiscriminator, PixelDiscriminator


@pytest.mark.parametrize(("num_layers", "size", "out"), [(1, 32, 14), (2, 32, 6), (3, 64, 6), (4, 64, 2)])
def test_output_size(num_layers: int, size: int, out: int) -> None:
    net = PatchDiscriminator(base_channels=4, num_layers=num_layers).eval()
    assert net(torch.zeros(1, 3, size, size)).shape == (1, 1, out, out)


def test_widths_and_biases() -> None:
    net = PatchDiscriminator(base_channels=4, num_layers=5, norm="batch")
    assert [b.conv.out_channels for b in net.blocks] == [4, 8, 16, 32, 32, 32]  # min(2**n, 8) * base
    assert [b.conv.stride[0] for b in net.blocks] == [2, 2, 2, 2, 2, 1]
    assert net.blocks[0].conv.bias is not None and net.head.bias is not None
    assert all(b.conv.bias is None for b in net.blocks[1:])
    assert all(b.conv.bias is not None for b in PatchDiscriminator(norm="instance").blocks)


def test_outputs_are_logits() -> None:
    torch.manual_seed(0)
    net = PatchDiscriminator(base_channels=4, norm="none")
    nn.init.constant_(net.head.bias, 5.0)  # a sigmoid would squash this below 1
    assert net(torch.zeros(1, 3, 32, 32)).max() > 1


def test_pixel_biases_follow_the_reference() -> None:
    assert PixelDiscriminator(norm="batch").head.bias is None  # reference: bias=use_bias on the last conv too
    assert PixelDiscriminator(norm="instance").head.bias is not None
    assert PixelDiscriminator(norm="batch").blocks[0].conv.bias is not None
