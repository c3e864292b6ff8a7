"""PSNR and SSIM the way super-resolution papers report them.

The standard SR protocol (SRCNN onwards; BasicSR's ``calculate_psnr``/``calculate_ssim`` with
``test_y_channel=True``) measures the luma channel of ITU-R BT.601 "studio swing" YCbCr — MATLAB's
``rgb2ycbcr`` — after cropping ``scale`` pixels from every border, because the upscaler cannot know what lies
beyond the image edge. SSIM is the Gaussian-window SSIM of Wang et al. 2004 (11x11, sigma 1.5) averaged over
the valid region, computed by kornia.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia
import torch
from torch import Tensor

from i2i.errors import DataError
from i2i.metrics.base import Metric, check_images

# MATLAB rgb2ycbcr luma for RGB in [0, 1]: Y in [16/255, 235/255].
_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_Y_OFFSET = 16.0 / 255.0


def rgb_to_y(x: Tensor) -> Tensor:
    """BT.601 studio-swing luma of RGB images in [0, 1].

    Shape:
        x: (B, 3, H, W) -> (B, 1, H, W)
    """
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return _Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b + _Y_OFFSET


def _prepare(pred: Tensor, target: Tensor, crop_border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    if pred.shape != target.shape or pred.dim() != 4:
        raise DataError(
            f"PSNR/SSIM need two (B, C, H, W) batches of the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}; resize or crop the prediction to the ground truth first"
        )
    if crop_border < 0 or 2 * crop_border >= min(pred.shape[-2:]):
        raise DataError(
            f"crop_border={crop_border} leaves nothing of a {pred.shape[-2]}x{pred.shape[-1]} image"
        )
    # float64 so that the near-identical images of a good model do not lose their small MSE to rounding.
    pred, target = pred.double(), target.double()
    if y_channel and pred.shape[1] == 3:
        pred, target = rgb_to_y(pred), rgb_to_y(target)
    if crop_border:
        c = crop_border
        pred, target = pred[..., c:-c, c:-c], target[..., c:-c, c:-c]
    return pred, target


def psnr(
    pred: Tensor, target: Tensor, *, crop_border: int = 0, y_channel: bool = True, data_range: float = 1.0
) -> Tensor:
    """Peak signal-to-noise ratio per image, in dB.

    Args:
        pred: Images, (B, C, H, W), values in ``[0, data_range]``.
        target: Ground truth, same shape.
        crop_border: Pixels cut from each side before measuring (the SR scale, by convention).
        y_channel: Measure the BT.601 luma of RGB images (the SR convention) instead of all channels.
        data_range: The maximum pixel value (1.0 for [0, 1] images).

    Returns:
        (B,) float64 PSNR; ``inf`` for an image equal to its target.
    """
    pred, target = _prepare(pred, target, crop_border, y_channel)
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim(
    pred: Tensor, target: Tensor, *, crop_border: int = 0, y_channel: bool = True, data_range: float = 1.0
) -> Tensor:
    """Structural similarity per image (Gaussian 11x11 window, sigma 1.5, valid region only).

    Args:
        pred: Images, (B, C, H, W), values in ``[0, data_range]``.
        target: Ground truth, same shape.
        crop_border: Pixels cut from each side before measuring.
        y_channel: Measure the BT.601 luma of RGB images instead of averaging over the channels.
        data_range: The maximum pixel value.

    Returns:
        (B,) float64 SSIM in [-1, 1]; 1 for identical images.
    """
    pred, target = _prepare(pred, target, crop_border, y_channel)
    if min(pred.shape[-2:]) < 11:
        raise DataError(f"SSIM needs images of at least 11x11 after the border crop, got {tuple(pred.shape)}")
    ssim_map = kornia.metrics.ssim(pred, target, window_size=11, max_val=data_range, padding="valid")
    return ssim_map.flatten(1).mean(1)


class PSNRSSIM(Metric):
    """PSNR and/or SSIM of each fake against its own target, averaged over images (the SR papers' way).

    Args:
        psnr: Report ``psnr`` (dB).
        ssim: Report ``ssim``.
        crop_border: Pixels cut from each side first (the SR scale, by convention; 0 for translation).
        y_channel: Measure the BT.601 luma (the SR convention) instead of RGB.
    """

    paired = True

    def __init__(
        self, *, psnr: bool = True, ssim: bool = True, crop_border: int = 0, y_channel: bool = True
    ) -> None:
        self.names = (("psnr",) if psnr else ()) + (("ssim",) if ssim else ())
        self.crop_border, self.y_channel = crop_border, y_channel
        self._values: dict[str, list[Tensor]] = {name: [] for name in self.names}

    def update(
        self, fake: Tensor | None = None, real: Tensor | None = None, *, texts: Sequence[str] | None = None
    ) -> None:
        if fake is None or real is None:
            raise DataError("PSNR/SSIM compare each image with its target: give both fake and real")
        pred = check_images(fake, "fake images").double() / 255.0
        target = check_images(real, "real images").double() / 255.0
        options = {"crop_border": self.crop_border, "y_channel": self.y_channel}
        for name, fn in (("psnr", psnr), ("ssim", ssim)):
            if name in self._values:
                self._values[name].append(fn(pred.cpu(), target.cpu(), **options))

    def values(self) -> dict[str, Tensor]:
        """Per-image values in the order the images were added: name -> (N,) float64."""
        return {name: torch.cat(v) if v else torch.empty(0) for name, v in self._values.items()}

    def compute(self) -> dict[str, float]:
        if not any(self._values.values()):
            raise DataError("PSNR/SSIM: no images were added")
        results = {}
        for name, values in self.values().items():
            # As in sr_eval: an image equal to its target has infinite PSNR; average the others.
            finite = values[torch.isfinite(values)]
            results[name] = float(finite.mean()) if len(finite) else math.inf
        return results

    def reset(self, *, keep_real: bool = False) -> None:
        self._values = {name: [] for name in self.names}
