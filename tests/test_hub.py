"""load_model: i2i checkpoints (EMA or raw weights, any net), junyanz .pth files, and bad files."""

from __future__ import annotations

import builtins
import collections
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from i2i.config import load_config
from i2i.errors import CheckpointError
from i2i.hub import load_model, load_model_with_info
from i2i.methods import Pix2Pix, build_method, first_items
from i2i.nets import PatchDiscriminator, PixelDiscriminator, ResNetGenerator, UNetGenerator
from i2i.statefile import save_checkpoint
from i2i.train import Trainer

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
CASES = {
    c["name"]: c
    for c in json.loads((FIXTURES / "manifest.json").read_text())["cases"]
    if c["name"].startswith("jz_")
}
CLASSES = {
    "UnetGenerator": UNetGenerator,
    "NLayerDiscriminator": PatchDiscriminator,
    "PixelDiscriminator": PixelDiscriminator,
    "ResnetGenerator": ResNetGenerator,
}


def trained(overrides: list[str]) -> tuple[Trainer, Path]:
    cfg = load_config("demo_pix2pix", overrides=overrides)
    method = build_method(cfg)
    train_set, test_set = Pix2Pix.datasets(cfg)
    trainer = Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False)
    return trainer, trainer.fit().checkpoint


def assert_same_weights(net: nn.Module, expected: nn.Module) -> None:
    got, want = net.state_dict(), expected.state_dict()
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key].cpu(), want[key].cpu()), key


def assert_eval(net: nn.Module) -> None:
    assert not any(m.training for m in net.modules())


# ----------------------------------------------------------------------------- i2i checkpoints


def test_i2i_checkpoint_gives_the_trained_generator(tiny_overrides: list[str]) -> None:
    trainer, path = trained([*tiny_overrides, "train.max_steps=2"])
    net, info = load_model_with_info(path)
    assert type(net) is UNetGenerator
    assert_eval(net)
    assert_same_weights(net, trainer.method.nets["g"])
    assert info.name == "unet" and info.source == "i2i"
    assert info.args == {
        "num_downs": 5,
        "base_channels": 8,
        "norm": "batch",
        "dropout": True,
        "in_channels": 3,
        "out_channels": 3,
    }
    assert info.value_range == (-1, 1)
    assert_same_weights(load_model(path, ema=False), trainer.method.nets["g"])  # no EMA kept: the same
    assert all(p.device.type == "cpu" for p in load_model(path, device="cpu").parameters())


def test_ema_weights_are_preferred_when_the_run_kept_them(tiny_overrides: list[str]) -> None:
    trainer, path = trained([*tiny_overrides, "train.max_steps=2", "train.ema_decay=0.9"])
    raw, ema = trainer.method.nets["g"], trainer.ema["g"].shadow
    assert not torch.equal(
        raw.down[0].conv.weight, ema.down[0].conv.weight
    )  # so the test can tell them apart

    net = load_model(path)
    assert_eval(net)
    assert_same_weights(net, ema)
    assert_same_weights(load_model(path, ema=True), ema)
    assert_same_weights(load_model(path, ema=False), raw)
    # The discriminator has no EMA: its trained weights either way.
    assert_same_weights(load_model(path, net="d"), trainer.method.nets["d"])


def test_net_d_gives_the_discriminator(tiny_overrides: list[str]) -> None:
    trainer, path = trained([*tiny_overrides, "train.max_steps=1"])
    d, info = load_model_with_info(path, net="d")
    assert type(d) is PatchDiscriminator
    assert_eval(d)
    assert_same_weights(d, trainer.method.nets["d"])
    assert info.name == "patchgan" and info.args["in_channels"] == 6


def test_unknown_net_name_lists_the_nets(tiny_overrides: list[str]) -> None:
    _, path = trained([*tiny_overrides, "train.max_steps=1"])
    with pytest.raises(CheckpointError, match=r"no net 'g_ab' in this checkpoint; it has g, d") as err:
        load_model(path, net="g_ab")
    assert str(path) in str(err.value)


def test_weights_that_do_not_fit_the_saved_architecture(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.safetensors"
    small = UNetGenerator(num_downs=5, base_channels=4)
    specs = {"g": {"name": "unet", "args": {"num_downs": 5, "base_channels": 8}, "value_range": [-1, 1]}}
    save_checkpoint({"specs": specs, "nets": {"g": small.state_dict()}, "ema": {}}, path)
    with pytest.raises(CheckpointError, match="do not match its saved architecture") as err:
        load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)

    specs["g"]["name"] = "no_such_net"
    save_checkpoint({"specs": specs, "nets": {"g": small.state_dict()}}, path)
    with pytest.raises(CheckpointError, match="cannot be built.*no_such_net"):
        load_model(path)


# ----------------------------------------------------------------------------- reference .pth files


@pytest.mark.parametrize("name", sorted(CASES))
def test_junyanz_fixtures_load_with_the_right_class(name: str) -> None:
    case = CASES[name]
    reference_class = case["reference_arch"].split()[-2]  # "... UnetGenerator (netG=unet_256)"
    net, info = load_model_with_info(FIXTURES / case["checkpoint"])
    assert type(net) is CLASSES[reference_class]
    assert info.source == "junyanz" and info.value_range == (-1.0, 1.0)
    assert_eval(net)
    assert sum(p.numel() for p in net.parameters()) == case["num_params"]
    io = load_file(FIXTURES / case["io"])
    with torch.no_grad():
        torch.testing.assert_close(net(io["input"]), io["output"], rtol=0, atol=case["tolerance_abs"])


class Payload:
    """Unpickling this calls ``exec``: what a malicious .pth does. Here it only writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('the pickle ran code')",)


class Custom:
    """A harmless class of our own: still refused, a loader must not import arbitrary classes."""


@pytest.mark.parametrize(
    "make",
    [
        lambda marker: {"model.0.weight": torch.zeros(1), "payload": Payload(marker)},
        lambda marker: collections.OrderedDict(weights=torch.zeros(1), extra=[Payload(marker)]),
        lambda marker: Payload(marker),
        lambda marker: {"a": Custom()},
    ],
    ids=["dict", "ordered_dict", "bare", "custom_class"],
)
def test_pickled_objects_are_refused_and_never_run(tmp_path: Path, make) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "latest_net_G.pth"
    torch.save(make(marker), path)
    with pytest.raises(CheckpointError, match="could run code") as err:
        load_model(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_the_payload_would_have_run(tmp_path: Path) -> None:
    """The control for the test above: unpickled without weights_only, the payload does write its marker."""
    marker = tmp_path / "marker"
    torch.save({"payload": Payload(marker)}, tmp_path / "evil.pth")
    torch.load(tmp_path / "evil.pth", weights_only=False)  # our own file: only here, never in i2i
    assert marker.read_text() == "the pickle ran code"


@pytest.mark.parametrize("key", ["params", "params_ema"])
def test_basicsr_weights_get_a_clear_error(tmp_path: Path, key: str) -> None:
    path = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({key: {"conv_first.weight": torch.zeros(64, 3, 3, 3)}}, path)
    with pytest.raises(CheckpointError, match="BasicSR/Real-ESRGAN") as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_incomplete_junyanz_resnet_generator_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(
        {
            "model.1.weight": torch.zeros(8, 3, 7, 7),
            "model.10.conv_block.1.weight": torch.zeros(32, 32, 3, 3),
        },
        path,
    )
    with pytest.raises(CheckpointError, match="ResnetGenerator") as err:
        load_model(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "contents",
    [
        {"state_dict": {"model.0.weight": torch.zeros(1)}},  # wrapped
        {"epoch": 3},
        [torch.zeros(1)],
        {"conv.weight": torch.zeros(1)},  # a state dict, but no layout we know
    ],
    ids=["nested", "no_tensors", "list", "unknown_layout"],
)
def test_unknown_pth_contents(tmp_path: Path, contents) -> None:
    path = tmp_path / "weights.pth"
    torch.save(contents, path)
    with pytest.raises(CheckpointError, match="unknown weights format") as err:
        load_model(path)
    assert str(path) in str(err.value)


def _truncated_fixture(path: Path) -> None:
    data = (FIXTURES / CASES["jz_pixel_d_batch"]["checkpoint"]).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_checkpoint(path: Path) -> None:
    buffer = path.with_name("whole.safetensors")
    save_checkpoint(
        {"specs": {}, "nets": {"g": UNetGenerator(num_downs=5, base_channels=4).state_dict()}}, buffer
    )
    data = buffer.read_bytes()
    path.write_bytes(data[: len(data) - 100])


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("random.pth", lambda p: p.write_bytes(bytes(range(256)) * 4), "not a readable PyTorch"),
        (
            "pickle_junk.pth",
            lambda p: p.write_bytes(b"\x80\x02" + bytes(range(7, 99))),
            "not a readable PyTorch",
        ),
        ("empty.pth", lambda p: p.write_bytes(b""), "not a readable PyTorch"),
        ("truncated.pth", _truncated_fixture, "not a readable PyTorch"),
        ("random.safetensors", lambda p: p.write_bytes(bytes(range(256)) * 4), "not a readable safetensors"),
        ("truncated.safetensors", _truncated_checkpoint, "not a readable safetensors"),
        ("foreign.safetensors", lambda p: save_file({"w": torch.zeros(2)}, p), "not an i2i checkpoint"),
        ("weights.txt", lambda p: p.write_text("hello"), "not an i2i checkpoint"),
        ("missing.pth", lambda p: None, "file not found"),
        ("folder.pth", lambda p: p.mkdir(), "file not found"),
    ],
)
def test_bad_files_are_checkpoint_errors_naming_the_path(
    tmp_path: Path, name: str, make, reason: str
) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(CheckpointError, match=reason) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_model_info_task_comes_from_the_net_when_the_checkpoint_does_not_say():
    from i2i import nets
    from i2i.hub import task_of

    rrdb = nets.build("rrdbnet", base_channels=8, num_blocks=1, growth_channels=4, scale=2)
    assert task_of(rrdb) == "upscale"
    assert task_of(nets.build("patchgan", base_channels=8)) == "discriminate"
    assert task_of(nets.build("unet_d_sn", base_channels=8)) == "discriminate"
    assert task_of(nets.build("unet_128", base_channels=8)) == "translate"
    assert task_of(nets.build("dcgan_g", latent_dim=8, base_channels=8, image_size=32)) == "generate"
