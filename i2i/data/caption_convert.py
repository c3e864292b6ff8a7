"""Convert the CUB-200 / Oxford-102 caption layout of the reference text-to-image code to a caption folder.

The reference repositories (Reed et al. 2016 ``cvpr2016_cub`` / ``cvpr2016_flowers``; AttnGAN and DF-GAN
``birds``) keep captions and images apart:

- captions: ``TEXT/<class>/<image>.txt``, ten captions per image, one per line (Reed: ``text_c10/``,
  AttnGAN: ``text/``);
- images: ``IMAGES/<class>/<image>.jpg`` (CUB: ``CUB_200_2011/images``) or ``IMAGES/<image>.jpg``
  (Oxford-102: ``jpg/``);
- a class-disjoint split: Reed's ``trainvalclasses.txt`` / ``testclasses.txt``, one class per line (CUB
  150 / 50 classes, Oxford-102 82 / 20). A ``testclasses.txt`` beside the text folder is used by default.

:func:`convert_captions` writes ``OUT/train`` and ``OUT/test``, each with the images under ``<class>/`` (hard
links when the file system allows, else copies) and one ``metadata.jsonl`` (the Hugging Face imagefolder
convention, :mod:`i2i.data.captions`): ``{"file_name": "<class>/<image>.jpg", "text": ["...", ...]}``.

Example:
    >>> report = convert_captions("CUB_200_2011/images", "cvpr2016_cub/text_c10", "cub")  # doctest: +SKIP
    >>> report.images  # doctest: +SKIP
    {'train': 8855, 'test': 2933}
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from i2i.data.captions import METADATA_FILE, listed, read_sidecar
from i2i.data.images import list_images
from i2i.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLIT_FILE = "testclasses.txt"


@dataclass
class ConversionReport:
    """What :func:`convert_captions` wrote: per split, images, captions and classes."""

    output: Path
    images: dict[str, int] = field(default_factory=dict)
    captions: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    split_source: str = ""
    copied: int = 0  # files copied because they could not be hard-linked

    def summary(self) -> str:
        """One line per split, for the CLI."""
        lines = [
            f"{split}: {self.images[split]} images, {self.captions[split]} captions, "
            f"{self.classes[split]} classes -> {self.output / split}"
            for split in self.images
        ]
        lines.append(f"split: {self.split_source}")
        return "\n".join(lines)


def read_class_list(path: str | Path) -> list[str]:
    """Class names from a file with one per line (Reed's ``testclasses.txt``); blank lines ignored."""
    path = Path(path)
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the class list ({exc})") from exc
    if not names:
        raise DataError(f"{path}: the class list is empty; write one class folder name per line")
    return names


def _image_index(images: Path) -> tuple[dict[tuple[str, str], Path], dict[str, list[Path]]]:
    """Images by (parent folder name, stem) and by stem alone."""
    by_class: dict[tuple[str, str], Path] = {}
    by_stem: dict[str, list[Path]] = {}
    for path in list_images(images, recursive=True):
        by_class[(path.parent.name, path.stem)] = path
        by_stem.setdefault(path.stem, []).append(path)
    return by_class, by_stem


def _test_classes(
    classes: list[str], text: Path, test_classes: str | Path | None, test_fraction: float
) -> tuple[set[str], str]:
    """The held-out classes and a sentence saying where they came from."""
    if test_classes is None:
        for candidate in (text / SPLIT_FILE, text.parent / SPLIT_FILE):
            if candidate.is_file():
                test_classes = candidate
                break
    if test_classes is not None:
        chosen = read_class_list(test_classes)
        unknown = sorted(set(chosen) - set(classes))
        if unknown:
            raise DataError(
                f"{test_classes}: {len(unknown)} class(es) have no caption folder in {text} "
                f"({listed(unknown)}); the names must be the folder names under the text folder"
            )
        return set(chosen), f"the classes listed in {test_classes}"
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"--test-fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    stride = max(2, round(1 / test_fraction))
    # Every stride-th class in name order: class-disjoint like the reference splits, and reproducible.
    chosen = set(classes[stride - 1 :: stride])
    return (
        chosen,
        f"every {stride}th class in name order ({len(chosen)} of {len(classes)}; --test-classes sets it)",
    )


def _place(source: Path, target: Path) -> bool:
    """Hard-link ``source`` to ``target`` (or copy it); True when it had to copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return False
    except OSError:
        shutil.copy2(source, target)
        return True


def convert_captions(
    images: str | Path,
    text: str | Path,
    output: str | Path,
    *,
    test_classes: str | Path | None = None,
    test_fraction: float = 0.25,
) -> ConversionReport:
    """Write a caption folder (``OUTPUT/train``, ``OUTPUT/test``) from the reference CUB/Oxford-102 layout.

    Args:
        images: The image folder: ``CUB_200_2011/images`` (``<class>/<image>.jpg``) or Oxford-102's ``jpg``.
        text: The caption folder with ``<class>/<image>.txt`` (``text_c10`` or ``text``).
        output: Where to write; ``OUTPUT/train`` and ``OUTPUT/test`` must not hold a caption folder yet.
        test_classes: A file naming the held-out classes, one per line; default: ``testclasses.txt`` beside
            or inside ``text`` when there is one (Reed's split), else ``test_fraction``.
        test_fraction: Share of the classes held out when no class list is found.

    Raises:
        DataError: missing folders, no caption files, caption files without an image, empty caption
            files, unknown class names, or an output folder that already holds a converted dataset.
    """
    images, text, output = Path(images), Path(text), Path(output)
    for folder, what in ((images, "image"), (text, "caption")):
        if not folder.is_dir():
            raise DataError(f"{folder}: the {what} folder does not exist")
    caption_files = sorted(p for p in text.glob("*/*.txt") if not p.name.startswith("."))
    if not caption_files:
        raise DataError(
            f"{text}: no caption files <class>/<image>.txt; give the folder that holds the class folders "
            "(text_c10 in Reed's archives, text in AttnGAN's birds.zip)"
        )
    for split in ("train", "test"):
        if (output / split / METADATA_FILE).exists():
            raise DataError(
                f"{output / split / METADATA_FILE} already exists; delete {output} or choose another --output"
            )
    by_class, by_stem = _image_index(images)
    matched: list[tuple[str, Path, Path]] = []  # (class, caption file, image)
    missing: list[str] = []
    for caption_file in caption_files:
        cls, stem = caption_file.parent.name, caption_file.stem
        image = by_class.get((cls, stem))
        if image is None and len(by_stem.get(stem, [])) == 1:
            image = by_stem[stem][0]
        if image is None:
            missing.append(f"{cls}/{stem}")
        else:
            matched.append((cls, caption_file, image))
    if missing:
        raise DataError(
            f"{images}: no image for {len(missing)} of {len(caption_files)} caption files "
            f"({listed(missing)}); point --images at the folder with the pictures "
            "(CUB: CUB_200_2011/images, Oxford-102: jpg)"
        )
    classes = sorted({cls for cls, _, _ in matched})
    held_out, source = _test_classes(classes, text, test_classes, test_fraction)
    if not set(classes) - held_out or not held_out:
        empty = "train" if held_out else "test"
        raise DataError(
            f"{text}: the {empty} split would be empty ({len(classes)} classes, {len(held_out)} held out, "
            f"chosen by {source}); list the test classes with --test-classes"
        )
    report = ConversionReport(output, split_source=source)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for cls, caption_file, image in matched:
        split = "test" if cls in held_out else "train"
        name = f"{cls}/{image.name}"
        captions = read_sidecar(caption_file)
        report.copied += _place(image, output / split / name)
        lines[split].append(json.dumps({"file_name": name, "text": captions}, ensure_ascii=False))
        report.captions[split] = report.captions.get(split, 0) + len(captions)
    for split, rows in lines.items():
        (output / split / METADATA_FILE).write_text("\n".join(rows) + "\n", encoding="utf-8")
        report.images[split] = len(rows)
        report.classes[split] = len({json.loads(r)["file_name"].split("/")[0] for r in rows})
    if report.copied:
        log.info("copied %d images (hard links are not possible across file systems)", report.copied)
    return report
