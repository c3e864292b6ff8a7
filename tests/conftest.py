from __future__ import annotations

import os

import pytest

# Offline, quiet, and never touching the user's caches.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture(autouse=True)
def _torch_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))


TINY = [
    "model.generator.name=unet",
    "model.generator.args={num_downs: 5, base_channels: 8, norm: batch, dropout: true}",
    "model.discriminator.args={base_channels: 8, num_layers: 2, norm: batch}",
    "data.source=synthetic",
    "data.synthetic={num_train: 12, num_test: 4, size: 32}",
    "data.load_size=36",
    "data.crop_size=32",
    "data.batch_size=2",
    "data.num_workers=0",
    "train.log_every=1",
    "train.sample_every=0",
    "train.save_every=0",
]


@pytest.fixture
def tiny_overrides(tmp_path) -> list[str]:
    """``--set`` overrides for a Pix2Pix run that trains a step in well under a second on CPU."""
    return [*TINY, f"output_dir={tmp_path}", "name=tiny"]
