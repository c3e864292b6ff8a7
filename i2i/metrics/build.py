"""Build the metrics an evaluation asks for, from the settings of an :class:`~i2i.config.EvalConfig`.

The expensive parts (the Inception network, LPIPS, CLIP) are loaded here, once, with their weights resolved
from local files or the verified download cache; tests inject small random ones instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from i2i.config import EvalConfig
from i2i.errors import ConfigError
from i2i.metrics.base import DISTRIBUTION_METRICS, Metric, MetricSet, check_metric_names
from i2i.metrics.distances import FeatureDistances, FeatureExtractor
from i2i.metrics.inception import INPUT_MODES, load_fid_inception
from i2i.metrics.psnr_ssim import PSNRSSIM

if TYPE_CHECKING:
    from i2i.metrics.lpips import LPIPSNet

LPIPS_NETS = ("alex", "vgg")  # i2i.metrics.lpips.NETS, without importing torchvision's model zoo (seconds)


def check_options(options: EvalConfig, where: str = "eval") -> None:
    """Validate the metric settings, naming the config key of the first bad one."""
    check_metric_names(options.metrics, f"{where}.metrics")
    if options.inception_input not in INPUT_MODES:
        raise ConfigError(
            f"{where}.inception_input: {options.inception_input!r}; choose {' or '.join(INPUT_MODES)}"
        )
    if options.lpips_net not in LPIPS_NETS:
        raise ConfigError(f"{where}.lpips_net: {options.lpips_net!r}; choose {' or '.join(LPIPS_NETS)}")
    if options.kid_subsets < 1 or options.kid_subset_size < 2:
        raise ConfigError(f"{where}.kid_subsets must be >= 1 and {where}.kid_subset_size >= 2")
    if options.crop_border < 0:
        raise ConfigError(f"{where}.crop_border must be >= 0, got {options.crop_border}")
    if options.batch_size < 1:
        raise ConfigError(f"{where}.batch_size must be >= 1, got {options.batch_size}")


def build_metrics(
    options: EvalConfig,
    *,
    device: str | torch.device = "cpu",
    metrics: Sequence[str] | None = None,
    extractor: FeatureExtractor | None = None,
    lpips_model: LPIPSNet | None = None,
    clip: Metric | None = None,
) -> MetricSet:
    """The :class:`MetricSet` for ``options.metrics`` (or ``metrics``).

    Args:
        options: Metric settings (weights files, KID subsets, PSNR crop...).
        device: Where the networks run.
        metrics: Override ``options.metrics``.
        extractor: FID/KID features to use instead of loading the FID Inception (tests).
        lpips_model: LPIPS network to use instead of loading the trained one (tests).
        clip: CLIP score metric to use instead of loading ``options.clip_model`` (tests).

    Raises:
        ConfigError: unknown metric or setting.
        CheckpointError, DownloadError: weights that cannot be found or loaded.
    """
    check_options(options)
    names = check_metric_names(metrics if metrics is not None else options.metrics, "metrics")
    built: list[Metric] = []
    if any(name in names for name in DISTRIBUTION_METRICS):
        if extractor is None:
            extractor = load_fid_inception(
                options.inception_weights or None, input_mode=options.inception_input
            )
            extractor.to(device)
        built.append(
            FeatureDistances(
                extractor,
                fid="fid" in names,
                kid="kid" in names,
                kid_subsets=options.kid_subsets,
                kid_subset_size=options.kid_subset_size,
            )
        )
    if "psnr" in names or "ssim" in names:
        built.append(
            PSNRSSIM(
                psnr="psnr" in names,
                ssim="ssim" in names,
                crop_border=options.crop_border,
                y_channel=options.y_channel,
            )
        )
    if "lpips" in names:
        from i2i.metrics.lpips import LPIPS, load_lpips

        if lpips_model is None:
            lpips_model, _ = load_lpips(options.lpips_net, options.lpips_weights or None)
        built.append(LPIPS(lpips_model.to(device)))
    if "clip_score" in names:
        if clip is None:
            from i2i.metrics.clip_score import load_clip_score

            clip = load_clip_score(options.clip_model)
            clip.model.to(device)  # type: ignore[attr-defined]
        built.append(clip)
    return MetricSet(built)


def distances_of(metrics: MetricSet) -> FeatureDistances | None:
    """The FID/KID metric of a set, if any (to give it cached reference features)."""
    return next((m for m in metrics.metrics if isinstance(m, FeatureDistances)), None)
