"""Super-resolution generators in the layouts of BasicSR / Real-ESRGAN, so their weights load key for key.

- :class:`RRDBNet` (ESRGAN, Wang et al. 2018; RealESRGAN_x4plus/x2plus): residual-in-residual dense
  blocks, nearest-neighbour x2 upsampling twice; for x2 and x1 the input is pixel-unshuffled first, as
  Real-ESRGAN does.
- :class:`SRVGGNetCompact` (realesr-general-x4v3, realesr-animevideov3): a plain conv stack with one
  PixelShuffle and a nearest-neighbour skip.
- :class:`MSRResNet` (BasicSR's SRResNet without batch norm): residual blocks, PixelShuffle, bilinear skip.
- :class:`SRResNet` (Ledig et al. 2017, the SRGAN paper's generator): 9x9 head, residual blocks with batch
  norm and PReLU, a long skip, PixelShuffle x2 steps, 9x9 tail.

All take and give images in [0, 1] (the BasicSR convention), not [-1, 1]. The discriminators live in
:mod:`i2i.nets.sr_discriminators`.

Example:
    >>> import torch
    >>> net = RRDBNet(base_channels=8, num_blocks=1, growth_channels=4, scale=4)
    >>> net(torch.rand(1, 3, 8, 8)).shape
    torch.Size([1, 3, 32, 32])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.layers import check_norm, norm_layer
from i2i.nets.registry import register


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing all earlier outputs; output scaled by 0.2 and added to the input."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        for i in range(5):
            out = channels if i == 4 else growth
            setattr(self, f"conv{i + 1}", nn.Conv2d(channels + i * growth, out, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for i in range(1, 5):
            features.append(self.lrelu(getattr(self, f"conv{i}")(torch.cat(features, 1))))
        return self.conv5(torch.cat(features, 1)) * 0.2 + x


class RRDB(nn.Module):
    """Three dense blocks with a scaled (0.2) residual around them."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(channels, growth)
        self.rdb2 = ResidualDenseBlock(channels, growth)
        self.rdb3 = ResidualDenseBlock(channels, growth)

    def forward(self, x: Tensor) -> Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


@register("rrdbnet")
class RRDBNet(nn.Module):
    """ESRGAN's generator.

    Args:
        in_channels: Image channels.
        out_channels: Output channels.
        base_channels: Feature width (``num_feat``).
        num_blocks: RRDB blocks (23 in ESRGAN / RealESRGAN_x4plus, 6 in the anime model).
        growth_channels: Dense-block growth (``num_grow_ch``).
        scale: 4, 2 or 1; for 2 and 1 the input is pixel-unshuffled by 2 or 4 so the body always runs at
            1/4 of the output resolution.

    Shape:
        (B, C, H, W) in [0, 1] -> (B, C_out, H * scale, W * scale); H and W divisible by ``self.multiple``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = 23,
        growth_channels: int = 32,
        scale: int = 4,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ConfigError(f"rrdbnet: scale must be 1, 2 or 4, got {scale}")
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.multiple = self.unshuffle
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle**2, base_channels, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(base_channels, growth_channels) for _ in range(num_blocks)))
        self.conv_body = nn.Conv2d(base_channels, base_channels, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(base_channels, base_channels, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(base_channels, base_channels, 3, 1, 1)
        self.conv_hr = nn.Conv2d(base_channels, base_channels, 3, 1, 1)
        self.conv_last = nn.Conv2d(base_channels, out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x  # (B, C*r*r, H/r, W/r)
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


_ACTIVATIONS = ("prelu", "relu", "leakyrelu")


@register("srvgg_compact")
class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact SR net: conv/activation stack, PixelShuffle, plus nearest upsampled input.

    Args:
        in_channels: Image channels.
        out_channels: Output channels.
        base_channels: Feature width.
        num_convs: Hidden convs (32 in realesr-general-x4v3, 16 in realesr-animevideov3).
        scale: Upscaling factor.
        activation: ``prelu`` (the released models), ``relu`` or ``leakyrelu`` (slope 0.1).

    Shape:
        (B, C, H, W) in [0, 1] -> (B, C_out, H * scale, W * scale).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_convs: int = 16,
        scale: int = 4,
        activation: str = "prelu",
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"srvgg_compact: activation must be one of {', '.join(_ACTIVATIONS)}")
        self.scale = scale
        self.multiple = 1

        def act() -> nn.Module:
            if activation == "prelu":
                return nn.PReLU(num_parameters=base_channels)
            return nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.1)

        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 3, 1, 1), act()]
        for _ in range(num_convs):
            layers += [nn.Conv2d(base_channels, base_channels, 3, 1, 1), act()]
        layers.append(nn.Conv2d(base_channels, out_channels * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv with an identity skip and no batch norm (EDSR / MSRResNet)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


@register("msrresnet")
class MSRResNet(nn.Module):
    """BasicSR's modified SRResNet: no batch norm, PixelShuffle upsampling, a bilinear skip.

    Args:
        in_channels: Image channels.
        out_channels: Output channels.
        base_channels: Feature width.
        num_blocks: Residual blocks (16 as in SRResNet).
        scale: 2, 3 or 4.

    Shape:
        (B, C, H, W) in [0, 1] -> (B, C_out, H * scale, W * scale).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = 16,
        scale: int = 4,
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ConfigError(f"msrresnet: scale must be 2, 3 or 4, got {scale}")
        self.scale = scale
        self.multiple = 1
        self.conv_first = nn.Conv2d(in_channels, base_channels, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(base_channels) for _ in range(num_blocks)))
        step = 2 if scale == 4 else scale
        self.upconv1 = nn.Conv2d(base_channels, base_channels * step * step, 3, 1, 1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(base_channels, base_channels * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(step)
        self.conv_hr = nn.Conv2d(base_channels, base_channels, 3, 1, 1)
        self.conv_last = nn.Conv2d(base_channels, out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.scale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


@torch.no_grad()
def icnr_(conv: nn.Conv2d, r: int) -> nn.Conv2d:
    """ICNR initialisation (Aitken et al. 2017) of a conv feeding ``PixelShuffle(r)``, in place.

    The r*r sub-pixel filters of each output channel start equal, so the shuffled output starts as a
    nearest-neighbour upsampling of one conv: no checkerboard pattern to unlearn first.
    """
    out_channels = conv.out_channels // (r * r)
    weight = conv.weight[:: r * r].clone()  # (C, C_in, k, k): one filter per output channel
    conv.weight.copy_(weight.repeat_interleave(r * r, dim=0))  # PixelShuffle reads channel c * r * r + i
    if conv.bias is not None:
        conv.bias.copy_(conv.bias.view(out_channels, r * r)[:, :1].expand(-1, r * r).reshape(-1))
    return conv


class ResidualBlockBN(nn.Module):
    """SRResNet's block: conv3x3-norm-PReLU-conv3x3-norm plus the identity (Ledig et al. 2017, Fig. 4)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        bias = norm != "batch"  # BatchNorm's shift makes a conv bias redundant
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=bias)
        self.norm1 = norm_layer(norm, channels)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=bias)
        self.norm2 = norm_layer(norm, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


@register("srresnet")
class SRResNet(nn.Module):
    """The SRGAN paper's generator (Ledig et al. 2017, Fig. 4), trained alone with MSE it is "SRResNet".

    ``conv_first`` (9x9, PReLU) -> ``num_blocks`` residual blocks (conv-BN-PReLU-conv-BN + skip) ->
    ``conv_body`` (3x3, BN) plus the long skip from ``conv_first`` -> upsampling steps (3x3 conv to 4x the
    channels, PixelShuffle x2, PReLU; one x3 step for scale 3) -> ``conv_last`` (9x9). There is no output
    activation and no interpolated-input skip, as in the paper. The upsampling convs start ICNR-initialised
    (:func:`icnr_`), which the paper does not specify: it avoids the checkerboard artefacts of PixelShuffle.

    Args:
        in_channels: Image channels.
        out_channels: Output channels.
        base_channels: Feature width (64 in the paper).
        num_blocks: Residual blocks (16 in the paper).
        scale: 2, 3 or 4 (the paper's x4 is two x2 steps).
        norm: ``batch`` (the paper), ``instance`` or ``none`` (EDSR/ESRGAN argue batch norm hurts PSNR and
            brings artefacts at test time; ``none`` is that variant).

    Shape:
        (B, C, H, W) in [0, 1] -> (B, C_out, H * scale, W * scale).

    Example:
        >>> import torch
        >>> SRResNet(base_channels=8, num_blocks=2)(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = 16,
        scale: int = 4,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ConfigError(f"srresnet: scale must be 2, 3 or 4, got {scale}")
        check_norm(norm)
        self.scale = scale
        self.multiple = 1
        width = base_channels
        self.conv_first = nn.Sequential(nn.Conv2d(in_channels, width, 9, 1, 4), nn.PReLU(width))
        self.body = nn.Sequential(*(ResidualBlockBN(base_channels, norm) for _ in range(num_blocks)))
        self.conv_body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=norm != "batch"), norm_layer(norm, width)
        )
        steps = [3] if scale == 3 else [2] * (scale // 2)
        self.upsample = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(base_channels, base_channels * r * r, 3, 1, 1),
                    nn.PixelShuffle(r),  # (B, C*r*r, H, W) -> (B, C, H*r, W*r)
                    nn.PReLU(base_channels),
                )
                for r in steps
            )
        )
        for block, r in zip(self.upsample, steps, strict=True):
            icnr_(block[0], r)
        self.conv_last = nn.Conv2d(base_channels, out_channels, 9, 1, 4)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        return self.conv_last(self.upsample(feat))
