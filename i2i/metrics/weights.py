"""Pretrained weights the metrics need (FID Inception, LPIPS backbones): where from, how they are verified.

A metric's weights come from a local file the user names, or from the cache (``$I2I_HOME/weights``), filled
once by the project's verified downloader (:func:`i2i.data.fetch.fetch`: resumable, sha256 checked before the
file is renamed into place; ``I2I_OFFLINE=1`` refuses). Numbers such as FID are only comparable with other
people's when the weights are the standard ones, so a local file is hashed and the result says whether it is
the published file; a different file is used, with a warning.

Digests: the FID Inception file's full sha256 is pinned by pytorch-fid and torch-fidelity packaging. The
torchvision backbones of LPIPS have no published full digest; their file names carry the first 8 hex digits
of the sha256 (torch.hub's convention), which is checked, and the full digest of the first download is
recorded in the cache's lock file (trust on first use) and enforced from then on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from i2i.data.fetch import DigestLock, Remote, fetch
from i2i.errors import CheckpointError, DownloadError
from i2i.hashing import sha256_file
from i2i.hub import weights_dir

log = logging.getLogger(__name__)

LOCK_NAME = "i2i.lock.json"  # the same lock file as the model weights registry (i2i.hub)


@dataclass(frozen=True)
class MetricWeights:
    """A weights file a metric needs.

    Attributes:
        name: Short name used in messages and results (``fid_inception``).
        title: What the file is.
        remote: File name, URLs (primary first), published sha256 (or None) and size.
        digest_prefix: The first hex digits of the sha256 that the file name carries (torch.hub style).
        option: The CLI flag / config key that names a local copy, for messages.
        license: Terms of use of the weights.
    """

    name: str
    title: str
    remote: Remote
    digest_prefix: str
    option: str
    license: str


FID_INCEPTION = MetricWeights(
    name="fid_inception",
    title="Inception-v3 of TensorFlow's 2015-12-05 release, converted for FID (pytorch-fid / torch-fidelity)",
    remote=Remote(
        "pt_inception-2015-12-05-6726825d.pth",
        (
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            # torch-fidelity publishes the same file (same digest) under another name.
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
            "weights-inception-2015-12-05-6726825d.pth",
        ),
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        size=95628359,
    ),
    digest_prefix="6726825d",
    option="--inception-weights / eval.inception_weights",
    license="Apache-2.0 (tensorflow/models)",
)

LPIPS_BACKBONES = {
    "alex": MetricWeights(
        name="lpips_alex",
        title="torchvision AlexNet (ImageNet), the default LPIPS backbone",
        remote=Remote(
            "alexnet-owt-7be5be79.pth", ("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",)
        ),
        digest_prefix="7be5be79",
        option="--lpips-weights / eval.lpips_weights",
        license="BSD-3-Clause (torchvision)",
    ),
    "vgg": MetricWeights(
        name="lpips_vgg",
        title="torchvision VGG16 (ImageNet), the LPIPS-VGG backbone",
        remote=Remote("vgg16-397923af.pth", ("https://download.pytorch.org/models/vgg16-397923af.pth",)),
        digest_prefix="397923af",
        option="--lpips-weights / eval.lpips_weights",
        license="BSD-3-Clause (torchvision)",
    ),
}


@dataclass(frozen=True)
class WeightsFile:
    """A resolved weights file and whether it is the standard one.

    Attributes:
        path: The file.
        sha256: Its full digest.
        standard: It is the published file (digest, or digest prefix and recorded digest, match).
    """

    path: Path
    sha256: str
    standard: bool

    def describe(self) -> dict[str, str | bool]:
        """JSON-ready provenance for results files."""
        return {"path": str(self.path), "sha256": self.sha256, "standard": self.standard}


def _is_standard(weights: MetricWeights, digest: str, lock: DigestLock) -> bool:
    if weights.remote.sha256:
        return digest == weights.remote.sha256
    recorded = lock.get(weights.remote.filename)
    if recorded:
        return digest == recorded["sha256"]
    return digest.startswith(weights.digest_prefix)


def resolve_weights(
    weights: MetricWeights, path: str | Path | None = None, *, folder: str | Path | None = None
) -> WeightsFile:
    """The local file to load ``weights`` from: ``path`` if given, else the verified cached download.

    Args:
        weights: Which file.
        path: A local copy named by the user (any file; hashed and compared with the standard one).
        folder: The download cache (default: ``i2i.hub.weights_dir()``).

    Raises:
        CheckpointError: ``path`` does not exist.
        DownloadError: not cached and cannot be downloaded; the message says where to put it.
    """
    if path:
        local = Path(path).expanduser()
        if not local.is_file():
            raise CheckpointError(
                f"{local}: no such file ({weights.option}); give the path of {weights.remote.filename} "
                f"(from {weights.remote.urls[0]}), or leave it empty to download it once, verified"
            )
        folder = Path(folder) if folder is not None else weights_dir()
        digest = sha256_file(local)
        standard = _is_standard(weights, digest, DigestLock(folder / LOCK_NAME))
        if not standard:
            log.warning(
                "%s is not the standard %s file (sha256 %s); its numbers are not comparable with published "
                "ones",
                local,
                weights.name,
                digest,
            )
        return WeightsFile(local, digest, standard)
    folder = Path(folder) if folder is not None else weights_dir()
    lock = DigestLock(folder / LOCK_NAME)
    try:
        found = fetch(weights.remote, folder, lock=lock)
    except DownloadError as exc:
        raise DownloadError(f"{exc}; or pass a local copy with {weights.option}") from exc
    digest = sha256_file(found)
    if not digest.startswith(weights.digest_prefix):
        raise DownloadError(
            f"{found}: sha256 {digest} does not start with {weights.digest_prefix}, the digest prefix in its "
            f"published name; delete the file (and its entry in {lock.path}) and download it again"
        )
    return WeightsFile(found, digest, True)
