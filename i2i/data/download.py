"""The dataset registry: ``i2i datasets list`` and ``i2i datasets download NAME``.

Entries live in the shipped manifest ``i2i/manifests/datasets.json`` (inside the package, so an installed
i2i has it; the data themselves land in ``--root``, by default ``datasets/``). Each names the archive's
URLs (primary first, then mirrors), size, sha256 and how far that digest is confirmed, license, and the layout
it unpacks to: ``member_root`` inside the archive becomes ``<root>/<target>``, and the ``required`` paths are
checked before the extraction is renamed into place. So ``i2i datasets download facades`` gives
``datasets/facades/{train,val,test}``, which is what the ``pix2pix_facades`` recipe reads.

Downloads go through :func:`i2i.data.fetch.fetch` (resumable, verified before renaming) and extraction
through :func:`i2i.data.extract.safe_extract` (checked, staged, marked complete). Archives without a
published digest are trusted on first use: the digest is recorded in ``<root>/i2i.lock.json`` and later
downloads must match it. MNIST and Fashion-MNIST are fetched by torchvision, which checks their MD5s.

Example:
    >>> path = download_dataset("facades")  # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
    ['test', 'train', 'val']
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from i2i.data.extract import extraction_state, safe_extract
from i2i.data.fetch import DigestLock, Remote, fetch, format_size
from i2i.errors import DataError, DownloadError
from i2i.manifests import load_records

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("datasets")
LOCK_NAME = "i2i.lock.json"
KINDS = ("archive", "torchvision", "manual", "group")
VERIFIED = {
    "confirmed": "sha256, 2 sources",
    "single": "sha256, 1 source",
    "torchvision": "MD5 (torchvision)",
}


@dataclass(frozen=True)
class DatasetEntry:
    """One downloadable dataset (a record of ``i2i/manifests/datasets.json``).

    Attributes:
        name: Registry name (``horse2zebra``, ``facades``, ``div2k_train_hr``...).
        title: One line on what it holds.
        method: The method family it is for (``cyclegan``, ``pix2pix``, ``sr``, ``text2image``, ``gan``).
        kind: ``archive`` (downloaded and extracted), ``torchvision`` (fetched by torchvision), ``manual``
            (no usable public URL: ``notes`` say how to get it) or ``group`` (the entries in ``includes``).
        target: Folder under the root that the data become (``facades``, ``DIV2K/DIV2K_train_HR``).
        license: Terms of use, in short.
        file: Archive file name.
        urls: Primary URL, then mirrors.
        size: Exact archive size in bytes, when known; ``approx_size`` is only shown.
        sha256: Published digest, or ``None`` (trust on first use).
        sha256_status: ``confirmed`` (two independent pins), ``single``, ``none`` or ``torchvision``.
        allow_http: The host serves only plain http (as the reference scripts use it).
        member_root: Folder inside the archive that becomes ``target``.
        required: Paths under ``target`` that must exist after extraction (and that mark it ready).
        torchvision: The ``torchvision.datasets`` class that downloads it, called with
            ``root=<root>/<torchvision_root>`` and each of ``torchvision_kwargs``.
    """

    name: str
    title: str
    method: str
    kind: str
    target: str
    license: str
    file: str = ""
    urls: tuple[str, ...] = ()
    size: int | None = None
    approx_size: int | None = None
    sha256: str | None = None
    sha256_status: str = "none"
    allow_http: bool = False
    member_root: str = ""
    required: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    torchvision: str = ""
    torchvision_root: str = ""
    torchvision_kwargs: tuple[dict[str, Any], ...] = ()
    max_files: int = 500_000
    max_unpacked_bytes: int | None = None
    notes: str = ""

    @property
    def remote(self) -> Remote:
        """The archive to download."""
        return Remote(self.file, self.urls, self.sha256, self.size, self.allow_http)


@functools.cache
def dataset_entries() -> dict[str, DatasetEntry]:
    """All shipped dataset entries by name, in manifest order."""
    return load_records("datasets.json", "datasets", DatasetEntry)


def get_dataset(name: str) -> DatasetEntry:
    """The entry called ``name``.

    Raises:
        DataError: unknown name; the message lists close names.
    """
    entries = dataset_entries()
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise DataError(f"unknown dataset {name!r}; {hint}`i2i datasets list` shows them all")


def download_dataset(
    name: str | DatasetEntry,
    root: str | Path = DEFAULT_ROOT,
    *,
    keep_archive: bool = False,
    quiet: bool = False,
    **fetch_options: Any,
) -> Path:
    """Download, verify and safely extract a dataset into ``root / entry.target`` (once).

    A target already extracted from the same archive (completion marker) is returned at once; an
    interrupted download resumes; an interrupted extraction starts again.

    Args:
        name: A registry name or an entry.
        root: Folder the datasets live in (the recipes read ``datasets/<target>``).
        keep_archive: Keep the archive after extraction (default: delete it).
        quiet: No progress bar.
        **fetch_options: Passed to :func:`i2i.data.fetch.fetch` (``retries``, ``sleep``, ``timeout``...).

    Returns:
        The dataset folder.

    Raises:
        DownloadError: the download failed or did not verify.
        ArchiveError: the archive is corrupt, unsafe or incomplete, or the target holds other data.
        DataError: unknown name, or a dataset that must be downloaded by hand (the message says how).
    """
    entry = name if isinstance(name, DatasetEntry) else get_dataset(name)
    root = Path(root)
    dest = root / entry.target
    if entry.kind == "group":
        for part in entry.includes:
            download_dataset(part, root, keep_archive=keep_archive, quiet=quiet, **fetch_options)
        return dest
    if entry.kind == "manual":
        if entry.required and all((dest / p).exists() for p in entry.required):
            return dest
        raise DataError(f"{entry.name} cannot be downloaded automatically: {entry.notes}")
    if entry.kind == "torchvision":
        return _torchvision_download(entry, root)
    if entry.kind != "archive":
        raise DataError(f"{entry.name}: unknown dataset kind {entry.kind!r}; expected one of {KINDS}")

    lock = DigestLock(root / LOCK_NAME)
    recorded = lock.get(entry.file)
    expected = entry.sha256 or (recorded["sha256"] if recorded else None)
    state = extraction_state(dest, expected)
    if state == "complete":
        log.info("%s is already in %s", entry.name, dest)
        return dest
    if state == "foreign" and not (dest.is_dir() and not any(dest.iterdir())):
        raise DataError(
            f"{dest} already exists but was not made by `i2i datasets download` (no completion marker); "
            "if it is a complete copy, use it as it is; otherwise move or delete it and run again"
        )
    archive = fetch(entry.remote, root, lock=lock, quiet=quiet, **fetch_options)
    digest = entry.sha256 or (lock.get(entry.file) or {}).get("sha256")
    limit = entry.max_unpacked_bytes or max(10 * archive.stat().st_size, 2**30)
    safe_extract(
        archive,
        dest,
        max_total_bytes=limit,
        max_files=entry.max_files,
        member_root=entry.member_root,
        required=entry.required,
        fingerprint=digest,
    )
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return dest


def _torchvision_download(entry: DatasetEntry, root: Path) -> Path:
    if os.environ.get("I2I_OFFLINE", "") not in ("", "0"):
        raise DownloadError(f"{entry.name}: not downloaded because I2I_OFFLINE is set")
    import torchvision.datasets

    cls = getattr(torchvision.datasets, entry.torchvision)
    folder = root / entry.torchvision_root
    try:
        for kwargs in entry.torchvision_kwargs or ({},):
            cls(root=str(folder), **kwargs, download=True)
    except Exception as exc:  # URLError, RuntimeError("File not found or corrupted"), missing gdown...
        detail = " ".join(str(exc).split())[:300]
        hint = f"; {entry.notes}" if entry.notes else ""
        raise DownloadError(
            f"{entry.name}: torchvision could not download it into {folder}: {detail}{hint}"
        ) from exc
    return root / entry.target


# ----------------------------------------------------------------------------- listing


def verification(entry: DatasetEntry, lock: DigestLock | None = None) -> str:
    """How the entry's files are verified, in a few words (the ``VERIFIED`` column)."""
    if entry.kind == "manual":
        return "manual download"
    if entry.kind == "group":
        return "per part"
    if entry.sha256_status in VERIFIED:
        return VERIFIED[entry.sha256_status]
    recorded = lock.get(entry.file) if lock is not None else None
    text = "first use: recorded" if recorded else "first use: not yet"
    return text + (", http" if entry.allow_http else "")


def local_status(entry: DatasetEntry, root: Path) -> str:
    """``ready``, ``partial`` (a ``.part`` file), ``present`` (data not made by i2i) or ``-``."""
    dest = root / entry.target
    if entry.kind == "group":
        parts = [local_status(get_dataset(p), root) for p in entry.includes]
        return (
            "ready"
            if all(s == "ready" for s in parts)
            else "partial"
            if any(s != "-" for s in parts)
            else "-"
        )
    if entry.kind in ("torchvision", "manual"):
        return "ready" if dest.is_dir() and all((dest / p).exists() for p in entry.required) else "-"
    state = extraction_state(dest)
    if state == "complete":
        return "ready"
    if entry.file and (root / f"{entry.file}.part").exists():
        return "partial"
    return "present" if state == "foreign" else "-"


def _size(entry: DatasetEntry) -> str:
    if entry.kind == "group":
        parts = [get_dataset(p) for p in entry.includes]
        if all(p.size for p in parts):
            return format_size(sum(p.size or 0 for p in parts))
        return "?"
    if entry.size is not None:
        return format_size(entry.size)
    return f"~{format_size(entry.approx_size)}" if entry.approx_size else "-"


def format_dataset_table(root: str | Path = DEFAULT_ROOT) -> str:
    """The ``i2i datasets list`` table: every entry with size, verification, local state and license."""
    root = Path(root)
    lock = DigestLock(root / LOCK_NAME)
    rows = [("NAME", "FOR", "SIZE", "VERIFIED", "LOCAL", "LICENSE")]
    for entry in dataset_entries().values():
        rows.append(
            (
                entry.name,
                entry.method,
                _size(entry),
                verification(entry, lock),
                local_status(entry, root),
                entry.license,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
        for row in rows
    ]
    lines += [
        "",
        f"Data go to {root}/<name> (see `i2i datasets info NAME` for the layout and URLs).",
        "VERIFIED: sha256 pinned by 2 independent sources or by 1; 'first use' = no published digest: the",
        f"digest of the first download is recorded in {root / LOCK_NAME} and later downloads must match it;",
        "'http' = the host serves plain http only (as the reference scripts use it).",
    ]
    return "\n".join(lines)


def format_dataset_info(name: str, root: str | Path = DEFAULT_ROOT) -> str:
    """Everything about one entry (``i2i datasets info NAME``)."""
    entry = get_dataset(name)
    root = Path(root)
    lock = DigestLock(root / LOCK_NAME)
    recorded = lock.get(entry.file) if entry.file else None
    lines = [
        f"{entry.name}: {entry.title}",
        f"  for:        {entry.method}",
        f"  kind:       {entry.kind}",
        f"  unpacks to: {root / entry.target}"
        + (f"  (with {', '.join(entry.required)})" if entry.required else ""),
        f"  size:       {_size(entry)}",
        f"  verified:   {verification(entry, lock)}",
        f"  license:    {entry.license}",
    ]
    if entry.file:
        lines.append(f"  file:       {entry.file}")
    lines += [f"  url:        {url}" for url in entry.urls]
    if entry.sha256 or recorded:
        lines.append(
            f"  sha256:     {entry.sha256 or recorded['sha256']}" + ("" if entry.sha256 else " (recorded)")
        )
    if entry.includes:
        lines.append(f"  includes:   {', '.join(entry.includes)}")
    recipes = recipes_using(entry)
    if recipes:
        lines.append(f"  recipes:    {', '.join(recipes)}")
    if entry.notes:
        lines.append(f"  notes:      {entry.notes}")
    lines.append(f"  local:      {local_status(entry, root)}")
    return "\n".join(lines)


def recipes_using(entry: DatasetEntry) -> list[str]:
    """Shipped recipes whose ``data.root`` is ``datasets/<target>`` (or a folder inside it)."""
    from i2i.config import CONFIG_DIR

    found = []
    target = (DEFAULT_ROOT / entry.target).as_posix()
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        try:
            data_root = str(((yaml.safe_load(path.read_text()) or {}).get("data") or {}).get("root") or "")
        except (OSError, yaml.YAMLError):
            continue
        if data_root and (data_root == target or data_root.startswith(target + "/")):
            found.append(path.stem)
    return found
