"""Project exceptions: every user-facing failure names the file or field and says what to do."""

from __future__ import annotations


class I2IError(Exception):
    """Base class for errors caused by user input (config, data, checkpoints, CLI arguments).

    The CLI prints the message on one line and exits non-zero, without a traceback.
    """


class ConfigError(I2IError):
    """A config file, a ``--set`` override or a constructor argument is wrong."""


class DataError(I2IError):
    """An input image or dataset folder cannot be used."""


class CheckpointError(I2IError):
    """A checkpoint or weights file is missing, corrupt or of an unknown format."""


class ArchiveError(DataError):
    """An archive is corrupt, or refused as unsafe (paths escaping the target, links, devices, bombs)."""


class DownloadError(DataError):
    """A download failed, was refused (insecure redirect, HTML page) or did not match its sha256."""
