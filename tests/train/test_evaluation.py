"""In-training evaluation: what is compared, logging, best-checkpoint selection, and no effect on training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from i2i.config import load_config
from i2i.data.synthetic import write_synthetic_dataset
from i2i.data.synthetic_domains import render_scene, scene_seed
from i2i.errors import ConfigError
from i2i.methods import CycleGAN, Pix2Pix, build_method
from i2i.metrics import PSNRSSIM, MetricSet
from i2i.metrics.distances import FeatureDistances
from i2i.train import Trainer
from i2i.train.checkpoint import best_path, list_checkpoints, load_checkpoint
from i2i.train.evaluation import EvalData, Evaluator

CYCLEGAN_TINY = [
    "data.source=synthetic",
    "data.synthetic={num_train: 6, num_test: 4, size: 16}",
    "data.load_size=18",
    "data.crop_size=16",
    "data.batch_size=2",
    "data.num_workers=0",
    "model.generator.name=resnet",
    "model.generator.args={base_channels: 4, num_blocks: 1, norm: instance}",
    "model.discriminator.args={base_channels: 4, num_layers: 1, norm: instance}",
]


class TinyFeatures:
    """A fixed random conv net with the FID extractor's interface (no Inception in unit tests)."""

    dims, identity = 8, "tiny-train-test-features"

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.net = nn.Conv2d(3, 8, 3, stride=2)
        for p in self.net.parameters():
            p.data = torch.randn(p.shape, generator=gen) * 0.3
        self.calls = 0

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.relu(self.net(images.float() / 127.5 - 1)).mean(dim=(2, 3))


def tiny_metrics(paired: bool = True) -> MetricSet:
    metrics = [FeatureDistances(TinyFeatures(), kid=True, kid_subsets=3)]
    return MetricSet([*metrics, PSNRSSIM()] if paired else metrics)


def pix2pix_trainer(overrides: list[str], metrics: MetricSet | None) -> Trainer:
    cfg = load_config("demo_pix2pix", overrides=overrides)
    method = build_method(cfg)
    train_set, test_set = Pix2Pix.datasets(cfg)
    evaluator = Evaluator.from_config(cfg, test_set, metrics=metrics) if metrics else None
    return Trainer(cfg, method, train_set, progress=False, evaluator=evaluator)


def records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_eval_metrics_are_logged_and_pick_the_best_checkpoint(tiny_overrides):
    overrides = [
        *tiny_overrides,
        "train.max_steps=4",
        "eval.every=2",
        "eval.metrics=[fid, kid, psnr, ssim]",
        "train.best_metric=eval/psnr",  # higher is better
        "train.keep_last=5",
    ]
    trainer = pix2pix_trainer(overrides, tiny_metrics())
    result = trainer.fit()
    evals = [r for r in records(result.run_dir) if "eval/psnr" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert {"eval/fid", "eval/kid", "eval/kid_std", "eval/psnr", "eval/ssim"} <= set(evals[0])
    # save_every=0, yet each evaluated step has a checkpoint, and best.safetensors is the highest PSNR.
    assert [p.name for p in list_checkpoints(trainer.checkpoint_dir)] == [
        "step_00000002.safetensors",
        "step_00000004.safetensors",
    ]
    best = max(evals, key=lambda r: r["eval/psnr"])
    saved = load_checkpoint(best_path(trainer.checkpoint_dir), prefix="best")
    assert saved == {"metric": "eval/psnr", "value": pytest.approx(best["eval/psnr"]), "step": best["step"]}


def test_evaluation_leaves_training_unchanged(tiny_overrides):
    # Dropout in the U-Net draws random numbers every step: evaluation must not move the RNG.
    base = [*tiny_overrides, "train.max_steps=3"]
    plain = pix2pix_trainer([*base, "name=plain"], None)
    plain.fit()
    evaluated = pix2pix_trainer([*base, "name=evaluated", "eval.every=1"], tiny_metrics())
    evaluated.fit()
    assert set(evaluated.eval_metrics) == {"fid", "kid", "kid_std", "psnr", "ssim"}
    for name, net in plain.method.nets.items():
        for (key, a), b in zip(
            net.state_dict().items(), evaluated.method.nets[name].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), f"{name}.{key}"


def test_unpaired_data_compare_with_every_target_domain_image(tmp_path):
    cfg = load_config("cyclegan_horse2zebra", overrides=[*CYCLEGAN_TINY, f"output_dir={tmp_path}"])
    _, test_set = CycleGAN.datasets(cfg)
    data = EvalData.from_dataset(test_set)
    assert not data.paired and data.count == 4 and len(data.references) == 4
    scene, _ = render_scene(scene_seed(cfg.seed, "test", "B", 2), 16, "B")
    np.testing.assert_allclose((data.references[2].permute(1, 2, 0).numpy() + 1) / 2, scene, atol=1e-6)
    with pytest.raises(ConfigError, match="unpaired"):
        Evaluator.from_config(
            load_config(
                "cyclegan_horse2zebra", overrides=[*CYCLEGAN_TINY, "eval.every=1", "eval.metrics=[fid, psnr]"]
            ),
            test_set,
            metrics=tiny_metrics(),
        )
    cfg = load_config(
        "cyclegan_horse2zebra", overrides=[*CYCLEGAN_TINY, "eval.every=1", "eval.metrics=[fid, kid]"]
    )
    metrics = tiny_metrics(paired=False)
    evaluator = Evaluator.from_config(cfg, test_set, metrics=metrics)
    method = build_method(cfg)
    first = evaluator.evaluate(method, method.nets, torch.device("cpu"))
    extractor = metrics.metrics[0].extractor
    calls = extractor.calls
    second = evaluator.evaluate(method, method.nets, torch.device("cpu"))
    assert first == pytest.approx(second)  # same nets, same numbers
    assert extractor.calls == calls + 1  # the second time only the fakes: 4 images, one batch of 8
    assert set(first) == {"fid", "kid", "kid_std"} and first["fid"] > 0


def test_a_folder_source_and_the_method_hook(tmp_path, tiny_overrides):
    write_synthetic_dataset(tmp_path / "val_data", num_train=1, num_test=3, size=32)
    cfg = load_config(
        "demo_pix2pix",
        overrides=[
            *tiny_overrides,
            "eval.every=1",
            "eval.source=folder",
            f"eval.folder={tmp_path / 'val_data'}",
            "eval.metrics=[psnr]",
        ],
    )
    _, test_set = Pix2Pix.datasets(cfg)
    evaluator = Evaluator.from_config(
        cfg, test_set, datasets=Pix2Pix.datasets, metrics=MetricSet([PSNRSSIM(ssim=False)])
    )
    assert evaluator.data.count == 3 and evaluator.data.paired

    class Identity:
        """A method whose evaluation says itself what to compare: here its input with itself."""

        specs = {"g": {}}

        def evaluation_batch(self, batch, nets):
            return {"fake": batch["b"], "real": batch["b"], "paired": True}

    assert evaluator.evaluate(Identity(), {}, torch.device("cpu")) == {"psnr": float("inf")}


def test_config_errors_name_the_key(tiny_overrides):
    def build(*extra):
        cfg = load_config("demo_pix2pix", overrides=[*tiny_overrides, *extra])
        return Evaluator.from_config(cfg, Pix2Pix.datasets(cfg)[1], metrics=tiny_metrics())

    assert build() is None  # eval.every defaults to 0: no evaluation
    with pytest.raises(ConfigError, match="train.best_metric: fid is an evaluation metric"):
        build("train.best_metric=fid")
    with pytest.raises(ConfigError, match="not among eval.metrics"):
        build("eval.every=5", "train.best_metric=lpips")
    with pytest.raises(ConfigError, match="eval.metrics: unknown metric 'is'"):
        build("eval.every=5", "eval.metrics=[is]")
    with pytest.raises(ConfigError, match="eval.folder"):
        build("eval.every=5", "eval.source=folder")
    with pytest.raises(ConfigError, match="eval.inception_input"):
        build("eval.every=5", "eval.inception_input=clean")


def test_train_wires_the_eval_block(tiny_overrides):
    from i2i.errors import DownloadError
    from i2i.methods import train

    # PSNR/SSIM need no weights, so the whole path runs offline.
    cfg = load_config(
        "demo_pix2pix",
        overrides=[*tiny_overrides, "train.max_steps=2", "eval.every=2", "eval.metrics=[psnr, ssim]"],
    )
    result = train(cfg, progress=False)
    assert "eval/psnr" in records(result.run_dir)[-1]
    # FID needs the Inception weights: offline and without a local file, the run stops before training.
    cfg = load_config(
        "demo_pix2pix", overrides=[*tiny_overrides, "name=fid", "train.max_steps=2", "eval.every=2"]
    )
    with pytest.raises(DownloadError, match="eval.inception_weights"):
        train(cfg, progress=False)
    assert not (cfg.run_dir / "metrics.jsonl").exists()


def test_methods_without_an_evaluation_are_refused_up_front(tmp_path):
    from i2i.methods import GAN

    cfg = load_config(
        "dcgan_mnist",
        overrides=[
            "data.source=digits",
            "model.image_size=16",
            f"output_dir={tmp_path}",
            "eval.every=5",
            "eval.metrics=[psnr]",
        ],
    )
    with pytest.raises(ConfigError, match="method gan cannot be evaluated yet"):
        Evaluator.from_config(
            cfg, GAN.datasets(cfg)[1], metrics=MetricSet([PSNRSSIM()]), method=build_method(cfg)
        )
