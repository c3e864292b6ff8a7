"""The one metric interface: add batches with :meth:`Metric.update`, then get numbers with ``compute``.

Images enter every metric as ``(B, 3, H, W)`` ``uint8`` tensors, exactly the pixels that would be saved as
PNG, so a number computed during training equals the one ``i2i eval`` computes later from the saved files.
``fake`` is what a model made; ``real`` is the reference: the target of the same input for *paired* metrics
(PSNR, SSIM, LPIPS), any image of the target distribution for *distribution* metrics (FID, KID).

Example:
    >>> from i2i.metrics.psnr_ssim import PSNRSSIM
    >>> metric = PSNRSSIM()
    >>> x = torch.full((2, 3, 16, 16), 128, dtype=torch.uint8)
    >>> metric.update(x, x.clone())
    >>> metric.compute()["ssim"]
    1.0
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from i2i.errors import ConfigError, DataError

# Direction of every metric i2i reports, for best-checkpoint selection and for readers of results files.
HIGHER_IS_BETTER: dict[str, bool] = {
    "fid": False,
    "kid": False,
    "kid_std": False,
    "lpips": False,
    "psnr": True,
    "ssim": True,
    "clip_score": True,
}
PAIRED_METRICS = ("psnr", "ssim", "lpips")
DISTRIBUTION_METRICS = ("fid", "kid")
METRIC_NAMES = ("fid", "kid", "lpips", "psnr", "ssim", "clip_score")


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` (``fid``, ``eval/psnr``, a loss term...) is better.

    Unknown names are loss terms, where lower is better.
    """
    return HIGHER_IS_BETTER.get(name.removeprefix("eval/"), False)


def check_metric_names(names: Iterable[str], where: str) -> tuple[str, ...]:
    """``names`` as a tuple, each a known metric, no repeats.

    Raises:
        ConfigError: naming ``where`` (the config key or CLI flag) and the known metrics.
    """
    names = tuple(names)
    for name in names:
        if name not in METRIC_NAMES:
            raise ConfigError(f"{where}: unknown metric {name!r}; choose from {', '.join(METRIC_NAMES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a metric is listed twice ({', '.join(names)})")
    return names


def to_uint8(images: Tensor) -> Tensor:
    """Model images in [-1, 1] to the 8-bit pixels a PNG of them holds (clamped, rounded to nearest).

    Shape:
        images: (B, C, H, W) float -> (B, 3, H, W) uint8 (one channel is repeated to three).
    """
    values = ((images.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return values.expand(-1, 3, -1, -1) if values.shape[1] == 1 else values


def check_images(images: Tensor, what: str) -> Tensor:
    """Refuse anything but a (B, 3, H, W) uint8 batch, naming ``what``."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise DataError(
            f"{what}: metrics take (B, 3, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}; "
            "convert model outputs in [-1, 1] with i2i.metrics.to_uint8"
        )
    return images


class Metric(ABC):
    """Accumulates batches, then computes named values.

    Attributes:
        names: The keys :meth:`compute` returns.
        paired: Whether ``fake[i]`` must be compared with ``real[i]`` (PSNR/SSIM/LPIPS); otherwise ``fake``
            and ``real`` are two independent samples (FID/KID) and either may be omitted in an update.
    """

    names: tuple[str, ...] = ()
    paired: bool = False

    @abstractmethod
    def update(
        self, fake: Tensor | None = None, real: Tensor | None = None, *, texts: Sequence[str] | None = None
    ) -> None:
        """Add a batch.

        Args:
            fake: Model outputs, (B, 3, H, W) uint8.
            real: References, (B', 3, H', W') uint8 (B' = B, H' = H, W' = W for paired metrics).
            texts: The prompt of each fake image (text-image metrics only).
        """

    @abstractmethod
    def compute(self) -> dict[str, float]:
        """The metric values over everything added since the last :meth:`reset`."""

    @abstractmethod
    def reset(self, *, keep_real: bool = False) -> None:
        """Forget the batches added so far; ``keep_real`` keeps a fixed reference set (FID/KID)."""


class MetricSet:
    """Several metrics fed together; :meth:`compute` merges their results.

    Args:
        metrics: The metrics; their ``names`` must not overlap.
    """

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self.metrics = list(metrics)
        self.names = tuple(name for m in self.metrics for name in m.names)
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"metrics computed twice: {', '.join(self.names)}")

    @property
    def paired(self) -> bool:
        """Whether any metric needs paired (fake, real) batches."""
        return any(m.paired for m in self.metrics)

    def update(
        self,
        fake: Tensor | None = None,
        real: Tensor | None = None,
        *,
        paired: bool = True,
        texts: Sequence[str] | None = None,
    ) -> None:
        """Feed every metric; ``paired=False`` says ``real`` does not correspond to ``fake`` image by image.

        Raises:
            ConfigError: a paired metric gets unpaired data.
        """
        for metric in self.metrics:
            if metric.paired:
                if not paired:
                    raise ConfigError(
                        f"{', '.join(metric.names)} compare each output with its own target, but these data "
                        "are unpaired; use fid/kid for unpaired translation"
                    )
                if fake is None or real is None:
                    continue
            metric.update(fake, real, texts=texts)

    def compute(self) -> dict[str, float]:
        """All metric values, in the order of ``names``."""
        results: dict[str, float] = {}
        for metric in self.metrics:
            results.update(metric.compute())
        return results

    def reset(self, *, keep_real: bool = False) -> None:
        for metric in self.metrics:
            metric.reset(keep_real=keep_real)
