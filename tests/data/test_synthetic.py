"""Synthetic label-map -> scene task: determinism, held-out splits, disk round trip, non-triviality."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from i2i.data.paired import PairedDataset
from i2i.data.synthetic import (
    CLASS_NAMES,
    PALETTE,
    SyntheticPairedDataset,
    render_pair,
    write_synthetic_dataset,
)
from i2i.data.transforms import PairedTransform
from i2i.errors import ConfigError


def test_render_is_deterministic_and_well_formed() -> None:
    label, scene = render_pair(7, size=64)
    again_label, again_scene = render_pair(7, size=64)
    assert np.array_equal(label, again_label) and np.array_equal(scene, again_scene)
    for image in (label, scene):
        assert image.shape == (64, 64, 3) and image.dtype == np.float32
        assert image.min() >= 0.0 and image.max() <= 1.0
    assert not np.array_equal(scene, render_pair(8, size=64)[1])


def test_label_map_uses_only_the_palette() -> None:
    seen = set()
    for seed in range(10):
        colors = np.unique(render_pair(seed, size=48)[0].reshape(-1, 3), axis=0)
        matches = np.all(np.isclose(colors[:, None, :], PALETTE[None, :, :]), axis=2)  # (colours, classes)
        assert matches.any(axis=1).all()
        seen.update(np.flatnonzero(matches.any(axis=0)).tolist())
    assert len(seen) == len(CLASS_NAMES)  # every class shows up within a few scenes


def test_layout_does_not_depend_on_resolution() -> None:
    small, _ = render_pair(3, size=64)
    large, _ = render_pair(3, size=128)
    assert np.mean(np.all(small == large[::2, ::2], axis=2)) > 0.9


def test_fast_enough() -> None:
    render_pair(0, 64)
    start = time.perf_counter()
    for seed in range(20):
        render_pair(seed, 64)
    assert (time.perf_counter() - start) / 20 < 0.02  # ~1-2 ms on a laptop core; loose for CI


def test_train_and_test_hold_disjoint_scenes() -> None:
    train = SyntheticPairedDataset(24, size=32, seed=0, split="train")
    test = SyntheticPairedDataset(24, size=32, seed=0, split="test")
    train_scenes = {train[i]["b"].numpy().tobytes() for i in range(len(train))}
    test_scenes = {test[i]["b"].numpy().tobytes() for i in range(len(test))}
    assert len(train_scenes) == len(test_scenes) == 24
    assert not train_scenes & test_scenes
    other_seed = SyntheticPairedDataset(24, size=32, seed=1, split="train")
    assert not torch.equal(other_seed[0]["b"], train[0]["b"])


def test_dataset_items_and_transform_seeding() -> None:
    plain = SyntheticPairedDataset(4, size=32)
    item = plain[3]
    assert item["name"] == "00003" and item["a"].shape == item["b"].shape == (3, 32, 32)
    assert item["a"].min() >= -1.0 and item["b"].max() <= 1.0
    augmented = SyntheticPairedDataset(4, size=32, transform=PairedTransform(load_size=36, crop_size=32))
    assert torch.equal(augmented[(1, 5)]["b"], augmented[(1, 5)]["b"])
    assert any(not torch.equal(augmented[(1, 5)]["b"], augmented[(1, s)]["b"]) for s in range(6, 12))


def test_write_then_read_round_trip(tmp_path) -> None:
    root = write_synthetic_dataset(tmp_path / "synth", num_train=3, num_test=2, size=32, seed=4)
    assert sorted(p.name for p in (root / "test").iterdir()) == ["00000.png", "00001.png"]
    for split, num in (("train", 3), ("test", 2)):
        on_disk = PairedDataset(root, split, layout="aligned")
        in_memory = SyntheticPairedDataset(num, size=32, seed=4, split=split)
        assert len(on_disk) == num
        for i in range(num):
            disk, memory = on_disk[i], in_memory[i]
            assert disk["name"] == memory["name"]
            for key in ("a", "b"):  # 8-bit quantisation: at most half a level, 1/255 in [-1, 1]
                assert (disk[key] - memory[key]).abs().max() <= 1.0 / 255 + 1e-6


def test_task_is_learnable_but_not_trivial() -> None:
    train = [render_pair(s, 64) for s in range(64)]
    test = [render_pair(10_000 + s, 64) for s in range(32)]
    labels = np.stack([a for a, _ in train]).reshape(-1, 3)
    scenes = np.stack([b for _, b in train]).reshape(-1, 3)
    test_labels = np.stack([a for a, _ in test])
    test_scenes = np.stack([b for _, b in test])
    mean_image = np.stack([b for _, b in train]).mean(axis=0)
    mean_l1 = 2.0 * np.abs(test_scenes - mean_image).mean()  # x2: L1 in [-1, 1] units
    assert mean_l1 > 0.1
    # A per-class colour lookup (the crudest use of the label map) beats the mean image...
    class_ids = np.argmax(np.all(np.isclose(labels[:, None], PALETTE[None]), axis=2), axis=1)
    class_means = np.stack([scenes[class_ids == c].mean(axis=0) for c in range(len(PALETTE))])
    test_ids = np.argmax(np.all(np.isclose(test_labels[..., None, :], PALETTE), axis=-1), axis=-1)
    lookup_l1 = 2.0 * np.abs(test_scenes - class_means[test_ids]).mean()
    assert lookup_l1 < 0.85 * mean_l1
    # ...but leaves texture and shading to learn: it is far from a perfect prediction.
    assert lookup_l1 > 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num": 0}, "data.num"),
        ({"num": 4, "size": 4}, "data.size"),
        ({"num": 4, "seed": -1}, "data.seed"),
        ({"num": 4, "split": "training"}, "data.split"),
    ],
)
def test_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SyntheticPairedDataset(**kwargs)
