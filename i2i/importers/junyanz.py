"""Importer for junyanz/pytorch-CycleGAN-and-pix2pix checkpoints (``latest_net_G.pth`` and friends).

The reference saves a bare ``state_dict`` (``torch.save(net.state_dict())``) with no record of the
architecture, so the architecture is read back from the key layout and the tensor shapes:

- ``UnetGenerator`` (``unet_128`` / ``unet_256``): nested keys ``model.model.0.weight``,
  ``model.model.1.model.1.weight``, ``model.model.1.model.3.model.1.weight``...; depth = nesting depth, widths
  from the outermost convs.
- ``NLayerDiscriminator`` (``basic`` / ``n_layers``): ``model.<index>.weight``; ``num_layers`` = convs - 2.
- ``PixelDiscriminator`` (``pixel``): ``net.<index>.weight``.
- ``ResnetGenerator`` (``resnet_6blocks`` / ``resnet_9blocks``): ``model.<index>...`` with residual blocks
  ``model.<10+i>.conv_block.<j>``; with dropout the second conv of a block is ``conv_block.6`` instead of
  ``conv_block.5``, so dropout is detected for this family.

The norm follows from what the reference saves: BatchNorm layers have ``weight`` and ``running_mean``;
InstanceNorm (affine-free) layers save nothing, but then the convs carry biases; with no norm, neither.

In the U-Net, dropout leaves no trace in a state dict (``nn.Dropout`` is the last entry of its block and
has no parameters, so no index shifts), so it cannot be detected there. We assume the reference's defaults:
U-Nets with batch norm are pix2pix models, trained with dropout (pix2pix keeps ``use_dropout``); other
norms are taken as CycleGAN-style models (``--no_dropout``). Dropout only matters when training is
resumed; imported nets are returned in eval mode, where it is inactive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from i2i import nets
from i2i.errors import CheckpointError
from i2i.importers.torch_file import load_torch_file

SUPPORTED = (
    "junyanz/pytorch-CycleGAN-and-pix2pix bare state_dicts (torch.save(net.state_dict())) of UnetGenerator "
    "(unet_128/unet_256), ResnetGenerator (resnet_6blocks/resnet_9blocks), NLayerDiscriminator "
    "(basic/n_layers) and PixelDiscriminator (pixel)"
)
_STATS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class ImportedNet:
    """A reference checkpoint translated to i2i terms.

    Attributes:
        name: Registry name, e.g. ``"unet"``, ``"patchgan"``, ``"pixel"``.
        kwargs: Constructor keyword arguments, so ``nets.build(name, **kwargs)`` builds the matching net.
        state_dict: Tensors under i2i's key names; loads into that net with ``strict=True``.
    """

    name: str
    kwargs: dict[str, Any]
    state_dict: dict[str, Tensor]


def is_junyanz_state_dict(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether ``state_dict`` has a junyanz key layout."""
    try:
        return _detect(_clean(state_dict)) is not None
    except CheckpointError:
        return False


def import_junyanz(state_dict: Mapping[str, Tensor]) -> ImportedNet:
    """Detect the architecture of a junyanz ``state_dict`` and map its keys to the i2i network.

    A ``module.`` prefix (saved from ``DataParallel``) is stripped, and the InstanceNorm running statistics
    that PyTorch < 0.4 saved are dropped (the reference patches them away too).

    Args:
        state_dict: The loaded ``.pth`` contents.

    Returns:
        The registry name, constructor kwargs and renamed tensors (same tensor objects, not copies).

    Raises:
        CheckpointError: not a supported layout; the message names a few keys and the supported formats.

    Example:
        >>> import torch
        >>> sd = torch.load("latest_net_G.pth", weights_only=True)  # doctest: +SKIP
        >>> imported = import_junyanz(sd)  # doctest: +SKIP
        >>> net = nets.build(imported.name, **imported.kwargs)  # doctest: +SKIP
        >>> net.load_state_dict(imported.state_dict)  # doctest: +SKIP
    """
    sd = _clean(state_dict)
    kind = _detect(sd)
    if kind is None:
        raise _layout_error("unrecognised checkpoint layout", sd)
    builders = {"unet": _unet, "resnet": _resnet, "patchgan": _patchgan, "pixel": _pixel}
    name, kwargs, module_map = builders[kind](sd)
    imported = ImportedNet(name, kwargs, _rename(sd, module_map))
    _check_against_net(imported)
    return imported


def load_junyanz(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a junyanz ``.pth`` file into the matching i2i network, strictly, in eval mode.

    The file is read with ``torch.load(..., weights_only=True)``, which refuses pickled code.

    Args:
        path: Path of the ``.pth`` file, e.g. ``checkpoints/facades_pix2pix/latest_net_G.pth``.
        map_location: Device for the tensors and the returned network.

    Returns:
        The network, weights loaded, in eval mode.

    Raises:
        CheckpointError: missing or unreadable file, not a state dict, or an unsupported layout.

    Example:
        >>> net = load_junyanz("latest_net_G.pth")  # doctest: +SKIP
        >>> fake_b = net(real_a)  # (B, 3, 256, 256) in [-1, 1]  # doctest: +SKIP
    """
    path = Path(path)
    obj = load_torch_file(path, map_location)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict; expected {SUPPORTED}")
    try:
        imported = import_junyanz(obj)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err
    net = nets.build(imported.name, **imported.kwargs)
    net.load_state_dict(imported.state_dict, strict=True)
    return net.to(map_location).eval()


def _clean(state_dict: Mapping[str, Any]) -> dict[str, Tensor]:
    if not state_dict or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state_dict.items()):
        raise CheckpointError(f"not a state_dict of named tensors; expected {SUPPORTED}")
    sd = dict(state_dict)
    if all(k.startswith("module.") for k in sd):  # saved from a DataParallel wrapper
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    # PyTorch < 0.4 saved running stats for InstanceNorm too; tell them apart from BatchNorm's by the missing
    # `weight` (the reference's InstanceNorm is affine-free, its BatchNorm affine).
    return {k: v for k, v in sd.items() if not (_param(k) in _STATS and f"{_module(k)}.weight" not in sd)}


def _detect(sd: Mapping[str, Tensor]) -> str | None:
    if "model.model.0.weight" in sd:
        return "unet"
    if "model.1.weight" in sd and any(".conv_block." in k for k in sd):
        return "resnet"
    if "model.0.weight" in sd and all(re.fullmatch(r"model\.\d+\.\w+", k) for k in sd):
        return "patchgan"
    if "net.0.weight" in sd and all(re.fullmatch(r"net\.\d+\.\w+", k) for k in sd):
        return "pixel"
    return None


def _unet(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, Any], dict[str, str]]:
    # Level 0 is `model.model.`, level 1 `model.model.1.model.`, each deeper level appends `3.model.`.
    prefixes = ["model.model."]
    candidate = "model.model.1.model."
    while any(k.startswith(candidate) for k in sd):
        prefixes.append(candidate)
        candidate += "3.model."
    num_downs = len(prefixes)
    if num_downs < 5:
        raise _layout_error(f"U-Net with only {num_downs} levels (the reference has >= 5)", sd)
    first, last = sd["model.model.0.weight"], sd.get("model.model.3.weight")
    if first.ndim != 4 or last is None or last.ndim != 4:
        raise _layout_error("U-Net outer convs missing or malformed", sd)
    if f"{prefixes[1]}2.weight" in sd:
        norm = "batch"
    elif "model.model.0.bias" in sd:
        norm = "instance"
    else:
        norm = "none"
    kwargs = {
        "in_channels": first.shape[1],
        "out_channels": last.shape[1],  # ConvTranspose2d weights are (in, out, kH, kW)
        "num_downs": num_downs,
        "base_channels": first.shape[0],
        "norm": norm,
        "dropout": norm == "batch",  # undetectable; the reference defaults, see the module docstring
    }
    module_map = {"model.model.0": "down.0.conv", "model.model.3": "up.0.conv"}
    # Middle levels: [lrelu 0, conv 1, norm 2, submodule 3, relu 4, convT 5, norm 6, (dropout 7)].
    for i, prefix in enumerate(prefixes[1:-1], start=1):
        module_map.update(
            {f"{prefix}1": f"down.{i}.conv", f"{prefix}2": f"down.{i}.norm"}
            | {f"{prefix}5": f"up.{i}.conv", f"{prefix}6": f"up.{i}.norm"}
        )
    # Innermost level: [lrelu 0, conv 1, relu 2, convT 3, norm 4].
    inner, i = prefixes[-1], num_downs - 1
    module_map.update(
        {f"{inner}1": f"down.{i}.conv", f"{inner}3": f"up.{i}.conv", f"{inner}4": f"up.{i}.norm"}
    )
    return "unet", kwargs, module_map


def _resnet(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, Any], dict[str, str]]:
    # Sequential: pad 0, conv7 1, norm 2, relu 3 | conv 4, norm 5, relu 6 | conv 7, norm 8, relu 9 |
    # blocks 10 .. 10+B-1 | convT 10+B, norm 11+B, relu | convT 13+B, norm 14+B, relu | pad, conv7 17+B, tanh.
    # A block: [pad 0, conv 1, norm 2, relu 3, (dropout 4), pad, conv 5|6, norm 6|7].
    block_ids = sorted({int(k.split(".")[1]) for k in sd if ".conv_block." in k})
    num_blocks = len(block_ids)
    if block_ids != list(range(10, 10 + num_blocks)) or "model.1.weight" not in sd:
        raise _layout_error("unexpected ResnetGenerator layout", sd)
    dropout = "model.10.conv_block.6.weight" in sd and sd["model.10.conv_block.6.weight"].ndim == 4
    norm = "batch" if "model.2.weight" in sd else "instance" if "model.1.bias" in sd else "none"
    first, head = sd["model.1.weight"], sd.get(f"model.{17 + num_blocks}.weight")
    if head is None:
        raise _layout_error("ResnetGenerator output conv missing", sd)
    kwargs = {
        "in_channels": first.shape[1],
        "out_channels": head.shape[0],
        "base_channels": first.shape[0],
        "num_blocks": num_blocks,
        "norm": norm,
        "dropout": dropout,
    }
    b = num_blocks
    module_map = {
        "model.1": "stem.conv",
        "model.2": "stem.norm",
        "model.4": "down.0.conv",
        "model.5": "down.0.norm",
        "model.7": "down.1.conv",
        "model.8": "down.1.norm",
        f"model.{10 + b}": "up.0.conv",
        f"model.{11 + b}": "up.0.norm",
        f"model.{13 + b}": "up.1.conv",
        f"model.{14 + b}": "up.1.norm",
        f"model.{17 + b}": "head.conv",
    }
    second = 6 if dropout else 5
    for i in range(num_blocks):
        prefix = f"model.{10 + i}.conv_block"
        module_map.update(
            {
                f"{prefix}.1": f"blocks.{i}.body.conv1",
                f"{prefix}.2": f"blocks.{i}.body.norm1",
                f"{prefix}.{second}": f"blocks.{i}.body.conv2",
                f"{prefix}.{second + 1}": f"blocks.{i}.body.norm2",
            }
        )
    return "resnet", kwargs, module_map


def _patchgan(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, Any], dict[str, str]]:
    # Sequential: conv 0, lrelu 1, (conv, norm, lrelu) at 3n-1, 3n, 3n+1 for n = 1..num_layers, final conv.
    convs = sorted(int(k.split(".")[1]) for k, v in sd.items() if k.endswith(".weight") and v.ndim == 4)
    num_layers = len(convs) - 2
    if num_layers < 1 or convs != [0] + [3 * n - 1 for n in range(1, num_layers + 2)]:
        raise _layout_error("unexpected NLayerDiscriminator layout", sd)
    norm = "batch" if "model.3.weight" in sd else "instance" if "model.2.bias" in sd else "none"
    first = sd["model.0.weight"]
    kwargs = {
        "in_channels": first.shape[1],
        "base_channels": first.shape[0],
        "num_layers": num_layers,
        "norm": norm,
    }
    module_map = {"model.0": "blocks.0.conv", f"model.{convs[-1]}": "head"}
    for n in range(1, num_layers + 1):
        module_map.update({f"model.{3 * n - 1}": f"blocks.{n}.conv", f"model.{3 * n}": f"blocks.{n}.norm"})
    return "patchgan", kwargs, module_map


def _pixel(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, Any], dict[str, str]]:
    # Sequential: conv 0, lrelu 1, conv 2, norm 3, lrelu 4, conv 5 (all 1x1).
    norm = "batch" if "net.3.weight" in sd else "instance" if "net.2.bias" in sd else "none"
    first = sd["net.0.weight"]
    kwargs = {"in_channels": first.shape[1], "base_channels": first.shape[0], "norm": norm}
    module_map = {
        "net.0": "blocks.0.conv",
        "net.2": "blocks.1.conv",
        "net.3": "blocks.1.norm",
        "net.5": "head",
    }
    return "pixel", kwargs, module_map


def _rename(sd: Mapping[str, Tensor], module_map: Mapping[str, str]) -> dict[str, Tensor]:
    unmapped = [k for k in sd if _module(k) not in module_map]
    if unmapped:
        raise _layout_error(f"unexpected keys {', '.join(unmapped[:5])} for this layout", sd)
    return {f"{module_map[_module(k)]}.{_param(k)}": v for k, v in sd.items()}


def _check_against_net(imported: ImportedNet) -> None:
    """Compare keys and shapes with the target net, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        expected = nets.build(imported.name, **imported.kwargs).state_dict()
    missing = sorted(set(expected) - set(imported.state_dict))
    extra = sorted(set(imported.state_dict) - set(expected))
    wrong = [
        k for k in expected if k in imported.state_dict and imported.state_dict[k].shape != expected[k].shape
    ]
    if missing or extra or wrong:
        raise CheckpointError(
            f"checkpoint does not match a {imported.name} net with {imported.kwargs}: missing {missing[:5]}, "
            f"unexpected {extra[:5]}, wrong shape {wrong[:5]}"
        )


def _module(key: str) -> str:
    return key.rpartition(".")[0]


def _param(key: str) -> str:
    return key.rpartition(".")[2]


def _layout_error(what: str, sd: Mapping[str, Any], n: int = 4) -> CheckpointError:
    keys = ", ".join(list(sd)[:n]) + (", ..." if len(sd) > n else "")
    return CheckpointError(f"{what} (keys: {keys}); supported: {SUPPORTED}")
