"""Loss building blocks: adversarial losses per GAN kind, their regularizers, pixel and VGG content losses,
and an image-text contrastive loss.

They know nothing of training: methods combine and weight them.
"""

from __future__ import annotations

from i2i.losses.adversarial import (
    GAN_KINDS,
    d_loss,
    g_loss,
    gradient_penalty,
    matching_aware_penalty,
    r1_penalty,
)
from i2i.losses.contrastive import contrastive_loss
from i2i.losses.perceptual import VGGFeatureLoss
from i2i.losses.pixel import PIXEL_LOSSES, charbonnier_loss, l1_loss, l2_loss, pixel_loss

__all__ = [
    "GAN_KINDS",
    "PIXEL_LOSSES",
    "VGGFeatureLoss",
    "charbonnier_loss",
    "contrastive_loss",
    "d_loss",
    "g_loss",
    "gradient_penalty",
    "l1_loss",
    "l2_loss",
    "matching_aware_penalty",
    "pixel_loss",
    "r1_penalty",
]
