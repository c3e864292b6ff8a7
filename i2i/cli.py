"""The ``i2i`` command line: thin wrappers over the library.

Errors caused by the user (bad config, missing files, corrupt checkpoints) are printed as one line and
exit with status 2; there is no traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from i2i.errors import I2IError


def _cmd_train(args: argparse.Namespace) -> int:
    from i2i.config import load_config
    from i2i.methods import dry_run, train
    from i2i.train import TrainingInterrupted

    overrides = [*args.set, *([f"data.on_bad_image={args.on_bad_image}"] if args.on_bad_image else [])]
    cfg = load_config(args.config, overrides=overrides)
    if args.dry_run:
        result = dry_run(cfg)
        losses = ", ".join(f"{k}={v:.4g}" for k, v in result.last_logs.items())
        print(f"dry run OK: one {cfg.method} step on synthetic data ({losses})")
        return 0
    try:
        result = train(cfg, resume=args.resume)
    except TrainingInterrupted as stop:  # SIGTERM/SIGINT: a checkpoint of this step was saved
        if _torchrun_worker():
            return stop.exit_code
        print(f"i2i: {stop}", file=sys.stderr)
        print(f"checkpoint: {stop.checkpoint}")
        print(f"resume with: {_resume_command(args)}")
        return stop.exit_code
    if _torchrun_worker():
        return 0
    print(f"trained {result.step} steps; run folder: {result.run_dir}")
    print(f"checkpoint: {result.checkpoint}")
    if result.counters:
        print(
            "skipped: " + ", ".join(f"{k.removeprefix('skipped/')}={v}" for k, v in result.counters.items())
        )
    return 0


def _torchrun_worker() -> bool:
    """Whether this is a process other than rank 0 of a torchrun launch (rank 0 alone reports)."""
    import os

    return os.environ.get("RANK", "0") != "0"


def _resume_command(args: argparse.Namespace) -> str:
    """The command that continues an interrupted ``i2i train`` run: the same config and overrides."""
    import shlex

    parts = ["i2i", "train", args.config, *[a for item in args.set for a in ("--set", item)]]
    if args.on_bad_image:
        parts += ["--on-bad-image", args.on_bad_image]
    return shlex.join([*parts, "--resume", "auto"])


def _cmd_data(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from i2i.data.check import check_dataset, format_report

    with tqdm(disable=not sys.stderr.isatty(), unit="image", desc="checking") as bar:
        report = check_dataset(args.root, min_size=args.min_size, on_image=lambda _: bar.update(1))
    print(format_report(report))
    return 0 if report.ok else 1


def _cmd_translate(args: argparse.Namespace) -> int:
    from i2i.infer.translate import Translator

    translator = Translator.from_file(
        args.checkpoint, net=args.net, direction=args.direction, device=args.device, precision=args.precision
    )
    written = translator.translate_files(args.inputs, args.output, batch_size=args.batch_size)
    print(f"translated {len(written)} image(s) into {args.output}")
    return 0


def _print_written(paths: Sequence[object]) -> int:
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_upscale(args: argparse.Namespace) -> int:
    from i2i.infer.upscale import Upscaler

    upscaler = Upscaler.from_file(
        args.weights,
        device=args.device,
        precision=args.precision,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        batch_size=args.batch_size,
    )
    written = upscaler.upscale_files(
        args.inputs, args.output, outscale=args.scale, progress=sys.stderr.isatty() and not args.quiet
    )
    return _print_written(written)


def _cmd_generate(args: argparse.Namespace) -> int:
    from i2i.infer.generate import generate_files

    if args.prompt is not None or args.prompt_to is not None or _is_text_to_image(args.checkpoint):
        return _generate_from_text(args)
    written = generate_files(
        args.checkpoint,
        args.output,
        num=args.num,
        class_index=args.class_index,
        code=args.code,
        interpolation=args.interpolate,
        steps=args.steps,
        arithmetic=args.arithmetic,
        seed=args.seed,
        device=args.device,
    )
    return _print_written(written)


def _is_text_to_image(checkpoint: str) -> bool:
    """Whether a checkpoint file holds a text-to-image generator (read from its header)."""
    from pathlib import Path

    from i2i.hub import describe_model

    return Path(checkpoint).is_file() and describe_model(checkpoint).task == "text2image"


def _generate_from_text(args: argparse.Namespace) -> int:
    from i2i.errors import ConfigError
    from i2i.infer.text2image import text_to_image_files

    given = {"--class": args.class_index, "--code": args.code, "--arithmetic": args.arithmetic}
    noise_only = [flag for flag, value in given.items() if value is not None]
    if noise_only:
        raise ConfigError(f"{noise_only[0]} is for noise-to-image GANs; a text-to-image model takes --prompt")
    written = text_to_image_files(
        args.checkpoint,
        args.output,
        prompt=args.prompt,
        num=args.num,
        seed=args.seed,
        prompt_to=args.prompt_to,
        interpolation=args.interpolate,
        steps=args.steps,
        device=args.device,
    )
    return _print_written(written)


def _cmd_serve(args: argparse.Namespace) -> int:
    from i2i_app.options import settings_from_args
    from i2i_app.server import launch

    launch(settings_from_args(args), block=True)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from i2i.demo import run_demo

    result = run_demo(args.output, overrides=args.set)
    print(f"demo finished in {result.seconds:.0f} s")
    print(f"  held-out L1: model {result.heldout_l1:.3f} vs mean-image baseline {result.baseline_l1:.3f}")
    print(f"  sample grid (input | output | target): {result.samples}")
    print(f"  translated held-out images:            {result.translated_dir}")
    print(f"  checkpoint:                            {result.checkpoint}")
    print(f"  training samples over time:            {result.run_dir / 'samples'}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from i2i import nets
    from i2i.config import CONFIG_DIR

    print("recipes:  " + ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))))
    print("networks: " + ", ".join(nets.list()))
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from i2i.data import download

    if args.action == "list":
        print(download.format_dataset_table(args.root))
    elif args.action == "info":
        print(download.format_dataset_info(args.name, args.root))
    elif args.action == "convert-captions":
        from i2i.data.caption_convert import convert_captions

        report = convert_captions(
            args.images,
            args.text,
            args.output,
            test_classes=args.test_classes,
            test_fraction=args.test_fraction,
        )
        print(report.summary())
    else:
        for name in args.names:
            path = download.download_dataset(
                name, args.root, keep_archive=args.keep_archive, quiet=args.quiet
            )
            print(f"{name}: ready in {path}")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from i2i import hub

    if args.action == "list":
        print(hub.format_weights_table())
    elif args.action == "info":
        print(hub.format_weights_info(args.name))
    elif args.action == "download":
        print(f"{args.name}: {hub.download_weights(args.name, args.dir, quiet=args.quiet)}")
    elif args.action == "verify":
        ok, report = hub.verify_weights(args.path, args.name)
        print(report)
        return 0 if ok else 1
    else:
        out = hub.convert_weights(args.path, args.output, net=args.net)
        print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from i2i.metrics.command import run_eval

    return run_eval(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from i2i.bench.command import run

    return run(args)


def _cmd_export(args: argparse.Namespace) -> int:
    from i2i.infer.export import export_file

    options = {"opset": args.opset, "atol": args.atol, "rtol": args.rtol}
    report = export_file(args.checkpoint, args.output, fmt=args.format, net=args.net, **options)
    print(f"wrote {report.path} ({report.format}, {report.net}; dynamic batch, height and width)")
    for check in report.checks:
        shape, verdict = "x".join(map(str, check.shape)), "ok" if check.ok else "FAILED"
        print(f"  parity at {shape}: max |exported - eager| = {check.max_abs_diff:.2e} {verdict}")
    if not report.ok:
        tolerance = f"atol={report.atol}, rtol={report.rtol}"
        print(f"i2i: error: {report.path} differs from the eager net beyond {tolerance}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="i2i", description="Image-to-image translation with GANs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config or shipped recipe")
    p.add_argument("config", help="config file, or a recipe name such as pix2pix_facades")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.max_steps=100"
    )
    p.add_argument(
        "--resume", metavar="auto|PATH", help="continue from this run's newest checkpoint, or a file"
    )
    p.add_argument("--dry-run", action="store_true", help="run one step on synthetic data and exit")
    p.add_argument(
        "--on-bad-image",
        choices=["error", "skip"],
        default=None,
        help="an unreadable image stops the run (error, the default) or is skipped and counted (skip)",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("translate", help="translate images with a trained generator")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--checkpoint", required=True, help="i2i checkpoint (.safetensors) or reference .pth")
    p.add_argument("-o", "--output", required=True, help="output folder (PNG files)")
    p.add_argument("--net", default=None, help="which net of the checkpoint (default: its generator)")
    p.add_argument(
        "--direction",
        choices=["AtoB", "BtoA"],
        default=None,
        help="generator of a two-way (CycleGAN) checkpoint",
    )
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser("upscale", help="super-resolve photos (Real-ESRGAN / BasicSR / i2i SR models), tiled")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, help="output folder (PNG; 16-bit, grey and alpha kept)")
    p.add_argument(
        "--weights",
        default="realesr-general-x4v3",
        help="registry name (`i2i weights list`), i2i checkpoint or BasicSR/Real-ESRGAN .pth "
        "(default: realesr-general-x4v3, small and fast enough for CPUs)",
    )
    p.add_argument("--scale", type=float, default=None, help="final size factor (default: the model's)")
    p.add_argument("--tile", type=int, default=512, help="tile side in input pixels; 0: whole image (512)")
    p.add_argument("--tile-overlap", type=int, default=32, help="pixels blended between tiles (32)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass (4)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_upscale)

    p = sub.add_parser(
        "generate", help="sample a GAN: noise-to-image (method gan) or text-to-image (--prompt)"
    )
    p.add_argument("--checkpoint", required=True, help="i2i checkpoint of a method: gan or text2image run")
    p.add_argument("-o", "--output", required=True, help="output folder (samples.png, ...)")
    p.add_argument(
        "-n",
        "--num",
        type=int,
        default=None,
        help="images (default 64; text: 8), or per row by class/code (8); rows of interpolation strips",
    )
    p.add_argument("--prompt", default=None, help='text-to-image: what to draw, e.g. "a small red bird"')
    p.add_argument("--prompt-to", default=None, help="text-to-image: also interpolate the sentence to this")
    p.add_argument("--class", dest="class_index", type=int, default=None, help="cGAN class (default: all)")
    p.add_argument("--code", default=None, help="InfoGAN code: category then continuous values, e.g. 3,0.5")
    p.add_argument("--interpolate", choices=["linear", "slerp"], default=None, help="also write strips")
    p.add_argument("--steps", type=int, default=10, help="images per interpolation strip")
    p.add_argument("--arithmetic", metavar="A-B+C", help="sample indices, e.g. 0,1,2-3,4,5+6,7,8")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("serve", help="the web app: translate, upscale, text-to-image (127.0.0.1:7860)")
    from i2i_app.options import add_arguments as add_serve_arguments  # argparse only: no Gradio import

    add_serve_arguments(p)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("demo", help="offline demo: train Pix2Pix on generated data for a few minutes")
    p.add_argument("--output", default="runs/demo", help="run folder (default: runs/demo)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the demo config")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("list", help="list shipped recipes and registered networks")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("datasets", help="list and download the reference datasets, verified and unpacked")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("list", help="every dataset with size, verification, license and local state")
    q.add_argument("--root", default="datasets", help="folder the datasets live in (default: datasets)")
    q = actions.add_parser("info", help="URLs, digest, layout and license of one dataset")
    q.add_argument("name")
    q.add_argument("--root", default="datasets", help="folder the datasets live in (default: datasets)")
    q = actions.add_parser("download", help="download, verify and unpack into ROOT/NAME")
    q.add_argument("names", nargs="+", metavar="NAME", help="dataset name(s); see `i2i datasets list`")
    q.add_argument("--root", default="datasets", help="folder the datasets live in (default: datasets)")
    q.add_argument("--keep-archive", action="store_true", help="keep the archive after unpacking it")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q = actions.add_parser(
        "convert-captions",
        help="CUB-200 / Oxford-102 captions (TEXT/<class>/<image>.txt) -> a text2image caption folder",
    )
    q.add_argument("--images", required=True, help="the images: CUB_200_2011/images, or Oxford-102's jpg")
    q.add_argument("--text", required=True, help="the captions: text_c10 (Reed et al.) or text (AttnGAN)")
    q.add_argument("-o", "--output", required=True, help="new folder: train/, test/ with metadata.jsonl")
    q.add_argument(
        "--test-classes",
        default=None,
        help="held-out classes, one per line (default: testclasses.txt beside the text folder, if any)",
    )
    q.add_argument("--test-fraction", type=float, default=0.25, help="else hold out this share of classes")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("data", help="check a dataset folder for bad images and layout problems")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("check", help="scan every image (header, then decode); exit 1 if any problem")
    q.add_argument("root", metavar="DIR", help="the dataset folder")
    q.add_argument("--min-size", type=int, default=1, help="smallest allowed width/height in pixels")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("weights", help="the pretrained weights registry: list, download, verify, convert")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every model with size, verification, license and cache state")
    q = actions.add_parser("info", help="architecture, dataset, license, URL and digest of one model")
    q.add_argument("name")
    q = actions.add_parser("download", help="download and verify into the cache ($I2I_HOME/weights)")
    q.add_argument("name")
    q.add_argument("--dir", default=None, help="download into this folder instead of the cache")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q = actions.add_parser("verify", help="check a weights file's sha256 and that it loads without code")
    q.add_argument("path")
    q.add_argument("--name", default=None, help="registry entry to check against (default: by digest/name)")
    q = actions.add_parser("convert", help="export a .pth, checkpoint or registry model to safetensors")
    q.add_argument("path", help="a .pth file, an i2i checkpoint or a registry name")
    q.add_argument("-o", "--output", required=True, help="OUT.safetensors (OUT.json is written beside it)")
    q.add_argument("--net", default=None, help="which net of an i2i checkpoint (default: its generator)")
    p.set_defaults(func=_cmd_weights)

    p = sub.add_parser("eval", help="FID, KID, LPIPS, PSNR/SSIM of image folders, a model's test split, SR")
    from i2i.metrics.command import add_arguments as add_eval_arguments  # argparse only: no torch import

    add_eval_arguments(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("bench", help="training and inference speed, i2i beside the reference implementation")
    from i2i.bench.command import add_arguments as add_bench_arguments  # argparse only: no torch import

    add_bench_arguments(p)
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("export", help="a generator to ONNX, TorchScript or .pt2 (dynamic H/W), checked")
    p.add_argument("checkpoint", help="i2i checkpoint, exported .safetensors, .pth file or registry name")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript", "pt2"])
    p.add_argument("-o", "--output", default=None, help="output file (default: beside the checkpoint)")
    p.add_argument("--net", default=None, help="which net of an i2i checkpoint (default: its generator)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--atol", type=float, default=1e-4, help="parity tolerance, absolute (default 1e-4)")
    p.add_argument("--rtol", type=float, default=1e-3, help="parity tolerance, relative (default 1e-3)")
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except I2IError as exc:
        if args.debug:
            raise
        # One line: some messages quote multi-line reasons from libraries (YAML parser, torch).
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"i2i: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("i2i: interrupted (the checkpoints written so far are intact)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
