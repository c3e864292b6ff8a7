"""Training-health signals for adversarial training: mode collapse and an overpowering discriminator.

Methods log these as ``stat/...`` terms (diagnostics, never optimised) and feed them to a
:class:`HealthMonitor`, which warns (rate-limited) when a smoothed signal crosses its threshold:

- ``stat/d_real_acc``, ``stat/d_fake_acc``: how often D puts a real (generated) sample on the real (fake)
  side of its decision threshold (logit 0 for ``vanilla``/``hinge``, 0.5 for ``lsgan``; for ``wgan``,
  whose scores have no fixed threshold, the midpoint of the batch means).
- ``stat/d_real_sign``: ``E[sign(D(x) - threshold)]`` over real images, the overfitting heuristic ``r_t`` of
  Karras et al. 2020 (StyleGAN2-ADA): near 1, D is sure of every training image, a sign of memorisation
  on small datasets.
- ``stat/diversity``: mean pairwise L2 distance between the generated images of a batch divided by the
  same for the real batch; about 1 when G covers the data's variety, towards 0 when G collapses to a few
  outputs (mode collapse).

Example:
    >>> import torch
    >>> stats = d_stats("vanilla", torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 1.0]))
    >>> float(stats["stat/d_real_acc"]), float(stats["stat/d_fake_acc"])
    (1.0, 0.5)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import Tensor

log = logging.getLogger(__name__)

_THRESHOLDS = {"vanilla": 0.0, "hinge": 0.0, "lsgan": 0.5}  # LSGAN's targets are 0 (fake) and 1 (real)


@torch.no_grad()
def d_stats(kind: str, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
    """D's accuracy on real and generated samples and the mean sign of its real scores (detached).

    Shape:
        - real_logits, fake_logits: ``(B, ...)``, any shape.
        - outputs: ``()`` each.
    """
    real, fake = real_logits.detach().float(), fake_logits.detach().float()
    threshold = _THRESHOLDS.get(kind)
    if threshold is None:  # wgan: critic scores are only meaningful relative to each other
        threshold = 0.5 * (real.mean() + fake.mean())
    return {
        "stat/d_real_acc": (real > threshold).float().mean(),
        "stat/d_fake_acc": (fake < threshold).float().mean(),
        "stat/d_real_sign": torch.sign(real - threshold).mean(),
    }


def _mean_pairwise_distance(x: Tensor) -> Tensor:
    return torch.pdist(x.flatten(1).float()).mean()  # over the B(B-1)/2 pairs


@torch.no_grad()
def diversity(fake: Tensor, real: Tensor) -> dict[str, Tensor]:
    """Mean pairwise distance of the generated batch relative to the real batch; empty for batches < 2.

    Shape:
        - fake, real: ``(B, C, H, W)``; output ``()``.
    """
    if fake.shape[0] < 2 or real.shape[0] < 2:
        return {}
    reference = _mean_pairwise_distance(real.detach()).clamp_min(1e-8)
    return {"stat/diversity": _mean_pairwise_distance(fake.detach()) / reference}


class HealthMonitor:
    """Smooths the health signals and logs a warning when one crosses its threshold.

    Each signal is an exponential moving average (``smoothing``) so that one odd batch never warns;
    nothing is checked during the first ``warmup`` observations (D wins easily at first, by design), and
    each warning repeats at most once every ``every`` observations.

    Args:
        kind: The adversarial loss kind; the D-accuracy warning is off for ``wgan`` (an optimal critic
            separating the samples is what WGAN wants).
        min_diversity: Warn about mode collapse below this ``stat/diversity``.
        max_d_accuracy: Warn about an overpowering D when both accuracies exceed this.
        warmup, every, smoothing: See above.
        enabled: False makes :meth:`observe` a no-op.
    """

    def __init__(
        self,
        kind: str,
        *,
        min_diversity: float = 0.25,
        max_d_accuracy: float = 0.98,
        warmup: int = 200,
        every: int = 1000,
        smoothing: float = 0.98,
        enabled: bool = True,
    ) -> None:
        self.kind = kind
        self.min_diversity, self.max_d_accuracy = min_diversity, max_d_accuracy
        self.warmup, self.every, self.smoothing = warmup, every, smoothing
        self.enabled = enabled
        self.count = 0
        self.smoothed: dict[str, float] = {}
        self.last_warned: dict[str, int] = {}

    def observe(self, stats: Mapping[str, Tensor | float]) -> list[str]:
        """Update the averages with one step's stats; returns the warnings logged this time."""
        if not self.enabled:
            return []
        self.count += 1
        for key, value in stats.items():
            value = float(value)
            old = self.smoothed.get(key)
            self.smoothed[key] = value if old is None else self.smoothing * old + (1 - self.smoothing) * value
        if self.count <= self.warmup:
            return []
        messages = []
        div = self.smoothed.get("stat/diversity")
        if div is not None and div < self.min_diversity:
            messages.append(
                self._warn(
                    "collapse",
                    f"possible mode collapse: generated images are {div:.2f}x as varied as real ones "
                    f"(stat/diversity < {self.min_diversity}); lower the learning rates, try "
                    "model.gan_loss=wgan with model.gp_weight=10, or resume from an earlier checkpoint",
                )
            )
        real, fake = self.smoothed.get("stat/d_real_acc"), self.smoothed.get("stat/d_fake_acc")
        wins = self.kind != "wgan" and real is not None and fake is not None
        if wins and min(real, fake) > self.max_d_accuracy:
            sign = self.smoothed.get("stat/d_real_sign", float("nan"))
            messages.append(
                self._warn(
                    "d_wins",
                    f"the discriminator is overpowering the generator (accuracy real {real:.3f}, "
                    f"fake {fake:.3f}, sign(D(real)) {sign:.2f}): G's gradients vanish; lower "
                    "optim.d.lr, use a smaller D, or switch to model.gan_loss=lsgan or wgan + gp_weight",
                )
            )
        return [m for m in messages if m]

    def _warn(self, key: str, message: str) -> str:
        last = self.last_warned.get(key)
        if last is not None and self.count - last < self.every:
            return ""
        self.last_warned[key] = self.count
        log.warning(message)
        return message
