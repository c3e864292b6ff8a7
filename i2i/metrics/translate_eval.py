"""``i2i eval translate``: translate a dataset's test split with a trained model and measure the result.

The protocol of the CycleGAN/CUT papers for unpaired data: every test image of the source domain is resized to
``size`` x ``size`` (256) and translated; FID (and KID) compare the translations with the real test images of
the target domain, read as they are on disk. Paired data (Pix2Pix) also compare each translation with its own
target (LPIPS, PSNR, SSIM), the targets resized like the inputs.

Which kind a dataset is: ``testA/`` + ``testB/`` folders (the CycleGAN downloads) or a two-way checkpoint mean
unpaired; otherwise the split is read as paired (aligned A|B images or ``test/A`` + ``test/B``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from i2i.config import EvalConfig
from i2i.data.images import list_images, save_image
from i2i.data.paired import PairedDataset, check_direction
from i2i.data.transforms import PairedTransform
from i2i.data.unpaired import find_domain_folders
from i2i.errors import CheckpointError, ConfigError
from i2i.infer.translate import Translator
from i2i.metrics.base import PAIRED_METRICS, MetricSet, to_uint8
from i2i.metrics.build import build_metrics, distances_of
from i2i.metrics.folder_eval import reference_features
from i2i.metrics.folders import read_uint8
from i2i.statefile import is_checkpoint, load_checkpoint

log = logging.getLogger(__name__)

# What `i2i eval translate` reports when no metric is named: what the papers of each setting report.
DEFAULT_METRICS = {"paired": ("fid", "lpips", "psnr", "ssim"), "unpaired": ("fid", "kid")}


def _checkpoint_facts(path: Path) -> tuple[bool, str | None]:
    """Whether the checkpoint translates both ways, and the data direction it was trained with (if known)."""
    if not is_checkpoint(path):
        return False, None
    specs = load_checkpoint(path, prefix="specs")
    two_way = any(spec.get("direction") == "BtoA" for spec in specs.values())
    try:
        direction = load_checkpoint(path, prefix="config")["data"]["direction"]
    except (CheckpointError, KeyError, TypeError):
        direction = None
    return two_way, direction


def evaluate_translation(
    checkpoint: str | Path,
    data: str | Path,
    options: EvalConfig,
    *,
    split: str = "test",
    direction: str | None = None,
    pairing: str = "auto",
    size: int = 256,
    output: str | Path | None = None,
    device: str = "auto",
    precision: str = "fp32",
    metrics: MetricSet | None = None,
    use_cache: bool = True,
) -> dict[str, Any]:
    """Translate the ``split`` of dataset ``data`` with ``checkpoint`` and compute ``options.metrics``.

    Args:
        checkpoint: An i2i checkpoint, exported model or reference ``.pth`` generator.
        data: The dataset folder (``datasets/horse2zebra``, ``datasets/facades``).
        options: Metrics and their settings (``options.num_samples`` > 0 keeps the first N inputs); no
            metrics: :data:`DEFAULT_METRICS` for the kind of data.
        split: The split to translate.
        direction: ``AtoB`` or ``BtoA``. Unpaired: which generator and which domain is the source. Paired:
            how to read the pairs (default: the direction the checkpoint was trained with, else AtoB).
        pairing: ``auto``, ``paired`` or ``unpaired`` (see the module docstring).
        size: Inputs (and paired targets) are resized to ``size`` x ``size``; 0 keeps their size.
        output: Also save the translations here as ``<name>.png`` (e.g. for other FID tools).
        device: ``auto``, ``cpu``, ``cuda``...
        precision: Inference precision (fp32 by default: metrics should not depend on the GPU's rounding).
        metrics: Metrics to use instead of building them from ``options`` (tests).
        use_cache: Use the reference statistics cache for unpaired target folders.
    """
    checkpoint, data = Path(checkpoint), Path(data)
    if pairing not in ("auto", "paired", "unpaired"):
        raise ConfigError(f"--pairing must be auto, paired or unpaired, got {pairing!r}")
    if direction is not None:
        check_direction(direction)
    two_way, trained_direction = _checkpoint_facts(checkpoint)
    if pairing == "auto":
        cyclegan_layout = (data / f"{split}A").is_dir() and (data / f"{split}B").is_dir()
        pairing = "unpaired" if cyclegan_layout or two_way else "paired"
    paired = pairing == "paired"
    if not options.metrics:
        options = dataclasses.replace(options, metrics=DEFAULT_METRICS[pairing])
    if not paired and any(m in PAIRED_METRICS for m in options.metrics):
        bad = [m for m in options.metrics if m in PAIRED_METRICS]
        raise ConfigError(f"{', '.join(bad)} need paired data; {data} is evaluated as unpaired: use fid/kid")
    direction = direction or (trained_direction if paired else None) or "AtoB"
    translator = Translator.from_file(
        checkpoint, direction=None if paired else direction, device=device, precision=precision
    )
    metrics = metrics or build_metrics(options, device=translator.device)
    distances = distances_of(metrics)
    out_dir = Path(output) if output else None
    limit = options.num_samples or None

    if paired:
        # Held-out geometry of the training pipeline: the whole image resized to size x size, no flip.
        transform = PairedTransform(size, size, "resize_and_crop", flip=False, train=False) if size else None
        dataset = PairedDataset(data, split, direction=direction, transform=transform)
        items = range(len(dataset))[:limit]
        inputs = (_pair(dataset[i]) for i in items)
        count = len(items)
        reference = "targets"
    else:
        folder_a, folder_b = find_domain_folders(data, split)
        source, target = (folder_a, folder_b) if direction == "AtoB" else (folder_b, folder_a)
        files = list_images(source)[:limit]
        inputs = ((f.stem, read_uint8(f, size), None) for f in files)
        count = len(files)
        reference = str(target)
        if distances is not None:
            features, origin = reference_features(
                target, distances.extractor, batch_size=options.batch_size, use_cache=use_cache
            )
            distances.set_real(features)
            log.info("reference: %d images of %s (%s)", len(features), target, origin)

    for done, (name, image, target_image) in enumerate(inputs, start=1):
        x = image.unsqueeze(0).float() / 127.5 - 1.0  # (1, 3, H, W) in [-1, 1]
        fake = to_uint8(translator.translate(x)).cpu()
        if out_dir is not None:
            save_image(fake[0].float() / 127.5 - 1.0, out_dir / f"{name}.png")
        if paired:
            metrics.update(fake, target_image.unsqueeze(0), paired=True)
        else:
            metrics.update(fake, paired=False)
        if done % 50 == 0:
            log.info("translated %d/%d images", done, count)

    results: dict[str, Any] = dict(metrics.compute())
    results.update(
        checkpoint=str(checkpoint),
        data=str(data),
        split=split,
        direction=direction,
        paired=paired,
        num_images=count,
        size=size,
        reference=reference,
    )
    if distances is not None:
        weights = getattr(distances.extractor, "weights", None)
        results["feature_extractor"] = distances.extractor.identity
        if weights is not None:
            results["inception_weights"] = weights.describe()
            results["inception_input"] = options.inception_input
    if out_dir is not None:
        results["output"] = str(out_dir)
    return results


def _pair(item: dict[str, Any]) -> tuple[str, torch.Tensor, torch.Tensor]:
    """Name, input and target of a paired dataset item, as (3, H, W) uint8."""
    a, b = to_uint8(item["a"].unsqueeze(0))[0], to_uint8(item["b"].unsqueeze(0))[0]
    return str(item["name"]), a, b
