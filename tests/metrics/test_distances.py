"""FID/KID as one metric, with a small random feature extractor in place of Inception."""

import pytest
import torch

from i2i.errors import ConfigError
from i2i.metrics.base import MetricSet
from i2i.metrics.distances import FeatureDistances
from i2i.metrics.frechet import feature_stats


def _images(seed: int, n: int = 12, offset: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 200, (n, 3, 24, 24), generator=gen) + offset).to(torch.uint8)


def test_identical_sets_are_at_zero_and_different_sets_are_not(tiny_features):
    metric = FeatureDistances(tiny_features, fid=True, kid=True, kid_subsets=5)
    images = _images(0)
    metric.update(images, images)
    same = metric.compute()
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    metric.reset()
    metric.update(images, _images(1, offset=50))
    apart = metric.compute()
    assert apart["fid"] > 1e-3 and apart["kid"] > abs(same["kid"])
    assert set(apart) == {"fid", "kid", "kid_std"}


def test_batches_accumulate_and_references_can_be_kept(tiny_features):
    fake, real = _images(2), _images(3)
    whole = FeatureDistances(tiny_features)
    whole.update(fake, real)
    parts = FeatureDistances(tiny_features)
    for i in range(0, 12, 5):
        parts.update(fake[i : i + 5], real[i : i + 5])
    assert parts.compute()["fid"] == pytest.approx(whole.compute()["fid"], rel=1e-9)
    calls = tiny_features.calls
    parts.reset(keep_real=True)
    parts.update(fake)
    assert tiny_features.calls == calls + 1  # the references were not extracted again
    assert parts.compute()["fid"] == pytest.approx(whole.compute()["fid"], rel=1e-9)


def test_statistics_only_references_give_fid_but_not_kid(tiny_features):
    fake, real = _images(4), _images(5)
    metric = FeatureDistances(tiny_features)
    metric.set_real(stats=feature_stats(tiny_features(real)))
    metric.update(fake)
    reference = FeatureDistances(tiny_features)
    reference.update(fake, real)
    assert metric.compute()["fid"] == pytest.approx(reference.compute()["fid"], rel=1e-9)
    with pytest.raises(ConfigError, match="KID needs the reference features"):
        FeatureDistances(tiny_features, kid=True).set_real(stats=feature_stats(tiny_features(real)))


def test_metric_set_refuses_paired_metrics_on_unpaired_data(tiny_features):
    from i2i.metrics import PSNRSSIM

    metrics = MetricSet([FeatureDistances(tiny_features), PSNRSSIM()])
    assert metrics.names == ("fid", "psnr", "ssim") and metrics.paired
    with pytest.raises(ConfigError, match="unpaired"):
        metrics.update(_images(6), paired=False)
