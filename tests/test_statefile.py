from __future__ import annotations

import os

import pytest
import torch

from i2i.errors import CheckpointError
from i2i.statefile import is_checkpoint, load_checkpoint, read_metadata, save_checkpoint


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
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]  # no temp file left behind


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
