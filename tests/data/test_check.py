"""``i2i data check``: every problem of a messy dataset reported at once, each naming the file and the fix."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from i2i.cli import main
from i2i.data.badimages import BAD_IMAGES_KEY, SkipBadImages
from i2i.data.check import check_dataset, format_report, printable
from i2i.data.paired import PairedDataset
from i2i.errors import DataError


def _image(path: Path, size: tuple[int, int] = (40, 30), mode: str = "RGB", seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, format="JPEG" if mode == "CMYK" else "PNG")
    return path


def _bomb_png(path: Path, side: int = 20_000) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def messy(tmp_path) -> Path:
    """A paired dataset with one of everything that goes wrong in real folders."""
    root = tmp_path / "messy"
    a, b = root / "train" / "A", root / "train" / "B"
    for name in ["ok", "cmyk", "palette", "alpha", "gray16", "été 🦓", "tiny", "zero", "text", "cut", "bomb"]:
        _image(b / f"{name}.png")
    _image(a / "ok.png")
    _image(a / "cmyk.jpg", mode="CMYK")  # fine: modes are converted
    _image(a / "palette.png", mode="P")
    _image(a / "alpha.png", mode="RGBA")
    cv2.imwrite(str(a / "gray16.png"), np.full((30, 40), 40000, np.uint16))
    _image(a / "été 🦓.png")  # unicode names are fine
    _image(a / "tiny.png", size=(8, 8))
    (a / "zero.png").write_bytes(b"")
    (a / "text.png").write_text("not an image\n")
    cut = _image(a / "cut.png", size=(64, 64))
    cut.write_bytes(cut.read_bytes()[:80])
    _bomb_png(a / "bomb.png")
    _image(a / "orphan.png")  # no partner in B
    _image(a / "dup.png")
    _image(a / "dup.jpg")  # two files, one name
    _image(b / "dup.png")
    (a / "anim.gif").write_bytes(b"GIF89a")  # not read by training: a note
    (root / "test").mkdir()  # an empty split folder
    (root / "README.txt").write_text("not an image, not a problem")
    return root


def test_every_problem_is_reported_at_once(messy) -> None:
    report = check_dataset(messy, min_size=16)
    assert not report.ok
    by_file = {p.path.name: p.message for p in report.problems}
    assert "is empty (0 bytes)" in by_file["zero.png"]
    assert "is a text file, not an image" in by_file["text.png"]
    assert "cannot be decoded" in by_file["cut.png"]
    assert "too many pixels to open safely (Image size (400000000 pixels)" in by_file["bomb.png"]
    assert "tiny.png is 8x8 but at least 16 px per side is needed" in by_file["tiny.png"]
    assert "have the same name" in by_file["dup.jpg"] or "have the same name" in by_file["dup.png"]
    assert "have no partner of the same name" in by_file["A"] and "orphan.png" in by_file["A"]
    assert by_file["test"].endswith("holds no images; put the images there or remove the folder.")
    for fine in ("ok.png", "cmyk.jpg", "palette.png", "alpha.png", "gray16.png", "été 🦓.png"):
        assert fine not in by_file
    assert any("ignored 1 file(s) in formats training does not read (.gif)" in note for note in report.notes)
    # Each problem names its file (or, for a layout problem, its folder).
    for problem in report.problems:
        assert str(problem.path) in problem.message or str(problem.path.parent) in problem.message


def test_the_image_bomb_is_never_decoded(messy, monkeypatch) -> None:
    decoded = []
    original = Image.Image.load

    def load(self):
        decoded.append(getattr(self, "filename", ""))
        return original(self)

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", load)
    check_dataset(messy)
    assert str(messy / "train" / "A" / "bomb.png") not in map(str, decoded)
    assert str(messy / "train" / "B" / "bomb.png") in map(str, decoded)  # its harmless partner is


def test_cli_exit_codes_and_output(messy, tmp_path, capsys) -> None:
    assert main(["data", "check", str(messy), "--min-size", "16"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"checked 26 image(s) in 2 folder(s) under {messy}")
    assert "problem: " in out and "zero.png is empty" in out
    assert out.rstrip().endswith(
        "fix them and check again, or train with --on-bad-image skip to skip unreadable images"
    )

    clean = tmp_path / "clean"
    for i in range(3):
        _image(clean / "trainA" / f"{i}.png")
    for i in range(40):
        _image(clean / "trainB" / f"{i}.jpg", seed=i)
    assert main(["data", "check", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "trainA: 3 images" in out and "trainB: 40 images" in out
    assert "note: unpaired trainA/trainB" in out and "very different sizes" in out
    assert out.rstrip().endswith("no problems found")

    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_an_empty_folder_is_a_problem(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["data", "check", str(tmp_path / "empty")]) == 1
    assert "No images found in" in capsys.readouterr().out


def test_unpaired_side_missing_and_odd_names_print_on_one_line(tmp_path) -> None:
    _image(tmp_path / "trainA" / "new\nline.png")
    (tmp_path / "trainB").mkdir()
    report = check_dataset(tmp_path)
    assert [p.path.name for p in report.problems] == ["trainB"]
    text = format_report(report)
    assert "new\\nline.png" not in text  # folders are listed, files only in problems
    assert printable("a\nb\tc é") == "a\\nb\\tc é"
    assert all(len(line) > 0 for line in text.splitlines())


def test_junyanz_raw_layout_pairs_are_checked(tmp_path) -> None:
    _image(tmp_path / "A" / "train" / "1.png")
    _image(tmp_path / "B" / "train" / "1.png")
    _image(tmp_path / "B" / "train" / "2.png")
    report = check_dataset(tmp_path)
    assert len(report.problems) == 1 and "2.png" in report.problems[0].message


# ----------------------------------------------------------------------------- skipping bad images


def test_skip_bad_images_is_deterministic_and_reports_what_it_skipped(tmp_path) -> None:
    for i in range(4):
        _image(tmp_path / "train" / "A" / f"{i}.png", seed=i)
        _image(tmp_path / "train" / "B" / f"{i}.png", seed=10 + i)
    (tmp_path / "train" / "A" / "1.png").write_bytes(b"")
    (tmp_path / "train" / "B" / "2.png").write_text("oops")
    data = PairedDataset(tmp_path)
    with pytest.raises(DataError, match=r"1\.png is empty"):
        data[1]
    skipping = SkipBadImages(data)
    item = skipping[(1, 7)]
    assert item["name"] == "3"  # 1 and 2 are bad: the next readable pair, with the same seed
    problems = item[BAD_IMAGES_KEY].splitlines()
    assert len(problems) == 2 and "1.png is empty" in problems[0] and "2.png" in problems[1]
    assert skipping[(1, 7)]["name"] == "3" and skipping[0][BAD_IMAGES_KEY] == ""
    for name in ("0", "3"):
        (tmp_path / "train" / "A" / f"{name}.png").write_bytes(b"")
    with pytest.raises(DataError, match="4 items in a row from index 1 cannot be read.*i2i data check"):
        SkipBadImages(PairedDataset(tmp_path))[1]
