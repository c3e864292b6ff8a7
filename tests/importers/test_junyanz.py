"""junyanz/pytorch-CycleGAN-and-pix2pix checkpoints: conformance with reference outputs, layouts, safety."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor

from i2i import nets
from i2i.errors import CheckpointError
from i2i.importers.junyanz import import_junyanz, is_junyanz_state_dict, load_junyanz

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reference"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CASES = {case["name"]: case for case in MANIFEST["cases"] if case["name"].startswith("jz_")}
LAYOUTS = {name: layout for name, layout in MANIFEST["full_size_layouts"].items() if name.startswith("jz ")}

# Reference constructor argument names -> ours.
ARG_NAMES = {
    "input_nc": "in_channels",
    "output_nc": "out_channels",
    "ngf": "base_channels",
    "ndf": "base_channels",
    "num_downs": "num_downs",
    "n_layers": "num_layers",
    "norm": "norm",
    "use_dropout": "dropout",
    "n_blocks": "num_blocks",
}


def _state_dict(name: str) -> dict[str, Tensor]:
    return torch.load(FIXTURES / CASES[name]["checkpoint"], map_location="cpu", weights_only=True)


def _output(net: torch.nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_checkpoint_matches_reference_output(name: str) -> None:
    case = CASES[name]
    path = FIXTURES / case["checkpoint"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == case["sha256"]

    imported = import_junyanz(_state_dict(name))
    expected = {ARG_NAMES[k]: v for k, v in case["reference_kwargs"].items()}
    # Dropout is not in the keys; the importer's default (pix2pix: batch + dropout) matches these fixtures.
    assert {k: imported.kwargs[k] for k in expected} == expected

    net = load_junyanz(path)
    assert not any(m.training for m in net.modules())
    assert sum(p.numel() for p in net.parameters()) == case["num_params"]
    io = load_file(FIXTURES / case["io"])
    assert list(io["input"].shape) == case["input_shape"]
    out = _output(net, io["input"])
    assert list(out.shape) == case["output_shape"]
    torch.testing.assert_close(out, io["output"], atol=case["tolerance_abs"], rtol=0)


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
def test_full_size_layout_maps_every_key(layout_name: str) -> None:
    layout = LAYOUTS[layout_name]
    generator = torch.Generator().manual_seed(0)
    sd = {
        key: torch.tensor(1)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in layout["keys"].items()
    }
    imported = import_junyanz(sd)
    assert len(imported.state_dict) == len(sd)
    with torch.device("meta"):  # no memory or init cost for the 54M-parameter generator
        net = nets.build(imported.name, **imported.kwargs)
    net.load_state_dict(imported.state_dict, strict=True, assign=True)
    assert sum(p.numel() for p in net.parameters()) == layout["num_params"]
    assert imported.kwargs["base_channels"] == 64
    assert imported.kwargs["norm"] == ("batch" if "batch" in layout_name else "instance")


def test_full_size_layouts_are_the_expected_nets() -> None:
    kinds = {name: import_junyanz(_zeros(layout)).kwargs for name, layout in LAYOUTS.items()}
    unet = next(kw for name, kw in kinds.items() if "unet_256 batch" in name)
    assert unet == dict(
        in_channels=3, out_channels=3, num_downs=8, base_channels=64, norm="batch", dropout=True
    )
    d6 = next(kw for name, kw in kinds.items() if "6ch" in name)
    assert d6 == dict(in_channels=6, base_channels=64, num_layers=3, norm="batch")


def _zeros(layout: dict[str, Any]) -> dict[str, Tensor]:
    return {key: torch.zeros(()).expand(shape) for key, shape in layout["keys"].items()}  # no memory


def test_data_parallel_prefix_is_stripped() -> None:
    sd = {f"module.{k}": v for k, v in _state_dict("jz_nlayer_d_batch_6ch").items()}
    assert is_junyanz_state_dict(sd)
    imported = import_junyanz(sd)
    assert not any(k.startswith("module.") for k in imported.state_dict)
    net = nets.build(imported.name, **imported.kwargs).eval()
    net.load_state_dict(imported.state_dict, strict=True)
    io = load_file(FIXTURES / CASES["jz_nlayer_d_batch_6ch"]["io"])
    torch.testing.assert_close(_output(net, io["input"]), io["output"], atol=1e-4, rtol=0)


def test_old_instance_norm_running_stats_are_dropped() -> None:
    # PyTorch < 0.4 saved running stats for InstanceNorm layers (no weight/bias: affine=False).
    sd = _state_dict("jz_unet_128_instance")
    for norm in ("model.model.1.model.2", "model.model.1.model.6", "model.model.1.model.3.model.2"):
        sd |= {f"{norm}.running_mean": torch.zeros(16), f"{norm}.running_var": torch.ones(16)}
        sd[f"{norm}.num_batches_tracked"] = torch.tensor(3)
    imported = import_junyanz(sd)
    assert imported.kwargs["norm"] == "instance"
    assert not any("running" in k or "num_batches" in k for k in imported.state_dict)
    assert len(imported.state_dict) == len(_state_dict("jz_unet_128_instance"))


def _to_junyanz_unet(net: nets.UNetGenerator) -> dict[str, Tensor]:
    """Write our U-Net's state dict under the reference's nested key names (independent of the importer)."""
    n, out = net.num_downs, {}
    for key, value in net.state_dict().items():
        side, level, layer, param = key.split(".")
        i = int(level)
        prefix = "model.model." if i == 0 else "model.model.1.model." + "3.model." * (i - 1)
        if i == 0:
            index = {"down.conv": 0, "up.conv": 3}[f"{side}.{layer}"]
        elif i == n - 1:
            index = {"down.conv": 1, "up.conv": 3, "up.norm": 4}[f"{side}.{layer}"]
        else:
            index = {"down.conv": 1, "down.norm": 2, "up.conv": 5, "up.norm": 6}[f"{side}.{layer}"]
        out[f"{prefix}{index}.{param}"] = value
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_channels=1, out_channels=2, num_downs=5, base_channels=4, norm="none", dropout=False),
        dict(in_channels=4, out_channels=3, num_downs=6, base_channels=2, norm="instance", dropout=False),
        dict(in_channels=3, out_channels=1, num_downs=9, base_channels=2, norm="batch", dropout=True),
    ],
)
def test_unet_variants_are_detected(kwargs: dict[str, Any]) -> None:
    net = nets.UNetGenerator(**kwargs)
    imported = import_junyanz(_to_junyanz_unet(net))
    assert (imported.name, imported.kwargs) == ("unet", kwargs)
    assert imported.state_dict.keys() == net.state_dict().keys()


@pytest.mark.parametrize(("num_layers", "norm"), [(1, "batch"), (2, "none"), (5, "instance")])
def test_patchgan_variants_are_detected(num_layers: int, norm: str) -> None:
    net = nets.PatchDiscriminator(in_channels=2, base_channels=4, num_layers=num_layers, norm=norm)
    sd = {}
    for key, value in net.state_dict().items():  # reference indices: conv 0, then (conv, norm, act) per layer
        parts = key.split(".")
        if parts[0] == "head":
            sd[f"model.{3 * num_layers + 2}.{parts[1]}"] = value
        else:
            n, layer, param = int(parts[1]), parts[2], parts[3]
            sd[f"model.{0 if n == 0 else 3 * n - 1 + (layer == 'norm')}.{param}"] = value
    imported = import_junyanz(sd)
    assert imported.name == "patchgan"
    assert imported.kwargs == dict(in_channels=2, base_channels=4, num_layers=num_layers, norm=norm)


@pytest.mark.parametrize("norm", ["instance", "none"])
def test_pixel_variants_are_detected(norm: str) -> None:
    net = nets.PixelDiscriminator(in_channels=5, base_channels=3, norm=norm)
    index = {"blocks.0.conv": 0, "blocks.1.conv": 2, "head": 5}
    sd = {f"net.{index[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v for k, v in net.state_dict().items()}
    assert import_junyanz(sd).kwargs == dict(in_channels=5, base_channels=3, norm=norm)


def test_incomplete_resnet_generator_is_refused() -> None:
    sd = {
        "model.1.weight": torch.zeros(8, 3, 7, 7),
        "model.1.bias": torch.zeros(8),
        "model.10.conv_block.1.weight": torch.zeros(32, 32, 3, 3),
    }
    assert is_junyanz_state_dict(sd)
    with pytest.raises(CheckpointError, match="ResnetGenerator output conv missing"):
        import_junyanz(sd)


@pytest.mark.parametrize("norm", ["batch", "none"])
@pytest.mark.parametrize("dropout", [False, True])
def test_resnet_norm_and_dropout_are_detected(norm: str, dropout: bool) -> None:
    net = nets.ResNetGenerator(
        in_channels=1, out_channels=2, base_channels=4, num_blocks=3, norm=norm, dropout=dropout
    )
    # Rebuild the reference's flat Sequential keys from ours.
    second = 6 if dropout else 5
    index = {"stem.conv": "1", "stem.norm": "2", "down.0.conv": "4", "down.0.norm": "5", "down.1.conv": "7"}
    index |= {"down.1.norm": "8", "up.0.conv": "13", "up.0.norm": "14", "up.1.conv": "16", "up.1.norm": "17"}
    index |= {"head.conv": "20"}
    for i in range(3):
        index |= {
            f"blocks.{i}.body.conv1": f"{10 + i}.conv_block.1",
            f"blocks.{i}.body.norm1": f"{10 + i}.conv_block.2",
            f"blocks.{i}.body.conv2": f"{10 + i}.conv_block.{second}",
            f"blocks.{i}.body.norm2": f"{10 + i}.conv_block.{second + 1}",
        }
    sd = {
        f"model.{index[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v for k, v in net.state_dict().items()
    }
    imported = import_junyanz(sd)
    assert imported.kwargs == dict(
        in_channels=1, out_channels=2, base_channels=4, num_blocks=3, norm=norm, dropout=dropout
    )
    assert imported.state_dict.keys() == net.state_dict().keys()


@pytest.mark.parametrize(
    ("sd", "match"),
    [
        ({"conv_first.weight": torch.zeros(4, 3, 3, 3)}, "unrecognised checkpoint layout"),  # a BasicSR net
        (
            {"model.0.weight": torch.zeros(8, 3, 4, 4), "model.7.weight": torch.zeros(1)},
            "NLayerDiscriminator",
        ),
        (
            {"net.0.weight": torch.zeros(8, 3, 1, 1), "net.9.weight": torch.zeros(1)},
            "unexpected keys net.9.weight",
        ),
        ({"model.model.0.weight": torch.zeros(8, 3, 4, 4)}, "U-Net with only 1 levels"),
    ],
)
def test_unknown_layouts_are_refused(sd: dict[str, Tensor], match: str) -> None:
    with pytest.raises(CheckpointError, match=match) as info:
        import_junyanz(sd)
    first_key = next(iter(sd))
    assert f"(keys: {first_key}" in str(info.value)
    assert "supported: junyanz/pytorch-CycleGAN-and-pix2pix bare state_dicts" in str(info.value)


def test_garbage_is_refused() -> None:
    for garbage in ({}, {"a": 1}, {1: torch.zeros(1)}):
        assert not is_junyanz_state_dict(garbage)
        with pytest.raises(CheckpointError, match="not a state_dict of named tensors"):
            import_junyanz(garbage)
    with pytest.raises(
        CheckpointError, match=r"unrecognised checkpoint layout \(keys: foo.weight\); supported: "
    ):
        import_junyanz({"foo.weight": torch.zeros(1)})


def test_wrong_shapes_are_refused() -> None:
    sd = _state_dict("jz_nlayer_d_instance")
    sd["model.5.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError, match=r"wrong shape \['blocks.2.conv.bias'\]"):
        import_junyanz(sd)


def test_load_refuses_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        load_junyanz(tmp_path / "latest_net_G.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint" * 8)
    with pytest.raises(CheckpointError, match="junk.pth: not a readable PyTorch file"):
        load_junyanz(tmp_path / "junk.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match="tensor.pth: holds a Tensor, not a state_dict"):
        load_junyanz(tmp_path / "tensor.pth")
    torch.save({"foo.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth: unrecognised checkpoint layout"):
        load_junyanz(tmp_path / "other.pth")


_CALLED: list[str] = []


def _payload() -> str:
    _CALLED.append("ran")
    return "pwned"


class _Malicious:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_payload, ())


def test_pickled_code_is_never_executed(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G.pth"
    with path.open("wb") as f:  # torch.save would pickle the object the same way
        torch.save({"model.0.weight": torch.zeros(1), "extra": _Malicious()}, f, pickle_module=pickle)
    with pytest.raises(
        CheckpointError, match="refused to load: the file contains Python objects other than tensors"
    ):
        load_junyanz(path)
    assert _CALLED == []
