"""Training metrics to a JSONL file and TensorBoard, and sample grids to PNG."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torchvision.utils import make_grid

log = logging.getLogger(__name__)


class MetricsLogger:
    """Appends one JSON object per logged step to ``metrics.jsonl`` and mirrors scalars to TensorBoard.

    Args:
        run_dir: The run folder; writes ``metrics.jsonl`` and ``tensorboard/`` there.
        tensorboard: Whether to write TensorBoard event files too.
        after_step: The step training starts from. Records of later steps (logged by a run that was
            interrupted after its last checkpoint) are dropped, so a resumed run logs each step once.
    """

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True, after_step: int = 0) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_records_after(after_step)
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but a broken install should not stop training
                log.warning("tensorboard is not importable; logging to metrics.jsonl only")

    def _drop_records_after(self, step: int) -> None:
        if not self.path.exists():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _record_step(line) <= step]
        if len(kept) != len(lines):
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(kept), encoding="utf-8")
            tmp.replace(self.path)

    def log(self, step: int, values: Mapping[str, float]) -> None:
        record = {"step": step, **{k: float(v) for k, v in values.items()}}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, float(value), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _record_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 2**62  # a torn last line from a crash: drop it


def sample_grid(images: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Lay out sample images, one row per example and one column per entry (input, output, target...).

    Args:
        images: Name -> (B, C, H, W) in [-1, 1]; all entries share B, H and W. One-channel entries are
            shown in gray.

    Returns:
        (3, H', W') grid in [-1, 1].
    """
    columns = [t.detach().float().cpu().clamp(-1, 1) for t in images.values()]
    columns = [t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t[:, :3] for t in columns]
    rows = torch.stack(columns, dim=1).flatten(0, 1)  # (B * K, 3, H, W), row-major by example
    return make_grid(rows, nrow=len(columns), padding=2, pad_value=1.0)
