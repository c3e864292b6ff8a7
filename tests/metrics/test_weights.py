"""Resolving metric weights: local files are hashed, cached downloads verified, offline refusals are clear."""

import dataclasses
import hashlib

import pytest

from i2i.data.fetch import Remote
from i2i.errors import CheckpointError, DownloadError
from i2i.metrics.weights import FID_INCEPTION, LPIPS_BACKBONES, WeightsFile, resolve_weights


def _record(data: bytes, *, published: bool):
    digest = hashlib.sha256(data).hexdigest()
    remote = Remote(
        "test-weights.pth", ("https://example.invalid/test-weights.pth",), digest if published else None
    )
    return dataclasses.replace(FID_INCEPTION, remote=remote, digest_prefix=digest[:8]), digest


def test_a_local_file_is_hashed_and_compared(tmp_path):
    weights, digest = _record(b"the published bytes", published=True)
    good, other = tmp_path / "good.pth", tmp_path / "other.pth"
    good.write_bytes(b"the published bytes")
    other.write_bytes(b"something else")
    assert resolve_weights(weights, good, folder=tmp_path) == WeightsFile(good, digest, True)
    assert not resolve_weights(weights, other, folder=tmp_path).standard
    with pytest.raises(CheckpointError, match="--inception-weights"):
        resolve_weights(weights, tmp_path / "missing.pth")


def test_a_cached_file_is_verified_without_network(tmp_path):
    weights, digest = _record(b"cached bytes", published=True)
    (tmp_path / "test-weights.pth").write_bytes(b"cached bytes")
    found = resolve_weights(weights, folder=tmp_path)  # I2I_OFFLINE=1: a download would be refused
    assert found.standard and found.sha256 == digest
    (tmp_path / "test-weights.pth").write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="I2I_OFFLINE"):
        resolve_weights(weights, folder=tmp_path)


def test_unpublished_digest_checks_the_name_prefix(tmp_path):
    weights, _ = _record(b"first download", published=False)
    (tmp_path / "test-weights.pth").write_bytes(b"first download")
    assert resolve_weights(weights, folder=tmp_path).standard  # trusted on first use, prefix matches
    wrong = dataclasses.replace(weights, digest_prefix="00000000")
    (tmp_path / "i2i.lock.json").unlink()
    with pytest.raises(DownloadError, match="digest prefix"):
        resolve_weights(wrong, folder=tmp_path)


def test_the_registered_files():
    assert FID_INCEPTION.remote.sha256.startswith(FID_INCEPTION.digest_prefix)
    assert FID_INCEPTION.remote.size == 95628359
    assert all(
        url.startswith("https://")
        for w in (FID_INCEPTION, *LPIPS_BACKBONES.values())
        for url in w.remote.urls
    )
    for weights in LPIPS_BACKBONES.values():
        assert weights.digest_prefix in weights.remote.filename
