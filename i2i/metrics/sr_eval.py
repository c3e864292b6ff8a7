"""PSNR/SSIM of a folder of super-resolved images against a folder of ground truth (``i2i eval sr``).

Files are paired by name: ``0801.png`` with ``0801.png``, and also with the usual upscaler suffixes
(``0801_out.png`` from Real-ESRGAN, ``0801x4.png``, ``0801_SR.png``). The measurement is the standard SR
protocol of :mod:`i2i.metrics.psnr_ssim`: the BT.601 luma, ``crop_border`` pixels (the scale) cut from every
side. A ground truth a few pixels larger than its prediction (not cropped to a multiple of the scale) is
cropped at the bottom/right, as BasicSR's ``mod_crop`` does; any other size difference is an error.

Example:
    >>> result = evaluate_sr_folders("out/", "datasets/DIV2K/DIV2K_valid_HR", crop_border=4)  # doctest: +SKIP
    >>> round(result["psnr"], 2), round(result["ssim"], 4)  # doctest: +SKIP
    (28.1, 0.7731)
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2i.data.images import list_images, read_image
from i2i.errors import DataError
from i2i.metrics.psnr_ssim import psnr, ssim

log = logging.getLogger(__name__)

# Suffixes upscalers add to the input's name: Real-ESRGAN "_out", BasicSR "_SR"/"_<model>", DIV2K "x4".
_SUFFIX = re.compile(r"(?:[_-](?:out|sr|SR|x\d)|x\d)$")


def _key(stem: str) -> str:
    return _SUFFIX.sub("", stem)


def pair_files(pred_dir: str | Path, gt_dir: str | Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """``(prediction, ground truth)`` files matched by name, and the ground-truth names with no prediction.

    Raises:
        DataError: a folder is missing or empty, no file pairs up, or two predictions claim one name.
    """
    preds, gts = list_images(pred_dir), list_images(gt_dir)
    exact = {p.stem: p for p in preds}
    suffixed: dict[str, list[Path]] = {}
    for path in preds:
        suffixed.setdefault(_key(path.stem), []).append(path)
    pairs, missing = [], []
    for gt in gts:
        candidates = [exact[gt.stem]] if gt.stem in exact else suffixed.get(_key(gt.stem), [])
        if len(candidates) > 1:
            names = ", ".join(p.name for p in candidates)
            raise DataError(f"{names} all match the ground truth {gt}; keep one of them in {pred_dir}")
        if candidates:
            pairs.append((candidates[0], gt))
        else:
            missing.append(gt.name)
    if not pairs:
        raise DataError(
            f"no image of {pred_dir} matches one of {gt_dir} by name (e.g. {gts[0].name}, or with a suffix "
            f"_out / x4 / _SR); name the predictions after their ground truth"
        )
    return pairs, missing


def _load_pair(pred_path: Path, gt_path: Path, crop_border: int) -> tuple[torch.Tensor, torch.Tensor]:
    pred, gt = read_image(pred_path), read_image(gt_path)
    (ph, pw), (gh, gw) = pred.shape[:2], gt.shape[:2]
    slack = max(crop_border, 4)  # what a ground truth not cut to a multiple of the scale may exceed by
    if (ph, pw) != (gh, gw):
        if not (0 <= gh - ph < slack and 0 <= gw - pw < slack):
            raise DataError(
                f"{pred_path} is {pw}x{ph} but its ground truth {gt_path} is {gw}x{gh}; an upscaled image "
                "must have the ground truth's size (upscale the LR image made from this ground truth)"
            )
        gt = gt[:ph, :pw]

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]

    return tensor(pred), tensor(gt)


def evaluate_sr_folders(
    pred_dir: str | Path, gt_dir: str | Path, *, crop_border: int, y_channel: bool = True
) -> dict[str, Any]:
    """PSNR and SSIM of every prediction against its ground truth, and their means.

    Args:
        pred_dir: Folder of super-resolved images.
        gt_dir: Folder of ground-truth HR images.
        crop_border: Pixels cut from each side before measuring; the SR convention is the scale.
        y_channel: Measure on the BT.601 luma (the SR convention) rather than on RGB.

    Returns:
        ``{"psnr": mean dB, "ssim": mean, "count": n, "images": [{"name", "pred", "gt", "psnr", "ssim"},
        ...], "missing": [ground-truth names without a prediction], "crop_border": ..., "y_channel": ...}``.

    Raises:
        DataError: missing or empty folders, nothing paired, or an image of the wrong size.
    """
    if crop_border < 0:
        raise DataError(f"crop_border must be >= 0, got {crop_border}")
    pairs, missing = pair_files(pred_dir, gt_dir)
    if missing:
        log.warning("%d ground-truth images have no prediction (e.g. %s)", len(missing), missing[0])
    images = []
    for pred_path, gt_path in pairs:
        pred, gt = _load_pair(pred_path, gt_path, crop_border)
        try:
            values = (
                float(psnr(pred, gt, crop_border=crop_border, y_channel=y_channel)[0]),
                float(ssim(pred, gt, crop_border=crop_border, y_channel=y_channel)[0]),
            )
        except DataError as exc:
            raise DataError(f"{pred_path}: {exc}") from exc
        images.append(
            {
                "name": gt_path.stem,
                "pred": str(pred_path),
                "gt": str(gt_path),
                "psnr": values[0],
                "ssim": values[1],
            }
        )
    finite = [i["psnr"] for i in images if math.isfinite(i["psnr"])]
    return {
        # Identical images have infinite PSNR; the mean is over the others (inf if all are identical).
        "psnr": sum(finite) / len(finite) if finite else math.inf,
        "ssim": sum(i["ssim"] for i in images) / len(images),
        "count": len(images),
        "images": images,
        "missing": missing,
        "crop_border": crop_border,
        "y_channel": y_channel,
    }
