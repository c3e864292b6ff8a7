"""PSNR/SSIM over two folders (what ``i2i eval sr`` reports): pairing by name, mod-crop, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.errors import DataError
from i2i.metrics.psnr_ssim import psnr, ssim
from i2i.metrics.sr_eval import evaluate_sr_folders, pair_files


def _write(path: Path, image: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return image


def _photo(seed: int, size: tuple[int, int] = (40, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(*size, 3)), 0), 1)
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    return (smooth * 255).round().astype(np.uint8)


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


def test_values_are_the_protocol_metrics_per_image_and_their_mean(tmp_path: Path) -> None:
    gts, preds = [], []
    for i, stem in enumerate(["0801", "0802"]):
        gt = _write(tmp_path / "gt" / f"{stem}.png", _photo(i))
        noise = np.random.default_rng(10 + i).integers(-8, 9, gt.shape)
        pred = _write(
            tmp_path / "pred" / f"{stem}.png", np.clip(gt + noise * (i + 1), 0, 255).astype(np.uint8)
        )
        gts.append(_tensor(gt))
        preds.append(_tensor(pred))
    result = evaluate_sr_folders(tmp_path / "pred", tmp_path / "gt", crop_border=4)
    assert result["count"] == 2 and result["missing"] == [] and result["crop_border"] == 4
    expected_psnr = [float(psnr(p, g, crop_border=4)[0]) for p, g in zip(preds, gts, strict=True)]
    expected_ssim = [float(ssim(p, g, crop_border=4)[0]) for p, g in zip(preds, gts, strict=True)]
    assert [i["psnr"] for i in result["images"]] == pytest.approx(expected_psnr, abs=1e-9)
    assert [i["ssim"] for i in result["images"]] == pytest.approx(expected_ssim, abs=1e-9)
    assert result["psnr"] == pytest.approx(sum(expected_psnr) / 2)
    assert result["images"][0]["psnr"] > result["images"][1]["psnr"]  # twice the noise scores lower
    rgb = evaluate_sr_folders(tmp_path / "pred", tmp_path / "gt", crop_border=4, y_channel=False)
    assert rgb["psnr"] != result["psnr"]


def test_upscaler_suffixes_pair_and_ground_truth_is_mod_cropped(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt" / "0801.png", _photo(0, (42, 50)))  # not a multiple of 4
    _write(tmp_path / "gt" / "0802.png", _photo(1))
    _write(tmp_path / "pred" / "0801_out.png", gt[:40, :48])  # Real-ESRGAN's name, mod-cropped size
    result = evaluate_sr_folders(tmp_path / "pred", tmp_path / "gt", crop_border=4)
    assert result["count"] == 1 and result["missing"] == ["0802.png"]
    assert math.isinf(result["images"][0]["psnr"]) and result["images"][0]["ssim"] == pytest.approx(1.0)
    pairs, _ = pair_files(tmp_path / "pred", tmp_path / "gt")
    assert [(p.name, g.name) for p, g in pairs] == [("0801_out.png", "0801.png")]


def test_exact_name_wins_and_ambiguous_names_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "gt" / "a.png", _photo(0))
    _write(tmp_path / "pred" / "a.png", _photo(0))
    _write(tmp_path / "pred" / "a_out.png", _photo(1))
    assert pair_files(tmp_path / "pred", tmp_path / "gt")[0][0][0].name == "a.png"
    (tmp_path / "pred" / "a.png").unlink()
    _write(tmp_path / "pred" / "ax4.png", _photo(1))
    with pytest.raises(DataError, match="a_out.png, ax4.png all match the ground truth"):
        pair_files(tmp_path / "pred", tmp_path / "gt")


def test_size_mismatch_and_nothing_paired_are_named(tmp_path: Path) -> None:
    _write(tmp_path / "gt" / "a.png", _photo(0, (40, 48)))
    _write(tmp_path / "pred" / "a.png", _photo(0, (20, 24)))
    with pytest.raises(DataError, match=r"a.png is 24x20 but its ground truth .* is 48x40"):
        evaluate_sr_folders(tmp_path / "pred", tmp_path / "gt", crop_border=2)
    _write(tmp_path / "other" / "b.png", _photo(0))
    with pytest.raises(DataError, match="no image of .* matches one of"):
        evaluate_sr_folders(tmp_path / "other", tmp_path / "gt", crop_border=2)
    with pytest.raises(DataError, match="does not exist"):
        evaluate_sr_folders(tmp_path / "nowhere", tmp_path / "gt", crop_border=2)
