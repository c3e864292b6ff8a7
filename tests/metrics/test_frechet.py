import numpy as np
import pytest
import scipy.linalg
import torch
from torch_fidelity.metric_fid import fid_statistics_to_metric

from i2i.errors import DataError
from i2i.metrics.frechet import (
    FeatureStats,
    feature_stats,
    frechet_distance,
    frechet_distance_of_features,
    trace_sqrt_product,
)


def _random_cov(rng: np.random.Generator, dims: int) -> np.ndarray:
    a = rng.normal(size=(dims, dims))
    return a @ a.T / dims + 0.1 * np.eye(dims)


def test_closed_form_for_diagonal_gaussians():
    # For diagonal covariances tr(S1 + S2 - 2 (S1 S2)^(1/2)) = sum (sqrt(s1) - sqrt(s2))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([3.0, 1.0, 2.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 9.0 + 0.0 + 16.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
    got = frechet_distance(FeatureStats(mu1, np.diag(s1), 0), FeatureStats(mu2, np.diag(s2), 0))
    assert got == pytest.approx(expected, rel=1e-12)  # 27


def test_closed_form_for_a_scaled_full_covariance():
    # S2 = c^2 S1 commutes with S1: (S1 S2)^(1/2) = c S1, so d^2 = |dmu|^2 + (1 - c)^2 tr(S1).
    rng = np.random.default_rng(0)
    sigma = _random_cov(rng, 6)
    mu = rng.normal(size=6)
    got = frechet_distance(FeatureStats(mu, sigma, 0), FeatureStats(mu + 0.5, 9.0 * sigma, 0))
    assert got == pytest.approx(6 * 0.25 + 4.0 * np.trace(sigma), rel=1e-10)


def test_sampled_shifted_gaussians_approach_the_closed_form():
    # N(0, I) against N(delta, I) in 4-D: d^2 = |delta|^2 = 4; sampling error shrinks with N.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, 4))
    y = rng.normal(size=(20000, 4)) + 1.0
    assert frechet_distance(feature_stats(x), feature_stats(y)) == pytest.approx(4.0, abs=0.05)


def test_identical_sets_give_zero_even_with_fewer_samples_than_dimensions():
    # 10 vectors in 64-D: singular covariance, where sqrtm of S1 S2 is ill-conditioned.
    features = torch.randn(10, 64, generator=torch.Generator().manual_seed(0))
    stats = feature_stats(features)
    assert np.linalg.matrix_rank(stats.sigma) < 64
    assert frechet_distance(stats, stats) == pytest.approx(0.0, abs=1e-6)


def test_agrees_with_torch_fidelity_and_scipy_sqrtm():
    rng = np.random.default_rng(2)
    s1, s2 = _random_cov(rng, 32), _random_cov(rng, 32)
    mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
    ours = frechet_distance(FeatureStats(mu1, s1, 0), FeatureStats(mu2, s2, 0))
    fidelity = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)
    assert ours == pytest.approx(fidelity["frechet_inception_distance"], rel=1e-9)
    assert trace_sqrt_product(s1, s2) == pytest.approx(np.trace(scipy.linalg.sqrtm(s1 @ s2)).real, rel=1e-9)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # inside pytorch-fid
def test_agrees_with_pytorch_fid():
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(3)
    s1, s2 = _random_cov(rng, 16), _random_cov(rng, 16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    expected = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(FeatureStats(mu1, s1, 0), FeatureStats(mu2, s2, 0)) == pytest.approx(
        expected, rel=1e-9
    )


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="at least 2 images"):
        feature_stats(torch.zeros(1, 8))
    a, b = feature_stats(torch.randn(5, 4)), feature_stats(torch.randn(5, 3))
    with pytest.raises(DataError, match="same feature extractor"):
        frechet_distance(a, b)


def test_sample_space_shortcut_equals_the_covariance_formula():
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randn(12, 64, generator=gen), torch.randn(9, 64, generator=gen) * 1.5 + 0.3
    expected = frechet_distance(feature_stats(a), feature_stats(b))
    assert frechet_distance_of_features(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance_of_features(a, a) == pytest.approx(0.0, abs=1e-9)
    many = torch.randn(80, 8, generator=gen)  # more images than dimensions: the covariance formula
    assert frechet_distance_of_features(many, many + 1) == pytest.approx(8.0, rel=1e-9)
