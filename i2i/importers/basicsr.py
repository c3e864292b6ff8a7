"""Importer for BasicSR / Real-ESRGAN weight files: ``{"params": sd}``, optionally with ``"params_ema"``.

The architecture is read from the keys and shapes. When both ``params`` and ``params_ema`` are present the
EMA weights are used, as the reference inference code does. i2i's SR nets (:mod:`i2i.nets.sr`) keep
BasicSR's key names, so the tensors load as they are.

- RRDBNet: ``conv_first``, ``body.N.rdb1.conv1`` ...; the scale follows from ``conv_first``'s input channels
  (3 -> x4, 12 -> x2 via pixel-unshuffle, 48 -> x1).
- SRVGGNetCompact: ``body.0`` ... ``body.K`` convs with PReLU weights between them.
- MSRResNet: ``conv_first``, ``body.N.conv1``, ``upconv1`` (+ ``upconv2`` for x4).
- UNetDiscriminatorSN (Real-ESRGAN's ``*_netD.pth``): ``conv0`` ... ``conv9`` with spectral-norm
  ``weight_orig``/``weight_u``/``weight_v`` on ``conv1`` ... ``conv8``; the U-Net skips carry no weights and
  are on in every released model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from i2i.errors import CheckpointError
from i2i.importers.junyanz import ImportedNet

SUPPORTED = (
    "BasicSR/Real-ESRGAN {'params'|'params_ema': state_dict} of RRDBNet, SRVGGNetCompact, MSRResNet or "
    "UNetDiscriminatorSN"
)


def is_basicsr_file(obj: Any) -> bool:
    """Whether a loaded ``.pth`` object has the BasicSR layout."""
    return isinstance(obj, Mapping) and ("params" in obj or "params_ema" in obj)


def _count(sd: Mapping[str, Tensor], pattern: str) -> int:
    return len({m.group(1) for k in sd if (m := re.match(pattern, k))})


def import_basicsr(obj: Mapping[str, Any]) -> ImportedNet:
    """Pick the weights (``params_ema`` first) and detect the architecture.

    Raises:
        CheckpointError: not a BasicSR file of a supported architecture; the message names a few keys.
    """
    sd = obj.get("params_ema", obj.get("params"))
    if not isinstance(sd, Mapping) or not sd:
        raise CheckpointError(f"no state_dict under 'params_ema' or 'params'; expected {SUPPORTED}")
    sd = dict(sd)
    if "conv_first.weight" in sd and "body.0.rdb1.conv1.weight" in sd:
        first = sd["conv_first.weight"]
        unshuffle2 = first.shape[1] // sd["conv_last.weight"].shape[0]
        scale = {1: 4, 4: 2, 16: 1}.get(unshuffle2)
        if scale is None:
            raise CheckpointError(f"RRDBNet with {first.shape[1]} input channels: not x4, x2 or x1")
        kwargs = {
            "in_channels": first.shape[1] // unshuffle2,
            "out_channels": sd["conv_last.weight"].shape[0],
            "base_channels": first.shape[0],
            "num_blocks": _count(sd, r"body\.(\d+)\.rdb1\."),
            "growth_channels": sd["body.0.rdb1.conv1.weight"].shape[0],
            "scale": scale,
        }
        return ImportedNet("rrdbnet", kwargs, sd)
    if "conv_first.weight" in sd and "upconv1.weight" in sd:
        base = sd["conv_first.weight"].shape[0]
        scale = 4 if "upconv2.weight" in sd else math.isqrt(sd["upconv1.weight"].shape[0] // base)
        kwargs = {
            "in_channels": sd["conv_first.weight"].shape[1],
            "out_channels": sd["conv_last.weight"].shape[0],
            "base_channels": base,
            "num_blocks": _count(sd, r"body\.(\d+)\.conv1\."),
            "scale": scale,
        }
        return ImportedNet("msrresnet", kwargs, sd)
    if "body.0.weight" in sd and all(re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in sd):
        convs = sorted(int(k.split(".")[1]) for k, v in sd.items() if k.endswith(".weight") and v.ndim == 4)
        first, last = sd["body.0.weight"], sd[f"body.{convs[-1]}.weight"]
        prelu = "body.1.weight" in sd and sd["body.1.weight"].ndim == 1
        in_channels = first.shape[1]
        kwargs = {
            "in_channels": in_channels,
            "out_channels": in_channels,  # the released models; out * scale**2 channels reach the shuffle
            "base_channels": first.shape[0],
            "num_convs": len(convs) - 2,
            "scale": math.isqrt(last.shape[0] // in_channels),
            # Without PReLU weights the activation leaves no trace; the released models all use PReLU.
            "activation": "prelu" if prelu else "leakyrelu",
        }
        return ImportedNet("srvgg_compact", kwargs, sd)
    if "conv0.weight" in sd and "conv1.weight_orig" in sd and "conv9.weight" in sd:
        first = sd["conv0.weight"]
        kwargs = {"in_channels": first.shape[1], "base_channels": first.shape[0], "skip_connection": True}
        return ImportedNet("unet_d_sn", kwargs, sd)
    keys = ", ".join(list(sd)[:4])
    raise CheckpointError(f"unrecognised BasicSR architecture (keys: {keys}, ...); supported: {SUPPORTED}")
