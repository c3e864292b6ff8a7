"""Captioned shapes: held-out combinations, captions, determinism, and the pixel measurement's accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from i2i.data.captions import CaptionFolderDataset
from i2i.data.images import tensor_to_image
from i2i.data.synthetic_captions import (
    BACKGROUNDS,
    COLOURS,
    SHAPES,
    SyntheticCaptionDataset,
    all_scenes,
    captions_for,
    heldout_prompts,
    measure,
    render_scene,
    split_scenes,
    write_caption_folder,
)


def test_heldout_scenes_recombine_parts_seen_in_training() -> None:
    train, test = split_scenes("train"), split_scenes("test")
    assert len(train) + len(test) == len(all_scenes()) == len(COLOURS) * len(SHAPES) * len(BACKGROUNDS)
    assert len(test) == 9 and not set(train) & set(test)
    seen_pairs = {(s.colour, s.shape) for s in train}
    for scene in test:  # every part of a held-out prompt was seen, just not together
        assert (scene.colour, scene.shape) in seen_pairs
        assert any(s.background == scene.background and s.colour == scene.colour for s in train)
        assert any(s.background == scene.background and s.shape == scene.shape for s in train)
    assert [p for p, _ in heldout_prompts()] == [captions_for(s)[0] for s in test]


def test_each_image_has_five_captions_that_name_its_parts() -> None:
    data = SyntheticCaptionDataset(20, image_size=32, split="train")
    for index in range(len(data)):
        scene = data.scene(index)
        options = [data.texts[i] for i in data.item_captions[index]]
        assert len(options) == 5 and len(set(options)) == 5
        assert all(scene.colour in c and scene.shape in c and scene.background in c for c in options)
    drawn = {data[(0, seed)]["caption"] for seed in range(30)}
    assert len(drawn) > 1  # training draws among them
    test = SyntheticCaptionDataset(9, image_size=32, split="test")
    assert {test[(0, s)]["caption"] for s in range(5)} == {captions_for(test.scene(0))[0]}


def test_images_are_deterministic_per_index_and_seed() -> None:
    a = SyntheticCaptionDataset(4, image_size=32, seed=3)
    b = SyntheticCaptionDataset(4, image_size=32, seed=3)
    assert np.array_equal(a.render(2), b.render(2))
    assert not np.array_equal(a.render(2), SyntheticCaptionDataset(4, image_size=32, seed=4).render(2))
    item = a[(1, 0)]
    assert (
        item["image"].shape == (3, 32, 32)
        and -1 <= float(item["image"].min()) <= float(item["image"].max()) <= 1
    )


@pytest.mark.parametrize("size", [32, 64])
def test_measure_reads_back_what_was_drawn(size: int) -> None:
    """The convergence check's ruler: on real images it recovers every attribute (at 8-bit precision)."""
    rng = np.random.default_rng(0)
    results = []
    for scene in all_scenes():
        for _ in range(4):
            image = render_scene(scene, size, rng)
            quantised = np.round(image * 255).astype(np.uint8)  # as generated images are read back
            results.append(measure(quantised) == tuple(scene))
    assert np.mean(results) >= 0.99


def test_measure_names_no_shape_on_a_plain_image() -> None:
    assert measure(np.full((32, 32, 3), 0.5, np.float32)) == (None, None, "gray")
    noise = np.random.default_rng(0).uniform(0.45, 0.55, (32, 32, 3)).astype(np.float32)
    colour, shape, background = measure(noise)
    assert background == "gray" and shape is None


def test_written_folder_reads_back_as_a_caption_folder(tmp_path: Path) -> None:
    write_caption_folder(tmp_path, num_train=6, num_test=3, size=32)
    train = CaptionFolderDataset(tmp_path, "train", image_size=32, load_size=32, flip=False)
    original = SyntheticCaptionDataset(6, image_size=32)
    assert len(train) == 6 and sorted(train.texts) == sorted(original.texts)
    first = tensor_to_image(train[(0, 0)]["image"])
    assert measure(first) == tuple(original.scene(0))
