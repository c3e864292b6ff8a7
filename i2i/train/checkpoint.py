"""Training checkpoints: naming, retention and finding the newest complete one to resume from.

The file format itself (atomic, pickle-free safetensors) is :mod:`i2i.statefile`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from i2i.errors import CheckpointError
from i2i.statefile import load_checkpoint, save_checkpoint

__all__ = [
    "checkpoint_path",
    "find_resumable",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "remove_temporary_files",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

_STEP_NAME = re.compile(r"^step_(\d+)\.safetensors$")


def checkpoint_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step_{step:08d}.safetensors"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoints in ``folder`` ordered by step, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_temporary_files(folder: str | Path) -> list[Path]:
    """Delete leftovers of interrupted writes (``.*.tmp``) in ``folder``."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def find_resumable(folder: str | Path) -> tuple[Path, Any] | None:
    """The newest checkpoint in ``folder`` that loads completely, with its state; None if there is none.

    A truncated or corrupt newest file is skipped with a warning and the previous one is used.
    """
    folder = Path(folder)
    if folder.is_dir():
        for tmp in remove_temporary_files(folder):
            log.info("removed unfinished checkpoint write %s", tmp)
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as exc:
            log.warning("skipping unreadable checkpoint: %s", exc)
    return None


def prune_checkpoints(folder: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (``keep_last <= 0`` keeps all)."""
    if keep_last <= 0:
        return
    for old in list_checkpoints(folder)[:-keep_last]:
        old.unlink(missing_ok=True)
