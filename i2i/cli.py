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

    cfg = load_config(args.config, overrides=args.set)
    if args.dry_run:
        result = dry_run(cfg)
        losses = ", ".join(f"{k}={v:.4g}" for k, v in result.last_logs.items())
        print(f"dry run OK: one {cfg.method} step on synthetic data ({losses})")
        return 0
    result = train(cfg, resume=args.resume)
    print(f"trained {result.step} steps; run folder: {result.run_dir}")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _cmd_translate(args: argparse.Namespace) -> int:
    from i2i.infer.translate import Translator

    translator = Translator.from_file(
        args.checkpoint, net=args.net, device=args.device, precision=args.precision
    )
    written = translator.translate_files(args.inputs, args.output, batch_size=args.batch_size)
    print(f"translated {len(written)} image(s) into {args.output}")
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
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("translate", help="translate images with a trained generator")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--checkpoint", required=True, help="i2i checkpoint (.safetensors) or reference .pth")
    p.add_argument("-o", "--output", required=True, help="output folder (PNG files)")
    p.add_argument("--net", default=None, help="which net of the checkpoint (default: its generator)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser("demo", help="offline demo: train Pix2Pix on generated data for a few minutes")
    p.add_argument("--output", default="runs/demo", help="run folder (default: runs/demo)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the demo config")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("list", help="list shipped recipes and registered networks")
    p.set_defaults(func=_cmd_list)
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
        print("i2i: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
