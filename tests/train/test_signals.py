"""SIGTERM/SIGINT and SIGKILL on real training processes: a checkpoint that is complete, or the previous one.

The subprocess tests run ``python -m i2i train`` on a tiny config that would go on for 100,000 steps, wait
until it has made progress, then signal it.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from i2i.config import load_config
from i2i.methods import Pix2Pix, build_method, first_items
from i2i.statefile import TEST_KILL_ENV, verify_checkpoint
from i2i.train import Trainer, TrainingInterrupted
from i2i.train.checkpoint import find_resumable, list_checkpoints
from i2i.train.signals import GracefulStop

REPO = Path(__file__).parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def make_trainer(overrides: list[str]) -> Trainer:
    cfg = load_config("demo_pix2pix", overrides=overrides)
    method = build_method(cfg)
    train_set, test_set = Pix2Pix.datasets(cfg)
    return Trainer(cfg, method, train_set, sample_batch=first_items(test_set, 2), progress=False)


def sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def start(overrides: list[str], *, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "i2i", "train", "demo_pix2pix", *sets(overrides)]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_for_steps(proc: subprocess.Popen, run_dir: Path, steps: int, timeout: float = 60.0) -> None:
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= steps:
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("training made no progress")


def assert_every_checkpoint_is_complete(folder: Path) -> list[Path]:
    checkpoints = list_checkpoints(folder)
    assert checkpoints and all(verify_checkpoint(p) for p in checkpoints)
    assert not list(folder.glob(".*.tmp"))
    return checkpoints


# ----------------------------------------------------------------------------- the handler itself


def test_first_signal_sets_a_flag_second_aborts_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with GracefulStop() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM  # delivered to this thread before kill() returns
        with pytest.raises(KeyboardInterrupt, match="SIGINT again: aborting"):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_outside_the_main_thread_it_installs_nothing() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def worker() -> None:
        with GracefulStop() as stop:
            seen.append((stop.requested, signal.getsignal(signal.SIGTERM)))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [(False, before)]


def test_interrupted_fit_saves_this_step_and_raises(tiny_overrides, monkeypatch) -> None:
    trainer = make_trainer([*tiny_overrides, "train.max_steps=100"])
    original = Trainer.train_step

    def train_step(self, batches):
        logs = original(self, batches)
        if self.step == 2:  # during step 3
            os.kill(os.getpid(), signal.SIGINT)
        return logs

    monkeypatch.setattr(Trainer, "train_step", train_step)
    # A shell's background job starts with SIGINT ignored: fit() must catch it all the same, then restore it.
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as err:
        trainer.fit()
    stop = err.value
    assert stop.step == 3 and stop.exit_code == 130 and stop.checkpoint.name == "step_00000003.safetensors"
    assert isinstance(stop, KeyboardInterrupt)  # code that catches Ctrl-C keeps working
    assert_every_checkpoint_is_complete(trainer.checkpoint_dir)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_during_the_save_keeps_the_previous_checkpoint(tiny_overrides, monkeypatch) -> None:
    """The second SIGINT lands while the interrupt checkpoint is being written: nothing is corrupted."""
    import i2i.statefile

    trainer = make_trainer([*tiny_overrides, "train.max_steps=100", "train.save_every=2"])
    real_save, original_step = i2i.statefile.save_file, Trainer.train_step

    def train_step(self, batches):
        logs = original_step(self, batches)
        if self.step == 2:  # during step 3, after step 2's periodic checkpoint
            os.kill(os.getpid(), signal.SIGINT)
        return logs

    def save_file(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        if "step_00000003" in str(filename):
            os.kill(os.getpid(), signal.SIGINT)  # the impatient second Ctrl-C

    monkeypatch.setattr(Trainer, "train_step", train_step)
    monkeypatch.setattr(i2i.statefile, "save_file", save_file)
    with pytest.raises(KeyboardInterrupt) as err:
        trainer.fit()
    assert not isinstance(err.value, TrainingInterrupted)
    (kept,) = assert_every_checkpoint_is_complete(trainer.checkpoint_dir)
    assert kept.name == "step_00000002.safetensors"


# ----------------------------------------------------------------------------- real processes


def test_sigterm_saves_prints_the_resume_command_and_exits_143(tiny_overrides, tmp_path) -> None:
    overrides = [*tiny_overrides, "train.max_steps=100000"]
    proc = start(overrides)
    wait_for_steps(proc, tmp_path / "tiny", 2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    step = int(err.split("stopped by SIGTERM at step ")[1].split(";")[0])
    expected = shlex.join(["i2i", "train", "demo_pix2pix", *sets(overrides), "--resume", "auto"])
    assert f"resume with: {expected}" in out.splitlines()
    (checkpoint,) = assert_every_checkpoint_is_complete(tmp_path / "tiny" / "checkpoints")
    assert checkpoint.name == f"step_{step:08d}.safetensors" and f"checkpoint: {checkpoint}" in out
    resumed = make_trainer(overrides)
    resumed.resume("auto")
    assert resumed.step == step


def test_ctrl_c_in_a_terminal_with_dataloader_workers_exits_130(tiny_overrides, tmp_path) -> None:
    """A terminal sends SIGINT to the whole process group, DataLoader workers included."""
    proc = start([*tiny_overrides, "train.max_steps=100000", "data.num_workers=1"], start_new_session=True)
    wait_for_steps(proc, tmp_path / "tiny", 2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped by SIGINT" in err and "resume with: " in out and "Traceback" not in err
    assert_every_checkpoint_is_complete(tmp_path / "tiny" / "checkpoints")


def test_sigkill_while_writing_a_checkpoint_leaves_the_previous_one(tiny_overrides, tmp_path, caplog) -> None:
    """The test-only hook truncates the second checkpoint's temporary file and SIGKILLs the process."""
    overrides = [*tiny_overrides, "train.max_steps=100000", "train.save_every=2", "train.keep_last=0"]
    proc = start(overrides, env={TEST_KILL_ENV: "2"})
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    folder = tmp_path / "tiny" / "checkpoints"
    assert [p.name for p in list_checkpoints(folder)] == ["step_00000002.safetensors"]
    (partial,) = folder.glob(".step_00000004.safetensors.*.tmp")
    assert partial.stat().st_size > 0

    with caplog.at_level(logging.WARNING):
        path, state = find_resumable(folder)
    assert path.name == "step_00000002.safetensors" and state["step"] == 2
    assert f"removed {partial}" in caplog.text and not partial.exists()
    resumed = make_trainer([*tiny_overrides, "train.max_steps=3"])
    assert resumed.fit(resume="auto").step == 3
