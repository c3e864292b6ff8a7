"""Unpaired datasets: two folders of images from two domains (CycleGAN's ``trainA/`` and ``trainB/``).

Layouts: the reference datasets' ``root/trainA`` + ``root/trainB`` (``testA``/``testB`` for the test split),
or ``root/train/A`` + ``root/train/B``. The domains may hold different numbers of images; an epoch is as long
as the larger one. Each A image is paired with a random B image (drawn from the sample's seed, so training
is reproducible), or with B image ``index % len(B)`` when ``serial`` is set, as the reference's
``--serial_batches``.

Example:
    >>> data = UnpairedDataset("datasets/horse2zebra", "train", transform=PairedTransform())  # doctest: +SKIP
    >>> item = data[0]  # {"a": (3, 256, 256), "b": (3, 256, 256), "name": "n02381460_1001"}  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from i2i.data.images import image_to_tensor, list_images, read_image
from i2i.data.paired import check_direction, split_key
from i2i.data.transforms import PairedTransform
from i2i.errors import DataError

logger = logging.getLogger(__name__)


def find_domain_folders(root: str | Path, split: str) -> tuple[Path, Path]:
    """The A and B folders of ``split`` under ``root``, in either supported layout."""
    root = Path(root)
    candidates = [(root / f"{split}A", root / f"{split}B"), (root / split / "A", root / split / "B")]
    for folder_a, folder_b in candidates:
        if folder_a.is_dir() and folder_b.is_dir():
            return folder_a, folder_b
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found; check data.root (e.g. datasets/horse2zebra)")
    raise DataError(
        f"{root}: no unpaired '{split}' split found; expected {split}A/ and {split}B/ (as in the CycleGAN "
        f"datasets) or {split}/A/ and {split}/B/"
    )


class UnpairedDataset(Dataset):
    """Images of domain A and domain B, drawn independently.

    Args:
        root: Dataset folder.
        split: ``train`` or ``test`` (any name with matching folders).
        transform: Augmentation applied to each image on its own (A and B get different crops/flips);
            None converts without augmentation (then every image of a domain must have the same size to be
            batched).
        direction: ``BtoA`` swaps the domains, so ``"a"`` is always the input of ``g_ab``.
        serial: Pair A[i] with B[i % len(B)] instead of a random B image.
        min_size: Smallest accepted side in pixels.

    Items are ``{"a": (3, H, W), "b": (3, H, W), "name": A's file stem}`` in [-1, 1]; keys are an index or
    ``(index, seed)``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transform: PairedTransform | None = None,
        direction: str = "AtoB",
        serial: bool = False,
        min_size: int = 1,
    ) -> None:
        check_direction(direction)
        folder_a, folder_b = find_domain_folders(root, split)
        if direction == "BtoA":
            folder_a, folder_b = folder_b, folder_a
        self.files_a = list_images(folder_a)
        self.files_b = list_images(folder_b)
        self.transform = transform
        self.serial = serial
        self.min_size = min_size
        logger.info(
            "%s: %d images in %s, %d in %s",
            root,
            len(self.files_a),
            folder_a.name,
            len(self.files_b),
            folder_b.name,
        )

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def _load(self, path: Path, seed: int) -> torch.Tensor:
        image = read_image(path, min_size=self.min_size)
        if self.transform is None:
            return image_to_tensor(image)
        try:
            return self.transform(image, image, seed)[0]
        except DataError as err:
            raise DataError(f"{path}: {err}") from err

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key, len(self))
        rng = np.random.default_rng(seed % 2**64)
        path_a = self.files_a[index % len(self.files_a)]
        if self.serial:
            path_b = self.files_b[index % len(self.files_b)]
        else:
            path_b = self.files_b[int(rng.integers(len(self.files_b)))]
        seed_a, seed_b = (int(s) for s in rng.integers(0, 2**31, size=2))
        return {"a": self._load(path_a, seed_a), "b": self._load(path_b, seed_b), "name": path_a.stem}
