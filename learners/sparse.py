"""Mostly-zero inputs through a first layer, with the dense product's exact numbers.

GTB's observation has 1,200 numbers of which about 105 are non-zero, and the first layer of
PPO's policy and value networks (1,200 x 128) carries most of the update's multiply-adds.
:class:`SparseRows` keeps each row's non-zero entries (column, value) and multiplies them
into a stacked weight (``learners.nets.bmm`` hands it over), skipping the zeros.

Skipping a zero changes nothing only if the sums are formed in the dense product's order.
torch's batched product (MKL) forms ``C = bias + A B`` by blocks of ``kc`` along the summed
dimension (a padded length between ``kc`` and ``2 kc``: two equal halves): each block's sum
starts at zero and adds ``A[i, k] B[k, j]`` for ``k`` in order with fused multiply-adds, and
``C`` (the bias, or zero) adds the blocks in order; the weight gradient ``A^T G`` likewise
sums the rows ``i`` by blocks. With ``kc`` known, the kernels here form the same sums over
the non-zero terms (a fused multiply-add of a zero term leaves a sum unchanged), so forward
values and weight and bias gradients equal the dense ones (a zero's sign aside). ``kc`` is a
property of the BLAS build, the processor, the thread count and the float32 matmul
precision: :func:`block_size` finds it by comparing both kernels with ``nets.bmm`` on random
inputs of the very shapes in use (192 on the machine measured, an AMD EPYC with AVX-512);
where no candidate reproduces the dense numbers exactly, or a weight or output gradient is
not finite (a dense product multiplies the zeros by it too), the layer runs dense
(:meth:`SparseRows.dense`), so a seed's numbers never depend on which path ran.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit
from torch.autograd.function import once_differentiable

__all__ = ["SparseRows", "block_size", "dense_only", "flops", "rows_of"]

#: largest share of non-zero entries for which rows are kept sparse (beyond it: dense)
MAX_DENSITY = 0.25
#: block sizes tried, most likely first
CANDIDATES = (192, 256, 128, 384, 512, 96, 64, 160, 224, 288, 320, 448, 32, 16)
#: largest probe (values of one input): larger shapes run dense
MAX_PROBE = 2**25

_state = {"enabled": True, "flops": 0}


def flops() -> int:
    """Floating-point operations the sparse kernels did so far in this process (2 per
    multiply-add of a non-zero; torch's ``FlopCounterMode`` does not see them)."""
    return _state["flops"]


@contextlib.contextmanager
def dense_only() -> Iterator[None]:
    """Within the block, :func:`rows_of` keeps inputs dense (for comparisons and timing)."""
    before = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = before


@njit(cache=True, nogil=True)
def _count_rows(x: np.ndarray) -> np.ndarray:
    """The number of non-zero entries of each row of ``x [P, n, k]``: ``[P, n]``."""
    P, n, k = x.shape
    nnz = np.zeros((P, n), np.int32)
    for p in range(P):
        for i in range(n):
            c = 0
            for j in range(k):
                if x[p, i, j] != 0:
                    c += 1
            nnz[p, i] = c
    return nnz


@njit(cache=True, nogil=True)
def _fill_rows(x: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns and values of each row's non-zeros ``[P, n, K]``, in column order, padded."""
    P, n, k = x.shape
    cols = np.zeros((P, n, K), np.int32)
    vals = np.zeros((P, n, K), np.float32)
    for p in range(P):
        for i in range(n):
            c = 0
            for j in range(k):
                if x[p, i, j] != 0:
                    cols[p, i, c] = j
                    vals[p, i, c] = x[p, i, j]
                    c += 1
    return cols, vals


@njit(cache=True, nogil=True, inline="always", fastmath={"contract"})
def _add_block(out: np.ndarray, acc: np.ndarray, values: np.ndarray, rows: np.ndarray,
               picks: np.ndarray, lo: int, hi: int) -> None:
    """``out += sum_q values[q] rows[picks[q]]`` over ``q`` in ``[lo, hi)``: the block sum
    starts at zero and takes the terms in order (fused multiply-adds), four per pass over
    ``acc``; then ``out`` adds it."""
    acc[:] = 0
    q = lo
    while q + 4 <= hi:
        v0, v1, v2, v3 = values[q], values[q + 1], values[q + 2], values[q + 3]
        r0, r1, r2, r3 = rows[picks[q]], rows[picks[q + 1]], rows[picks[q + 2]], rows[picks[q + 3]]
        for j in range(acc.shape[0]):
            a = acc[j]
            a += v0 * r0[j]
            a += v1 * r1[j]
            a += v2 * r2[j]
            a += v3 * r3[j]
            acc[j] = a
        q += 4
    while q < hi:
        v0, r0 = values[q], rows[picks[q]]
        for j in range(acc.shape[0]):
            acc[j] += v0 * r0[j]
        q += 1
    for j in range(acc.shape[0]):
        out[j] += acc[j]


@njit(cache=True, nogil=True, fastmath={"contract"})
def _forward(cols: np.ndarray, vals: np.ndarray, nnz: np.ndarray, w: np.ndarray,
             bias: np.ndarray, has_bias: bool, kc: int) -> np.ndarray:
    """``bias + A w`` per member, the sum over columns by blocks of ``kc`` (module doc)."""
    P, n, _ = cols.shape
    m = w.shape[2]
    out = np.zeros((P, n, m), np.float32)
    acc = np.empty(m, np.float32)
    for p in range(P):
        wp = w[p]
        for i in range(n):
            row, rc, rv = out[p, i], cols[p, i], vals[p, i]
            if has_bias:
                row[:] = bias[p, 0]
            t, c = 0, nnz[p, i]
            while t < c:
                end = (rc[t] // kc + 1) * kc
                stop = t
                while stop < c and rc[stop] < end:
                    stop += 1
                _add_block(row, acc, rv, wp, rc, t, stop)
                t = stop
    return out


@njit(cache=True, nogil=True, fastmath={"contract"})
def _weight_grad(cols: np.ndarray, vals: np.ndarray, nnz: np.ndarray, g: np.ndarray,
                 k: int, kc: int) -> np.ndarray:
    """``A^T g`` per member ``[P, k, m]``, the sum over rows by blocks of ``kc``: per block,
    the non-zeros sorted by column (a counting sort that keeps the rows in order), then each
    column's block sum over its rows."""
    P, n, K = cols.shape
    m = g.shape[2]
    out = np.zeros((P, k, m), np.float32)
    count = np.zeros(k + 1, np.int64)
    row_of = np.empty(kc * K, np.int64)
    vals_of = np.empty(kc * K, np.float32)
    acc = np.empty(m, np.float32)
    for p in range(P):
        gp = g[p]
        for i0 in range(0, n, kc):
            i1 = min(n, i0 + kc)
            count[:] = 0
            for i in range(i0, i1):
                for t in range(nnz[p, i]):
                    count[cols[p, i, t] + 1] += 1
            for c in range(k):
                count[c + 1] += count[c]
            for i in range(i0, i1):
                for t in range(nnz[p, i]):
                    c = cols[p, i, t]
                    q = count[c]
                    row_of[q] = i
                    vals_of[q] = vals[p, i, t]
                    count[c] = q + 1
            start = 0
            for c in range(k):
                stop = count[c]
                if stop == start:
                    continue
                _add_block(out[p, c], acc, vals_of, gp, row_of, start, stop)
                start = stop
    return out


@dataclass(frozen=True)
class SparseRows:
    """Rows ``[P, n, width]`` as the columns ``[P, n, K]`` and values of their non-zero
    entries and the count per row ``[P, n]`` (entries past a row's count are padding)."""

    cols: torch.Tensor
    vals: torch.Tensor
    nnz: torch.Tensor
    width: int

    @classmethod
    def from_dense(cls, x: torch.Tensor, max_share: float = 1.0) -> SparseRows | None:
        """The rows of ``x [P, n, k]``; None if a row has more than ``max_share`` of its
        entries non-zero (then nothing else is allocated)."""
        x = x.detach().to(torch.float32).contiguous()
        nnz = _count_rows(x.numpy())
        widest = max(1, int(nnz.max())) if nnz.size else 1
        if widest > max_share * x.shape[-1]:
            return None
        cols, vals = _fill_rows(x.numpy(), widest)
        return cls(torch.from_numpy(cols), torch.from_numpy(vals), torch.from_numpy(nnz),
                   int(x.shape[-1]))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Columns, values and counts as numpy arrays (the kernels' first arguments)."""
        return self.cols.numpy(), self.vals.numpy(), self.nnz.numpy()

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.nnz.shape, self.width)

    def __getitem__(self, index: tuple) -> SparseRows:
        """Rows picked as from the dense ``[P, n, width]`` (``x[rows, picks]``)."""
        return SparseRows(self.cols[index], self.vals[index], self.nnz[index], self.width)

    def dense(self) -> torch.Tensor:
        P, n, _ = self.shape
        out = torch.zeros(P, n, self.width + 1)
        used = torch.arange(self.cols.shape[-1]) < self.nnz[..., None]
        out.scatter_(-1, torch.where(used, self.cols, self.width).long(), self.vals * used)
        return out[..., :self.width]

    def matmul(self, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``dense() @ w (+ bias)`` for stacked ``w [P, width, m]``, bias ``[P, 1, m]``."""
        from learners.nets import bmm

        P, n, k = self.shape
        usable = w.dtype == torch.float32 and w.shape[:2] == (P, k) and (
            bias is None or bias.dtype == torch.float32) and _finite(w)
        kc = block_size(P, n, k, int(w.shape[-1]), bias is not None) if usable else None
        if kc is None:
            return bmm(self.dense().to(w.dtype), w, bias)
        return _FirstLayer.apply(w, bias, self, kc)


def _effective(kc: int, length: int) -> int:
    """The block along a summed dimension of ``length`` (padded as ``nets.bmm`` pads it):
    ``kc``, except that a length between ``kc`` and ``2 kc`` is cut in two halves (MKL)."""
    from learners.nets import _up

    padded = _up(length)
    return padded // 2 if kc < padded <= 2 * kc else kc


_finite_seen: dict[tuple[int, int, int], bool] = {}


def _sum_finite(t: torch.Tensor) -> bool:
    """False if ``t`` holds a NaN or an infinity (their sum is one), or if the sum overflows
    (then the dense path runs needlessly, with the same numbers)."""
    return math.isfinite(float(t.detach().sum()))


def _finite(w: torch.Tensor) -> bool:
    """Whether every weight is finite (a dense product multiplies the zeros by them too, so
    a non-finite weight reaches every row: then the dense path runs); remembered per tensor
    version, so a weight is scanned once per optimiser step."""
    key = (id(w), w.data_ptr(), w._version)
    if key not in _finite_seen:
        if len(_finite_seen) > 64:
            _finite_seen.clear()
        _finite_seen[key] = _sum_finite(w)
    return _finite_seen[key]


def _product(rows: SparseRows, w: torch.Tensor, bias: torch.Tensor | None,
             kc: int) -> torch.Tensor:
    """``bias + rows w`` by the kernel, blocks as ``nets.bmm`` forms them for ``kc``."""
    b = np.zeros((1, 1, 1), np.float32) if bias is None else \
        bias.detach().expand(w.shape[0], 1, w.shape[2]).contiguous().numpy()
    _state["flops"] += 2 * int(w.shape[2]) * int(rows.nnz.sum())
    return torch.from_numpy(_forward(*rows.arrays(), w.detach().contiguous().numpy(), b,
                                     bias is not None, _effective(kc, rows.width)))


def _weight_gradient(rows: SparseRows, g: torch.Tensor, kc: int) -> torch.Tensor:
    """``rows^T g`` by the kernel, blocks as ``nets.bmm``'s backward forms them for ``kc``."""
    _state["flops"] += 2 * int(g.shape[2]) * int(rows.nnz.sum())
    return torch.from_numpy(_weight_grad(*rows.arrays(), g.contiguous().numpy(), rows.width,
                                         _effective(kc, rows.shape[1])))


def _dense_grads(rows: SparseRows, w: torch.Tensor, bias: torch.Tensor | None,
                 g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight and bias gradients as the dense product's backward forms them."""
    from learners.nets import bmm

    with torch.inference_mode(False), torch.enable_grad():
        w2 = w.detach().requires_grad_(True)
        b2 = None if bias is None else bias.detach().requires_grad_(True)
        out = bmm(rows.dense(), w2, b2)
        grads = torch.autograd.grad(out, [t for t in (w2, b2) if t is not None], g)
    return grads[0], (grads[1] if b2 is not None else None)


def _bias_grad(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The bias gradient as ``nets.bmm``'s backward forms it: the output gradient, padded
    as the product was, summed over its rows (baddbmm's backward), then cut back."""
    from learners.nets import _up

    P, n, m = g.shape
    padded = torch.nn.functional.pad(g, (0, _up(m) - m, 0, _up(n) - n))
    return padded.sum(1, keepdim=True)[..., :m].sum_to_size(shape)


class _FirstLayer(torch.autograd.Function):
    """``SparseRows @ w + bias`` with gradients for ``w`` and ``bias`` (not for the rows;
    not under ``torch.func`` transforms, and once differentiable)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, bias: torch.Tensor | None, rows: SparseRows,
                kc: int) -> torch.Tensor:
        ctx.rows, ctx.kc = rows, kc
        ctx.save_for_backward(w, bias)
        return _product(rows, w, bias, kc)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        rows, (w, bias) = ctx.rows, ctx.saved_tensors
        P, n, k = rows.shape
        same = block_size(P, n, k, int(w.shape[2]), bias is not None) == ctx.kc
        if not same or not _sum_finite(g):  # as the dense backward would
            gw, gb = _dense_grads(rows, w, bias, g)
            return (gw if ctx.needs_input_grad[0] else None,
                    gb if ctx.needs_input_grad[1] else None, None, None)
        gw = gb = None
        if ctx.needs_input_grad[0]:
            gw = _weight_gradient(rows, g, ctx.kc)
        if bias is not None and ctx.needs_input_grad[1]:
            gb = _bias_grad(g, bias.shape)
        return gw, gb, None, None


@functools.cache
def _block_size(threads: int, precision: str, P: int, n: int, k: int, m: int,
                bias: bool) -> int | None:
    from learners.nets import bmm

    if P * n * k > MAX_PROBE:
        return None
    gen = torch.Generator().manual_seed(12345)
    x = torch.randn(P, n, k, generator=gen) * (torch.rand(P, n, k, generator=gen) < 0.1)
    w = torch.randn(P, k, m, generator=gen).requires_grad_(True)
    b = torch.randn(P, 1, m, generator=gen).requires_grad_(True) if bias else None
    g = torch.randn(P, n, m, generator=gen)
    out = bmm(x, w, b)
    out.backward(g)
    rows = SparseRows.from_dense(x)
    counted = _state["flops"]
    try:
        for kc in CANDIDATES:
            if torch.equal(_product(rows, w, b, kc), out) and torch.equal(
                    _weight_gradient(rows, g, kc), w.grad) and (
                    b is None or torch.equal(_bias_grad(g, b.shape), b.grad)):
                return kc
        return None
    finally:
        _state["flops"] = counted  # the probe's work is not training's


def block_size(P: int, n: int, k: int, m: int, bias: bool = True) -> int | None:
    """The block size with which the sparse kernels reproduce ``nets.bmm`` exactly for
    ``[P, n, k] @ [P, k, m]`` (forward and weight gradient) at the current torch thread
    count and float32 matmul precision, or None (then the dense product runs). Probed once
    per shape and setting."""
    with torch.inference_mode(False), torch.enable_grad():
        return _block_size(torch.get_num_threads(), torch.get_float32_matmul_precision(),
                           P, n, k, m, bias)


def rows_of(x: torch.Tensor) -> torch.Tensor | SparseRows:
    """``x [P, n, k]`` as :class:`SparseRows` where that pays (at most ``MAX_DENSITY``
    non-zero, no gradient wanted for ``x``), else ``x`` itself; either gives the same
    numbers through ``nets.bmm``."""
    if not _state["enabled"] or x.dim() != 3 or x.requires_grad or x.numel() == 0 \
            or x.dtype != torch.float32:
        return x
    rows = SparseRows.from_dense(x, MAX_DENSITY)
    return x if rows is None else rows
