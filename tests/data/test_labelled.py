"""Labelled single-image sources of the classic GANs: digits, MNIST files, folders, synthetic glyphs."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets as tv_datasets

from i2i.config import DataConfig
from i2i.data.folders import ImageFolderDataset, center_square
from i2i.data.labelled import SyntheticGlyphs, digits_arrays, labelled_datasets, torchvision_arrays
from i2i.errors import ConfigError, DataError


def make(source: str, **kwargs) -> tuple:
    data = DataConfig(source=source, **{k: v for k, v in kwargs.items() if k in ("root", "flip")})
    options = {"image_size": 28, "channels": 1, "num_classes": 10, "seed": 0}
    options.update({k: v for k, v in kwargs.items() if k in options})
    return labelled_datasets(data, **options)


def test_digits_are_offline_split_and_resized() -> None:
    train_set, test_set = make("digits")
    assert (len(train_set), len(test_set)) == (1500, 297)
    train_images, _ = digits_arrays("train")
    test_images, _ = digits_arrays("test")
    flat = {tuple(x.flatten().tolist()) for x in train_images}
    assert sum(tuple(x.flatten().tolist()) in flat for x in test_images) < 10  # (a few digits are duplicates)
    item = train_set[(3, 12345)]  # (index, seed) keys, as the sampler gives them
    assert item["image"].shape == (1, 28, 28) and item["image"].dtype == torch.float32
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    assert item["label"].dtype == torch.int64 and 0 <= int(item["label"]) < 10
    assert torch.equal(train_set[3]["image"], item["image"])  # no random augmentation
    labels = {int(train_set[i]["label"]) for i in range(60)}
    assert labels == set(range(10))
    rgb, _ = make("digits", channels=3, image_size=8)
    assert rgb[0]["image"].shape == (3, 8, 8)
    assert torch.equal(rgb[0]["image"][0], rgb[0]["image"][2])


def test_digits_class_count_is_checked() -> None:
    with pytest.raises(ConfigError, match="model.num_classes: digits has 10 classes, got 7"):
        make("digits", num_classes=7)


def test_synthetic_glyphs_are_deterministic_and_labelled() -> None:
    a = SyntheticGlyphs(12, 16, 3, 4, seed=5)
    b = SyntheticGlyphs(12, 16, 3, 4, seed=5)
    assert all(torch.equal(a[i]["image"], b[i]["image"]) for i in range(12))
    assert [int(a[i]["label"]) for i in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert a[0]["image"].shape == (3, 16, 16)
    test = SyntheticGlyphs(12, 16, 3, 4, seed=5, split="test")
    assert not torch.equal(a[0]["image"], test[0]["image"])
    # The class is the bar's angle: class 0 is horizontal, class 2 (of 4) vertical.
    horizontal, vertical = a[0]["image"][0] + 1, a[2]["image"][0] + 1
    assert horizontal.sum(1).std() > horizontal.sum(0).std()
    assert vertical.sum(0).std() > vertical.sum(1).std()


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0800 | array.ndim  # unsigned bytes, ndim dimensions (big-endian "Pascal Vincent" format)
    path.write_bytes(struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, folder: str, count: int = 6) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(count) % 10)


@pytest.mark.parametrize(("source", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_sets_load_present_files_without_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, folder: str
) -> None:
    def no_download(self) -> None:
        raise AssertionError("must not download when the files are there")

    monkeypatch.setattr(getattr(tv_datasets, folder), "download", no_download)
    _fake_mnist(tmp_path, folder)
    train_set, test_set = make(source, root=str(tmp_path), image_size=32)
    assert len(train_set) == len(test_set) == 6
    assert train_set[(1, 7)]["image"].shape == (1, 32, 32)
    assert int(train_set[4]["label"]) == 4
    images, labels = torchvision_arrays(source, tmp_path, train=True)
    assert images.shape == (6, 1, 28, 28) and images.dtype == torch.uint8


def test_missing_mnist_downloads_and_reports_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def offline(self) -> None:
        calls.append(self.raw_folder)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got URLError")

    monkeypatch.setattr(tv_datasets.MNIST, "download", offline)
    with pytest.raises(DataError, match=r"mnist: cannot download into .*MNIST/raw .*data.source=digits"):
        make("mnist", root=str(tmp_path / "mnist"))
    assert calls == [str(tmp_path / "mnist" / "MNIST" / "raw")]


def test_root_is_required_for_downloads_and_folders() -> None:
    for source in ("mnist", "folder", "class_folders"):
        with pytest.raises(ConfigError, match=f"data.root: {source} needs a folder"):
            make(source)
    with pytest.raises(ConfigError, match="data.source: unknown source 'paired'"):
        make("paired")


def _save(path: Path, size: tuple[int, int], color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0], 3), np.uint8)
    array[:, : size[0] // 2] = color  # left half coloured: shows flips
    Image.fromarray(array).save(path)


def test_image_folder_is_recursive_cropped_and_flipped_by_seed(tmp_path: Path) -> None:
    _save(tmp_path / "faces" / "a.png", (40, 30), (255, 0, 0))
    _save(tmp_path / "faces" / "sub" / "b.jpg", (30, 50), (0, 255, 0))
    data = ImageFolderDataset(tmp_path / "faces", image_size=16, flip=True)
    assert len(data) == 2 and data.classes == [""]
    items = [data[(0, seed)] for seed in range(12)]
    assert all(i["image"].shape == (3, 16, 16) and int(i["label"]) == 0 for i in items)
    lefts = {bool(i["image"][0, :, 0].mean() > 0) for i in items}
    assert lefts == {True, False}  # some seeds flip, some do not
    assert torch.equal(data[(0, 3)]["image"], data[(0, 3)]["image"])
    gray = ImageFolderDataset(tmp_path / "faces", image_size=8, channels=1)
    assert gray[1]["image"].shape == (1, 8, 8)


def test_center_square() -> None:
    image = np.zeros((30, 60, 3), np.float32)
    image[:, 15:45] = 1.0  # the centre square
    out = center_square(image, 10)
    assert out.shape == (10, 10, 3) and out.min() > 0.99


def test_class_folders_give_sorted_labels_and_check_the_count(tmp_path: Path) -> None:
    for name, count in (("cat", 2), ("ant", 1), ("bee", 3)):
        for i in range(count):
            _save(tmp_path / "train" / name / f"{i}.png", (8, 8), (9, 9, 9))
    (tmp_path / "train" / ".cache").mkdir()
    train_set, test_set = make("class_folders", root=str(tmp_path), image_size=8, channels=3, num_classes=3)
    assert train_set.classes == ["ant", "bee", "cat"]
    assert [int(train_set[i]["label"]) for i in range(len(train_set))] == [0, 1, 1, 1, 2, 2]
    assert len(test_set) == 6  # no test/ split: the held-out set is the same folder
    with pytest.raises(
        ConfigError, match="model.num_classes: 10, but .* has 3 class folders .*num_classes=3"
    ):
        make("class_folders", root=str(tmp_path), num_classes=10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no class subfolders"):
        ImageFolderDataset(tmp_path / "empty", image_size=8, labelled=True)
