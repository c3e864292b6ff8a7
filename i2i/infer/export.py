"""Export a generator to ONNX, TorchScript or a torch.export program, with dynamic batch, height and
width, checked against eager.

``i2i export CKPT --format onnx|torchscript|pt2`` loads a generator the way inference does (an i2i
checkpoint, an exported ``.safetensors`` model, a reference ``.pth`` or a registry name), exports it, then
runs the exported file (onnxruntime, ``torch.jit.load`` or ``torch.export.load``) and the eager net on
inputs of two sizes other than the one it was traced at, and fails unless every output agrees within
tolerance. Both the pixel range and the architecture travel inside the file (ONNX
``metadata_props["i2i"]``; extra file ``i2i.json`` in TorchScript and ``.pt2`` archives), since a user of
the file needs the range to feed it.

``pt2`` (``torch.export.save``) is PyTorch's successor to TorchScript, which torch 2.10+ deprecates; it
loads in Python with ``torch.export.load(path).module()`` and is what AOTInductor compiles for C++.
TorchScript stays for the runtimes that still read it (LibTorch, older PyTorch Mobile).

Supported: every image-to-image net (``unet*``, ``resnet*``, ``encoder_decoder``) and super-resolution net
(``rrdbnet``, ``srvgg_compact``, ``msrresnet`` and the other upscalers); noise- and text-conditioned
generators are not (their inputs are not images).

Example:
    >>> report = export_file("runs/demo/checkpoints/last.safetensors", "g.onnx", fmt="onnx")  # doctest: +SKIP
    >>> report.ok  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from i2i.errors import CheckpointError, ConfigError
from i2i.infer.translate import _input_channels

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript", "pt2")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "pt2": ".pt2"}
EXPORTABLE_TASKS = ("translate", "upscale")
Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ParityCheck:
    """The exported file against the eager net on one input shape."""

    shape: tuple[int, ...]
    max_abs_diff: float
    ok: bool


@dataclass
class ExportReport:
    """Where the export went and how its parity checks came out."""

    path: Path
    format: str
    net: str
    checks: list[ParityCheck] = field(default_factory=list)
    atol: float = 1e-4
    rtol: float = 1e-3

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def _pick_input(model: nn.Module, task: str) -> tuple[int, int]:
    """(channels, multiple) of the net's image input; SR nets that pixel-unshuffle take C / r**2 channels."""
    multiple = int(getattr(model, "multiple", 1))
    channels = _input_channels(model) or 3
    if task == "upscale":
        channels //= multiple**2
    return channels, multiple


def default_sizes(multiple: int, task: str) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """The traced example size and two other sizes to check, all multiples of ``multiple`` and H != W
    (so neither side can be fixed by the tracer, nor tied to the other)."""
    base = max(multiple, 16 if task == "upscale" else 32)
    return (2 * base, 3 * base), [(base, 2 * base), (3 * base, base)]


def _dynamic_image_dims() -> dict[int, Any]:
    from torch.export import Dim

    return {0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC}  # batch, height, width


def _export_onnx(
    model: nn.Module, example: torch.Tensor, path: Path, metadata: str, opset: int | None
) -> None:
    dims = _dynamic_image_dims()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's progress chatter and deprecations of internals
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=["image"],
            output_names=["output"],
            dynamic_shapes=(dims,),
            opset_version=opset,
            verbose=False,
        )
    if program is None:
        raise CheckpointError(f"{path}: the ONNX exporter returned no program")
    program.model.metadata_props["i2i"] = metadata
    program.save(str(path))


def _onnx_runner(path: Path) -> Runner:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            "checking an ONNX export needs onnxruntime: pip install 'i2i[export]' (or just onnxruntime)"
        ) from exc
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, metadata: str) -> None:
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export; tracing also warns that the nets' input-size
        # checks become constants, which is what we want: the traced graph has no Python checks left.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"i2i.json": metadata})


def _torchscript_runner(path: Path) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu")

    @torch.no_grad()
    def run(x: np.ndarray) -> np.ndarray:
        return loaded(torch.from_numpy(x)).numpy()

    return run


def _export_pt2(model: nn.Module, example: torch.Tensor, path: Path, metadata: str) -> None:
    from torch.fx.experimental import _config as shape_config

    # Size-oblivious shapes: otherwise the tracer assumes the U-Net's innermost map (2x3 at the example
    # size) is never 1x1 and the program refuses inputs of exactly the net's multiple.
    with shape_config.patch(backed_size_oblivious=True):
        program = torch.export.export(model, (example,), dynamic_shapes=(_dynamic_image_dims(),))
    torch.export.save(program, str(path), extra_files={"i2i.json": metadata})


def _pt2_runner(path: Path) -> Runner:
    loaded = torch.export.load(str(path)).module()

    @torch.no_grad()
    def run(x: np.ndarray) -> np.ndarray:
        return loaded(torch.from_numpy(x)).numpy()

    return run


def check_parity(
    model: nn.Module,
    run: Runner,
    shapes: Sequence[tuple[int, ...]],
    *,
    low: float,
    high: float,
    atol: float,
    rtol: float,
) -> list[ParityCheck]:
    """Compare ``run`` with the eager ``model`` on random inputs in ``[low, high]`` of each shape.

    An output passes when ``|exported - eager| <= atol + rtol * |eager|`` everywhere.
    """
    generator = torch.Generator().manual_seed(0)
    checks = []
    for shape in shapes:
        x = torch.rand(shape, generator=generator) * (high - low) + low
        with torch.no_grad():
            expected = model(x).numpy()
        try:
            got = run(x.numpy())
        except Exception as exc:  # e.g. a shape guard of the exported program: this size is not supported
            log.warning("the exported file failed on input %s: %s", tuple(shape), str(exc).splitlines()[0])
            checks.append(ParityCheck(tuple(shape), float("inf"), False))
            continue
        if got.shape != expected.shape:
            checks.append(ParityCheck(tuple(shape), float("inf"), False))
            continue
        diff = np.abs(got - expected)
        checks.append(
            ParityCheck(tuple(shape), float(diff.max()), bool(np.all(diff <= atol + rtol * np.abs(expected))))
        )
    return checks


def export_model(
    model: nn.Module,
    path: str | Path,
    fmt: str,
    *,
    name: str = "net",
    task: str = "translate",
    value_range: Sequence[float] = (-1.0, 1.0),
    opset: int | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    check_sizes: Sequence[tuple[int, int]] | None = None,
) -> ExportReport:
    """Export ``model`` (an image-to-image or super-resolution net) to ``path`` and check parity.

    Args:
        model: The net; exported in eval mode on the CPU, in fp32.
        path: Output file.
        fmt: ``onnx``, ``torchscript`` or ``pt2``.
        name: Architecture name, stored in the file's metadata.
        task: ``translate`` or ``upscale``.
        value_range: Pixel range the net takes and gives (stored in the metadata; the checks' inputs).
        opset: ONNX opset (default: the exporter's).
        atol: Absolute tolerance of the parity check.
        rtol: Relative tolerance of the parity check.
        check_sizes: (H, W) sizes to check at (default: two sizes other than the traced one).

    Returns:
        An :class:`ExportReport`; ``report.ok`` says whether every check passed.

    Shape:
        The exported graph takes (B, C, H, W) float32 with any B and any H, W that are multiples of the net's
        ``multiple`` (e.g. 256 for ``unet_256``), and gives (B, C_out, H * scale, W * scale).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose {' or '.join(FORMATS)}")
    if task not in EXPORTABLE_TASKS:
        raise ConfigError(
            f"{name} is a {task} model: export takes image-to-image and super-resolution nets, whose input "
            "is an image of any size; noise- and text-conditioned generators are not supported"
        )
    path = Path(path)
    model = model.float().cpu().eval()
    channels, multiple = _pick_input(model, task)
    (height, width), sizes = default_sizes(multiple, task)
    if check_sizes:
        sizes = list(check_sizes)
    low, high = float(value_range[0]), float(value_range[1])
    example = torch.rand(2, channels, height, width) * (high - low) + low
    metadata = json.dumps(
        {
            "arch": name,
            "task": task,
            "value_range": [low, high],
            "multiple": multiple,
            "in_channels": channels,
            "scale": int(getattr(model, "scale", 1)),
            "layout": "NCHW float32",
        }
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the output folder ({exc.strerror or exc})") from exc
    log.info("exporting %s to %s (%s)", name, path, fmt)
    try:
        if fmt == "onnx":
            _export_onnx(model, example, path, metadata, opset)
        elif fmt == "pt2":
            _export_pt2(model, example, path, metadata)
        else:
            _export_torchscript(model, example, path, metadata)
    except (ConfigError, CheckpointError):
        raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the export ({exc.strerror or exc})") from exc
    except Exception as exc:  # the exporters raise many types; the user needs the one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot export {name} to {fmt}: {first}") from exc
    run = {"onnx": _onnx_runner, "torchscript": _torchscript_runner, "pt2": _pt2_runner}[fmt](path)
    shapes = [(1 + i % 2, channels, h, w) for i, (h, w) in enumerate(sizes)]  # batch sizes 1, 2, 1, ...
    checks = check_parity(model, run, shapes, low=low, high=high, atol=atol, rtol=rtol)
    return ExportReport(path, fmt, name, checks, atol, rtol)


def default_output(source: str | Path, fmt: str) -> Path:
    """``<source stem><suffix>`` beside a source file, or in the current folder for a registry name."""
    source_path = Path(source)
    stem = source_path.name.removesuffix(".safetensors").removesuffix(".pth")
    folder = source_path.parent if source_path.is_file() else Path(".")
    return folder / f"{stem}{SUFFIXES[fmt]}"


def export_file(
    source: str | Path,
    output: str | Path | None = None,
    *,
    fmt: str = "onnx",
    net: str | None = None,
    **options: Any,
) -> ExportReport:
    """Load a generator as inference does (checkpoint, ``.pth``, registry name) and :func:`export_model` it.

    Args:
        source: An i2i checkpoint, exported ``.safetensors``, reference ``.pth`` or registry name.
        output: The file to write (default: :func:`default_output`).
        fmt: ``onnx``, ``torchscript`` or ``pt2``.
        net: Which net of an i2i checkpoint (default: its generator).
        **options: Passed to :func:`export_model` (``opset``, ``atol``, ``rtol``, ``check_sizes``).
    """
    from i2i.hub import load_model_with_info

    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose {' or '.join(FORMATS)}")
    model, info = load_model_with_info(source, net=net)
    target = Path(output) if output else default_output(source, fmt)
    return export_model(
        model, target, fmt, name=info.name, task=info.task, value_range=info.value_range, **options
    )
