"""Paired augmentation: the same random geometry for A and B, reproducible from one integer seed.

The preprocessing modes follow junyanz/pytorch-CycleGAN-and-pix2pix (``--preprocess``). All randomness
comes from ``np.random.default_rng(seed)``, so a seed gives bitwise identical tensors, which an exact
training resume needs; no global RNG is touched.

Example:
    >>> transform = PairedTransform(load_size=286, crop_size=256)
    >>> a = b = np.zeros((300, 400, 3), np.float32)
    >>> x, y = transform(a, b, seed=7)
    >>> tuple(x.shape)
    (3, 256, 256)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from i2i.data.images import image_to_tensor
from i2i.errors import ConfigError, DataError

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
_CROP_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")
_SIZE_MULTIPLE = 4  # "none" rounds H and W to this, so U-Net/ResNet down/up-sampling shapes line up


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an ``(H, W, C)`` float image in ``[0, 1]``: area when shrinking, bicubic otherwise.

    Area averaging anti-aliases downscaling (as PIL's bicubic does in the reference code); bicubic
    overshoots, so the result is clipped back to ``[0, 1]``.
    """
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width <= image.shape[1] and height <= image.shape[0]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    out = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)
    if out.ndim == 2:  # cv2 drops a trailing single channel
        out = out[:, :, None]
    return np.clip(out, 0.0, 1.0, out=out)


def _round_to_multiple(value: int, base: int = _SIZE_MULTIPLE) -> int:
    return max(base, int(round(value / base) * base))


@dataclass
class PairedTransform:
    """Resize/crop/flip an (A, B) pair identically and convert both to ``[-1, 1]`` tensors.

    Modes (``data.preprocess``), when ``train`` is true:
        - ``resize_and_crop``: resize to ``load_size`` x ``load_size``, random ``crop_size`` crop.
        - ``crop``: random ``crop_size`` crop of the original.
        - ``scale_width``: resize to width ``load_size`` keeping the aspect ratio (height at least
          ``crop_size``); output is not square.
        - ``scale_width_and_crop``: ``scale_width``, then a random ``crop_size`` crop.
        - ``none``: keep the size, rounded to multiples of 4.

    With ``train`` false nothing is random: ``resize_and_crop`` resizes straight to ``crop_size``
    (the whole image), the crop modes take the center crop, and there is no flip.

    Args:
        load_size: size images are resized to before cropping.
        crop_size: size of the (square) crop fed to the networks.
        preprocess: one of :data:`PREPROCESS_MODES`.
        flip: horizontal flip with probability 0.5 (training only).
        train: random augmentation if true, deterministic evaluation geometry otherwise.

    Shape:
        - Input: ``a``, ``b``: ``(H, W, 3)`` float32 in ``[0, 1]``.
        - Output: two ``(3, crop_size, crop_size)`` float32 tensors in ``[-1, 1]`` (``scale_width`` and
          ``none``: ``(3, H', W')``).
    """

    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"
    flip: bool = True
    train: bool = True

    def __post_init__(self) -> None:
        if self.preprocess not in PREPROCESS_MODES:
            raise ConfigError(
                f"data.preprocess must be one of {', '.join(PREPROCESS_MODES)}; got {self.preprocess!r}."
            )
        for field in ("load_size", "crop_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"data.{field} must be a positive integer; got {value!r}.")
        for field in ("flip", "train"):
            if not isinstance(getattr(self, field), bool):
                raise ConfigError(f"data.{field} must be true or false; got {getattr(self, field)!r}.")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ConfigError(
                f"data.crop_size ({self.crop_size}) is larger than data.load_size ({self.load_size}), "
                f"so data.preprocess={self.preprocess!r} cannot crop it; lower data.crop_size or raise "
                "data.load_size."
            )

    def __call__(self, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform a pair with the geometry drawn from ``seed``.

        Raises:
            DataError: the images are smaller than ``crop_size`` (``crop`` mode) or, in modes that do
                not resize, A and B differ in size. Datasets add the file names.
        """
        for name, image in (("A", a), ("B", b)):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"image {name} must be (H, W, 3), got shape {image.shape}")
        rng = np.random.default_rng(int(seed) % 2**64)  # negative seeds are fine too
        a, b = self._resize_pair(a, b)
        if self.preprocess in _CROP_MODES:
            a, b = self._crop_pair(a, b, rng)
        if self.train and self.flip and rng.random() < 0.5:
            a, b = a[:, ::-1], b[:, ::-1]
        return image_to_tensor(a), image_to_tensor(b)

    def _resize_pair(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = a.shape[:2]
        mode = self.preprocess
        if mode == "resize_and_crop":
            size = self.load_size if self.train else self.crop_size
            return resize(a, size, size), resize(b, size, size)
        if mode in ("scale_width", "scale_width_and_crop"):
            # As in the reference: width = load_size, height keeps the aspect but is at least crop_size.
            new_height = int(max(self.load_size * height / width, self.crop_size))
            return resize(a, self.load_size, new_height), resize(b, self.load_size, new_height)
        if a.shape != b.shape:
            raise DataError(
                f"A is {a.shape[1]}x{a.shape[0]} but B is {b.shape[1]}x{b.shape[0]}; the two images of a "
                f"pair must have the same size with data.preprocess={mode!r} (or use 'resize_and_crop')."
            )
        if mode == "none":
            new_width, new_height = _round_to_multiple(width), _round_to_multiple(height)
            return resize(a, new_width, new_height), resize(b, new_width, new_height)
        return a, b  # "crop"

    def _crop_pair(
        self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        height, width = a.shape[:2]
        size = self.crop_size
        if height < size or width < size:
            raise DataError(
                f"image is {width}x{height}, smaller than data.crop_size={size}; use larger images, "
                "lower data.crop_size, or data.preprocess='resize_and_crop'."
            )
        if self.train:
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
        else:
            top, left = (height - size) // 2, (width - size) // 2
        window = (slice(top, top + size), slice(left, left + size))
        return a[window], b[window]
