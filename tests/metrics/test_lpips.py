"""LPIPS: the reference model's numbers (checked against torchmetrics' copy) with a random backbone."""

import pytest
import torch
import torchvision

from i2i.errors import CheckpointError, DataError
from i2i.metrics.lpips import LPIPS, LPIPSNet, linear_weights_path, load_lpips


@pytest.fixture(scope="module")
def alex_file(tmp_path_factory):
    """torchvision AlexNet weights in torchvision's format, randomly initialised."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lpips") / "alexnet-random.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def _images(seed: int, shape=(2, 3, 64, 64)) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.slow  # torchmetrics takes seconds to import
def test_matches_torchmetrics_lpips(alex_file):
    from torchmetrics.functional.image.lpips import _LPIPS

    ours, _ = load_lpips("alex", backbone=alex_file)
    # torchmetrics' model: the same LPIPS v0.1 linear layers, a random backbone that we then overwrite.
    reference = _LPIPS(pretrained=True, net="alex", pnet_rand=True).eval()
    reference.net.load_state_dict(_reference_backbone(torch.load(alex_file)))
    x, y = _images(0).float() / 127.5 - 1, _images(1).float() / 127.5 - 1
    with torch.no_grad():
        expected = reference(x, y).flatten()
    got = ours(x, y)
    assert expected.min() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def _reference_backbone(state: dict) -> dict:
    """torchvision ``features.N.*`` keys -> torchmetrics' ``sliceK.N.*`` (slices keep the global index)."""
    bounds = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
    out = {}
    for key, value in state.items():
        if not key.startswith("features."):
            continue
        index, rest = key.removeprefix("features.").split(".", 1)
        slice_number = next(i for i, (a, b) in enumerate(bounds) if a <= int(index) < b) + 1
        out[f"slice{slice_number}.{index}.{rest}"] = value
    return out


def test_identical_images_are_at_distance_zero_and_order_does_not_matter(alex_file):
    model, weights = load_lpips("alex", backbone=alex_file)
    assert not weights.standard  # a random file, not torchvision's
    x, y = _images(2).float() / 127.5 - 1, _images(3).float() / 127.5 - 1
    assert model(x, x).abs().max() < 1e-6
    torch.testing.assert_close(model(x, y), model(y, x))


def test_metric_averages_over_batches():
    torch.manual_seed(0)
    metric = LPIPS(LPIPSNet("alex"))
    a, b = _images(4, (4, 3, 32, 32)), _images(5, (4, 3, 32, 32))
    metric.update(a[:1], b[:1])
    metric.update(a[1:], b[1:])
    per_image = metric.values()["lpips"]
    assert per_image.shape == (4,)
    assert metric.compute()["lpips"] == pytest.approx(float(per_image.mean()))
    with pytest.raises(DataError, match="same shape"):
        metric.update(a, b[:, :, :16])


def test_linear_weights_ship_with_torchmetrics_and_wrong_files_are_refused(tmp_path):
    assert linear_weights_path("alex").is_file() and linear_weights_path("vgg").is_file()
    bad = tmp_path / "bad.pth"
    torch.save({"classifier.1.weight": torch.zeros(3)}, bad)
    with pytest.raises(CheckpointError, match="not torchvision alex weights"):
        load_lpips("alex", backbone=bad)


def test_build_knows_the_lpips_nets():
    from i2i.metrics import build, lpips

    assert build.LPIPS_NETS == lpips.NETS
