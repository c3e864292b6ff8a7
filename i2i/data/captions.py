"""Images with captions, for text-to-image: a plain folder with ``metadata.jsonl`` or ``.txt`` sidecars.

Two layouts are read, per split folder (``ROOT/train``, ``ROOT/test``; ``ROOT`` itself when it has no such
subfolder):

- ``metadata.jsonl`` (the Hugging Face ``imagefolder`` convention): one JSON object per line,
  ``{"file_name": "0001.png", "text": "a small red bird"}``, ``file_name`` relative to the file's folder.
  ``text`` may also be a list of captions, and a file may appear on several lines (its captions add up).
- ``.txt`` sidecars: ``bird.jpg`` + ``bird.txt`` in the same folder, one caption per non-empty line (the
  CUB-200 / Oxford-102 caption files hold 10). :mod:`i2i.data.caption_convert` turns the reference
  repositories' ``text_c10/<class>/<image>.txt`` layout into the first form.

An image without a caption, an empty caption, or a metadata line naming a missing file is a
:class:`~i2i.errors.DataError` that names the file (and line) and says how to fix it.

Every item is one image and **one** of its captions, drawn from the item's sample seed (a new caption each
epoch, reproducibly; the held-out split always takes the first). Datasets keep every distinct caption in
:attr:`CaptionDataset.texts`, so a frozen text encoder embeds the whole dataset once
(:func:`i2i.nets.text.embed_captions`) and items carry the cached embedding.

Items: ``{"image": (3, S, S) in [-1, 1], "caption": str, "caption_id": int64 ()}`` plus
``"embedding": (D,)`` when embeddings are attached and ``"tokens": (L,) int64`` when a tokenizer is.

Example:
    >>> train = CaptionFolderDataset("datasets/cub/captions", "train", image_size=64)  # doctest: +SKIP
    >>> train[0]["caption"]  # doctest: +SKIP
    'this bird has a white belly and a short orange beak'
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from i2i.data.folders import center_square, split_folder
from i2i.data.images import image_to_tensor, is_image_file, list_images, read_image
from i2i.data.paired import split_key
from i2i.errors import DataError

log = logging.getLogger(__name__)

METADATA_FILE = "metadata.jsonl"
_SHOWN = 3  # problems named in an error message before "..., (N in all)"


@dataclass
class CaptionedImage:
    """One image file and its captions (at least one, none empty)."""

    path: Path
    captions: list[str]


def clean_caption(text: str) -> str:
    """One line of single-spaced text: captions compare and cache by this form."""
    return " ".join(text.split())


def listed(items: Sequence[object]) -> str:
    """The first few items for an error message: ``a, b, c, ... (12 in all)``."""
    shown = ", ".join(str(i) for i in items[:_SHOWN])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOWN else "")


def read_metadata(path: str | Path) -> list[CaptionedImage]:
    """The images and captions listed in a ``metadata.jsonl`` file, in file order.

    Raises:
        DataError: a line that is not a JSON object with ``file_name`` and a non-empty ``text`` (string or
            list of strings), or that names a file that does not exist.
    """
    path = Path(path)
    folder = path.parent
    found: dict[Path, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the caption file ({exc})") from exc
    expected = 'expected {"file_name": "image.png", "text": "a caption"} on every line'
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}); {expected}") from exc
        if not isinstance(record, dict) or not isinstance(record.get("file_name"), str):
            raise DataError(f'{where}: no "file_name" string; {expected}')
        if "text" not in record:
            keys = ", ".join(record) or "none"
            raise DataError(f'{where}: no "text" field (keys: {keys}); {expected}')
        texts = record["text"] if isinstance(record["text"], list) else [record["text"]]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise DataError(f'{where}: "text" must be a string or a list of strings; {expected}')
        captions = [clean_caption(t) for t in texts]
        if not all(captions):
            raise DataError(
                f"{where}: empty caption for {record['file_name']!r}; write a caption or remove the line"
            )
        image = (folder / record["file_name"]).resolve()
        if not image.is_file():
            raise DataError(
                f"{where}: {record['file_name']!r} does not exist in {folder}; file_name is relative to "
                "the folder of metadata.jsonl"
            )
        found.setdefault(image, []).extend(captions)
    return [CaptionedImage(p, c) for p, c in found.items()]


def read_sidecar(path: str | Path) -> list[str]:
    """The captions of a ``.txt`` sidecar, one per non-empty line (undecodable bytes replaced).

    Raises:
        DataError: the file holds no caption.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the caption file ({exc})") from exc
    captions = [c for c in (clean_caption(line) for line in text.splitlines()) if c]
    if not captions:
        raise DataError(f"{path}: the caption file is empty; write at least one caption line, or remove it")
    return captions


def _check_all_captioned(folder: Path, images: list[Path], captioned: set[Path], how: str) -> None:
    missing = [p.relative_to(folder).as_posix() for p in images if p.resolve() not in captioned]
    if missing:
        raise DataError(
            f"{folder}: {len(missing)} image(s) have no caption ({listed(missing)}); {how}, or remove "
            "these images"
        )


def scan_caption_folder(folder: str | Path) -> list[CaptionedImage]:
    """Every image of ``folder`` with its captions: from ``metadata.jsonl`` if present, else sidecars.

    Raises:
        DataError: no images; an image without a caption; an empty caption; a bad metadata line.
    """
    folder = Path(folder)
    metadata = folder / METADATA_FILE
    images = list_images(folder, recursive=True)
    if metadata.is_file():
        items = read_metadata(metadata)
        if not items:
            raise DataError(f"{metadata}: lists no images; add one line per image or remove the file")
        how = f"add a line for each to {metadata}"
        _check_all_captioned(folder, images, {i.path for i in items}, how)
        return items
    items, missing = [], []
    for image in images:
        sidecar = image.with_suffix(".txt")
        if sidecar.is_file():
            items.append(CaptionedImage(image, read_sidecar(sidecar)))
        else:
            missing.append(image)
    if missing:
        how = f"add a .txt file with the same name beside each (or one {METADATA_FILE} for the folder)"
        _check_all_captioned(folder, missing, set(), how)
    return items


# ----------------------------------------------------------------------------- datasets


class CaptionDataset(Dataset, ABC):
    """What every captioned dataset shares: the caption table, caption choice and text features.

    Subclasses set :attr:`texts` (every distinct caption) and :attr:`item_captions` (for each image, the
    indices of its captions in ``texts``) and implement :meth:`image`.

    Attributes:
        texts: Distinct captions in first-seen order; the rows of :attr:`embeddings`.
        item_captions: Per image, indices into ``texts``.
        train: Draw a random caption per item (else always the first) and augment.
        embeddings: ``(len(texts), D)`` sentence embeddings, or None (see :meth:`set_text_features`).
        tokenize: Text -> ``(L,)`` int64 token ids, or None.
    """

    texts: list[str]
    item_captions: list[list[int]]
    train: bool

    def __init__(self) -> None:
        self.embeddings: Tensor | None = None
        self.tokenize: Callable[[str], Tensor] | None = None

    def _index_captions(self, captions: Sequence[Sequence[str]]) -> None:
        ids: dict[str, int] = {}
        self.item_captions = [[ids.setdefault(c, len(ids)) for c in item] for item in captions]
        self.texts = list(ids)

    def set_text_features(
        self, *, embeddings: Tensor | None = None, tokenize: Callable[[str], Tensor] | None = None
    ) -> None:
        """Attach cached sentence embeddings (one row per :attr:`texts` entry) and/or a tokenizer."""
        if embeddings is not None and embeddings.shape[0] != len(self.texts):
            raise ValueError(
                f"expected {len(self.texts)} embeddings, one per caption; got {embeddings.shape[0]}"
            )
        self.embeddings, self.tokenize = embeddings, tokenize

    def __len__(self) -> int:
        return len(self.item_captions)

    @abstractmethod
    def image(self, index: int, seed: int) -> Tensor:
        """The ``index``-th image, augmented from ``seed`` when training. Shape: ``(3, S, S)``, [-1, 1]."""

    def caption_id(self, index: int, seed: int) -> int:
        """Which caption of image ``index`` this item uses: one drawn from ``seed``, or the first."""
        options = self.item_captions[index]
        if not self.train or len(options) == 1:
            return options[0]
        # Its own stream: the image augmentation draws from default_rng(seed) independently.
        return options[int(np.random.default_rng([seed, 1]).integers(len(options)))]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor | str]:
        index, seed = split_key(key, len(self))
        cid = self.caption_id(index, seed)
        item: dict[str, Tensor | str] = {
            "image": self.image(index, seed),
            "caption": self.texts[cid],
            "caption_id": torch.tensor(cid),
        }
        if self.embeddings is not None:
            item["embedding"] = self.embeddings[cid]
        if self.tokenize is not None:
            item["tokens"] = self.tokenize(self.texts[cid])
        return item


class CaptionFolderDataset(CaptionDataset):
    """A folder of captioned images (see the module docstring for the layouts).

    Training items are resized so the shorter side is ``load_size``, randomly cropped to ``image_size``
    and flipped with probability 1/2 (the DF-GAN/AttnGAN preprocessing, 76/64 of the size); held-out
    items are resized to ``image_size`` and centre-cropped.

    Args:
        root: Dataset folder; ``root/split`` is used when it exists, else ``root``.
        split: Split subfolder name (``train``, ``test``).
        image_size: Output side ``S``.
        load_size: Shorter side before the random crop (at least ``image_size``; 0:
            ``image_size * 76 // 64``).
        flip: Random horizontal flips when training.
        train: Random crops, flips and captions; otherwise deterministic.

    Shape:
        - ``item["image"]``: ``(3, image_size, image_size)`` in ``[-1, 1]``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        image_size: int = 64,
        load_size: int = 0,
        flip: bool = True,
        train: bool = True,
    ) -> None:
        super().__init__()
        self.folder = split_folder(root, split)
        self.image_size, self.flip, self.train = image_size, flip, train
        self.load_size = max(image_size, load_size or image_size * 76 // 64)
        items = scan_caption_folder(self.folder)
        self.paths = [i.path for i in items]
        self._index_captions([i.captions for i in items])
        log.info("%s: %d images, %d distinct captions", self.folder, len(self.paths), len(self.texts))

    def image(self, index: int, seed: int) -> Tensor:
        path = self.paths[index]
        if not self.train:
            return image_to_tensor(center_square(read_image(path), self.image_size))
        rng = np.random.default_rng(seed)
        image = center_square(read_image(path), self.load_size)
        size = self.image_size
        top, left = (int(rng.integers(0, self.load_size - size + 1)) for _ in range(2))
        image = image[top : top + size, left : left + size]
        if self.flip and rng.random() < 0.5:
            image = image[:, ::-1]
        return image_to_tensor(image)


def is_caption_folder(folder: str | Path) -> bool:
    """Whether ``folder`` looks like a captioned image folder (metadata.jsonl or a captioned image)."""
    folder = Path(folder)
    if (folder / METADATA_FILE).is_file():
        return True
    return folder.is_dir() and any(
        is_image_file(p) and p.with_suffix(".txt").is_file() for p in folder.iterdir()
    )
