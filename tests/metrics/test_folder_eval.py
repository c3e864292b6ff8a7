"""Folder metrics (what `i2i eval fid|kid|lpips` run) and the reference statistics cache."""

import os

import numpy as np
import pytest
import torch

from i2i.config import EvalConfig
from i2i.data.images import save_image
from i2i.errors import ConfigError, DataError
from i2i.metrics.base import MetricSet
from i2i.metrics.cache import load_stats_file
from i2i.metrics.folder_eval import evaluate_distributions, evaluate_paired_folders, reference_features
from i2i.metrics.frechet import feature_stats
from i2i.metrics.lpips import LPIPS, LPIPSNet
from i2i.metrics.psnr_ssim import PSNRSSIM


def _write(folder, seed: int, n: int = 6, size: int = 24, offset: float = 0.0, ext: str = "png"):
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        image = (torch.rand(3, size, size, generator=gen) * 1.6 - 0.8 + offset).clamp(-1, 1)
        save_image(image, folder / f"{i:03d}.{ext}")
    return folder


def test_fid_and_kid_of_folders(tmp_path, tiny_features):
    real, same, other = (
        _write(tmp_path / name, seed, offset=off)
        for name, seed, off in (("real", 0, 0.0), ("same", 0, 0.0), ("other", 1, 0.5))
    )
    options = EvalConfig(metrics=("fid", "kid"), batch_size=4)
    cache = tmp_path / "cache"
    first = evaluate_distributions(real, same, options, extractor=tiny_features, cache_folder=cache)
    assert first["fid"] == pytest.approx(0.0, abs=1e-6)
    assert first["num_real"] == first["num_fake"] == 6 and first["kid_subset_size"] == 6
    assert first["real_statistics"] == "computed"
    second = evaluate_distributions(real, other, options, extractor=tiny_features, cache_folder=cache)
    assert second["real_statistics"] == "cached"
    assert second["fid"] > 1e-3 and second["kid"] > first["kid"]


def test_cache_is_keyed_by_folder_contents_and_extractor(tmp_path, tiny_features):
    folder, cache = _write(tmp_path / "real", 2), tmp_path / "cache"
    features, origin = reference_features(folder, tiny_features, cache_folder=cache)
    assert origin == "computed" and features.shape == (6, 16)
    calls = tiny_features.calls
    again, origin = reference_features(folder, tiny_features, cache_folder=cache)
    assert origin == "cached" and tiny_features.calls == calls
    torch.testing.assert_close(again, features)
    # Touching a file (new mtime) or another extractor misses the cache.
    os.utime(folder / "000.png", ns=(1, 1))
    assert reference_features(folder, tiny_features, cache_folder=cache)[1] == "computed"
    tiny_features.identity = "another-extractor"
    assert reference_features(folder, tiny_features, cache_folder=cache)[1] == "computed"
    # Each entry holds mu/sigma under pytorch-fid's keys, so it doubles as a statistics file.
    entry = next(cache.glob("*.npz"))
    stats = load_stats_file(entry)
    np.testing.assert_allclose(stats.mu, feature_stats(features).mu, rtol=1e-6)


def test_pytorch_fid_statistics_file_as_reference(tmp_path, tiny_features):
    real, fake = _write(tmp_path / "real", 3), _write(tmp_path / "fake", 4)
    stats = feature_stats(reference_features(real, tiny_features, use_cache=False)[0])
    np.savez(tmp_path / "real_stats.npz", mu=stats.mu, sigma=stats.sigma)
    options = EvalConfig(metrics=("fid",))
    from_file = evaluate_distributions(tmp_path / "real_stats.npz", fake, options, extractor=tiny_features)
    from_folder = evaluate_distributions(real, fake, options, extractor=tiny_features, use_cache=False)
    assert from_file["real_statistics"] == "file"
    assert from_file["fid"] == pytest.approx(from_folder["fid"], rel=1e-9)
    with pytest.raises(ConfigError, match="pairwise"):
        evaluate_distributions(real, fake, EvalConfig(metrics=("fid", "psnr")), extractor=tiny_features)


def test_paired_folders_match_by_name(tmp_path):
    torch.manual_seed(0)
    pred, target = (
        _write(tmp_path / "pred", 5, n=3, size=32),
        _write(tmp_path / "gt", 5, n=3, size=32, ext="jpg"),
    )
    options = EvalConfig(metrics=("lpips", "psnr", "ssim"))
    metrics = MetricSet([LPIPS(LPIPSNet("alex")), PSNRSSIM(crop_border=0)])
    result = evaluate_paired_folders(pred, target, options, metrics=metrics)
    assert result["num_pairs"] == 3 and set(result["per_image"]) == {"000", "001", "002"}
    assert 0 < result["lpips"] < 1e-2 and result["psnr"] > 30  # JPEG vs PNG of the same pixels
    assert result["psnr"] == pytest.approx(np.mean([v["psnr"] for v in result["per_image"].values()]))
    (target / "002.jpg").rename(target / "999.jpg")
    with pytest.raises(DataError, match="no namesake"):
        evaluate_paired_folders(pred, target, options, metrics=metrics)
