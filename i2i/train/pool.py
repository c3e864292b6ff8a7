"""Image history buffer (Shrivastava et al. 2017), as used by CycleGAN for its discriminators.

Showing D a mix of the newest fakes and fakes from earlier generator versions reduces oscillation. The
reference keeps 50 images per domain and, once full, returns for each new image either that image or (with
probability 1/2) a stored one that it then replaces with the new image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """A fixed-size history of generated images.

    Randomness comes from torch's global RNG, which checkpoints save and restore, so a resumed run draws
    the same choices as an uninterrupted one.

    Args:
        size: Capacity; 0 disables the pool (:meth:`query` returns its input).

    Example:
        >>> pool = ImagePool(2)
        >>> pool.query(torch.zeros(3, 1, 4, 4)).shape
        torch.Size([3, 1, 4, 4])
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Store ``images`` and return a batch of the same size drawn from the history.

        Shape:
            images: (B, C, H, W) -> (B, C, H, W); the inputs are detached.
        """
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(0, self.size, ()))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        stacked = torch.stack(self.images).cpu() if self.images else torch.zeros(0)
        return {"size": self.size, "images": stacked}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str | None = None) -> None:
        images = state["images"]
        self.size = int(state["size"])
        self.images = (
            [img.to(device) if device is not None else img for img in images] if images.numel() else []
        )
