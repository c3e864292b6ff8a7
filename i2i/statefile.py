"""The checkpoint file format: nested state in one safetensors file, written atomically.

A checkpoint holds nested training state (nets, EMA, optimizers, schedulers, scaler, RNG states, step,
config). Tensors go into the safetensors body under their path (``nets/g/down.0.weight``); everything
else (numbers, strings, the config) goes into a JSON "skeleton" in the header metadata, with tensors
referenced by key. Nothing is unpickled on load, so opening a checkpoint from a stranger is safe.

Files are written to a temporary file in the same folder, fsynced, then renamed over the target, so a
crash mid-write never leaves a half-written checkpoint under a real name. A small manifest
``<name>.manifest.json`` (size and sha256 of the file) is renamed into place last; :func:`verify_checkpoint`
checks a file against it, which catches truncation and flipped bits that safetensors would still parse.

Test-only hook: with the environment variable ``I2I_TEST_KILL_DURING_SAVE=N``, the N-th
:func:`save_checkpoint` call of the process truncates its temporary file to half and SIGKILLs the process
before the rename, as a power cut or an OOM kill would. It exists for the crash tests; never set it
otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from i2i.errors import CheckpointError
from i2i.hashing import sha256_file

FORMAT = "i2i-checkpoint"
VERSION = "1"
_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "i2i-manifest-1"
TEST_KILL_ENV = "I2I_TEST_KILL_DURING_SAVE"
_saves_in_process = 0


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
            return tensors[str(node[_TENSOR])]
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


def manifest_path(path: str | Path) -> Path:
    """Where the manifest of checkpoint ``path`` lives: ``<path>.manifest.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + MANIFEST_SUFFIX)


def _sync_and_hash(file: str | Path) -> tuple[int, str]:
    """fsync ``file`` and return its size and sha256 (read back, so the hash covers what is on disk)."""
    digest = hashlib.sha256()
    size = 0
    with open(file, "rb+") as handle:
        os.fsync(handle.fileno())
        handle.seek(0)
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _kill_for_test(tmp_name: str) -> None:
    """The test-only crash hook (see the module docstring): die with a half-written temporary file."""
    global _saves_in_process
    wanted = os.environ.get(TEST_KILL_ENV, "")
    if not wanted.isdigit():
        return
    _saves_in_process += 1
    if _saves_in_process == int(wanted):
        os.truncate(tmp_name, os.path.getsize(tmp_name) // 2)
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _write_text_temp(folder: Path, name: str, text: str) -> str:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp_name


def _manifest_text(path: Path, size: int, sha256: str) -> str:
    return json.dumps({"format": MANIFEST_FORMAT, "file": path.name, "size": size, "sha256": sha256}) + "\n"


def _publish(path: Path, tmp_file: str, temps: list[str]) -> None:
    """Hash the finished ``tmp_file``, write its manifest, and rename both into place (manifest last).

    ``temps`` lists the temporary files the caller removes on failure; it is emptied once they are
    installed.
    """
    size, sha256 = _sync_and_hash(tmp_file)
    temps.append(_write_text_temp(path.parent, manifest_path(path).name, _manifest_text(path, size, sha256)))
    _install(path, tmp_file, temps[-1])
    temps.clear()


def _install(path: Path, tmp_file: str, tmp_manifest: str) -> None:
    """Rename a finished temporary file and its manifest into place: the file first, the manifest last.

    The old manifest goes first of all, so no moment has a manifest that describes another file.
    """
    manifest_path(path).unlink(missing_ok=True)
    os.replace(tmp_file, path)
    os.replace(tmp_manifest, manifest_path(path))
    _fsync_dir(path.parent)


def _write_error(path: Path, exc: OSError) -> CheckpointError:
    return CheckpointError(
        f"could not write checkpoint {path}: {exc.strerror or exc}; free some disk space or choose a "
        "writable output_dir (the previous checkpoint was kept)"
    )


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write nested ``state`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    The manifest ``<path>.manifest.json`` (size and sha256) is written last.

    Raises:
        CheckpointError: if the folder cannot be written (disk full, read-only); the previous file at
            ``path`` is left untouched and the temporary files removed.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _pack(dict(state), "", tensors, set())
    metadata = {"format": FORMAT, "version": VERSION, "skeleton": json.dumps(skeleton)}
    temps: list[str] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        temps.append(tmp_name)
        os.close(fd)
        save_file(tensors, tmp_name, metadata=metadata)
        _kill_for_test(tmp_name)
        _publish(path, tmp_name, temps)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    finally:  # also on KeyboardInterrupt: never leave a temporary file behind
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
    return path


def copy_checkpoint(source: str | Path, target: str | Path) -> Path:
    """Atomically make ``target`` a copy of checkpoint ``source`` (a hard link where possible).

    Used for ``best.safetensors``; the copy gets its own manifest. A hard link costs no disk space.

    Raises:
        CheckpointError: if the copy cannot be written; the previous ``target`` is kept.
    """
    source, target = Path(source), Path(target)
    temps: list[str] = []
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        temps.append(tmp_name)
        try:
            os.unlink(tmp_name)
            os.link(source, tmp_name)
        except OSError:
            shutil.copyfile(source, tmp_name)
        _publish(target, tmp_name, temps)
    except OSError as exc:
        raise _write_error(target, exc) from exc
    finally:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
    return target


def verify_checkpoint(path: str | Path) -> bool:
    """Check ``path`` against its manifest (size, then sha256).

    Returns:
        True if the file matches its manifest; False if it has none (written by an older version, or
        the process died between renaming the file and its manifest into place).

    Raises:
        CheckpointError: the file is missing, or differs from its manifest (truncated, bit-flipped), or
            the manifest itself is unreadable.
    """
    path = Path(path)
    manifest = manifest_path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not manifest.is_file():
        return False
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
        size, sha256 = int(record["size"]), str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: its manifest {manifest.name} is unreadable ({exc})") from exc
    actual = path.stat().st_size
    if actual != size:
        raise CheckpointError(
            f"{path}: {actual} bytes but its manifest says {size}; the file is truncated or was overwritten"
        )
    if sha256_file(path) != sha256:
        raise CheckpointError(
            f"{path}: sha256 differs from its manifest; the file is corrupt (bits flipped on disk or in "
            "transfer)"
        )
    return True


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
    try:
        node = json.loads(metadata["skeleton"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: the checkpoint's header is damaged (no readable skeleton: {exc})"
        ) from exc
    if not isinstance(node, dict):
        raise CheckpointError(f"{path}: the checkpoint's header is damaged (its skeleton is not a mapping)")
    for part in [p for p in prefix.split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            raise CheckpointError(f"{path}: checkpoint has no entry {prefix!r}")
        node = node[part]
    wanted: set[str] = set()

    def collect(n: Any) -> None:
        if isinstance(n, dict):
            if _TENSOR in n:
                wanted.add(str(n[_TENSOR]))
            else:
                for v in n.values():
                    collect(v)
        elif isinstance(n, list):
            for v in n:
                collect(v)

    collect(node)
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as handle:
            missing = sorted(wanted - set(handle.keys()))
            if missing:
                raise CheckpointError(f"{path}: the checkpoint's header names tensor {missing[0]!r} it lacks")
            tensors = {key: handle.get_tensor(key) for key in wanted}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{path}: checkpoint is corrupt or truncated ({exc})") from exc
    try:
        return _unpack(node, tensors)
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's header is damaged ({exc!r})") from exc
