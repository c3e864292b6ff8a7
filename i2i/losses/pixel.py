"""Pixel-wise reconstruction losses, all mean-reduced over every element.

With ``d = pred - target``:

- ``l1``: ``E[|d|]``, the pix2pix (Isola et al. 2017) and CycleGAN cycle/identity term: less blur than L2.
- ``l2``: ``E[d^2]``, the MSE of SRResNet (Ledig et al. 2017); maximizes PSNR but blurs.
- ``charbonnier``: ``E[sqrt(d^2 + eps^2)]`` (Charbonnier et al. 1994; LapSRN, Lai et al. 2017): a
  differentiable L1, smooth at ``d = 0``, where L1's gradient jumps from -1 to 1.

Cycle-consistency and identity losses are these losses applied to a reconstruction, e.g.
``l1_loss(g_ba(g_ab(a)), a)``.

Example:
    >>> import torch
    >>> pixel_loss("l1", torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8))
    tensor(1.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from i2i.errors import ConfigError

__all__ = ["PIXEL_LOSSES", "charbonnier_loss", "l1_loss", "l2_loss", "pixel_loss"]


def _check_shapes(pred: Tensor, target: Tensor) -> None:
    # Broadcasting a (B, C, H, W) prediction against a (B, 1, H, W) or transposed target silently gives a
    # wrong loss; an error here is cheaper than a model that trains on it.
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error ``E[|pred - target|]``.

    Args:
        pred: predicted images.
        target: target images.

    Returns:
        The scalar loss.

    Shape:
        - pred, target: ``(B, C, H, W)`` (any shape, the same for both).
        - output: ``()``.

    Example:
        >>> l1_loss(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0]))
        tensor(1.5000)
    """
    _check_shapes(pred, target)
    return F.l1_loss(pred, target)


def l2_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error ``E[(pred - target)^2]``.

    Args:
        pred: predicted images.
        target: target images.

    Returns:
        The scalar loss.

    Shape:
        - pred, target: ``(B, C, H, W)`` (any shape, the same for both).
        - output: ``()``.

    Example:
        >>> l2_loss(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0]))
        tensor(2.5000)
    """
    _check_shapes(pred, target)
    return F.mse_loss(pred, target)


def charbonnier_loss(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Charbonnier loss ``E[sqrt((pred - target)^2 + eps^2)]``, a smooth L1.

    Args:
        pred: predicted images.
        target: target images.
        eps: smoothing scale; below about ``eps`` the loss is quadratic, above it linear. Must be > 0.

    Returns:
        The scalar loss; ``eps`` when ``pred == target``.

    Raises:
        ValueError: ``eps`` is not positive (the gradient at ``pred == target`` would be undefined).

    Shape:
        - pred, target: ``(B, C, H, W)`` (any shape, the same for both).
        - output: ``()``.

    Example:
        >>> charbonnier_loss(torch.tensor([3.0]), torch.tensor([0.0]), eps=4.0)
        tensor(5.)
    """
    if eps <= 0:
        raise ValueError(f"charbonnier_loss needs eps > 0, got {eps}")
    _check_shapes(pred, target)
    return torch.sqrt((pred - target).square() + eps * eps).mean()


PIXEL_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "l1": l1_loss,
    "l2": l2_loss,
    "charbonnier": charbonnier_loss,
}
"""Pixel losses by the name used in configs."""


def pixel_loss(kind: str, pred: Tensor, target: Tensor) -> Tensor:
    """Pixel loss chosen by name: one of the keys of :data:`PIXEL_LOSSES`.

    Args:
        kind: ``"l1"``, ``"l2"`` or ``"charbonnier"`` (with its default ``eps``).
        pred: predicted images.
        target: target images.

    Returns:
        The scalar loss.

    Raises:
        ConfigError: ``kind`` is not a known pixel loss.

    Shape:
        - pred, target: ``(B, C, H, W)`` (any shape, the same for both).
        - output: ``()``.

    Example:
        >>> pixel_loss("l2", torch.zeros(2, 3), torch.ones(2, 3))
        tensor(1.)
    """
    if kind not in PIXEL_LOSSES:
        raise ConfigError(f"unknown pixel loss kind {kind!r}; choose one of: {', '.join(PIXEL_LOSSES)}")
    return PIXEL_LOSSES[kind](pred, target)
