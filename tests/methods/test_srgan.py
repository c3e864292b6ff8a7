"""SRGAN / ESRGAN / SRResNet: the two phases, the losses, pretrained starts, evaluation, recipes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.config import load_config
from i2i.errors import ConfigError
from i2i.hub import load_model_with_info
from i2i.infer.upscale import Upscaler
from i2i.losses import d_loss
from i2i.methods import SRGAN, build_method, dry_run, first_items, method_class, train
from i2i.methods.srgan import relativistic_d_loss, relativistic_g_loss
from i2i.metrics.psnr_ssim import psnr, ssim
from i2i.nets import SRResNet, VGGStyleDiscriminator
from i2i.train import Trainer

TINY = [
    "model.generator={name: srresnet, args: {base_channels: 8, num_blocks: 1}}",
    "model.discriminator={name: srgan_d, args: {base_channels: 4, pool_size: 2, hidden_dim: 8}}",
    "model.pretrained=",
    "model.vgg_weights=random",
    "model.content_layers={relu1_2: 1.0}",
    "data.source=synthetic",
    "data.synthetic={num_train: 8, num_test: 2, size: 32}",
    "data.crop_size=16",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.sr.val_crop_size=16",
    "train.log_every=1",
    "train.sample_every=0",
    "train.save_every=0",
    "eval.every=0",
]
TINY_G = [TINY[0], *TINY[2:]]  # no discriminator: SRResNet alone


def tiny(tmp_path: Path, *extra: str, recipe: str = "srgan_div2k_x4"):
    return load_config(recipe, overrides=[*TINY, f"output_dir={tmp_path}", "name=tiny", *extra])


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"lr": torch.rand(2, 3, 4, 4, generator=g), "hr": torch.rand(2, 3, 16, 16, generator=g)}


def test_builds_the_paper_networks_with_method_set_scale(tmp_path: Path) -> None:
    method = build_method(tiny(tmp_path))
    assert isinstance(method.nets["g"], SRResNet) and isinstance(method.nets["d"], VGGStyleDiscriminator)
    assert method.specs["g"]["args"]["scale"] == 4 and method.specs["g"]["task"] == "upscale"
    assert method.specs["g"]["value_range"] == [0, 1]
    with pytest.raises(ConfigError, match=r"model\.generator\.args\.scale: set by the method"):
        build_method(tiny(tmp_path, "model.generator.args.scale=2"))
    with pytest.raises(ConfigError, match=r"model\.pixel_loss: 'l3'"):
        build_method(tiny(tmp_path, "model.pixel_loss=l3"))


def test_phase_one_is_the_pixel_loss_and_leaves_d_alone(tmp_path: Path) -> None:
    method = build_method(tiny(tmp_path, "model.pretrain_steps=1", "model.pixel_loss=l2"))
    b = batch()
    out = method.forward(b)
    assert method.d_step(b, out) == {}
    terms = method.g_step(b, out)
    assert set(terms) == {"g_pixel"}
    torch.testing.assert_close(terms["g_pixel"], (out["sr"] - b["hr"]).square().mean())
    # The next step (a D call after a G call) is phase 2.
    out = method.forward(b)
    assert set(method.d_step(b, out)) == {"d_gan"}
    assert set(method.g_step(b, out)) == {"g_content", "g_gan"}
    assert method.steps == 1


def test_phase_two_follows_the_paper_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    method = build_method(tiny(tmp_path, "model.pixel_weight=0.5"))
    b = batch()
    out = method.forward(b)
    d_terms = method.d_step(b, out)
    d = method.nets["d"]
    torch.testing.assert_close(d_terms["d_gan"], d_loss("vanilla", d(b["hr"]), d(out["sr"])))
    d_terms["d_gan"].backward()
    assert all(p.grad is None for p in method.nets["g"].parameters())  # D's loss does not reach G
    g_terms = method.g_step(b, out)
    torch.testing.assert_close(g_terms["g_gan"], 1e-3 * torch.nn.functional.softplus(-d(out["sr"])).mean())
    torch.testing.assert_close(g_terms["g_pixel"], 0.5 * (out["sr"] - b["hr"]).square().mean())
    expected = method.content(out["sr"], b["hr"])  # relu1_2 features scaled by 1/12.75, MSE
    torch.testing.assert_close(g_terms["g_content"], expected)
    assert method.content.feature_scale == pytest.approx(1 / 12.75)


def test_relativistic_average_losses() -> None:
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([1.0, -1.0])
    # ESRGAN eq. 1-2 with sigmoid cross-entropy: D_Ra(a, b) = sigmoid(C(a) - mean C(b)).
    soft = torch.nn.functional.softplus
    d_expected = 0.5 * (soft(-(real - fake.mean())).mean() + soft(fake - real.mean()).mean())
    g_expected = 0.5 * (soft(real - fake.mean()).mean() + soft(-(fake - real.mean())).mean())
    torch.testing.assert_close(relativistic_d_loss("vanilla", real, fake), d_expected)
    torch.testing.assert_close(relativistic_g_loss("vanilla", real, fake), g_expected)


def test_srresnet_alone_has_no_discriminator_and_upscales_from_its_checkpoint(tmp_path: Path) -> None:
    cfg_g = load_config(
        "srresnet_div2k_x4", overrides=[*TINY_G, f"output_dir={tmp_path}", "name=tiny", "train.max_steps=2"]
    )
    assert cfg_g.model.discriminator is None
    method = build_method(cfg_g)
    assert set(method.nets) == {"g"} and method.groups["d"] == ()
    train_set, test_set = method_class("srgan").datasets(cfg_g)
    trainer = Trainer(cfg_g, method, train_set, sample_batch=first_items(test_set, 2), progress=False)
    assert set(trainer.optimizers) == {"g"}
    result = trainer.fit()
    assert result.step == 2 and set(result.last_logs) == {"g_pixel", "lr"}
    net, info = load_model_with_info(result.checkpoint)
    assert info.task == "upscale" and info.scale == 4 and info.value_range == (0.0, 1.0)
    upscaler = Upscaler.from_file(result.checkpoint, device="cpu", tile=8, tile_overlap=2)
    assert upscaler.upscale_image(np.zeros((6, 10, 3), np.uint8)).shape == (24, 40, 3)
    samples = sorted((result.run_dir / "samples").glob("*.png"))
    assert samples  # bicubic | output | target grid


def test_pretrained_generator_is_loaded_from_a_run_folder_and_checked(tmp_path: Path) -> None:
    phase1 = load_config(
        "srresnet_div2k_x4",
        overrides=[*TINY_G, f"output_dir={tmp_path}", "name=srresnet", "train.max_steps=1"],
    )
    result = train(phase1, progress=False)
    method = build_method(tiny(tmp_path, f"model.pretrained={tmp_path / 'srresnet'}"))
    trained, _ = load_model_with_info(result.checkpoint)
    for key, value in trained.state_dict().items():
        assert torch.equal(method.nets["g"].state_dict()[key], value)
    with pytest.raises(
        ConfigError, match="model.pretrained: .* holds a srresnet .* use the same architecture"
    ):
        build_method(
            tiny(
                tmp_path,
                f"model.pretrained={tmp_path / 'srresnet'}",
                "model.generator={name: srresnet, args: {base_channels: 4, num_blocks: 1}}",
            )
        )
    with pytest.raises(ConfigError, match=r"model.pretrained: .*i2i train srresnet_div2k_x4"):
        build_method(tiny(tmp_path, f"model.pretrained={tmp_path / 'missing.safetensors'}"))


def test_gan_phase_trains_and_logs_the_sr_protocol_psnr_ssim(tmp_path: Path) -> None:
    """Phase 2 runs end to end, and the ``eval`` block logs PSNR/SSIM (Y channel, scale-wide border cut)."""
    cfg = tiny(
        tmp_path,
        "train.max_steps=3",
        "model.pretrain_steps=1",
        "model.relativistic=true",
        "train.ema_decay=0.9",
        "data.sr.val_crop_size=32",  # SSIM's 11x11 window needs 32 - 2 * 4 >= 11
        "eval.every=3",
        "eval.metrics=[psnr, ssim]",
        "eval.crop_border=4",
    )
    result = train(cfg, progress=False)
    logs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert set(logs[0]) == {"step", "g_pixel", "lr"}  # phase 1
    assert {"d_gan", "g_content", "g_gan"} <= set(logs[2])  # phase 2
    logged = next(record for record in logs if "eval/psnr" in record)
    assert logged["step"] == 3 and 0 < logged["eval/ssim"] <= 1
    g, _ = load_model_with_info(result.checkpoint)  # the EMA generator, which the evaluation used
    _, test_set = SRGAN.datasets(cfg)
    with torch.no_grad():
        sr = g(torch.stack([test_set[i]["lr"] for i in range(len(test_set))])).clamp(0, 1)
    sr = (sr * 255).round() / 255  # the metrics see 8-bit images, as saved outputs are
    hr = torch.stack([test_set[i]["hr"] for i in range(len(test_set))])
    assert logged["eval/psnr"] == pytest.approx(float(psnr(sr, hr, crop_border=4).mean()), abs=0.05)
    assert logged["eval/ssim"] == pytest.approx(float(ssim(sr, hr, crop_border=4).mean()), abs=0.01)


def test_recipes_hold_the_papers_settings() -> None:
    srgan = load_config("srgan_div2k_x4")
    assert srgan.model.adversarial_weight == 1e-3 and srgan.model.content_layers == {"relu5_4": 1.0}
    assert srgan.model.content_feature_scale == pytest.approx(1 / 12.75)
    assert srgan.model.pretrained == "runs/srresnet_div2k_x4" and srgan.data.crop_size == 96
    esrgan = load_config("esrgan_div2k_x4")
    assert esrgan.model.relativistic and esrgan.model.content_layers == {"conv5_4": 1.0}
    assert (esrgan.model.pixel_weight, esrgan.model.adversarial_weight) == (1e-2, 5e-3)
    assert esrgan.model.generator.name == "rrdbnet" and esrgan.model.pretrain_steps > 0
    for cfg in (load_config("srresnet_div2k_x4"), srgan, esrgan):
        assert cfg.eval.metrics == ("psnr", "ssim") and cfg.eval.crop_border == cfg.model.scale == 4


@pytest.mark.parametrize(
    ("recipe", "extra"),
    [
        ("srresnet_div2k_x4", []),
        ("srgan_div2k_x4", ["model.pretrained=", "data.batch_size=2"]),
        pytest.param(
            "esrgan_div2k_x4", ["model.pretrain_steps=0", "data.batch_size=1"], marks=pytest.mark.slow
        ),
    ],
)
def test_recipe_dry_run_at_full_size(recipe: str, extra: list[str]) -> None:
    cfg = load_config(recipe, overrides=[*extra, "model.vgg_weights=random"])  # eval block on, as shipped
    result = dry_run(cfg)
    assert result.step == 1 and all(np.isfinite(v) for v in result.last_logs.values())


# ----------------------------------------------------------------------------- convergence on real photos


def _write_patches(folder: Path, size: int = 128) -> int:
    """Non-overlapping size x size patches of five photos shipped with scikit-image."""
    from PIL import Image
    from skimage import data as skdata

    folder.mkdir(parents=True)
    count = 0
    for name in ("astronaut", "coffee", "chelsea", "immunohistochemistry", "stereo_motorcycle"):
        image = getattr(skdata, name)()
        image = image[0] if name == "stereo_motorcycle" else image  # (left, right, disparity)
        for y in range(0, image.shape[0] - size + 1, size):
            for x in range(0, image.shape[1] - size + 1, size):
                Image.fromarray(image[y : y + size, x : x + size]).save(folder / f"{name}_{y}_{x}.png")
                count += 1
    return count


def _held_out() -> dict[str, np.ndarray]:
    from skimage import data as skdata
    from sklearn.datasets import load_sample_image

    return {"rocket": skdata.rocket(), "china": load_sample_image("china.jpg")}


@pytest.mark.slow
def test_srresnet_beats_bicubic_on_held_out_real_photos(tmp_path: Path) -> None:
    """x4 SR trained a few hundred steps on patches of five photos beats bicubic on two other photos.

    The generator is BasicSR's SRResNet (MSRResNet: no batch norm, a bilinear skip), small. Ledig's SRResNet
    (batch norm, no skip) of the same size was still 0.04-0.8 dB below bicubic after 1,200 such steps.
    Measured (seed 0): rocket 30.03 -> 30.16 dB, china 22.47 -> 22.69 dB (Y, 4-pixel border); ~35 s of CPU.
    """
    import torch.nn.functional as F

    from i2i.data.sr import bicubic_downscale

    assert _write_patches(tmp_path / "data" / "train") >= 50
    _write_patches(tmp_path / "data" / "test")  # validation crops (not the held-out photos)
    cfg = load_config(
        "srresnet_div2k_x4",
        overrides=[
            "model.generator={name: msrresnet, args: {base_channels: 32, num_blocks: 4}}",
            f"data.root={tmp_path / 'data'}",
            "data.train_split=train",
            "data.test_split=test",
            "data.crop_size=64",
            "data.batch_size=8",
            "data.num_workers=0",
            "data.sr.val_crop_size=64",
            "train.max_steps=250",
            "train.lr_schedule=cosine",
            "train.log_every=50",
            "train.sample_every=0",
            "train.save_every=0",
            "eval.every=0",
            "optim.g.lr=2e-3",
            f"output_dir={tmp_path}",
            "name=sr",
        ],
    )
    result = train(cfg, progress=False)
    upscaler = Upscaler.from_file(result.checkpoint, device="cpu", tile=128, tile_overlap=16)
    for name, photo in _held_out().items():
        hr = photo[: photo.shape[0] // 4 * 4, : photo.shape[1] // 4 * 4]
        lr = np.rint(np.clip(bicubic_downscale(hr.astype(np.float32) / 255, 4), 0, 1) * 255).astype(np.uint8)
        sr = upscaler.upscale_image(lr)
        lr_t = torch.from_numpy(lr.transpose(2, 0, 1).astype(np.float32) / 255)[None]
        bicubic = F.interpolate(lr_t, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
        bicubic = (bicubic * 255).round() / 255  # 8-bit, as the model's output is

        def unit(image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255)[None]

        model_db = float(psnr(unit(sr), unit(hr), crop_border=4)[0])
        bicubic_db = float(psnr(bicubic, unit(hr), crop_border=4)[0])
        print(f"{name}: bicubic {bicubic_db:.2f} dB, model {model_db:.2f} dB")
        assert model_db > bicubic_db + 0.05, name
