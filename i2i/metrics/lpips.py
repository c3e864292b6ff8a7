"""LPIPS (Zhang et al. 2018): the distance between two images in the normalised feature space of an ImageNet
network, each layer's squared differences weighted by learned 1x1 "linear" layers.

    d(x, y) = sum_l mean_hw || w_l * (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|) ||^2

This is the reference ``lpips`` package's v0.1 model (``lpips.LPIPS(net="alex")``, what papers report),
written out on torchvision's AlexNet/VGG16 features. Its two kinds of weights come from files:

- the linear layers: the LPIPS v0.1 weights, which torchmetrics ships inside its wheel (so they are on disk
  whenever i2i is installed), or a file given by the user;
- the backbone: torchvision's ImageNet weights, from a local file or the verified cached download
  (:mod:`i2i.metrics.weights`).

Tests build the model with random weights (:class:`LPIPSNet` alone) and check it against torchmetrics' copy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision import models

from i2i.errors import CheckpointError, ConfigError, DataError
from i2i.importers.torch_file import load_torch_file
from i2i.metrics.base import Metric, check_images
from i2i.metrics.weights import LPIPS_BACKBONES, WeightsFile, resolve_weights

# torchvision ``features`` index ranges ending at each layer LPIPS reads (relu1 ... relu5), and its widths.
_SLICES = {
    "alex": ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12)),
    "vgg": ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30)),
}
_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
NETS = tuple(_SLICES)


def linear_weights_path(net: str) -> Path:
    """The LPIPS v0.1 linear-layer weights for ``net`` that torchmetrics installs with itself.

    Found without importing torchmetrics (seconds of import time for a file path).
    """
    spec = importlib.util.find_spec("torchmetrics")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "LPIPS needs the torchmetrics package (it ships the LPIPS weights): pip install torchmetrics"
        )
    return (
        Path(next(iter(spec.submodule_search_locations)))
        / "functional"
        / "image"
        / "lpips_models"
        / f"{net}.pth"
    )


class _LinearLayer(nn.Module):
    """One layer's learned channel weights: a 1x1 convolution to one channel (dropout as in training)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LPIPSNet(nn.Module):
    """The LPIPS model, randomly initialised (load weights with :func:`load_lpips`).

    Args:
        net: ``"alex"`` (the default of the LPIPS paper and package) or ``"vgg"``.

    Shape:
        forward: two (B, 3, H, W) batches in [-1, 1] -> (B,) distances.
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in NETS:
            raise ConfigError(f"LPIPS net {net!r}: choose {' or '.join(NETS)}")
        self.net_name = net
        features = (models.alexnet if net == "alex" else models.vgg16)(weights=None).features
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in _SLICES[net])
        # Names as in the lpips package (lin0.model.1.weight), so its weight files load as they are.
        for i, channels in enumerate(_CHANNELS[net]):
            self.add_module(f"lin{i}", _LinearLayer(channels))
        self.register_buffer(
            "shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _layers(self, x: Tensor) -> list[Tensor]:
        x = (x - self.shift) / self.scale  # the ImageNet statistics, in [-1, 1] units
        out = []
        for block in self.slices:
            x = block(x)
            # Unit length along channels (eps as in the reference code).
            out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        total = x.new_zeros(x.shape[0])
        for i, (fx, fy) in enumerate(zip(self._layers(x), self._layers(y), strict=True)):
            weighted = getattr(self, f"lin{i}")((fx - fy).pow(2))  # (B, 1, h, w)
            total = total + weighted.mean(dim=(1, 2, 3))
        return total

    def load_backbone(self, state: dict[str, Tensor], source: str) -> None:
        """Load a torchvision AlexNet/VGG16 state dict (``features.*`` keys; the classifier is ignored)."""
        features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        renamed = {}
        for i, (start, end) in enumerate(_SLICES[self.net_name]):
            for key, value in features.items():
                index, _, rest = key.partition(".")
                if index.isdigit() and start <= int(index) < end:
                    renamed[f"{i}.{int(index) - start}.{rest}"] = value
        try:
            self.slices.load_state_dict(renamed, strict=True)
        except RuntimeError as exc:
            first = " ".join(str(exc).split())[:300]
            raise CheckpointError(
                f"{source}: not torchvision {self.net_name} weights ({first}); use "
                f"{LPIPS_BACKBONES[self.net_name].remote.urls[0]}"
            ) from exc

    def load_linear(self, state: dict[str, Tensor], source: str) -> None:
        """Load the LPIPS linear layers (``lin0.model.1.weight`` ...)."""
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{source}: LPIPS linear layers of the wrong shape for {self.net_name}"
            ) from exc
        lin_missing = [k for k in missing if k.startswith("lin")]
        if lin_missing or unexpected:
            raise CheckpointError(
                f"{source}: not LPIPS {self.net_name} linear-layer weights (missing {lin_missing[:2]}, "
                f"unexpected {list(unexpected)[:2]})"
            )


def load_lpips(
    net: str = "alex", backbone: str | Path | None = None, linear: str | Path | None = None
) -> tuple[LPIPSNet, WeightsFile]:
    """LPIPS with its trained weights.

    Args:
        net: ``"alex"`` or ``"vgg"``.
        backbone: A local torchvision weights file; default: the verified cached download.
        linear: A local LPIPS linear-layer file; default: the v0.1 weights installed with torchmetrics.

    Returns:
        The model and the backbone weights' provenance.
    """
    model = LPIPSNet(net)
    weights = resolve_weights(LPIPS_BACKBONES[model.net_name], backbone)
    model.load_backbone(load_torch_file(weights.path), str(weights.path))
    linear_path = Path(linear) if linear else linear_weights_path(model.net_name)
    model.load_linear(load_torch_file(linear_path), str(linear_path))
    return model, weights


class LPIPS(Metric):
    """Mean LPIPS distance between each fake and its target (lower is more similar).

    Args:
        model: An :class:`LPIPSNet` (from :func:`load_lpips` for comparable numbers).
    """

    names = ("lpips",)
    paired = True

    def __init__(self, model: LPIPSNet) -> None:
        self.model = model.eval()
        self._values: list[Tensor] = []

    def update(
        self, fake: Tensor | None = None, real: Tensor | None = None, *, texts: Sequence[str] | None = None
    ) -> None:
        if fake is None or real is None or fake.shape != real.shape:
            raise DataError(
                "LPIPS compares each image with its target: give fake and real batches of the same shape"
            )
        device = next(self.model.parameters()).device
        # uint8 -> [-1, 1], as the reference's im2tensor does.
        x = check_images(fake, "fake images").to(device).float() / 127.5 - 1.0
        y = check_images(real, "real images").to(device).float() / 127.5 - 1.0
        with torch.inference_mode():
            self._values.append(self.model(x, y).double().cpu())

    def values(self) -> dict[str, Tensor]:
        """Per-image distances in the order the images were added: ``{"lpips": (N,) float64}``."""
        return {"lpips": torch.cat(self._values) if self._values else torch.empty(0)}

    def compute(self) -> dict[str, float]:
        if not self._values:
            raise DataError("LPIPS: no images were added")
        return {"lpips": float(torch.cat(self._values).mean())}

    def reset(self, *, keep_real: bool = False) -> None:
        self._values = []
