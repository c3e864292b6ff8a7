"""The PSNR/SSIM metric over 8-bit batches, against hand-computed values."""

import math

import pytest
import torch

from i2i.errors import DataError
from i2i.metrics import PSNRSSIM, to_uint8


def _flat(value: int, shape=(1, 3, 16, 16)) -> torch.Tensor:
    return torch.full(shape, value, dtype=torch.uint8)


def test_hand_computed_psnr_on_rgb_and_on_luma():
    # Every pixel off by 10 levels: RGB MSE = (10/255)^2 -> 20 log10(255/10) dB.
    metric = PSNRSSIM(ssim=False, y_channel=False)
    metric.update(_flat(110), _flat(100))
    assert metric.compute()["psnr"] == pytest.approx(20 * math.log10(25.5), abs=1e-9)  # 28.1308 dB
    # On the BT.601 luma the same offset is scaled by (65.481 + 128.553 + 24.966) / 255 = 219/255.
    metric = PSNRSSIM(ssim=False, y_channel=True)
    metric.update(_flat(110), _flat(100))
    assert metric.compute()["psnr"] == pytest.approx(20 * math.log10(255 / (10 * 219 / 255)), abs=1e-9)


def test_mean_over_images_and_batches_with_identical_images_left_out():
    metric = PSNRSSIM(y_channel=False)
    metric.update(_flat(110), _flat(100))  # 28.13 dB
    metric.update(
        torch.cat([_flat(120), _flat(50)]), torch.cat([_flat(100), _flat(50)])
    )  # 22.11 dB, identical
    values = metric.values()
    assert values["psnr"].shape == (3,) and math.isinf(values["psnr"][2])
    expected = (20 * math.log10(25.5) + 20 * math.log10(12.75)) / 2
    result = metric.compute()
    assert result["psnr"] == pytest.approx(expected, abs=1e-9)
    assert values["ssim"][2] == pytest.approx(1.0)
    metric.reset()
    with pytest.raises(DataError, match="no images"):
        metric.compute()


def test_border_crop_ignores_the_edges():
    fake, real = _flat(100), _flat(100)
    fake[..., :2, :] = 0
    metric = PSNRSSIM(crop_border=2)
    metric.update(fake, real)
    assert metric.compute() == {"psnr": math.inf, "ssim": pytest.approx(1.0)}


def test_to_uint8_rounds_like_saving_a_png():
    x = torch.tensor([-1.0, -0.5, 0.0, 1.0, 2.0]).view(1, 1, 1, 5)
    assert to_uint8(x)[0, 0, 0].tolist() == [0, 64, 128, 255, 255]  # (x + 1) * 127.5, rounded
    assert to_uint8(x).shape == (1, 3, 1, 5)  # gray is repeated to RGB
    with pytest.raises(DataError, match="uint8"):
        PSNRSSIM().update(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
