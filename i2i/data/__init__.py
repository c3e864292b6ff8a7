"""Data layer: image I/O, paired augmentation, paired and synthetic datasets.

Images are ``(H, W, 3)`` float32 in ``[0, 1]`` on disk's side and ``(3, H, W)`` float32 tensors in
``[-1, 1]`` on the models' side; the conversion happens here and nowhere else.
"""

from __future__ import annotations

from i2i.data.images import (
    IMAGE_EXTENSIONS,
    image_to_tensor,
    is_image_file,
    list_images,
    read_image,
    read_image_size,
    save_image,
    tensor_to_image,
)
from i2i.data.paired import PairedDataset
from i2i.data.synthetic import SyntheticPairedDataset, render_pair, write_synthetic_dataset
from i2i.data.transforms import PREPROCESS_MODES, PairedTransform

__all__ = [
    "IMAGE_EXTENSIONS",
    "PREPROCESS_MODES",
    "PairedDataset",
    "PairedTransform",
    "SyntheticPairedDataset",
    "image_to_tensor",
    "is_image_file",
    "list_images",
    "read_image",
    "read_image_size",
    "render_pair",
    "save_image",
    "tensor_to_image",
    "write_synthetic_dataset",
]
