"""Social metrics of an economy, defined once (Diss §6.3.1; AI-Economist Foundation).

All functions are numpy and batch-first: ``coin`` has shape ``[..., n_agents]`` (the agents
on the last axis, any number of leading world/batch axes) and the result has one value per
world, shape ``coin.shape[:-1]`` (a 0-d array for a single world).

* productivity ``prod = sum_i x_i`` (Diss §6.3.1: "the sum of all agents' coins");
* Gini ``G = sum_ij |x_i - x_j| / (2 n sum_i x_i)``, multiplied by ``n / (n - 1)`` as the
  AI-Economist does for small n (its exact path, used for n < 30), so that one agent holding
  everything gives ``G = 1`` (0 when all coin is 0). For n >= 30 the AI-Economist switches
  to a cumulative-sum approximation; here the exact normalised value is used for every n;
* equality ``eq = 1 - G`` (Diss §6.3.1: 1 = uniform coin, 0 = one agent has all of it);
* social welfare ``eq * prod`` per world and, over an episode, ``sum_t prod_t * eq_t``
  (the GTB designer's objective, Diss §6.3.1 / §C.2.1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_coin(coin: ArrayLike, min_rank: int = 1, what: str = "coin") -> np.ndarray:
    """``coin`` as a float array of rank >= ``min_rank`` without NaN/inf (ValueError if not)."""
    try:
        x = np.asarray(coin, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be numeric, got {type(coin).__name__}") from err
    if x.ndim < min_rank:
        axes = "[..., n_agents]" if min_rank == 1 else "[T, ..., n_agents]"
        raise ValueError(f"{what} must have rank >= {min_rank} ({axes}), got shape {x.shape}")
    if x.shape[-1] == 0:
        raise ValueError(f"{what} has no agents (last axis has length 0)")
    if np.isnan(x).any():
        raise ValueError(f"{what} contains NaN ({int(np.isnan(x).sum())} values)")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contains infinite values")
    return x


def productivity(coin: ArrayLike) -> np.ndarray:
    """Total coin of each world, ``sum_i x_i`` over the last axis (Diss §6.3.1, prod_t)."""
    return _as_coin(coin).sum(-1)


def gini(coin: ArrayLike) -> np.ndarray:
    """Normalised Gini coefficient of each world (Diss §6.3.1; AI-Economist ``get_gini``).

    ``G = sum_ij |x_i - x_j| / (2 n sum x) * n / (n - 1)``, 0 where total coin is 0 and for
    a single agent. In [0, 1] for non-negative coin (negative coin is allowed but then the
    value is not bounded).
    Computed from sorted coin in O(n log n): ``sum_ij |x_i - x_j| = 2 sum_k (2k - n - 1) x_(k)``.
    """
    x = np.sort(_as_coin(coin), axis=-1)
    n = x.shape[-1]
    if n == 1:
        return np.zeros(x.shape[:-1])
    k = np.arange(1, n + 1)
    pair_sum = 2.0 * (x * (2 * k - n - 1)).sum(-1)  # sum_ij |x_i - x_j|
    total = x.sum(-1)
    safe = np.where(total == 0, 1.0, total)
    return np.where(total == 0, 0.0, pair_sum / (2 * (n - 1) * safe))


def equality(coin: ArrayLike) -> np.ndarray:
    """Equality ``eq = 1 - G`` of each world (Diss §6.3.1): 1 = equal coin, 0 = one has all."""
    return 1.0 - gini(coin)


def social_welfare(coin: ArrayLike) -> np.ndarray:
    """``eq * prod`` of each world: the one-step social welfare (Diss §6.3.1)."""
    x = _as_coin(coin)
    return equality(x) * productivity(x)


def welfare_over_time(coin_t: ArrayLike) -> np.ndarray:
    """The paper's social welfare ``sum_t prod_t * eq_t`` over axis 0 (Diss §6.3.1, §C.2.1).

    ``coin_t`` has shape ``[T, ..., n_agents]`` (coin at each step); result ``[...]``.
    """
    x = _as_coin(coin_t, min_rank=2, what="coin_t")
    return social_welfare(x).sum(0)
