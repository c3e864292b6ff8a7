"""Inference: thin layers over the nets, used by the CLI and the web app alike."""

from i2i.infer.translate import Translator
from i2i.infer.upscale import Upscaler

__all__ = ["Translator", "Upscaler"]
