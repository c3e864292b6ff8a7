"""Image-quality metrics used in training and by ``i2i eval``.

The light pieces are importable from here (lazily, so ``i2i --help`` does not import torch); the networks
live in their modules (``i2i.metrics.inception``, ``lpips``, ``clip_score``; ``build.build_metrics`` assembles
them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from i2i.metrics.base import HIGHER_IS_BETTER, Metric, MetricSet, higher_is_better, to_uint8
    from i2i.metrics.frechet import FeatureStats, feature_stats, frechet_distance
    from i2i.metrics.psnr_ssim import PSNRSSIM, psnr, rgb_to_y, ssim

_EXPORTS = {
    "HIGHER_IS_BETTER": "base",
    "Metric": "base",
    "MetricSet": "base",
    "higher_is_better": "base",
    "to_uint8": "base",
    "FeatureStats": "frechet",
    "feature_stats": "frechet",
    "frechet_distance": "frechet",
    "PSNRSSIM": "psnr_ssim",
    "psnr": "psnr_ssim",
    "rgb_to_y": "psnr_ssim",
    "ssim": "psnr_ssim",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"i2i.metrics.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'i2i.metrics' has no attribute {name!r}")


__all__ = [
    "HIGHER_IS_BETTER",
    "PSNRSSIM",
    "FeatureStats",
    "Metric",
    "MetricSet",
    "feature_stats",
    "frechet_distance",
    "higher_is_better",
    "psnr",
    "rgb_to_y",
    "ssim",
    "to_uint8",
]
