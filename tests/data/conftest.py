"""Fixtures for the download and extraction tests: a loopback HTTP(S) server and archive builders.

Nothing here reaches beyond 127.0.0.1: the server is started by the test on a free port, and serves bytes
that the test built.
"""

from __future__ import annotations

import gzip
import io
import shutil
import ssl
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass
class Route:
    """What the server answers for one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    honour_range: bool = True
    truncate_at: int | None = None  # close the connection once the file offset reaches this
    truncate_times: int = 1 << 30  # ...for this many requests
    fail_first: int = 0  # answer 503 to this many requests first
    location: str | None = None  # answer 302 to here
    send_length: bool = True


@dataclass
class LoopbackServer:
    """A local HTTP server with scripted answers; ``requests`` records (path, Range header) pairs."""

    scheme: str = "http"
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    def add(self, path: str, body: bytes = b"", **options: object) -> str:
        self.routes[path] = Route(body, **options)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(p == path for p, _ in self.requests)


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's API
            path = self.path.split("?")[0]
            server.requests.append((path, self.headers.get("Range")))
            route = server.routes.get(path)
            if route is None:
                self._plain(404, b"not found")
                return
            if route.fail_first > 0:
                route.fail_first -= 1
                self._plain(503, b"try later")
                return
            if route.location is not None:
                self.send_response(302)
                self.send_header("Location", route.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.status != 200:
                self._plain(route.status, route.body, route.content_type)
                return
            body, start, status = route.body, 0, 200
            requested = self.headers.get("Range")
            if requested and route.honour_range:
                start = int(requested.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", route.content_type)
            if route.send_length:
                self.send_header("Content-Length", str(len(body) - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            end = len(body)
            if route.truncate_at is not None and route.truncate_times > 0:
                route.truncate_times -= 1
                end = max(start, min(end, route.truncate_at))
            self.wfile.write(body[start:end])
            self.wfile.flush()
            self.close_connection = True

        def _plain(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _serve(server: LoopbackServer, context: ssl.SSLContext | None = None) -> Iterator[LoopbackServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback traffic must never go through a proxy configured in the environment."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("I2I_OFFLINE", raising=False)


@pytest.fixture
def server(no_proxy: None) -> Iterator[LoopbackServer]:
    """A plain-http loopback server on a free port."""
    yield from _serve(LoopbackServer())


@dataclass
class TLS:
    server: LoopbackServer
    client_context: ssl.SSLContext


@pytest.fixture
def tls_server(no_proxy: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLS]:
    """An https loopback server with a throwaway self-signed certificate (needs the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    for served in _serve(LoopbackServer(scheme="https"), server_context):
        yield TLS(served, ssl.create_default_context(cafile=str(cert)))


# ----------------------------------------------------------------------------- archives


class Archives:
    """Builders for good and malicious archives, written under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def zip(self, name: str, files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
        path = self.folder / name
        with zipfile.ZipFile(path, "w", compression) as zf:
            for member, data in files.items():
                zf.writestr(member, data)
        return path

    def tar(self, name: str, entries: list[tuple], mode: str = "w:gz") -> Path:
        """``entries``: ("file", name, bytes), ("dir", name), ("symlink"|"hardlink", name, target),
        ("chr"|"fifo", name)."""
        path = self.folder / name
        with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tf:
            for kind, member, *rest in entries:
                info = tarfile.TarInfo(member)
                data = None
                if kind == "file":
                    data = rest[0]
                    info.size = len(data)
                elif kind == "dir":
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                elif kind in ("symlink", "hardlink"):
                    info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                    info.linkname = rest[0]
                elif kind == "chr":
                    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
                elif kind == "fifo":
                    info.type = tarfile.FIFOTYPE
                tf.addfile(info, io.BytesIO(data) if data is not None else None)
        return path

    def zip_bomb(self, name: str, size: int) -> Path:
        """One member of ``size`` zero bytes: kilobytes on disk."""
        path = self.folder / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("bomb/zeros.bin", "w") as out:
            chunk = bytes(1 << 20)
            for _ in range(size // len(chunk)):
                out.write(chunk)
        return path

    def tar_bomb(self, name: str, size: int) -> Path:
        """A .tar.gz whose one member declares ``size`` bytes of zeros."""
        path = self.folder / name
        with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w") as tf:
            info = tarfile.TarInfo("bomb/zeros.bin")
            info.size = size
            tf.addfile(info, _Zeros(size))
        return path


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


@pytest.fixture
def archives(tmp_path: Path) -> Archives:
    folder = tmp_path / "built"
    folder.mkdir()
    return Archives(folder)


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (relative, POSIX), for "nothing written outside" checks."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def snapshot():
    """``snapshot(root)`` lists every path under ``root``."""
    return tree
