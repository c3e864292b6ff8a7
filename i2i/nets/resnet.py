"""ResNet generator of CycleGAN (Zhu et al. 2017, after Johnson et al. 2016), as junyanz ``ResnetGenerator``.

c7s1-64, d128, d256, R256 x num_blocks, u128, u64, c7s1-3 in the paper's notation: a 7x7 stem, two stride-2
downsamplings, residual blocks at 1/4 resolution, two upsamplings and a 7x7 head with tanh; reflection
padding throughout. The reference's single ``nn.Sequential`` becomes named parts here (``stem``, ``down[i]``,
``blocks[i]``, ``up[i]``, ``head``); :mod:`i2i.importers.junyanz` maps the reference's indices onto them.

Example:
    >>> import torch
    >>> g = ResNetGenerator(num_blocks=2, base_channels=8)
    >>> g(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.layers import check_norm, conv_bias, named_sequential, norm_layer
from i2i.nets.registry import register

UPSAMPLING = ("transposed", "resize")


class ResNetBlock(nn.Module):
    """``x + F(x)`` with F = pad, conv3x3, norm, ReLU, (dropout), pad, conv3x3, norm (the reference's block).

    Shape:
        (B, C, H, W) -> (B, C, H, W)
    """

    def __init__(self, channels: int, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.body = named_sequential(
            pad1=nn.ReflectionPad2d(1),
            conv1=nn.Conv2d(channels, channels, 3, bias=bias),
            norm1=norm_layer(norm, channels) if norm != "none" else None,
            act=nn.ReLU(),
            dropout=nn.Dropout(0.5) if dropout else None,
            pad2=nn.ReflectionPad2d(1),
            conv2=nn.Conv2d(channels, channels, 3, bias=bias),
            norm2=norm_layer(norm, channels) if norm != "none" else None,
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@register("resnet")
class ResNetGenerator(nn.Module):
    """CycleGAN's ResNet generator.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        base_channels: Stem width (reference ``ngf``); the blocks run at ``4 * base_channels``.
        num_blocks: Residual blocks (6 for 128 px, 9 for 256 px in the paper).
        norm: ``"instance"`` (CycleGAN), ``"batch"`` or ``"none"``.
        dropout: Dropout(0.5) inside each residual block.
        upsampling: ``"transposed"`` (the reference: ConvTranspose2d 3x3 stride 2) or ``"resize"``
            (nearest-neighbour x2 then a 3x3 conv, which avoids checkerboard artifacts; Odena et al. 2016).

    Shape:
        - Input: ``(B, in_channels, H, W)`` with H and W divisible by 4 (``self.multiple``).
        - Output: ``(B, out_channels, H, W)`` in ``[-1, 1]``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        upsampling: str = "transposed",
    ) -> None:
        super().__init__()
        check_norm(norm)
        if upsampling not in UPSAMPLING:
            raise ConfigError(
                f"resnet: upsampling must be one of {', '.join(UPSAMPLING)}, got {upsampling!r}"
            )
        if num_blocks < 0 or min(in_channels, out_channels, base_channels) < 1:
            raise ConfigError("resnet: channels must be >= 1 and num_blocks >= 0")
        self.multiple = 4
        bias = conv_bias(norm)

        def norm_or_none(channels: int) -> nn.Module | None:
            return norm_layer(norm, channels) if norm != "none" else None

        self.stem = named_sequential(
            pad=nn.ReflectionPad2d(3),
            conv=nn.Conv2d(in_channels, base_channels, 7, bias=bias),
            norm=norm_or_none(base_channels),
            act=nn.ReLU(),
        )
        widths = [base_channels, base_channels * 2, base_channels * 4]
        self.down = nn.ModuleList(
            named_sequential(
                conv=nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1, bias=bias),
                norm=norm_or_none(widths[i + 1]),
                act=nn.ReLU(),
            )
            for i in range(2)
        )
        self.blocks = nn.ModuleList(ResNetBlock(widths[-1], norm, dropout) for _ in range(num_blocks))
        up = []
        for i in (2, 1):
            if upsampling == "transposed":
                conv = nn.ConvTranspose2d(
                    widths[i], widths[i - 1], 3, 2, padding=1, output_padding=1, bias=bias
                )
                layers = {"conv": conv}
            else:
                layers = {
                    "resize": nn.Upsample(scale_factor=2, mode="nearest"),
                    "pad": nn.ReflectionPad2d(1),
                    "conv": nn.Conv2d(widths[i], widths[i - 1], 3, bias=bias),
                }
            up.append(named_sequential(**layers, norm=norm_or_none(widths[i - 1]), act=nn.ReLU()))
        self.up = nn.ModuleList(up)
        self.head = named_sequential(
            pad=nn.ReflectionPad2d(3), conv=nn.Conv2d(base_channels, out_channels, 7), out=nn.Tanh()
        )

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if height % self.multiple or width % self.multiple:
            raise ValueError(
                f"ResNetGenerator needs H and W divisible by 4, got {height}x{width}; pad the input"
            )
        x = self.stem(x)  # (B, C, H, W)
        for block in self.down:
            x = block(x)  # (B, 2C, H/2, W/2), then (B, 4C, H/4, W/4)
        for block in self.blocks:
            x = block(x)
        for block in self.up:
            x = block(x)
        return self.head(x)


def _factory(num_blocks: int):
    def build(
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = num_blocks,
        norm: str = "instance",
        dropout: bool = False,
        upsampling: str = "transposed",
    ) -> ResNetGenerator:
        return ResNetGenerator(
            in_channels, out_channels, base_channels, num_blocks, norm, dropout, upsampling
        )

    build.__doc__ = (
        f"The reference ``resnet_{num_blocks}blocks``: :class:`ResNetGenerator` with {num_blocks} blocks."
    )
    return build


register("resnet_6blocks")(_factory(6))
register("resnet_9blocks")(_factory(9))
