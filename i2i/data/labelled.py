"""Labelled single-image datasets for the classic GANs: digits, MNIST, Fashion-MNIST, folders, synthetic.

Items are ``{"image": (C, S, S) in [-1, 1], "label": int64 ()}``; keys are ``index`` or ``(index, seed)``
(:func:`~i2i.data.paired.split_key`), the seed driving the only random augmentation (a horizontal flip of
folder images). Sources (``data.source``):

- ``digits``: scikit-learn's bundled ``load_digits`` (1,797 8x8 digits, offline), split 1,500 / 297.
- ``mnist``, ``fashion_mnist``: through torchvision's own downloader into ``data.root``; it downloads
  only the files that are missing, so an existing copy is used offline.
- ``folder``: every image under ``data.root`` (e.g. CelebA's ``img_align_celeba``), label 0.
- ``class_folders``: ``data.root/<class>/*.png``, labels in sorted folder-name order.
- ``synthetic``: procedurally drawn bars whose angle is the class (``--dry-run``, tests).

Example:
    >>> from i2i.config import DataConfig
    >>> data = DataConfig(source="digits")
    >>> train_set, _ = labelled_datasets(data, image_size=28, channels=1, num_classes=10, seed=0)
    >>> train_set[0]["image"].shape
    torch.Size([1, 28, 28])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from i2i.data.folders import ImageFolderDataset, split_folder
from i2i.data.paired import split_key
from i2i.errors import ConfigError, DataError

if TYPE_CHECKING:
    from i2i.config import DataConfig

log = logging.getLogger(__name__)

SOURCES = ("digits", "mnist", "fashion_mnist", "folder", "class_folders", "synthetic")
TORCHVISION_SETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
DIGITS_TEST = 297  # held out from the 1,797 digits, drawn by a fixed permutation


def to_size(image: Tensor, image_size: int, channels: int) -> Tensor:
    """Resize a ``(C, h, w)`` image in ``[0, 1]`` to ``(channels, S, S)`` in ``[-1, 1]``.

    Bilinear with antialiasing (area-like when shrinking); gray is repeated to RGB, RGB averaged to gray.
    """
    if image.shape[-1] != image_size or image.shape[-2] != image_size:
        image = F.interpolate(
            image[None], size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        )[0].clamp(0, 1)
    if image.shape[0] != channels:
        image = image.mean(0, keepdim=True) if channels == 1 else image[:1].expand(channels, -1, -1)
    return image * 2 - 1


class ArrayImageDataset(Dataset):
    """Labelled images held in memory, resized on the fly.

    Args:
        images: ``(N, C, h, w)`` integer or float tensor with values in ``[0, max_value]``.
        labels: ``(N,)`` integer class labels.
        max_value: The pixel value that means white (255 for MNIST, 16 for the sklearn digits).
        image_size: Output side ``S``.
        channels: Output channels (1 or 3).
    """

    def __init__(
        self, images: Tensor, labels: Tensor, max_value: float, image_size: int, channels: int
    ) -> None:
        if images.dim() != 4 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"expected (N, C, h, w) images and (N,) labels, got {tuple(images.shape)}")
        self.images, self.labels = images, labels.long()
        self.max_value, self.image_size, self.channels = float(max_value), image_size, channels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor]:
        index, _ = split_key(key, len(self))
        image = self.images[index].float() / self.max_value
        return {"image": to_size(image, self.image_size, self.channels), "label": self.labels[index]}


def digits_arrays(split: str) -> tuple[Tensor, Tensor]:
    """The sklearn digits of one split: ``(N, 1, 8, 8)`` values 0..16 and ``(N,)`` labels."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    chosen = order[DIGITS_TEST:] if split == "train" else order[:DIGITS_TEST]
    images = torch.from_numpy(digits.images[chosen].astype(np.float32))[:, None]
    return images, torch.from_numpy(digits.target[chosen])


def torchvision_arrays(source: str, root: str | Path, train: bool) -> tuple[Tensor, Tensor]:
    """MNIST or Fashion-MNIST via torchvision, downloading into ``root`` only the files that are missing.

    Returns:
        ``(N, 1, 28, 28)`` uint8 images and ``(N,)`` labels.

    Raises:
        DataError: the files are absent and cannot be downloaded.
    """
    from torchvision import datasets

    cls = getattr(datasets, TORCHVISION_SETS[source])
    raw = Path(root) / cls.__name__ / "raw"
    names = [Path(url).name.removesuffix(".gz") for url, _ in cls.resources]
    missing = [n for n in names if not (raw / n).is_file()]
    if missing:
        log.info("%s: downloading %s into %s", source, ", ".join(missing), raw)
    try:
        data = cls(str(root), train=train, download=bool(missing))
    except (RuntimeError, OSError, URLError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise DataError(
            f"{source}: cannot download into {raw} ({reason}); copy the files {', '.join(names)} (or their "
            f".gz archives) there by hand, or use the offline data.source=digits"
        ) from exc
    return data.data[:, None], data.targets


class SyntheticGlyphs(Dataset):
    """Procedural labelled images: an antialiased bar whose angle encodes the class (180/K degrees apart).

    Position, length, thickness, colour and a small angle jitter vary per image; every image is drawn from
    ``np.random.default_rng([seed, split, index])`` so the dataset is the same on every run.

    Shape:
        - ``item["image"]``: ``(channels, image_size, image_size)`` in ``[-1, 1]``; ``item["label"]``: ``()``.
    """

    def __init__(
        self, num: int, image_size: int, channels: int, num_classes: int, seed: int, split: str = "train"
    ) -> None:
        self.num, self.image_size, self.channels = num, image_size, channels
        self.num_classes, self.seed, self.split = num_classes, seed, 0 if split == "train" else 1

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor]:
        index, _ = split_key(key, self.num)
        rng = np.random.default_rng([self.seed, self.split, index])
        label = index % self.num_classes
        size = self.image_size
        angle = np.pi * (label + rng.uniform(-0.2, 0.2)) / self.num_classes
        centre = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
        half = rng.uniform(0.28, 0.4) * size * np.array([np.cos(angle), -np.sin(angle)])
        canvas = np.zeros((size, size, 3), np.float32)
        colour = rng.uniform(0.5, 1.0, 3) if self.channels == 3 else np.ones(3)
        p0, p1 = np.round(centre - half).astype(int), np.round(centre + half).astype(int)
        thickness = max(1, int(round(size * rng.uniform(0.08, 0.14))))
        cv2.line(canvas, tuple(map(int, p0)), tuple(map(int, p1)), colour.tolist(), thickness, cv2.LINE_AA)
        image = torch.from_numpy(canvas).permute(2, 0, 1)
        return {"image": to_size(image, size, self.channels), "label": torch.tensor(label)}


def labelled_datasets(
    data: DataConfig, *, image_size: int, channels: int, num_classes: int, seed: int
) -> tuple[Dataset, Dataset]:
    """The training and held-out sets that ``data.source`` names (see the module docstring).

    Args:
        data: The ``data:`` section (``source``, ``root``, ``train_split``/``test_split``, ``flip``,
            ``synthetic``).
        image_size, channels: What the model takes.
        num_classes: The model's class count; 0 accepts any (labels ignored). Checked against the data.
        seed: Run seed, for the synthetic images.

    Raises:
        ConfigError: unknown source, missing root, or a class count that does not match the data.
    """
    source = data.source
    if source not in SOURCES:
        raise ConfigError(f"data.source: unknown source {source!r} for this method; choose one of {SOURCES}")
    if source == "synthetic":
        classes, syn = num_classes or 10, data.synthetic
        return (
            SyntheticGlyphs(syn.num_train, image_size, channels, classes, seed, "train"),
            SyntheticGlyphs(syn.num_test, image_size, channels, classes, seed, "test"),
        )
    if source != "digits" and not data.root:
        raise ConfigError(f"data.root: {source} needs a folder (e.g. --set data.root=datasets/{source})")
    if source in ("folder", "class_folders"):
        train_dir = split_folder(data.root, data.train_split)
        test_dir = Path(data.root) / data.test_split
        test_dir = test_dir if data.test_split and test_dir.is_dir() else train_dir  # no test split: reuse
        common = {"image_size": image_size, "channels": channels, "num_classes": num_classes}
        common["labelled"] = source == "class_folders"
        return (
            ImageFolderDataset(train_dir, flip=data.flip, **common),
            ImageFolderDataset(test_dir, flip=False, **common),
        )
    if num_classes not in (0, 10):
        raise ConfigError(f"model.num_classes: {source} has 10 classes, got {num_classes}")
    if source == "digits":
        return tuple(
            ArrayImageDataset(*digits_arrays(s), 16, image_size, channels) for s in ("train", "test")
        )
    return tuple(
        ArrayImageDataset(*torchvision_arrays(source, data.root, train), 255, image_size, channels)
        for train in (True, False)
    )
