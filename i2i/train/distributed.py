"""Several processes (torchrun, one per GPU or several on a CPU): process group, DDP wrapping, agreement.

``torchrun --nproc_per_node N -m i2i train CONFIG`` starts N copies of ``i2i train``; each reads its rank
from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...). The
Trainer calls :func:`init_from_env`, wraps the trained nets in :class:`GANParallel` (DistributedDataParallel)
and lets rank 0 alone write logs, samples and checkpoints.

GAN caveats and how they are handled:

- D is frozen during the G update. DDP expects every parameter it wraps to receive a gradient in each
  backward pass, so the frozen D must not run through its DDP wrapper then: the Trainer swaps the wrappers
  into ``method.nets`` only for the nets whose gradients the current update needs (:func:`swapped`).
- Methods call extra net methods (InfoGAN's ``d.forward_info``, ``g.compose_latent``): :class:`GANParallel`
  passes unknown attribute lookups on to the wrapped net.
- A NaN loss on one process must not leave the others waiting in the gradient all-reduce: the processes
  agree (:meth:`DistInfo.all_true`) before any backward pass, and all skip the update together.
- BatchNorm buffers are broadcast from rank 0 at every forward pass (DDP's ``broadcast_buffers``);
  ``train.sync_batchnorm`` computes the statistics over all processes' batches instead (CUDA only).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from i2i.errors import ConfigError

log = logging.getLogger(__name__)

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands among the processes of one run.

    Attributes:
        rank: Global rank, 0 to ``world_size - 1``; rank 0 writes every file.
        world_size: Number of processes; 1 for an ordinary single-process run.
        local_rank: Rank on this machine (picks the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every process (one tiny all-reduce; no communication when alone)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device())
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def any_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on at least one process."""
        return not self.all_true(not flag)

    def gather(self, obj: Any) -> list[Any] | None:
        """Every process's ``obj`` on rank 0 (in rank order), None elsewhere."""
        if not self.enabled:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean_logs(self, logs: Mapping[str, float]) -> dict[str, float]:
        """Per-key mean over the processes that logged the key (a NaN step may drop a key on one rank)."""
        if not self.enabled:
            return dict(logs)
        everyone: list[dict[str, float]] = [{} for _ in range(self.world_size)]
        dist.all_gather_object(everyone, dict(logs))
        keys = dict.fromkeys(k for d in everyone for k in d)
        return {k: sum(d[k] for d in everyone if k in d) / sum(k in d for d in everyone) for k in keys}


def _comm_device() -> torch.device:
    """The device collectives run on: the current GPU with NCCL, else the CPU (gloo)."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as exc:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number of processes") from exc


def init_from_env(device: str = "auto") -> tuple[DistInfo, str]:
    """Join the process group that torchrun describes in the environment (idempotent).

    Args:
        device: The configured ``train.device``. With several processes on CUDA every process takes the
            GPU of its local rank; ``cpu`` (or no GPU) selects the gloo backend.

    Returns:
        This process's :class:`DistInfo`, and the device it must use (``"cuda:LOCAL_RANK"`` with NCCL,
        else ``device`` unchanged). A single process gets ``DistInfo()`` and ``device`` back.

    Raises:
        ConfigError: torchrun's variables are incomplete or the process group cannot be formed.
    """
    world_size = env_world_size()
    if world_size <= 1:
        return DistInfo(), device
    missing = [k for k in (*ENV_KEYS, "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} not set; launch several processes with "
            "torchrun (torchrun --nproc_per_node N -m i2i train CONFIG), not by setting WORLD_SIZE"
        )
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ["LOCAL_RANK"]))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={device!r} but CUDA is not available; use auto or cpu")
    if use_cuda:
        if info.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {info.local_rank} has no GPU (this machine has {torch.cuda.device_count()}); "
                "start at most one process per GPU (--nproc_per_node)"
            )
        torch.cuda.set_device(info.local_rank)
        if device not in ("auto", "cuda", f"cuda:{info.local_rank}"):
            log.warning(
                "train.device=%s ignored: process %d uses cuda:%d", device, info.rank, info.local_rank
            )
        device = f"cuda:{info.local_rank}"
    if not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        try:
            dist.init_process_group(backend, timeout=timedelta(minutes=30))
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot form the process group ({backend}): {exc}") from exc
        atexit.register(_destroy)
        log.info("process %d of %d joined the %s process group", info.rank, world_size, backend)
    return info, device


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The RNG seed of one process: the run's seed on rank 0 (so one process matches a plain run), and
    independent streams elsewhere (each rank draws its own dropout masks, pool choices and noise)."""
    if rank == 0:
        return seed
    return int(
        torch.randint(0, 2**31 - 1, (), generator=torch.Generator().manual_seed(seed * 1_000_003 + rank))
    )


class GANParallel(DistributedDataParallel):
    """DistributedDataParallel that also exposes the wrapped net's own attributes and methods.

    Only calls through ``__call__`` are synchronised (gradient all-reduce, buffer broadcast); a method such
    as ``d.forward_info`` runs the wrapped net directly, and its parameters' gradients are still reduced in
    the backward pass as long as the same update also called the wrapper once.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(
    net: nn.Module, info: DistInfo, device: torch.device, *, find_unused_parameters: bool = False
) -> GANParallel:
    """Wrap a net (already on ``device``) in :class:`GANParallel`; rank 0's weights are broadcast."""
    device_ids = (
        [device.index if device.index is not None else info.local_rank] if device.type == "cuda" else None
    )
    return GANParallel(
        net,
        device_ids=device_ids,
        # Buffers (BatchNorm statistics) are broadcast from rank 0 at every forward pass: DDP's default.
        find_unused_parameters=find_unused_parameters,
        # Gradients land in the buckets' memory directly: one copy less per step.
        gradient_as_bucket_view=True,
    )


def convert_sync_batchnorm(net: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm -> SyncBatchNorm (statistics over all processes) on CUDA; elsewhere warns and skips."""
    if device.type != "cuda":
        log.warning("train.sync_batchnorm needs CUDA (NCCL); ignored on %s", device)
        return net
    return nn.SyncBatchNorm.convert_sync_batchnorm(net)


@contextlib.contextmanager
def swapped(nets: MutableMapping[str, nn.Module], replacements: Mapping[str, nn.Module]) -> Iterator[None]:
    """Temporarily put ``replacements`` (e.g. DDP wrappers) into ``nets`` under the same names."""
    saved = {name: nets[name] for name in replacements}
    nets.update(replacements)
    try:
        yield
    finally:
        nets.update(saved)


def scaled_lr(lr: float, world_size: int, rule: str) -> float:
    """``optim.*.lr`` adjusted for the effective batch of ``world_size`` processes by ``train.lr_scaling``.

    ``none`` keeps it (GAN recipes are tuned per batch and often do not follow the rules for classifiers),
    ``linear`` multiplies it by the world size (Goyal et al. 2017), ``sqrt`` by its square root.
    """
    if rule == "none":
        return lr
    if rule == "linear":
        return lr * world_size
    if rule == "sqrt":
        return lr * world_size**0.5
    raise ConfigError(f"train.lr_scaling: unknown rule {rule!r}; choose none, linear or sqrt")
