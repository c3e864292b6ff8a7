"""Small building blocks shared by the network families: norm factory, weight init, named blocks.

The norm and init choices follow junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py``
(``get_norm_layer``, ``init_weights``) exactly, so that networks built here match the reference's numerics and
reference checkpoints load into them.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from i2i.errors import ConfigError

NORM_KINDS = ("batch", "instance", "none")
INIT_KINDS = ("normal", "xavier", "kaiming", "orthogonal")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Return a 2-D normalisation layer.

    Args:
        kind: ``"batch"`` (``BatchNorm2d`` with affine parameters and running statistics), ``"instance"``
            (``InstanceNorm2d(affine=False, track_running_stats=False)``, as the reference: no parameters, no
            state) or ``"none"`` (``Identity``).
        channels: Number of channels ``C``.

    Shape:
        - Input: ``(B, C, H, W)``; output: same.

    Raises:
        ConfigError: unknown ``kind``.

    Example:
        >>> type(norm_layer("batch", 8)).__name__, type(norm_layer("none", 8)).__name__
        ('BatchNorm2d', 'Identity')
    """
    check_norm(kind)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def check_norm(kind: str) -> None:
    """Raise :class:`ConfigError` unless ``kind`` is one of :data:`NORM_KINDS`."""
    if kind not in NORM_KINDS:
        raise ConfigError(f"unknown norm {kind!r}; choose one of {', '.join(NORM_KINDS)}")


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` gets a bias, as in the reference.

    junyanz sets ``use_bias = norm_layer is InstanceNorm2d``: BatchNorm's shift makes a bias redundant, the
    affine-free InstanceNorm would cancel it too but the reference keeps it, and with ``"none"`` the reference
    has no bias either. We follow it so checkpoints map one to one.
    """
    return norm == "instance"


def named_sequential(**layers: nn.Module | None) -> nn.Sequential:
    """An ``nn.Sequential`` with named children (``conv``, ``norm``, ``act``), leaving out ``None`` entries.

    Named children give readable state-dict keys (``down.3.conv.weight`` rather than ``down.3.1.weight``).

    Example:
        >>> block = named_sequential(conv=nn.Conv2d(3, 8, 3), norm=None, act=nn.ReLU())
        >>> [name for name, _ in block.named_children()]
        ['conv', 'act']
    """
    return nn.Sequential(OrderedDict((k, v) for k, v in layers.items() if v is not None))


def conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    norm: str = "none",
    act: nn.Module | None = None,
    bias: bool | None = None,
) -> nn.Sequential:
    """Conv2d -> norm -> activation, with the children named ``conv``, ``norm``, ``act``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size.
        stride: Conv stride.
        padding: Zero padding.
        norm: A kind accepted by :func:`norm_layer`; ``"none"`` leaves the norm out.
        act: Activation module, or ``None`` for none.
        bias: Conv bias; ``None`` means the reference rule :func:`conv_bias`.

    Shape:
        - Input: ``(B, in_channels, H, W)``
        - Output: ``(B, out_channels, H', W')`` with the usual conv arithmetic.

    Example:
        >>> import torch
        >>> block = conv_norm_act(3, 8, 4, stride=2, padding=1, norm="batch", act=nn.LeakyReLU(0.2))
        >>> block(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 8, 16, 16])
    """
    check_norm(norm)
    bias = conv_bias(norm) if bias is None else bias
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
    return named_sequential(
        conv=conv, norm=norm_layer(norm, out_channels) if norm != "none" else None, act=act
    )


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise weights in place as junyanz ``init_weights`` does, and return ``module``.

    Conv (any dimension, transposed too) and Linear weights: ``normal`` N(0, gain), ``xavier``
    xavier_normal(gain), ``kaiming`` kaiming_normal(a=0, mode="fan_in"), ``orthogonal`` orthogonal(gain);
    their biases 0. BatchNorm2d: weight N(1, gain), bias 0. Other modules are untouched. Modules are visited
    in ``module.apply`` order, like the reference.

    Args:
        module: Network to initialise.
        kind: One of :data:`INIT_KINDS`.
        gain: Standard deviation (``normal``) or gain (``xavier``, ``orthogonal``); unused by ``kaiming``.

    Raises:
        ConfigError: unknown ``kind``.

    Example:
        >>> net = init_weights(nn.Conv2d(3, 8, 3), "normal", 0.02)
    """
    if kind not in INIT_KINDS:
        raise ConfigError(f"unknown init {kind!r}; choose one of {', '.join(INIT_KINDS)}")

    def init_one(m: nn.Module) -> None:
        # The reference matches class names containing "Conv"/"Linear"; isinstance covers those torch classes.
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m.weight is not None:
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.0)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.constant_(m.bias, 0.0)

    return module.apply(init_one)
