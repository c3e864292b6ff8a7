"""Backbones, one family per module, each registered by name: ``build("unet_256", ...)``, ``list()``.

Importing this package imports every family module, which registers its networks.
"""

from __future__ import annotations

from i2i.nets import layers
from i2i.nets.dcgan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from i2i.nets.encdec import EncoderDecoderGenerator
from i2i.nets.patchgan import PatchDiscriminator, PixelDiscriminator
from i2i.nets.registry import build, list, register, signature_of
from i2i.nets.resnet import ResNetGenerator
from i2i.nets.sr import MSRResNet, RRDBNet, SRResNet, SRVGGNetCompact
from i2i.nets.sr_discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from i2i.nets.text import CharTextEncoder
from i2i.nets.text2image import TextConditionalDiscriminator, TextConditionalGenerator
from i2i.nets.unet import UNetGenerator

__all__ = [
    "MSRResNet",
    "RRDBNet",
    "SRResNet",
    "SRVGGNetCompact",
    "UNetDiscriminatorSN",
    "VGGStyleDiscriminator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "EncoderDecoderGenerator",
    "ResNetGenerator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "UNetGenerator",
    "CharTextEncoder",
    "TextConditionalDiscriminator",
    "TextConditionalGenerator",
    "build",
    "layers",
    "list",
    "register",
    "signature_of",
]
