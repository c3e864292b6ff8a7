"""Exponential moving average of a network's weights (Karras et al. 2018; Yazici et al. 2019)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step.

    Buffers (e.g. BatchNorm running statistics) are copied, not averaged.

    Args:
        net: The network being trained.
        decay: Averaging factor in [0, 1); 0.999 is typical.

    Example:
        >>> net = nn.Linear(2, 2)
        >>> ema = EMA(net, decay=0.9)
        >>> ema.update(net)
    """

    def __init__(self, net: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        for shadow, param in zip(self.shadow.parameters(), net.parameters(), strict=True):
            shadow.lerp_(param.detach(), 1.0 - self.decay)
        for shadow, buffer in zip(self.shadow.buffers(), net.buffers(), strict=True):
            shadow.copy_(buffer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)
