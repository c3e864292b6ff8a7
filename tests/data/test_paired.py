"""PairedDataset on real folders: aligned and both two-folder layouts, matching, errors, direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from torch.utils.data import DataLoader

from i2i.data.paired import PairedDataset
from i2i.data.transforms import PairedTransform
from i2i.errors import ConfigError, DataError


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.transpose(2, 0, 1) / np.float32(127.5)) - 1.0


def _pixels(seed: int, height: int = 24, width: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")  # lossless, whatever the extension says


def _folders(root: Path, a_dir: str, b_dir: str, names: list[str]) -> None:
    for i, name in enumerate(names):
        _save(root / a_dir / f"{name}.png", _pixels(i))
        _save(root / b_dir / f"{name}.png", _pixels(100 + i))


def test_aligned_layout_splits_halves(tmp_path) -> None:
    photo = skdata.astronaut()[:64, :128]  # A = left 64 columns, B = right 64
    _save(tmp_path / "train" / "photo.jpg", photo)
    _save(tmp_path / "train" / "other.png", photo[:, ::-1])
    (tmp_path / "train" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "train" / "._photo.jpg").write_bytes(b"junk")
    dataset = PairedDataset(tmp_path, "train")
    assert dataset.layout == "aligned" and len(dataset) == 2
    item = dataset[1]
    assert item["name"] == "photo"
    assert torch.allclose(item["a"], _tensor(photo[:, :64]), atol=1e-6)
    assert torch.allclose(item["b"], _tensor(photo[:, 64:]), atol=1e-6)


@pytest.mark.parametrize(("a_dir", "b_dir"), [("train/A", "train/B"), ("A/train", "B/train")])
def test_folder_layouts(tmp_path, a_dir: str, b_dir: str) -> None:
    _folders(tmp_path, a_dir, b_dir, ["x", "y", "z"])
    dataset = PairedDataset(tmp_path, "train")
    assert dataset.layout == "folders" and len(dataset) == 3
    item = dataset[2]
    assert item["name"] == "z"
    assert torch.allclose(item["a"], _tensor(_pixels(2)), atol=1e-6)
    assert torch.allclose(item["b"], _tensor(_pixels(102)), atol=1e-6)


def test_folders_match_stems_case_insensitively_across_extensions(tmp_path) -> None:
    _save(tmp_path / "test" / "A" / "Shoe_1.PNG", _pixels(1))
    _save(tmp_path / "test" / "B" / "shoe_1.jpg", _pixels(2))
    (tmp_path / "test" / "B" / "Thumbs.db").write_bytes(b"junk")
    (tmp_path / "test" / "A" / "notes.txt").write_text("junk")
    dataset = PairedDataset(tmp_path, "test", layout="folders")
    assert len(dataset) == 1 and dataset[0]["name"] == "Shoe_1"
    assert torch.allclose(dataset[0]["b"], _tensor(_pixels(2)), atol=1e-6)


def test_unmatched_names_are_listed(tmp_path) -> None:
    _folders(tmp_path, "train/A", "train/B", ["common"])
    for i in range(7):
        _save(tmp_path / "train" / "A" / f"only_a_{i}.png", _pixels(i))
    _save(tmp_path / "train" / "B" / "only_b.png", _pixels(9))
    with pytest.raises(DataError) as info:
        PairedDataset(tmp_path, "train")
    message = str(info.value)
    assert "7 file(s) in" in message and "(7 in all)" in message
    assert "only_a_4.png" in message and "only_a_5.png" not in message  # at most 5 listed
    assert "1 file(s) in" in message and "only_b.png" in message
    assert "rename or remove" in message


def test_duplicate_stems_are_an_error(tmp_path) -> None:
    _folders(tmp_path, "train/A", "train/B", ["x"])
    _save(tmp_path / "train" / "A" / "X.jpg", _pixels(3))
    with pytest.raises(DataError, match="same name"):
        PairedDataset(tmp_path, "train")


def test_btoa_swaps(tmp_path) -> None:
    _folders(tmp_path, "train/A", "train/B", ["x"])
    forward = PairedDataset(tmp_path)[0]
    backward = PairedDataset(tmp_path, direction="BtoA")[0]
    assert torch.equal(forward["a"], backward["b"]) and torch.equal(forward["b"], backward["a"])


def test_seeded_keys_with_transform(tmp_path) -> None:
    _save(tmp_path / "train" / "p.png", skdata.astronaut()[:96, :192])
    dataset = PairedDataset(tmp_path, transform=PairedTransform(load_size=72, crop_size=64))
    assert dataset[0]["a"].shape == (3, 64, 64)
    assert torch.equal(dataset[(0, 7)]["a"], dataset[(0, 7)]["a"])
    assert torch.equal(dataset[0]["b"], dataset[(0, 0)]["b"])  # a plain index is its own seed
    assert any(not torch.equal(dataset[(0, 7)]["a"], dataset[(0, s)]["a"]) for s in range(8, 14))
    with pytest.raises(IndexError):
        dataset[1]


def test_dataloader_collates(tmp_path) -> None:
    _folders(tmp_path, "train/A", "train/B", ["a", "b", "c"])
    batch = next(iter(DataLoader(PairedDataset(tmp_path), batch_size=2)))
    assert batch["a"].shape == (2, 3, 24, 32) and batch["name"] == ["a", "b"]


def test_neither_layout_names_root_and_layouts(tmp_path) -> None:
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match=r"no 'train' split.*aligned.*A.*B"):
        PairedDataset(tmp_path, "train")
    with pytest.raises(DataError, match="does not exist"):
        PairedDataset(tmp_path / "nope")
    with pytest.raises(DataError, match="No A/B folders"):
        PairedDataset(tmp_path, "val", layout="folders")


def test_empty_split_folder(tmp_path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="No images found"):
        PairedDataset(tmp_path)


def test_odd_width_aligned_image(tmp_path) -> None:
    _save(tmp_path / "train" / "odd.png", _pixels(0, 16, 33))
    dataset = PairedDataset(tmp_path)
    with pytest.raises(DataError, match=r"odd\.png is 33x16.*even width.*layout='folders'"):
        dataset[0]


def test_min_size_applies_to_each_half(tmp_path) -> None:
    _save(tmp_path / "train" / "small.png", _pixels(0, 40, 60))
    with pytest.raises(DataError, match=r"small\.png \(each half\) is 30x40 but at least 32"):
        PairedDataset(tmp_path, min_size=32)[0]
    assert PairedDataset(tmp_path, min_size=30)[0]["a"].shape == (3, 40, 30)


def test_transform_errors_name_the_files(tmp_path) -> None:
    _folders(tmp_path, "train/A", "train/B", ["tiny"])
    dataset = PairedDataset(
        tmp_path, transform=PairedTransform(load_size=64, crop_size=64, preprocess="crop")
    )
    with pytest.raises(DataError, match=r"tiny\.png.*smaller than data.crop_size=64"):
        dataset[0]


def test_size_mismatch_without_transform(tmp_path) -> None:
    _save(tmp_path / "train" / "A" / "m.png", _pixels(0, 20, 20))
    _save(tmp_path / "train" / "B" / "m.png", _pixels(0, 24, 20))
    with pytest.raises(DataError, match=r"A.m\.png is 20x20 but .*B.m\.png is 20x24"):
        PairedDataset(tmp_path)[0]


def test_bad_options(tmp_path) -> None:
    _folders(tmp_path, "train/A", "train/B", ["x"])
    with pytest.raises(ConfigError, match="data.direction"):
        PairedDataset(tmp_path, direction="A2B")
    with pytest.raises(ConfigError, match="data.layout"):
        PairedDataset(tmp_path, layout="side_by_side")


def test_unicode_and_odd_names_pair_up(tmp_path) -> None:
    names = ["été 北京", "emoji 🦓 (copy)", "spaces  #1", "new\nline"]
    _folders(tmp_path, "train/A", "train/B", names)
    dataset = PairedDataset(tmp_path)
    assert sorted(dataset[i]["name"] for i in range(len(dataset))) == sorted(names)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"hello", "cannot be decoded .it is a text file"),
        (b"\x89PNG\r\n\x1a\n\0\0", "cannot be decoded"),
    ],
)
def test_bad_files_in_a_pair_are_named(tmp_path, content: bytes, message: str) -> None:
    _folders(tmp_path, "train/A", "train/B", ["x", "y"])
    (tmp_path / "train" / "B" / "y.png").write_bytes(content)
    dataset = PairedDataset(tmp_path)
    assert dataset[0]["name"] == "x"
    with pytest.raises(DataError, match=rf"B.y\.png {message}"):
        dataset[1]
