"""The Fréchet distance between two Gaussians fitted to feature sets: the "distance" in FID.

For N(mu1, S1) and N(mu2, S2) (Heusel et al. 2017, after Dowson & Landau 1982):

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

The only delicate term is ``tr((S1 S2)^(1/2))``. ``S1 S2`` is not symmetric, and scipy's ``sqrtm`` of it (as
in pytorch-fid) can return complex noise or fail for the rank-deficient covariances of small sets (fewer
images than feature dimensions). It is similar to the symmetric positive semi-definite ``A = S1^(1/2) S2
S1^(1/2)`` (same eigenvalues), so the trace is the sum of the square roots of A's eigenvalues: two symmetric
eigendecompositions in float64, with the rounding noise of the null space (eigenvalues within D·eps of the
largest) set to zero.

With the features at hand and fewer images than dimensions (a 120-image test set in 2048-d Inception space),
:func:`frechet_distance_of_features` gets the same number much faster in the sample space: with centred
feature matrices ``A1`` (n1 x d) and ``A2``, ``S1 S2 = A1^T (A1 A2^T) A2 / c`` shares its non-zero eigenvalues
with ``M M^T / c`` for ``M = A1 A2^T`` and ``c = (n1 - 1)(n2 - 1)``, so ``tr((S1 S2)^(1/2))`` is the sum of
the singular values of the small matrix ``M``, over ``sqrt(c)``: no d x d decomposition at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from i2i.errors import DataError


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of a feature set (what pytorch-fid stores in its ``.npz`` files).

    Attributes:
        mu: (D,) float64 mean.
        sigma: (D, D) float64 covariance (unbiased, ``np.cov``).
        count: How many feature vectors they summarise.
    """

    mu: np.ndarray
    sigma: np.ndarray
    count: int


def feature_stats(features: Tensor | np.ndarray) -> FeatureStats:
    """Fit a Gaussian to features, as pytorch-fid and torch-fidelity do (``np.mean``, ``np.cov``).

    Shape:
        features: (N, D) with N >= 2.

    Raises:
        DataError: fewer than two feature vectors (no covariance).
    """
    array = features.detach().cpu().numpy() if isinstance(features, Tensor) else np.asarray(features)
    if array.ndim != 2 or array.shape[0] < 2:
        raise DataError(f"FID needs at least 2 images per set, got {array.shape[0] if array.ndim else 0}")
    array = array.astype(np.float64)
    return FeatureStats(array.mean(axis=0), np.cov(array, rowvar=False), int(array.shape[0]))


def _clean(values: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with the rounding noise of its null space set to 0.

    The covariance of N < D features has rank N - 1; its other eigenvalues come out as +-1e-16 of the largest,
    and their square roots (1e-8 each, times D) would bias the trace far more than rounding does.
    """
    cutoff = max(float(values.max(initial=0.0)), 0.0) * len(values) * np.finfo(np.float64).eps
    return np.where(values > cutoff, values, 0.0)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(_clean(values))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` for covariance matrices, computed through a symmetric matrix (see module doc)."""
    root1 = _sqrt_psd(np.asarray(sigma1, dtype=np.float64))
    inner = root1 @ np.asarray(sigma2, dtype=np.float64) @ root1
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(_clean(values)).sum())


def frechet_distance(stats1: FeatureStats, stats2: FeatureStats) -> float:
    """Squared Fréchet distance between the Gaussians ``stats1`` and ``stats2`` (FID when the features are
    Inception pool3 activations).

    Raises:
        DataError: the two were computed with features of different sizes.
    """
    mu1, mu2 = np.asarray(stats1.mu, np.float64), np.asarray(stats2.mu, np.float64)
    if mu1.shape != mu2.shape or stats1.sigma.shape != stats2.sigma.shape:
        raise DataError(
            f"the two statistics have {mu1.shape[0]}- and {mu2.shape[0]}-dimensional features; compute both "
            "with the same feature extractor"
        )
    diff = mu1 - mu2
    value = diff @ diff + np.trace(stats1.sigma) + np.trace(stats2.sigma)
    value -= 2.0 * trace_sqrt_product(stats1.sigma, stats2.sigma)
    # Identical sets give 0 up to rounding, which can be a tiny negative number.
    return float(max(value, 0.0))


def frechet_distance_of_features(features1: Tensor | np.ndarray, features2: Tensor | np.ndarray) -> float:
    """``frechet_distance(feature_stats(features1), feature_stats(features2))``, in the sample space when both
    sets are smaller than the feature size (see the module docstring; seconds become milliseconds).

    Shape:
        features1: (N1, D), features2: (N2, D), N1, N2 >= 2.
    """
    a1, a2 = (
        f.detach().cpu().numpy() if isinstance(f, Tensor) else np.asarray(f) for f in (features1, features2)
    )
    if a1.ndim != 2 or a2.ndim != 2 or a1.shape[1] != a2.shape[1] or max(len(a1), len(a2)) > a1.shape[1]:
        return frechet_distance(feature_stats(a1), feature_stats(a2))
    if min(len(a1), len(a2)) < 2:
        raise DataError(f"FID needs at least 2 images per set, got {len(a1)} and {len(a2)}")
    a1, a2 = a1.astype(np.float64), a2.astype(np.float64)
    mu1, mu2 = a1.mean(axis=0), a2.mean(axis=0)
    c1, c2 = a1 - mu1, a2 - mu2  # centred: S = c^T c / (n - 1)
    n1, n2 = len(a1) - 1, len(a2) - 1
    cross = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt(n1 * n2)  # tr((S1 S2)^(1/2))
    diff = mu1 - mu2
    value = diff @ diff + (c1 * c1).sum() / n1 + (c2 * c2).sum() / n2 - 2.0 * cross
    return float(max(value, 0.0))
