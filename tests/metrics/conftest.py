"""A small random feature extractor with the FID extractor's interface, so FID/KID tests need no Inception."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn


class TinyFeatures:
    """Images -> 16 features from a fixed random conv net (the same weights for every instance)."""

    dims = 16

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2))
        for p in self.net.parameters():
            p.data = torch.randn(p.shape, generator=generator) * 0.3
        self.identity = "tiny-test-features-v1"
        self.calls = 0

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        self.calls += 1
        x = images.float() / 127.5 - 1.0
        return self.net(x).mean(dim=(2, 3))


@pytest.fixture
def tiny_features() -> TinyFeatures:
    return TinyFeatures()
