"""Training checkpoints: naming, retention (last K + best) and finding the newest complete one to resume.

The file format itself (atomic, pickle-free safetensors with a size+sha256 manifest) is
:mod:`i2i.statefile`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from i2i.errors import CheckpointError
from i2i.statefile import (
    copy_checkpoint,
    load_checkpoint,
    manifest_path,
    save_checkpoint,
    verify_checkpoint,
)

__all__ = [
    "BEST_NAME",
    "best_path",
    "RESUME_KEYS",
    "checkpoint_path",
    "config_differences",
    "find_resumable",
    "list_checkpoints",
    "load_checkpoint",
    "load_verified",
    "prune_checkpoints",
    "remove_checkpoint",
    "remove_temporary_files",
    "save_best",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

_STEP_NAME = re.compile(r"^step_(\d+)\.safetensors$")
BEST_NAME = "best.safetensors"
# Settings a resumed run must share with its checkpoint: the state would not fit, or would be silently
# kept over the new value (optimizer settings), or the data order would shift.
RESUME_KEYS = ("method", "model", "optim", "seed", "data.batch_size", "train.grad_accum", "train.n_critic")
_MISSING = object()


def checkpoint_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step_{step:08d}.safetensors"


def best_path(folder: str | Path) -> Path:
    """``best.safetensors`` in ``folder``: the checkpoint with the lowest ``train.best_metric`` so far."""
    return Path(folder) / BEST_NAME


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Step checkpoints in ``folder`` ordered by step, oldest first (``best.safetensors`` is not one)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_temporary_files(folder: str | Path) -> list[Path]:
    """Delete leftovers of interrupted writes (``.*.tmp``: checkpoints and manifests) in ``folder``."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def remove_checkpoint(path: str | Path) -> None:
    """Delete a checkpoint and its manifest."""
    Path(path).unlink(missing_ok=True)
    manifest_path(path).unlink(missing_ok=True)


def load_verified(path: str | Path) -> tuple[Any, bool]:
    """Check ``path`` against its manifest, then load it.

    Returns:
        The state, and whether a manifest vouched for the file (False: it has none, but it loads).

    Raises:
        CheckpointError: missing, truncated, corrupt (differs from its manifest) or not a checkpoint.
    """
    verified = verify_checkpoint(path)
    return load_checkpoint(path), verified


def find_resumable(folder: str | Path) -> tuple[Path, Any] | None:
    """The newest checkpoint in ``folder`` that is complete, with its state; None if there is none.

    Leftover temporary files of interrupted writes are deleted. A newest file that is truncated, differs
    from its manifest (e.g. flipped bits) or does not load is skipped with a warning naming the problem,
    and the previous one is used.
    """
    folder = Path(folder)
    if folder.is_dir():
        for tmp in remove_temporary_files(folder):
            log.warning("removed %s, left by a checkpoint write that was interrupted", tmp)
    skipped: list[str] = []
    for path in reversed(list_checkpoints(folder)):
        try:
            state, verified = load_verified(path)
        except CheckpointError as exc:
            log.warning("skipping unreadable checkpoint: %s; trying the previous one", exc)
            skipped.append(path.name)
            continue
        if not verified:
            log.info("%s has no manifest to verify it against (an older or interrupted save); it loads", path)
        if skipped:
            log.warning("resuming from %s instead of the damaged %s", path, ", ".join(skipped))
        return path, state
    return None


def prune_checkpoints(folder: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` step checkpoints (``keep_last <= 0`` keeps all).

    ``best.safetensors`` is a separate file (a hard link or copy) and is never pruned.
    """
    if keep_last <= 0:
        return
    for old in list_checkpoints(folder)[:-keep_last]:
        remove_checkpoint(old)


def save_best(checkpoint: str | Path) -> Path:
    """Make ``best.safetensors`` beside ``checkpoint`` a copy of it (atomically, with a manifest)."""
    return copy_checkpoint(checkpoint, best_path(Path(checkpoint).parent))


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], keys: tuple[str, ...] = RESUME_KEYS
) -> list[tuple[str, str]]:
    """Where two resolved configs (plain dicts) differ at ``keys``: ``(section, description)`` pairs.

    A description reads ``"model.lambda_l1 (100.0 in the checkpoint, 10.0 now)"``. Keys missing from
    ``saved`` (checkpoints of older versions) are not compared.
    """
    found = []
    for key in keys:
        old, new = _lookup(saved, key), _lookup(current, key)
        if old is not _MISSING and old != new:
            found += [(key.split(".")[0], diff) for diff in _differences(old, new, key)]
    return found


def _lookup(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def _differences(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            diff
            for key in sorted(set(a) | set(b), key=str)
            if a.get(key) != b.get(key)
            for diff in _differences(a.get(key), b.get(key), f"{path}.{key}")
        ]
    return [f"{path} ({a!r} in the checkpoint, {b!r} now)"]
