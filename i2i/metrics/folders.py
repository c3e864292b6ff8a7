"""Image folders as metric input: 8-bit batches, file fingerprints, and pairing by file name.

Files are read with :func:`i2i.data.images.read_image` (every mode, EXIF orientation, 16-bit, clear errors)
and turned into the 8-bit pixels metrics take; 8-bit files come back exactly as stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from i2i.data.images import list_images, read_image
from i2i.data.transforms import resize
from i2i.errors import DataError

_MAX_LISTED = 5


def read_uint8(path: str | Path, size: int = 0) -> Tensor:
    """One image file as 8-bit pixels, resized to ``size`` x ``size`` first if ``size`` > 0.

    The resize is the one i2i's data pipeline uses for held-out images (area when shrinking, bicubic when
    enlarging), so a test image is the same here as in training.

    Shape:
        -> (3, H, W) uint8.
    """
    image = read_image(path)
    if size > 0:
        image = resize(image, size, size)
    return uint8_from_unit(image)


def uint8_from_unit(image: np.ndarray) -> Tensor:
    """An (H, W, 3) float image in [0, 1] as (3, H, W) uint8 (rounded to nearest)."""
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def batches(files: Sequence[Path], batch_size: int, *, size: int = 0) -> Iterator[tuple[list[Path], Tensor]]:
    """Consecutive files of equal image size, ``batch_size`` at most at a time.

    Yields:
        The files of the batch and their pixels, (B, 3, H, W) uint8.
    """
    pending: list[tuple[Path, Tensor]] = []
    for path in files:
        image = read_uint8(path, size)
        if pending and (pending[0][1].shape != image.shape or len(pending) >= batch_size):
            yield [p for p, _ in pending], torch.stack([t for _, t in pending])
            pending = []
        pending.append((path, image))
    if pending:
        yield [p for p, _ in pending], torch.stack([t for _, t in pending])


def fingerprint(files: Sequence[Path], root: Path) -> list[tuple[str, int, int]]:
    """What identifies a folder's contents cheaply: (relative name, size in bytes, mtime in ns) per file."""
    entries = []
    for path in files:
        stat = path.stat()
        entries.append((path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return entries


def match_by_stem(pred: Path, target: Path) -> list[tuple[Path, Path]]:
    """Pair the images of two folders by file name without extension (``0001.png`` with ``0001.jpg``).

    Raises:
        DataError: a folder is missing or empty, two files share a stem, or some file has no partner.
    """

    def table(folder: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for path in list_images(folder):
            if path.stem in found:
                raise DataError(
                    f"{found[path.stem].name} and {path.name} in {folder} have the same name; keep one"
                )
            found[path.stem] = path
        return found

    preds, targets = table(pred), table(target)
    only_pred, only_target = sorted(preds.keys() - targets.keys()), sorted(targets.keys() - preds.keys())
    if only_pred or only_target:
        parts = []
        for folder, other, missing in ((pred, target, only_pred), (target, pred, only_target)):
            if missing:
                shown = ", ".join(missing[:_MAX_LISTED]) + (
                    f", ... ({len(missing)} in all)" if len(missing) > _MAX_LISTED else ""
                )
                parts.append(f"{len(missing)} image(s) in {folder} have no namesake in {other}: {shown}")
        raise DataError(
            "; ".join(parts)
            + ". Images are paired by file name (the extension may differ); rename or remove "
            "the unmatched ones"
        )
    return [(preds[stem], targets[stem]) for stem in sorted(preds)]
