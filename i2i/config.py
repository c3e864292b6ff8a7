"""Typed run configuration: dataclasses, strict YAML loading and ``--set a.b=value`` overrides.

A config is a tree of dataclasses. Loading checks every key and type and names the dotted path of
anything wrong (``train.epochs: expected int, got 'ten'``). The ``model`` section's type depends on
``method``: each method registers its own dataclass with :func:`register_method_config`.

Example:
    >>> cfg = load_config("i2i/configs/demo_pix2pix.yaml", overrides=["train.max_steps=10"])
    >>> cfg.train.max_steps
    10
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from i2i.errors import ConfigError

T = TypeVar("T")

CONFIG_DIR = Path(__file__).parent / "configs"

_METHOD_CONFIGS: dict[str, type] = {}


def register_method_config(name: str) -> Callable[[type[T]], type[T]]:
    """Register the dataclass that types the ``model:`` section of a method's config."""

    def decorator(cls: type[T]) -> type[T]:
        _METHOD_CONFIGS[name] = cls
        return cls

    return decorator


def method_config_class(name: str) -> type:
    """The ``model:`` dataclass for ``method: name`` (imports the methods so they register)."""
    importlib.import_module("i2i.methods")
    if name not in _METHOD_CONFIGS:
        raise ConfigError(f"method: unknown method {name!r}; available: {', '.join(sorted(_METHOD_CONFIGS))}")
    return _METHOD_CONFIGS[name]


@dataclass
class NetConfig:
    """A backbone by registry name plus its constructor arguments (see ``i2i.nets.list()``)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    """Adam settings; the reference GAN recipes use lr 2e-4 and betas (0.5, 0.999)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0


@dataclass
class SyntheticDataConfig:
    """The procedurally generated paired dataset (label maps -> textured scenes)."""

    num_train: int = 400
    num_test: int = 16
    size: int = 64


@dataclass
class SRDataConfig:
    """Super-resolution data (method srgan): LR images made from HR crops on the fly (``i2i.data.sr``).

    The HR crop side is ``data.crop_size``, the factor ``model.scale``; ranges are ``[low, high]``, sampled
    per image, ``[0, 0]`` for none.
    """

    blur_sigma: tuple[float, float] = (0.0, 0.0)  # Gaussian blur of the HR image before downscaling
    noise_sigma: tuple[float, float] = (0.0, 0.0)  # Gaussian noise on the LR image, in 8-bit levels
    jpeg_quality: tuple[int, int] = (0, 0)  # JPEG compression of the LR image (1-100)
    repeats: int = 1  # random crops per HR image per epoch (BasicSR's dataset_enlarge_ratio)
    lr_split: str = ""  # ready-made validation LR images under data.root, e.g. DIV2K_valid_LR_bicubic/X4
    val_crop_size: int = 256  # validation on centred HR crops of this side (whole images: i2i eval sr)
    val_images: int = 10  # validation images used for PSNR/SSIM during training (0: all)


@dataclass
class DataConfig:
    """Where the images come from and how they are augmented."""

    # folder | synthetic; method gan also: digits | mnist | fashion_mnist | class_folders (i2i.data.labelled);
    # method text2image: folder = images with metadata.jsonl or .txt captions (i2i.data.captions),
    # synthetic = captioned coloured shapes (i2i.data.synthetic_captions)
    source: str = "folder"
    root: str = ""
    layout: str = "auto"  # auto | aligned (A|B side by side) | folders (A/ and B/)
    direction: str = "AtoB"  # AtoB | BtoA
    train_split: str = "train"
    test_split: str = "test"
    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"
    flip: bool = True
    serial_batches: bool = False  # unpaired data: pair A[i] with B[i] instead of a random B image
    batch_size: int = 1
    num_workers: int = 2
    on_bad_image: str = "error"  # error (stop, naming the file) | skip (use the next image; count and log)
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    sr: SRDataConfig = field(default_factory=SRDataConfig)


@dataclass
class TrainConfig:
    """The loop: length, LR schedule, precision, EMA, logging and checkpoint cadence."""

    epochs: int = 100  # epochs at the initial learning rate
    epochs_decay: int = 100  # epochs of linear decay to zero after that (reference schedule)
    max_steps: int = 0  # > 0 overrides the length given by epochs; the schedule is stretched to fit
    lr_schedule: str = "linear"  # linear (constant then linear decay) | cosine | constant
    grad_accum: int = 1
    n_critic: int = 1  # discriminator updates per generator update
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    ema_decay: float = 0.0  # 0 disables the EMA of the generator(s)
    log_every: int = 50
    sample_every: int = 500
    save_every: int = 1000
    keep_last: int = 3
    best_metric: str = ""  # keep best.safetensors by a logged term (lower is better) or eval metric; "" off
    max_nonfinite_steps: int = 10  # stop after this many steps in a row with NaN/Inf losses (0: never)
    allow_config_change: bool = False  # resume even if method/model/optim/seed/batch settings changed
    # Speed (README "Performance"); none of these changes the model or the objective.
    channels_last: bool | str = "auto"  # auto (on for CUDA) | true | false: NHWC nets and images
    compile: bool = False  # torch.compile the nets (the first steps are slow while it compiles)
    fused_optimizer: bool = True  # fused Adam kernels (CUDA and CPU); false: torch's default Adam
    conv_autotune: bool = True  # CPU: per conv layer, oneDNN, im2col+GEMM or Winograd, the fastest measured
    cudnn_benchmark: bool = True  # CUDA: cuDNN times its conv algorithms for the input size, keeps the best
    num_threads: int = 0  # CPU intra-op threads; 0 keeps torch's default (one per core)
    malloc_tuning: bool = True  # CPU, Linux: glibc keeps freed memory for reuse (no page faults per step)
    # Several processes (torchrun; README "Multi-GPU"); data.batch_size is per process.
    lr_scaling: str = "none"  # none | linear | sqrt: optim.*.lr times world size (or its square root)
    sync_batchnorm: bool = False  # CUDA: batch-norm statistics over the batches of all processes
    ddp_find_unused_parameters: bool = False  # for methods with nets some of whose weights get no gradient


@dataclass
class EvalConfig:
    """Quality metrics during training (README "Evaluate"); ``i2i eval`` shares the metric settings."""

    every: int = 0  # evaluate every N steps and at the end of training; 0 disables
    source: str = "test"  # test (the held-out split, data.test_split) | folder (eval.folder, like data.root)
    folder: str = ""  # source=folder: the dataset folder to evaluate on
    split: str = ""  # source=folder: its split ("" = data.test_split)
    metrics: tuple[str, ...] = ("fid",)  # fid | kid | lpips | psnr | ssim (paired data) | clip_score
    num_samples: int = 0  # evaluate on the first N held-out images (0 = all)
    batch_size: int = 8
    inception_weights: str = ""  # FID/KID: local pt_inception-2015-12-05-6726825d.pth; "" = verified download
    inception_input: str = "pytorch-fid"  # pytorch-fid | torch-fidelity: whose resize/scaling to reproduce
    kid_subsets: int = 100
    kid_subset_size: int = 1000  # capped at the number of images
    lpips_net: str = "alex"  # alex | vgg
    lpips_weights: str = ""  # LPIPS: local torchvision backbone file ("" = verified download)
    clip_model: str = ""  # clip_score: a local CLIP folder (save_pretrained); never downloaded
    crop_border: int = 0  # PSNR/SSIM: pixels cut from each side (super-resolution: the scale)
    y_channel: bool = True  # PSNR/SSIM on the BT.601 luma (the super-resolution convention)


@dataclass
class Config:
    """A whole run. ``model`` is the method's own dataclass (e.g. ``Pix2PixConfig``)."""

    method: str = "pix2pix"
    name: str = "run"
    output_dir: str = "runs"
    seed: int = 0
    model: Any = None
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    optim: dict[str, OptimizerConfig] = field(
        default_factory=lambda: {"g": OptimizerConfig(), "d": OptimizerConfig()}
    )

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


# ----------------------------------------------------------------------------- typed conversion


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (lists -> tuples, ints -> floats)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{path}: unexpected value {value!r}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp) or (str, Any)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return {_convert(k, key_tp, path): _convert(v, value_tp, f"{path}.{k}") for k, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}: {value!r}")
            return tuple(
                _convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads "1e-4" as a string; accept what Python reads as a number.
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    raise ConfigError(f"{path}: unsupported config type {_type_name(tp)}")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from plain data, rejecting unknown keys and wrong types.

    Args:
        cls: A config dataclass.
        data: A mapping (from YAML), or an instance of ``cls`` (returned as is).
        path: Dotted path of ``data`` in the whole config, used in error messages.

    Raises:
        ConfigError: naming the dotted path of the first bad key or value.
    """
    if isinstance(data, cls):
        return data
    where = path or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = f"{path}.{unknown[0]}" if path else str(unknown[0])
        raise ConfigError(f"{key}: unknown key; valid keys here: {', '.join(names)}")
    kwargs: dict[str, Any] = {}
    if cls is Config:
        method = _convert(data.get("method", Config.method), str, _join(path, "method"))
        hints = {**hints, "model": method_config_class(method)}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            if isinstance(value, dict) and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
                if isinstance(default, dict):  # e.g. optim: giving only `g` keeps the default `d`
                    value = {**config_to_dict(default), **value}
            kwargs[f.name] = _convert(value, hints[f.name], _join(path, f.name))
        elif cls is Config and f.name == "model":
            kwargs["model"] = hints["model"]()
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, f.name)}: required key is missing")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ----------------------------------------------------------------------------- overrides


def parse_value(text: str) -> Any:
    """Parse the value of a ``--set key=value`` override as YAML data (never evaluated as code).

    ``"1e-4"`` gives a float, ``"[0.5, 0.99]"`` a list, ``"true"`` a bool, ``"unet_128"`` a string.
    """
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set value {text!r} is not valid YAML: {exc}") from exc
    if isinstance(value, str):
        try:
            return float(value) if any(c in value.lower() for c in ".en") else int(value)
        except ValueError:
            return value
    return value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to nested plain data (in place) and return it."""
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(
                f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. train.max_steps=100"
            )
        node = data
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[: depth + 1])} is a value, not a section")
            node = child
        node[parts[-1]] = parse_value(text)
    return data


# ----------------------------------------------------------------------------- load / save


def resolve_config_path(path: str | Path) -> Path:
    """A config path as given, or the name of a shipped recipe (``pix2pix_facades``)."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    shipped = CONFIG_DIR / (candidate.name if candidate.suffix else f"{candidate.name}.yaml")
    if shipped.is_file() and (candidate.parent in (Path("."), CONFIG_DIR) or "configs" in candidate.parts):
        return shipped
    recipes = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"{path}: config file not found; give a YAML path or a shipped recipe ({recipes})")


def load_config_data(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into plain data."""
    file = resolve_config_path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping (method:, model:, data:, ...)")
    return data


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    data = load_config_data(path) if path is not None else {}
    try:
        return from_dict(Config, apply_overrides(data, overrides))
    except ConfigError as exc:
        if path is None:
            raise
        raise ConfigError(f"{resolve_config_path(path)}: {exc}") from exc


def config_to_dict(cfg: Any) -> Any:
    """Plain YAML/JSON-ready data (tuples become lists) for a config dataclass."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    return cfg


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from :func:`config_to_dict` output (e.g. read from a checkpoint)."""
    return from_dict(Config, data)


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
