"""ONNX, TorchScript and torch.export (.pt2) export of every image-to-image and super-resolution family,
with parity checks.

Each export is run at two sizes other than the one it was traced at (and two batch sizes): ONNX with
onnxruntime, TorchScript with torch.jit.load, .pt2 with torch.export.load. ONNX exports take a few
seconds each, so they are slow tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from i2i import nets
from i2i.cli import main
from i2i.infer.export import check_parity, export_model
from i2i.nets.layers import init_weights

# Family -> (registry name, tiny constructor arguments, task, value range). A net registered later must be
# added here or to NOT_EXPORTED (test_every_registered_net_is_covered).
FAMILIES = {
    "unet": (
        "unet",
        {"num_downs": 5, "base_channels": 8, "norm": "batch", "dropout": True},
        "translate",
        (-1, 1),
    ),
    "resnet": ("resnet", {"base_channels": 4, "num_blocks": 2, "norm": "instance"}, "translate", (-1, 1)),
    "encoder_decoder": ("encoder_decoder", {"base_channels": 8, "num_downs": 3}, "translate", (-1, 1)),
    "rrdbnet_x4": ("rrdbnet", {"base_channels": 8, "num_blocks": 1, "growth_channels": 4}, "upscale", (0, 1)),
    "rrdbnet_x2": (  # pixel-unshuffles its input
        "rrdbnet",
        {"base_channels": 8, "num_blocks": 1, "growth_channels": 4, "scale": 2},
        "upscale",
        (0, 1),
    ),
    "srvgg_compact": ("srvgg_compact", {"base_channels": 8, "num_convs": 2, "scale": 4}, "upscale", (0, 1)),
    "msrresnet": ("msrresnet", {"base_channels": 8, "num_blocks": 1, "scale": 3}, "upscale", (0, 1)),
    "srresnet": ("srresnet", {"base_channels": 8, "num_blocks": 1, "scale": 4}, "upscale", (0, 1)),
}
# Registered nets that are not exported, and why: their input is not an image of any size.
NOT_EXPORTED = {
    "dcgan_g": "noise (and class/code) to image",
    "mlp_g": "noise to image",
    "text2image_g": "text embedding and noise to image",
    "char_gru": "text encoder",
    "dcgan_d": "discriminator",
    "mlp_d": "discriminator",
    "patchgan": "discriminator",
    "pixel": "discriminator",
    "srgan_d": "discriminator",
    "unet_d_sn": "discriminator",
    "text2image_d": "discriminator",
}
ALIASES = {"unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks"}  # presets of exported families


def build(family: str) -> tuple[torch.nn.Module, str, tuple[float, float]]:
    name, args, task, value_range = FAMILIES[family]
    torch.manual_seed(0)
    net = init_weights(nets.build(name, **args), "normal", 0.2)  # large enough weights to show mistakes
    if family in ("unet", "srresnet"):  # non-trivial batch-norm statistics, as after training
        net.train()
        with torch.no_grad():
            net(torch.rand(4, 3, 64, 64))
    return net.eval(), task, value_range


def test_every_registered_net_is_covered() -> None:
    covered = {spec[0] for spec in FAMILIES.values()} | set(NOT_EXPORTED) | ALIASES
    missing = sorted(set(nets.list()) - covered)
    assert not missing, f"add {missing} to FAMILIES or NOT_EXPORTED in {__file__}"


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_onnx_export_runs_at_other_sizes_with_parity(family: str, tmp_path) -> None:
    import onnx

    net, task, value_range = build(family)
    report = export_model(net, tmp_path / "net.onnx", "onnx", name=family, task=task, value_range=value_range)
    assert report.ok, report.checks
    assert len({c.shape[2:] for c in report.checks}) == 2 and {c.shape[0] for c in report.checks} == {1, 2}
    metadata = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
    assert json.loads(metadata["i2i"])["value_range"] == list(map(float, value_range))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_torchscript_export_runs_at_other_sizes_with_parity(family: str, tmp_path) -> None:
    net, task, value_range = build(family)
    report = export_model(
        net, tmp_path / "net.pt", "torchscript", name=family, task=task, value_range=value_range
    )
    assert report.ok, report.checks
    assert max(c.max_abs_diff for c in report.checks) < 1e-4
    files = {"i2i.json": ""}
    with pytest.warns(FutureWarning):  # torch.jit is deprecated in favour of torch.export
        torch.jit.load(str(report.path), _extra_files=files)
    assert json.loads(files["i2i.json"])["task"] == task


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_pt2_export_runs_at_other_sizes_with_parity(family: str, tmp_path) -> None:
    net, task, value_range = build(family)
    report = export_model(net, tmp_path / "net.pt2", "pt2", name=family, task=task, value_range=value_range)
    assert report.ok, report.checks
    assert max(c.max_abs_diff for c in report.checks) < 1e-4
    files = {"i2i.json": ""}
    program = torch.export.load(str(report.path), extra_files=files)
    metadata = json.loads(files["i2i.json"])
    assert metadata["task"] == task
    base = min(min(c.shape[2:]) for c in report.checks)
    x = torch.rand(3, metadata["in_channels"], 2 * base, base)  # a batch and size no check used
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), net(x), rtol=1e-3, atol=1e-4)


def test_a_wrong_export_fails_the_parity_check() -> None:
    net, _, _ = build("resnet")
    shapes = [(1, 3, 16, 32)]
    with torch.no_grad():
        good = check_parity(
            net, lambda x: net(torch.from_numpy(x)).numpy(), shapes, low=-1, high=1, atol=1e-4, rtol=0
        )
    off = check_parity(
        net,
        lambda x: net(torch.from_numpy(x)).detach().numpy() + 1e-3,
        shapes,
        low=-1,
        high=1,
        atol=1e-4,
        rtol=0,
    )
    wrong_shape = check_parity(
        net, lambda x: np.zeros((1, 3, 8, 8), np.float32), shapes, low=-1, high=1, atol=1, rtol=0
    )

    def refuses(x: np.ndarray) -> np.ndarray:
        raise AssertionError("Guard failed: x.size()[2] // 32 != 1")  # as an exported program does

    refused = check_parity(net, refuses, shapes, low=-1, high=1, atol=1, rtol=0)
    assert good[0].ok and not off[0].ok and not wrong_shape[0].ok and not refused[0].ok
    assert off[0].max_abs_diff == pytest.approx(1e-3, rel=1e-3)


def test_noise_generators_are_refused(tmp_path) -> None:
    from i2i.errors import ConfigError

    with pytest.raises(ConfigError, match="export takes image-to-image and super-resolution nets"):
        export_model(torch.nn.Identity(), tmp_path / "g.onnx", "onnx", name="dcgan_g", task="generate")


def test_cli_exports_a_trained_checkpoint(tiny_overrides, tmp_path, capsys) -> None:
    from i2i.config import load_config
    from i2i.methods import train

    result = train(
        load_config("demo_pix2pix", overrides=[*tiny_overrides, "train.max_steps=1"]), progress=False
    )
    out = tmp_path / "g.pt"
    assert main(["export", str(result.checkpoint), "--format", "torchscript", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (torchscript, unet" in printed and printed.count(" ok") == 2
    with pytest.raises(SystemExit):  # argparse: invalid choice
        main(["export", str(result.checkpoint), "--format", "svg"])
