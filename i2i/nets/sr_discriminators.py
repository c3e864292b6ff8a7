"""Discriminators of the super-resolution GANs; both output logits (no sigmoid).

- :class:`VGGStyleDiscriminator` (SRGAN, Ledig et al. 2017, Fig. 4; also ESRGAN's): eight 3x3 convs,
  stride 2 every other one, batch norm and LeakyReLU, then two dense layers to one logit per image.
- :class:`UNetDiscriminatorSN` (Real-ESRGAN, Wang et al. 2021): a spectrally normalised U-Net that gives one
  logit per pixel, in Real-ESRGAN's key layout (``conv0`` ... ``conv9``, ``weight_orig``/``weight_u``/
  ``weight_v``) so its ``RealESRGAN_x4plus_netD.pth`` loads key for key.

Example:
    >>> import torch
    >>> VGGStyleDiscriminator(base_channels=8)(torch.rand(2, 3, 96, 96)).shape
    torch.Size([2])
    >>> UNetDiscriminatorSN(base_channels=8)(torch.rand(1, 3, 32, 32)).shape
    torch.Size([1, 1, 32, 32])
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from i2i.errors import ConfigError
from i2i.nets.layers import check_norm, conv_norm_act
from i2i.nets.registry import register


@register("srgan_d")
class VGGStyleDiscriminator(nn.Module):
    """SRGAN's discriminator: one real/fake logit per image.

    ``features``: conv(k3, s1) + LeakyReLU(0.2), then seven conv-norm-LeakyReLU blocks with strides
    2, 1, 2, 1, 2, 1, 2 and widths ``base_channels * (1, 2, 2, 4, 4, 8, 8)``; ``head``: adaptive average
    pooling to ``pool_size`` x ``pool_size``, dense ``hidden_dim``, LeakyReLU(0.2), dense 1.

    The paper feeds fixed 96x96 crops, which the four stride-2 convs bring to 6x6 before the dense layer;
    the adaptive pooling is the identity there and lets other crop sizes (ESRGAN's 128, tests' 32) through.

    Args:
        in_channels: Image channels.
        base_channels: Width of the first convs (64 in the paper).
        norm: ``batch`` (the paper), ``instance`` or ``none``.
        pool_size: Side of the feature map the dense layer sees (6 = the paper's 96 / 16).
        hidden_dim: Width of the first dense layer (1024 in the paper).

    Shape:
        (B, C, H, W), H and W at least 16 -> (B,) logits.
    """

    task = "discriminate"  # read by i2i.hub.task_of

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        norm: str = "batch",
        pool_size: int = 6,
        hidden_dim: int = 1024,
    ) -> None:
        super().__init__()
        check_norm(norm)
        if min(in_channels, base_channels, pool_size, hidden_dim) < 1:
            raise ConfigError("srgan_d: in_channels, base_channels, pool_size and hidden_dim must be >= 1")
        widths = [base_channels * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        blocks = [conv_norm_act(in_channels, widths[0], 3, 1, 1, act=nn.LeakyReLU(0.2), bias=True)]
        for i in range(1, 8):
            stride = 2 if i % 2 else 1
            blocks.append(conv_norm_act(widths[i - 1], widths[i], 3, stride, 1, norm, nn.LeakyReLU(0.2)))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(pool_size),
            nn.Flatten(),  # (B, C * pool * pool)
            nn.Linear(widths[-1] * pool_size * pool_size, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(1)


@register("unet_d_sn")
class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral norm: a realness logit for every pixel.

    Three stride-2 4x4 convs down, three bilinear x2 upsamplings each followed by a 3x3 conv (with skip
    additions from the encoder), two more 3x3 convs and a 3x3 conv to one channel. All convs but the first
    and last are spectrally normalised (``torch.nn.utils.spectral_norm``, whose ``weight_orig``/``weight_u``
    /``weight_v`` keys are the reference's).

    Args:
        in_channels: Image channels.
        base_channels: Width of the first conv (64 in Real-ESRGAN).
        skip_connection: Add encoder features to the decoder's (True in every Real-ESRGAN config; the
            switch has no weights, so a checkpoint cannot tell).

    Shape:
        (B, C, H, W), H and W divisible by 8 -> (B, 1, H, W) logits.
    """

    task = "discriminate"  # read by i2i.hub.task_of

    def __init__(self, in_channels: int = 3, base_channels: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        f = base_channels
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(in_channels, f, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ConfigError(f"unet_d_sn: image sides must be multiples of 8, got {tuple(x.shape[-2:])}")
        x0 = _lrelu(self.conv0(x))
        x1 = _lrelu(self.conv1(x0))  # (B, 2f, H/2, W/2)
        x2 = _lrelu(self.conv2(x1))  # (B, 4f, H/4, W/4)
        x3 = _lrelu(self.conv3(x2))  # (B, 8f, H/8, W/8)
        x4 = _lrelu(self.conv4(_up2(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = _lrelu(self.conv5(_up2(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = _lrelu(self.conv6(_up2(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = _lrelu(self.conv8(_lrelu(self.conv7(x6))))
        return self.conv9(out)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


def _up2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
