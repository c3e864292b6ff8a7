from __future__ import annotations

import os

import pytest

# Offline, quiet, and never touching the user's caches.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("I2I_OFFLINE", "1")  # i2i never downloads in tests (loopback tests unset it)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: the test nets are tiny, and with two threads on a 2-core machine that is also
    running a data worker or another process, OpenMP threads spin-waiting for each other make steps 5x slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _torch_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))
    monkeypatch.setenv("I2I_HOME", str(tmp_path_factory.getbasetemp() / "i2i_home"))  # weights cache


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
