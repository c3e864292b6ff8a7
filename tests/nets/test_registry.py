"""The registry: registration, listing, argument validation with messages that name the problem."""

from __future__ import annotations

import inspect

import pytest
from torch import nn

from i2i import nets
from i2i.errors import ConfigError
from i2i.nets import registry


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Register test-only nets in a copy of the registry, restored afterwards."""
    table = dict(registry._REGISTRY)
    monkeypatch.setattr(registry, "_REGISTRY", table)
    return table


def test_import_registers_the_families() -> None:
    assert {"unet", "unet_128", "unet_256", "patchgan", "pixel"} <= set(nets.list())
    assert nets.list() == sorted(nets.list())


def test_list_filters_by_prefix() -> None:
    assert nets.list("resnet") == ["resnet", "resnet_6blocks", "resnet_9blocks"]
    assert nets.list("no-such-prefix") == []


def test_register_class_and_factory(scratch_registry: dict) -> None:
    @nets.register("toy_class")
    class Toy(nn.Module):
        def __init__(self, width: int = 2) -> None:
            super().__init__()
            self.lin = nn.Linear(width, width)

    @nets.register("toy_factory")
    def toy_factory(width: int = 3) -> nn.Module:
        return Toy(width)

    assert isinstance(nets.build("toy_class"), Toy)  # the decorator returns the class unchanged
    assert nets.build("toy_factory", width=5).lin.in_features == 5
    assert "toy_class" in nets.list("toy")


def test_duplicate_name_is_rejected(scratch_registry: dict) -> None:
    with pytest.raises(ValueError, match="'unet' is already registered"):
        nets.register("unet")(nn.Identity)


def test_unknown_name_lists_registered_names() -> None:
    listed = r"unknown network 'unet_512'; registered networks: .*patchgan, pixel, .*unet_256"
    with pytest.raises(ConfigError, match=listed):
        nets.build("unet_512")


def test_unknown_argument_is_named_with_the_accepted_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown argument 'ngf'; accepted arguments: in_channels, out_channels"
    ):
        nets.build("unet", ngf=64)


def test_missing_argument_is_named(scratch_registry: dict) -> None:
    @nets.register("needs_width")
    def needs_width(width: int) -> nn.Module:
        return nn.Linear(width, width)

    with pytest.raises(
        ConfigError, match=r"'needs_width' needs the argument 'width'; accepted arguments: width"
    ):
        nets.build("needs_width")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_channels": "8"}, r"'base_channels' must be int, got '8'"),
        ({"base_channels": 8.0}, r"'base_channels' must be int, got 8.0"),
        ({"in_channels": True}, r"'in_channels' must be int, got True"),
        ({"dropout": "yes"}, r"'dropout' must be bool, got 'yes'"),
        ({"norm": None}, r"'norm' must be str, got None"),
    ],
)
def test_wrong_argument_type_is_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        nets.build("unet", **kwargs)


def test_optional_and_float_hints(scratch_registry: dict) -> None:
    @nets.register("hinted")
    def hinted(scale: float = 1.0, width: int | None = None) -> nn.Module:
        return nn.Identity()

    nets.build("hinted", scale=2, width=None)  # an int is a fine float; None matches `int | None`
    nets.build("hinted", width=4)
    with pytest.raises(ConfigError, match=r"'width' must be int \| None"):
        nets.build("hinted", width="4")


def test_invalid_values_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown norm 'group'; choose one of batch, instance, none"):
        nets.build("patchgan", norm="group")
    with pytest.raises(ConfigError, match="num_downs must be >= 5, got 4"):
        nets.build("unet", num_downs=4)
    with pytest.raises(ConfigError, match="num_layers must be >= 1"):
        nets.build("patchgan", num_layers=0)


def test_signature_of() -> None:
    sig = nets.signature_of("unet_128")
    assert isinstance(sig, inspect.Signature)
    assert list(sig.parameters) == [
        "in_channels",
        "out_channels",
        "num_downs",
        "base_channels",
        "norm",
        "dropout",
    ]
    assert sig.parameters["num_downs"].default == 7
    assert "self" not in nets.signature_of("patchgan").parameters
    with pytest.raises(ConfigError, match="unknown network 'nope'"):
        nets.signature_of("nope")
