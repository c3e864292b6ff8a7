"""The Method protocol: what a GAN specialization tells the shared Trainer.

A method owns its networks and says how to compute the discriminator and generator losses for a batch;
the Trainer owns everything else (devices, precision, optimizer stepping, EMA, schedules, checkpoints,
logging, samples). A new method is one file that never re-implements the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from i2i import nets
from i2i.config import Config, NetConfig, OptimizerConfig
from i2i.data.transforms import PairedTransform
from i2i.errors import ConfigError
from i2i.nets.layers import init_weights


@runtime_checkable
class Method(Protocol):
    """A GAN objective over named networks.

    Attributes:
        nets: All networks, e.g. ``{"g": UNetGenerator, "d": PatchDiscriminator}``.
        groups: Which nets each optimizer trains, ``{"d": ("d",), "g": ("g",)}``. The Trainer freezes the
            ``d`` group during the generator update.
        ema_nets: Nets of which the Trainer keeps an EMA when ``train.ema_decay > 0`` (generators).
        specs: How to rebuild each net without the method: ``{"g": {"name": "unet_256", "args": {...},
            "value_range": [-1, 1]}}`` (registry name and constructor arguments). Saved in checkpoints so
            ``i2i.load_model`` needs no config; the first entry is the default model for inference.
    """

    nets: dict[str, nn.Module]
    groups: dict[str, tuple[str, ...]]
    ema_nets: tuple[str, ...]
    specs: dict[str, dict[str, Any]]

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Generator outputs for ``batch``, shared by :meth:`d_step` and :meth:`g_step`.

        The Trainer runs it once per batch with gradients on and passes the result to both steps
        (``d_step`` must detach what it feeds to D), or under ``no_grad`` for discriminator-only updates.
        """
        ...

    def d_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Named, weighted discriminator loss terms; the Trainer sums and backpropagates them.

        Entries named ``stat/...`` (detached scalars, e.g. ``stat/d_accuracy``) are logged but not summed.
        """
        ...

    def g_step(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Named, weighted generator loss terms; the Trainer sums and backpropagates them."""
        ...

    def samples(self, batch: Mapping[str, Any], nets: Mapping[str, nn.Module]) -> dict[str, Tensor]:
        """Images for the sample grid (name -> (B, C, H, W) in [-1, 1]) computed with ``nets``.

        ``nets`` is :attr:`nets` with EMA copies substituted when EMA is on.
        """
        ...

    def state_dict(self) -> dict[str, Any]:
        """Extra state to checkpoint beyond the nets (e.g. image pools)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


def build_net(
    spec: NetConfig, path: str, *, init: str | None = "normal", init_gain: float = 0.02, **fixed: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Build and initialise a registered net from its config, naming the config path on errors.

    Args:
        spec: Registry name and constructor arguments from the config.
        path: Dotted config path of ``spec`` (``model.generator``), for error messages.
        init: Weight init kind (:func:`i2i.nets.layers.init_weights`); None keeps the net's own init.
        init_gain: Its gain / standard deviation.
        **fixed: Arguments the method decides (channel counts); setting them in the config is an error.

    Returns:
        The net and the full constructor arguments (saved in checkpoints to rebuild it).
    """
    clash = sorted(set(fixed) & set(spec.args))
    if clash:
        raise ConfigError(f"{path}.args.{clash[0]}: set by the method (e.g. from model.in_channels)")
    args = {**spec.args, **fixed}
    try:
        net = nets.build(spec.name, **args)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return (net if init is None else init_weights(net, init, init_gain)), args


def train_and_test_sets(
    cfg: Config,
    *,
    synthetic: Callable[[int, str, PairedTransform], Dataset],
    folder: Callable[[str, PairedTransform], Dataset],
    example_root: str,
) -> tuple[Dataset, Dataset]:
    """The training set (random augmentation) and held-out set (deterministic) that ``cfg.data`` describes.

    Args:
        cfg: The run config; ``data.source`` is ``folder`` or ``synthetic``.
        synthetic: Builds the generated dataset from (number of items, split, transform).
        folder: Builds the on-disk dataset from (split folder name, transform).
        example_root: A typical ``data.root`` for this method, shown when it is missing.
    """
    data = cfg.data
    train_tf = PairedTransform(data.load_size, data.crop_size, data.preprocess, data.flip, train=True)
    test_tf = PairedTransform(data.load_size, data.crop_size, data.preprocess, False, train=False)
    if data.source == "synthetic":
        num = data.synthetic
        return synthetic(num.num_train, "train", train_tf), synthetic(num.num_test, "test", test_tf)
    if data.source != "folder":
        raise ConfigError(f"data.source: unknown source {data.source!r}; choose folder or synthetic")
    if not data.root:
        raise ConfigError(
            f"data.root: no dataset folder given; set it (e.g. --set data.root={example_root}) "
            "or use data.source=synthetic"
        )
    return folder(data.train_split, train_tf), folder(data.test_split, test_tf)


def adam(
    params: Iterable[nn.Parameter], cfg: OptimizerConfig, *, fused: bool | None = None
) -> torch.optim.Adam:
    """Adam from an :class:`OptimizerConfig`; ``foreach`` on CPU, fused kernels on CUDA."""
    params = list(params)
    on_cuda = bool(params) and params[0].is_cuda
    return torch.optim.Adam(
        params,
        lr=cfg.lr,
        betas=cfg.betas,
        weight_decay=cfg.weight_decay,
        fused=on_cuda if fused is None else fused,
    )


def group_parameters(method: Method, group: str) -> list[nn.Parameter]:
    """All parameters of the nets in one optimizer group."""
    return [p for name in method.groups[group] for p in method.nets[name].parameters()]
