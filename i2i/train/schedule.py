"""Learning-rate schedules as multiplicative factors of the step."""

from __future__ import annotations

import math
from collections.abc import Callable

from i2i.errors import ConfigError

SCHEDULES = ("linear", "cosine", "constant")


def lr_factor(kind: str, *, total_steps: int, epochs: int, epochs_decay: int) -> Callable[[int], float]:
    """The LR multiplier as a function of the (generator) step.

    ``linear`` is the pix2pix/CycleGAN reference schedule: ``epochs`` at the initial rate, then a linear
    decay over ``epochs_decay`` epochs, stepped once per epoch:
    ``1 - max(0, epoch + 1 - epochs) / (epochs_decay + 1)`` (0-based epoch). The run's
    ``total_steps`` is spread over ``epochs + epochs_decay`` epochs, so a run shortened with
    ``train.max_steps`` keeps the same shape.

    Args:
        kind: ``linear``, ``cosine`` (half cosine from 1 to 0) or ``constant``.
        total_steps: Length of the run in generator steps.
        epochs: Epochs at the initial rate (``linear``).
        epochs_decay: Epochs of decay (``linear``).
    """
    if kind not in SCHEDULES:
        raise ConfigError(
            f"train.lr_schedule: unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}"
        )
    total_steps = max(1, total_steps)
    if kind == "constant":
        return lambda step: 1.0
    if kind == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    num_epochs = max(1, epochs + epochs_decay)
    steps_per_epoch = total_steps / num_epochs

    def linear(step: int) -> float:
        epoch = int(step // steps_per_epoch)
        return max(0.0, 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1))

    return linear
