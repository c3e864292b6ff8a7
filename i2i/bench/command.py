"""The ``i2i bench`` command line: ``i2i bench train METHOD`` and ``i2i bench infer TASK``.

Example:
    i2i bench train cyclegan --size 256 --batch 1           # fast beside reference, ratio printed
    i2i bench train pix2pix --size 128 --json bench.json    # + every number, the environment, as JSON
    i2i bench infer upscale --size 512 --mode fast
"""

from __future__ import annotations

import argparse

MODES = ("both", "fast", "reference")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommands and their options."""
    kinds = parser.add_subparsers(dest="kind", required=True)
    train = kinds.add_parser("train", help="training steps/s of a method: i2i's step beside the reference's")
    train.add_argument("method", help="pix2pix, cyclegan (both modes); any other method with --mode fast")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.compile=true"
    )
    infer = kinds.add_parser("infer", help="inference throughput: translate or upscale")
    infer.add_argument("task", choices=["translate", "upscale"])
    infer.add_argument("--net", default=None, help="architecture (default resnet_9blocks / rrdbnet)")
    infer.add_argument("--checkpoint", default=None, help="time this model file or registry name instead")
    infer.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    infer.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"])
    infer.add_argument("--compile", action="store_true", help="torch.compile the fast mode's net")
    infer.add_argument("--tile", type=int, default=512, help="upscaler tile side (0: whole image)")
    for sub in (train, infer):
        sub.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
        sub.add_argument("--batch", type=int, default=1, help="images per step / call (default 1)")
        sub.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
        sub.add_argument("--mode", default="both", choices=MODES, help="fast, reference or both")
        sub.add_argument("--warmup", type=int, default=2, help="untimed calls per mode first (default 2)")
        sub.add_argument("--reps", type=int, default=5, help="timed calls per mode (default 5)")
        sub.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
        sub.add_argument("--peak-tflops", type=float, default=None, help="device peak, for MFU")
        sub.add_argument("--json", default=None, metavar="PATH", help="also write every number as JSON")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark ``args`` describe, print the report, write the JSON if asked."""
    import torch

    from i2i.bench.report import format_result, write_json
    from i2i.errors import ConfigError

    if args.size < 1 or args.batch < 1:
        raise ConfigError("--size and --batch must be positive")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    modes = ("fast", "reference") if args.mode == "both" else (args.mode,)
    common = {
        "size": args.size,
        "batch": args.batch,
        "device": args.device,
        "modes": modes,
        "warmup": args.warmup,
        "reps": args.reps,
        "peak_tflops": args.peak_tflops,
    }
    if args.kind == "train":
        from i2i.bench.train import bench_train

        result = bench_train(args.method, overrides=args.set, **common)
    else:
        from i2i.bench.infer import bench_infer

        result = bench_infer(
            args.task,
            net=args.net,
            checkpoint=args.checkpoint,
            precision=args.precision,
            channels_last=args.channels_last,
            compile=args.compile,
            tile=args.tile,
            **common,
        )
    print(format_result(result))
    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    return 0
