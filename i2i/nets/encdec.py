"""Encoder-decoder generator of DiscoGAN (Kim et al. 2017): a conv encoder and a deconv decoder, no skips.

Unlike the U-Net, everything the output needs has to pass through the bottleneck, which is what DiscoGAN
used to translate between domains that differ in shape (shoes <-> handbags).

Example:
    >>> import torch
    >>> g = EncoderDecoderGenerator(base_channels=8)
    >>> g(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

from torch import Tensor, nn

from i2i.errors import ConfigError
from i2i.nets.layers import check_norm, named_sequential, norm_layer
from i2i.nets.registry import register


@register("encoder_decoder")
class EncoderDecoderGenerator(nn.Module):
    """``num_downs`` stride-2 4x4 convs (LeakyReLU 0.2) then as many 4x4 transposed convs (ReLU), tanh out.

    Widths double per level up to ``8 * base_channels``; the first conv and the last transposed conv have no
    norm, as in DiscoGAN's reference code.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        base_channels: Width of the first level.
        num_downs: Downsamplings (4 for 64 px as in the paper).
        norm: ``"batch"`` (DiscoGAN), ``"instance"`` or ``"none"``.

    Shape:
        - Input: ``(B, in_channels, H, W)``, H and W divisible by ``2**num_downs`` (``self.multiple``).
        - Output: ``(B, out_channels, H, W)`` in ``[-1, 1]``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_downs: int = 4,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_norm(norm)
        if num_downs < 1 or min(in_channels, out_channels, base_channels) < 1:
            raise ConfigError("encoder_decoder: num_downs and channels must be >= 1")
        self.multiple = 2**num_downs
        widths = [base_channels * min(2**i, 8) for i in range(num_downs)]

        def norm_or_none(channels: int, skip: bool) -> nn.Module | None:
            return None if skip or norm == "none" else norm_layer(norm, channels)

        self.encoder = nn.ModuleList(
            named_sequential(
                conv=nn.Conv2d(
                    in_channels if i == 0 else widths[i - 1], widths[i], 4, 2, 1, bias=norm != "batch"
                ),
                norm=norm_or_none(widths[i], skip=i == 0),
                act=nn.LeakyReLU(0.2),
            )
            for i in range(num_downs)
        )
        decoder = []
        for i in reversed(range(num_downs)):
            last = i == 0
            c_out = out_channels if last else widths[i - 1]
            decoder.append(
                named_sequential(
                    conv=nn.ConvTranspose2d(widths[i], c_out, 4, 2, 1, bias=last or norm != "batch"),
                    norm=norm_or_none(c_out, skip=last),
                    act=nn.Tanh() if last else nn.ReLU(),
                )
            )
        self.decoder = nn.ModuleList(decoder)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if height % self.multiple or width % self.multiple:
            raise ValueError(
                f"EncoderDecoderGenerator needs H and W divisible by {self.multiple}, got {height}x{width}"
            )
        for block in self.encoder:
            x = block(x)
        for block in self.decoder:
            x = block(x)
        return x
