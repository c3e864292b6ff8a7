"""Image-quality metrics used in training and by ``i2i eval``."""

from i2i.metrics.psnr_ssim import psnr, rgb_to_y, ssim

__all__ = ["psnr", "rgb_to_y", "ssim"]
