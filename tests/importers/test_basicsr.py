"""BasicSR / Real-ESRGAN weight files: conformance with reference outputs and full-size layouts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from i2i import nets
from i2i.errors import CheckpointError
from i2i.hub import load_model_with_info
from i2i.importers.basicsr import import_basicsr, is_basicsr_file

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reference"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CASES = {c["name"]: c for c in MANIFEST["cases"] if c["name"].startswith(("bsr_", "re_"))}
SR_ARCHS = ("RRDBNet", "SRVGGNetCompact", "MSRResNet", "UNetDiscriminatorSN")
LAYOUTS = {
    name: layout
    for name, layout in MANIFEST["full_size_layouts"].items()
    if any(arch in name for arch in SR_ARCHS)
}
ARG_NAMES = {
    "num_in_ch": "in_channels",
    "num_out_ch": "out_channels",
    "num_feat": "base_channels",
    "num_block": "num_blocks",
    "num_grow_ch": "growth_channels",
    "num_conv": "num_convs",
    "scale": "scale",
    "upscale": "scale",
    "act_type": "activation",
    "skip_connection": "skip_connection",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_checkpoint_matches_reference_output(name: str) -> None:
    case = CASES[name]
    path = FIXTURES / case["checkpoint"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == case["sha256"]
    net, info = load_model_with_info(path)
    expected = {ARG_NAMES[k]: v for k, v in case["reference_kwargs"].items()}
    assert {k: info.args[k] for k in expected} == expected
    assert info.source == "basicsr" and info.value_range == (0.0, 1.0)
    assert not net.training
    assert sum(p.numel() for p in net.parameters()) == case["num_params"]
    io = load_file(FIXTURES / case["io"])
    with torch.no_grad():
        out = net(io["input"])
    # The discriminator fixture keeps random spectral-norm vectors u, v, so u.W.v (the divisor) is ~0.01
    # per layer and its outputs reach 1e10, where float32 rounding alone exceeds an absolute 1e-4: the
    # tolerance is taken relative to the output's magnitude (no change for the generators' outputs ~1).
    scale = max(1.0, float(io["output"].abs().max()))
    torch.testing.assert_close(out, io["output"], atol=case["tolerance_abs"] * scale, rtol=0)


def test_params_ema_is_preferred_over_params() -> None:
    obj = torch.load(FIXTURES / CASES["bsr_rrdbnet_x4"]["checkpoint"], weights_only=True)
    assert "params" in obj and "params_ema" in obj
    imported = import_basicsr(obj)
    key = "conv_first.weight"
    assert torch.equal(imported.state_dict[key], obj["params_ema"][key])
    assert not torch.equal(obj["params"][key], obj["params_ema"][key])  # the fixture makes them differ


def test_every_sr_reference_case_and_layout_is_covered() -> None:
    """The shared fixtures' SR cases and full-size layouts are all here, so none is silently skipped."""
    assert set(CASES) == {
        "bsr_rrdbnet_x4",
        "bsr_rrdbnet_x2",
        "bsr_srvgg_compact_x4",
        "bsr_msrresnet_x4",
        "re_unet_discriminator_sn",
    }
    assert len(LAYOUTS) == 7 and any("UNetDiscriminatorSN" in name for name in LAYOUTS)


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
def test_full_size_layout_maps_every_key(layout_name: str) -> None:
    layout = LAYOUTS[layout_name]
    generator = torch.Generator().manual_seed(0)
    sd = {key: torch.randn(shape, generator=generator) for key, shape in layout["keys"].items()}
    imported = import_basicsr({"params_ema": sd})
    with torch.device("meta"):
        net = nets.build(imported.name, **imported.kwargs)
    assert set(net.state_dict()) == set(sd)
    assert all(net.state_dict()[k].shape == sd[k].shape for k in sd)
    assert sum(p.numel() for p in net.parameters()) == layout["num_params"]


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
def test_full_size_layout_loads_strictly_from_a_params_file(layout_name: str, tmp_path: Path) -> None:
    """Written as BasicSR writes it and read back through ``load_model``: every key used, none missing."""
    layout = LAYOUTS[layout_name]
    generator = torch.Generator().manual_seed(0)
    sd = {key: torch.randn(shape, generator=generator) * 0.01 for key, shape in layout["keys"].items()}
    path = tmp_path / "full.pth"
    torch.save({"params": sd}, path)
    net, info = load_model_with_info(path)  # strict load_state_dict inside
    assert info.source == "basicsr" and info.value_range == (0.0, 1.0)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in sd.items())


def test_unknown_basicsr_architecture_is_named() -> None:
    assert is_basicsr_file({"params": {}}) and not is_basicsr_file({"model.0.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unrecognised BasicSR architecture"):
        import_basicsr({"params": {"weird.weight": torch.zeros(1)}})
    with pytest.raises(CheckpointError, match="no state_dict"):
        import_basicsr({"params": {}})


def test_translate_refuses_a_super_resolution_model_with_a_clear_error() -> None:
    from i2i.errors import ConfigError
    from i2i.infer.translate import Translator

    translator = Translator.from_file(FIXTURES / CASES["bsr_rrdbnet_x4"]["checkpoint"], device="cpu")
    with pytest.raises(ConfigError, match="x4 super-resolution model, not a translator"):
        translator.translate(torch.zeros(1, 3, 16, 16))
