"""The checkpoint file format: nested state in one safetensors file, written atomically.

A checkpoint holds nested training state (nets, EMA, optimizers, schedulers, scaler, RNG states, step,
config). Tensors go into the safetensors body under their path (``nets/g/down.0.weight``); everything
else (numbers, strings, the config) goes into a JSON "skeleton" in the header metadata, with tensors
referenced by key. Nothing is unpickled on load, so opening a checkpoint from a stranger is safe.

Files are written to a temporary file in the same folder, fsynced, then renamed over the target, so a
crash mid-write never leaves a half-written checkpoint under a real name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from i2i.errors import CheckpointError

FORMAT = "i2i-checkpoint"
VERSION = "1"
_TENSOR = "__tensor__"
_TUPLE = "__tuple__"


def _child(path: str, key: Any) -> str:
    return f"{path}/{key}" if path else str(key)


def _pack(obj: Any, path: str, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().to("cpu").contiguous()
        # safetensors refuses tensors that share memory (tied weights, views): store copies of those.
        if tensor.untyped_storage().data_ptr() in seen:
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        tensors[path] = tensor
        return {_TENSOR: path}
    if isinstance(obj, Mapping):
        return {str(k): _pack(v, _child(path, k), tensors, seen) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return {_TUPLE: [_pack(v, _child(path, i), tensors, seen) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, _child(path, i), tensors, seen) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {path!r} in a checkpoint")


def _unpack(node: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(node, dict):
        if _TENSOR in node:
            return tensors[node[_TENSOR]]
        if _TUPLE in node:
            return tuple(_unpack(v, tensors) for v in node[_TUPLE])
        # Optimizer state dicts are keyed by int parameter ids; JSON made them strings.
        return {(int(k) if k.lstrip("-").isdigit() else k): _unpack(v, tensors) for k, v in node.items()}
    if isinstance(node, list):
        return [_unpack(v, tensors) for v in node]
    return node


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write nested ``state`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    Raises:
        CheckpointError: if the folder cannot be written (disk full, read-only); the previous file at
            ``path`` is left untouched and the temporary file removed.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _pack(dict(state), "", tensors, set())
    metadata = {"format": FORMAT, "version": VERSION, "skeleton": json.dumps(skeleton)}
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        save_file(tensors, tmp_name, metadata=metadata)
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path}: {exc.strerror or exc}; free some disk space or choose a "
            "writable output_dir (the previous checkpoint was kept)"
        ) from exc
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of a safetensors file, or CheckpointError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({exc}); it may be truncated"
        ) from exc


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is an i2i training checkpoint (by its header, without reading tensors)."""
    try:
        return read_metadata(path).get("format") == FORMAT
    except CheckpointError:
        return False


def load_checkpoint(path: str | Path, *, prefix: str = "", map_location: str | torch.device = "cpu") -> Any:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: The ``.safetensors`` checkpoint.
        prefix: Load only the subtree at this ``/``-separated path (e.g. ``"nets/g"``); tensors outside
            it are not read from disk.
        map_location: Device for the loaded tensors.

    Raises:
        CheckpointError: if the file is missing, truncated, corrupt or not an i2i checkpoint.
    """
    path = Path(path)
    metadata = read_metadata(path)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a safetensors file but not an i2i checkpoint (no '{FORMAT}' header)")
    node = json.loads(metadata["skeleton"])
    for part in [p for p in prefix.split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            raise CheckpointError(f"{path}: checkpoint has no entry {prefix!r}")
        node = node[part]
    wanted: set[str] = set()

    def collect(n: Any) -> None:
        if isinstance(n, dict):
            if _TENSOR in n:
                wanted.add(n[_TENSOR])
            else:
                for v in n.values():
                    collect(v)
        elif isinstance(n, list):
            for v in n:
                collect(v)

    collect(node)
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as handle:
            tensors = {key: handle.get_tensor(key) for key in wanted}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: checkpoint is corrupt or truncated ({exc})") from exc
    return _unpack(node, tensors)
