"""Loading models for inference, and the registry of pretrained weights.

``load_model`` reads, without flags:

- a registry name (``"horse2zebra"``, ``"RealESRGAN_x4plus"``; ``i2i weights list``): the file is downloaded
  once into the cache (``$I2I_HOME/weights``, by default ``~/.cache/i2i/weights``), verified against its
  sha256 (or, where nobody publishes one, against the digest recorded on first download), then loaded;
- i2i training checkpoints (``.safetensors`` with the architecture saved in them; the EMA weights of the
  generator are used when the run kept them), and exported models (``i2i weights convert``: a plain
  safetensors state dict with its config in the header and a ``.json`` file beside it);
- junyanz/pytorch-CycleGAN-and-pix2pix ``.pth`` files (bare ``state_dict``), whose architecture is
  detected from the key names and shapes.

``.pth`` files are opened with ``torch.load(weights_only=True)`` only: a pickle can run code, so nothing
else is ever unpickled.

The registry (``i2i/manifests/weights.json``) holds torchvision-style records, :class:`WeightsEntry`: name,
URL, sha256, the i2i architecture and its arguments, value range, task, dataset, license, the recipe it
came from and reported metrics.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from i2i import nets
from i2i.data.fetch import DigestLock, Remote, fetch, format_size
from i2i.errors import CheckpointError, ConfigError
from i2i.hashing import sha256_file
from i2i.importers.basicsr import import_basicsr, is_basicsr_file
from i2i.importers.junyanz import import_junyanz, is_junyanz_state_dict
from i2i.importers.torch_file import load_torch_file
from i2i.manifests import load_records
from i2i.statefile import is_checkpoint, load_checkpoint, read_metadata

EXPORT_FORMAT = "i2i-model"
LOCK_NAME = "i2i.lock.json"
_WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")


@dataclass
class ModelInfo:
    """What inference needs to know about a loaded net besides its weights."""

    name: str  # registry name of the architecture
    args: dict[str, Any]  # its constructor arguments
    value_range: tuple[float, float] = (-1.0, 1.0)  # pixel range the net takes and gives
    source: str = ""  # "i2i" or the reference format
    extra: dict[str, Any] = field(default_factory=dict)
    # What the net does, which decides the inference tool that runs it: "translate" (image -> image of the
    # same size), "upscale" (image -> image ``scale`` times larger), "text2image" or "generate" (noise or
    # labels -> image), or "discriminate" (a discriminator: image -> logits, nothing to run it for).
    # Methods put it in their specs; older checkpoints get it from the net itself.
    task: str = "translate"

    @property
    def scale(self) -> int:
        """How many times larger the output is than the input (1 for everything but upscalers)."""
        return int(self.args.get("scale", 1)) if self.task == "upscale" else 1


def task_of(model: nn.Module) -> str:
    """The task of a net whose checkpoint does not say: from the attributes its family sets."""
    declared = getattr(model, "task", None)  # discriminators declare theirs: no inference tool runs them
    if isinstance(declared, str):
        return declared
    if hasattr(model, "scale"):  # the SR families, x1 (denoising) RRDBNet included
        return "upscale"
    if hasattr(model, "latent_dim"):
        return "generate"
    return "translate"


def _load_i2i(path: Path, net: str | None, ema: bool) -> tuple[nn.Module, ModelInfo]:
    specs = load_checkpoint(path, prefix="specs")
    name = net or next(iter(specs))
    if name not in specs:
        raise CheckpointError(f"{path}: no net {name!r} in this checkpoint; it has {', '.join(specs)}")
    spec = specs[name]
    model = nets.build(spec["name"], **spec["args"])
    state = None
    if ema:
        try:
            state = load_checkpoint(path, prefix=f"ema/{name}")
        except CheckpointError:
            state = None  # the run kept no EMA of this net
    if state is None:
        state = load_checkpoint(path, prefix=f"nets/{name}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # keys or shapes differ from the saved architecture
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"{path}: the weights of net {name!r} do not match its saved architecture "
            f"{spec['name']!r} ({' '.join(line.strip() for line in first[:3])})"
        ) from exc
    info = ModelInfo(
        spec["name"],
        dict(spec["args"]),
        tuple(spec.get("value_range", (-1, 1))),
        "i2i",
        # What else the method recorded for inference, e.g. a text-to-image generator's text encoder.
        {k: v for k, v in spec.items() if k not in ("name", "args", "value_range", "task")},
        task=spec.get("task") or task_of(model),
    )
    return model, info


def _load_pth(path: Path) -> tuple[nn.Module, ModelInfo]:
    obj = load_torch_file(path)
    if is_basicsr_file(obj):
        # BasicSR / Real-ESRGAN nets work in [0, 1], the junyanz ones in [-1, 1].
        importer, source, value_range = import_basicsr, "basicsr", (0.0, 1.0)
    elif isinstance(obj, dict) and is_junyanz_state_dict(obj):
        importer, source, value_range = import_junyanz, "junyanz", (-1.0, 1.0)
    else:
        raise CheckpointError(
            f"{path}: unknown weights format; expected an i2i checkpoint (.safetensors), a "
            "pytorch-CycleGAN-and-pix2pix state_dict or a BasicSR/Real-ESRGAN params file (.pth)"
        )
    try:
        imported = importer(obj)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    model = nets.build(imported.name, **imported.kwargs)
    try:
        model.load_state_dict(imported.state_dict, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: weights do not fit the detected {imported.name}: {detail}") from exc
    return model, ModelInfo(imported.name, dict(imported.kwargs), value_range, source, task=task_of(model))


def load_model_with_info(
    path: str | Path, *, net: str | None = None, ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelInfo]:
    """Like :func:`load_model`, also returning the architecture and value range."""
    path, entry = _resolve(path)
    if entry is not None:
        _check_arch_available(entry)
        path = download_weights(entry)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        # A .safetensors file that is not a readable i2i checkpoint gets the precise reason from the reader
        # (truncated, corrupt, foreign safetensors) rather than "unknown format".
        if _is_exported(path):
            model, info = _load_exported(path)
        elif is_checkpoint(path) or path.suffix.lower() == ".safetensors":
            model, info = _load_i2i(path, net, ema)
        elif path.suffix.lower() in (".pth", ".pt", ".ckpt", ".bin"):
            model, info = _load_pth(path)
        else:
            raise CheckpointError(
                f"{path}: not an i2i checkpoint (.safetensors written by i2i train) nor a .pth weights file"
            )
    except ConfigError as exc:
        raise CheckpointError(f"{path}: the saved architecture cannot be built: {exc}") from exc
    if entry is not None:
        _check_matches_entry(path, entry, info)
    return model.to(device).eval(), info


def load_model(
    path: str | Path, *, net: str | None = None, ema: bool = True, device: str | torch.device = "cpu"
) -> nn.Module:
    """Load a network for inference, in eval mode, detecting the format and architecture.

    Args:
        path: A registry name (``"horse2zebra"``; see ``i2i weights list``), an i2i checkpoint or exported
            model (``.safetensors``), or a reference ``.pth`` file. A name is downloaded once into
            :func:`weights_dir` and verified before it is loaded.
        net: Which net of an i2i checkpoint (``"g"``, ``"d"``...); default: its generator.
        ema: Prefer the EMA weights when the checkpoint has them.
        device: Where to put the model.

    Raises:
        CheckpointError: a missing, corrupt, unsafe or unrecognised file; an unknown name (close names are
            listed); a registered model whose architecture this version of i2i does not have.
        DownloadError: the weights could not be downloaded or did not verify.

    Example:
        >>> g = load_model("horse2zebra")  # doctest: +SKIP
        >>> g = load_model("runs/demo/checkpoints/step_00000600.safetensors")  # doctest: +SKIP
        >>> y = g(torch.rand(1, 3, 256, 256) * 2 - 1)  # doctest: +SKIP
    """
    return load_model_with_info(path, net=net, ema=ema, device=device)[0]


def describe_model(path: str | Path, *, net: str | None = None) -> ModelInfo:
    """The :class:`ModelInfo` of a model file (its task, architecture, value range), cheaply.

    Exported models and i2i checkpoints are described from their header, without reading a tensor; files
    whose header does not say (``.pth``, checkpoints older than the ``task`` field) are loaded. Registry
    names are not accepted: a :class:`WeightsEntry` describes those without a download.

    Raises:
        CheckpointError: as :func:`load_model_with_info`.
    """
    path = Path(path)
    if _is_exported(path):
        config = json.loads(read_metadata(path)["config"])
        if config.get("task"):
            known = ("format", "arch", "args", "value_range", "source", "task")
            extra = {k: v for k, v in config.items() if k not in known}
            args, value_range = dict(config["args"]), tuple(config["value_range"])
            return ModelInfo(config["arch"], args, value_range, "i2i", extra, task=config["task"])
    elif is_checkpoint(path):
        specs = load_checkpoint(path, prefix="specs")
        spec = specs.get(net or next(iter(specs)), {})
        if spec.get("task"):
            extra = {k: v for k, v in spec.items() if k not in ("name", "args", "value_range", "task")}
            value_range = tuple(spec.get("value_range", (-1, 1)))
            return ModelInfo(spec["name"], dict(spec["args"]), value_range, "i2i", extra, task=spec["task"])
    return load_model_with_info(path, net=net)[1]


# ----------------------------------------------------------------------------- the weights registry


@dataclass(frozen=True)
class WeightsEntry:
    """Pretrained weights (a record of ``i2i/manifests/weights.json``), in the spirit of torchvision's.

    Attributes:
        name: Registry name (``horse2zebra``, ``pix2pix_edges2shoes``, ``RealESRGAN_x4plus``).
        title: One line on what the model does.
        method: ``cyclegan``, ``pix2pix`` or ``real-esrgan``.
        task: ``unpaired translation``, ``paired translation``, ``super-resolution x4``...
        file: File name in the cache.
        urls: Primary URL, then mirrors.
        format: ``junyanz`` (bare state dict) or ``basicsr`` (``{'params': ..., 'params_ema': ...}``).
        arch: The i2i network (``nets.build`` name) the weights load into; ``arch_args`` its arguments.
        reference_arch: The same network as the reference code constructs it.
        value_range: Pixel range the net takes and gives: ``(-1, 1)`` or ``(0, 1)``.
        dataset: What it was trained on (a dataset registry name where there is one).
        license: Terms of use of the weights.
        recipe: How it was trained (an i2i recipe, or the reference command).
        source: Where the record comes from.
        sha256: Published digest, or ``None`` (trust on first use, recorded in the cache's lock file).
        sha256_status: ``confirmed`` (pinned by two independent projects) or ``none``.
        metrics: Reported metrics, if any (name -> value).
    """

    name: str
    title: str
    method: str
    task: str
    file: str
    urls: tuple[str, ...]
    format: str
    arch: str
    arch_args: dict[str, Any]
    reference_arch: str
    value_range: tuple[float, float]
    dataset: str
    license: str
    recipe: str
    source: str
    aliases: tuple[str, ...] = ()
    sha256: str | None = None
    sha256_status: str = "none"
    size: int | None = None
    approx_size: int | None = None
    allow_http: bool = False
    scale: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def remote(self) -> Remote:
        """The file to download."""
        return Remote(self.file, self.urls, self.sha256, self.size, self.allow_http)

    @property
    def arch_title(self) -> str:
        """The reference class name (``RRDBNet``), for messages."""
        return self.reference_arch.split("(")[0] or self.arch

    @property
    def loadable(self) -> bool:
        """Whether this version of i2i has the architecture the weights load into."""
        return self.arch in nets.list()


@functools.cache
def weights_entries() -> dict[str, WeightsEntry]:
    """All registered weights by name, in manifest order."""
    return load_records("weights.json", "weights", WeightsEntry)


def find_weights(name: str) -> WeightsEntry | None:
    """The entry called ``name`` (or with that alias), or ``None``."""
    entries = weights_entries()
    if name in entries:
        return entries[name]
    return next((e for e in entries.values() if name in e.aliases), None)


def get_weights(name: str) -> WeightsEntry:
    """The entry called ``name``.

    Raises:
        CheckpointError: unknown name; the message lists close names.
    """
    entry = find_weights(name)
    if entry is None:
        names = [n for e in weights_entries().values() for n in (e.name, *e.aliases)]
        close = difflib.get_close_matches(name, names, n=4, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise CheckpointError(
            f"{name!r} is neither a file nor a registered model; {hint}`i2i weights list` shows the models"
        )
    return entry


def i2i_home() -> Path:
    """i2i's cache folder: ``$I2I_HOME``, else ``$XDG_CACHE_HOME/i2i``, else ``~/.cache/i2i``.

    ``export I2I_HOME=$PWD`` keeps downloaded weights in the checkout's ``weights/`` folder.
    """
    if os.environ.get("I2I_HOME"):
        return Path(os.environ["I2I_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "i2i"


def weights_dir() -> Path:
    """Where downloaded weights are cached: ``i2i_home() / "weights"``."""
    return i2i_home() / "weights"


def download_weights(
    name: str | WeightsEntry, folder: str | Path | None = None, *, quiet: bool = False, **fetch_options: Any
) -> Path:
    """Download a registry file into ``folder`` (default :func:`weights_dir`) once, verified.

    A cached file is checked against its digest and returned without network access. Files with no
    published digest are trusted on first use (digest recorded in ``<folder>/i2i.lock.json``).

    Raises:
        CheckpointError: unknown name.
        DownloadError: every URL failed, or the file did not verify.
    """
    entry = name if isinstance(name, WeightsEntry) else get_weights(name)
    folder = Path(folder) if folder is not None else weights_dir()
    return fetch(entry.remote, folder, lock=DigestLock(folder / LOCK_NAME), quiet=quiet, **fetch_options)


def _resolve(path: str | Path) -> tuple[Path, WeightsEntry | None]:
    """A path, or a registry entry for a name that is not an existing path."""
    if isinstance(path, Path) or Path(path).exists():
        return Path(path), None
    entry = find_weights(path)
    if entry is not None:
        return Path(path), entry
    if "/" not in path and "\\" not in path and Path(path).suffix.lower() not in _WEIGHT_SUFFIXES:
        get_weights(path)  # raises, listing close names
    return Path(path), None


def _check_arch_available(entry: WeightsEntry) -> None:
    if entry.arch not in nets.list():
        raise CheckpointError(
            f"{entry.name} needs the {entry.arch_title} architecture ({entry.arch!r}), not available in this "
            "version of i2i; its weights can still be downloaded (`i2i weights download "
            f"{entry.name}`), but not loaded yet"
        )


def _check_matches_entry(path: Path, entry: WeightsEntry, info: ModelInfo) -> None:
    family = entry.arch == info.name or entry.arch.startswith(f"{info.name}_")
    wrong = {k: (v, info.args[k]) for k, v in entry.arch_args.items() if k in info.args and info.args[k] != v}
    if not family or wrong:
        raise CheckpointError(
            f"{path}: holds a {info.name} network with {info.args}, but {entry.name} is registered as "
            f"{entry.arch} with {entry.arch_args}; delete the file and download it again"
        )
    info.extra.update(registry=entry.name, task=entry.task, dataset=entry.dataset, license=entry.license)


def verify_weights(path: str | Path, name: str | None = None) -> tuple[bool | None, str]:
    """Check a weights file against the registry and that it loads without running code.

    The entry is ``name``'s, else the one with the file's digest or file name. The expected digest is the
    published one, else the one recorded on first download (in the file's folder or the cache).

    Returns:
        ``(True, report)`` verified; ``(False, report)`` digest mismatch or unsafe file; ``(None, report)``
        nothing to compare against.

    Raises:
        CheckpointError: the file does not exist; unknown ``name``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    digest = sha256_file(path)
    entries = list(weights_entries().values())
    if name:
        entry = get_weights(name)
    else:
        by_digest = [e for e in entries if e.sha256 == digest]
        entry = (by_digest or [e for e in entries if e.file == path.name] or [None])[0]
    lines = [f"{path}: sha256 {digest}, {format_size(path.stat().st_size)}"]
    ok: bool | None = None
    if entry is None:
        lines.append("  not a registry file: no digest to compare against")
    else:
        locks = (DigestLock(path.parent / LOCK_NAME), DigestLock(weights_dir() / LOCK_NAME))
        recorded = next((r["sha256"] for r in (lock.get(entry.file) for lock in locks) if r), None)
        expected = entry.sha256 or recorded
        how = "published digest" if entry.sha256 else "digest recorded on first download"
        if expected is None:
            lines.append(f"  {entry.name}: no published digest and none recorded yet: nothing to compare")
        else:
            ok = digest == expected
            verdict = "matches" if ok else f"DOES NOT MATCH (expected {expected})"
            lines.append(f"  {entry.name}: {verdict} the {how}")
    if path.suffix.lower() in (".pth", ".pt", ".ckpt", ".bin"):
        try:
            load_torch_file(path)
            lines.append("  safe to load: plain tensors only (read with weights_only=True)")
        except CheckpointError as exc:
            ok = False
            lines.append(f"  UNSAFE or unreadable: {exc}")
    return ok, "\n".join(lines)


# ----------------------------------------------------------------------------- export (safetensors + JSON)


def export_model(model: nn.Module, info: ModelInfo, out: str | Path, **provenance: Any) -> Path:
    """Write ``model`` as ``out`` (a plain safetensors state dict) plus ``out.json`` (its config).

    The config (architecture, arguments, value range, provenance) is also stored in the safetensors
    header, so :func:`load_model` needs only the one file; the JSON copy is for people and other tools.
    Both are written atomically.
    """
    out = Path(out)
    if out.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{out}: exported models are .safetensors files; name the output *.safetensors")
    config = {
        "format": EXPORT_FORMAT,
        "arch": info.name,
        "args": info.args,
        "value_range": list(info.value_range),
        "source": info.source,
        "task": info.task,
        **info.extra,  # e.g. the text encoder a text-to-image generator needs
        **provenance,
    }
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        tmp_model, tmp_json = Path(tmp) / out.name, Path(tmp) / "config.json"
        save_file(tensors, tmp_model, metadata={"format": EXPORT_FORMAT, "config": json.dumps(config)})
        config["sha256"] = sha256_file(tmp_model)
        tmp_json.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(tmp_model, out)
        os.replace(tmp_json, out.with_suffix(".json"))
    return out


def convert_weights(source: str | Path, out: str | Path, *, net: str | None = None) -> Path:
    """Convert a reference ``.pth``, an i2i checkpoint or a registry name to an exported model."""
    model, info = load_model_with_info(source, net=net)
    origin = Path(source)
    provenance = {"converted_from": origin.name}
    if origin.is_file():
        provenance["source_sha256"] = sha256_file(origin)
    return export_model(model, info, out, **provenance)


def _is_exported(path: Path) -> bool:
    if path.suffix.lower() != ".safetensors":
        return False
    try:
        return read_metadata(path).get("format") == EXPORT_FORMAT
    except CheckpointError:
        return False


def _load_exported(path: Path) -> tuple[nn.Module, ModelInfo]:
    config = json.loads(read_metadata(path)["config"])
    model = nets.build(config["arch"], **config["args"])
    try:
        model.load_state_dict(load_file(path), strict=True)
    except (RuntimeError, SafetensorError, OSError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: weights do not match the saved architecture ({first})") from exc
    known = ("format", "arch", "args", "value_range", "source", "task")
    extra = {k: v for k, v in config.items() if k not in known}
    task = config.get("task") or task_of(model)
    return model, ModelInfo(
        config["arch"], dict(config["args"]), tuple(config["value_range"]), "i2i", extra, task=task
    )


# ----------------------------------------------------------------------------- listing


def _verification(entry: WeightsEntry, lock: DigestLock) -> str:
    if entry.sha256_status == "confirmed":
        return "sha256, 2 sources"
    if entry.sha256:
        return "sha256, 1 source"
    text = "first use: recorded" if lock.get(entry.file) else "first use: not yet"
    return text + (", http" if entry.allow_http else "")


def format_weights_table() -> str:
    """The ``i2i weights list`` table: every entry with size, verification, cache state and license."""
    folder = weights_dir()
    lock = DigestLock(folder / LOCK_NAME)
    available = set(nets.list())
    rows = [("NAME", "METHOD", "ARCH", "SIZE", "VERIFIED", "CACHED", "LICENSE")]
    for e in weights_entries().values():
        size = format_size(e.size) if e.size else f"~{format_size(e.approx_size)}" if e.approx_size else "?"
        arch = e.arch if e.arch in available else f"{e.arch} (not yet)"
        cached = "yes" if (folder / e.file).is_file() else "-"
        rows.append((e.name, e.method, arch, size, _verification(e, lock), cached, e.license))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:6], widths, strict=True)) + "  " + row[6] for row in rows
    ]
    lines += [
        "",
        f"Cache: {folder} (set I2I_HOME to move it). `i2i weights info NAME` for details.",
        "VERIFIED: sha256 pinned by independent sources; 'first use' = no published digest: the digest of",
        f"the first download is recorded in {folder / LOCK_NAME} and later downloads must match it;",
        "'http' = the host serves plain http only. '(not yet)': this version of i2i cannot load it yet.",
    ]
    return "\n".join(lines)


def format_weights_info(name: str) -> str:
    """Everything about one entry (``i2i weights info NAME``)."""
    e = get_weights(name)
    folder = weights_dir()
    recorded = DigestLock(folder / LOCK_NAME).get(e.file)
    digest = e.sha256 or (recorded or {}).get("sha256") or "none published, none recorded yet"
    size = format_size(e.size) if e.size else f"~{format_size(e.approx_size)}"
    lines = [
        f"{e.name}: {e.title}",
        f"  method:      {e.method} ({e.task})",
        f"  arch:        {e.arch} {json.dumps(e.arch_args)}"
        + ("" if e.arch in nets.list() else "  [not available in this version]"),
        f"  reference:   {e.reference_arch}",
        f"  value range: [{e.value_range[0]:g}, {e.value_range[1]:g}]",
        f"  dataset:     {e.dataset}",
        f"  recipe:      {e.recipe}",
        f"  license:     {e.license}",
        f"  size:        {size}",
        f"  verified:    {_verification(e, DigestLock(folder / LOCK_NAME))}",
        f"  sha256:      {digest}",
    ]
    lines += [f"  url:         {url}" for url in e.urls]
    if e.aliases:
        lines.append(f"  aliases:     {', '.join(e.aliases)}")
    if e.metrics:
        lines.append("  metrics:     " + ", ".join(f"{k} {v}" for k, v in e.metrics.items()))
    lines.append(f"  source:      {e.source}")
    lines.append(f"  cached:      {folder / e.file if (folder / e.file).is_file() else 'no'}")
    return "\n".join(lines)
