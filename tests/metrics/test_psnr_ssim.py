import math

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import structural_similarity

from i2i.errors import DataError
from i2i.metrics import psnr, rgb_to_y, ssim


def _photo(size: int = 64) -> torch.Tensor:
    img = data.astronaut()[100 : 100 + size, 150 : 150 + size]
    return torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255.0


def test_psnr_of_a_known_mse():
    target = torch.zeros(2, 1, 16, 16)
    pred = target.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    pred[1, :, :8] += 0.2  # half the pixels off by 0.2: MSE 0.02 -> 10 log10(50)
    got = psnr(pred, target, y_channel=False)
    assert got[0].item() == pytest.approx(20.0, abs=1e-5)
    assert got[1].item() == pytest.approx(10 * math.log10(50), abs=1e-5)
    assert torch.isinf(psnr(target, target, y_channel=False)).all()


def test_psnr_crops_the_border_and_uses_luma():
    target = torch.full((1, 3, 20, 20), 0.5)
    pred = target.clone()
    pred[..., :2, :] = 1.0  # only the border rows differ
    assert torch.isinf(psnr(pred, target, crop_border=2))
    # Equal error in every channel moves the studio-swing luma by (65.481 + 128.553 + 24.966) / 255.
    pred = target + 0.1
    expected = 10 * math.log10(1 / (0.1 * 219.0 / 255.0) ** 2)
    assert psnr(pred, target).item() == pytest.approx(expected, abs=1e-5)


def test_rgb_to_y_matches_matlab_rgb2ycbcr_range():
    y = rgb_to_y(torch.tensor([[[[0.0]], [[0.0]], [[0.0]]], [[[1.0]], [[1.0]], [[1.0]]]]))
    assert y.flatten().tolist() == pytest.approx([16 / 255, 235 / 255])


def test_ssim_is_one_for_identical_and_matches_skimage():
    target = _photo()
    assert ssim(target, target).item() == pytest.approx(1.0, abs=1e-8)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noisy = (target + 0.05 * noise).clamp(0, 1)
    ours = ssim(noisy, target, crop_border=4).item()
    y_pred, y_true = (rgb_to_y(t)[0, 0, 4:-4, 4:-4].numpy() for t in (noisy, target))
    reference = structural_similarity(
        y_pred, y_true, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ours == pytest.approx(reference, abs=2e-3)
    assert 0.3 < ours < 0.99


def test_ssim_drops_as_noise_grows():
    target = _photo()
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(target.shape, generator=gen, dtype=torch.float64)
    scores = [ssim((target + s * noise).clamp(0, 1), target).item() for s in (0.01, 0.05, 0.2)]
    assert scores[0] > scores[1] > scores[2]


def test_shape_mismatch_and_overcrop_are_clear_errors():
    a = torch.rand(1, 3, 16, 16)
    with pytest.raises(DataError, match="same shape"):
        psnr(a, torch.rand(1, 3, 16, 15))
    with pytest.raises(DataError, match="crop_border=8"):
        psnr(a, a, crop_border=8)
    with pytest.raises(DataError, match="11x11"):
        ssim(a, a, crop_border=3)
    assert np.isfinite(psnr(a, a * 0.9).numpy()).all()
