"""i2i: image-to-image translation with GANs on one adversarial core.

The small public API:

- :func:`load_model` — a generator (or discriminator) from an i2i checkpoint or a reference ``.pth``;
- :class:`Translator` — run a generator on images of any size, on CPU or GPU;
- :class:`Upscaler` — run a super-resolution model on images of any size, tiled, in bounded memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from i2i.hub import load_model
    from i2i.infer.translate import Translator
    from i2i.infer.upscale import Upscaler


def __getattr__(name: str) -> Any:
    # Lazy, so `import i2i` (and `i2i --help`) does not pay for importing torch.
    if name == "load_model":
        from i2i.hub import load_model

        return load_model
    if name == "Translator":
        from i2i.infer.translate import Translator

        return Translator
    if name == "Upscaler":
        from i2i.infer.upscale import Upscaler

        return Upscaler
    raise AttributeError(f"module 'i2i' has no attribute {name!r}")


__all__ = ["Translator", "Upscaler", "__version__", "load_model"]
