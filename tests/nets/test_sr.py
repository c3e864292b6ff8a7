"""SR-specific checks beyond the shared model tests: SRResNet's layout, ICNR start, discriminator shapes."""

from __future__ import annotations

import pytest
import torch

from i2i.errors import ConfigError
from i2i.nets import SRResNet, UNetDiscriminatorSN, VGGStyleDiscriminator


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srresnet_upsamples_by_pixel_shuffle_steps(scale: int) -> None:
    net = SRResNet(base_channels=8, num_blocks=2, scale=scale)
    assert len(net.upsample) == (1 if scale == 3 else scale // 2)
    assert net(torch.rand(1, 3, 6, 7)).shape == (1, 3, 6 * scale, 7 * scale)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 2 * 2 + 1  # as in the paper
    with pytest.raises(ConfigError, match="scale must be 2, 3 or 4"):
        SRResNet(scale=8)


def test_paper_size_networks_have_the_expected_parameter_counts() -> None:
    # Counted by hand from Fig. 4 of the paper: SRResNet 16 blocks x 64 channels with 9x9 head and tail; D's
    # dense layer alone is 512 * 6 * 6 * 1024 of its 23.6 M weights.
    with torch.device("meta"):
        g, d = SRResNet(), VGGStyleDiscriminator()
    assert sum(p.numel() for p in g.parameters()) == 1_548_547
    assert sum(p.numel() for p in d.parameters()) == 23_563_649


def test_upsampling_starts_as_nearest_neighbour_without_checkerboard() -> None:
    torch.manual_seed(0)
    net = SRResNet(base_channels=4, num_blocks=1, scale=2)
    conv, shuffle = net.upsample[0][0], net.upsample[0][1]
    y = shuffle(conv(torch.rand(1, 4, 5, 5)))  # (1, 4, 10, 10)
    for dy, dx in [(0, 1), (1, 0), (1, 1)]:
        torch.testing.assert_close(y[..., dy::2, dx::2], y[..., ::2, ::2])


def test_discriminators_give_one_logit_per_image_or_per_pixel() -> None:
    d = VGGStyleDiscriminator(base_channels=4)
    assert d(torch.rand(2, 3, 96, 96)).shape == (2,)  # the paper's 96 px crops: 6x6 before the dense layer
    assert d(torch.rand(2, 3, 128, 128)).shape == (2,)  # other crops pass through the adaptive pooling
    unet = UNetDiscriminatorSN(base_channels=4)
    assert unet(torch.rand(1, 3, 24, 40)).shape == (1, 1, 24, 40)
    with pytest.raises(ConfigError, match="multiples of 8"):
        unet(torch.rand(1, 3, 20, 20))
