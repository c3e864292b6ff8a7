"""PatchGAN discriminators of pix2pix / CycleGAN, numerically identical to junyanz ``NLayerDiscriminator`` and
``PixelDiscriminator``. Both output logits (no sigmoid): the adversarial loss decides what to do with them.
"""

from __future__ import annotations

from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.layers import check_norm, conv_bias, conv_norm_act
from i2i.nets.registry import register


@register("patchgan")
class PatchDiscriminator(nn.Module):
    """N-layer PatchGAN: each output logit judges one receptive-field patch (70x70 with ``num_layers=3``).

    ``blocks[0]`` is a stride-2 conv (with bias, no norm) + LeakyReLU(0.2); ``blocks[1..num_layers-1]`` are
    stride-2 conv + norm + LeakyReLU; ``blocks[num_layers]`` is the same with stride 1; ``head`` is a stride-1
    conv to one channel with bias. All kernels are 4x4 with padding 1; block ``n`` has
    ``base_channels * min(2**n, 8)`` channels; middle convs have biases only with instance norm, as in the
    reference.

    Reference mapping (junyanz ``model.<index>``): ``blocks[0].conv`` = 0, ``blocks[n].conv`` = ``3n - 1``,
    ``blocks[n].norm`` = ``3n``, ``head`` = ``3 * num_layers + 2``.

    Args:
        in_channels: Input channels (pix2pix's conditional D sees ``cat(A, B)``, e.g. 6).
        base_channels: Channels of the first conv (reference ``ndf``).
        num_layers: Number of stride-2 convs (reference ``n_layers``), >= 1.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.

    Shape:
        - Input: ``(B, in_channels, H, W)``
        - Output: ``(B, 1, H', W')`` logits; ``H' = H / 2**num_layers - 2`` for ``H`` divisible by
          ``2**num_layers`` (e.g. 64 -> 6 with ``num_layers=3``).

    Example:
        >>> import torch
        >>> net = PatchDiscriminator(in_channels=6, base_channels=8)
        >>> net(torch.zeros(2, 6, 64, 64)).shape
        torch.Size([2, 1, 6, 6])
    """

    task = "discriminate"  # read by i2i.hub.task_of

    def __init__(
        self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3, norm: str = "batch"
    ) -> None:
        super().__init__()
        if num_layers < 1 or min(in_channels, base_channels) < 1:
            # The reference's n_layers=0 builds the same stack as n_layers=1 but narrower; nobody uses it.
            raise ConfigError(
                f"patchgan: num_layers must be >= 1 and in_channels, base_channels >= 1, got num_layers="
                f"{num_layers}, in_channels={in_channels}, base_channels={base_channels}"
            )
        check_norm(norm)
        widths = [base_channels * min(2**n, 8) for n in range(num_layers + 1)]
        blocks = [conv_norm_act(in_channels, widths[0], 4, 2, 1, act=nn.LeakyReLU(0.2), bias=True)]
        for n in range(1, num_layers + 1):
            stride = 2 if n < num_layers else 1
            blocks.append(conv_norm_act(widths[n - 1], widths[n], 4, stride, 1, norm, nn.LeakyReLU(0.2)))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(widths[-1], 1, 4, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Return patch logits; see the class docstring for shapes."""
        return self.head(self.blocks(x))


@register("pixel")
class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges every pixel on its own (only colour statistics, no structure).

    ``blocks[0]``: 1x1 conv (with bias) + LeakyReLU(0.2); ``blocks[1]``: 1x1 conv to ``2 * base_channels`` +
    norm + LeakyReLU(0.2); ``head``: 1x1 conv to one channel. As in the reference, ``blocks[1].conv`` *and*
    ``head`` have biases only with instance norm. Reference mapping (junyanz ``net.<index>``):
    ``blocks[0].conv`` = 0, ``blocks[1].conv`` = 2, ``blocks[1].norm`` = 3, ``head`` = 5.

    Args:
        in_channels: Input channels.
        base_channels: Channels of the first conv (reference ``ndf``).
        norm: ``"batch"``, ``"instance"`` or ``"none"``.

    Shape:
        - Input: ``(B, in_channels, H, W)``
        - Output: ``(B, 1, H, W)`` logits.

    Example:
        >>> import torch
        >>> PixelDiscriminator(base_channels=8)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    task = "discriminate"  # read by i2i.hub.task_of

    def __init__(self, in_channels: int = 3, base_channels: int = 64, norm: str = "batch") -> None:
        super().__init__()
        if min(in_channels, base_channels) < 1:
            raise ConfigError("pixel: in_channels and base_channels must be >= 1")
        check_norm(norm)
        self.blocks = nn.Sequential(
            conv_norm_act(in_channels, base_channels, 1, act=nn.LeakyReLU(0.2), bias=True),
            conv_norm_act(base_channels, 2 * base_channels, 1, norm=norm, act=nn.LeakyReLU(0.2)),
        )
        self.head = nn.Conv2d(2 * base_channels, 1, 1, bias=conv_bias(norm))

    def forward(self, x: Tensor) -> Tensor:
        """Return per-pixel logits; see the class docstring for shapes."""
        return self.head(self.blocks(x))
