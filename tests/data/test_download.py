"""Verified downloads and the dataset registry, against a loopback server serving archives built here."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import types
from pathlib import Path

import pytest

from i2i.cli import main
from i2i.config import CONFIG_DIR, load_config
from i2i.data import download
from i2i.data.download import DatasetEntry, dataset_entries, download_dataset, format_dataset_table
from i2i.data.extract import MARKER
from i2i.data.fetch import DigestLock, fetch
from i2i.data.fetch import Remote as _Remote
from i2i.errors import ArchiveError, DataError, DownloadError

PAYLOAD = bytes(range(256)) * 800  # 200 KiB: several 64 KiB chunks


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def Remote(filename: str, urls: tuple[str, ...], sha256=None, size=None, allow_http: bool = True) -> _Remote:  # noqa: N802
    """A Remote for the loopback server, which speaks plain http: allowed here unless a test says not."""
    return _Remote(filename, urls, sha256, size, allow_http)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def get(tmp_path: Path, sleeps: list[float]):
    """``get(remote, **options)``: fetch into tmp_path/dl, quietly, with recorded (not real) sleeps."""

    def run(remote: Remote, **options):
        options = {"quiet": True, "sleep": sleeps.append, "timeout": 5, **options}
        return fetch(remote, tmp_path / "dl", **options)

    return run


# ----------------------------------------------------------------------------- fetch


def test_a_good_download_is_verified_and_never_fetched_twice(server, get, tmp_path: Path) -> None:
    url = server.add("/w.bin", PAYLOAD)
    path = get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD)))
    assert path == tmp_path / "dl" / "w.bin" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.bin"]  # no .part left
    get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD)))
    assert server.hits("/w.bin") == 1


def test_a_partial_file_is_resumed_with_range(server, get, tmp_path: Path) -> None:
    url = server.add("/w.bin", PAYLOAD)
    part = tmp_path / "dl" / "w.bin.part"
    part.parent.mkdir()
    part.write_bytes(PAYLOAD[:70_000])
    path = get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD)))
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert server.requests == [("/w.bin", "bytes=70000-")]


def test_a_server_ignoring_range_restarts_cleanly(server, get, tmp_path: Path) -> None:
    url = server.add("/w.bin", PAYLOAD, honour_range=False)
    part = tmp_path / "dl" / "w.bin.part"
    part.parent.mkdir()
    part.write_bytes(PAYLOAD[:70_000])
    assert get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD))).read_bytes() == PAYLOAD


def test_a_bad_partial_file_is_downloaded_again_whole(server, get, tmp_path: Path) -> None:
    url = server.add("/w.bin", PAYLOAD)
    part = tmp_path / "dl" / "w.bin.part"
    part.parent.mkdir()
    part.write_bytes(b"\0" * 70_000)  # not a prefix of the file: the digest fails after resuming
    assert get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD))).read_bytes() == PAYLOAD
    assert [r for _, r in server.requests] == ["bytes=70000-", None]


def test_a_truncated_transfer_is_resumed_after_a_backoff(server, get, sleeps) -> None:
    url = server.add("/w.bin", PAYLOAD, truncate_at=100_000, truncate_times=1)
    path = get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD)), backoff=0.5)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [("/w.bin", None), ("/w.bin", "bytes=100000-")]
    assert sleeps == [0.5]


def test_a_truncated_file_gives_a_clear_error_and_keeps_the_part(server, get, sleeps, tmp_path: Path) -> None:
    url = server.add("/w.bin", PAYLOAD, truncate_at=100_000, honour_range=False)
    with pytest.raises(
        DownloadError, match=r"closed after 100,000 of 204,800 bytes.*gave up after 4 tries"
    ) as err:
        get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD)), retries=3)
    assert url in str(err.value)
    assert sleeps == [1.0, 2.0, 4.0]  # exponential backoff
    assert not (tmp_path / "dl" / "w.bin").exists()
    assert (tmp_path / "dl" / "w.bin.part").stat().st_size == 100_000  # resumable next time


def test_a_truncated_file_without_content_length_fails_verification(server, get, tmp_path: Path) -> None:
    url = server.add("/w.bin", PAYLOAD[:1000], send_length=False)
    with pytest.raises(DownloadError, match="got 1,000 bytes, expected 204,800"):
        get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD)))
    assert not (tmp_path / "dl" / "w.bin").exists()


def test_a_tampered_file_is_refused_and_a_previous_copy_kept(server, get, tmp_path: Path) -> None:
    tampered = PAYLOAD[:-1] + b"X"
    url = server.add("/w.bin", tampered)
    previous = tmp_path / "dl" / "w.bin"
    previous.parent.mkdir()
    previous.write_bytes(b"an older copy that no longer verifies")
    with pytest.raises(DownloadError, match=f"sha256 mismatch: got {sha(tampered)}, expected {sha(PAYLOAD)}"):
        get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD)))
    assert previous.read_bytes() == b"an older copy that no longer verifies"
    assert sorted(p.name for p in previous.parent.iterdir()) == ["w.bin"]  # the bad .part was deleted


def test_redirects_are_followed(server, get) -> None:
    server.add("/real.bin", PAYLOAD)
    url = server.add("/old.bin", location=server.url("/real.bin"))
    assert get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD))).read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests] == ["/old.bin", "/real.bin"]


def test_a_redirect_to_another_scheme_is_refused(server, get) -> None:
    url = server.add("/old.bin", location="ftp://127.0.0.1/w.bin")
    with pytest.raises(DownloadError, match="refused a redirect to ftp://"):
        get(Remote("w.bin", (url,), sha(PAYLOAD), allow_http=True))


def test_https_downloads_and_https_to_http_redirects(tls_server, server, get) -> None:
    tls = tls_server.server
    good = tls.add("/w.bin", PAYLOAD)
    context = tls_server.client_context
    remote = Remote("w.bin", (good,), sha(PAYLOAD), len(PAYLOAD), allow_http=False)
    assert get(remote, ssl_context=context).read_bytes() == PAYLOAD

    server.add("/plain.bin", PAYLOAD)
    downgrade = tls.add("/moved.bin", location=server.url("/plain.bin"))
    remote = Remote("x.bin", (downgrade,), sha(PAYLOAD), len(PAYLOAD), allow_http=False)
    with pytest.raises(DownloadError, match="refused a redirect from https to plain http"):
        get(remote, ssl_context=context)
    assert server.hits("/plain.bin") == 0
    allowed = dataclasses.replace(remote, allow_http=True)  # only where the entry explicitly allows it
    assert get(allowed, ssl_context=context).read_bytes() == PAYLOAD


def test_the_redirect_policy_itself() -> None:
    """Without a TLS server: the handler refuses https -> http unless allowed."""
    import urllib.request

    from i2i.data.fetch import _RedirectPolicy

    request = urllib.request.Request("https://127.0.0.1:1/a")
    with pytest.raises(DownloadError, match="from https to plain http"):
        _RedirectPolicy(False).redirect_request(request, None, 302, "Found", {}, "http://127.0.0.1:1/b")
    followed = _RedirectPolicy(True).redirect_request(request, None, 302, "Found", {}, "http://127.0.0.1:1/b")
    assert followed.full_url == "http://127.0.0.1:1/b"


def test_plain_http_urls_need_permission(server, get) -> None:
    url = server.add("/w.bin", PAYLOAD)
    with pytest.raises(DownloadError, match="refused a plain http URL"):
        get(Remote("w.bin", (url,), sha(PAYLOAD), allow_http=False))
    assert server.requests == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>Moved</body></html>", "text/html; charset=utf-8"),
        (b"\n  <!DOCTYPE html>\n<html><title>Quota exceeded</title></html>", "application/octet-stream"),
    ],
    ids=["content_type", "sniffed"],
)
def test_an_html_page_is_an_error_naming_the_url(
    server, get, tmp_path: Path, body: bytes, content_type
) -> None:
    url = server.add("/h2z.zip", body, content_type=content_type)
    with pytest.raises(DownloadError, match="got an HTML page instead of h2z.zip") as err:
        get(Remote("h2z.zip", (url,), sha(PAYLOAD)))
    assert url in str(err.value)
    assert list((tmp_path / "dl").iterdir()) == []


def test_server_errors_are_retried_with_backoff(server, get, sleeps) -> None:
    url = server.add("/w.bin", PAYLOAD, fail_first=2)
    assert get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD))).read_bytes() == PAYLOAD
    assert sleeps == [1.0, 2.0]


def test_a_missing_file_falls_back_to_the_mirror(server, get, sleeps) -> None:
    mirror = server.add("/mirror/w.bin", PAYLOAD)
    remote = Remote("w.bin", (server.url("/gone.bin"), mirror), sha(PAYLOAD), len(PAYLOAD))
    assert get(remote).read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests] == ["/gone.bin", "/mirror/w.bin"] and sleeps == []  # 404: no retry


def test_every_failure_is_reported(server, get) -> None:
    remote = Remote("w.bin", (server.url("/a.bin"), server.url("/b.bin")), sha(PAYLOAD))
    with pytest.raises(
        DownloadError, match=r"could not download w.bin: .*/a.bin: HTTP 404.*/b.bin: HTTP 404"
    ):
        get(remote)


def test_a_wrong_content_length_is_refused_before_the_body(server, get) -> None:
    url = server.add("/w.bin", PAYLOAD + b"more")
    with pytest.raises(DownloadError, match="offers 204,804 bytes, expected 204,800"):
        get(Remote("w.bin", (url,), sha(PAYLOAD), len(PAYLOAD)))


def test_a_complete_part_file_is_not_downloaded_again(server, get, tmp_path: Path) -> None:
    url = server.add("/w.bin", PAYLOAD)
    part = tmp_path / "dl" / "w.bin.part"
    part.parent.mkdir()
    part.write_bytes(PAYLOAD)
    assert get(Remote("w.bin", (url,), sha(PAYLOAD))).read_bytes() == PAYLOAD  # size unknown: a 416 says so
    assert server.requests == [("/w.bin", f"bytes={len(PAYLOAD)}-")]


def test_trust_on_first_use(server, get, tmp_path: Path) -> None:
    lock = DigestLock(tmp_path / "dl" / "i2i.lock.json")
    url = server.add("/m.pth", PAYLOAD)
    path = get(Remote("m.pth", (url,), allow_http=True), lock=lock)
    record = lock.get("m.pth")
    assert record["sha256"] == sha(PAYLOAD) and record["size"] == len(PAYLOAD) and record["url"] == url
    path.unlink()
    server.add("/m.pth", PAYLOAD[::-1])  # the server now has another file
    with pytest.raises(DownloadError, match=f"expected {sha(PAYLOAD)}"):
        get(Remote("m.pth", (url,), allow_http=True), lock=lock)
    assert lock.get("m.pth")["sha256"] == sha(PAYLOAD) and not path.exists()


def test_offline_mode_never_downloads(server, get, monkeypatch) -> None:
    monkeypatch.setenv("I2I_OFFLINE", "1")
    url = server.add("/w.bin", PAYLOAD)
    with pytest.raises(DownloadError, match="I2I_OFFLINE is set"):
        get(Remote("w.bin", (url,), sha(PAYLOAD)))
    assert server.requests == []


# ----------------------------------------------------------------------------- datasets, end to end


def entry_for(server, archive: Path, *, digest: bool = True, **fields) -> DatasetEntry:
    data = archive.read_bytes()
    url = server.add(f"/{archive.name}", data)
    values = {
        "name": "h2z",
        "title": "test data",
        "method": "cyclegan",
        "kind": "archive",
        "target": "h2z",
        "license": "test",
        "file": archive.name,
        "urls": (url,),
        "size": len(data) if digest else None,
        "sha256": sha(data) if digest else None,
        "sha256_status": "single" if digest else "none",
        "member_root": "h2z",
        "required": ("trainA", "trainB"),
        "allow_http": True,  # the loopback server speaks plain http
        **fields,
    }
    return DatasetEntry(**values)


@pytest.fixture
def fetch_options(sleeps) -> dict:
    return {"quiet": True, "sleep": sleeps.append, "timeout": 5}


H2Z = {"h2z/trainA/a.jpg": b"A" * 300, "h2z/trainB/b.jpg": b"B" * 300, "h2z/testA/c.jpg": b"C"}


def test_a_dataset_is_downloaded_unpacked_and_marked(server, archives, tmp_path: Path, fetch_options) -> None:
    entry = entry_for(server, archives.zip("h2z.zip", H2Z))
    root = tmp_path / "datasets"
    dest = download_dataset(entry, root, **fetch_options)
    assert dest == root / "h2z"
    assert (dest / "trainA" / "a.jpg").read_bytes() == b"A" * 300
    assert json.loads((dest / MARKER).read_text())["fingerprint"] == entry.sha256
    assert sorted(p.name for p in root.iterdir()) == ["h2z"]  # the archive was removed
    assert download_dataset(entry, root, **fetch_options) == dest
    assert server.hits("/h2z.zip") == 1


def test_keep_archive_and_first_use_lock(server, archives, tmp_path: Path, fetch_options) -> None:
    entry = entry_for(server, archives.zip("h2z.zip", H2Z), digest=False)
    root = tmp_path / "datasets"
    download_dataset(entry, root, keep_archive=True, **fetch_options)
    recorded = DigestLock(root / "i2i.lock.json").get("h2z.zip")
    assert recorded["sha256"] == sha((root / "h2z.zip").read_bytes())
    assert "first use: recorded" in download.verification(entry, DigestLock(root / "i2i.lock.json"))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda a: a.tar("evil.tar.gz", [("file", "h2z/trainA/a", b"x"), ("file", "../evil", b"x")]),
            ArchiveError,
            "'..'",
        ),
        (lambda a: a.tar("evil.tar.gz", [("file", "/tmp/i2i-evil", b"x")]), ArchiveError, "absolute path"),
        (lambda a: a.tar("evil.tar.gz", [("symlink", "h2z/out", "../../..")]), ArchiveError, "outside"),
        (lambda a: a.zip("evil.zip", {"h2z/trainA/a": b"x", "h2z/../../evil": b"x"}), ArchiveError, "'..'"),
        (lambda a: a.zip_bomb("evil.zip", 3 << 30 >> 8), ArchiveError, "archive bomb"),
    ],
    ids=["tar_dotdot", "tar_absolute", "tar_escaping_symlink", "zip_slip", "zip_bomb"],
)
def test_unsafe_archives_write_nothing_outside(
    server, archives, tmp_path: Path, fetch_options, snapshot, make, error, match
) -> None:
    archive = make(archives)
    entry = entry_for(server, archive, max_unpacked_bytes=1 << 20)
    root = tmp_path / "a" / "b" / "datasets"
    root.mkdir(parents=True)
    before = snapshot(tmp_path)
    with pytest.raises(error, match=match):
        download_dataset(entry, root, **fetch_options)
    assert snapshot(tmp_path) - before == {f"a/b/datasets/{archive.name}"}  # the verified archive, kept
    assert not Path("/tmp/i2i-evil").exists()


def test_a_tampered_archive_is_not_unpacked(server, archives, tmp_path: Path, fetch_options) -> None:
    entry = entry_for(server, archives.zip("h2z.zip", H2Z))
    server.add("/h2z.zip", archives.zip("other.zip", {**H2Z, "h2z/trainA/x.jpg": b"X"}).read_bytes())
    with pytest.raises(DownloadError, match="sha256 mismatch|bytes, expected"):
        download_dataset(entry, tmp_path / "datasets", **fetch_options)
    assert list((tmp_path / "datasets").iterdir()) == []


def test_an_html_page_instead_of_the_zip(server, tmp_path: Path, fetch_options) -> None:
    url = server.add("/h2z.zip", b"<!DOCTYPE html><html>Sign in</html>", content_type="text/html")
    entry = DatasetEntry(
        "h2z", "t", "cyclegan", "archive", "h2z", "test", file="h2z.zip", urls=(url,), allow_http=True
    )
    with pytest.raises(DownloadError, match=f"{url}: got an HTML page"):
        download_dataset(entry, tmp_path / "datasets", **fetch_options)
    assert list((tmp_path / "datasets").iterdir()) == []


def test_an_incomplete_archive_is_refused(server, archives, tmp_path: Path, fetch_options) -> None:
    entry = entry_for(server, archives.zip("h2z.zip", {"h2z/trainA/a.jpg": b"A"}))
    with pytest.raises(ArchiveError, match="trainB is missing"):
        download_dataset(entry, tmp_path / "datasets", **fetch_options)
    assert not (tmp_path / "datasets" / "h2z").exists()


def test_other_data_in_the_target_stops_before_downloading(server, archives, tmp_path: Path) -> None:
    entry = entry_for(server, archives.zip("h2z.zip", H2Z))
    (tmp_path / "datasets" / "h2z").mkdir(parents=True)
    (tmp_path / "datasets" / "h2z" / "mine.jpg").write_bytes(b"mine")
    with pytest.raises(DataError, match="not made by `i2i datasets download`"):
        download_dataset(entry, tmp_path / "datasets", quiet=True)
    assert server.requests == []


def test_manual_group_and_torchvision_entries(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DataError, match="cannot be downloaded automatically.*cityscapes-dataset.com"):
        download_dataset("cityscapes", tmp_path)
    with pytest.raises(DataError, match="did you mean horse2zebra"):
        download_dataset("hrse2zebra", tmp_path)

    calls = []

    class FakeMNIST:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))

    fake = types.ModuleType("torchvision")  # no real torchvision import: fast, and nothing can download
    fake.datasets = types.SimpleNamespace(MNIST=FakeMNIST)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake.datasets)
    monkeypatch.delenv("I2I_OFFLINE", raising=False)
    assert download_dataset("mnist", tmp_path) == tmp_path / "mnist"  # what the MNIST recipes read
    assert calls == [(str(tmp_path / "mnist"), True, True), (str(tmp_path / "mnist"), False, True)]

    got = []
    original = download.download_dataset  # a group downloads its parts through the module's name

    def record(name, root, **options):
        got.append(name)
        return Path(root) / "x"

    monkeypatch.setattr(download, "download_dataset", record)
    original("div2k", tmp_path)
    assert got == ["div2k_train_hr", "div2k_valid_hr"]


def test_a_pix2pix_download_feeds_its_recipe_unchanged(
    server, archives, tmp_path: Path, monkeypatch, fetch_options
) -> None:
    """The recipe's default data.root (datasets/facades) is exactly what `download facades` produces."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "src"
    for split in ("train", "val", "test"):
        (folder / "facades" / split).mkdir(parents=True)
        for i in range(2):
            pixels = np.random.default_rng(i).integers(0, 256, (32, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "facades" / split / f"{i + 1}.jpg")
    entries = [("dir", "facades")]
    for path in sorted((folder / "facades").rglob("*")):
        name = path.relative_to(folder).as_posix()
        entries.append(("dir", name) if path.is_dir() else ("file", name, path.read_bytes()))
    archive = archives.tar("facades.tar.gz", entries)
    shipped = dataset_entries()["facades"]
    url = server.add("/pix2pix/datasets/facades.tar.gz", archive.read_bytes())
    entry = dataclasses.replace(shipped, urls=(url,))  # the shipped entry, served locally
    monkeypatch.chdir(tmp_path)
    download_dataset(entry, **fetch_options)  # default root: datasets/

    from i2i.methods import Pix2Pix

    cfg = load_config(
        "pix2pix_facades", overrides=["data.load_size=36", "data.crop_size=32", "data.num_workers=0"]
    )
    train_set, test_set = Pix2Pix.datasets(cfg)
    assert len(train_set) == 2 and len(test_set) == 2


# ----------------------------------------------------------------------------- the CLI


def test_cli_download_and_list(server, archives, tmp_path: Path, monkeypatch, capsys) -> None:
    entry = entry_for(server, archives.zip("h2z.zip", H2Z))
    monkeypatch.setattr(download, "dataset_entries", lambda: {**dataset_entries(), "h2z": entry})
    root = tmp_path / "datasets"
    assert main(["datasets", "download", "h2z", "--root", str(root), "--quiet"]) == 0
    assert f"h2z: ready in {root / 'h2z'}" in capsys.readouterr().out
    assert main(["datasets", "list", "--root", str(root)]) == 0
    table = capsys.readouterr().out
    for name, e in dataset_entries().items():
        row = next(line for line in table.splitlines() if line.startswith(name + " "))
        assert e.license in row
    assert re.search(r"^h2z +cyclegan +\d+ B +sha256, 1 source +ready +test$", table, re.M)
    assert re.search(r"^facades +pix2pix +~29\.6 MiB +first use: not yet, http +- ", table, re.M)
    assert re.search(r"^mnist .* MD5 \(torchvision\)", table, re.M)

    assert main(["datasets", "download", "nope", "--root", str(root)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the shipped manifest


def test_every_shipped_entry_is_complete() -> None:
    entries = dataset_entries()
    targets = [e.target for e in entries.values() if e.kind != "group"]
    assert len(targets) == len(set(targets)), "two entries unpack to the same folder"
    for e in entries.values():
        assert e.kind in download.KINDS and e.license and e.title
        if e.kind == "archive":
            assert e.file and e.urls and e.member_root and e.required, e.name
            for url in e.urls:
                assert url.startswith("https://") or (e.allow_http and url.startswith("http://")), url
        if e.sha256 is not None:
            assert (
                re.fullmatch(r"[0-9a-f]{64}", e.sha256)
                and e.size
                and e.sha256_status in ("confirmed", "single")
            )
        elif e.kind == "archive":
            assert e.sha256_status == "none" and e.approx_size, e.name
        assert all(part in entries for part in e.includes)
    expected = {  # cross-checked with the published digests (../shared/hashes.md)
        "horse2zebra": "a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1",
        "div2k_train_hr": "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
        "div2k_valid_lr_x4": "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
        "cub": "0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081",
        "flowers": "2d01ecc807db462958cfe3d92f57a8c252b4abd240eb955770201e45f783b246",
    }
    assert {name: entries[name].sha256 for name in expected} == expected
    for name in ("horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "cezanne2photo"):
        assert entries[name].urls[0] == f"https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
    for name in ("facades", "edges2shoes", "edges2handbags", "maps", "night2day"):
        assert entries[name].urls[0] == f"http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"


def test_recipe_data_paths_match_what_download_produces() -> None:
    """Each shipped recipe reading datasets/... has an entry that produces exactly that folder."""
    entries = [e for e in dataset_entries().values() if e.kind != "group"]
    checked = 0
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        data = load_config(path.stem).data
        if not data.root.startswith("datasets/"):
            continue
        root = Path(data.root)
        owners = [e for e in entries if root.is_relative_to(Path("datasets", e.target))]
        all_entries = dataset_entries().values()
        groups = [g for g in all_entries if g.kind == "group" and root == Path("datasets", g.target)]
        if not owners and groups:  # e.g. datasets/DIV2K: the group has one entry per split folder
            group = groups[0]
            targets = {dataset_entries()[name].target for name in group.includes}
            for split in (data.train_split, data.test_split):
                assert f"{group.target}/{split}" in targets, (path.name, split)
            assert path.stem in download.recipes_using(group), path.name
            checked += 1
            continue
        assert owners, f"{path.name}: no dataset entry unpacks to {data.root}"
        entry = owners[0]
        if data.source in ("mnist", "fashion_mnist"):  # torchvision's own layout under data.root
            assert entry.name == data.source and root == Path("datasets", entry.torchvision_root), path.name
        elif root == Path("datasets", entry.target):  # the splits must be there
            for split in (data.train_split, data.test_split):
                unpaired = {f"{split}A", f"{split}B"}
                assert split in entry.required or unpaired <= set(entry.required), (path.name, split)
        else:  # a folder inside the target, e.g. datasets/celeba/img_align_celeba
            relative = root.relative_to(Path("datasets", entry.target)).as_posix()
            assert relative in entry.required, (path.name, relative)
        assert path.stem in download.recipes_using(entry), path.name
        checked += 1
    assert checked >= 10


def test_the_table_lists_every_entry(tmp_path: Path) -> None:
    table = format_dataset_table(tmp_path)
    for entry in dataset_entries().values():
        assert re.search(rf"^{re.escape(entry.name)} ", table, re.M)
    assert "recorded in" in table
