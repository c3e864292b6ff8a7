"""Cached reference features, so a dataset's FID/KID statistics are computed once.

A cache entry is an ``.npz`` file under ``$I2I_HOME/cache/fid_stats/`` holding the features (for KID) and
their mean and covariance (``mu``, ``sigma``: the keys of pytorch-fid's statistics files, so an entry can be
given to pytorch-fid as it is). Its name is the sha256 of everything the features depend on: each file's
relative name, size and modification time, the feature extractor's identity (weights digest and input
pipeline) and any resizing. Changing, adding or touching an image, or using other weights, misses the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from i2i.errors import DataError
from i2i.hub import i2i_home
from i2i.metrics.frechet import FeatureStats, feature_stats

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where reference statistics are cached: ``i2i_home() / "cache" / "fid_stats"``."""
    return i2i_home() / "cache" / "fid_stats"


def cache_key(description: dict[str, Any]) -> str:
    """The cache file stem for a JSON-able description of what the features depend on."""
    text = json.dumps({"version": CACHE_VERSION, **description}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_features(key: str, folder: Path | None = None) -> Tensor | None:
    """The cached features for ``key``, or None (a missing or unreadable entry is a miss)."""
    path = (folder or cache_dir()) / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return torch.from_numpy(data["features"].astype(np.float32))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring the unreadable statistics cache entry %s (%s)", path, exc)
        return None


def save_features(
    key: str, features: Tensor, description: dict[str, Any], folder: Path | None = None
) -> Path:
    """Store features with their mean and covariance (atomically: temp file, then rename)."""
    folder = folder or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npz"
    array = features.float().cpu().numpy()
    stats = feature_stats(array) if len(array) >= 2 else None
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                features=array,
                mu=stats.mu if stats else np.zeros(array.shape[1]),
                sigma=stats.sigma if stats else np.zeros((array.shape[1],) * 2),
                description=np.array(json.dumps(description)),
            )
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        log.warning(
            "could not write the statistics cache entry %s (%s); it will be computed again", path, exc
        )
    return path


def load_stats_file(path: str | Path) -> FeatureStats:
    """Statistics from an ``.npz`` file with ``mu`` and ``sigma`` (pytorch-fid's format, or a cache entry).

    Raises:
        DataError: unreadable file or missing keys.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
            count = len(data["features"]) if "features" in data else 0
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a statistics file with 'mu' and 'sigma' arrays ({exc})") from exc
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise DataError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
    return FeatureStats(mu, sigma, count)
