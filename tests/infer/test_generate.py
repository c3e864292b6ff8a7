"""`i2i generate`: grids by class / code, interpolation strips, latent arithmetic, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from i2i.cli import main
from i2i.config import load_config
from i2i.hub import load_model
from i2i.infer.generate import (
    ImageGenerator,
    Latents,
    interpolate,
    latent_arithmetic,
    lerp,
    parse_arithmetic,
    slerp,
)
from i2i.methods import train

CELL = 16 + 2  # a 16 px image plus make_grid's 2 px padding


def checkpoint(tmp_path: Path, variant: str, *extra: str) -> Path:
    """A one-step 16 px DCGAN checkpoint of ``variant`` (the weights hardly matter here)."""
    cfg = load_config(
        None,
        overrides=[
            "method=gan",
            f"model.variant={variant}",
            "model.image_size=16",
            "model.channels=1",
            "model.latent_dim=6",
            "model.generator={name: dcgan_g, args: {base_channels: 4}}",
            "model.discriminator={name: dcgan_d, args: {base_channels: 4}}",
            "data.source=synthetic",
            "data.synthetic={num_train: 8, num_test: 2}",
            "data.batch_size=4",
            "data.num_workers=0",
            "train.max_steps=1",
            f"output_dir={tmp_path}",
            f"name={variant}",
            *extra,
        ],
    )
    return train(cfg, progress=False).checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gan_checkpoints")
    return {
        "gan": checkpoint(root, "gan"),
        "cgan": checkpoint(root, "cgan", "model.num_classes=3"),
        "infogan": checkpoint(root, "infogan", "model.code_categories=4", "model.code_continuous=2"),
    }


def generate(capsys: pytest.CaptureFixture[str], ckpt: Path, out: Path, *args: str) -> tuple[int, str, str]:
    code = main(["generate", "--checkpoint", str(ckpt), "-o", str(out), "--device", "cpu", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def size(path: Path) -> tuple[int, int]:
    return Image.open(path).size


# ----------------------------------------------------------------------------- interpolation maths


def test_lerp_and_slerp_hit_the_endpoints_exactly() -> None:
    z0, z1 = torch.randn(100), torch.randn(100)
    for path in (interpolate(z0, z1, 7, "linear"), interpolate(z0, z1, 7, "slerp")):
        assert path.shape == (7, 100)
        assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)


def test_slerp_keeps_norms() -> None:
    z0 = torch.randn(64, dtype=torch.float64)
    z1 = torch.randn(64, dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()  # equal norms: every point keeps it
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(slerp(z0, z1, t).norm(dim=1), z0.norm().expand(11))
    assert lerp(z0, z1, t)[5].norm() < 0.9 * z0.norm()  # the straight line cuts through the low-norm middle
    # Unequal norms: the norm moves linearly from one to the other.
    z2 = 3 * torch.randn(64, dtype=torch.float64)
    torch.testing.assert_close(slerp(z0, z2, t).norm(dim=1), (1 - t) * z0.norm() + t * z2.norm())
    # The direction moves at constant angular speed along the great circle.
    units = slerp(z0, z1, t) / z0.norm()
    angles = torch.arccos((units[:-1] * units[1:]).sum(1).clamp(-1, 1))
    torch.testing.assert_close(angles, angles[0].expand(10))


def test_slerp_of_parallel_vectors_is_linear() -> None:
    z = torch.randn(8)
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(slerp(z, 2 * z, t), lerp(z, 2 * z, t))


def test_interpolate_rejects_bad_options() -> None:
    z = torch.randn(4)
    with pytest.raises(Exception, match="--interpolate: unknown mode 'cubic'"):
        interpolate(z, z, 5, "cubic")
    with pytest.raises(Exception, match="--steps must be at least 2"):
        interpolate(z, z, 1)


def test_latent_arithmetic_averages_exemplars() -> None:
    a, b, c = torch.randn(3, 5), torch.randn(2, 5), torch.randn(4, 5)
    torch.testing.assert_close(latent_arithmetic(a, b, c), a.mean(0) - b.mean(0) + c.mean(0))
    assert parse_arithmetic("0,1,2-3,4+5") == [[0, 1, 2], [3, 4], [5]]
    with pytest.raises(Exception, match="--arithmetic: expected A-B\\+C"):
        parse_arithmetic("0,1+2")


# ----------------------------------------------------------------------------- images


def test_interpolation_endpoints_are_the_endpoint_latents_images(checkpoints: dict[str, Path]) -> None:
    gen = ImageGenerator.from_file(checkpoints["cgan"], device="cpu")
    rows, steps = 3, 6
    for mode in ("linear", "slerp"):
        images, nrow = gen.interpolation(rows, steps, mode, seed=5)
        assert nrow == steps and images.shape == (rows * steps, 1, 16, 16)
        ends = torch.randn(rows, 2, 6, generator=torch.Generator().manual_seed(5))  # as the strips draw them
        labels = torch.arange(rows) % 3  # row r in class r
        for end in (0, 1):
            expected = gen.render(Latents(ends[:, end], labels=labels))
            torch.testing.assert_close(images[end * (steps - 1) :: steps], expected, rtol=0, atol=1e-6)


def test_generate_by_class(checkpoints: dict[str, Path], tmp_path: Path, capsys) -> None:
    code, out, err = generate(
        capsys, checkpoints["cgan"], tmp_path / "all", "--interpolate", "slerp", "--steps", "5"
    )
    assert code == 0, err
    assert out.splitlines() == [f"wrote {tmp_path / 'all' / 'samples.png'}",
                                f"wrote {tmp_path / 'all' / 'interpolation_slerp.png'}"]  # fmt: skip
    assert size(tmp_path / "all" / "samples.png") == (8 * CELL + 2, 3 * CELL + 2)  # a row per class
    assert size(tmp_path / "all" / "interpolation_slerp.png") == (5 * CELL + 2, 8 * CELL + 2)

    code, _, err = generate(capsys, checkpoints["cgan"], tmp_path / "two", "--class", "2", "--num", "6")
    assert code == 0, err
    assert size(tmp_path / "two" / "samples.png") == (6 * CELL + 2, CELL + 2)
    gen = ImageGenerator.from_file(checkpoints["cgan"], device="cpu")
    images, _, latents = gen.grid(6, 0, class_index=2)
    assert torch.equal(latents.labels, torch.full((6,), 2))
    g = load_model(checkpoints["cgan"])
    with torch.no_grad():
        expected = g(torch.randn(6, 6, generator=torch.Generator().manual_seed(0)), latents.labels)
    torch.testing.assert_close(images, expected)


def test_generate_by_code(checkpoints: dict[str, Path], tmp_path: Path, capsys) -> None:
    code, _, err = generate(capsys, checkpoints["infogan"], tmp_path / "rows")
    assert code == 0, err
    assert size(tmp_path / "rows" / "samples.png") == (8 * CELL + 2, 4 * CELL + 2)  # a row per category
    code, _, err = generate(capsys, checkpoints["infogan"], tmp_path / "one", "--code", "3,0.5", "--num", "4")
    assert code == 0, err
    gen = ImageGenerator.from_file(checkpoints["infogan"], device="cpu")
    _, _, latents = gen.grid(4, 0, code=[3, 0.5])
    assert torch.equal(latents.categorical, torch.full((4,), 3))
    assert torch.equal(latents.continuous, torch.tensor([[0.5, 0.0]]).expand(4, 2))  # unset codes: 0


def test_generate_arithmetic(checkpoints: dict[str, Path], tmp_path: Path, capsys) -> None:
    code, _, err = generate(capsys, checkpoints["gan"], tmp_path, "--arithmetic", "0,1,2-3,4,5+6,7,8")
    assert code == 0, err
    assert size(tmp_path / "samples.png") == (8 * CELL + 2, 8 * CELL + 2)  # 64 samples to pick from
    assert size(tmp_path / "arithmetic.png") == (12 * CELL + 2, CELL + 2)  # A, B, C, result + 8 variants
    gen = ImageGenerator.from_file(checkpoints["gan"], device="cpu")
    _, _, latents = gen.grid(None, 0)
    strip, _ = gen.arithmetic([[0, 1, 2], [3, 4, 5], [6, 7, 8]], latents)
    noise = latents.noise
    result = noise[:3].mean(0) - noise[3:6].mean(0) + noise[6:9].mean(0)
    torch.testing.assert_close(strip[3:4], gen.render(Latents(result[None])), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        strip[0:1], gen.render(Latents(noise[:3].mean(0, keepdim=True))), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    ("variant", "args", "message"),
    [
        ("cgan", ["--class", "3"], "--class: 3 is out of range; the model has 3 classes"),
        ("gan", ["--class", "0"], "--class: this generator is not class-conditional"),
        ("gan", ["--code", "1"], "--code: this generator has no InfoGAN codes"),
        ("infogan", ["--code", "1.5"], "--code: the first value is the category"),
        ("infogan", ["--code", "1,0,0,0"], "--code: too many values"),
        ("infogan", ["--code", "a"], "--code: expected numbers"),
        ("gan", ["--arithmetic", "0-1+99"], "--arithmetic: index 99 is out of range"),
        ("gan", ["--num", "0"], "--num must be at least 1"),
    ],
)
def test_generate_user_errors_are_one_line(
    checkpoints: dict[str, Path], tmp_path: Path, capsys, variant: str, args: list[str], message: str
) -> None:
    code, _, err = generate(capsys, checkpoints[variant], tmp_path, *args)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("i2i: error: ") and message in err


def test_generate_refuses_an_image_to_image_checkpoint(
    tiny_overrides: list[str], tmp_path: Path, capsys
) -> None:
    cfg = load_config("demo_pix2pix", overrides=[*tiny_overrides, "train.max_steps=1"])
    pix2pix = train(cfg, progress=False).checkpoint
    code, _, err = generate(capsys, pix2pix, tmp_path / "out")
    assert code == 2 and "not a noise-to-image generator" in err and "i2i translate" in err
