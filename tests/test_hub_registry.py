"""The weights registry: load_model(NAME) downloads once (loopback only), verifies and loads; the CLI."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from i2i import hub, nets
from i2i.cli import main
from i2i.errors import CheckpointError, DownloadError
from i2i.hub import load_model, load_model_with_info, weights_entries
from i2i.nets import ResNetGenerator

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
RESNET = FIXTURES / "jz_resnet_9blocks_instance.pth"
RESNET_IO = FIXTURES / "jz_resnet_9blocks_instance.io.safetensors"
TINY_ARGS = {"in_channels": 3, "out_channels": 3, "base_channels": 8, "norm": "instance", "dropout": False}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private cache and no proxy for loopback traffic."""
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("I2I_OFFLINE", raising=False)
    yield


class Files:
    """A loopback static file server over ``folder``, counting requests per path."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.hits = folder, []
        hits = self.hits

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's API
                hits.append(self.path)
                super().do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02})
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Files]:
    folder = tmp_path / "served"
    folder.mkdir()
    server = Files(folder)
    yield server
    server.close()


def serve_as(monkeypatch, files: Files, name: str, source: Path, **changes) -> hub.WeightsEntry:
    """Serve ``source`` locally and point the registry entry ``name`` at it (other fields as shipped)."""
    (files.folder / source.name).write_bytes(source.read_bytes())
    url = files.url(source.name)  # plain http on loopback: allowed for the test, whatever the entry says
    entry = dataclasses.replace(weights_entries()[name], urls=(url,), allow_http=True, **changes)
    patched = {**weights_entries(), name: entry}
    monkeypatch.setattr(hub, "weights_entries", lambda: patched)
    return entry


def no_network(*args, **kwargs):
    raise AssertionError("tried to download")


# ----------------------------------------------------------------------------- load_model(NAME)


def test_load_model_by_name_downloads_once_verifies_and_loads(monkeypatch, files, tmp_path: Path) -> None:
    serve_as(monkeypatch, files, "horse2zebra", RESNET, arch_args=TINY_ARGS)
    net, info = load_model_with_info("horse2zebra")
    assert type(net) is ResNetGenerator and not net.training
    io = load_file(RESNET_IO)
    with torch.no_grad():
        torch.testing.assert_close(net(io["input"]), io["output"], rtol=0, atol=1e-4)
    assert info.extra["registry"] == "horse2zebra" and info.value_range == (-1.0, 1.0)
    cached = tmp_path / "home" / "weights" / "horse2zebra.pth"
    assert cached.read_bytes() == RESNET.read_bytes()
    lock = json.loads((cached.parent / "i2i.lock.json").read_text())["files"]["horse2zebra.pth"]
    assert lock["sha256"] == hashlib.sha256(RESNET.read_bytes()).hexdigest()  # trust on first use

    load_model("horse2zebra")  # from the cache: no second request
    assert files.hits == ["/jz_resnet_9blocks_instance.pth"]


def test_a_cached_file_that_changed_is_downloaded_again(monkeypatch, files, tmp_path: Path) -> None:
    serve_as(monkeypatch, files, "horse2zebra", RESNET, arch_args=TINY_ARGS)
    load_model("horse2zebra")
    cached = tmp_path / "home" / "weights" / "horse2zebra.pth"
    cached.write_bytes(b"bit rot")
    load_model("horse2zebra")  # re-downloaded and verified against the recorded digest
    assert cached.read_bytes() == RESNET.read_bytes() and len(files.hits) == 2


def test_a_server_serving_another_file_later_is_refused(monkeypatch, files, tmp_path: Path) -> None:
    serve_as(monkeypatch, files, "horse2zebra", RESNET, arch_args=TINY_ARGS)
    load_model("horse2zebra")
    (tmp_path / "home" / "weights" / "horse2zebra.pth").unlink()
    (files.folder / RESNET.name).write_bytes(RESNET.read_bytes()[::-1])
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        load_model("horse2zebra")
    assert not (tmp_path / "home" / "weights" / "horse2zebra.pth").exists()


def test_a_file_that_is_not_the_registered_network_is_refused(monkeypatch, files) -> None:
    serve_as(monkeypatch, files, "horse2zebra", RESNET)  # shipped args: base_channels 64, not 8
    with pytest.raises(CheckpointError, match="registered as resnet_9blocks"):
        load_model("horse2zebra")


def test_an_architecture_not_in_this_version_is_a_clear_error(monkeypatch) -> None:
    # Every shipped entry's architecture exists now; an older install meets a newer manifest like this.
    entry = dataclasses.replace(weights_entries()["RealESRGAN_x4plus"], arch="rrdbnet_v2")
    monkeypatch.setattr(hub, "weights_entries", lambda: {entry.name: entry})
    monkeypatch.setattr(hub, "fetch", no_network)
    with pytest.raises(CheckpointError, match="RealESRGAN_x4plus needs the .*'rrdbnet_v2'.*not available"):
        load_model("RealESRGAN_x4plus")


def test_every_shipped_architecture_is_available() -> None:
    missing = {name: e.arch for name, e in weights_entries().items() if e.arch not in nets.list()}
    assert missing == {}


def test_unknown_names_list_close_ones_without_network(monkeypatch) -> None:
    monkeypatch.setattr(hub, "fetch", no_network)
    with pytest.raises(
        CheckpointError, match="'horse2zebr' is neither a file nor a registered model; did you mean"
    ):
        load_model("horse2zebr")
    with pytest.raises(CheckpointError, match="file not found"):
        load_model("no/such/horse2zebra.pth")


def test_the_cache_location(monkeypatch, tmp_path: Path) -> None:
    assert hub.weights_dir() == tmp_path / "home" / "weights"
    monkeypatch.delenv("I2I_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.weights_dir() == tmp_path / "xdg" / "i2i" / "weights"


# ----------------------------------------------------------------------------- the CLI


def test_weights_list_shows_every_entry(capsys) -> None:
    assert main(["weights", "list"]) == 0
    table = capsys.readouterr().out
    for entry in weights_entries().values():
        row = next(line for line in table.splitlines() if line.startswith(entry.name + " "))
        assert entry.license in row and ("sha256" in row or "first use" in row), row
        assert re.search(r"\d+(\.\d)? (B|KiB|MiB|GiB)", row), row
    assert re.search(r"^RealESRGAN_x4plus .* 63\.9 MiB +sha256, 2 sources", table, re.M)
    assert re.search(r"^horse2zebra .* ~43\.5 MiB +first use: not yet, http", table, re.M)


def test_weights_info_and_download(monkeypatch, files, capsys, tmp_path: Path) -> None:
    assert main(["weights", "info", "RealESRGAN_x4plus"]) == 0
    info = capsys.readouterr().out
    assert "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1" in info
    assert "RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)" in info
    assert "value range: [0, 1]" in info

    basicsr = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(4, 3, 3, 3)}}, basicsr)
    digest = hashlib.sha256(basicsr.read_bytes()).hexdigest()
    serve_as(monkeypatch, files, "RealESRGAN_x4plus", basicsr, sha256=digest, size=basicsr.stat().st_size)
    assert main(["weights", "download", "RealESRGAN_x4plus", "--quiet"]) == 0
    cached = tmp_path / "home" / "weights" / "RealESRGAN_x4plus.pth"
    assert f"RealESRGAN_x4plus: {cached}" in capsys.readouterr().out
    assert main(["weights", "verify", str(cached)]) == 0
    assert "RealESRGAN_x4plus: matches the published digest" in capsys.readouterr().out


def test_weights_verify_catches_tampering_and_pickled_code(monkeypatch, capsys, tmp_path: Path) -> None:
    fake = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params": {"w": torch.ones(2)}}, fake)
    assert main(["weights", "verify", str(fake)]) == 1
    assert "DOES NOT MATCH (expected 4fa0d389" in capsys.readouterr().out

    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return builtins.exec, (f"open({str(marker)!r}, 'w').write('ran')",)

    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "x": Payload()}, evil)
    assert main(["weights", "verify", str(evil)]) == 1
    out = capsys.readouterr().out
    assert "not a registry file" in out and "UNSAFE" in out and "could run code" in out
    assert not marker.exists()


def test_convert_a_reference_file_to_safetensors_and_json(capsys, tmp_path: Path) -> None:
    out = tmp_path / "export" / "h2z.safetensors"
    assert main(["weights", "convert", str(RESNET), "-o", str(out)]) == 0
    assert f"wrote {out} and {out.with_suffix('.json')}" in capsys.readouterr().out
    config = json.loads(out.with_suffix(".json").read_text())
    assert (
        config["arch"] == "resnet" and config["args"]["num_blocks"] == 9 and config["value_range"] == [-1, 1]
    )
    assert config["source_sha256"] == hashlib.sha256(RESNET.read_bytes()).hexdigest()
    assert config["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    with safe_open(str(out), "pt") as handle:  # plain state-dict keys, config in the header
        assert "stem.conv.weight" in set(handle.keys())
        assert json.loads(handle.metadata()["config"])["arch"] == "resnet"

    net, info = load_model_with_info(out)
    io = load_file(RESNET_IO)
    with torch.no_grad():
        torch.testing.assert_close(net(io["input"]), io["output"], rtol=0, atol=1e-4)
    assert info.source == "i2i" and info.extra["converted_from"] == RESNET.name


def test_convert_an_i2i_checkpoint_exports_its_generator(tmp_path: Path) -> None:
    from i2i.nets import UNetGenerator
    from i2i.statefile import save_checkpoint

    g = UNetGenerator(num_downs=5, base_channels=4)
    specs = {"g": {"name": "unet", "args": {"num_downs": 5, "base_channels": 4}, "value_range": [-1, 1]}}
    source = save_checkpoint({"specs": specs, "nets": {"g": g.state_dict()}}, tmp_path / "run.safetensors")
    out = hub.convert_weights(source, tmp_path / "g.safetensors")
    net, info = load_model_with_info(out)
    assert type(net) is UNetGenerator and info.name == "unet" and info.args == specs["g"]["args"]
    for key, value in g.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key


def test_convert_refuses_a_non_safetensors_output(tmp_path: Path, capsys) -> None:
    assert main(["weights", "convert", str(RESNET), "-o", str(tmp_path / "out.pth")]) == 2
    assert "name the output *.safetensors" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the shipped registry


def test_every_shipped_record_is_complete() -> None:
    entries = weights_entries()
    reference = {
        "cyclegan": [
            "horse2zebra", "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe",
            "style_vangogh", "summer2winter_yosemite", "winter2summer_yosemite", "apple2orange",
            "orange2apple", "facades_label2photo", "cityscapes_label2photo", "sat2map", "map2sat",
        ],
        "pix2pix": ["edges2shoes", "facades_label2photo", "sat2map", "map2sat", "day2night"],
        "real-esrgan": [
            "RealESRGAN_x4plus", "RealESRNet_x4plus", "RealESRGAN_x2plus", "RealESRGAN_x4plus_anime_6B",
            "realesr-general-x4v3", "realesr-animevideov3",
        ],
    }  # fmt: skip
    for method, names in reference.items():
        for name in names:
            key = f"pix2pix_{name}" if method == "pix2pix" else name
            assert entries[key].method == method, key
    for e in entries.values():
        assert e.value_range in ((-1.0, 1.0), (0.0, 1.0)) and e.license and e.dataset and e.recipe
        assert all(u.startswith("https://") or (e.allow_http and u.startswith("http://")) for u in e.urls)
        assert (e.sha256 is None) == (e.sha256_status == "none")
        if e.arch in nets.list():  # the recorded arguments build the recorded architecture
            with torch.device("meta"):
                nets.build(e.arch, **e.arch_args)
    published = {  # ../shared/hashes.md
        "RealESRGAN_x4plus": "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        "RealESRGAN_x2plus": "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        "realesr-animevideov3": "b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d",
    }
    assert {n: entries[n].sha256 for n in published} == published
    assert entries["horse2zebra"].urls == (
        "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth",
    )
    assert hub.find_weights("edges2shoes") is entries["pix2pix_edges2shoes"]  # unambiguous alias
