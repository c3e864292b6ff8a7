"""The FID Inception-v3 feature extractor: 2048-d pool3 features, as pytorch-fid and torch-fidelity get them.

The network is TensorFlow's 2015-12-05 Inception-v3 (the graph the original FID code used), built from
torch-fidelity's blocks, which patch torchvision's to match TensorFlow (pooling that ignores padding, max
pooling in the last block), with the same parameter names, so the standard weights file
(``pt_inception-2015-12-05-6726825d.pth``) loads strictly. It is read with ``weights_only=True``; both
reference libraries unpickle it unrestricted, which is why their constructors are not used here.

The two reference implementations feed the network differently, and FID depends on it for images that are
not already 299x299 (translation benchmarks are 256x256). ``input_mode`` picks one, and the features are then
those of that implementation (tests check this against both libraries):

- ``"pytorch-fid"`` (default; the FID of the CUT paper and most image-translation papers): pixels / 255,
  ``F.interpolate(bilinear, align_corners=False)`` to 299, then ``2 x - 1``.
- ``"torch-fidelity"`` (equals the original TensorFlow FID code): TensorFlow-1.x bilinear resize of the
  0..255 values, then ``(x - 128) / 128``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import CheckpointError, ConfigError
from i2i.importers.torch_file import load_torch_file
from i2i.metrics.base import check_images
from i2i.metrics.weights import FID_INCEPTION, WeightsFile, resolve_weights

INPUT_SIZE = 299
FEATURE_DIMS = 2048
INPUT_MODES = ("pytorch-fid", "torch-fidelity")


class FIDInceptionV3(nn.Module):
    """TensorFlow's Inception-v3 up to the pool3 layer, randomly initialised until weights are loaded.

    Shape:
        forward: (B, 3, 299, 299) float, normalised to about [-1, 1] -> (B, 2048) float32.
    """

    def __init__(self) -> None:
        # torch-fidelity takes seconds to import; the training loop imports this module only to evaluate.
        from torch_fidelity.feature_extractor_inceptionv3 import (
            BasicConv2d,
            InceptionA,
            InceptionB,
            InceptionC,
            InceptionD,
            InceptionE_1,
            InceptionE_2,
        )

        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE_1(1280)
        self.Mixed_7c = InceptionE_2(2048)
        self.AvgPool = nn.AdaptiveAvgPool2d(output_size=(1, 1))
        # The classifier is in the weights file (loaded so that a wrong file fails loudly); FID never uses it.
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        for block in (
            self.Conv2d_1a_3x3,  # (B, 32, 149, 149)
            self.Conv2d_2a_3x3,
            self.Conv2d_2b_3x3,
            self.MaxPool_1,  # (B, 64, 73, 73)
            self.Conv2d_3b_1x1,
            self.Conv2d_4a_3x3,
            self.MaxPool_2,  # (B, 192, 35, 35)
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,  # (B, 768, 17, 17)
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,  # (B, 1280, 8, 8)
            self.Mixed_7b,
            self.Mixed_7c,  # (B, 2048, 8, 8)
            self.AvgPool,
        ):
            x = block(x)
        return torch.flatten(x, 1).float()  # (B, 2048)


def preprocess(images: Tensor, mode: str) -> Tensor:
    """Resize and scale uint8 images for the network the way the chosen reference implementation does.

    Shape:
        images: (B, 3, H, W) uint8 -> (B, 3, 299, 299) float32.
    """
    x = images.float()
    if mode == "pytorch-fid":
        x = x / 255.0
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2.0 * x - 1.0
    if mode == "torch-fidelity":
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)
        return (x - 128.0) / 128.0
    raise ConfigError(f"unknown Inception input mode {mode!r}; choose {' or '.join(INPUT_MODES)}")


class InceptionFeatures:
    """Images -> FID features: the :class:`~i2i.metrics.distances.FeatureExtractor` FID and KID use.

    Args:
        net: The Inception network (with the standard weights for numbers comparable with papers').
        input_mode: ``"pytorch-fid"`` or ``"torch-fidelity"`` (see the module docstring).
        weights: Where the weights came from (None: random, for tests); part of :attr:`identity`.

    Attributes:
        identity: What determines the features (weights digest and input mode); keys cached statistics.
        dims: Feature size, 2048.
    """

    dims = FEATURE_DIMS

    def __init__(
        self, net: FIDInceptionV3, *, input_mode: str = "pytorch-fid", weights: WeightsFile | None = None
    ):
        if input_mode not in INPUT_MODES:
            raise ConfigError(f"Inception input mode {input_mode!r}: choose {' or '.join(INPUT_MODES)}")
        self.net = net.eval()
        self.input_mode = input_mode
        self.weights = weights
        digest = weights.sha256 if weights is not None else f"random-{id(net):x}"
        self.identity = f"fid-inception-v3:{digest}:{input_mode}"

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> InceptionFeatures:
        self.net.to(device)
        return self

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> Tensor:
        """Shape: (B, 3, H, W) uint8 -> (B, 2048) float32 on the CPU."""
        check_images(images, "Inception features")
        x = preprocess(images.to(self.device), self.input_mode)
        return self.net(x).cpu()


def load_fid_inception(
    path: str | Path | None = None, *, input_mode: str = "pytorch-fid"
) -> InceptionFeatures:
    """The FID feature extractor with the standard weights: from ``path``, else the verified cached download.

    Raises:
        CheckpointError: the file is not an Inception-v3 state dict, or holds pickled code.
        DownloadError: no local file, and the download failed (the message says where to put the file).
    """
    weights = resolve_weights(FID_INCEPTION, path)
    state = load_torch_file(weights.path)
    with torch.device("meta"):  # no random init of 24M weights about to be replaced (seconds on a CPU)
        net = FIDInceptionV3()
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise CheckpointError(
            f"{weights.path}: not the FID Inception-v3 state dict ({first}); use "
            f"{FID_INCEPTION.remote.filename} from {FID_INCEPTION.remote.urls[0]}"
        ) from exc
    return InceptionFeatures(net, input_mode=input_mode, weights=weights)
