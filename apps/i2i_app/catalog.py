"""Which models the app offers: installed registry weights and the model files of ``--models DIR``.

Each model gets an opaque id (``registry:horse2zebra``, ``local:sub/g.safetensors``): the browser only
ever sees ids and labels, so no request can name a path on the server, and an id that is not in the
catalog is refused. Models are sorted into the tab that can run them by their task (``translate``,
``upscale``, ``text2image``), read from file headers where possible; a file that fails to load is listed
in the Models tab with the reason, never offered in a tab.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from i2i import hub
from i2i.errors import I2IError
from i2i.infer.translate import generator_for_direction

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".safetensors", ".pth")
MAX_FILES = 500  # a --models folder pointed at a huge tree must not stall the start
TASKS = ("translate", "upscale", "text2image")


@dataclass(frozen=True)
class ModelEntry:
    """One model the app knows of.

    Attributes:
        id: Opaque key the UI passes back (``registry:NAME`` or ``local:RELATIVE/PATH``).
        label: What the dropdowns show.
        task: ``translate``, ``upscale``, ``text2image``; ``""`` when the app cannot run it.
        source: ``registry`` or ``local``.
        location: What the loaders take: the registry name, or the file's absolute path.
        installed: Whether it can run now without a download.
        directions: Translation directions it offers (``AtoB``, and ``BtoA`` for two-way checkpoints).
        scale: Upscaling factor (1 for other tasks).
        detail: A line for the Models tab (title, license, or why it cannot be used).
    """

    id: str
    label: str
    task: str
    source: str
    location: str
    installed: bool
    directions: tuple[str, ...] = ("AtoB",)
    scale: int = 1
    detail: str = ""


@dataclass
class Catalog:
    """The models of the registry and of a models folder, by id."""

    models_dir: Path | None = None
    entries: dict[str, ModelEntry] = field(default_factory=dict)

    def scan(self) -> Catalog:
        """(Re)build the list: registry entries, then the models folder's files. Returns ``self``."""
        entries = [*_registry_entries(), *_local_entries(self.models_dir)]
        self.entries = {e.id: e for e in entries}
        return self

    def offered(self, task: str) -> list[ModelEntry]:
        """The installed models a tab of ``task`` can run, local ones first."""
        found = [e for e in self.entries.values() if e.task == task and e.installed]
        return sorted(found, key=lambda e: (e.source != "local", e.label.lower()))

    def downloadable(self) -> list[ModelEntry]:
        """Registry models this version can run that are not downloaded yet."""
        return [e for e in self.entries.values() if e.source == "registry" and e.task and not e.installed]

    def download(self, name: str | None) -> ModelEntry:
        """Download the registry weights ``name`` (verified) into the cache, rescan, return the entry.

        Raises:
            I2IError: not one of :meth:`downloadable`; or the download failed or did not verify.
        """
        entry = self.entries.get(f"registry:{name}")
        if entry is None or entry not in self.downloadable():
            raise I2IError("download: choose one of the downloadable models")
        hub.download_weights(entry.location, quiet=True)
        return self.scan().entries[entry.id]

    def get(self, model_id: str | None, task: str) -> ModelEntry:
        """The installed model ``model_id`` of ``task``.

        Raises:
            I2IError: no such model (stale page, forged request) or not one of this tab's models.
        """
        entry = self.entries.get(model_id or "")
        if entry is None or not entry.installed or entry.task != task:
            raise I2IError("model: choose one of the listed models (reload the page if the list changed)")
        return entry


def _registry_entries() -> list[ModelEntry]:
    folder = hub.weights_dir()
    entries = []
    for e in hub.weights_entries().values():
        task = "upscale" if e.task.startswith("super-resolution") else "translate"
        if not e.loadable:
            task, detail = "", f"needs the {e.arch_title} architecture, not in this version of i2i"
        else:
            detail = f"{e.title}; {e.license}"
        entries.append(
            ModelEntry(
                id=f"registry:{e.name}",
                label=e.name,
                task=task,
                source="registry",
                location=e.name,
                installed=(folder / e.file).is_file(),
                scale=e.scale or 1,
                detail=detail,
            )
        )
    return entries


def _local_entries(models_dir: Path | None) -> list[ModelEntry]:
    if models_dir is None:
        return []
    root = models_dir.resolve()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MODEL_SUFFIXES and p.is_file())
    if len(files) > MAX_FILES:
        log.warning("%s holds %d model files; offering the first %d", root, len(files), MAX_FILES)
        files = files[:MAX_FILES]
    return [_describe(path, path.relative_to(root).as_posix()) for path in files]


def _describe(path: Path, name: str) -> ModelEntry:
    base = {"id": f"local:{name}", "label": name, "source": "local", "location": str(path), "installed": True}
    try:
        info = hub.describe_model(path)
    except I2IError as exc:
        reason = " ".join(str(exc).replace(str(path), name).split())
        return ModelEntry(task="", detail=f"cannot be loaded: {reason}", **base)
    if info.task not in TASKS:
        return ModelEntry(task="", detail=f"a {info.task} model ({info.name}); no tab runs it", **base)
    directions: tuple[str, ...] = ("AtoB",)
    if info.task == "translate":
        try:
            generator_for_direction(path, "BtoA")
            directions = ("AtoB", "BtoA")
        except I2IError:
            pass  # a one-way model
    return ModelEntry(task=info.task, directions=directions, scale=info.scale, detail=f"{info.name}", **base)
