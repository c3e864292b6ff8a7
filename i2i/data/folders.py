"""Single images from folders: any image folder (DCGAN on faces) or one folder per class (cGAN).

Images are resized so the shorter side is ``image_size`` and centre-cropped to a square (the DCGAN CelebA
preprocessing), optionally flipped left-right by the item's seed.

Example:
    >>> faces = ImageFolderDataset("datasets/celeba/img_align_celeba", image_size=64)  # doctest: +SKIP
    >>> faces[0]["image"].shape  # doctest: +SKIP
    torch.Size([3, 64, 64])
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from i2i.data.images import list_images, read_image
from i2i.data.paired import split_key
from i2i.data.transforms import resize
from i2i.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def split_folder(root: str | Path, split: str) -> Path:
    """``root/split`` when it exists, else ``root`` itself (no splits, e.g. CelebA's ``img_align_celeba``)."""
    candidate = Path(root) / split
    return candidate if split and candidate.is_dir() else Path(root)


def class_folders(root: Path) -> list[Path]:
    """The class subfolders of ``root``, sorted by name (their index is the label)."""
    if not root.is_dir():
        raise DataError(f"Dataset folder {root} does not exist; check data.root.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(
            f"{root} has no class subfolders; class_folders expects {root}/<class name>/*.png "
            "(use data.source=folder for unlabelled images)"
        )
    return folders


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` and crop the centre square. Shape: ``(H, W, 3) -> (S, S, 3)``."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = resize(image, new_w, new_h)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top : top + size, left : left + size]


class ImageFolderDataset(Dataset):
    """Images under a folder (recursively), unlabelled (label 0) or labelled by class subfolder.

    Args:
        root: The folder.
        image_size: Output side.
        channels: 3, or 1 for gray (the mean of R, G, B).
        flip: Flip left-right with probability 1/2, decided by the item's seed (reproducible).
        labelled: Labels from ``root/<class>/`` subfolders (sorted names); otherwise every image is class 0.
        num_classes: Expected number of classes (0: any); a mismatch is a :class:`ConfigError`.

    Shape:
        - ``item["image"]``: ``(channels, image_size, image_size)`` in ``[-1, 1]``; ``item["label"]``: ``()``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        image_size: int,
        channels: int = 3,
        flip: bool = False,
        labelled: bool = False,
        num_classes: int = 0,
    ) -> None:
        self.root, self.image_size, self.channels, self.flip = Path(root), image_size, channels, flip
        if labelled:
            folders = class_folders(self.root)
            if num_classes and num_classes != len(folders):
                names = ", ".join(p.name for p in folders[:12])
                raise ConfigError(
                    f"model.num_classes: {num_classes}, but {self.root} has {len(folders)} class folders "
                    f"({names}); set model.num_classes={len(folders)}"
                )
            self.classes = [p.name for p in folders]
            self.items = [
                (f, label) for label, d in enumerate(folders) for f in list_images(d, recursive=True)
            ]
        else:
            self.classes = [""]
            self.items = [(f, 0) for f in list_images(self.root, recursive=True)]
        log.info("%s: %d images in %d class(es)", self.root, len(self.items), len(self.classes))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor]:
        index, seed = split_key(key, len(self.items))
        path, label = self.items[index]
        image = center_square(read_image(path), self.image_size)
        if self.flip and np.random.default_rng(seed).random() < 0.5:
            image = image[:, ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
        if self.channels == 1:
            tensor = tensor.mean(0, keepdim=True)
        return {"image": tensor * 2 - 1, "label": torch.tensor(label)}
