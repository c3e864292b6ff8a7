"""Loading models for inference: i2i checkpoints and the reference implementations' weight files.

``load_model`` reads, without flags:

- i2i training checkpoints (``.safetensors`` with the architecture saved in them; the EMA weights of the
  generator are used when the run kept them);
- junyanz/pytorch-CycleGAN-and-pix2pix ``.pth`` files (bare ``state_dict``), whose architecture is
  detected from the key names and shapes.

``.pth`` files are opened with ``torch.load(weights_only=True)`` only: a pickle can run code, so nothing
else is ever unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from i2i import nets
from i2i.errors import CheckpointError, ConfigError
from i2i.importers.junyanz import import_junyanz, is_junyanz_state_dict
from i2i.importers.torch_file import load_torch_file
from i2i.statefile import is_checkpoint, load_checkpoint


@dataclass
class ModelInfo:
    """What inference needs to know about a loaded net besides its weights."""

    name: str  # registry name of the architecture
    args: dict[str, Any]  # its constructor arguments
    value_range: tuple[float, float] = (-1.0, 1.0)  # pixel range the net takes and gives
    source: str = ""  # "i2i" or the reference format
    extra: dict[str, Any] = field(default_factory=dict)


def _load_i2i(path: Path, net: str | None, ema: bool) -> tuple[nn.Module, ModelInfo]:
    specs = load_checkpoint(path, prefix="specs")
    name = net or next(iter(specs))
    if name not in specs:
        raise CheckpointError(f"{path}: no net {name!r} in this checkpoint; it has {', '.join(specs)}")
    spec = specs[name]
    model = nets.build(spec["name"], **spec["args"])
    state = None
    if ema:
        try:
            state = load_checkpoint(path, prefix=f"ema/{name}")
        except CheckpointError:
            state = None  # the run kept no EMA of this net
    if state is None:
        state = load_checkpoint(path, prefix=f"nets/{name}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # keys or shapes differ from the saved architecture
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"{path}: the weights of net {name!r} do not match its saved architecture "
            f"{spec['name']!r} ({' '.join(line.strip() for line in first[:3])})"
        ) from exc
    info = ModelInfo(spec["name"], dict(spec["args"]), tuple(spec.get("value_range", (-1, 1))), "i2i")
    return model, info


def _load_pth(path: Path) -> tuple[nn.Module, ModelInfo]:
    obj = load_torch_file(path)
    if isinstance(obj, dict) and ("params" in obj or "params_ema" in obj):
        raise CheckpointError(
            f"{path}: a BasicSR/Real-ESRGAN weights file; super-resolution models are not supported yet"
        )
    if not isinstance(obj, dict) or not is_junyanz_state_dict(obj):
        raise CheckpointError(
            f"{path}: unknown weights format; expected an i2i checkpoint (.safetensors) or a "
            "pytorch-CycleGAN-and-pix2pix state_dict (.pth)"
        )
    try:
        imported = import_junyanz(obj)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    model = nets.build(imported.name, **imported.kwargs)
    model.load_state_dict(imported.state_dict, strict=True)
    return model, ModelInfo(imported.name, dict(imported.kwargs), (-1.0, 1.0), "junyanz")


def load_model_with_info(
    path: str | Path, *, net: str | None = None, ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelInfo]:
    """Like :func:`load_model`, also returning the architecture and value range."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        # A .safetensors file that is not a readable i2i checkpoint gets the precise reason from the reader
        # (truncated, corrupt, foreign safetensors) rather than "unknown format".
        if is_checkpoint(path) or path.suffix.lower() == ".safetensors":
            model, info = _load_i2i(path, net, ema)
        elif path.suffix.lower() in (".pth", ".pt", ".ckpt", ".bin"):
            model, info = _load_pth(path)
        else:
            raise CheckpointError(
                f"{path}: not an i2i checkpoint (.safetensors written by i2i train) nor a .pth weights file"
            )
    except ConfigError as exc:
        raise CheckpointError(f"{path}: the saved architecture cannot be built: {exc}") from exc
    return model.to(device).eval(), info


def load_model(
    path: str | Path, *, net: str | None = None, ema: bool = True, device: str | torch.device = "cpu"
) -> nn.Module:
    """Load a network for inference, in eval mode, detecting the format and architecture.

    Args:
        path: An i2i checkpoint (``.safetensors``) or a reference ``.pth`` file.
        net: Which net of an i2i checkpoint (``"g"``, ``"d"``...); default: its generator.
        ema: Prefer the EMA weights when the checkpoint has them.
        device: Where to put the model.

    Raises:
        CheckpointError: for a missing, corrupt, unsafe or unrecognised file.

    Example:
        >>> g = load_model("runs/demo/checkpoints/step_00000600.safetensors")  # doctest: +SKIP
        >>> y = g(torch.rand(1, 3, 256, 256) * 2 - 1)  # doctest: +SKIP
    """
    return load_model_with_info(path, net=net, ema=ema, device=device)[0]
