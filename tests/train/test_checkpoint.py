"""Checkpoint retention and finding the newest complete checkpoint: manifests, fallbacks, temp files."""

from __future__ import annotations

import logging

import torch

from i2i.statefile import manifest_path, verify_checkpoint
from i2i.train.checkpoint import (
    best_path,
    checkpoint_path,
    find_resumable,
    list_checkpoints,
    prune_checkpoints,
    save_best,
    save_checkpoint,
)


def write_steps(folder, steps):
    return [
        save_checkpoint({"step": s, "w": torch.full((16,), float(s))}, checkpoint_path(folder, s))
        for s in steps
    ]


def test_a_bit_flipped_newest_checkpoint_falls_back_with_a_message(tmp_path, caplog):
    first, newest = write_steps(tmp_path, [2, 4])
    data = bytearray(newest.read_bytes())
    data[-3] ^= 0x10  # tensor bytes: safetensors still parses the file
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        path, state = find_resumable(tmp_path)
    assert path == first and state["step"] == 2
    assert "skipping unreadable checkpoint" in caplog.text and "sha256 differs" in caplog.text
    assert f"resuming from {first} instead of the damaged step_00000004.safetensors" in caplog.text


def test_truncated_newest_and_leftover_temporary_files(tmp_path, caplog):
    first, newest = write_steps(tmp_path, [2, 4])
    newest.write_bytes(newest.read_bytes()[:200])
    (tmp_path / ".step_00000006.safetensors.x1.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".step_00000006.safetensors.manifest.json.x2.tmp").write_text("{")
    with caplog.at_level(logging.WARNING):
        path, _ = find_resumable(tmp_path)
    assert path == first
    assert "truncated" in caplog.text and "removed" in caplog.text
    assert not list(tmp_path.glob(".*.tmp"))


def test_checkpoints_without_a_manifest_still_resume(tmp_path, caplog):
    (newest,) = write_steps(tmp_path, [3])
    manifest_path(newest).unlink()  # written by an older version, or killed between the two renames
    with caplog.at_level(logging.INFO):
        path, state = find_resumable(tmp_path)
    assert path == newest and state["step"] == 3 and "no manifest" in caplog.text


def test_nothing_usable_gives_none(tmp_path):
    assert find_resumable(tmp_path / "missing") is None
    (only,) = write_steps(tmp_path, [1])
    only.write_bytes(b"garbage")
    assert find_resumable(tmp_path) is None


def test_retention_keeps_the_last_k_and_best_with_their_manifests(tmp_path):
    paths = write_steps(tmp_path, [1, 2, 3, 4])
    save_best(paths[0])
    prune_checkpoints(tmp_path, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step_00000003.safetensors",
        "step_00000004.safetensors",
    ]
    assert not manifest_path(paths[0]).exists() and not manifest_path(paths[1]).exists()
    assert verify_checkpoint(best_path(tmp_path))  # best survives its step file being pruned
    assert best_path(tmp_path) not in list_checkpoints(tmp_path)  # and is never a resume candidate
