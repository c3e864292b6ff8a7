"""Caption folders: metadata.jsonl and .txt sidecars, one caption per step, clear errors, text features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.data.captions import (
    METADATA_FILE,
    CaptionFolderDataset,
    is_caption_folder,
    read_sidecar,
    scan_caption_folder,
)
from i2i.data.images import save_image
from i2i.errors import DataError


def write_image(path: Path, value: float = 0.0, size: tuple[int, int] = (40, 48)) -> Path:
    """A small RGB image with a gradient, so crops and flips change it."""
    ramp = torch.linspace(-1, 1, size[1])[None, None, :].expand(3, size[0], -1).clone()
    save_image((ramp + value).clamp(-1, 1), path)
    return path


def write_metadata(folder: Path, rows: list[object]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    (folder / METADATA_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / METADATA_FILE


@pytest.fixture
def jsonl_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "train"
    write_image(folder / "a.png")
    write_image(folder / "sub" / "b.png", 0.5)
    write_metadata(
        folder,
        [
            {"file_name": "a.png", "text": "a  small red\tbird"},
            {"file_name": "sub/b.png", "text": ["a blue flower", "petals of blue"]},
            {"file_name": "a.png", "text": "a bird with a red crest"},  # a second line adds a caption
        ],
    )
    return folder


def test_metadata_jsonl_gives_each_image_its_captions(jsonl_folder: Path) -> None:
    items = {p.path.name: p.captions for p in scan_caption_folder(jsonl_folder)}
    # Whitespace is normalised, so the same caption caches under one key.
    assert items == {
        "a.png": ["a small red bird", "a bird with a red crest"],
        "b.png": ["a blue flower", "petals of blue"],
    }
    assert is_caption_folder(jsonl_folder)


def test_sidecar_captions_one_per_non_empty_line(tmp_path: Path) -> None:
    write_image(tmp_path / "x.jpg")
    (tmp_path / "x.txt").write_text("first caption\n\n  second   caption \n", encoding="utf-8")
    (item,) = scan_caption_folder(tmp_path)
    assert item.captions == ["first caption", "second caption"]
    assert is_caption_folder(tmp_path)
    assert not is_caption_folder(tmp_path / "missing")


def test_items_draw_one_caption_per_seed_and_the_test_split_the_first(jsonl_folder: Path) -> None:
    train = CaptionFolderDataset(jsonl_folder.parent, "train", image_size=32)
    assert train.texts == ["a small red bird", "a bird with a red crest", "a blue flower", "petals of blue"]
    index = [p.name for p in train.paths].index("a.png")
    drawn = {train[(index, seed)]["caption"] for seed in range(40)}
    assert drawn == {"a small red bird", "a bird with a red crest"}  # every caption is used
    assert train[(index, 7)]["caption"] == train[(index, 7)]["caption"]  # reproducible per seed
    item = train[(index, 3)]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert train.texts[int(item["caption_id"])] == item["caption"]
    held_out = CaptionFolderDataset(jsonl_folder.parent, "train", image_size=32, train=False)
    assert {held_out[(index, seed)]["caption"] for seed in range(10)} == {"a small red bird"}


def test_training_crops_and_flips_are_seeded_and_evaluation_is_centred(jsonl_folder: Path) -> None:
    train = CaptionFolderDataset(jsonl_folder, "", image_size=16)
    images = [train[(0, seed)]["image"] for seed in range(12)]
    assert torch.equal(images[0], train[(0, 0)]["image"])
    assert len({tuple(x.flatten().tolist()) for x in images}) > 1  # random crops / flips differ
    held_out = CaptionFolderDataset(jsonl_folder, "", image_size=16, train=False)
    assert torch.equal(held_out[(0, 1)]["image"], held_out[(0, 2)]["image"])


def test_text_features_are_attached_per_caption(jsonl_folder: Path) -> None:
    data = CaptionFolderDataset(jsonl_folder, "", image_size=16)
    table = torch.arange(len(data.texts) * 3, dtype=torch.float32).view(-1, 3)
    data.set_text_features(embeddings=table, tokenize=lambda text: torch.tensor([len(text)]))
    item = data[(1, 5)]
    assert torch.equal(item["embedding"], table[int(item["caption_id"])])
    assert int(item["tokens"][0]) == len(item["caption"])
    with pytest.raises(ValueError, match="one per caption"):
        data.set_text_features(embeddings=table[:2])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["not json"], r"line 1: not valid JSON"),
        ([{"text": "x"}], r'line 1: no "file_name"'),
        ([{"file_name": "a.png", "caption": "x"}], r'line 1: no "text" field \(keys: file_name, caption\)'),
        ([{"file_name": "a.png", "text": 3}], r'"text" must be a string or a list of strings'),
        ([{"file_name": "a.png", "text": "   "}], r"line 1: empty caption for 'a.png'"),
        (
            [{"file_name": "a.png", "text": "ok"}, {"file_name": "gone.png", "text": "x"}],
            r"line 2: 'gone.png'",
        ),
        ([], r"lists no images"),
    ],
)
def test_bad_metadata_lines_are_named(tmp_path: Path, rows: list[object], message: str) -> None:
    write_image(tmp_path / "a.png")
    write_metadata(tmp_path, rows)
    with pytest.raises(DataError, match=message):
        scan_caption_folder(tmp_path)


def test_images_without_captions_are_listed(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_image(tmp_path / f"{name}.png")
    (tmp_path / "a.txt").write_text("a caption\n")
    with pytest.raises(DataError, match=r"2 image\(s\) have no caption \(b.png, c.png\); add a .txt file"):
        scan_caption_folder(tmp_path)
    write_metadata(tmp_path, [{"file_name": "a.png", "text": "a caption"}])
    with pytest.raises(DataError, match=r"have no caption \(b.png, c.png\); add a line for each to"):
        scan_caption_folder(tmp_path)


def test_empty_sidecar_is_an_error(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("\n  \n")
    with pytest.raises(DataError, match=r"a.txt: the caption file is empty"):
        scan_caption_folder(tmp_path)
    with pytest.raises(DataError, match="empty"):
        read_sidecar(tmp_path / "a.txt")


def test_a_folder_without_images_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No images found"):
        CaptionFolderDataset(tmp_path, "train", image_size=16)


def test_random_crop_size_follows_the_reference_ratio(jsonl_folder: Path) -> None:
    data = CaptionFolderDataset(jsonl_folder, "", image_size=64)
    assert data.load_size == 76  # DF-GAN / AttnGAN: resize to 76/64 of the size, then crop
    no_crop = CaptionFolderDataset(jsonl_folder, "", image_size=64, load_size=64)
    assert no_crop.load_size == 64
    assert np.isfinite(no_crop[(0, 0)]["image"].numpy()).all()
