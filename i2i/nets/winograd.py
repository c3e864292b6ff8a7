"""Winograd convolution: the same convolutions in fp32 with a quarter to a third of the multiplications.

A 3x3 convolution over a 4x4 output tile takes 16 * 9 = 144 multiplications per channel pair done directly,
36 in the Winograd domain (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks"; cuDNN's
``WINOGRAD_NONFUSED``). The input is cut into overlapping 6x6 tiles, tiles and filters are taken to the
Winograd domain by fixed linear maps, 36 independent (C_out x C_in) @ (C_in x tiles) matrix products do the
work, and a last fixed map brings the output tiles back. The backward pass is the same construction
transposed: the weight gradient is 36 products of output-gradient tiles with the saved input tiles, the
input gradient 36 products with the transposed filters, folded back over the overlapping tiles.

Both variants here use 6x6 tiles, F(7 - r, r) for an r x r kernel: F(4x4, 3x3) for the stride-1 3x3
convolutions of the ResNet and SR generators, F(3x3, 4x4) for the stride-1 4x4 ones of the PatchGAN (its
widest layer). Stride-2 and transposed 4x4 convolutions can be rewritten as stride-1 ones over a
space-to-depth input (F(5x5, 2x2), or a 3x3 convolution with four times the output channels), but measured
slower than oneDNN for every U-Net and PatchGAN layer (0.07x to 0.9x: few tiles, many channels), so they
are not offered.

PyTorch's CPU backends have no Winograd kernel, and on a CPU these layers already run near the BLAS
matrix-product peak, so cutting the multiplications is what is left. Measured per 256 -> 256 channel 3x3
layer (forward + backward, one thread, 2-core EPYC): 142 ms with oneDNN and 71 ms here at 64x64, 37 ms and
23 ms at 32x32. The result differs from a direct convolution by rounding only: about 1e-5 of the output's
largest value, against 1e-7 for a direct fp32 convolution. :mod:`i2i.train.conv_tuning` times this path
against oneDNN per layer and uses it where it is faster.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WINDOW = 6  # input tile side of every variant: F(WINDOW + 1 - r, r)
POINTS = (0, 1, -1, 2, -2)  # interpolation points (and infinity), as Lavin & Gray's F(4, 3)
KERNELS = (3, 4)


def _poly_mul(p: list[Fraction], q: list[Fraction]) -> list[Fraction]:
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def toom_cook(r: int) -> tuple[list[list[Fraction]], list[list[Fraction]], list[list[Fraction]]]:
    """Exact 1-D F(m, r) matrices for 6-point tiles (m = 7 - r): input B^T (6x6), filter G (6xr), output
    A^T (mxr), so that ``A^T [(G g) * (B^T d)]`` is the correlation ``y_i = sum_k d_(i+k) g_k``.

    Toom-Cook on the finite points :data:`POINTS` and infinity, transposed (Lavin & Gray, section 4); for
    r = 3 it reproduces their F(4, 3) exactly.
    """
    m, points = WINDOW + 1 - r, [Fraction(p) for p in POINTS]
    whole = [Fraction(1)]
    for p in points:
        whole = _poly_mul(whole, [-p, Fraction(1)])
    b_t, g, a_t = [], [], [[Fraction(0)] * WINDOW for _ in range(m)]
    for j, pj in enumerate(points):
        others = [p for i, p in enumerate(points) if i != j]
        lagrange, scale = [Fraction(1)], Fraction(1)
        for p in others:
            lagrange = _poly_mul(lagrange, [-p, Fraction(1)])
            scale *= pj - p
        b_t.append([*lagrange, Fraction(0)])
        g.append([pj**k / scale for k in range(r)])
        for i in range(m):
            a_t[i][j] = pj**i
    b_t.append(whole)
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    for i in range(m):
        a_t[i][WINDOW - 1] = Fraction(int(i == m - 1))
    return b_t, g, a_t


@functools.cache
def _transforms(r: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The 2-D transforms for an r x r kernel as matrices on row-major flattened tiles (Kronecker products):
    input (36, 36), filter (36, r * r), output (m * m, 36)."""

    def kron(rows: list[list[Fraction]]) -> Tensor:
        m = torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float64)
        return torch.kron(m, m).to(dtype=dtype, device=device).contiguous()

    return tuple(kron(matrix) for matrix in toom_cook(r))  # type: ignore[return-value]


def _tiles(x: Tensor, m: int) -> Tensor:
    """(N, C, m * th + 6 - m, m * tw + 6 - m) -> overlapping 6x6 tiles, (36, C * N * th * tw) (one copy)."""
    patches = x.unfold(2, WINDOW, m).unfold(3, WINDOW, m)  # N, C, th, tw, 6, 6 (a view)
    return patches.permute(4, 5, 1, 0, 2, 3).reshape(WINDOW * WINDOW, -1)


class _WinogradConvolution(torch.autograd.Function):
    """Stride-1 r x r convolution, r in :data:`KERNELS`, by F(7 - r, r)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]) -> Tensor:
        n, c = x.shape[:2]
        k, r = weight.shape[0], weight.shape[-1]
        m = WINDOW + 1 - r
        b_mat, g_mat, a_mat = _transforms(r, x.dtype, x.device)
        ph, pw = padding
        out_h, out_w = x.shape[2] + 2 * ph - r + 1, x.shape[3] + 2 * pw - r + 1
        th, tw = -(-out_h // m), -(-out_w // m)
        # Zero rows and columns beyond the padding make the output a whole number of tiles (cropped below).
        pad = (pw, pw + m * tw - out_w, ph, ph + m * th - out_h)
        padded = F.pad(x, pad) if any(pad) else x
        u = (g_mat @ weight.reshape(k * c, r * r).t()).view(36, k, c)
        v = (b_mat @ _tiles(padded, m)).view(36, c, n * th * tw)
        y = (a_mat @ torch.bmm(u, v).view(36, -1)).view(m, m, k, n, th, tw)
        y = y.permute(3, 2, 4, 0, 5, 1).reshape(n, k, m * th, m * tw)
        if m * th != out_h or m * tw != out_w:
            y = y[:, :, :out_h, :out_w].contiguous()
        if bias is not None:
            y.add_(bias.view(1, k, 1, 1))
        ctx.save_for_backward(x, weight, u, v)  # u too: recomputing it costs more than a tile transform
        ctx.geometry = (padding, pad, th, tw, bias is not None)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, u, v = ctx.saved_tensors
        padding, pad, th, tw, has_bias = ctx.geometry
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():
            # A gradient penalty differentiates this backward again; the direct kernels have that
            # derivative (the tiles saved above were computed outside autograd and do not).
            bias_sizes = [weight.shape[0]] if has_bias else None
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad, x, weight, bias_sizes, [1, 1], list(padding), [1, 1], False, [0, 0], 1,
                [need_x, need_w, has_bias and need_b],
            )  # fmt: skip
            return gx, gw, gb if has_bias else None, None
        n, c = x.shape[:2]
        k, r = weight.shape[0], weight.shape[-1]
        m = WINDOW + 1 - r
        b_mat, g_mat, a_mat = _transforms(r, x.dtype, x.device)
        gb = grad.sum((0, 2, 3)) if has_bias and need_b else None
        out_h, out_w = grad.shape[2:]
        if m * th != out_h or m * tw != out_w:
            grad = F.pad(grad, (0, m * tw - out_w, 0, m * th - out_h))
        tiles = grad.reshape(n, k, th, m, tw, m).permute(3, 5, 1, 0, 2, 4).reshape(m * m, -1)
        grad_m = (a_mat.t() @ tiles).view(36, k, n * th * tw)
        gw = gx = None
        if need_w:
            grad_u = torch.bmm(grad_m, v.transpose(1, 2))  # (36, K, C)
            gw = (g_mat.t() @ grad_u.view(36, k * c)).t().reshape(k, c, r, r)
        if need_x:
            grad_v = b_mat.t() @ torch.bmm(u.transpose(1, 2), grad_m).view(36, -1)  # (36, C * N * th * tw)
            cols = grad_v.view(36, c, n, th * tw).permute(2, 1, 0, 3).reshape(n, c * 36, th * tw)
            padded_size = (x.shape[2] + pad[2] + pad[3], x.shape[3] + pad[0] + pad[1])
            gx = F.fold(cols, padded_size, kernel_size=WINDOW, stride=m)
            if any(pad):
                gx = gx[:, :, pad[2] : pad[2] + x.shape[2], pad[0] : pad[0] + x.shape[3]]
        return gx, gw, gb, None


def winograd_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]) -> Tensor:
    """A stride-1 convolution with a 3x3 or 4x4 kernel by Winograd F(7 - r, r), differentiable
    (twice, for gradient penalties: the second derivative runs on the direct kernels).

    Args:
        x: (N, C_in, H, W) input.
        weight: (C_out, C_in, r, r) filters.
        bias: (C_out,) or None.
        padding: Zero padding (rows, columns) on each side, as ``nn.Conv2d(padding=...)``.

    Returns:
        (N, C_out, H + 2 * padding[0] - r + 1, W + 2 * padding[1] - r + 1), as ``F.conv2d``.
    """
    return _WinogradConvolution.apply(x, weight, bias, tuple(padding))


def supports(module: nn.Module, x: Tensor) -> bool:
    """Whether ``module(x)`` can run here: an ungrouped, undilated, zero-padded stride-1 Conv2d with a 3x3
    or 4x4 kernel, on a 4-D float32/float64 input."""
    kernel = module.kernel_size
    if type(module) is not nn.Conv2d or kernel[0] not in KERNELS or kernel[0] != kernel[1]:
        return False
    if module.stride != (1, 1) or module.dilation != (1, 1) or module.groups != 1:
        return False
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        return False
    if not (x.dim() == 4 and x.dtype in (torch.float32, torch.float64) and module.weight.dtype == x.dtype):
        return False
    padded = min(x.shape[2] + 2 * module.padding[0], x.shape[3] + 2 * module.padding[1])
    return padded >= kernel[0]


def winograd_convolution(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)`` for a Conv2d that :func:`supports` accepts, computed by Winograd.

    Shape:
        As the module: (N, C_in, H, W) -> (N, C_out, H', W').
    """
    return winograd_conv2d(x, module.weight, module.bias, module.padding)
