"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² between two feature sets.

The kernel is the cubic polynomial ``k(x, y) = (x·y / d + 1)^3``; the estimate is averaged over random
subsets of both sets, as in the paper's code and torch-fidelity, whose implementation this calls (so the
numbers are torch-fidelity's for the same features, subsets and seed). Unlike FID, the estimator is unbiased,
so it is meaningful for the small test sets of translation benchmarks (a value slightly below zero means the
two sets are indistinguishable).
"""

from __future__ import annotations

import logging

from torch import Tensor

from i2i.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000  # torch-fidelity's default; capped at the size of the smaller set
DEFAULT_SEED = 2020  # torch-fidelity's default rng_seed, so equal inputs give torch-fidelity's numbers


def kernel_inception_distance(
    features1: Tensor,
    features2: Tensor,
    *,
    subsets: int = DEFAULT_SUBSETS,
    subset_size: int = DEFAULT_SUBSET_SIZE,
    seed: int = DEFAULT_SEED,
) -> dict[str, float]:
    """KID mean and standard deviation over ``subsets`` random subsets.

    Args:
        features1: (N1, D) features of one set.
        features2: (N2, D) features of the other.
        subsets: How many subset pairs to average over.
        subset_size: Images per subset; capped at ``min(N1, N2)`` (logged), as small sets cannot fill it.
        seed: Seed of the subset draws (a private generator: the global RNGs are not touched).

    Returns:
        ``{"kid": mean, "kid_std": std}``.

    Raises:
        DataError: fewer than 2 images in a set.
        ConfigError: ``subsets`` or ``subset_size`` below 1.
    """
    if subsets < 1 or subset_size < 2:
        raise ConfigError(f"KID needs subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    smaller = min(len(features1), len(features2))
    if smaller < 2:
        raise DataError(f"KID needs at least 2 images per set, got {len(features1)} and {len(features2)}")
    if subset_size > smaller:
        log.info("KID subset size %d capped at %d, the size of the smaller set", subset_size, smaller)
        subset_size = smaller
    from torch_fidelity.metric_kid import kid_features_to_metric  # seconds to import: only when used

    out = kid_features_to_metric(
        features1.float().cpu(),
        features2.float().cpu(),
        kid_subsets=subsets,
        kid_subset_size=subset_size,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
        rng_seed=seed,
        verbose=False,
    )
    return {"kid": out["kernel_inception_distance_mean"], "kid_std": out["kernel_inception_distance_std"]}
