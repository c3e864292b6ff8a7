"""The ``i2i`` command line, run in-process: exit codes, one-line user errors, train then translate."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from i2i import nets
from i2i.cli import main
from i2i.config import CONFIG_DIR
from i2i.errors import ConfigError
from i2i.train.checkpoint import list_checkpoints

REPO = Path(__file__).parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def assert_one_line_error(code: int, err: str) -> str:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("i2i: error: ")
    return lines[0]


def train_tiny(capsys: pytest.CaptureFixture[str], overrides: list[str], *extra: str) -> tuple[str, Path]:
    code, out, err = run(capsys, "train", "demo_pix2pix", *sets(overrides), *extra)
    assert code == 0, err
    checkpoint = Path(re.search(r"^checkpoint: (.+)$", out, re.MULTILINE).group(1))
    assert checkpoint.is_file()
    return out, checkpoint


# ----------------------------------------------------------------------------- train


def test_dry_run_demo_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "train", "demo_pix2pix", "--dry-run")
    assert code == 0
    assert out.startswith("dry run OK: one pix2pix step on synthetic data (")
    assert "g_l1=" in out and "d_gan=" in out


@pytest.mark.slow
def test_dry_run_facades_recipe_full_width(capsys: pytest.CaptureFixture[str]) -> None:
    # One 256px step with the full-width unet_256 and 70x70 PatchGAN: ~7 s on a 2-core CPU.
    code, out, _ = run(capsys, "train", str(CONFIG_DIR / "pix2pix_facades.yaml"), "--dry-run")
    assert code == 0
    assert "dry run OK" in out


def test_dry_run_leaves_no_run_folder(
    capsys: pytest.CaptureFixture[str], tiny_overrides: list[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "train", "demo_pix2pix", *sets(tiny_overrides), "--dry-run")
    assert code == 0 and "dry run OK" in out
    assert not (tmp_path / "tiny").exists()


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.no_such_key=1", "train.no_such_key: unknown key"),
        ("train.max_steps=ten", "train.max_steps: expected an integer"),
        ("model.generator.args={no_such_arg: 1}", "no_such_arg"),
        ("train", "--set 'train'"),
    ],
)
def test_bad_set_is_a_one_line_error_naming_the_key(
    capsys: pytest.CaptureFixture[str], override: str, named: str
) -> None:
    code, out, err = run(capsys, "train", "demo_pix2pix", "--set", override, "--dry-run")
    line = assert_one_line_error(code, err)
    assert named in line
    assert "dry run OK" not in out


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    code, _, err = run(capsys, "train", str(missing))
    line = assert_one_line_error(code, err)
    assert f"{missing}: config file not found" in line
    assert "demo_pix2pix" in line  # lists the shipped recipes


def test_multi_line_reasons_are_printed_on_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("method: pix2pix\ntrain: {max_steps: [1, 2\n")  # the YAML error spans several lines
    code, _, err = run(capsys, "train", str(config), "--dry-run")
    line = assert_one_line_error(code, err)
    assert "not valid YAML" in line and str(config) in line


def test_debug_shows_the_exception(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        main(["--debug", "train", str(tmp_path / "nope.yaml")])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["translate", "x.png"])  # --checkpoint and -o are required
    assert exc.value.code == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_resume_auto_continues_the_run(
    capsys: pytest.CaptureFixture[str],
    tiny_overrides: list[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out, first = train_tiny(capsys, [*tiny_overrides, "train.max_steps=2"])
    assert "trained 2 steps" in out and first.name == "step_00000002.safetensors"

    with caplog.at_level("INFO", logger="i2i.train.loop"):
        out, last = train_tiny(capsys, [*tiny_overrides, "train.max_steps=4"], "--resume", "auto")
    assert "trained 4 steps" in out
    assert f"resumed from {first} at step 2" in caplog.text
    assert last.name == "step_00000004.safetensors"
    assert [p.name for p in list_checkpoints(tmp_path / "tiny" / "checkpoints")] == [
        "step_00000002.safetensors",
        "step_00000004.safetensors",
    ]


def test_resume_from_a_missing_file(
    capsys: pytest.CaptureFixture[str], tiny_overrides: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "gone.safetensors"
    code, _, err = run(
        capsys,
        "train",
        "demo_pix2pix",
        *sets([*tiny_overrides, "train.max_steps=1"]),
        "--resume",
        str(missing),
    )
    assert str(missing) in assert_one_line_error(code, err)


# ----------------------------------------------------------------------------- translate


def test_train_then_translate_a_folder(
    capsys: pytest.CaptureFixture[str], tiny_overrides: list[str], tmp_path: Path
) -> None:
    out, checkpoint = train_tiny(capsys, [*tiny_overrides, "train.max_steps=1"])
    assert "trained 1 steps" in out

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skdata.chelsea()).save(photos / "cat.jpg")  # 300x451
    rng = np.random.default_rng(0)
    for name, (h, w) in {"odd.png": (37, 53), "odd2.png": (37, 53), "tiny.png": (5, 9)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photos / name)
    (photos / "README.txt").write_text("ignored")
    results = tmp_path / "results"

    code, out, err = run(
        capsys,
        "translate",
        str(photos),
        "--checkpoint",
        str(checkpoint),
        "-o",
        str(results),
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--precision",
        "fp32",
    )
    assert code == 0, err
    assert out.strip() == f"translated 4 image(s) into {results}"
    sizes = {p.name: Image.open(p).size for p in sorted(results.iterdir())}
    assert sizes == {"cat.png": (451, 300), "odd.png": (53, 37), "odd2.png": (53, 37), "tiny.png": (9, 5)}


def test_translate_with_a_corrupt_checkpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    for name, data in [
        ("last.safetensors", b"\x10\x00" * 50),
        ("latest_net_G.pth", b"PK\x03\x04 broken zip"),
    ]:
        checkpoint = tmp_path / name
        checkpoint.write_bytes(data)
        code, _, err = run(
            capsys, "translate", str(image), "--checkpoint", str(checkpoint), "-o", str(tmp_path)
        )
        line = assert_one_line_error(code, err)
        assert str(checkpoint) in line


def test_translate_user_errors(
    capsys: pytest.CaptureFixture[str], tiny_overrides: list[str], tmp_path: Path
) -> None:
    _, checkpoint = train_tiny(capsys, [*tiny_overrides, "train.max_steps=1"])
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    out = str(tmp_path / "out")
    common = ["--checkpoint", str(checkpoint), "-o", out, "--device", "cpu"]

    missing = tmp_path / "missing.png"
    code, _, err = run(capsys, "translate", str(image), str(missing), *common)
    assert f"{missing}: no such file or folder" in assert_one_line_error(code, err)

    code, _, err = run(capsys, "translate", str(image), *common, "--net", "g_ab")
    assert "no net 'g_ab'" in assert_one_line_error(code, err)

    code, _, err = run(capsys, "translate", str(image), *common, "--net", "d")  # the discriminator
    assert "channel" in assert_one_line_error(code, err)

    code, _, err = run(capsys, "translate", str(image), *common, "--batch-size", "0")
    assert "--batch-size" in assert_one_line_error(code, err)
    assert not Path(out).exists()


def test_translate_with_a_reference_pth(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    Image.new("RGB", (53, 37), (200, 30, 90)).save(image)
    checkpoint = REPO / "tests" / "fixtures" / "reference" / "jz_unet_128_instance.pth"
    code, out, err = run(
        capsys, "translate", str(image), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "out")
    )
    assert code == 0, err
    assert Image.open(tmp_path / "out" / "in.png").size == (53, 37)


# ----------------------------------------------------------------------------- list, entry point


def test_list_prints_recipes_and_networks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    recipes, networks = out.strip().splitlines()
    assert recipes.startswith("recipes:") and networks.startswith("networks:")
    for recipe in ("demo_pix2pix", "pix2pix_facades", "pix2pix_edges2shoes"):
        assert recipe in recipes
    assert networks.split(":", 1)[1].strip().split(", ") == nets.list()
    assert {"unet", "unet_256", "patchgan", "pixel"} <= set(nets.list())


def test_python_m_i2i_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "i2i", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: i2i")
    for command in ("train", "translate", "demo", "list"):
        assert command in result.stdout
