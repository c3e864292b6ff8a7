"""Paired (A, B) datasets in the two layouts people have on disk.

- ``aligned``: ``root/<split>/*.jpg``, each image is A and B side by side (A left, B right), as in the
  pix2pix ``facades`` and ``edges2shoes`` downloads.
- ``folders``: ``root/<split>/A/`` + ``root/<split>/B/``, or the junyanz raw layout ``root/A/<split>/`` +
  ``root/B/<split>/``; files are matched by name (stem, case-insensitive, any image extension).

Example:
    >>> data = PairedDataset("datasets/facades", "train", transform=PairedTransform())  # doctest: +SKIP
    >>> item = data[0]  # {"a": (3, 256, 256), "b": (3, 256, 256), "name": "1"}  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from i2i.data.images import ensure_min_size, image_to_tensor, list_images, read_image
from i2i.data.transforms import PairedTransform
from i2i.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "aligned", "folders")
DIRECTIONS = ("AtoB", "BtoA")
_MAX_LISTED = 5


def check_direction(direction: str) -> None:
    """Raise :class:`ConfigError` unless ``direction`` is ``"AtoB"`` or ``"BtoA"``."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"data.direction must be 'AtoB' or 'BtoA'; got {direction!r}.")


def split_key(key: int | tuple[int, int], length: int) -> tuple[int, int]:
    """Normalise a dataset key (``index`` or ``(index, seed)``) to ``(index, seed)``.

    A plain index is its own seed, so an epoch without a sampler is still reproducible.
    """
    if isinstance(key, tuple):
        index, seed = key
    else:
        index = seed = key
    index = int(index)
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} pairs")
    return index % length, int(seed)


def apply_pair_transform(
    a: np.ndarray,
    b: np.ndarray,
    seed: int,
    transform: PairedTransform | None,
    names: tuple[str | Path, str | Path],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``transform`` (or plain conversion if None), naming the files in any :class:`DataError`.

    Shape:
        - Input: ``(H, W, 3)`` float32 in ``[0, 1]`` each.
        - Output: ``(3, H', W')`` float32 in ``[-1, 1]`` each.
    """
    source = names[0] if names[0] == names[1] else f"{names[0]} and {names[1]}"
    if transform is None:
        if a.shape != b.shape:
            raise DataError(
                f"{names[0]} is {a.shape[1]}x{a.shape[0]} but {names[1]} is {b.shape[1]}x{b.shape[0]}; "
                "the images of a pair must have the same size: resize them, or set a transform with "
                "data.preprocess='resize_and_crop'."
            )
        return image_to_tensor(a), image_to_tensor(b)
    try:
        return transform(a, b, seed)
    except DataError as err:
        raise DataError(f"{source}: {err}") from err


def _is_dir_pair(first: Path, second: Path) -> bool:
    return first.is_dir() and second.is_dir()


def _match_by_stem(
    a_files: list[Path], b_files: list[Path], a_dir: Path, b_dir: Path
) -> list[tuple[Path, Path]]:
    def by_stem(files: list[Path], folder: Path) -> dict[str, Path]:
        table: dict[str, Path] = {}
        for path in files:
            key = path.stem.lower()
            if key in table:
                raise DataError(
                    f"{table[key].name} and {path.name} in {folder} have the same name; keep one so each "
                    "image has exactly one partner."
                )
            table[key] = path
        return table

    a_table, b_table = by_stem(a_files, a_dir), by_stem(b_files, b_dir)
    only_a = sorted(a_table.keys() - b_table.keys())
    only_b = sorted(b_table.keys() - a_table.keys())
    if only_a or only_b:
        parts = []
        for folder, other, missing, table in (
            (a_dir, b_dir, only_a, a_table),
            (b_dir, a_dir, only_b, b_table),
        ):
            if missing:
                shown = ", ".join(table[k].name for k in missing[:_MAX_LISTED])
                more = f", ... ({len(missing)} in all)" if len(missing) > _MAX_LISTED else ""
                parts.append(f"{len(missing)} file(s) in {folder} have no partner in {other}: {shown}{more}")
        raise DataError(
            "Unmatched paired images: " + "; ".join(parts) + ". A and B files are matched by name "
            "(ignoring extension and case); rename or remove the unmatched files."
        )
    return [(a_table[k], b_table[k]) for k in sorted(a_table)]


class PairedDataset(Dataset):
    """Paired images from disk as ``{"a": input, "b": target, "name": stem}``.

    Args:
        root: the dataset folder.
        split: subfolder name, e.g. ``"train"`` or ``"test"``.
        layout: ``"aligned"``, ``"folders"``, or ``"auto"`` (detect which exists).
        direction: ``"AtoB"``, or ``"BtoA"`` to swap the roles (``"a"`` is always the network input).
        transform: augmentation; None converts to tensors unchanged.
        min_size: smallest allowed side of each image (of each half, for aligned images).

    Shape:
        - ``item["a"]``, ``item["b"]``: ``(3, H, W)`` float32 in ``[-1, 1]``.

    Raises:
        ConfigError: bad ``layout`` or ``direction``.
        DataError: the folders are missing or empty, or A/B files don't match up.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        layout: str = "auto",
        direction: str = "AtoB",
        transform: PairedTransform | None = None,
        min_size: int = 1,
    ) -> None:
        if layout not in LAYOUTS:
            raise ConfigError(f"data.layout must be one of {', '.join(LAYOUTS)}; got {layout!r}.")
        check_direction(direction)
        self.root = Path(root)
        self.split = split
        self.direction = direction
        self.transform = transform
        self.min_size = min_size
        self.layout, self.pairs = self._find_pairs(layout)
        logger.info("%s/%s: %d pairs (%s layout)", self.root, split, len(self.pairs), self.layout)

    def _folder_candidates(self) -> list[tuple[Path, Path]]:
        return [
            (self.root / self.split / "A", self.root / self.split / "B"),
            (self.root / "A" / self.split, self.root / "B" / self.split),
        ]

    def _find_pairs(self, layout: str) -> tuple[str, list[tuple[Path, Path]]]:
        if not self.root.is_dir():
            raise DataError(f"Dataset folder {self.root} does not exist; check data.root.")
        if layout in ("auto", "folders"):
            for a_dir, b_dir in self._folder_candidates():
                if _is_dir_pair(a_dir, b_dir):
                    a_files, b_files = list_images(a_dir), list_images(b_dir)
                    return "folders", _match_by_stem(a_files, b_files, a_dir, b_dir)
            if layout == "folders":
                expected = " or ".join(f"{a} + {b}" for a, b in self._folder_candidates())
                raise DataError(f"No A/B folders for split {self.split!r}: expected {expected}.")
        split_dir = self.root / self.split
        if split_dir.is_dir():
            return "aligned", [(path, path) for path in list_images(split_dir)]
        (a1, b1), (a2, b2) = self._folder_candidates()
        raise DataError(
            f"Dataset folder {self.root} has no {self.split!r} split. Expected {split_dir}/*.png (aligned "
            f"A|B images), {a1} + {b1}, or {a2} + {b2}; fix data.root, the split name or data.layout."
        )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key, len(self.pairs))
        a_path, b_path = self.pairs[index]
        if self.layout == "aligned":
            a, b = self._read_aligned(a_path)
        else:
            a = read_image(a_path, min_size=self.min_size)
            b = read_image(b_path, min_size=self.min_size)
        a_tensor, b_tensor = apply_pair_transform(a, b, seed, self.transform, (a_path, b_path))
        if self.direction == "BtoA":
            a_tensor, b_tensor = b_tensor, a_tensor
        return {"a": a_tensor, "b": b_tensor, "name": a_path.stem}

    def _read_aligned(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(path)
        height, width = image.shape[:2]
        if width % 2:
            raise DataError(
                f"{path} is {width}x{height}: an aligned pair needs an even width (A in the left half, B "
                "in the right). If A and B are separate files, use data.layout='folders'."
            )
        half = width // 2
        ensure_min_size(f"{path} (each half)", half, height, self.min_size)
        return image[:, :half], image[:, half:]
