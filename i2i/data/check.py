"""``i2i data check DIR``: scan a dataset and report every problem at once, before a long run finds one.

Every image under ``DIR`` is checked from its header first (size, decompression bombs: nothing is decoded
for those) and then decoded completely, with the reader training uses. The folder layout is checked too:
empty split folders, paired ``A``/``B`` folders whose file names do not match, duplicate names. Problems
name the file and the fix; notes (ignored files, unpaired folders of very different sizes) are
informational.

Example:
    >>> report = check_dataset("datasets/facades", min_size=256)  # doctest: +SKIP
    >>> print(format_report(report))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from i2i.data.images import _JUNK_NAMES, IMAGE_EXTENSIONS, is_image_file, read_image, read_image_size
from i2i.errors import DataError

# Image formats people have that training does not read: reported as ignored, not silently dropped.
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset(
    {
        ".gif",
        ".heic",
        ".heif",
        ".avif",
        ".jfif",
        ".jp2",
        ".svg",
        ".psd",
        ".ico",
        ".tga",
        ".dng",
        ".cr2",
        ".nef",
    }
)
# Folder names that datasets use for splits and sides; such a folder without images is a problem.
SPLIT_NAMES = frozenset(
    {"train", "test", "val", "valid", "a", "b", "traina", "trainb", "testa", "testb", "vala", "valb"}
)
_IMBALANCE = 10  # unpaired sides this many times apart in size get a note
_MAX_LISTED = 5


@dataclass
class Problem:
    """One thing that would stop or spoil training; ``message`` names the file and the fix."""

    path: Path
    message: str


@dataclass
class CheckReport:
    """What :func:`check_dataset` found."""

    root: Path
    images: int = 0
    folders: dict[Path, int] = field(default_factory=dict)  # folder -> number of images directly in it
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _walk(root: Path) -> dict[Path, list[Path]]:
    """Every (non-hidden) folder under ``root`` with the files directly in it, sorted."""
    tree: dict[Path, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d.lower() not in _JUNK_NAMES)
        tree[Path(dirpath)] = sorted(Path(dirpath, f) for f in filenames)
    return tree


def _check_image(path: Path, min_size: int) -> str | None:
    """The problem with one image, or None. The header is checked before anything is decoded."""
    try:
        read_image_size(path)
        read_image(path, min_size=min_size)
    except DataError as exc:
        return str(exc)
    return None


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def _check_pair(report: CheckReport, a_dir: Path, b_dir: Path, tree: dict[Path, list[Path]]) -> None:
    """Paired A/B folders: every image needs exactly one partner with the same name (stem)."""
    tables = []
    for folder in (a_dir, b_dir):
        table: dict[str, list[Path]] = {}
        for path in tree.get(folder, []):
            if is_image_file(path):
                table.setdefault(path.stem.lower(), []).append(path)
        for paths in table.values():
            if len(paths) > 1:
                report.problems.append(
                    Problem(
                        paths[0],
                        f"{', '.join(p.name for p in paths)} in {folder} have the same name; keep one so "
                        "each image has exactly one partner.",
                    )
                )
        tables.append(table)
    for (folder, table), (other, other_table) in (
        ((a_dir, tables[0]), (b_dir, tables[1])),
        ((b_dir, tables[1]), (a_dir, tables[0])),
    ):
        alone = sorted(table.keys() - other_table.keys())
        if alone and other_table:
            names = [table[k][0].name for k in alone]
            report.problems.append(
                Problem(
                    folder,
                    f"{len(alone)} image(s) in {folder} have no partner of the same name in {other}: "
                    f"{_listed(names)}; rename or remove them (pairs are matched by name, any extension).",
                )
            )


def _has_images(folder: Path, tree: dict[Path, list[Path]]) -> bool:
    return any(
        is_image_file(f) for d, files in tree.items() if d == folder or folder in d.parents for f in files
    )


def _check_layout(report: CheckReport, tree: dict[Path, list[Path]]) -> None:
    for folder in tree:
        if folder != report.root and folder.name.lower() in SPLIT_NAMES and not _has_images(folder, tree):
            report.problems.append(
                Problem(folder, f"{folder} holds no images; put the images there or remove the folder.")
            )
        children = {p.name: p for p in tree if p.parent == folder}
        if "A" in children and "B" in children:
            a_dir, b_dir = children["A"], children["B"]
            subs = sorted(
                {p.name for p in tree if p.parent == a_dir} & {p.name for p in tree if p.parent == b_dir}
            )
            for a, b in [(a_dir, b_dir)] + [(a_dir / s, b_dir / s) for s in subs]:  # also A/train + B/train
                _check_pair(report, a, b, tree)
        for name, a_dir in children.items():
            b_dir = children.get(name[:-1] + "B") if name.endswith("A") and len(name) > 1 else None
            if b_dir is None:
                continue
            sizes = (report.folders.get(a_dir, 0), report.folders.get(b_dir, 0))
            note = f"unpaired {a_dir.name}/{b_dir.name} in {folder}: {sizes[0]} and {sizes[1]} images"
            if min(sizes) and max(sizes) >= _IMBALANCE * min(sizes):
                note += " (very different sizes: fine for unpaired training; the smaller side repeats more)"
            report.notes.append(note)


def check_dataset(
    root: str | Path, *, min_size: int = 1, on_image: Callable[[Path], None] | None = None
) -> CheckReport:
    """Check every image and the folder layout under ``root``.

    Args:
        root: The dataset folder (e.g. ``datasets/facades``, or one holding ``trainA``/``trainB``).
        min_size: Smallest allowed width and height (e.g. ``data.crop_size`` for ``preprocess=crop``).
        on_image: Called before each image is checked (a progress bar).

    Returns:
        The report; ``report.ok`` is true when nothing needs fixing.

    Raises:
        DataError: ``root`` does not exist or is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"{root} is not a folder; give the dataset folder, e.g. i2i data check datasets/facades"
        )
    report = CheckReport(root)
    tree = _walk(root)
    ignored: list[Path] = []
    for folder, files in tree.items():
        images = [f for f in files if is_image_file(f)]
        ignored += [f for f in files if f.suffix.lower() in UNSUPPORTED_IMAGE_EXTENSIONS]
        if images:
            report.folders[folder] = len(images)
        for path in images:
            if on_image is not None:
                on_image(path)
            report.images += 1
            problem = _check_image(path, min_size)
            if problem:
                report.problems.append(Problem(path, problem))
    if not report.images:
        report.problems.append(
            Problem(
                root,
                f"No images found in {root} or its subfolders (accepted extensions: "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}, any case); point it at the dataset folder.",
            )
        )
    _check_layout(report, tree)
    if ignored:
        kinds = ", ".join(sorted({p.suffix.lower() for p in ignored}))
        report.notes.append(
            f"ignored {len(ignored)} file(s) in formats training does not read ({kinds}): "
            f"{_listed([str(p) for p in ignored])}; convert them to PNG to use them"
        )
    return report


def printable(text: str) -> str:
    """``text`` with control characters (newlines in odd file names, ...) escaped, one line."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) == "Cc" else ch for ch in text
    )


def format_report(report: CheckReport) -> str:
    """The report as text for the terminal: a summary, every problem, the notes, and the verdict."""
    lines = [f"checked {report.images} image(s) in {len(report.folders)} folder(s) under {report.root}"]
    for folder, count in report.folders.items():
        lines.append(f"  {folder.relative_to(report.root) if folder != report.root else '.'}: {count} images")
    lines += [f"problem: {p.message}" for p in report.problems]
    lines += [f"note: {note}" for note in report.notes]
    if report.problems:
        lines.append(
            f"{len(report.problems)} problem(s): fix them and check again, or train with "
            "--on-bad-image skip to skip unreadable images"
        )
    else:
        lines.append("no problems found")
    return "\n".join(printable(line) for line in lines)
