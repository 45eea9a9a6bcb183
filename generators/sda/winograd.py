"""Winograd convolutions for the frame decoder, on NHWC tensors (faster on a CPU; same results up to rounding).

The decoder's direct convolutions already run near the CPU's peak, so being faster means doing fewer
multiplications. Winograd's minimal filtering algorithms F(m x m, r x r) (Lavin & Gray, "Fast Algorithms
for Convolutional Neural Networks", 2016) compute an m x m output tile of an r x r cross-correlation with
(m + r - 1)^2 products instead of m^2 r^2:

- 3x3 stride-1 "same" convolutions use F(4x4, 3x3): 36 products per 16 outputs instead of 144.
- 4x4 stride-2 transposed convolutions (padding 1) are four 2x2 cross-correlations, one per output
  phase (the sub-pixel form); each uses F(2x2, 2x2): 9 products per 4 outputs instead of 16.

Per layer: the input tiles are transformed with B^T . B, one batched matmul multiplies them with the
transformed filters G . G^T (computed once), and A^T . A turns the products into output tiles.
The matrices come from Toom-Cook interpolation (exact rational arithmetic) at the points 0, 1, -1, 2, -1/2
for F(4, 3) (more accurate than the usual +-2) and 0, 1 for F(2, 2); B^T and A^T then hold small integers
and powers of two, exact in float32, and all other fractions sit in the filter transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import torch
import torch.nn.functional as F

# The taps of a 4x4 stride-2 padding-1 transposed conv that output phase 0 and 1 use, in input order.
_PHASE_TAPS = ((3, 1), (2, 0))


@dataclass(frozen=True)
class Winograd:
    """F(m x m, r x r): ``bt`` (n x n), ``g`` (n x r), ``at`` (m x n), n = m + r - 1."""

    m: int
    r: int
    bt: tuple[tuple[Fraction, ...], ...]
    g: tuple[tuple[Fraction, ...], ...]
    at: tuple[tuple[Fraction, ...], ...]

    @property
    def n(self) -> int:
        return self.m + self.r - 1

    def filters(self, taps: torch.Tensor) -> torch.Tensor:
        """Cross-correlation taps (r, r, C, O) -> transformed filters G g G^T as (n * n, C, O): one matmul
        with the Kronecker product G (x) G (each output sums r * r products: float32 is accurate enough)."""
        r, _, c, o = taps.shape
        g = torch.tensor([[float(v) for v in row] for row in self.g], dtype=taps.dtype, device=taps.device)
        return (torch.kron(g, g) @ taps.reshape(r * r, c * o)).view(-1, c, o)


@cache
def toom_cook(m: int, r: int, points: tuple[int, ...]) -> Winograd:
    """F(m, r) from the ``m + r - 2`` finite ``points`` and infinity (exact rational arithmetic).

    Correlation is the transpose of polynomial multiplication: with V_d the n x d matrix evaluating a
    degree-(d-1) polynomial at the points (the row for infinity picks the leading coefficient),
    y = V_m^T [(V_r g) * (V_n^-T d)]. Each row of B^T = V_n^-T is scaled to integers, and the matching
    row of G = V_r divided by the same factor.
    """
    n = m + r - 1
    if len(points) != n - 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} finite points")

    def vander(d: int) -> list[list[Fraction]]:
        rows = [[Fraction(p) ** k for k in range(d)] for p in points]
        return rows + [[Fraction(int(k == d - 1)) for k in range(d)]]

    inv = _inverse(vander(n))
    bt = [list(col) for col in zip(*inv, strict=True)]  # (V_n^-1)^T
    g = vander(r)
    for j, row in enumerate(bt):
        scale = _lcm_of_denominators(row)
        bt[j] = [v * scale for v in row]
        g[j] = [v / scale for v in g[j]]
    at = [list(col) for col in zip(*vander(m), strict=True)]
    return Winograd(m, r, _frozen(bt), _frozen(g), _frozen(at))


def _frozen(rows: list[list[Fraction]]) -> tuple[tuple[Fraction, ...], ...]:
    return tuple(tuple(row) for row in rows)


def _lcm_of_denominators(row: list[Fraction]) -> int:
    from math import lcm

    return lcm(*(v.denominator for v in row))


def _inverse(a: list[list[Fraction]]) -> list[list[Fraction]]:
    """Gauss-Jordan inverse of a small invertible rational matrix."""
    n = len(a)
    aug = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if aug[i][col] != 0)
        aug[col], aug[pivot] = aug[pivot], aug[col]
        p = aug[col][col]
        aug[col] = [v / p for v in aug[col]]
        for i in range(n):
            if i != col and aug[i][col] != 0:
                f = aug[i][col]
                aug[i] = [v - f * w for v, w in zip(aug[i], aug[col], strict=True)]
    return [row[n:] for row in aug]


F43 = toom_cook(4, 3, (0, 1, -1, 2, Fraction(-1, 2)))  # -1/2 rather than -2: about half the rounding error
F22 = toom_cook(2, 2, (0, 1))


def _matrix(rows: tuple[tuple[Fraction, ...], ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([[float(v) for v in row] for row in rows], dtype=like.dtype, device=like.device)


def _transform(mat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """mat . X . mat^T for every (n, n) slice X of x (B, n, n, R) along dims 1, 2 -> (B, k, k, R).

    Two matmuls over the whole batch: few, large operations keep both threads busy even on a loaded
    machine, where hundreds of small element-wise ones would each wait for the slower thread.
    """
    b, n, _, r = x.shape
    k = mat.shape[0]
    rows = torch.matmul(mat, x.reshape(b, n, n * r))  # (B, k, n * R)
    return torch.matmul(mat, rows.view(b, k, n, r))  # (B, k, k, R)


def _padded(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """x (N, H, W, C) placed at (1, 1) inside zeros of (N, rows, cols, C)."""
    n, h, w, c = x.shape
    out = x.new_zeros(n, rows, cols, c)
    out[:, 1:h + 1, 1:w + 1] = x
    return out


def conv3x3_filters(weight: torch.Tensor) -> torch.Tensor:
    """Conv2d weight (O, C, 3, 3) -> filters for `conv3x3` (36, C, O)."""
    return F43.filters(weight.permute(2, 3, 1, 0))


def conv3x3(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 padding-1 Conv2d of x (N, H, W, C) with `conv3x3_filters` -> (N, H, W, O)."""
    w = F43
    m, n = w.m, w.n
    nb, h, wd, c = x.shape
    th, tw = -(-h // m), -(-wd // m)
    xp = _padded(x, m * th + 2, m * tw + 2)
    s_n, s_h, s_w, _ = xp.stride()
    # tiles[i, j, N, a, b] = xp[N, m a + i, m b + j]: overlapping n x n tiles, gathered in one copy
    tiles = xp.as_strided((1, n, n, nb, th, tw, c), (0, s_h, s_w, s_n, m * s_h, m * s_w, 1)).contiguous()
    v = _transform(_matrix(w.bt, x), tiles.view(1, n, n, -1))
    prod = torch.bmm(v.view(n * n, -1, c), filters)  # (n * n, N * th * tw, O)
    o = prod.shape[-1]
    y = _transform(_matrix(w.at, x), prod.view(1, n, n, -1))  # (1, m, m, N * th * tw * O)
    y = y.view(m, m, nb, th, tw, o).permute(2, 3, 0, 4, 1, 5).reshape(nb, m * th, m * tw, o)
    return y if (m * th, m * tw) == (h, wd) else y[:, :h, :wd]


def _phase_taps(weight: torch.Tensor, py: int, px: int) -> torch.Tensor:
    """ConvTranspose2d weight (C, O, 4, 4) -> the taps (2, 2, C, O) of output phase (py, px) as a 2x2
    cross-correlation of the input padded by one."""
    rows, cols = _PHASE_TAPS[py], _PHASE_TAPS[px]
    return torch.stack([torch.stack([weight[:, :, ky, kx] for kx in cols]) for ky in rows])


_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def deconv4x4s2_filters(weight: torch.Tensor) -> torch.Tensor:
    """ConvTranspose2d weight (C, O, 4, 4) (stride 2, padding 1) -> filters for `deconv4x4s2` (36, C, O)."""
    return torch.cat([F22.filters(_phase_taps(weight, py, px)) for py, px in _PHASES])


def deconv4x4s2(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """4x4 stride-2 padding-1 ConvTranspose2d of x (N, H, W, C) with `deconv4x4s2_filters` -> (N, 2H, 2W, O).

    Output pixel (2y + py, 2x + px) is phase (py, px) at (y, x): a 2x2 cross-correlation of the input
    padded by one, starting at row py and column px.
    """
    w = F22
    m, n = w.m, w.n
    nb, h, wd, c = x.shape
    th, tw = -(-h // m), -(-wd // m)
    xp = _padded(x, m * th + 2, m * tw + 2)
    s_n, s_h, s_w, _ = xp.stride()
    # tiles[py, px, i, j, N, a, b] = xp[N, m a + py + i, m b + px + j]: all four phases' tiles in one copy
    tiles = xp.as_strided((2, 2, n, n, nb, th, tw, c), (s_h, s_w, s_h, s_w, s_n, m * s_h, m * s_w, 1))
    # F(2, 2)'s transforms hold only 0 and +-1: one matmul with their Kronecker square is exact, and faster
    bt, at = _matrix(w.bt, x), _matrix(w.at, x)
    v = torch.matmul(torch.kron(bt, bt), tiles.contiguous().view(4, n * n, -1))
    prod = torch.bmm(v.view(4 * n * n, -1, c), filters)  # (4 * n * n, N * th * tw, O)
    o = prod.shape[-1]
    y = torch.matmul(torch.kron(at, at), prod.view(4, n * n, -1))  # (4, m * m, N * th * tw * O)
    # Output row 2 (m a + r) + py holds row r of tile a of phase py (the same for columns).
    y = y.view(2, 2, m, m, nb, th, tw, o).permute(4, 5, 2, 0, 6, 3, 1, 7).reshape(nb, 2 * m * th, 2 * m * tw, o)
    return y if (m * th, m * tw) == (h, wd) else y[:, :2 * h, :2 * wd]


def deconv4x4s2_phases(weight: torch.Tensor) -> torch.Tensor:
    """ConvTranspose2d weight (C, O, 4, 4) -> the four phase kernels as one channels-last Conv2d weight
    (4 * O, C, 2, 2), phase-major: for `deconv4x4s2_direct`."""
    kernels = [_phase_taps(weight, py, px).permute(3, 2, 0, 1) for py, px in _PHASES]  # (O, C, 2, 2) each
    return torch.cat(kernels).contiguous(memory_format=torch.channels_last)


def deconv4x4s2_direct(x: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
    """The same transposed convolution without Winograd, for few output channels (the RGB layer): one
    2x2 Conv2d computes all four phases, which are then interleaved. x (N, H, W, C) -> (N, 2H, 2W, O)."""
    n, h, w, _ = x.shape
    o = phases.shape[0] // 4
    xp = F.pad(x, (0, 0, 1, 1, 1, 1)).permute(0, 3, 1, 2)  # a channels-last NCHW view
    y = F.conv2d(xp, phases).permute(0, 2, 3, 1).reshape(n, h + 1, w + 1, 2, 2, o)
    out = x.new_empty(n, h, 2, w, 2, o)
    for py in (0, 1):
        for px in (0, 1):
            out[:, :, py, :, px] = y[:, py:py + h, px:px + w, py, px]
    return out.view(n, 2 * h, 2 * w, o)
