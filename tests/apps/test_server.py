"""Starting the app: safe defaults, the same flags for `i2i serve` and `python -m i2i_app`, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from i2i import hub
from i2i.cli import build_parser, main
from i2i_app.options import AppSettings, settings_from_args
from i2i_app.server import launch_options

from .conftest import REPO


def test_defaults_are_those_of_a_private_server():
    settings = settings_from_args(build_parser().parse_args(["serve"]))
    assert settings == AppSettings()
    options = launch_options(settings)
    assert options["server_name"] == "127.0.0.1" and options["share"] is False
    assert options["show_error"] is False  # no tracebacks in the browser
    assert options["allowed_paths"] == [] and options["max_file_size"] == "25mb"
    assert str(hub.weights_dir()) in options["blocked_paths"]


def test_flags_reach_the_settings_and_the_models_folder_is_blocked(tmp_path):
    args = build_parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--port", "8000", "--models", str(tmp_path), "--max-pixels", "1000",
         "--concurrency", "2", "--max-queue", "4", "--tile", "256", "--device", "cpu", "--precision", "fp32"]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert (settings.host, settings.port, settings.models_dir) == ("0.0.0.0", 8000, tmp_path)
    assert (settings.max_pixels, settings.concurrency, settings.max_queue, settings.tile) == (1000, 2, 4, 256)
    assert str(tmp_path.resolve()) in launch_options(settings)["blocked_paths"]


def test_bad_flags_and_a_missing_models_folder_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-pixels", "0"])
    assert "must be at least 1" in capsys.readouterr().err
    assert main(["serve", "--models", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--models" in err and "is not a folder" in err


@pytest.mark.parametrize("command", [["-m", "i2i_app"], [str(Path("apps") / "i2i_app")]])
def test_the_module_and_the_folder_start_the_same_app(command):
    done = subprocess.run(
        [sys.executable, *command, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--models DIR" in done.stdout and "--max-file-size" in done.stdout


def test_the_download_button_exists_only_when_allowed(tiny_models):
    from i2i_app.ui import build_app

    def elem_ids(settings: AppSettings) -> set[str]:
        demo = build_app(settings)
        return {c.get("props", {}).get("elem_id") for c in demo.get_config_file()["components"]}

    assert "models-download" not in elem_ids(AppSettings(models_dir=tiny_models.folder, device="cpu"))
    allowed = AppSettings(models_dir=tiny_models.folder, device="cpu", allow_downloads=True)
    assert {"models-download", "models-download-name"} <= elem_ids(allowed)
