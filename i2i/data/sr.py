"""Super-resolution data: a folder of HR photos -> (LR, HR) pairs made on the fly.

Training items are random ``crop_size`` HR crops (flipped and rotated by 90 degrees when ``augment``) and
their LR counterpart: optional Gaussian blur of the HR crop, bicubic downscaling with antialiasing (the
MATLAB ``imresize`` / PIL convention the SR benchmarks use) by ``scale``, optional Gaussian noise, optional
JPEG compression, then 8-bit quantisation, since real inputs are 8-bit images (the classic "blur, downsample,
noise, JPEG" degradation of Real-ESRGAN's first order). All randomness comes from the item's seed, so an
exact resume sees the same crops.

Validation items are deterministic: the HR image cropped to a multiple of ``scale`` (optionally a centred
crop), and the LR made the same way with a per-image seed, or read from a folder of ready-made LR images
(DIV2K's ``DIV2K_valid_LR_bicubic/X4/0801x4.png`` for ``DIV2K_valid_HR/0801.png``).

Tensors are ``(3, H, W)`` float32 in **[0, 1]**, the range of every SR network here (BasicSR's convention),
not the ``[-1, 1]`` of the translation datasets.

DIV2K layout (``i2i datasets download div2k``): ``datasets/DIV2K/DIV2K_train_HR/0001.png`` ...,
``datasets/DIV2K/DIV2K_valid_HR/0801.png`` ..., optionally ``datasets/DIV2K/DIV2K_valid_LR_bicubic/X4/``.

Example:
    >>> hr = FolderImages("datasets/DIV2K/DIV2K_train_HR")  # doctest: +SKIP
    >>> train = SRDataset(hr, Degradation(scale=4), crop_size=96)  # doctest: +SKIP
    >>> item = train[(0, 123)]  # doctest: +SKIP
    >>> item["lr"].shape, item["hr"].shape  # doctest: +SKIP
    (torch.Size([3, 24, 24]), torch.Size([3, 96, 96]))
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from i2i.data.images import list_images, read_image
from i2i.data.paired import split_key
from i2i.data.synthetic import SPLITS, _scene_seed, render_pair
from i2i.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SCALES = (1, 2, 3, 4, 8)


# ----------------------------------------------------------------------------- HR image sources


class FolderImages:
    """The HR images of a folder (sorted; recursive), read as (H, W, 3) float32 RGB in [0, 1]."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.files = list_images(self.folder, recursive=True)
        log.info("%s: %d HR images", self.folder, len(self.files))

    def __len__(self) -> int:
        return len(self.files)

    def name(self, index: int) -> str:
        return self.files[index].stem

    def source(self, index: int) -> str:
        return str(self.files[index])

    def read(self, index: int) -> np.ndarray:
        return read_image(self.files[index])


class SyntheticImages:
    """Procedurally rendered scenes (:mod:`i2i.data.synthetic`) as HR images: dry runs and tests offline."""

    def __init__(self, num: int, size: int, *, seed: int = 0, split: str = "train") -> None:
        if split not in SPLITS or num < 1 or size < 8:
            raise ConfigError(f"synthetic HR images: need num >= 1, size >= 8, split in {SPLITS}")
        self.num, self.size, self.seed, self.split = num, size, seed, split

    def __len__(self) -> int:
        return self.num

    def name(self, index: int) -> str:
        return f"{index:05d}"

    def source(self, index: int) -> str:
        return f"synthetic {self.split} scene {index:05d}"

    def read(self, index: int) -> np.ndarray:
        return render_pair(_scene_seed(self.seed, self.split, index), self.size)[1]


# ----------------------------------------------------------------------------- degradation


@dataclass(frozen=True)
class Degradation:
    """How LR images are made from HR ones. Ranges ``(low, high)`` are sampled uniformly per image.

    Attributes:
        scale: Downscaling factor.
        blur_sigma: Gaussian blur of the HR image, sigma in HR pixels; ``(0, 0)``: none.
        noise_sigma: Gaussian noise added to the LR image, in 8-bit levels (0-255); ``(0, 0)``: none.
        jpeg_quality: JPEG quality range applied to the LR image; ``(0, 0)``: none.
    """

    scale: int
    blur_sigma: tuple[float, float] = (0.0, 0.0)
    noise_sigma: tuple[float, float] = (0.0, 0.0)
    jpeg_quality: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ConfigError(f"model.scale: {self.scale}; choose one of {', '.join(map(str, SCALES))}")
        for name in ("blur_sigma", "noise_sigma", "jpeg_quality"):
            low, high = getattr(self, name)
            if low < 0 or high < low:
                raise ConfigError(f"data.sr.{name}: expected 0 <= low <= high, got [{low}, {high}]")
        if self.jpeg_quality != (0, 0) and not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ConfigError(f"data.sr.jpeg_quality: qualities are 1..100, got {list(self.jpeg_quality)}")

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """LR image for ``hr``. Shape: (H, W, 3) float32 in [0, 1], H and W multiples of ``scale`` ->
        (H / scale, W / scale, 3) float32 in [0, 1], quantised to 8 bits."""
        image = hr
        sigma = rng.uniform(*self.blur_sigma) if self.blur_sigma[1] > 0 else 0.0
        if sigma > 0:
            radius = max(1, math.ceil(3 * sigma))
            image = cv2.GaussianBlur(
                image, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT
            )
        lr = bicubic_downscale(image, self.scale)
        noise = rng.uniform(*self.noise_sigma) if self.noise_sigma[1] > 0 else 0.0
        if noise > 0:
            lr = lr + rng.standard_normal(lr.shape).astype(np.float32) * (noise / 255.0)
        lr = np.clip(lr, 0.0, 1.0)
        if self.jpeg_quality[1] > 0:
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            lr = jpeg(lr, quality)
        return np.round(lr * 255.0).astype(np.float32) / 255.0


def bicubic_downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscaling by an integer factor (PIL / MATLAB ``imresize`` style).

    Shape: (H, W, C) -> (H / scale, W / scale, C), float32, not clipped.
    """
    if scale == 1:
        return image.astype(np.float32, copy=True)
    height, width = image.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]
    y = F.interpolate(
        x, size=(height // scale, width // scale), mode="bicubic", antialias=True, align_corners=False
    )
    return y[0].numpy().transpose(1, 2, 0)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip at ``quality``. Shape: (H, W, 3) float32 in [0, 1] -> same."""
    pixels = cv2.cvtColor(np.round(image * 255.0).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes an 8-bit 3-channel array
        raise DataError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def to_tensor(image: np.ndarray) -> Tensor:
    """(H, W, 3) float in [0, 1] -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flip and rotation by a multiple of 90 degrees (the 8 dihedral symmetries)."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return np.rot90(image, k=int(rng.integers(4)))


# ----------------------------------------------------------------------------- datasets


class SRDataset(Dataset):
    """Random HR crops and their degraded LR, for training.

    Args:
        images: The HR images (:class:`FolderImages`, :class:`SyntheticImages`).
        degradation: How LR is made (scale, blur, noise, JPEG).
        crop_size: HR crop side (``data.crop_size``), a multiple of the scale; SRGAN uses 96, ESRGAN 128.
        augment: Random flips and 90-degree rotations.
        repeats: Crops per image per epoch: a few large photos still fill many batches.

    Shape:
        ``item["lr"]``: (3, crop / scale, crop / scale), ``item["hr"]``: (3, crop, crop), float32 in [0, 1].

    Raises:
        DataError: (when reading) an image smaller than the crop, naming the file and the fix.
    """

    def __init__(
        self,
        images: FolderImages | SyntheticImages,
        degradation: Degradation,
        crop_size: int,
        augment: bool = True,
        repeats: int = 1,
    ) -> None:
        if crop_size < degradation.scale or crop_size % degradation.scale:
            scale = degradation.scale
            raise ConfigError(
                f"data.crop_size: {crop_size} is not a multiple of the scale {scale}; the HR crop must "
                f"divide into whole LR pixels (e.g. {max(1, crop_size // scale) * scale})"
            )
        if repeats < 1:
            raise ConfigError(f"data.sr.repeats must be >= 1, got {repeats}")
        self.images, self.degradation, self.crop_size, self.augment = images, degradation, crop_size, augment
        self.repeats = repeats

    def __len__(self) -> int:
        return len(self.images) * self.repeats

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor | str]:
        index, seed = split_key(key, len(self))
        index %= len(self.images)
        hr = self.images.read(index)
        height, width = hr.shape[:2]
        crop = self.crop_size
        if min(height, width) < crop:
            raise DataError(
                f"{self.images.source(index)} is {width}x{height}, smaller than the {crop}x{crop} HR "
                "training crop; remove or upscale the image, or lower data.crop_size"
            )
        rng = np.random.default_rng(seed)
        top, left = int(rng.integers(height - crop + 1)), int(rng.integers(width - crop + 1))
        patch = hr[top : top + crop, left : left + crop]
        if self.augment:
            patch = np.ascontiguousarray(_augment(patch, rng))
        lr = self.degradation(patch, rng)
        return {"lr": to_tensor(lr), "hr": to_tensor(patch), "name": self.images.name(index)}


class SRPairsDataset(Dataset):
    """Deterministic (LR, HR) validation pairs.

    The HR image is cropped to a multiple of ``scale`` (its bottom/right rows go, as BasicSR's ``mod_crop``),
    then to a centred ``crop_size`` square when given. The LR is the degraded whole HR image (seeded by the
    image index), or the file ``<stem>x<scale>.<ext>`` / ``<stem>.<ext>`` of ``lr_folder``, cropped to match.

    Args:
        images: The HR images.
        degradation: How LR is made when there is no ``lr_folder``.
        crop_size: HR side of the centred crop; 0 keeps whole images (then items differ in size).
        lr_folder: Folder of ready-made LR images (DIV2K ``DIV2K_valid_LR_bicubic/X4``), or None.
        limit: Use only the first ``limit`` images (0: all).

    Shape:
        ``item["lr"]``: (3, h, w), ``item["hr"]``: (3, h * scale, w * scale), float32 in [0, 1].
    """

    def __init__(
        self,
        images: FolderImages | SyntheticImages,
        degradation: Degradation,
        *,
        crop_size: int = 0,
        lr_folder: str | Path | None = None,
        limit: int = 0,
    ) -> None:
        scale = degradation.scale
        if crop_size < 0 or crop_size % scale:
            raise ConfigError(f"data.sr.val_crop_size: {crop_size} is not a multiple of the scale {scale}")
        self.images, self.degradation, self.crop_size = images, degradation, crop_size
        self.length = min(len(images), limit) if limit > 0 else len(images)
        self.lr_files: dict[str, Path] | None = None
        if lr_folder:
            files = list_images(lr_folder)
            by_stem = {p.stem: p for p in files}
            self.lr_files = {}
            for index in range(self.length):
                stem = images.name(index)
                match = by_stem.get(f"{stem}x{scale}") or by_stem.get(stem)
                if match is None:
                    raise DataError(
                        f"{lr_folder} has no LR image for {images.source(index)} (expected "
                        f"{stem}x{scale}.png or {stem}.png); point data.sr.lr_split at the x{scale} LR "
                        "folder, or leave it empty to make LR images by bicubic downscaling"
                    )
                self.lr_files[stem] = match

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor | str]:
        index, _ = split_key(key, self.length)
        scale, crop = self.degradation.scale, self.crop_size
        hr = self.images.read(index)
        height, width = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
        if crop and min(height, width) < crop:
            raise DataError(
                f"{self.images.source(index)} is {hr.shape[1]}x{hr.shape[0]}, smaller than the {crop}x{crop} "
                "validation crop; lower data.sr.val_crop_size"
            )
        top, left = (
            ((height - crop) // 2 // scale * scale, (width - crop) // 2 // scale * scale) if crop else (0, 0)
        )
        size_h, size_w = (crop, crop) if crop else (height, width)
        name = self.images.name(index)
        if self.lr_files is not None:
            path = self.lr_files[name]
            lr_full = read_image(path)
            if lr_full.shape[0] < height // scale or lr_full.shape[1] < width // scale:
                raise DataError(
                    f"{path} is {lr_full.shape[1]}x{lr_full.shape[0]} but its HR image "
                    f"{self.images.source(index)} is {hr.shape[1]}x{hr.shape[0]}: not a x{scale} pair"
                )
        else:
            # The whole image is degraded, then cropped: the crop's border pixels see their true neighbours.
            whole = np.ascontiguousarray(hr[:height, :width])
            lr_full = self.degradation(whole, np.random.default_rng(index))
        lr = lr_full[top // scale : (top + size_h) // scale, left // scale : (left + size_w) // scale]
        hr = hr[top : top + size_h, left : left + size_w]
        return {"lr": to_tensor(lr), "hr": to_tensor(hr), "name": name}


def sr_datasets(
    *,
    source: str,
    root: str | Path,
    train_split: str,
    test_split: str,
    degradation: Degradation,
    crop_size: int,
    val_crop_size: int,
    val_images: int,
    lr_split: str = "",
    augment: bool = True,
    repeats: int = 1,
    synthetic: tuple[int, int, int] = (64, 8, 96),
    seed: int = 0,
) -> tuple[SRDataset, SRPairsDataset]:
    """The training and validation sets of an SR run.

    Args:
        source: ``folder`` (``root/train_split`` and ``root/test_split`` hold HR images) or ``synthetic``.
        root: Dataset folder (DIV2K: ``datasets/DIV2K`` with splits ``DIV2K_train_HR``, ``DIV2K_valid_HR``).
        train_split: Training HR folder under ``root``.
        test_split: Validation HR folder under ``root``.
        degradation: How LR images are made.
        crop_size: HR training crop side.
        val_crop_size: HR side of the centred validation crops (0: whole images).
        val_images: Validation images to use (0: all).
        lr_split: Folder under ``root`` with ready-made validation LR images, or ``""``.
        augment: Flips and rotations of the training crops.
        repeats: Random crops per training image per epoch.
        synthetic: ``(num_train, num_test, size)`` of the synthetic source.
        seed: Seed of the synthetic scenes.
    """
    if source == "synthetic":
        num_train, num_test, size = synthetic
        train_images = SyntheticImages(num_train, size, seed=seed, split="train")
        test_images = SyntheticImages(num_test, size, seed=seed, split="test")
        lr_folder = None
    elif source == "folder":
        if not str(root):
            raise ConfigError(
                "data.root: no dataset folder given; set it to a folder of HR images with train/test "
                "subfolders (e.g. --set data.root=datasets/DIV2K after `i2i datasets download div2k`) or use "
                "data.source=synthetic"
            )
        train_images = FolderImages(Path(root) / train_split)
        test_images = FolderImages(Path(root) / test_split)
        lr_folder = Path(root) / lr_split if lr_split else None
    else:
        raise ConfigError(f"data.source: {source!r} is not an SR source; choose folder or synthetic")
    train = SRDataset(train_images, degradation, crop_size, augment=augment, repeats=repeats)
    test = SRPairsDataset(
        test_images, degradation, crop_size=val_crop_size, lr_folder=lr_folder, limit=val_images
    )
    return train, test
