"""The shipped manifests: what can be downloaded, from where, with which digest, size and license.

``datasets.json`` (read by :mod:`i2i.data.download`) and ``weights.json`` (read by :mod:`i2i.hub`) live in
the package, so an installed i2i finds them; ``datasets/`` and ``weights/`` at the top of a checkout are where
the files land. Each entry becomes a frozen dataclass; an unknown or missing key is an error naming the
entry, so a typo in a manifest fails the test suite rather than a user's download.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

from i2i.errors import ConfigError

MANIFEST_DIR = Path(__file__).parent
T = TypeVar("T")


def load_records(filename: str, section: str, cls: type[T]) -> dict[str, T]:
    """Read ``MANIFEST_DIR / filename`` and turn each entry of ``section`` into a ``cls`` record.

    The entry's key becomes the record's ``name``; JSON lists become tuples.

    Raises:
        ConfigError: unreadable file, unknown or missing keys (named with the entry).
    """
    path = MANIFEST_DIR / filename
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))[section]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable manifest ({exc}); reinstall i2i") from exc
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    records = {}
    for name, entry in entries.items():
        unknown = sorted(set(entry) - set(fields))
        if unknown:
            raise ConfigError(
                f"{path}: entry {name!r} has unknown keys {unknown}; known: {', '.join(fields)}"
            )
        values: dict[str, Any] = {"name": name}
        for key, value in entry.items():
            values[key] = _tuples(value) if "tuple" in str(hints[key]) else value
        try:
            records[name] = cls(**values)
        except TypeError as exc:  # a required key is missing
            raise ConfigError(f"{path}: entry {name!r}: {exc}") from exc
    return records


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
