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

The standard social welfare functions of public economics, beside ``eq * prod`` (each over
the last axis; ``u`` utilities, ``x`` incomes or coin):

* utilitarian ``W = sum_i u_i`` (:func:`utilitarian`) and its mean (:func:`utilitarian_mean`);
* Atkinson inequality index ``A_e = 1 - EDE_e / mean(x)`` with the *equally distributed
  equivalent* income ``EDE_e = (mean_i x_i^(1-e))^(1/(1-e))`` for inequality aversion
  ``e >= 0``, ``e != 1``, and the geometric mean for ``e = 1`` (:func:`atkinson`,
  :func:`atkinson_equivalent`; Atkinson 1970). ``e = 0``: no aversion, ``A = 0``; the larger
  ``e``, the more weight on the poorest. Defined for ``x >= 0``: a zero income makes ``EDE =
  0`` (``A = 1``) when ``e >= 1``; ``A = 0`` where every income is 0;
* Nash ``W = sum_i log x_i`` (:func:`nash`; ``-inf`` when an income is 0 or negative);
* Rawlsian (maximin) ``W = min_i u_i`` (:func:`rawlsian`).
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


def utilitarian(utility: ArrayLike) -> np.ndarray:
    """Utilitarian welfare ``sum_i u_i`` of each world (utilities on the last axis)."""
    return _as_coin(utility, what="utility").sum(-1)


def utilitarian_mean(utility: ArrayLike) -> np.ndarray:
    """Mean utility ``(1/n) sum_i u_i`` of each world."""
    return _as_coin(utility, what="utility").mean(-1)


def rawlsian(utility: ArrayLike) -> np.ndarray:
    """Rawlsian (maximin) welfare ``min_i u_i``: the worst-off agent's utility."""
    return _as_coin(utility, what="utility").min(-1)


def nash(income: ArrayLike) -> np.ndarray:
    """Nash welfare ``sum_i log x_i`` of each world; ``-inf`` where an income is <= 0."""
    x = _as_coin(income, what="income")
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), -np.inf)
    return logs.sum(-1)


def _aversion(epsilon: float) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float | np.floating) \
            or not np.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon (inequality aversion) must be a finite number >= 0, got "
                         f"{epsilon!r}")
    return float(epsilon)


def atkinson_equivalent(income: ArrayLike, epsilon: float = 1.0) -> np.ndarray:
    """Equally distributed equivalent income ``EDE_e`` of each world (module docstring): the
    income that, given to everyone, is as good as the actual distribution under inequality
    aversion ``epsilon``. Incomes must be >= 0."""
    e = _aversion(epsilon)
    x = _as_coin(income, what="income")
    if (x < 0).any():
        raise ValueError(f"income: the Atkinson measures need incomes >= 0, got a minimum of "
                         f"{x.min():g}")
    if e == 0:
        return x.mean(-1)
    with np.errstate(divide="ignore"):
        if e == 1:
            return np.exp(np.log(x).mean(-1))  # geometric mean; 0 if an income is 0
        if e > 1:  # x^(1-e) is +inf at 0: the EDE is 0 there
            zero = (x == 0).any(-1)
            safe = np.where(x == 0, 1.0, x)
            ede = np.mean(safe ** (1 - e), -1) ** (1 / (1 - e))
            return np.where(zero, 0.0, ede)
        return np.mean(x ** (1 - e), -1) ** (1 / (1 - e))


def atkinson(income: ArrayLike, epsilon: float = 1.0) -> np.ndarray:
    """Atkinson inequality index ``1 - EDE_e / mean(x)`` of each world, in [0, 1]; 0 where
    all incomes are equal or all are 0."""
    x = _as_coin(income, what="income")
    ede = atkinson_equivalent(x, epsilon)
    mean = x.mean(-1)
    safe = np.where(mean == 0, 1.0, mean)
    return np.where(mean == 0, 0.0, 1.0 - ede / safe)


#: inequality aversion of the tables' ``atkinson`` / ``atkinson_income`` columns
ATKINSON_EPSILON = 1.0


def welfare_functions(coin: ArrayLike, utility: ArrayLike, epsilon: float = ATKINSON_EPSILON
                      ) -> dict[str, np.ndarray]:
    """Every standard welfare measure of each world, by the names the tables use:
    ``utilitarian`` and ``utilitarian_mean`` (of ``utility``), ``atkinson`` and
    ``atkinson_income`` (of ``coin`` at aversion ``epsilon``), ``nash`` (of ``coin``),
    ``rawlsian`` (of ``utility``). Negative coin (debt) counts as 0 in the Atkinson measures."""
    x = np.maximum(_as_coin(coin), 0.0)
    return {"utilitarian": utilitarian(utility), "utilitarian_mean": utilitarian_mean(utility),
            "atkinson": atkinson(x, epsilon), "atkinson_income": atkinson_equivalent(x, epsilon),
            "nash": nash(coin), "rawlsian": rawlsian(utility)}
