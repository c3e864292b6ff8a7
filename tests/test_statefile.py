from __future__ import annotations

import json
import os
import struct

import pytest
import torch

from i2i.errors import CheckpointError
from i2i.statefile import (
    copy_checkpoint,
    is_checkpoint,
    load_checkpoint,
    manifest_path,
    read_metadata,
    save_checkpoint,
    verify_checkpoint,
)


def make_state():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    net(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()
    return {
        "step": 7,
        "nets": {"g": net.state_dict()},
        "optimizers": {"g": opt.state_dict()},
        "rng": {"torch": torch.get_rng_state(), "python": (3, (1, 2, 3), None)},
        "config": {"name": "x", "lr": 1e-3, "flag": True, "nothing": None, "list": [1, "a"]},
        "empty": {},
    }


def test_round_trip_restores_everything(tmp_path):
    state = make_state()
    path = save_checkpoint(state, tmp_path / "a.safetensors")
    assert is_checkpoint(path)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7 and loaded["config"] == state["config"] and loaded["empty"] == {}
    assert loaded["rng"]["python"] == (3, (1, 2, 3), None)  # tuples stay tuples (random.setstate needs it)
    for key, value in state["nets"]["g"].items():
        assert torch.equal(loaded["nets"]["g"][key], value)
    # Optimizer state keyed by int parameter ids, betas as a tuple: loads back into Adam.
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = torch.optim.Adam(net.parameters())
    opt.load_state_dict(loaded["optimizers"]["g"])
    assert opt.param_groups[0]["betas"] == (0.5, 0.999)
    restored = opt.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(restored, state["optimizers"]["g"]["state"][0]["exp_avg"])


def test_prefix_loads_a_subtree_only(tmp_path):
    path = save_checkpoint(make_state(), tmp_path / "a.safetensors")
    sub = load_checkpoint(path, prefix="nets/g")
    assert set(sub) == set(make_state()["nets"]["g"])
    with pytest.raises(CheckpointError, match="no entry 'nets/x'"):
        load_checkpoint(path, prefix="nets/x")


def test_shared_tensors_are_stored(tmp_path):
    weight = torch.randn(4, 4)
    path = save_checkpoint({"a": weight, "b": weight, "view": weight[0]}, tmp_path / "tied.safetensors")
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["a"], loaded["b"]) and torch.equal(loaded["view"], weight[0])


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = save_checkpoint({"x": torch.ones(3)}, tmp_path / "a.safetensors")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("i2i.statefile.save_file", fail)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint was kept"):
        save_checkpoint({"x": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    # No temporary file left behind; the old manifest still vouches for the old file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "a.safetensors.manifest.json"]
    assert verify_checkpoint(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_folder_gives_a_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="writable output_dir"):
            save_checkpoint({"x": torch.ones(1)}, folder / "a.safetensors")
    finally:
        folder.chmod(0o700)


def test_truncated_and_foreign_files_are_rejected(tmp_path):
    path = save_checkpoint(make_state(), tmp_path / "a.safetensors")
    data = path.read_bytes()
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="t.safetensors"):
        load_checkpoint(truncated)
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    assert not is_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="truncated"):
        read_metadata(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store object"):
        save_checkpoint({"bad": object()}, tmp_path / "a.safetensors")
    assert not (tmp_path / "a.safetensors").exists()


# ----------------------------------------------------------------------------- the manifest


def test_manifest_records_size_and_sha256(tmp_path):
    path = save_checkpoint(make_state(), tmp_path / "a.safetensors")
    record = json.loads(manifest_path(path).read_text())
    assert record["file"] == "a.safetensors" and record["size"] == path.stat().st_size
    assert len(record["sha256"]) == 64
    assert verify_checkpoint(path) is True


def test_a_flipped_bit_that_safetensors_still_parses_is_detected(tmp_path):
    path = save_checkpoint({"w": torch.zeros(64)}, tmp_path / "a.safetensors")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01  # inside the tensor data: the header, and so safetensors, cannot notice
    path.write_bytes(bytes(data))
    assert load_checkpoint(path)["w"].count_nonzero() == 1  # it loads, silently wrong
    with pytest.raises(CheckpointError, match=r"a\.safetensors: sha256 differs from its manifest; .*corrupt"):
        verify_checkpoint(path)


def test_truncation_is_detected_by_size(tmp_path):
    path = save_checkpoint(make_state(), tmp_path / "a.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"bytes but its manifest says \d+; the file is truncated"):
        verify_checkpoint(path)


def test_no_manifest_means_unverified_not_broken(tmp_path):
    path = save_checkpoint(make_state(), tmp_path / "a.safetensors")
    manifest_path(path).unlink()
    assert verify_checkpoint(path) is False
    manifest_path(path).write_text("{not json")
    with pytest.raises(CheckpointError, match="manifest .* is unreadable"):
        verify_checkpoint(path)


def test_a_stale_manifest_never_describes_a_new_file(tmp_path, monkeypatch):
    """If the manifest cannot be renamed into place, the new file has none rather than the old one's."""
    path = save_checkpoint({"x": torch.ones(3)}, tmp_path / "a.safetensors")
    real_replace = os.replace

    def fail_for_manifest(src, dst):
        if str(dst).endswith(".manifest.json"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr("i2i.statefile.os.replace", fail_for_manifest)
    with pytest.raises(CheckpointError, match="No space left on device"):
        save_checkpoint({"x": torch.zeros(3)}, path)
    assert not manifest_path(path).exists()
    assert verify_checkpoint(path) is False and torch.equal(load_checkpoint(path)["x"], torch.zeros(3))
    assert not list(tmp_path.glob(".*.tmp"))


def test_copy_checkpoint_gets_its_own_manifest(tmp_path):
    source = save_checkpoint(make_state(), tmp_path / "step.safetensors")
    best = copy_checkpoint(source, tmp_path / "best.safetensors")
    assert (
        verify_checkpoint(best) and json.loads(manifest_path(best).read_text())["file"] == "best.safetensors"
    )
    source.unlink()  # a hard link or a copy: the best survives its step file being pruned
    assert load_checkpoint(best)["step"] == 7


# ----------------------------------------------------------------------------- malformed files


def _safetensors(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + body


def _i2i_header(skeleton: str, tensors: dict | None = None) -> bytes:
    meta = {"__metadata__": {"format": "i2i-checkpoint", "version": "1", "skeleton": skeleton}}
    return json.dumps({**meta, **(tensors or {})}).encode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (struct.pack("<Q", 2**62) + b"{}", "not a readable safetensors"),  # header length beyond the file
        (_safetensors(b"{not json"), "not a readable safetensors"),
        (  # tensor offsets past the end of the data
            _safetensors(b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', b"\0" * 4),
            "not a readable safetensors",
        ),
        (_safetensors(_i2i_header("{broken")), "header is damaged"),
        (_safetensors(_i2i_header("[1, 2]")), "header is damaged"),
        (_safetensors(_i2i_header('{"w": {"__tensor__": "missing"}}')), "names tensor 'missing' it lacks"),
        (_safetensors(_i2i_header('{"t": {"__tuple__": 5}}')), "header is damaged"),
        (b"\x80\x04\x95" + b"\0" * 40, "not a readable safetensors"),  # a pickle
    ],
)
def test_malformed_files_give_clean_errors(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(path)
    assert "bad.safetensors" in str(err.value)
