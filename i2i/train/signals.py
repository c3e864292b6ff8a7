"""Graceful stops: SIGTERM/SIGINT end a run at a step boundary with a checkpoint, never mid-write.

While :class:`GracefulStop` is active (the Trainer enters it for the duration of ``fit``), the first
SIGTERM or SIGINT only sets a flag; the loop finishes the current step, saves a checkpoint atomically and
raises :class:`TrainingInterrupted`. A second signal raises :class:`KeyboardInterrupt` at once (an
impatient second Ctrl-C): the checkpoint being written, if any, is abandoned as a temporary file and the
previous one stays intact. The previous handlers are restored on exit.

Example:
    >>> with GracefulStop() as stop:  # doctest: +SKIP
    ...     while not stop.requested:
    ...         work()
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, etc."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGTERM/SIGINT after saving a checkpoint; resume with ``--resume auto``.

    A :class:`KeyboardInterrupt`, so code that handles Ctrl-C keeps working.

    Attributes:
        signum: The signal that asked to stop.
        step: The step the run stopped (and saved) at.
        checkpoint: The checkpoint written at that step.
        run_dir: The run folder.
    """

    def __init__(self, signum: int, step: int, checkpoint: Path, run_dir: Path) -> None:
        super().__init__(
            f"stopped by {signal_name(signum)} at step {step}; saved {checkpoint}; "
            "continue with --resume auto"
        )
        self.signum = signum
        self.step = step
        self.checkpoint = checkpoint
        self.run_dir = run_dir

    @property
    def exit_code(self) -> int:
        """The shell status of a process ended by this signal: 143 for SIGTERM, 130 for SIGINT."""
        return 128 + int(self.signum)


class GracefulStop:
    """Context manager turning the first SIGTERM/SIGINT into a flag and a second one into an abort.

    Handlers are installed only in the main thread (Python allows no others); elsewhere this is a no-op
    and :attr:`signum` stays None.
    """

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"{signal_name(signum)} again: aborting without a final checkpoint")
        self.signum = signum
        log.warning(
            "%s received: finishing the current step and saving a checkpoint "
            "(send it again to abort at once)",
            signal_name(signum),
        )

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()


def isolate_worker_signals(worker_id: int = 0) -> None:
    """``worker_init_fn`` for DataLoader workers: leave Ctrl-C and group-wide signals to the main process.

    A Ctrl-C in a terminal reaches the whole foreground process group; a worker that died of it would make
    the main process fail before it can finish the step and save. So each worker moves to its own process
    group and ignores SIGINT. SIGTERM keeps its default action: the DataLoader (and multiprocessing at
    exit) stop workers with it. Workers exit on their own when the main process does.
    """
    if hasattr(os, "setpgrp"):
        with contextlib.suppress(OSError):  # not permitted (a session leader): ignoring SIGINT still helps
            os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
