from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from i2i.data import PairedTransform
from i2i.data.synthetic_domains import SyntheticUnpairedDataset, render_scene, scene_seed
from i2i.data.unpaired import UnpairedDataset
from i2i.errors import ConfigError, DataError


def write(path, value, size=(20, 16), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


@pytest.fixture
def horse2zebra(tmp_path):
    """3 A images, 5 B images of other sizes, junk files, a grayscale and a 16-bit image."""
    root = tmp_path / "h2z"
    for i in range(3):
        write(root / "trainA" / f"a{i}.jpg", (10 * i, 0, 0))
    for i in range(4):
        write(root / "trainB" / f"b{i}.PNG", (0, 0, 50 * i), size=(30, 22))
    write(root / "trainB" / "gray.png", 128, mode="L")
    Image.fromarray(np.full((16, 20), 40000, dtype=np.uint16)).save(root / "trainA" / "deep.png")
    (root / "trainA" / ".DS_Store").write_bytes(b"junk")
    (root / "trainB" / "notes.txt").write_text("x")
    return root


def test_epoch_length_is_the_larger_domain_and_images_load(horse2zebra):
    data = UnpairedDataset(horse2zebra, "train")
    assert len(data.files_a) == 4 and len(data.files_b) == 5 and len(data) == 5
    item = data[4]
    assert item["a"].shape == (3, 16, 20) and item["b"].shape[0] == 3
    assert item["name"] == data.files_a[0].stem  # A wraps around
    gray = UnpairedDataset(horse2zebra, "train", serial=True)[4]["b"]
    assert float(gray.min()) == float(gray.max())  # the grayscale image, as 3 equal channels


def test_random_pairing_follows_the_seed_and_serial_is_in_order(horse2zebra):
    data = UnpairedDataset(horse2zebra, "train", transform=PairedTransform(24, 16))
    assert all((data[(1, 7)]["b"] == data[(1, 7)]["b"]).all() for _ in range(2))
    partners = {float(data[(0, seed)]["b"].sum()) for seed in range(20)}
    assert len(partners) > 2  # different B partners for different seeds
    serial = UnpairedDataset(horse2zebra, "train", serial=True)
    blues = [float(serial[i]["b"][2].mean()) for i in range(4)]
    assert blues == sorted(blues)  # b0..b3 in order


def test_direction_swaps_domains_and_split_layouts(horse2zebra, tmp_path):
    swapped = UnpairedDataset(horse2zebra, "train", direction="BtoA")
    assert len(swapped.files_a) == 5
    other = tmp_path / "other"
    write(other / "test" / "A" / "x.png", (1, 2, 3))
    write(other / "test" / "B" / "y.png", (3, 2, 1))
    assert len(UnpairedDataset(other, "test")) == 1


def test_errors_name_the_folder(horse2zebra, tmp_path):
    with pytest.raises(DataError, match=r"no unpaired 'test' split found; expected testA/ and testB/"):
        UnpairedDataset(horse2zebra, "test")
    with pytest.raises(DataError, match="dataset folder not found"):
        UnpairedDataset(tmp_path / "missing", "train")
    (horse2zebra / "valA").mkdir()
    (horse2zebra / "valB").mkdir()
    with pytest.raises(DataError, match="valA"):
        UnpairedDataset(horse2zebra, "val")
    with pytest.raises(ConfigError, match="data.direction"):
        UnpairedDataset(horse2zebra, "train", direction="sideways")


def test_bad_image_is_named(horse2zebra):
    (horse2zebra / "trainA" / "a0.jpg").write_bytes(b"\xff\xd8 truncated")
    data = UnpairedDataset(horse2zebra, "train", serial=True)
    with pytest.raises(DataError, match="a0.jpg"):
        data[0]


def test_synthetic_domains_share_layout_and_differ_in_style():
    a, mask_a = render_scene(5, 48, "A")
    b, mask_b = render_scene(5, 48, "B")
    assert (mask_a == mask_b).all() and mask_a.any() and not mask_a.all()
    assert np.allclose(a[~mask_a], b[~mask_b])  # same grass
    saturation = lambda img: ((img.max(-1) - img.min(-1)) / (img.max(-1) + 1e-3))[mask_a].mean()  # noqa: E731
    assert saturation(a) > 0.5 > 0.2 > saturation(b)  # brown coats vs black-and-white stripes


def test_synthetic_unpaired_dataset_is_deterministic_and_unpaired():
    data = SyntheticUnpairedDataset(8, 32, seed=1)
    first, again = data[(3, 11)], data[(3, 11)]
    assert (first["a"] == again["a"]).all() and (first["b"] == again["b"]).all()
    assert first["a"].shape == (3, 32, 32)
    seeds_a = {scene_seed(1, "train", "A", i) for i in range(8)}
    seeds_b = {scene_seed(1, "train", "B", i) for i in range(8)}
    seeds_test = {scene_seed(1, "test", "A", i) for i in range(8)}
    assert not seeds_a & seeds_b and not seeds_a & seeds_test
    with pytest.raises(ConfigError, match="splits train and test"):
        SyntheticUnpairedDataset(2, 32, split="val")


def test_skip_bad_images_works_for_unpaired_data(horse2zebra):
    from i2i.data.badimages import BAD_IMAGES_KEY, SkipBadImages

    (horse2zebra / "trainA" / "a0.jpg").write_bytes(b"")  # zero bytes
    data = SkipBadImages(UnpairedDataset(horse2zebra, "train", serial=True))
    item = data[(0, 3)]
    assert item["name"] == "a1" and "a0.jpg" in item[BAD_IMAGES_KEY]
    assert (data[(0, 3)]["b"] == item["b"]).all()  # the replacement is a pure function of the key
