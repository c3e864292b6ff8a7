"""Health signals: D accuracy / sign stats, batch diversity, and the rate-limited warnings."""

from __future__ import annotations

import logging

import pytest
import torch

from i2i.train.diagnostics import HealthMonitor, d_stats, diversity


def test_d_stats_per_kind() -> None:
    real, fake = torch.tensor([2.0, -1.0, 3.0, 0.7]), torch.tensor([-2.0, 0.2, -3.0, -0.1])
    stats = d_stats("vanilla", real, fake)  # threshold: logit 0
    assert stats["stat/d_real_acc"] == 0.75 and stats["stat/d_fake_acc"] == 0.75
    assert stats["stat/d_real_sign"] == 0.5  # (1 - 1 + 1 + 1) / 4
    lsgan = d_stats("lsgan", real, fake)  # threshold 0.5, between the targets 0 and 1
    assert lsgan["stat/d_real_acc"] == 0.75 and lsgan["stat/d_fake_acc"] == 1.0
    wgan = d_stats("wgan", real + 100, fake + 100)  # critic scores: only their difference means anything
    assert wgan["stat/d_real_acc"] == 0.75 and wgan["stat/d_fake_acc"] == 0.75  # threshold: 99.975
    assert all(v.dim() == 0 and not v.requires_grad for v in stats.values())


def test_diversity_is_relative_to_the_real_batch() -> None:
    real = torch.randn(16, 1, 8, 8)
    assert diversity(real.clone(), real)["stat/diversity"] == pytest.approx(1.0)
    collapsed = real[:1].expand(16, -1, -1, -1) + 0.01 * torch.randn(16, 1, 8, 8)
    assert diversity(collapsed, real)["stat/diversity"] < 0.05
    assert diversity(real[:1], real[:1]) == {}  # no pairs in a batch of one


def test_monitor_warns_after_warmup_and_rate_limits(caplog: pytest.LogCaptureFixture) -> None:
    monitor = HealthMonitor("vanilla", warmup=5, every=10, smoothing=0.5)
    healthy = {"stat/diversity": 0.9, "stat/d_real_acc": 0.7, "stat/d_fake_acc": 0.7, "stat/d_real_sign": 0.4}
    bad = {"stat/diversity": 0.05, "stat/d_real_acc": 1.0, "stat/d_fake_acc": 1.0, "stat/d_real_sign": 1.0}
    with caplog.at_level(logging.WARNING, logger="i2i.train.diagnostics"):
        assert all(monitor.observe(healthy) == [] for _ in range(20))
        warned = [monitor.observe(bad) for _ in range(25)]
    collapse = [i for i, w in enumerate(warned) if any("mode collapse" in m for m in w)]
    d_wins = [i for i, w in enumerate(warned) if any("overpowering" in m for m in w)]
    assert collapse[0] <= 3 and d_wins[0] <= 6  # the smoothed signals cross within a few steps
    assert len(collapse) == len(d_wins) == 3  # then once every 10 observations each
    assert collapse[1] - collapse[0] == 10
    assert "lower the learning rates" in caplog.text and "optim.d.lr" in caplog.text


def test_monitor_is_quiet_during_warmup_for_wgan_accuracy_and_when_disabled() -> None:
    bad = {"stat/diversity": 0.05, "stat/d_real_acc": 1.0, "stat/d_fake_acc": 1.0}
    early = HealthMonitor("vanilla", warmup=100)
    assert all(early.observe(bad) == [] for _ in range(100))
    wgan = HealthMonitor("wgan", warmup=0, smoothing=0.0)
    assert [m[:13] for m in wgan.observe(bad)] == ["possible mode"]  # no D-accuracy warning for a critic
    off = HealthMonitor("vanilla", warmup=0, enabled=False)
    assert off.observe(bad) == []
