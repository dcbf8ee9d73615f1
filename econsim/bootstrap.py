"""Wild cluster bootstrap p-values of OLS coefficients, null imposed (WCR), in numpy.

Cameron, Gelbach and Miller (2008), "Bootstrap-based improvements for inference with
clustered errors", the restricted wild cluster bootstrap-t: to test ``beta_j = 0``

1. fit the model without regressor ``j`` (the null imposed): fitted values ``y~``,
   residuals ``u~``;
2. for each draw ``b``, give every cluster ``g`` one weight ``v_bg`` and build
   ``y*_b = y~ + v_bg u~`` (all rows of cluster ``g`` share the weight);
3. fit the full model on ``y*_b`` and compute its cluster-robust (CR1) t statistic
   ``t*_b`` for ``beta_j = 0``;
4. the p-value is the share of draws with ``|t*_b| >= |t|``, ``t`` the analytic
   cluster-robust t statistic of the data.

Weights: ``webb`` (six points +-sqrt(1/2), +-1, +-sqrt(3/2), each with probability 1/6;
Webb 2014, recommended with few clusters) or ``rademacher`` (+-1). When the draws asked for
are at least the number of distinct weight vectors (``2^G`` Rademacher, ``6^G`` Webb), every
vector is used once instead (full enumeration), so the p-value is exact and does not depend
on the seed.

Ties count as "at least as extreme". A weight vector proportional to ``(1, ..., 1)``
reproduces ``|t|`` exactly, and with few clusters such vectors are a large share of all
vectors (2 of the 4 Rademacher vectors with 2 clusters), so counting them is what keeps a
p-value from looking small when the data cannot say anything: with ``G`` clusters and
Rademacher weights the p-value is at least ``2 / 2^G`` (0.5 with 2 clusters).
(The ``wildboottest`` package counts ties as not extreme and returns ``p = 0`` for a null
effect in about a quarter of samples with two clusters, which is why this module exists.)

The draws are computed without refitting, from cluster-level sums (the "fast and wild"
algebra of Roodman et al. 2019): with ``A = (X'X)^-1``, ``a`` its row ``j``, cluster scores
``s_g = X_g' u~_g``, ``c_g = a s_g`` and ``D_hg = (X_h'X_h a)' A s_g``,
``beta*_j = sum_g v_g c_g`` and the score of cluster ``h`` projected on ``a`` is
``v_h c_h - sum_g v_g D_hg``; ``tests/test_analysis.py`` checks this against refitting OLS
for every weight vector.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

WEIGHTS = ("webb", "rademacher")
_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
_RADEMACHER = np.array([-1.0, 1.0])
_TIE = 1e-9  # relative tolerance under which |t*| and |t| count as equal
MAX_ENUMERATION = 2 ** 16  # never enumerate more vectors than this
MIN_DRAWS, MAX_DRAWS = 99, 100_000
MAX_WEIGHTS = 10 ** 7  # draws x clusters (each [B, G] array of a p-value is 8 bytes a weight)


def check_draws(draws: object, n_clusters: int | None = None) -> int:
    """``draws`` if it is an integer in [MIN_DRAWS, MAX_DRAWS] and, given ``n_clusters``,
    ``draws x n_clusters`` is at most MAX_WEIGHTS; else a one-line ``ValueError``."""
    if (isinstance(draws, bool) or not isinstance(draws, int | np.integer)
            or not MIN_DRAWS <= draws <= MAX_DRAWS):
        raise ValueError(f"bootstrap draws: {draws!r} is not allowed (an integer from "
                         f"{MIN_DRAWS} to {MAX_DRAWS:,})")
    if n_clusters is not None and int(draws) * n_clusters > MAX_WEIGHTS:
        most = MAX_WEIGHTS // n_clusters
        fix = (f"use at most {most:,} draws" if most >= MIN_DRAWS else
               "too many clusters for the bootstrap; turn it off")
        raise ValueError(f"bootstrap draws: {int(draws):,} draws x {n_clusters:,} clusters "
                         f"is more than {MAX_WEIGHTS:,} weights: {fix}")
    return int(draws)


@dataclass(frozen=True)
class Draws:
    """The weight vectors ``[B, G]`` of a bootstrap and how they were made."""

    v: np.ndarray
    weights: str
    enumerated: bool
    seed: int

    def describe(self) -> str:
        how = (f"all {len(self.v)} weight vectors (full enumeration)" if self.enumerated
               else f"{len(self.v)} draws (seed {self.seed})")
        return (f"wild cluster bootstrap-t, null imposed (WCR), {self.weights.capitalize()} "
                f"weights, {how}")


def draws(n_clusters: int, draws: int = 999, weights: str = "webb", seed: int = 0) -> Draws:
    """``draws`` weight vectors for ``n_clusters`` clusters (every vector once if there are
    no more than ``draws`` of them)."""
    if weights not in WEIGHTS:
        raise ValueError(f"bootstrap weights {weights!r} are not allowed (allowed: "
                         f"{', '.join(WEIGHTS)})")
    check_draws(draws, n_clusters)
    points = _WEBB if weights == "webb" else _RADEMACHER
    total = len(points) ** n_clusters
    if total <= min(draws, MAX_ENUMERATION):
        v = np.array(list(itertools.product(points, repeat=n_clusters)), dtype=np.float64)
        return Draws(v, weights, True, seed)
    rng = np.random.default_rng(seed)
    return Draws(rng.choice(points, size=(int(draws), n_clusters)), weights, False, seed)


def _cluster_sums(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Row sums of ``values`` ``[N, ...]`` within each group -> ``[G, ...]``."""
    out = np.zeros((n_groups, *values.shape[1:]))
    np.add.at(out, groups, values)
    return out


def cr1_factor(n_obs: int, n_params: int, n_clusters: int) -> float:
    """statsmodels' CR1 small-sample factor ``G/(G-1) * (N-1)/(N-K)``."""
    return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)


def wcr_pvalue(X: np.ndarray, y: np.ndarray, groups: np.ndarray, j: int,
               v: np.ndarray) -> tuple[float, np.ndarray, float]:
    """WCR p-value of ``beta_j = 0``: ``(p, t*[B], t)``.

    ``X`` ``[N, K]``, ``y`` ``[N]``, ``groups`` ``[N]`` integer codes ``0..G-1``, ``v`` the
    weight vectors ``[B, G]``.
    """
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    G = int(groups.max()) + 1
    N, K = X.shape
    ssc = cr1_factor(N, K, G)
    A = np.linalg.pinv(X.T @ X)
    a = A[j]
    # the analytic CR1 t statistic of the data
    beta = A @ (X.T @ y)
    resid = y - X @ beta
    score = _cluster_sums(X * resid[:, None], groups, G) @ a  # [G]
    t_hat = beta[j] / np.sqrt(ssc * np.sum(score ** 2))
    # the null imposed: fit without column j
    Xr = np.delete(X, j, axis=1)
    u = y - Xr @ np.linalg.lstsq(Xr, y, rcond=None)[0]
    S = _cluster_sums(X * u[:, None], groups, G)  # [G, K] scores s_g
    c = S @ a  # [G]
    U = _cluster_sums(X * (X @ a)[:, None], groups, G)  # [G, K] X_h'X_h a
    D = U @ (A @ S.T)  # [G, G] D_hg
    num = v @ c  # [B] beta*_j
    q = v * c[None, :] - v @ D.T  # [B, G]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_star = num / np.sqrt(ssc * np.sum(q ** 2, axis=1))
    if not np.isfinite(t_hat):
        return float("nan"), t_star, float(t_hat)
    extreme = np.abs(np.nan_to_num(t_star, nan=0.0)) >= abs(t_hat) * (1 - _TIE)
    return float(extreme.mean()), t_star, float(t_hat)
