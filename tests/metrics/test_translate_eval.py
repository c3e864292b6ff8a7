"""`i2i eval translate`: translate a test split with a checkpoint and measure it, paired and unpaired."""

import pytest
import torch

from i2i.config import EvalConfig, load_config
from i2i.data.images import save_image
from i2i.data.paired import PairedDataset
from i2i.data.synthetic import write_synthetic_dataset
from i2i.errors import ConfigError
from i2i.methods import train
from i2i.metrics.base import MetricSet
from i2i.metrics.distances import FeatureDistances
from i2i.metrics.folder_eval import evaluate_distributions, evaluate_paired_folders
from i2i.metrics.psnr_ssim import PSNRSSIM
from i2i.metrics.translate_eval import evaluate_translation

CYCLEGAN_TINY = [
    "data.source=synthetic",
    "data.synthetic={num_train: 4, num_test: 2, size: 16}",
    "data.load_size=18",
    "data.crop_size=16",
    "data.batch_size=2",
    "data.num_workers=0",
    "model.generator.name=resnet",
    "model.generator.args={base_channels: 4, num_blocks: 1, norm: instance}",
    "model.discriminator.args={base_channels: 4, num_layers: 1, norm: instance}",
    "train.max_steps=1",
    "train.sample_every=0",
]


def _random_folder(folder, n: int, seed: int, size: int = 16):
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        save_image(torch.rand(3, size, size, generator=gen) * 2 - 1, folder / f"img{i}.png")
    return folder


def test_paired_translation_numbers_equal_the_folder_numbers_of_the_saved_images(
    tmp_path, tiny_overrides, tiny_features
):
    checkpoint = train(
        load_config("demo_pix2pix", overrides=[*tiny_overrides, "train.max_steps=1"]), progress=False
    ).checkpoint
    data = write_synthetic_dataset(tmp_path / "facades", num_train=1, num_test=3, size=32)
    metrics = MetricSet([FeatureDistances(tiny_features), PSNRSSIM()])
    result = evaluate_translation(
        checkpoint,
        data,
        EvalConfig(metrics=("fid", "psnr", "ssim")),
        size=32,
        output=tmp_path / "out",
        metrics=metrics,
        device="cpu",
    )
    assert result["paired"] and result["num_images"] == 3 and result["direction"] == "AtoB"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    # The targets as files: the same PSNR/SSIM from the saved translations, computed offline.
    for item in PairedDataset(data, "test"):
        save_image(item["b"], tmp_path / "targets" / f"{item['name']}.png")
    offline = evaluate_paired_folders(
        tmp_path / "out",
        tmp_path / "targets",
        EvalConfig(metrics=("psnr", "ssim")),
        metrics=MetricSet([PSNRSSIM()]),
    )
    assert offline["psnr"] == pytest.approx(result["psnr"], rel=1e-9)
    assert offline["ssim"] == pytest.approx(result["ssim"], rel=1e-9)


def test_unpaired_translation_is_measured_against_the_other_domain(tmp_path, tiny_features):
    checkpoint = train(
        load_config("cyclegan_horse2zebra", overrides=[*CYCLEGAN_TINY, f"output_dir={tmp_path}", "name=cg"]),
        progress=False,
    ).checkpoint
    data = tmp_path / "h2z"
    _random_folder(data / "testA", 3, seed=0)
    _random_folder(data / "testB", 4, seed=1)
    options = EvalConfig(metrics=("fid", "kid"))
    result = evaluate_translation(
        checkpoint,
        data,
        options,
        size=16,
        output=tmp_path / "fakes",
        device="cpu",
        use_cache=False,
        metrics=MetricSet([FeatureDistances(tiny_features, kid=True, kid_subsets=3)]),
    )
    assert not result["paired"] and result["num_images"] == 3 and result["reference"] == str(data / "testB")
    # `i2i eval fid` on the saved translations and the real testB gives the same FID.
    offline = evaluate_distributions(
        data / "testB",
        tmp_path / "fakes",
        EvalConfig(metrics=("fid",)),
        extractor=tiny_features,
        use_cache=False,
    )
    assert offline["fid"] == pytest.approx(result["fid"], rel=1e-6)  # batch size changes conv rounding
    back = evaluate_translation(
        checkpoint,
        data,
        options,
        direction="BtoA",
        size=16,
        device="cpu",
        use_cache=False,
        metrics=MetricSet([FeatureDistances(tiny_features)]),
    )
    assert back["num_images"] == 4 and back["reference"] == str(data / "testA")
    with pytest.raises(ConfigError, match="need paired data"):
        evaluate_translation(
            checkpoint,
            data,
            EvalConfig(metrics=("fid", "psnr")),
            device="cpu",
            metrics=MetricSet([FeatureDistances(tiny_features), PSNRSSIM()]),
        )
