"""Safe extraction of zip and tar(.gz/.bz2/.xz) archives: checked first, staged, renamed into place.

Datasets come as archives from other people's servers, and an archive can write anywhere the extractor
lets it: absolute paths, ``..`` components ("zip slip"), links pointing out of the target and then written
through, device files, or a few kilobytes that expand to terabytes (a "bomb"). :func:`safe_extract`
therefore

1. reads every member's header and refuses the whole archive, naming the member, if any member is an
   absolute path, has a ``..`` component, is a link escaping the target, a link that later members would be
   written through, a device or FIFO, an encrypted zip member, or a duplicate zip name; or if the members
   add up to more than ``max_total_bytes`` or ``max_files``, or more than the free disk space;
2. only then writes, into a fresh staging folder next to the target: tar members through tarfile's ``data``
   filter (which repeats the path and link checks against the real file system), zip members streamed by
   us with a byte count that enforces the declared sizes;
3. writes a completion marker and renames the staging folder onto the target.

An interrupted extraction leaves only a staging folder, which the next call removes before starting again;
a target with a marker for the same archive is complete and is left alone. Whatever goes wrong, only
:class:`~i2i.errors.ArchiveError` (a :class:`~i2i.errors.DataError`) comes out, and nothing is written
outside the target's parent folder's staging area.

Example:
    >>> safe_extract(Path("datasets/horse2zebra.zip"), Path("datasets/horse2zebra"),
    ...              member_root="horse2zebra", max_total_bytes=2**30, max_files=10_000)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i.errors import ArchiveError

MARKER = ".i2i-extracted.json"
_STAGING = ".i2i-staging-"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Member:
    """One archive member after our checks: where it goes (path parts under the archive root)."""

    parts: tuple[str, ...]
    kind: str  # "file" | "dir" | "symlink" | "hardlink"
    size: int
    source: object  # the TarInfo or ZipInfo


def extraction_state(dest: Path, fingerprint: str | None = None) -> str:
    """What is at ``dest``: ``"absent"``, ``"complete"`` (our marker, same fingerprint when given),
    ``"stale"`` (our marker for another archive) or ``"foreign"`` (a folder or file we did not make)."""
    dest = Path(dest)
    if not dest.exists() and not dest.is_symlink():
        return "absent"
    try:
        marker = json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return "foreign"
    if fingerprint is None or marker.get("fingerprint") == fingerprint:
        return "complete"
    return "stale"


def safe_extract(
    archive: Path,
    dest: Path,
    *,
    max_total_bytes: int,
    max_files: int,
    member_root: str = "",
    required: Sequence[str] = (),
    fingerprint: str | None = None,
) -> Path:
    """Extract ``archive`` (zip or tar, optionally gz/bz2/xz) into ``dest``, refusing anything unsafe.

    Args:
        archive: The archive file; its type is read from its bytes, not its name.
        dest: The folder to create. Its parent is created if needed; the staging folder lives there too.
        max_total_bytes: Refuse archives whose members add up to more bytes than this.
        max_files: Refuse archives with more members than this.
        member_root: Folder inside the archive that becomes ``dest`` (``"horse2zebra"`` for
            ``horse2zebra.zip``, whose members are ``horse2zebra/trainA/...``); ``""``: the archive's top
            level. Members outside it are checked but not written.
        required: Paths relative to ``dest`` that must exist after extraction (``"trainA"``), checked before
            the rename, so an archive that extracts only partly never looks complete.
        fingerprint: Identifies the archive in the completion marker (its sha256, say); default: its name
            and size. A target whose marker has the same fingerprint is already complete and is returned
            as is; one with another fingerprint is replaced.

    Returns:
        ``dest``.

    Raises:
        ArchiveError: corrupt or unreadable archive, an unsafe member (named), limits exceeded, a missing
            ``required`` path, ``dest`` occupied by something i2i did not extract, or a write error.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise ArchiveError(f"{archive}: archive not found")
    if fingerprint is None:
        fingerprint = f"{archive.name}:{archive.stat().st_size}"
    state = extraction_state(dest, fingerprint)
    if state == "complete":
        return dest
    if state == "foreign" and not _is_empty_dir(dest):
        raise ArchiveError(
            f"{dest} already exists and was not extracted by i2i (no {MARKER} in it); if it is a complete "
            "copy of the data, use it as it is; otherwise move or delete it and run again"
        )
    root = tuple(p for p in member_root.replace("\\", "/").split("/") if p not in ("", "."))
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(dest)
    except OSError as exc:
        raise ArchiveError(f"cannot prepare {dest.parent} for extraction: {exc}") from exc

    if _archive_kind(archive) == "zip":
        handle, read_members, write = _open(archive, zipfile.ZipFile), _zip_members, _write_zip
    else:
        if not hasattr(tarfile, "data_filter"):
            raise ArchiveError(
                f"{archive}: this Python lacks tarfile's 'data' extraction filter (3.10.12+, 3.11.4+); "
                "upgrade Python to extract tar archives safely"
            )
        handle, read_members, write = _open(archive, tarfile.open), _tar_members, _write_tar
    with handle:  # one open archive for both passes: the members we check are the members we write
        members = read_members(archive, handle, max_files)
        selected = _check_members(archive, members, root, max_total_bytes, max_files)
        _check_free_space(archive, dest.parent, sum(m.size for m in selected))
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}{_STAGING}", dir=dest.parent))
        try:
            write(archive, handle, staging, selected, max_total_bytes)
            result = staging.joinpath(*root)
            if not result.is_dir():
                tops = sorted({m.parts[0] for m in members if m.parts})
                raise ArchiveError(
                    f"{archive}: has no folder {member_root!r}; its top-level entries are "
                    f"{', '.join(tops[:5]) or '(none)'}; the archive may have changed or be incomplete"
                )
            _check_links_inside(archive, result)
            missing = [p for p in required if not (result / p).exists()]
            if missing:
                raise ArchiveError(
                    f"{archive}: extracted, but {', '.join(missing)} is missing from it; the archive is "
                    "incomplete or not the expected one: delete it and download it again"
                )
            marker = {
                "archive": archive.name,
                "fingerprint": fingerprint,
                "files": sum(m.kind == "file" for m in selected),
                "bytes": sum(m.size for m in selected),
                "extracted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (result / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
            _move_into_place(result, dest)
        except OSError as exc:
            raise ArchiveError(f"{archive}: extraction into {dest} failed: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


# ----------------------------------------------------------------------------- reading headers


def _archive_kind(archive: Path) -> str:
    try:
        with open(archive, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise ArchiveError(f"{archive}: cannot read archive: {exc}") from exc
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")) or head[257:262] == b"ustar":
        return "tar"
    looks_html = head.lstrip().lower().startswith((b"<!doctype", b"<html"))
    raise ArchiveError(
        f"{archive}: not a zip or tar archive"
        + (" (it is an HTML page: the download gave a web page instead of the file)" if looks_html else "")
    )


def _open(archive: Path, opener: Callable[[Path], Any]) -> Any:
    try:
        return opener(archive)
    except Exception as exc:  # BadZipFile, ReadError, OSError, EOFError, struct/zlib errors...: "corrupt"
        raise _corrupt(archive, exc) from exc


def _zip_members(archive: Path, zf: zipfile.ZipFile, max_files: int) -> list[_Member]:
    infos = zf.infolist()
    if len(infos) > max_files:
        raise _bomb(archive, f"{len(infos)} members, more than the limit of {max_files}")
    members = []
    for info in infos:
        name = info.filename
        mode = info.external_attr >> 16
        if not name:  # a corrupt central directory; zipfile itself would fail on it (IndexError)
            raise _unsafe(archive, "(no name)", "has an empty name; the archive is corrupt")
        if info.flag_bits & 0x1:
            raise _unsafe(archive, name, "is encrypted")
        if stat.S_ISLNK(mode):
            raise _unsafe(archive, name, "is a symbolic link (links are not extracted from zip files)")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _unsafe(archive, name, "is a device, FIFO or socket")
        kind = "dir" if info.is_dir() else "file"
        members.append(_Member(_parts(archive, name), kind, 0 if kind == "dir" else info.file_size, info))
    return members


def _tar_members(archive: Path, tf: tarfile.TarFile, max_files: int) -> list[_Member]:
    members = []
    try:
        for info in tf:  # reads headers only, and stops early on a file-count bomb
            if len(members) >= max_files:
                raise _bomb(archive, f"more than the limit of {max_files} members")
            members.append(_tar_member(archive, info))
    except ArchiveError:
        raise
    except Exception as exc:  # tarfile/gzip/bz2/lzma/zlib raise many types on corrupt data
        raise _corrupt(archive, exc) from exc
    return members


def _tar_member(archive: Path, info: tarfile.TarInfo) -> _Member:
    name = info.name
    if info.isreg():
        return _Member(_parts(archive, name), "file", info.size, info)
    if info.isdir():
        return _Member(_parts(archive, name), "dir", 0, info)
    if info.issym():
        return _Member(_parts(archive, name), "symlink", 0, info)
    if info.islnk():
        return _Member(_parts(archive, name), "hardlink", 0, info)
    what = (
        "a device file" if info.ischr() or info.isblk() else "a FIFO" if info.isfifo() else "of unknown type"
    )
    raise _unsafe(archive, name, f"is {what}")


def _parts(archive: Path, name: str) -> tuple[str, ...]:
    if "\x00" in name:
        raise _unsafe(archive, name, "has a NUL byte in its name")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise _unsafe(archive, name, "is an absolute path")
    parts = tuple(p for p in posix.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _unsafe(archive, name, "has a '..' component (it would be written outside the target)")
    return parts


# ----------------------------------------------------------------------------- checks


def _check_members(
    archive: Path, members: list[_Member], root: tuple[str, ...], max_total_bytes: int, max_files: int
) -> list[_Member]:
    """Refuse the archive if any member is unsafe; return the members under ``root`` to write."""
    if len(members) > max_files:
        raise _bomb(archive, f"{len(members)} members, more than the limit of {max_files}")
    total = sum(m.size for m in members)
    if total > max_total_bytes:
        raise _bomb(
            archive, f"its members add up to {total:,} bytes, more than the limit of {max_total_bytes:,}"
        )
    links = {m.parts for m in members if m.kind in ("symlink", "hardlink")}
    seen: set[tuple[str, ...]] = set()
    for member in members:
        name = "/".join(member.parts)
        for i in range(1, len(member.parts)):
            if member.parts[:i] in links:
                link = "/".join(member.parts[:i])
                raise _unsafe(archive, name, f"would be written through the link {link!r}")
        if member.kind not in ("symlink", "hardlink") and member.parts in links:
            raise _unsafe(archive, name, "has the same name as a link, so it would be written through it")
        # Links are checked against the folder that becomes the target, or the archive's top level for
        # members that are not written.
        top = root if member.parts[: len(root)] == root else ()
        if member.kind == "symlink":
            target = member.source.linkname.replace("\\", "/")
            if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
                raise _unsafe(archive, name, f"is a link to the absolute path {target!r}")
            if not _inside(member.parts[:-1], target, top):
                raise _unsafe(archive, name, f"is a link to {target!r}, outside the extracted folder")
        elif member.kind == "hardlink":
            try:
                target_parts = _parts(archive, member.source.linkname)
            except ArchiveError:
                raise _unsafe(
                    archive, name, f"is a hard link to {member.source.linkname!r}, outside"
                ) from None
            if target_parts[: len(top)] != top or target_parts not in seen or target_parts in links:
                raise _unsafe(
                    archive, name, f"is a hard link to {member.source.linkname!r}, not to an earlier file"
                )
        if member.kind == "file" and member.parts in seen and isinstance(member.source, zipfile.ZipInfo):
            raise _unsafe(archive, name, "appears twice in the archive")
        seen.add(member.parts)
    return [m for m in members if m.parts[: len(root)] == root and len(m.parts) > len(root)]


def _inside(link_dir: tuple[str, ...], target: str, top: tuple[str, ...]) -> bool:
    """Whether a relative link in ``link_dir`` pointing to ``target`` stays under ``top`` (lexically)."""
    parts = list(link_dir)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(parts) <= len(top):
                return False
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts[: len(top)]) == top


def _check_free_space(archive: Path, folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise ArchiveError(
            f"{archive}: extracting needs {needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free "
            f"in {folder}; free some space or choose another --root"
        )


def _check_links_inside(archive: Path, folder: Path) -> None:
    """After writing, every symlink must resolve inside ``folder`` (catches chains of inside links)."""
    top = os.path.realpath(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and os.path.commonpath([top, os.path.realpath(path)]) != top:
                raise _unsafe(
                    archive, os.path.relpath(path, folder), "is a link resolving outside the target"
                )


# ----------------------------------------------------------------------------- writing


def _write_zip(
    archive: Path, zf: zipfile.ZipFile, staging: Path, members: list[_Member], max_total_bytes: int
) -> None:
    written = 0
    for member in members:
        path = staging.joinpath(*member.parts)
        if member.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as out:
            try:
                src = zf.open(member.source)
            except Exception as exc:  # BadZipFile, NotImplementedError (compression), RuntimeError...
                raise _corrupt(archive, exc) from exc
            with src:
                count = 0
                while True:
                    try:
                        chunk = src.read(_CHUNK)
                    except Exception as exc:  # bad CRC, zlib.error, EOFError...
                        raise _corrupt(archive, exc) from exc
                    if not chunk:
                        break
                    count += len(chunk)
                    written += len(chunk)
                    if count > member.size or written > max_total_bytes:
                        raise _bomb(archive, f"member {'/'.join(member.parts)!r} holds more than it declares")
                    out.write(chunk)


def _write_tar(
    archive: Path, tf: tarfile.TarFile, staging: Path, members: list[_Member], max_total_bytes: int
) -> None:
    try:
        # tarfile's own "data" filter repeats the path/link checks against the real file system.
        tf.extractall(staging, members=[m.source for m in members], filter="data")
    except tarfile.FilterError as exc:
        raise ArchiveError(
            f"{archive}: refused by tarfile's safety filter: {exc}; nothing was extracted"
        ) from exc
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise _corrupt(archive, exc) from exc
    except OSError as exc:  # a corrupt gzip/bz2 stream (BadGzipFile...) or a write error
        raise ArchiveError(f"{archive}: extraction failed ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:
        raise _corrupt(archive, exc) from exc


def _move_into_place(result: Path, dest: Path) -> None:
    old = None
    if dest.exists() or dest.is_symlink():
        if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
            dest.rmdir()
        else:  # our own stale extraction (checked by the caller): swap, then delete it
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}{_STAGING}old-", dir=dest.parent))
            os.replace(dest, old / dest.name)
    os.replace(result, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_staging(dest: Path) -> None:
    for leftover in dest.parent.glob(f".{glob_escape(dest.name)}{_STAGING}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped (``[``, ``*``, ``?``)."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _corrupt(archive: Path, exc: BaseException) -> ArchiveError:
    detail = " ".join(str(exc).split())[:160]
    return ArchiveError(
        f"{archive}: corrupt or unreadable archive ({type(exc).__name__}: {detail}); delete it and download "
        "it again"
    )


def _unsafe(archive: Path, member: str, why: str) -> ArchiveError:
    return ArchiveError(f"{archive}: refused: member {member!r} {why}; nothing was extracted")


def _bomb(archive: Path, why: str) -> ArchiveError:
    return ArchiveError(f"{archive}: refused as a possible archive bomb: {why}; nothing was extracted")
