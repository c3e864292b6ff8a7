"""The FID Inception: same features as torch-fidelity and pytorch-fid for the same weights (random here)."""

import pytest
import torch
from torch import nn

from i2i.errors import CheckpointError, DownloadError
from i2i.metrics.inception import FIDInceptionV3, InceptionFeatures, load_fid_inception, preprocess


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A full-size Inception state dict with random weights that keep the signal (so features depend on the
    input: with the default init they fade to nearly the same vector for every image)."""
    torch.manual_seed(0)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            module.running_var.uniform_(0.8, 1.25)
            module.running_mean.uniform_(-0.05, 0.05)
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (2, 3, 48, 64), dtype=torch.uint8, generator=gen)


@pytest.mark.slow
def test_features_equal_torch_fidelity(weights_file, images):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # torch-fidelity's own class, loading the file with its own (unrestricted) loader: only our test file.
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights_file)
    )
    (expected,) = reference(images)
    ours = load_fid_inception(weights_file, input_mode="torch-fidelity")
    got = ours(images)
    assert got.shape == (2, 2048) and not torch.allclose(got[0], got[1], atol=1e-3)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # The other input pipeline gives measurably different features: the check above can fail.
    other = load_fid_inception(weights_file, input_mode="pytorch-fid")(images)
    assert not torch.allclose(other, expected, atol=1e-3)


@pytest.mark.slow
def test_features_equal_pytorch_fid(weights_file, images, monkeypatch):
    inception = pytest.importorskip("pytorch_fid.inception")
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: torch.load(weights_file))
    reference = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    with torch.no_grad():
        expected = reference(images.float() / 255.0)[0].flatten(1)  # pytorch-fid's ToTensor() gives [0, 1]
    got = load_fid_inception(weights_file, input_mode="pytorch-fid")(images)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_two_input_modes_differ_only_for_resized_images():
    x = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    torch.testing.assert_close(preprocess(x, "pytorch-fid"), x.float() / 127.5 - 1)
    torch.testing.assert_close(preprocess(x, "torch-fidelity"), (x.float() - 128) / 128, atol=1e-5, rtol=0)
    small = x[..., :64, :64]
    assert not torch.allclose(
        preprocess(small, "pytorch-fid"), preprocess(small, "torch-fidelity"), atol=1e-2
    )


def test_local_weights_are_hashed_and_flagged_non_standard(weights_file):
    features = load_fid_inception(weights_file)
    assert features.weights is not None and not features.weights.standard
    assert features.weights.sha256 in features.identity and "pytorch-fid" in features.identity
    assert features.identity != InceptionFeatures(FIDInceptionV3(), input_mode="pytorch-fid").identity


def test_wrong_or_missing_weights(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not the FID Inception-v3"):
        load_fid_inception(bad)
    with pytest.raises(CheckpointError, match="no such file"):
        load_fid_inception(tmp_path / "missing.pth")


def test_no_download_offline_names_the_option():
    # tests/conftest.py sets I2I_OFFLINE=1 and an empty I2I_HOME: the default path is the download, refused.
    with pytest.raises(DownloadError, match="--inception-weights"):
        load_fid_inception()
