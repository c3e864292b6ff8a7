"""FID and KID as one :class:`~i2i.metrics.base.Metric`: both compare feature distributions, so the features
of each image are computed once and serve both.

The reference side is usually fixed (a dataset's test images): its features can be given once with
:meth:`FeatureDistances.set_real` (e.g. from the statistics cache) and survive :meth:`reset(keep_real=True)
<FeatureDistances.reset>`, so training-time evaluation extracts them only at the first evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from i2i.errors import ConfigError
from i2i.metrics.base import Metric, check_images
from i2i.metrics.frechet import FeatureStats, feature_stats, frechet_distance, frechet_distance_of_features
from i2i.metrics.kid import DEFAULT_SEED, DEFAULT_SUBSET_SIZE, DEFAULT_SUBSETS, kernel_inception_distance


@runtime_checkable
class FeatureExtractor(Protocol):
    """Images -> feature vectors (the FID Inception, or a small random net in tests).

    Attributes:
        identity: A string that changes whenever the features would (weights, input pipeline).
        dims: Feature size.
    """

    identity: str
    dims: int

    def __call__(self, images: Tensor) -> Tensor:
        """Shape: (B, 3, H, W) uint8 -> (B, dims) float32 on the CPU."""
        ...


class FeatureDistances(Metric):
    """FID and/or KID between the ``fake`` and ``real`` images fed to :meth:`update`.

    Args:
        extractor: The feature extractor (:func:`~i2i.metrics.inception.load_fid_inception` for FID proper).
        fid: Report ``fid``.
        kid: Report ``kid`` and ``kid_std``.
        kid_subsets: KID subsets to average over.
        kid_subset_size: Images per KID subset (capped at the smaller set's size).
        kid_seed: Seed of the KID subset draws.
    """

    paired = False

    def __init__(
        self,
        extractor: FeatureExtractor,
        *,
        fid: bool = True,
        kid: bool = False,
        kid_subsets: int = DEFAULT_SUBSETS,
        kid_subset_size: int = DEFAULT_SUBSET_SIZE,
        kid_seed: int = DEFAULT_SEED,
    ) -> None:
        if not (fid or kid):
            raise ConfigError("FeatureDistances: enable fid, kid or both")
        self.extractor = extractor
        self.fid, self.kid = fid, kid
        self.kid_options = {"subsets": kid_subsets, "subset_size": kid_subset_size, "seed": kid_seed}
        self.names = (("fid",) if fid else ()) + (("kid", "kid_std") if kid else ())
        self._fake: list[Tensor] = []
        self._real: list[Tensor] = []
        self._real_stats: FeatureStats | None = None

    def update(
        self, fake: Tensor | None = None, real: Tensor | None = None, *, texts: Sequence[str] | None = None
    ) -> None:
        if fake is not None:
            self._fake.append(self.extractor(check_images(fake, "fake images")))
        if real is not None:
            self._real.append(self.extractor(check_images(real, "real images")))
            self._real_stats = None

    def set_real(self, features: Tensor | None = None, stats: FeatureStats | None = None) -> None:
        """Use precomputed reference features (FID, KID) or just their statistics (FID; pytorch-fid .npz)."""
        if features is None and stats is None:
            raise ConfigError("set_real needs features or statistics")
        if features is None and self.kid:
            raise ConfigError("KID needs the reference features, not only their mean and covariance")
        self._real = [features.float().cpu()] if features is not None else []
        self._real_stats = stats

    def fake_features(self) -> Tensor:
        """(N, D) features of the fakes added so far."""
        return torch.cat(self._fake) if self._fake else torch.empty(0, self.extractor.dims)

    def real_features(self) -> Tensor:
        """(N, D) features of the references added so far (for caching them)."""
        return torch.cat(self._real) if self._real else torch.empty(0, self.extractor.dims)

    @property
    def has_real(self) -> bool:
        return bool(self._real) or self._real_stats is not None

    def compute(self) -> dict[str, float]:
        fake = self.fake_features()
        results: dict[str, float] = {}
        if self.fid:
            if self._real_stats is not None:  # statistics only (e.g. a pytorch-fid .npz file)
                results["fid"] = frechet_distance(feature_stats(fake), self._real_stats)
            else:
                results["fid"] = frechet_distance_of_features(fake, self.real_features())
        if self.kid:
            results.update(kernel_inception_distance(fake, self.real_features(), **self.kid_options))
        return results

    def reset(self, *, keep_real: bool = False) -> None:
        """Forget the fakes, and the references too unless ``keep_real``."""
        self._fake = []
        if not keep_real:
            self._real = []
            self._real_stats = None
