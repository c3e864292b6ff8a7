"""The classic GANs on the shared core: variants, losses, exact resume, samples, recipes, what they learn."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2i.cli import main
from i2i.config import CONFIG_DIR, load_config
from i2i.errors import ConfigError
from i2i.hub import load_model
from i2i.losses import d_loss, gradient_penalty
from i2i.methods import GAN, build_method, first_items, train
from i2i.nets.dcgan import DCGANGenerator
from i2i.train import Trainer
from i2i.train.diagnostics import HealthMonitor

RECIPES = [
    "gan_mlp_mnist",
    "dcgan_mnist",
    "dcgan_celeba64",
    "cgan_mnist",
    "infogan_mnist",
    "wgan_gp_mnist",
    "lsgan_mnist",
]
VARIANTS = {
    "gan": [],
    "cgan": ["model.num_classes=4"],
    "infogan": ["model.code_categories=4", "model.code_continuous=1"],
}


def tiny(tmp_path: Path, variant: str = "gan", *extra: str, name: str = "tiny"):
    return load_config(
        None,
        overrides=[
            "method=gan",
            f"model.variant={variant}",
            *VARIANTS[variant],
            "model.image_size=16",
            "model.channels=1",
            "model.latent_dim=8",
            "model.generator={name: dcgan_g, args: {base_channels: 8}}",
            "model.discriminator={name: dcgan_d, args: {base_channels: 8}}",
            "data.source=synthetic",
            "data.synthetic={num_train: 16, num_test: 4}",
            "data.batch_size=4",
            "data.num_workers=0",
            "train.log_every=1",
            "train.sample_every=0",
            "train.save_every=0",
            f"output_dir={tmp_path}",
            f"name={name}",
            *extra,
        ],
    )


def make_trainer(cfg) -> Trainer:
    method = build_method(cfg)
    train_set, test_set = GAN.datasets(cfg)
    return Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False)


def batch_of(cfg, n: int = 4) -> dict:
    return first_items(GAN.datasets(cfg)[0], n)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- building


def test_specs_carry_what_generation_needs(tmp_path: Path) -> None:
    method = build_method(tiny(tmp_path, "infogan"))
    assert list(method.specs) == ["g", "d"]  # g first: the default model of load_model
    g_args = method.specs["g"]["args"]
    assert g_args["latent_dim"] == 8 and g_args["code_categories"] == 4 and g_args["code_continuous"] == 1
    assert g_args["num_classes"] == 0 and g_args["image_size"] == 16 and g_args["out_channels"] == 1
    assert method.specs["d"]["args"]["code_categories"] == 4  # Q predicts the codes
    cgan = build_method(tiny(tmp_path, "cgan"))
    assert cgan.specs["g"]["args"]["num_classes"] == cgan.specs["d"]["args"]["num_classes"] == 4
    assert cgan.specs["g"]["args"]["code_categories"] == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.variant=wgan"], "model.variant: unknown variant 'wgan'"),
        (["model.gan_loss=bce"], "model.gan_loss: unknown kind 'bce'"),
        (["model.variant=cgan"], "model.num_classes: the cgan variant needs"),
        (["model.variant=infogan"], "model.code_categories: the infogan variant needs"),
        (["model.code_categories=1"], "at least 2 categories"),
        (["model.gp_weight=10"], "model.gp_weight: .*batch norm.*norm=none"),
        (
            ["model.generator={name: dcgan_g, args: {latent_dim: 3}}"],
            "model.generator.args.latent_dim: set by",
        ),
        (
            ["model.discriminator={name: dcgan_d, args: {depth: 3}}"],
            "model.discriminator: .*unknown argument",
        ),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_method(tiny(tmp_path, "gan", *overrides))


# ----------------------------------------------------------------------------- the losses


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_d_step_detaches_and_g_step_trains_g(tmp_path: Path, variant: str) -> None:
    cfg = tiny(tmp_path, variant)
    method = build_method(cfg)
    batch = batch_of(cfg)
    out = method.forward(batch)
    assert out["fake"].shape == (4, 1, 16, 16)
    d_terms = method.d_step(batch, out)
    expected = {"d_gan", "stat/d_real_acc", "stat/d_fake_acc", "stat/d_real_sign", "stat/diversity"}
    if variant == "infogan":
        expected |= {"d_info", "stat/q_accuracy"}
    assert set(d_terms) == expected
    assert all(not v.requires_grad for k, v in d_terms.items() if k.startswith("stat/"))
    sum(v for k, v in d_terms.items() if not k.startswith("stat/")).backward()
    assert all(p.grad is None for p in method.nets["g"].parameters())  # fakes detached for D
    if variant == "infogan":
        assert all(p.grad is not None for p in method.nets["d"].heads.q.parameters())  # Q trains with D
    method.nets["d"].zero_grad(set_to_none=True)
    g_terms = method.g_step(batch, method.forward(batch))
    assert set(g_terms) == ({"g_gan", "g_info"} if variant == "infogan" else {"g_gan"})
    sum(g_terms.values()).backward()
    assert all(p.grad is not None for p in method.nets["g"].parameters())


def test_cgan_pairs_fakes_with_the_batch_labels(tmp_path: Path) -> None:
    cfg = tiny(tmp_path, "cgan")
    method = build_method(cfg)
    batch = batch_of(cfg)
    torch.manual_seed(3)
    out = method.forward(batch)
    torch.manual_seed(3)
    z = torch.randn(4, 8)
    torch.testing.assert_close(out["fake"], method.nets["g"](z, batch["label"]))
    d = method.nets["d"]
    terms = method.d_step(batch, out)
    real, fake = d(batch["image"], batch["label"]), d(out["fake"], batch["label"])
    torch.testing.assert_close(terms["d_gan"], d_loss("vanilla", real, fake))


def test_infogan_information_term_follows_the_paper(tmp_path: Path) -> None:
    cfg = tiny(tmp_path, "infogan", "model.info_weight=2", "model.info_continuous_weight=0.5")
    method = build_method(cfg)
    batch = batch_of(cfg)
    out = method.forward(batch)
    assert out["code_cat"].shape == (4,) and out["code_cont"].abs().max() <= 1  # c ~ Cat(K), U(-1, 1)
    z = out["fake"]
    torch.manual_seed(0)
    g_terms = method.g_step(batch, out)
    _, cat_logits, cont = method.nets["d"].forward_info(z)
    nll = (
        F.cross_entropy(cat_logits, out["code_cat"])
        + 0.5 * 0.5 * (cont - out["code_cont"]).square().sum(1).mean()
    )
    torch.testing.assert_close(g_terms["g_info"], 2 * nll)


def test_wgan_gp_term_is_lambda_times_the_penalty(tmp_path: Path) -> None:
    cfg = tiny(
        tmp_path,
        "gan",
        "model.gan_loss=wgan",
        "model.gp_weight=10",
        "model.discriminator={name: dcgan_d, args: {base_channels: 8, norm: none}}",
    )
    method = build_method(cfg)
    batch = batch_of(cfg)
    out = method.forward(batch)
    state = torch.get_rng_state()
    terms = method.d_step(batch, out)
    torch.set_rng_state(state)
    penalty = gradient_penalty(method.nets["d"], batch["image"], out["fake"])
    torch.testing.assert_close(terms["d_gp"], 10 * penalty)


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "wgan", "hinge"])
def test_every_loss_kind_trains(tmp_path: Path, kind: str) -> None:
    result = train(tiny(tmp_path, "cgan", f"model.gan_loss={kind}", "train.max_steps=2"), progress=False)
    logged = records(result.run_dir)
    assert [r["step"] for r in logged] == [1, 2]
    assert all(np.isfinite(r["d_gan"]) and np.isfinite(r["g_gan"]) for r in logged)
    assert {"stat/d_real_acc", "stat/d_fake_acc", "stat/d_real_sign", "stat/diversity"} <= set(logged[0])


def test_wgan_gp_with_n_critic(tmp_path: Path) -> None:
    cfg = tiny(
        tmp_path,
        "gan",
        "model.gan_loss=wgan",
        "model.gp_weight=10",
        "model.discriminator={name: dcgan_d, args: {base_channels: 8, norm: instance}}",
        "train.n_critic=3",
        "train.max_steps=2",
    )
    trainer = make_trainer(cfg)
    result = trainer.fit()
    assert trainer.batches_seen == 2 * 3  # three critic batches per generator step
    logged = records(result.run_dir)
    assert all(r["d_gp"] > 0 for r in logged)


# ----------------------------------------------------------------------------- the core's promises


@pytest.mark.parametrize(
    ("variant", "extra"),
    [
        ("gan", ["model.generator={name: mlp_g, args: {hidden_dim: 8, num_layers: 2}}",
                 "model.discriminator={name: mlp_d, args: {hidden_dim: 8, num_layers: 2, dropout: 0.3}}"]),
        ("cgan", ["train.ema_decay=0.9"]),
        ("infogan", []),
        ("gan", ["model.gan_loss=wgan", "model.gp_weight=10", "train.n_critic=2",
                 "model.discriminator={name: dcgan_d, args: {base_channels: 8, norm: none}}"]),
    ],
    ids=["mlp-dropout", "cgan-ema", "infogan", "wgan-gp-n_critic"],
)  # fmt: skip
def test_resume_continues_exactly(tmp_path: Path, variant: str, extra: list[str]) -> None:
    """N steps straight == N/2 steps, a restart from the checkpoint, N/2 more: weights and logs bitwise."""
    n = 6
    straight = make_trainer(tiny(tmp_path, variant, *extra, f"train.max_steps={n}", name="straight"))
    straight.fit()
    make_trainer(tiny(tmp_path, variant, *extra, f"train.max_steps={n}", name="split")).fit(stop_at=n // 2)
    torch.manual_seed(1234)  # disturb the global RNG: resume must restore it (z and codes come from it)
    rest = make_trainer(tiny(tmp_path, variant, *extra, f"train.max_steps={n}", name="split"))
    rest.fit(resume="auto")
    assert rest.step == n
    for name, net in straight.method.nets.items():
        for key, value in net.state_dict().items():
            assert torch.equal(value, rest.method.nets[name].state_dict()[key]), f"{name}.{key}"
    for name, ema in straight.ema.items():
        other = rest.ema[name].state_dict()
        assert all(torch.equal(value, other[key]) for key, value in ema.state_dict().items())
    assert records(tmp_path / "straight") == records(tmp_path / "split")


@pytest.mark.parametrize(("variant", "rows"), [("gan", 8), ("cgan", 4), ("infogan", 4)])
def test_samples_are_a_fixed_grid(tmp_path: Path, variant: str, rows: int) -> None:
    cfg = tiny(tmp_path, variant, "train.max_steps=1", "train.sample_every=1")
    trainer = make_trainer(cfg)
    result = trainer.fit()
    nets = trainer.eval_nets()
    for net in nets.values():
        net.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        first = trainer.method.samples(trainer.sample_batch, nets)
        torch.manual_seed(1)  # the grid's noise does not come from the global RNG
        second = trainer.method.samples(trainer.sample_batch, nets)
    assert list(first) == [f"z{j}" for j in range(8)]  # eight columns
    assert all(v.shape == (rows, 1, 16, 16) for v in first.values())  # one row per class / code value
    assert all(torch.equal(first[k], second[k]) for k in first)
    if variant != "gan":  # a column shares its noise: rows differ only by class or code
        z, _, _ = trainer.method.sample_inputs(torch.device("cpu"))
        assert torch.equal(z[0, :8], z[8, :8])
    grid = result.run_dir / "samples" / "step_00000001.png"
    assert grid.is_file()


def test_load_model_rebuilds_the_generator_without_the_config(tmp_path: Path) -> None:
    cfg = tiny(tmp_path, "cgan", "train.max_steps=1")
    trainer = make_trainer(cfg)
    result = trainer.fit()
    g = load_model(result.checkpoint)
    assert isinstance(g, DCGANGenerator) and (g.latent_dim, g.num_classes) == (8, 4)
    z, labels = torch.randn(3, 8), torch.tensor([0, 1, 3])
    with torch.no_grad():
        torch.testing.assert_close(g(z, labels), trainer.method.nets["g"].eval()(z, labels))


def test_collapse_warning_fires(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = tiny(tmp_path, "gan")
    method = build_method(cfg)
    method.monitor = HealthMonitor("vanilla", warmup=0, smoothing=0.0)
    batch = batch_of(cfg)
    out = method.forward(batch)
    collapsed = {"fake": out["fake"][:1].expand(4, -1, -1, -1)}  # four copies of one image
    with caplog.at_level(logging.WARNING):
        terms = method.d_step(batch, collapsed)
    assert terms["stat/diversity"] == 0
    assert "possible mode collapse" in caplog.text


# ----------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    "recipe", [pytest.param(r, marks=pytest.mark.slow) if r == "dcgan_celeba64" else r for r in RECIPES]
)
def test_recipe_dry_run(recipe: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Full-size nets and batches, one step on synthetic data, no download: 0.4-1.5 s each on one CPU
    # thread, ~12 s for the 64 px batch of 128 of dcgan_celeba64.
    assert (CONFIG_DIR / f"{recipe}.yaml").is_file()
    assert main(["train", recipe, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run OK: one gan step on synthetic data (")
    assert "stat/diversity=" in out


# ----------------------------------------------------------------------------- what they learn


def digits_classifier():
    """An RBF SVM on scikit-learn's 8x8 digits (0..16 values): 95% on the 297 held-out digits."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    digits = load_digits()
    return SVC(gamma=0.001).fit(digits.data, digits.target)


def as_digits(images: torch.Tensor) -> np.ndarray:
    """Generated (N, 1, S, S) in [-1, 1] -> the classifier's (N, 64) features: 8x8 area means, 0..16."""
    return ((F.adaptive_avg_pool2d(images, 8) + 1) * 8).clamp(0, 16).flatten(1).numpy()


def digits_config(tmp_path: Path, variant: str, *extra: str):
    # 16x16 DCGAN (4x4 -> 8x8 -> 16x16) on the offline digits, sized to learn in ~20 s on one CPU thread.
    return load_config(
        None,
        overrides=[
            "method=gan",
            f"model.variant={variant}",
            "model.image_size=16",
            "model.channels=1",
            "model.latent_dim=32",
            "model.generator={name: dcgan_g, args: {base_channels: 32}}",
            "model.discriminator={name: dcgan_d, args: {base_channels: 32}}",
            "data.source=digits",
            "data.batch_size=64",
            "data.num_workers=0",
            "train.lr_schedule=constant",
            "train.log_every=50",
            "train.sample_every=0",
            "train.save_every=0",
            f"output_dir={tmp_path}",
            f"name={variant}",
            *extra,
        ],
    )


@pytest.mark.slow
def test_cgan_samples_are_recognised_as_their_class(tmp_path: Path) -> None:
    """Generated digits of each class are classified as that class by a classifier trained on real digits.

    Measured (300 steps, ~20 s on one CPU thread): 98.0% of 500 samples (50 per class), every class at 92%
    or more; chance is 10%, and the same classifier scores ~95% on held-out real digits.
    """
    cfg = digits_config(tmp_path, "cgan", "model.num_classes=10", "train.max_steps=300")
    result = train(cfg, progress=False)
    g = load_model(result.checkpoint)
    labels = torch.arange(10).repeat_interleave(50)
    with torch.no_grad():
        images = g(torch.randn(500, 32, generator=torch.Generator().manual_seed(1)), labels)
    predicted = digits_classifier().predict(as_digits(images))
    accuracy = float((predicted == labels.numpy()).mean())
    per_class = [float((predicted[labels == k] == k).mean()) for k in range(10)]
    print(f"cGAN class accuracy {accuracy:.3f} (chance 0.1); per class {np.round(per_class, 2).tolist()}")
    assert accuracy > 0.8
    assert min(per_class) > 0.4  # every class is drawn, not just the easy ones


@pytest.mark.slow
def test_infogan_categorical_code_controls_the_output(tmp_path: Path) -> None:
    """Changing only the categorical code changes what is drawn, recoverably, and in a digit-like way.

    Measured (200 steps, ~11 s): Q recovers the code of fresh samples 100% of the time, a fresh classifier
    trained on generated images 100% (chance 10%), switching the code moves pixels 1.7x as much as
    switching the noise, and NMI(code, digit class) 0.60 with no labels used in training.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import normalized_mutual_info_score

    cfg = digits_config(
        tmp_path,
        "infogan",
        "model.code_categories=10",
        "model.code_continuous=2",
        "train.max_steps=200",
        "optim.g.lr=1e-3",  # the paper's rates: G 1e-3, D and Q 2e-4
    )
    trainer = make_trainer(cfg)
    trainer.fit()
    g, d = trainer.method.nets["g"].eval(), trainer.method.nets["d"].eval()
    gen = torch.Generator().manual_seed(1)
    n = 100
    codes = torch.arange(10).repeat_interleave(n)
    with torch.no_grad():
        noise = torch.randn(n, 32, generator=gen).repeat(10, 1)  # the same noise under every code
        images = g(g.compose_latent(noise, codes, torch.zeros(10 * n, 2)))
        q_accuracy = float((d.forward_info(images)[1].argmax(1) == codes).float().mean())
    by_code = images.view(10, n, -1)
    code_effect = (by_code[0:1] - by_code[1:]).abs().mean()  # same noise, another code
    noise_effect = (by_code[:, :-1] - by_code[:, 1:]).abs().mean()  # same code, another noise
    features, order = images.flatten(1).numpy(), np.random.default_rng(0).permutation(10 * n)
    train_idx, test_idx = order[:700], order[700:]
    fresh = LogisticRegression(max_iter=300).fit(features[train_idx], codes.numpy()[train_idx])
    fresh_accuracy = fresh.score(features[test_idx], codes.numpy()[test_idx])
    nmi = normalized_mutual_info_score(codes.numpy(), digits_classifier().predict(as_digits(images)))
    print(
        f"InfoGAN: Q accuracy {q_accuracy:.3f}, fresh classifier {fresh_accuracy:.3f} (chance 0.1), "
        f"code/noise effect {code_effect / noise_effect:.2f}, NMI(code, digit) {nmi:.2f}"
    )
    assert q_accuracy > 0.9
    assert fresh_accuracy > 0.9
    assert code_effect > 1.2 * noise_effect
    assert nmi > 0.3
