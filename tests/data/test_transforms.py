"""PairedTransform: reference semantics per mode, identical geometry for A and B, seed determinism."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from skimage import data as skdata

from i2i.data.transforms import PREPROCESS_MODES, PairedTransform
from i2i.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return (skdata.astronaut()[::4, ::3] / np.float32(255.0)).astype(np.float32)  # (128, 171, 3)


def _noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("resize_and_crop", (3, 64, 64)),
        ("crop", (3, 64, 64)),
        ("scale_width", (3, 60, 80)),  # height 80 * 96 / 128 = 60 keeps the aspect ratio
        ("scale_width_and_crop", (3, 64, 64)),
        ("none", (3, 96, 128)),
    ],
)
def test_output_shapes(mode: str, expected: tuple[int, ...]) -> None:
    transform = PairedTransform(load_size=80, crop_size=64, preprocess=mode)
    if mode == "scale_width":
        transform.crop_size = 32  # scale_width keeps height >= crop_size
    a, b = transform(_noise(96, 128), _noise(96, 128, 1), seed=3)
    assert a.shape == b.shape == expected
    assert a.dtype == torch.float32
    assert a.min() >= -1.0 and a.max() <= 1.0


def test_scale_width_keeps_height_at_least_crop_size() -> None:
    a, _ = PairedTransform(load_size=80, crop_size=64, preprocess="scale_width")(
        _noise(40, 128), _noise(40, 128), 0
    )
    assert a.shape == (3, 64, 80)


def test_none_rounds_to_multiples_of_four() -> None:
    a, _ = PairedTransform(preprocess="none")(_noise(51, 69), _noise(51, 69), 0)
    assert a.shape == (3, 52, 68)  # round(51 / 4) * 4, round(69 / 4) * 4, as the reference


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
def test_same_seed_is_bitwise_identical(mode: str, photo: np.ndarray) -> None:
    transform = PairedTransform(load_size=100, crop_size=64, preprocess=mode)
    first = transform(photo, photo[:, :, ::-1], seed=12345)
    second = transform(photo, photo[:, :, ::-1], seed=12345)
    for x, y in zip(first, second, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("mode", ["resize_and_crop", "crop", "scale_width_and_crop"])
def test_different_seeds_differ(mode: str, photo: np.ndarray) -> None:
    transform = PairedTransform(load_size=100, crop_size=64, preprocess=mode)
    outputs = [transform(photo, photo, seed=s)[0] for s in range(6)]
    assert any(not torch.equal(outputs[0], other) for other in outputs[1:])


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
def test_a_and_b_get_the_same_geometry(mode: str, photo: np.ndarray) -> None:
    # B is A with its channels permuted: same geometry means B's output is A's output, permuted.
    transform = PairedTransform(load_size=100, crop_size=64, preprocess=mode)
    for seed in range(8):
        a, b = transform(photo, np.ascontiguousarray(photo[:, :, ::-1]), seed)
        assert torch.equal(b, a.flip(0))


def test_flip_happens_for_some_seeds_only() -> None:
    image = _noise(64, 64)
    transform = PairedTransform(load_size=64, crop_size=64, preprocess="crop")
    reference = torch.from_numpy(image.transpose(2, 0, 1)) * 2 - 1
    flipped = [not torch.equal(transform(image, image, s)[0], reference) for s in range(20)]
    assert 0 < sum(flipped) < 20
    no_flip = PairedTransform(load_size=64, crop_size=64, preprocess="crop", flip=False)
    assert all(torch.equal(no_flip(image, image, s)[0], reference) for s in range(20))


def test_crop_takes_an_exact_window_of_the_original() -> None:
    image = _noise(40, 50)
    transform = PairedTransform(load_size=32, crop_size=32, preprocess="crop", flip=False)
    out = ((transform(image, image, seed=5)[0] + 1) / 2).permute(1, 2, 0).numpy()
    matches = [
        (top, left)
        for top in range(9)
        for left in range(19)
        if np.allclose(image[top : top + 32, left : left + 32], out, atol=1e-6)
    ]
    assert len(matches) == 1


def test_eval_is_deterministic_and_centered() -> None:
    image = _noise(40, 50)
    crop = PairedTransform(load_size=32, crop_size=32, preprocess="crop", train=False)
    outs = [crop(image, image, seed=s)[0] for s in range(5)]
    assert all(torch.equal(outs[0], o) for o in outs)
    center = torch.from_numpy(image[4:36, 9:41].transpose(2, 0, 1)) * 2 - 1
    assert torch.allclose(outs[0], center, atol=1e-6)
    resize = PairedTransform(load_size=286, crop_size=64, train=False)  # resize_and_crop
    a, _ = resize(image, image, seed=1)
    assert a.shape == (3, 64, 64)
    assert torch.equal(a, resize(image, image, seed=2)[0])


def test_global_random_state_is_untouched(photo: np.ndarray) -> None:
    np_state, py_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    PairedTransform(load_size=100, crop_size=64)(photo, photo, seed=1)
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), np_state, strict=True))


def test_resize_modes_accept_pairs_of_different_sizes() -> None:
    a, b = PairedTransform(load_size=40, crop_size=32)(_noise(50, 60), _noise(30, 30), seed=0)
    assert a.shape == b.shape == (3, 32, 32)


@pytest.mark.parametrize("mode", ["crop", "none"])
def test_non_resizing_modes_reject_size_mismatch(mode: str) -> None:
    with pytest.raises(DataError, match=r"A is 60x50 but B is 30x30"):
        PairedTransform(load_size=16, crop_size=16, preprocess=mode)(_noise(50, 60), _noise(30, 30), 0)


def test_crop_larger_than_image() -> None:
    with pytest.raises(DataError, match=r"20x10, smaller than data.crop_size=16"):
        PairedTransform(load_size=16, crop_size=16, preprocess="crop")(_noise(10, 20), _noise(10, 20), 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preprocess": "resize"}, "data.preprocess must be one of"),
        (
            {"load_size": 128, "crop_size": 256},
            r"data.crop_size \(256\) is larger than data.load_size \(128\)",
        ),
        ({"crop_size": 0}, "data.crop_size must be a positive integer"),
        ({"load_size": 2.5}, "data.load_size must be a positive integer"),
        ({"flip": "yes"}, "data.flip must be true or false"),
    ],
)
def test_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PairedTransform(**kwargs)


def test_crop_mode_allows_crop_larger_than_load_size() -> None:
    PairedTransform(load_size=128, crop_size=256, preprocess="crop")  # load_size is unused there
