"""Verified HTTP downloads: resumable ``.part`` files, sha256 checked before anything is renamed into place.

:func:`fetch` downloads one :class:`Remote` file into a folder:

- the bytes go to ``<folder>/<file>.part``; an interrupted download is resumed with ``Range: bytes=N-``
  (a server that ignores the range and answers 200 is followed from the start, cleanly);
- size and sha256 are checked *before* the ``.part`` file is renamed to its real name, so an existing good
  file is never replaced by a bad download;
- connection errors, timeouts, truncated bodies and 5xx answers are retried with exponential backoff (the
  ``sleep`` function is injectable), then the next mirror is tried;
- an HTML page (``Content-Type: text/html`` or a body starting with ``<!DOCTYPE``/``<html``) is an error
  that names the URL, not a file;
- redirects are followed, but never from https to http (nor to any other scheme) unless the remote says
  ``allow_http``; a plain ``http://`` URL is refused likewise;
- files with no published digest are trusted on first use: the digest of the first download is recorded
  in a :class:`DigestLock` file, and every later download must match it.

Only the standard library's ``urllib`` is used. ``I2I_OFFLINE=1`` refuses every download.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from i2i import __version__
from i2i.errors import DownloadError
from i2i.hashing import sha256_file

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Remote:
    """A file to download and what it must be.

    Attributes:
        filename: Name of the file on disk.
        urls: Where to get it: the primary URL first, then mirrors.
        sha256: Full hex digest, or ``None`` when nobody publishes one (then trust on first use).
        size: Size in bytes, when known (checked before the digest, and against Content-Length).
        allow_http: Accept plain ``http://`` URLs and https -> http redirects (only for hosts that serve
            nothing else; the digest is then the only protection).
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    allow_http: bool = False


class DigestLock:
    """A JSON file of digests recorded on first download (trust on first use), one per file name.

    Example:
        >>> lock = DigestLock(Path("weights/i2i.lock.json"))  # doctest: +SKIP
        >>> lock.get("horse2zebra.pth")  # doctest: +SKIP
        {'sha256': '…', 'size': 45575747, 'url': 'http://…', 'recorded': '2025-01-01T00:00:00+0000'}
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise DownloadError(
                f"{self.path}: unreadable digest lock file ({exc}); fix or delete it (deleting it means the "
                "next downloads are trusted on first use again)"
            ) from exc
        files = data.get("files", {}) if isinstance(data, dict) else {}
        return files if isinstance(files, dict) else {}

    def get(self, filename: str) -> dict[str, Any] | None:
        """The record for ``filename``, or ``None`` if none was recorded."""
        record = self._read().get(filename)
        return record if isinstance(record, dict) and "sha256" in record else None

    def record(self, filename: str, sha256: str, size: int, url: str) -> None:
        """Record the digest of a first download (atomically: temp file and rename)."""
        files = self._read()
        files[filename] = {
            "sha256": sha256,
            "size": size,
            "url": url,
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        text = json.dumps(
            {
                "about": "sha256 digests recorded on first download by i2i (no published digest exists); "
                "later downloads must match them. Delete an entry to trust a new version.",
                "files": dict(sorted(files.items())),
            },
            indent=1,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text + "\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise DownloadError(f"could not write the digest lock {self.path}: {exc}") from exc


def format_size(size: float | None) -> str:
    """``1536`` -> ``"1.5 KiB"``; ``None`` -> ``"?"``."""
    if size is None:
        return "?"
    units = ["B", "KiB", "MiB", "GiB"]
    while size >= 1024 and len(units) > 1:
        size /= 1024
        units.pop(0)
    return f"{size:.0f} B" if units[0] == "B" else f"{size:.1f} {units[0]}"


def fetch(
    remote: Remote,
    folder: Path,
    *,
    lock: DigestLock | None = None,
    quiet: bool = False,
    retries: int = 4,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 60.0,
    ssl_context: Any = None,
) -> Path:
    """Download ``remote`` into ``folder`` (once), verified, and return its path.

    An existing file that matches the expected digest is returned without any network access. A file
    with neither a published nor a recorded digest is trusted on first use: its digest goes into ``lock``.

    Args:
        remote: What to download.
        folder: Destination folder (created); the ``.part`` file lives there too.
        lock: Where first-use digests are recorded and checked; ``None``: not recorded.
        quiet: No progress bar.
        retries: Retries per URL after connection errors, timeouts, truncated bodies and 5xx answers.
        backoff: First retry delay in seconds; doubled after each retry.
        sleep: The sleep function (tests pass a recorder).
        timeout: Socket timeout in seconds.
        ssl_context: An ``ssl.SSLContext`` for https (default: the system's verified context).

    Returns:
        ``folder / remote.filename``.

    Raises:
        DownloadError: every URL failed; the message names each URL and why.
    """
    folder = Path(folder)
    dest = folder / remote.filename
    recorded = lock.get(remote.filename) if lock is not None else None
    expected = remote.sha256 or (recorded["sha256"] if recorded else None)
    if dest.is_file():
        digest = sha256_file(dest)
        if expected is None:
            log.warning("%s: no published digest; trusting the existing file (sha256 %s)", dest, digest)
            if lock is not None:
                lock.record(remote.filename, digest, dest.stat().st_size, "(existing file)")
            return dest
        if digest == expected:
            return dest
        log.warning("%s does not match its sha256; downloading it again (it is kept until then)", dest)
    if os.environ.get("I2I_OFFLINE", "") not in ("", "0"):
        raise DownloadError(
            f"{remote.filename}: not in {folder} and I2I_OFFLINE is set; download it elsewhere "
            f"({remote.urls[0]}) and put it at {dest}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{remote.filename}.part"
    errors = []
    for url in remote.urls:
        try:
            _check_scheme(url, remote.allow_http)
            download = _Download(remote, url, part, quiet, retries, backoff, sleep, timeout, ssl_context)
            digest = _download_verified(download, expected)
        except DownloadError as exc:
            errors.append(str(exc))
            log.warning("%s", exc)
            continue
        with open(part, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(part, dest)
        if expected is None and lock is not None:
            lock.record(remote.filename, digest, dest.stat().st_size, url)
            log.warning(
                "%s: no published sha256; recorded %s in %s (trust on first use)",
                remote.filename,
                digest,
                lock.path,
            )
        return dest
    raise DownloadError(f"could not download {remote.filename}: " + "; ".join(errors))


def _check_scheme(url: str, allow_http: bool) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and allow_http):
        return
    if scheme == "http":
        raise DownloadError(f"{url}: refused a plain http URL; only https is allowed for this file")
    raise DownloadError(
        f"{url}: refused the URL scheme {scheme!r}; only https (or http) downloads are allowed"
    )


def _download_verified(download: _Download, expected: str | None) -> str:
    """Run ``download`` and verify the result; a resumed file that fails is downloaded again, whole."""
    resumed = download.part.exists()
    download.run()
    try:
        return _verify(download.remote, download.url, download.part, expected)
    except _Mismatch as exc:
        if not resumed:
            raise
        log.warning("%s; the partial file from an earlier run was bad: downloading the whole file again", exc)
    download.run()
    return _verify(download.remote, download.url, download.part, expected)


class _Mismatch(DownloadError):
    """The downloaded bytes are not the expected file (size or digest)."""


def _verify(remote: Remote, url: str, part: Path, expected: str | None) -> str:
    size = part.stat().st_size
    if remote.size is not None and size != remote.size:
        part.unlink(missing_ok=True)
        raise _Mismatch(
            f"{url}: got {size:,} bytes, expected {remote.size:,}; the download is truncated or the file "
            "changed on the server (the partial file was deleted; run again)"
        )
    digest = sha256_file(part)
    if expected is not None and digest != expected:
        part.unlink(missing_ok=True)
        raise _Mismatch(
            f"{url}: sha256 mismatch: got {digest}, expected {expected}; the file is corrupt or was tampered "
            "with, and was deleted (any existing good copy was kept)"
        )
    return digest


class _Retry(Exception):
    """A transient failure: wait and try again (resuming from the ``.part`` file)."""


class _RedirectPolicy(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but refuse https -> http (unless allowed) and any non-http(s) scheme."""

    def __init__(self, allow_http: bool) -> None:
        self.allow_http = allow_http

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201 - urllib's API
        old, new = urlsplit(req.full_url).scheme.lower(), urlsplit(newurl).scheme.lower()
        if new not in ("http", "https"):
            raise DownloadError(f"{req.full_url}: refused a redirect to {newurl} (scheme {new!r})")
        if old == "https" and new == "http" and not self.allow_http:
            raise DownloadError(
                f"{req.full_url}: refused a redirect from https to plain http ({newurl}); the download "
                "would no longer be protected; get the file by another way or report the broken link"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Download:
    """One URL, with retries and resumption; :meth:`run` leaves the whole body in ``part``."""

    def __init__(
        self,
        remote: Remote,
        url: str,
        part: Path,
        quiet: bool,
        retries: int,
        backoff: float,
        sleep: Callable[[float], None],
        timeout: float,
        ssl_context: Any,
    ) -> None:
        self.remote, self.url, self.part, self.quiet = remote, url, part, quiet
        self.retries, self.backoff, self.sleep, self.timeout = retries, backoff, sleep, timeout
        handlers: list[Any] = [_RedirectPolicy(remote.allow_http)]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self.opener = urllib.request.build_opener(*handlers)

    def run(self) -> None:
        for attempt in range(self.retries + 1):
            try:
                self._attempt()
                return
            except _Retry as exc:
                if attempt == self.retries:
                    raise DownloadError(f"{self.url}: {exc} (gave up after {attempt + 1} tries)") from exc
                delay = self.backoff * 2**attempt
                log.warning("%s: %s; retrying in %.1f s", self.url, exc, delay)
                self.sleep(delay)

    def _attempt(self) -> None:
        offset = self.part.stat().st_size if self.part.exists() else 0
        size = self.remote.size
        if size is not None and offset > size:
            offset = self._restart("the partial file is larger than the file")
        if size is not None and offset == size:
            return  # complete already; verification decides
        headers = {"User-Agent": f"i2i/{__version__}", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = self.opener.open(
                urllib.request.Request(self.url, headers=headers), timeout=self.timeout
            )
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and offset:  # nothing left to send: complete, or not a prefix of the file
                if exc.headers.get("Content-Range", "") == f"bytes */{offset}":
                    return
                self._restart("the server refused to resume")
                raise _Retry("restarting the download from the beginning") from exc
            if exc.code in _RETRY_STATUS:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
            raise DownloadError(f"{self.url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, DownloadError):
                raise reason from None
            raise _Retry(f"connection failed ({reason})") from exc
        with response:
            self._receive(response, offset)

    def _receive(self, response: Any, offset: int) -> None:
        content_type = response.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
            raise self._html_error(f"Content-Type {content_type}")
        status = response.status
        if offset and status == 206:
            match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                self._restart("the server resumed at the wrong position")
                raise _Retry("restarting the download from the beginning")
        elif offset and status == 200:
            log.info("%s: the server does not resume downloads; starting again from the beginning", self.url)
            offset = 0
        elif status != 200:
            raise DownloadError(f"{self.url}: unexpected HTTP status {status}")
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        if total is not None and self.remote.size is not None and total != self.remote.size:
            raise DownloadError(
                f"{self.url}: the server offers {total:,} bytes, expected {self.remote.size:,}; this is not "
                "the expected file (it may have been replaced on the server)"
            )
        received = offset
        bar = tqdm(
            total=total or self.remote.size,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=self.remote.filename,
            disable=self.quiet,
            leave=False,
        )
        try:
            with open(self.part, "ab" if offset else "wb") as out:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (http.client.HTTPException, OSError) as exc:  # incl. TimeoutError
                        raise _Retry(f"connection lost after {received:,} bytes ({exc})") from exc
                    if not chunk:
                        break
                    if received == 0 and chunk.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
                        out.close()
                        self.part.unlink(missing_ok=True)
                        raise self._html_error("the body is an HTML page")
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
        if total is not None and received < total:
            raise _Retry(f"the connection closed after {received:,} of {total:,} bytes")

    def _restart(self, why: str) -> int:
        log.info("%s: %s; starting again from the beginning", self.url, why)
        self.part.unlink(missing_ok=True)
        return 0

    def _html_error(self, why: str) -> DownloadError:
        return DownloadError(
            f"{self.url}: got an HTML page instead of {self.remote.filename} ({why}); the link may have "
            "moved, need a login or be rate-limited: open it in a browser, or download the file yourself and "
            f"put it at {self.part.with_suffix('')}"
        )
