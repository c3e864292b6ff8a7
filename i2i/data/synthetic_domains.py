"""A procedurally generated two-domain task for unpaired translation: a tiny "horse2zebra".

Every scene is a grassy field with a few animals (ellipses with legs and heads, or blobs). Domain A paints the
animals in solid, shaded warm browns ("horses"); domain B paints the same kind of animals with black and
white stripes ("zebras"). The two domains are drawn from disjoint seeds, so the data are unpaired, but
:func:`render_scene` can render one scene in both domains, which lets tests check that a translation kept the
content (the animal mask) while changing the style.

Example:
    >>> image, mask = render_scene(3, size=64, domain="A")
    >>> image.shape, mask.shape
    ((64, 64, 3), (64, 64))
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from i2i.data.images import image_to_tensor
from i2i.data.paired import split_key
from i2i.data.transforms import PairedTransform
from i2i.errors import ConfigError

DOMAINS = ("A", "B")
_SPLIT_OFFSET = {"train": 0, "test": 1}


def _scene_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """Boolean mask (size, size) of 1-3 animals: an elliptic body, a head and four legs each."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = rng.uniform(0.25, 0.75), rng.uniform(0.35, 0.65)
        rx, ry = rng.uniform(0.12, 0.22), rng.uniform(0.07, 0.12)
        mask |= ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        side = 1 if rng.random() < 0.5 else -1
        hx, hy = cx + side * rx * 1.05, cy - ry * 0.9
        mask |= ((xx - hx) / (rx * 0.35)) ** 2 + ((yy - hy) / (ry * 0.6)) ** 2 <= 1
        for leg in (-0.7, -0.35, 0.35, 0.7):
            lx = cx + leg * rx
            mask |= (np.abs(xx - lx) < 0.018 + 0.5 / size) & (yy > cy) & (yy < cy + ry * 2.4)
    return mask


def render_scene(seed: int, size: int = 64, domain: str = "A") -> tuple[np.ndarray, np.ndarray]:
    """Render scene ``seed`` in ``domain``.

    Returns:
        The image, (size, size, 3) float32 in [0, 1], and the animal mask, (size, size) bool.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")
    rng = np.random.default_rng(seed)
    mask = _scene_layout(rng, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    # Grass: green with a vertical gradient and blotchy noise; the same in both domains.
    grass = np.stack([0.30 + 0.1 * yy, 0.62 - 0.15 * yy, 0.22 + 0.0 * yy], axis=-1)
    grass += rng.normal(0, 0.03, (size, size, 1)).astype(np.float32)
    shade = (0.85 + 0.3 * (1 - yy))[..., None]  # lit from above
    if domain == "A":
        coat = np.array([0.55, 0.32, 0.15]) * rng.uniform(0.8, 1.2)
        animal = np.broadcast_to(coat, (size, size, 3)) * shade
    else:
        angle = rng.uniform(-0.6, 0.6)
        period = rng.uniform(0.07, 0.1)
        phase = rng.uniform(0, 1)
        stripes = np.sin(2 * np.pi * ((xx * np.cos(angle) + yy * np.sin(angle)) / period + phase)) > 0
        animal = np.where(stripes[..., None], 0.95, 0.08) * np.ones(3) * shade
    image = np.where(mask[..., None], animal, grass)
    return np.clip(image, 0, 1).astype(np.float32), mask


def scene_seed(seed: int, split: str, domain: str, index: int) -> int:
    """Disjoint seeds per (split, domain): the domains never show the same scene, so the data are unpaired."""
    offset = _SPLIT_OFFSET[split] * 2 + DOMAINS.index(domain)
    return int(np.random.SeedSequence([seed, offset, index]).generate_state(1)[0])


class SyntheticUnpairedDataset(Dataset):
    """``num`` scenes per domain, unpaired; items like :class:`~i2i.data.unpaired.UnpairedDataset`'s.

    Args:
        num: Images per domain.
        size: Side in pixels.
        seed: Dataset seed (train and test scenes never coincide).
        split: ``train`` or ``test``.
        transform: Augmentation applied to each image on its own; None for none.
    """

    def __init__(
        self,
        num: int,
        size: int = 64,
        *,
        seed: int = 0,
        split: str = "train",
        transform: PairedTransform | None = None,
    ) -> None:
        if split not in _SPLIT_OFFSET:
            raise ConfigError(f"synthetic unpaired data has splits train and test, not {split!r}")
        if num < 1 or size < 8:
            raise ConfigError("data.synthetic: num_train/num_test must be >= 1 and size >= 8")
        self.num, self.size, self.seed, self.split, self.transform = num, size, seed, split, transform

    def __len__(self) -> int:
        return self.num

    def _image(self, domain: str, index: int, seed: int) -> torch.Tensor:
        image, _ = render_scene(scene_seed(self.seed, self.split, domain, index), self.size, domain)
        return image_to_tensor(image) if self.transform is None else self.transform(image, image, seed)[0]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key, len(self))
        rng = np.random.default_rng(seed % 2**64)
        index_b = int(rng.integers(self.num))
        seed_a, seed_b = (int(s) for s in rng.integers(0, 2**31, size=2))
        return {
            "a": self._image("A", index, seed_a),
            "b": self._image("B", index_b, seed_b),
            "name": f"{index:05d}",
        }
