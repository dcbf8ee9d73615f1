"""What keeps stacked replicas (seeds) apart: their random draws and their statistics.

Random draws come from one stream per replica (``econsim.core.ReplicaRNG``): every draw is
split along its leading, replica-major axis (member layout ``[R*K, ...]`` or world layout
``[R*B, ...]``), so replica ``r``'s actions, noise and minibatches come from ``seeds[r]``
alone, whatever other seeds train beside it.

Reported statistics (returns, incentives, event counts) are reduced per replica on a
contiguous float64 copy of its own block (``per_replica``): a batched float32 reduction over
all replicas may round a replica's sum differently depending on its neighbours.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from econsim.core import ReplicaRNG


def uniform(rng: ReplicaRNG, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Uniforms in [0, 1) of ``shape`` (leading axis replica-major)."""
    return torch.from_numpy(rng.random(tuple(shape))).to(dtype)


def normal(rng: ReplicaRNG, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Standard normals of ``shape`` (leading axis replica-major)."""
    return torch.from_numpy(rng.standard_normal(tuple(shape))).to(dtype)


def categorical(rng: ReplicaRNG, probs: torch.Tensor) -> torch.Tensor:
    """One index per row of ``probs [..., A]`` by inverse-CDF sampling (int64 ``[...]``)."""
    u = uniform(rng, (*probs.shape[:-1], 1), probs.dtype)
    return (probs.cumsum(-1) < u).sum(-1).clamp(max=probs.shape[-1] - 1)


def permutations(rng: ReplicaRNG, n: int) -> torch.Tensor:
    """One permutation of ``range(n)`` per replica, ``[R, n]`` (minibatch order)."""
    return torch.from_numpy(rng.permutations(n).astype(np.int64))


def per_replica(x: torch.Tensor | np.ndarray, R: int,
                reduce: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``reduce`` applied to each replica's block of world-layout ``x [T, R*B, ...]``, given as
    a contiguous float64 ``[T, B, ...]`` array; results stacked ``[R, ...]``."""
    a = (x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).astype(np.float64)
    a = a.reshape(a.shape[0], R, a.shape[1] // R, *a.shape[2:])
    return np.stack([reduce(np.ascontiguousarray(a[:, r])) for r in range(R)])


def episode_mean(x: torch.Tensor | np.ndarray, R: int) -> np.ndarray:
    """Per replica, the sum over steps averaged over its episodes: ``[T, R*B, ...] -> [R, ...]``
    (float64)."""
    return per_replica(x, R, lambda a: a.sum(0).mean(0))
