"""What ``i2i eval fid|kid|lpips|translate|sr`` do (the parser lives in :mod:`i2i.cli`): run the evaluation,
print the results as JSON on stdout, and also write them to ``--json FILE`` when asked.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from i2i.config import EvalConfig
from i2i.errors import ConfigError


def _options(args: argparse.Namespace, metrics: tuple[str, ...]) -> EvalConfig:
    """The metric settings shared by every ``i2i eval`` command, from its flags."""
    return EvalConfig(
        metrics=metrics,
        batch_size=getattr(args, "batch_size", 50),
        inception_weights=getattr(args, "inception_weights", None) or "",
        inception_input=getattr(args, "inception_input", "pytorch-fid"),
        kid_subsets=getattr(args, "kid_subsets", 100),
        kid_subset_size=getattr(args, "kid_subset_size", 1000),
        lpips_net=getattr(args, "lpips_net", "alex"),
        lpips_weights=getattr(args, "lpips_weights", None) or "",
        num_samples=getattr(args, "num", 0) or 0,
    )


def _metric_list(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _jsonable(value: Any) -> Any:
    """Results as strict JSON: infinite PSNR (identical images) becomes the string ``"inf"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_json(results: dict[str, Any], path: str | Path) -> Path:
    """Write ``results`` to ``path`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(_jsonable(results), indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def run_eval(args: argparse.Namespace) -> int:
    """Run the ``i2i eval`` sub-command ``args.what`` and print its JSON results."""
    from i2i.device import select_device

    device = select_device(args.device) if hasattr(args, "device") else None
    if args.what in ("fid", "kid"):
        from i2i.metrics.folder_eval import evaluate_distributions

        metrics = ("fid", "kid") if args.what == "kid" and args.with_fid else (args.what,)
        results = evaluate_distributions(
            args.real, args.fake, _options(args, metrics), device=device, use_cache=not args.no_cache
        )
    elif args.what == "lpips":
        from i2i.metrics.folder_eval import evaluate_paired_folders

        metrics = ("lpips", "psnr", "ssim") if args.with_psnr else ("lpips",)
        results = evaluate_paired_folders(args.pred, args.gt, _options(args, metrics), device=device)
    elif args.what == "translate":
        from i2i.metrics.translate_eval import evaluate_translation

        results = evaluate_translation(
            args.checkpoint,
            args.data,
            _options(args, _metric_list(args.metrics) or ()),  # none given: chosen by the kind of data
            split=args.split,
            direction=args.direction,
            pairing=args.pairing,
            size=args.size,
            output=args.output,
            device=args.device,
            precision=args.precision,
            use_cache=not args.no_cache,
        )
    elif args.what == "sr":
        try:
            from i2i.metrics.sr_eval import evaluate_sr_folders
        except ImportError as exc:  # pragma: no cover - the SR evaluation ships with i2i
            raise ConfigError("i2i eval sr is not available in this version of i2i") from exc

        y_channel = not args.rgb
        results = evaluate_sr_folders(args.pred, args.gt, crop_border=args.crop_border, y_channel=y_channel)
    else:  # argparse only lets the choices through
        raise ConfigError(f"unknown evaluation {args.what!r}")
    print(json.dumps(_jsonable(results), indent=2))
    if args.json:
        write_json(results, args.json)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``i2i eval`` sub-commands and their flags."""
    actions = parser.add_subparsers(dest="what", required=True)

    def common(q: argparse.ArgumentParser, *, inception: bool = True) -> None:
        q.add_argument("--json", metavar="FILE", default=None, help="also write the results to FILE")
        q.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
        q.add_argument("--batch-size", type=int, default=50, help="images per forward pass (50)")
        if inception:
            q.add_argument(
                "--inception-weights",
                metavar="PATH",
                default=None,
                help="local pt_inception-2015-12-05-6726825d.pth (default: download once, verified, cached)",
            )
            q.add_argument(
                "--inception-input",
                choices=["pytorch-fid", "torch-fidelity"],
                default="pytorch-fid",
                help="reproduce the resize/scaling of pytorch-fid (default; the CUT paper's FID) or "
                "torch-fidelity (= the original TensorFlow FID)",
            )
            q.add_argument("--no-cache", action="store_true", help="do not read or write cached statistics")

    def kid_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("--kid-subsets", type=int, default=100, help="KID subsets to average (100)")
        q.add_argument("--kid-subset-size", type=int, default=1000, help="images per subset (1000, capped)")

    q = actions.add_parser("fid", help="FID between a folder of generated images and real ones")
    q.add_argument("--real", required=True, help="folder of real images, or a pytorch-fid .npz stats file")
    q.add_argument("--fake", required=True, help="folder of generated images")
    common(q)
    q = actions.add_parser("kid", help="KID (unbiased, for small sets) between generated and real images")
    q.add_argument("--real", required=True, help="folder of real images")
    q.add_argument("--fake", required=True, help="folder of generated images")
    q.add_argument("--with-fid", action="store_true", help="report FID too (same features)")
    common(q)
    kid_options(q)
    q = actions.add_parser("lpips", help="LPIPS of each image against its namesake in another folder")
    q.add_argument("--pred", required=True, help="folder of generated images")
    q.add_argument("--gt", required=True, help="folder of targets (paired by file name)")
    q.add_argument("--lpips-net", choices=["alex", "vgg"], default="alex", help="backbone (default alex)")
    q.add_argument("--lpips-weights", metavar="PATH", default=None, help="local torchvision backbone file")
    q.add_argument("--with-psnr", action="store_true", help="report PSNR and SSIM (RGB luma) too")
    common(q, inception=False)
    q = actions.add_parser("translate", help="translate a dataset's test split with a model and measure it")
    q.add_argument("--checkpoint", required=True, help="i2i checkpoint, exported model or reference .pth")
    q.add_argument("--data", required=True, help="dataset folder, e.g. datasets/horse2zebra")
    q.add_argument("--split", default="test", help="split to translate (test)")
    q.add_argument("--direction", choices=["AtoB", "BtoA"], default=None, help="unpaired: which way (AtoB)")
    q.add_argument("--pairing", choices=["auto", "paired", "unpaired"], default="auto")
    q.add_argument(
        "--metrics",
        default=None,
        help="any of fid,kid,lpips,psnr,ssim (default: unpaired fid,kid; paired fid,lpips,psnr,ssim)",
    )
    q.add_argument("--size", type=int, default=256, help="inputs resized to SIZE x SIZE (256); 0 keeps them")
    q.add_argument("--num", type=int, default=0, help="only the first N test images")
    q.add_argument("-o", "--output", default=None, help="also save the translations here (PNG)")
    q.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16", "fp16"])
    common(q)
    kid_options(q)
    q.add_argument("--lpips-weights", metavar="PATH", default=None, help="local torchvision AlexNet file")
    q = actions.add_parser("sr", help="PSNR/SSIM of super-resolved images (Y channel, border crop)")
    q.add_argument("--pred", required=True, help="folder of super-resolved images")
    q.add_argument("--gt", required=True, help="folder of ground-truth HR images (paired by name)")
    q.add_argument("--crop-border", type=int, required=True, help="pixels cut from each side: the scale")
    q.add_argument("--rgb", action="store_true", help="measure RGB instead of the BT.601 luma")
    q.add_argument("--json", metavar="FILE", default=None, help="also write the results to FILE")
