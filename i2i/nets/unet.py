"""U-Net generator of pix2pix (Isola et al., 2017), numerically identical to junyanz ``UnetGenerator``.

The reference builds the U-Net recursively (``UnetSkipConnectionBlock`` nested in itself); here the same
network is two flat lists, ``down[i]`` and ``up[i]`` for level ``i`` (0 = outermost, ``num_downs - 1`` =
innermost), run iteratively with a stack of skips. Mapping to the reference's ``Sequential`` indices, where
level 0 is ``model.model.``, level 1 ``model.model.1.model.`` and each deeper level appends ``3.model.``:

- outermost: ``down[0].conv`` = 0 (Conv 4/2/1); ``up[0].act`` = 2 (ReLU), ``up[0].conv`` = 3 (ConvT 4/2/1,
  always with bias), ``up[0].out`` = 4 (Tanh); the submodule is 1.
- middle: ``down[i].act`` = 0 (LeakyReLU 0.2), ``down[i].conv`` = 1, ``down[i].norm`` = 2; the submodule is 3;
  ``up[i].act`` = 4 (ReLU), ``up[i].conv`` = 5, ``up[i].norm`` = 6, ``up[i].dropout`` = 7 (when used).
- innermost: ``down[i].act`` = 0, ``down[i].conv`` = 1 (no norm); ``up[i].act`` = 2, ``up[i].conv`` = 3,
  ``up[i].norm`` = 4.

The reference's activations are in-place, so its skip tensor is LeakyReLU(x) rather than x; the next layer on
the concatenation is a ReLU and ReLU(LeakyReLU(x)) == ReLU(x), so outputs and gradients are the same.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.layers import check_norm, conv_bias, named_sequential, norm_layer
from i2i.nets.registry import register


@register("unet")
class UNetGenerator(nn.Module):
    """pix2pix U-Net: ``num_downs`` stride-2 4x4 convs down, as many transposed convs up, concatenated skips.

    Level ``i`` has ``base_channels * min(2**i, 8)`` channels. Convs have biases only with instance norm (as
    in the reference), except the last transposed conv, which always has one. With ``dropout``, Dropout(0.5)
    follows the ``num_downs - 5`` decoder blocks between the innermost level and the four outer levels (the
    reference's ``use_dropout``); it is active in train mode only.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        num_downs: Number of downsamplings (>= 5); 8 is the reference ``unet_256``, 7 ``unet_128``.
        base_channels: Channels of the outermost level (reference ``ngf``).
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        dropout: Use dropout in the middle decoder blocks.

    Shape:
        - Input: ``(B, in_channels, H, W)``, ``H`` and ``W`` divisible by ``self.multiple = 2**num_downs``.
        - Output: ``(B, out_channels, H, W)`` in ``[-1, 1]`` (tanh).

    Example:
        >>> import torch
        >>> net = UNetGenerator(3, 3, num_downs=5, base_channels=8)
        >>> net(torch.rand(1, 3, 32, 32) * 2 - 1).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        base_channels: int = 64,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            # The reference silently builds 5 levels for any num_downs < 5; refuse instead of surprising.
            raise ConfigError(f"unet: num_downs must be >= 5, got {num_downs}")
        if min(in_channels, out_channels, base_channels) < 1:
            raise ConfigError("unet: in_channels, out_channels and base_channels must be >= 1")
        check_norm(norm)
        self.num_downs = num_downs
        self.multiple = 2**num_downs
        widths = [base_channels * min(2**i, 8) for i in range(num_downs)]
        bias = conv_bias(norm)
        last = num_downs - 1

        def maybe_norm(channels: int) -> nn.Module | None:
            return norm_layer(norm, channels) if norm != "none" else None

        down, up = [], []
        for i in range(num_downs):
            c_in = in_channels if i == 0 else widths[i - 1]
            c_out = widths[i]
            down.append(
                named_sequential(
                    act=nn.LeakyReLU(0.2) if i > 0 else None,
                    conv=nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias),
                    norm=maybe_norm(c_out) if 0 < i < last else None,
                )
            )
            # The decoder at level i reads cat(skip, deeper output), except the innermost, which has no skip.
            up_in = c_out if i == last else 2 * c_out
            if i == 0:
                up.append(
                    named_sequential(
                        act=nn.ReLU(), conv=nn.ConvTranspose2d(up_in, out_channels, 4, 2, 1), out=nn.Tanh()
                    )
                )
            else:
                up.append(
                    named_sequential(
                        act=nn.ReLU(),
                        conv=nn.ConvTranspose2d(up_in, c_in, 4, 2, 1, bias=bias),
                        norm=maybe_norm(c_in),
                        dropout=nn.Dropout(0.5) if dropout and 4 <= i < last else None,
                    )
                )
        self.down = nn.ModuleList(down)
        self.up = nn.ModuleList(up)

    def forward(self, x: Tensor) -> Tensor:
        """Translate ``x``; see the class docstring for shapes."""
        height, width = x.shape[-2:]
        if height % self.multiple or width % self.multiple:
            raise ValueError(
                f"UNetGenerator with num_downs={self.num_downs} needs H and W divisible by {self.multiple}, "
                f"got {height}x{width}; pad or resize the input"
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)  # (B, widths[i], H / 2**(i+1), W / 2**(i+1))
        skips.pop()  # the innermost output feeds up[-1] directly
        x = self.up[-1](x)
        for block in reversed(self.up[:-1]):
            x = block(torch.cat([skips.pop(), x], dim=1))  # skip first, as the reference concatenates
        return x


@register("unet_256")
def unet_256(
    in_channels: int = 3,
    out_channels: int = 3,
    num_downs: int = 8,
    base_channels: int = 64,
    norm: str = "batch",
    dropout: bool = False,
) -> UNetGenerator:
    """The reference ``unet_256``: :class:`UNetGenerator` with 8 downsamplings (256x256 -> 1x1 bottleneck)."""
    return UNetGenerator(in_channels, out_channels, num_downs, base_channels, norm, dropout)


@register("unet_128")
def unet_128(
    in_channels: int = 3,
    out_channels: int = 3,
    num_downs: int = 7,
    base_channels: int = 64,
    norm: str = "batch",
    dropout: bool = False,
) -> UNetGenerator:
    """The reference ``unet_128``: :class:`UNetGenerator` with 7 downsamplings (128x128 -> 1x1 bottleneck)."""
    return UNetGenerator(in_channels, out_channels, num_downs, base_channels, norm, dropout)
