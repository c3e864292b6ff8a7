"""Content (perceptual) loss on VGG19 features (Johnson et al. 2016; SRGAN, Ledig et al. 2017; ESRGAN).

With ``phi_l`` the VGG19 feature map at layer ``l`` and ``s`` a feature rescaling factor:

    L_content = sum_l  w_l * mean( crit( s * phi_l(SR), s * phi_l(HR) ) ),   crit = squared error or |.|

Layers are named as in the papers: ``relu5_4`` is SRGAN's "VGG54" (the 4th conv before the 5th max-pool,
after its activation), ``relu2_2`` its "VGG22"; ``conv5_4`` is ESRGAN's choice, the same features *before*
the activation (denser, and keeping the sign the ReLU throws away). SRGAN rescales the features by
``s = 1 / 12.75`` so that the VGG loss is of the order of the MSE loss.

The weights are torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``), downloaded once into the i2i weights
cache and verified against its full sha256 (also found in torchvision's own cache), or read from a local file;
``weights="random"`` builds the same network untrained (tests, offline dry runs). Only the layers up to the
deepest one asked for are built.

Example:
    >>> import torch
    >>> loss = VGGFeatureLoss({"relu2_2": 1.0}, weights="random")
    >>> loss(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).shape
    torch.Size([])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_FILE = "vgg19-dcbb9e9d.pth"
# Pinned by two independent projects; torchvision's file name carries its first 8 hex digits.
VGG19_SHA256 = "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44"
VGG19_SIZE = 574673361

# torchvision's VGG19 "E" configuration: conv widths, "M" = 2x2 max-pool.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
CRITERIA = ("l1", "l2")


def _layer_names() -> list[str]:
    """Names of ``torchvision.models.vgg19().features[i]``: conv1_1, relu1_1, ..., pool5."""
    names, block, index = [], 1, 1
    for item in _CFG:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


LAYERS = tuple(_layer_names())


def vgg19_features(depth: int) -> nn.Sequential:
    """The first ``depth`` modules of VGG19's ``features``, torchvision's indices, non-inplace ReLUs.

    Not in place, so a conv output read before its ReLU (``conv5_4``) is not overwritten.
    """
    layers: list[nn.Module] = []
    channels = 3
    for item in _CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, 1, 1), nn.ReLU()]
            channels = int(item)
    return nn.Sequential(*layers[:depth])


def vgg19_weights_file(weights: str | Path) -> Path:
    """The VGG19 weights file: ``"imagenet"`` (cached, else downloaded and verified) or a given path.

    Raises:
        CheckpointError: a given path does not exist.
        DownloadError: the download failed or did not verify (``I2I_OFFLINE=1`` forbids it).
    """
    if str(weights) != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise CheckpointError(
                f"{path}: VGG19 weights file not found; give torchvision's {VGG19_FILE} ({VGG19_URL}), "
                "'imagenet' to download it, or 'random' for an untrained network"
            )
        return path
    from i2i.data.fetch import Remote, fetch
    from i2i.hashing import sha256_file
    from i2i.hub import weights_dir

    torch_home = Path(os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch")
    torchvision_copy = torch_home / "hub" / "checkpoints" / VGG19_FILE
    if torchvision_copy.is_file() and sha256_file(torchvision_copy) == VGG19_SHA256:
        return torchvision_copy  # already downloaded by torchvision: no second 550 MB copy
    return fetch(Remote(VGG19_FILE, (VGG19_URL,), VGG19_SHA256, VGG19_SIZE), weights_dir())


def load_vgg19_state(path: Path, depth: int) -> dict[str, Tensor]:
    """The ``features`` tensors of a torchvision VGG19 file, re-keyed for :func:`vgg19_features`."""
    from i2i.importers.torch_file import load_torch_file

    state = load_torch_file(path)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: not a state_dict; expected torchvision's {VGG19_FILE}")
    wanted = {k for k in vgg19_features(depth).state_dict()}
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    missing = sorted(wanted - set(features))
    if missing:
        raise CheckpointError(
            f"{path}: not a VGG19 state_dict (no features.{missing[0]}); expected torchvision's {VGG19_FILE}"
        )
    return {k: features[k] for k in wanted}


class VGGFeatureLoss(nn.Module):
    """Distance between VGG19 features of two image batches; the network is frozen and stays in eval mode.

    Args:
        layers: Layer name -> weight, e.g. ``{"relu5_4": 1.0}`` (SRGAN's VGG54) or ``{"conv5_4": 1.0}``
            (ESRGAN, before activation). Names: :data:`LAYERS`.
        weights: ``"imagenet"`` (torchvision's weights, downloaded once and verified), a path to that file,
            or ``"random"`` (untrained; for tests and offline dry runs only: its features mean little).
        criterion: ``l2`` (mean squared error, SRGAN) or ``l1`` (ESRGAN).
        feature_scale: Factor applied to the features before the distance (SRGAN: 1 / 12.75).
        value_range: Pixel range of the images compared; they are mapped to [0, 1] and ImageNet-normalised.

    Shape:
        pred, target: (B, 3, H, W) -> () loss.
    """

    def __init__(
        self,
        layers: Mapping[str, float] | Sequence[str] = ("relu5_4",),
        *,
        weights: str | Path = "imagenet",
        criterion: str = "l2",
        feature_scale: float = 1.0,
        value_range: Sequence[float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        layers = dict(layers) if isinstance(layers, Mapping) else dict.fromkeys(layers, 1.0)
        unknown = [name for name in layers if name not in LAYERS]
        if not layers or unknown:
            raise ConfigError(
                f"content layers: unknown layer {unknown[0] if unknown else '(none given)'!r}; choose from "
                f"{', '.join(n for n in LAYERS if not n.startswith('pool'))} (relu5_4 = SRGAN's VGG54, "
                "conv5_4 = ESRGAN's before-activation features)"
            )
        if criterion not in CRITERIA:
            raise ConfigError(f"content criterion: {criterion!r}; choose l1 or l2")
        self.layer_weights = {LAYERS.index(name): float(w) for name, w in layers.items()}
        self.criterion = criterion
        self.feature_scale = float(feature_scale)
        self.value_range = (float(value_range[0]), float(value_range[1]))
        depth = max(self.layer_weights) + 1
        self.features = vgg19_features(depth)
        if str(weights) != "random":
            path = vgg19_weights_file(weights)
            self.features.load_state_dict(load_vgg19_state(path, depth), strict=True)
            log.info("VGG19 content loss: %s from %s", ", ".join(layers), path)
        else:
            log.warning("VGG19 content loss with random weights: fine for tests, meaningless for training")
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGFeatureLoss:
        super().train(mode)
        self.features.eval()  # a frozen feature extractor: never train mode, whatever the caller does
        return self

    def extract(self, images: Tensor) -> dict[int, Tensor]:
        """VGG19 features at the chosen layers (by index), for images in ``value_range``."""
        lo, hi = self.value_range
        x = ((images - lo) / (hi - lo) - self.mean) / self.std
        out = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.layer_weights:
                out[index] = x
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        feats_pred = self.extract(pred)
        with torch.no_grad():
            feats_target = self.extract(target)
        total = pred.new_zeros(())
        for index, weight in self.layer_weights.items():
            a, b = feats_pred[index] * self.feature_scale, feats_target[index] * self.feature_scale
            distance = F.mse_loss(a, b) if self.criterion == "l2" else F.l1_loss(a, b)
            total = total + weight * distance
        return total
