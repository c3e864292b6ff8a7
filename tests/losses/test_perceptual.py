"""VGG19 content loss: layer names, before/after activation, scaling, weights files, no download in tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from i2i.errors import CheckpointError, ConfigError, DownloadError
from i2i.losses.perceptual import LAYERS, VGG19_FILE, VGGFeatureLoss, vgg19_features, vgg19_weights_file


def test_layer_names_follow_torchvision_vgg19_indices() -> None:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):  # layout only: no 140M-parameter initialisation
        reference = torchvision.models.vgg19(weights=None).features
    assert len(LAYERS) == len(reference) == 37
    for name, module in zip(LAYERS, reference, strict=True):
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name.rstrip("0123456789_")[:4]]
        assert isinstance(module, kind), name
    # SRGAN's VGG22 / VGG54 and ESRGAN's conv5_4 sit where the papers put them.
    assert LAYERS.index("relu2_2") == 8 and LAYERS.index("relu5_4") == 35 and LAYERS.index("conv5_4") == 34
    with torch.device("meta"):
        mine = vgg19_features(LAYERS.index("relu5_4") + 1)
    assert all(reference.state_dict()[k].shape == v.shape for k, v in mine.state_dict().items())


def test_only_layers_up_to_the_deepest_are_built() -> None:
    loss = VGGFeatureLoss({"relu2_2": 1.0}, weights="random")
    assert len(loss.features) == LAYERS.index("relu2_2") + 1


def test_loss_is_zero_for_equal_images_and_grows_with_the_difference() -> None:
    torch.manual_seed(0)
    loss = VGGFeatureLoss(["relu2_2"], weights="random")
    x = torch.rand(2, 3, 32, 32)
    assert loss(x, x).item() == 0.0
    near, far = loss(x + 0.01 * torch.randn_like(x), x), loss(torch.rand_like(x), x)
    assert 0 < near.item() < far.item()


def test_gradients_reach_the_prediction_but_not_the_frozen_network() -> None:
    loss = VGGFeatureLoss(["conv2_2"], weights="random")
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(pred, torch.rand(1, 3, 16, 16)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    assert not loss.train().features.training  # stays in eval mode whatever the caller does


def test_before_activation_keeps_what_the_relu_discards() -> None:
    torch.manual_seed(0)
    before = VGGFeatureLoss(["conv1_2"], weights="random")
    after = VGGFeatureLoss(["relu1_2"], weights="random")
    after.load_state_dict(before.state_dict())
    x = torch.rand(1, 3, 16, 16)
    conv = before.extract(x)[LAYERS.index("conv1_2")]
    assert (conv < 0).any()  # the pre-activation features have a sign ...
    relu = after.extract(x)[LAYERS.index("relu1_2")]
    torch.testing.assert_close(relu, conv.clamp(min=0))  # ... that the ReLU throws away


def test_feature_scale_and_criterion() -> None:
    torch.manual_seed(0)
    plain = VGGFeatureLoss(["relu1_2"], weights="random")
    scaled = VGGFeatureLoss(["relu1_2"], weights="random", feature_scale=1 / 12.75)
    scaled.load_state_dict(plain.state_dict())
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(scaled(a, b), plain(a, b) / 12.75**2)  # MSE of scaled features
    l1 = VGGFeatureLoss(["relu1_2"], weights="random", criterion="l1")
    l1.load_state_dict(plain.state_dict())
    fa, fb = plain.extract(a)[3], plain.extract(b)[3]
    torch.testing.assert_close(l1(a, b), (fa - fb).abs().mean())


def test_value_range_is_mapped_before_imagenet_normalisation() -> None:
    torch.manual_seed(0)
    unit = VGGFeatureLoss(["relu1_1"], weights="random")
    signed = VGGFeatureLoss(["relu1_1"], weights="random", value_range=(-1, 1))
    signed.load_state_dict(unit.state_dict())
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(signed(a * 2 - 1, b * 2 - 1), unit(a, b))


def test_bad_settings_name_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown layer 'relu6_1'.*relu5_4 = SRGAN's VGG54"):
        VGGFeatureLoss(["relu6_1"], weights="random")
    with pytest.raises(ConfigError, match="choose l1 or l2"):
        VGGFeatureLoss(["relu1_1"], weights="random", criterion="l3")


def test_local_weights_file_in_torchvision_layout_loads(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = vgg19_features(LAYERS.index("relu2_2") + 1)
    full = {f"features.{k}": v for k, v in source.state_dict().items()}
    full["classifier.0.weight"] = torch.zeros(2, 2)  # the rest of a torchvision file is ignored
    path = tmp_path / VGG19_FILE
    torch.save(full, path)
    loss = VGGFeatureLoss(["relu2_2"], weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(loss.features.state_dict()[key], value)


def test_wrong_weights_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="VGG19 weights file not found"):
        VGGFeatureLoss(["relu1_1"], weights=tmp_path / "missing.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a VGG19 state_dict"):
        VGGFeatureLoss(["relu1_1"], weights=tmp_path / "other.pth")


def test_imagenet_weights_are_never_downloaded_offline() -> None:
    # conftest sets I2I_OFFLINE=1 and a temporary cache: the verified download is refused, with the URL.
    with pytest.raises(DownloadError, match="download.pytorch.org/models/vgg19-dcbb9e9d.pth"):
        vgg19_weights_file("imagenet")
