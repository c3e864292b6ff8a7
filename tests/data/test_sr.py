"""SR data: HR crops and LR made on the fly (bicubic with antialias, degradations), DIV2K layout, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.data.sr import (
    Degradation,
    FolderImages,
    SRDataset,
    SRPairsDataset,
    SyntheticImages,
    bicubic_downscale,
    sr_datasets,
)
from i2i.errors import ConfigError, DataError


def _photo(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(height, width, 3)), 0), 1)
    return ((smooth - smooth.min()) / np.ptp(smooth) * 255).round().astype(np.uint8)


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


@pytest.fixture
def div2k(tmp_path: Path) -> Path:
    """A miniature DIV2K: DIV2K_train_HR/0001.png..., DIV2K_valid_HR/0801.png..., the official x2 LR files."""
    root = tmp_path / "DIV2K"
    for i in range(3):
        _write(root / "DIV2K_train_HR" / f"{i + 1:04d}.png", _photo(i))
    for i in range(2):
        hr = _photo(100 + i, 50, 66)  # not multiples of the scale: mod-cropped to 48x64 (HR) / 24x32 (LR)
        _write(root / "DIV2K_valid_HR" / f"{801 + i:04d}.png", hr)
        lr = Image.fromarray(hr).resize((33, 25), Image.Resampling.BICUBIC)  # as MATLAB imresize makes them
        _write(root / "DIV2K_valid_LR_bicubic" / "X2" / f"{801 + i:04d}x2.png", np.asarray(lr))
    return root


def test_training_items_are_hr_crops_and_their_bicubic_lr(div2k: Path) -> None:
    data = SRDataset(
        FolderImages(div2k / "DIV2K_train_HR"), Degradation(scale=4), crop_size=32, augment=False
    )
    item = data[(1, 7)]
    assert item["lr"].shape == (3, 8, 8) and item["hr"].shape == (3, 32, 32) and item["name"] == "0002"
    assert item["hr"].min() >= 0 and item["hr"].max() <= 1
    hr = item["hr"].numpy().transpose(1, 2, 0)
    expected = np.round(np.clip(bicubic_downscale(hr, 4), 0, 1) * 255) / 255
    np.testing.assert_allclose(item["lr"].numpy().transpose(1, 2, 0), expected, atol=1e-6)
    full = np.asarray(Image.open(div2k / "DIV2K_train_HR" / "0002.png"), dtype=np.float32) / 255
    hits = [
        (y, x)
        for y in range(48 - 31)
        for x in range(64 - 31)
        if np.allclose(full[y : y + 32, x : x + 32], hr)
    ]
    assert len(hits) == 1  # a genuine crop of the photo


def test_items_are_reproducible_from_their_seed(div2k: Path) -> None:
    data = SRDataset(FolderImages(div2k / "DIV2K_train_HR"), Degradation(4, noise_sigma=(1, 5)), crop_size=16)
    a, b, c = data[(0, 3)], data[(0, 3)], data[(0, 4)]
    assert torch.equal(a["lr"], b["lr"]) and torch.equal(a["hr"], b["hr"])
    assert not torch.equal(a["hr"], c["hr"])


def test_bicubic_downscale_is_antialiased_like_pil() -> None:
    image = _photo(0, 64, 64)
    ours = bicubic_downscale(image.astype(np.float32) / 255, 4) * 255
    pil = np.asarray(Image.fromarray(image).resize((16, 16), Image.Resampling.BICUBIC), dtype=np.float32)
    assert np.abs(ours - pil).max() < 1.5  # PIL rounds to 8 bits; torch's antialias follows PIL's filter
    # Without antialiasing a checkerboard would alias to a flat wrong colour; with it, it averages to grey.
    checker = (np.indices((64, 64)).sum(0) % 2).astype(np.float32)[..., None].repeat(3, 2)
    np.testing.assert_allclose(bicubic_downscale(checker, 4), 0.5, atol=0.02)


def test_degradations_change_the_lr_and_are_validated() -> None:
    hr = _photo(3, 64, 64).astype(np.float32) / 255
    rng = np.random.default_rng
    clean = Degradation(4)(hr, rng(0))
    blurred = Degradation(4, blur_sigma=(2.0, 2.0))(hr, rng(0))
    noisy = Degradation(4, noise_sigma=(10.0, 10.0))(hr, rng(0))
    compressed = Degradation(4, jpeg_quality=(10, 10))(hr, rng(0))
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(clean, axis=1)).mean()  # smoother
    assert 5 / 255 < (noisy - clean).std() < 15 / 255
    assert np.abs(compressed - clean).max() > 0
    for image in (clean, blurred, noisy, compressed):
        assert image.shape == (16, 16, 3) and np.allclose(image * 255, np.round(image * 255), atol=1e-4)
    with pytest.raises(ConfigError, match="data.sr.noise_sigma"):
        Degradation(4, noise_sigma=(5.0, 1.0))
    with pytest.raises(ConfigError, match="jpeg_quality"):
        Degradation(4, jpeg_quality=(0, 200))
    with pytest.raises(ConfigError, match="model.scale"):
        Degradation(5)


def test_an_image_smaller_than_the_crop_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "hr" / "tiny.png", _photo(0, 20, 30))
    data = SRDataset(FolderImages(tmp_path / "hr"), Degradation(4), crop_size=32)
    with pytest.raises(DataError, match=r"tiny.png is 30x20, smaller than the 32x32 HR .*data.crop_size"):
        data[0]
    with pytest.raises(ConfigError, match="data.crop_size: 30 is not a multiple of the scale 4"):
        SRDataset(FolderImages(tmp_path / "hr"), Degradation(4), crop_size=30)


def test_validation_pairs_mod_crop_centre_crop_and_official_lr_files(div2k: Path) -> None:
    images = FolderImages(div2k / "DIV2K_valid_HR")
    whole = SRPairsDataset(images, Degradation(2))
    item = whole[0]
    assert item["hr"].shape == (3, 50, 66) and item["lr"].shape == (3, 25, 33)  # 50x66 is already even
    centre = SRPairsDataset(images, Degradation(2), crop_size=16, limit=1)
    assert len(centre) == 1
    crop = centre[0]
    assert crop["hr"].shape == (3, 16, 16) and crop["lr"].shape == (3, 8, 8)
    top, left = (50 - 16) // 2 // 2 * 2, (66 - 16) // 2 // 2 * 2
    torch.testing.assert_close(crop["hr"], item["hr"][:, top : top + 16, left : left + 16])
    torch.testing.assert_close(crop["lr"], item["lr"][:, top // 2 : top // 2 + 8, left // 2 : left // 2 + 8])
    official = SRPairsDataset(
        images, Degradation(2), crop_size=16, lr_folder=div2k / "DIV2K_valid_LR_bicubic" / "X2"
    )
    lr_file = np.asarray(Image.open(div2k / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png"), np.float32) / 255
    expected = lr_file[top // 2 : top // 2 + 8, left // 2 : left // 2 + 8].transpose(2, 0, 1)
    np.testing.assert_allclose(official[0]["lr"].numpy(), expected)
    assert torch.equal(official[0]["hr"], crop["hr"])
    assert torch.equal(centre[(0, 1)]["lr"], centre[(0, 2)]["lr"])  # deterministic whatever the sample seed


def test_missing_official_lr_file_is_named(div2k: Path) -> None:
    (div2k / "DIV2K_valid_LR_bicubic" / "X2" / "0802x2.png").unlink()
    with pytest.raises(DataError, match=r"no LR image for .*0802.png \(expected 0802x2.png or 0802.png\)"):
        SRPairsDataset(
            FolderImages(div2k / "DIV2K_valid_HR"),
            Degradation(2),
            lr_folder=div2k / "DIV2K_valid_LR_bicubic/X2",
        )


def test_div2k_layout_and_synthetic_source(div2k: Path) -> None:
    train, test = sr_datasets(
        source="folder",
        root=div2k,
        train_split="DIV2K_train_HR",
        test_split="DIV2K_valid_HR",
        degradation=Degradation(2),
        crop_size=16,
        val_crop_size=16,
        val_images=1,
        lr_split="DIV2K_valid_LR_bicubic/X2",
    )
    assert len(train) == 3 and len(test) == 1
    assert train[(0, 0)]["hr"].shape == (3, 16, 16) and test[0]["lr"].shape == (3, 8, 8)
    train, test = sr_datasets(
        source="synthetic",
        root="",
        train_split="train",
        test_split="test",
        degradation=Degradation(4),
        crop_size=16,
        val_crop_size=16,
        val_images=0,
        synthetic=(5, 2, 24),
    )
    assert len(train) == 5 and len(test) == 2
    assert not torch.equal(train[(0, 0)]["hr"], test[0]["hr"])  # disjoint scenes
    assert isinstance(train.images, SyntheticImages)
    with pytest.raises(ConfigError, match="data.root: no dataset folder given"):
        sr_datasets(
            source="folder",
            root="",
            train_split="train",
            test_split="test",
            degradation=Degradation(4),
            crop_size=16,
            val_crop_size=16,
            val_images=0,
        )
