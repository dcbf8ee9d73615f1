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
    """One index per row of ``probs [..., A]`` by inverse-CDF sampling (int64 ``[...]``).

    Never an index of probability 0: when a row's sum falls short of the draw by rounding
    (a draw of 1 - 2^-25 or more becomes 1.0 in float32), the last positive index, so a
    forbidden trailing action (an action mask) is never picked."""
    u = uniform(rng, (*probs.shape[:-1], 1), probs.dtype)
    last = probs.shape[-1] - 1 - (probs > 0).flip(-1).to(torch.int64).argmax(-1)
    return torch.minimum((probs.cumsum(-1) < u).sum(-1), last)


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


class ReplicaAdam:
    """Adam (Kingma and Ba 2015, torch's defaults) over stacked parameters ``[R, ...]`` where
    each replica steps only when it is ``active``: a replica that sits a step out keeps its
    parameters, moments and step count, so its training depends on its own schedule alone
    (HSD's decoder steps once a replica has collected its own batch of segments).

    ``step(params, active)`` reads the gradients in ``params[k].grad`` and updates the
    tensors in place; ``state_dict`` / ``load_state_dict`` for checkpoints.
    """

    def __init__(self, params: dict[str, torch.Tensor], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        R = next(iter(params.values())).shape[0]
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}
        self.steps = torch.zeros(R, dtype=torch.float64)

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """One Adam step of the replicas where ``active [R]`` (bool) is set."""
        b1, b2 = self.betas
        self.steps += active.double()
        for k, p in self.params.items():
            if p.grad is None:
                continue
            on = active.reshape(-1, *[1] * (p.ndim - 1))
            n = self.steps.clamp(min=1).reshape(on.shape)
            g = p.grad
            m = torch.where(on, b1 * self.m[k] + (1 - b1) * g, self.m[k])
            v = torch.where(on, b2 * self.v[k] + (1 - b2) * g * g, self.v[k])
            c1 = (1 - b1 ** n).to(p.dtype)
            c2 = (1 - b2 ** n).to(p.dtype)
            new = p - self.lr * (m / c1) / ((v / c2).sqrt() + self.eps)
            p.copy_(torch.where(on, new, p))
            self.m[k], self.v[k] = m, v

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    def state_dict(self) -> dict:
        return {"m": {k: v.clone() for k, v in self.m.items()},
                "v": {k: v.clone() for k, v in self.v.items()}, "steps": self.steps.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.m = {k: v.clone() for k, v in state["m"].items()}
        self.v = {k: v.clone() for k, v in state["v"].items()}
        self.steps = state["steps"].clone()
