"""Metrics over folders of images: what ``i2i eval fid|kid|lpips`` run.

Results are JSON-ready dicts: the metric values at the top level (``{"fid": 61.2, ...}``) plus what they were
computed from (counts, folders, the weights' digest, whether the reference statistics came from the cache).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from i2i.config import EvalConfig
from i2i.data.images import list_images
from i2i.errors import ConfigError, DataError
from i2i.metrics.base import DISTRIBUTION_METRICS, PAIRED_METRICS, MetricSet
from i2i.metrics.build import build_metrics, distances_of
from i2i.metrics.cache import cache_key, load_features, load_stats_file, save_features
from i2i.metrics.distances import FeatureDistances, FeatureExtractor
from i2i.metrics.folders import batches, fingerprint, match_by_stem, read_uint8

log = logging.getLogger(__name__)


def extract_features(
    files: Sequence[Path], extractor: FeatureExtractor, *, batch_size: int, size: int = 0
) -> Tensor:
    """(N, D) features of image files (batched by equal image size)."""
    chunks = [extractor(images) for _, images in batches(files, batch_size, size=size)]
    return torch.cat(chunks) if chunks else torch.empty(0, extractor.dims)


def reference_features(
    folder: str | Path,
    extractor: FeatureExtractor,
    *,
    batch_size: int = 50,
    size: int = 0,
    use_cache: bool = True,
    cache_folder: Path | None = None,
) -> tuple[Tensor, str]:
    """The features of every image in ``folder``, from the statistics cache when it has them.

    Returns:
        The (N, D) features and where they came from: ``"cached"`` or ``"computed"``.
    """
    folder = Path(folder)
    files = list_images(folder)
    description = {"files": fingerprint(files, folder), "extractor": extractor.identity, "size": size}
    key = cache_key(description)
    if use_cache:
        cached = load_features(key, cache_folder)
        if cached is not None and len(cached) == len(files):
            log.info("%s: reference features from the cache (%d images)", folder, len(files))
            return cached, "cached"
    features = extract_features(files, extractor, batch_size=batch_size, size=size)
    if use_cache:
        save_features(key, features, {"folder": str(folder.resolve()), **description}, cache_folder)
    return features, "computed"


def evaluate_distributions(
    real: str | Path,
    fake: str | Path,
    options: EvalConfig,
    *,
    device: str | torch.device = "cpu",
    extractor: FeatureExtractor | None = None,
    use_cache: bool = True,
    cache_folder: Path | None = None,
) -> dict[str, Any]:
    """FID and/or KID (``options.metrics``) between a folder of generated images and a reference.

    Args:
        real: A folder of reference images (its features are cached), or an ``.npz`` file of statistics with
            ``mu`` and ``sigma`` (pytorch-fid's format; FID only).
        fake: A folder of generated images.
        options: Which metrics (``fid``, ``kid``), batch size, weights and KID settings.
        device: Where the feature extractor runs.
        extractor: Features to use instead of the FID Inception (tests).
        use_cache: Read and write the reference statistics cache.
        cache_folder: The cache location (default ``$I2I_HOME/cache/fid_stats``).
    """
    unknown = [m for m in options.metrics if m not in DISTRIBUTION_METRICS]
    if unknown:
        raise ConfigError(f"{unknown[0]} compares images pairwise; use `i2i eval lpips` (or sr) for it")
    metrics = build_metrics(options, device=device, extractor=extractor)
    distances = distances_of(metrics)
    assert distances is not None  # the metrics are FID/KID, checked above
    real = Path(real)
    if real.is_file() and real.suffix.lower() == ".npz":
        stats = load_stats_file(real)
        distances.set_real(stats=stats)
        origin, num_real = "file", stats.count
    else:
        features, origin = reference_features(
            real,
            distances.extractor,
            batch_size=options.batch_size,
            use_cache=use_cache,
            cache_folder=cache_folder,
        )
        distances.set_real(features)
        num_real = len(features)
    fake_files = list_images(fake)
    for _, images in batches(fake_files, options.batch_size):
        distances.update(images)
    results: dict[str, Any] = dict(metrics.compute())
    results.update(
        num_real=num_real,
        num_fake=len(fake_files),
        real=str(real),
        fake=str(fake),
        real_statistics=origin,
        **_extractor_info(distances, options),
    )
    if distances.kid:
        results["kid_subsets"] = options.kid_subsets
        results["kid_subset_size"] = min(options.kid_subset_size, num_real, len(fake_files))
    return results


def evaluate_paired_folders(
    pred: str | Path,
    target: str | Path,
    options: EvalConfig,
    *,
    device: str | torch.device = "cpu",
    metrics: MetricSet | None = None,
) -> dict[str, Any]:
    """Paired metrics (``lpips``, ``psnr``, ``ssim``) of each image in ``pred`` against its namesake in
    ``target``.

    Returns:
        The means, the number of pairs, and the per-image values of the first metric under ``"per_image"``.
    """
    unknown = [m for m in options.metrics if m not in PAIRED_METRICS]
    if unknown:
        raise ConfigError(f"{unknown[0]} is not a paired metric; use `i2i eval fid` or `i2i eval kid` for it")
    pairs = match_by_stem(Path(pred), Path(target))
    metrics = metrics or build_metrics(options, device=device)
    for pred_file, target_file in pairs:
        fake, real = read_uint8(pred_file).unsqueeze(0), read_uint8(target_file).unsqueeze(0)
        if fake.shape != real.shape:
            raise DataError(
                f"{pred_file} is {fake.shape[-1]}x{fake.shape[-2]} but {target_file} is "
                f"{real.shape[-1]}x{real.shape[-2]}; paired metrics need images of the same size"
            )
        metrics.update(fake, real)
    results: dict[str, Any] = dict(metrics.compute())
    values = {name: v for m in metrics.metrics for name, v in m.values().items()}  # type: ignore[attr-defined]
    per_image = {p.stem: {name: float(v[i]) for name, v in values.items()} for i, (p, _) in enumerate(pairs)}
    results.update(num_pairs=len(pairs), pred=str(pred), target=str(target), per_image=per_image)
    return results


def _extractor_info(distances: FeatureDistances, options: EvalConfig) -> dict[str, Any]:
    weights = getattr(distances.extractor, "weights", None)
    info: dict[str, Any] = {"feature_extractor": distances.extractor.identity}
    if weights is not None:
        info["inception_weights"] = weights.describe()
        info["inception_input"] = options.inception_input
    return info
