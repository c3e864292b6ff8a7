"""`i2i eval ...` end to end: JSON on stdout and in --json FILE, clear errors without weights."""

import json

import pytest
import torch
import torchvision

from i2i.cli import main
from i2i.config import load_config
from i2i.data.images import save_image
from i2i.data.synthetic import write_synthetic_dataset
from i2i.methods import train
from i2i.metrics.inception import FIDInceptionV3


def _folder(folder, n: int, seed: int, size: int = 32):
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        save_image(torch.rand(3, size, size, generator=gen) * 2 - 1, folder / f"{i:02d}.png")
    return folder


def _run(capsys, *argv) -> tuple[int, dict | None, str]:
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_fid_without_weights_offline_says_what_to_do(tmp_path, capsys):
    real, fake = _folder(tmp_path / "real", 2, 0), _folder(tmp_path / "fake", 2, 1)
    code, _, err = _run(capsys, "eval", "fid", "--real", real, "--fake", fake)
    assert code == 2 and "--inception-weights" in err and "pt_inception-2015-12-05-6726825d.pth" in err


@pytest.mark.slow
def test_fid_and_kid_with_local_inception_weights(tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "inception.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    real, fake = _folder(tmp_path / "real", 3, 0), _folder(tmp_path / "fake", 3, 1)
    code, fid, _ = _run(
        capsys,
        "eval",
        "fid",
        "--real",
        real,
        "--fake",
        fake,
        "--inception-weights",
        weights,
        "--json",
        tmp_path / "fid.json",
    )
    assert code == 0 and fid["fid"] > 0 and fid["num_real"] == 3 and fid["real_statistics"] == "computed"
    assert fid["inception_weights"]["standard"] is False and fid["inception_input"] == "pytorch-fid"
    assert json.loads((tmp_path / "fid.json").read_text())["fid"] == fid["fid"]
    code, kid, _ = _run(
        capsys, "eval", "kid", "--real", real, "--fake", fake, "--inception-weights", weights, "--with-fid"
    )
    assert code == 0 and kid["real_statistics"] == "cached"  # the same folder, extractor and weights
    assert kid["fid"] == pytest.approx(fid["fid"], rel=1e-9) and {"kid", "kid_std"} <= set(kid)


def test_lpips_and_sr_folders(tmp_path, capsys):
    torch.manual_seed(0)
    alex = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), alex)
    pred, gt = _folder(tmp_path / "pred", 2, 0), _folder(tmp_path / "gt", 2, 1)
    code, result, _ = _run(
        capsys, "eval", "lpips", "--pred", pred, "--gt", gt, "--lpips-weights", alex, "--with-psnr"
    )
    assert code == 0 and result["num_pairs"] == 2 and result["lpips"] > 0 and result["psnr"] < 20
    code, _, err = _run(capsys, "eval", "lpips", "--pred", pred, "--gt", gt)
    assert code == 2 and "--lpips-weights" in err  # offline, and no local backbone
    code, sr, _ = _run(
        capsys, "eval", "sr", "--pred", gt, "--gt", gt, "--crop-border", 4, "--json", tmp_path / "sr.json"
    )
    assert code == 0 and sr["psnr"] == "inf" and sr["ssim"] == pytest.approx(1.0)  # identical images
    assert json.loads((tmp_path / "sr.json").read_text())["psnr"] == "inf"  # strict JSON


def test_translate_a_paired_test_split(tmp_path, capsys, tiny_overrides):
    checkpoint = train(
        load_config("demo_pix2pix", overrides=[*tiny_overrides, "train.max_steps=1"]), progress=False
    ).checkpoint
    data = write_synthetic_dataset(tmp_path / "facades", num_train=1, num_test=2, size=32)
    code, result, _ = _run(
        capsys,
        "eval",
        "translate",
        "--checkpoint",
        checkpoint,
        "--data",
        data,
        "--metrics",
        "psnr,ssim",
        "--size",
        32,
        "--device",
        "cpu",
    )
    assert code == 0 and result["paired"] and result["num_images"] == 2
    assert 0 < result["psnr"] < 100 and -1 <= result["ssim"] <= 1
    code, _, err = _run(
        capsys, "eval", "translate", "--checkpoint", checkpoint, "--data", data, "--metrics", "fid,bogus"
    )
    assert code == 2 and "unknown metric 'bogus'" in err
