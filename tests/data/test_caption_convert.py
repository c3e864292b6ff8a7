"""The CUB-200 / Oxford-102 caption layout -> caption folders (and ``i2i datasets convert-captions``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from i2i.cli import main
from i2i.data.caption_convert import convert_captions, read_class_list
from i2i.data.captions import METADATA_FILE, CaptionFolderDataset
from i2i.data.images import save_image
from i2i.errors import ConfigError, DataError

CLASSES = ["001.Albatross", "002.Auklet", "003.Blackbird", "004.Bobolink"]


def reference_layout(root: Path, *, flat_images: bool = False, split_file: bool = True) -> tuple[Path, Path]:
    """Two images per class: CUB's ``images/<class>/<image>.jpg`` (or Oxford-102's flat ``jpg/``) and
    Reed et al.'s ``text_c10/<class>/<image>.txt`` with ``testclasses.txt`` beside it."""
    images, text = root / ("jpg" if flat_images else "images"), root / "cvpr2016" / "text_c10"
    for c, cls in enumerate(CLASSES):
        for i in range(2):
            stem = f"{cls.split('.')[1]}_{i:04d}"
            folder = images if flat_images else images / cls
            save_image(torch.full((3, 12, 16), c / 4 - 0.5), folder / f"{stem}.jpg")
            (text / cls).mkdir(parents=True, exist_ok=True)
            (text / cls / f"{stem}.txt").write_text(f"caption one of {stem}\n\ncaption two of {stem}\n")
    if split_file:
        (text.parent / "testclasses.txt").write_text("003.Blackbird\n")
    return images, text


def metadata(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / METADATA_FILE).read_text().splitlines()]


@pytest.mark.parametrize("flat_images", [False, True], ids=["cub", "oxford"])
def test_convert_uses_the_reference_class_split(tmp_path: Path, flat_images: bool) -> None:
    images, text = reference_layout(tmp_path, flat_images=flat_images)
    report = convert_captions(images, text, tmp_path / "out")
    assert report.images == {"train": 6, "test": 2} and report.classes == {"train": 3, "test": 1}
    assert report.captions == {"train": 12, "test": 4}  # blank lines are not captions
    assert "testclasses.txt" in report.split_source
    test_rows = metadata(tmp_path / "out" / "test")
    assert [r["file_name"] for r in test_rows] == [
        "003.Blackbird/Blackbird_0000.jpg",
        "003.Blackbird/Blackbird_0001.jpg",
    ]
    assert test_rows[0]["text"] == ["caption one of Blackbird_0000", "caption two of Blackbird_0000"]
    # The output is a caption folder the text-to-image method reads as it is.
    train = CaptionFolderDataset(tmp_path / "out", "train", image_size=8)
    assert len(train) == 6 and len(train.texts) == 12
    assert (tmp_path / "out" / "train" / "001.Albatross" / "Albatross_0000.jpg").is_file()


def test_without_a_class_list_every_kth_class_is_held_out(tmp_path: Path) -> None:
    images, text = reference_layout(tmp_path, split_file=False)
    report = convert_captions(images, text, tmp_path / "out", test_fraction=0.5)
    held_out = {r["file_name"].split("/")[0] for r in metadata(tmp_path / "out" / "test")}
    assert held_out == {"002.Auklet", "004.Bobolink"} and report.classes == {"train": 2, "test": 2}
    explicit = tmp_path / "mine.txt"
    explicit.write_text("001.Albatross\n")
    convert_captions(images, text, tmp_path / "out2", test_classes=explicit)
    assert {r["file_name"].split("/")[0] for r in metadata(tmp_path / "out2" / "test")} == {"001.Albatross"}


def test_caption_files_without_images_are_listed(tmp_path: Path) -> None:
    images, text = reference_layout(tmp_path)
    (images / CLASSES[0] / "Albatross_0001.jpg").unlink()
    with pytest.raises(
        DataError, match=r"no image for 1 of 8 caption files \(001.Albatross/Albatross_0001\)"
    ):
        convert_captions(images, text, tmp_path / "out")


def test_empty_caption_files_and_bad_class_lists_are_errors(tmp_path: Path) -> None:
    images, text = reference_layout(tmp_path)
    (text.parent / "testclasses.txt").write_text("999.Dodo\n")
    with pytest.raises(DataError, match=r"testclasses.txt: 1 class\(es\) have no caption folder .*999.Dodo"):
        convert_captions(images, text, tmp_path / "out")
    (text.parent / "testclasses.txt").write_text("\n")
    with pytest.raises(DataError, match="the class list is empty"):
        read_class_list(text.parent / "testclasses.txt")
    (text.parent / "testclasses.txt").unlink()
    (text / CLASSES[1] / "Auklet_0000.txt").write_text("  \n")
    with pytest.raises(DataError, match=r"Auklet_0000.txt: the caption file is empty"):
        convert_captions(images, text, tmp_path / "out")
    with pytest.raises(ConfigError, match="--test-fraction must be between 0 and 1"):
        convert_captions(images, text, tmp_path / "out", test_fraction=0.0)


def test_existing_output_and_missing_folders_are_refused(tmp_path: Path) -> None:
    images, text = reference_layout(tmp_path)
    convert_captions(images, text, tmp_path / "out")
    with pytest.raises(DataError, match="already exists; delete"):
        convert_captions(images, text, tmp_path / "out")
    with pytest.raises(DataError, match="the caption folder does not exist"):
        convert_captions(images, tmp_path / "nope", tmp_path / "other")
    with pytest.raises(DataError, match="no caption files"):
        convert_captions(images, images, tmp_path / "other")


def test_cli_convert_captions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, text = reference_layout(tmp_path)
    args = ["datasets", "convert-captions", "--images", str(images), "--text", str(text)]
    assert main([*args, "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "train: 6 images, 12 captions, 3 classes" in out and "test: 2 images, 4 captions" in out
    assert main([*args, "-o", str(tmp_path / "out")]) == 2  # a user error: one line, no traceback
    assert "already exists" in capsys.readouterr().err
