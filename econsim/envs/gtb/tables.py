"""Tidy outcome tables of GTB episodes, from the per-step ``info`` a rollout records.

``info`` maps each key of ``GTB.step``'s info to an array ``[T, B, N]`` (per agent) or
``[T, B]`` (per world), ``T`` = steps of the episode. Metrics follow ``econsim.metrics``
(Diss §6.3.1): productivity = sum of coin, equality = 1 - normalised Gini, welfare =
productivity x equality; ``welfare_sum`` of an episode (or a period) = ``sum_t prod_t * eq_t``
over its steps (the Diss's social welfare), ``welfare_final`` = the product at the last step.
``skill`` is build pay in coin per house (skill multiplier x ``build_payment``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from econsim import metrics
from mechanisms.tax import marginal_rate

#: the columns of ``period_table`` besides ``world`` and ``rate_k``, in order; units and
#: meanings: ``econsim.dictionary.PERIODS`` (the one data dictionary)
PERIOD_COLUMNS: tuple[str, ...] = (
    "period", "agent", "skill", "pre_tax_income", "tax", "transfer", "post_tax_income",
    "marginal_rate", "coin", "labor", "utility", "wood_gathered", "stone_gathered",
    "houses_built", "build_income", "trade_income", "productivity", "equality", "welfare",
    "welfare_sum",
)


def _periods(x: np.ndarray, length: int) -> np.ndarray:
    """``[T, ...] -> [P, length, ...]`` (T must be a multiple of ``length``)."""
    return x.reshape(x.shape[0] // length, length, *x.shape[1:])


def episode_summary(game: Any, info: dict[str, np.ndarray], state: Any) -> dict[str, np.ndarray]:
    """Per world ``[B]`` and per agent ``[B, N]`` outcomes of a batch of whole episodes."""
    coin = info["coin"]  # [T, B, N]
    final = coin[-1]
    return {
        "productivity": metrics.productivity(final),
        "equality": metrics.equality(final),
        "welfare_sum": metrics.welfare_over_time(coin),
        "welfare_final": metrics.social_welfare(final),
        "tax_revenue": info["tax"].sum((0, 2)),
        "trade_volume": info["trade_volume"].sum(0).reshape(final.shape[0], -1).sum(1),
        "coin": final,
        "labor": info["labor"][-1],
        "utility": info["utility"][-1],
        "skill": state.skill * game.params.build_payment,
        "houses": info["built"].sum(0).astype(np.float64),
        "wood_gathered": info["gathered_wood"].sum(0),
        "stone_gathered": info["gathered_stone"].sum(0),
        "tax_paid": info["tax"].sum(0),
        "transfer": info["transfer"].sum(0),
        "trade_income": info["trade_income"].sum(0),
    }


def period_table(game: Any, info: dict[str, np.ndarray], state: Any,
                 rates: np.ndarray | None) -> pd.DataFrame:
    """One row per world x period x agent (columns ``world``, :data:`PERIOD_COLUMNS`,
    ``rate_0..rate_{K-1}``, the schedule in force). ``rates`` is ``[T, B, K]``."""
    L = game.period_length
    T, B, N = info["coin"].shape
    P = T // L
    T = P * L
    end = lambda k: _periods(info[k][:T], L)[:, -1]  # noqa: E731  [P, B, N] at period end
    total = lambda k: _periods(info[k][:T], L).sum(1)  # noqa: E731  [P, B, N] over the period
    income, tax, transfer = end("income"), end("tax"), end("transfer")
    coin = end("coin")
    if rates is None:
        rates = np.repeat(game.default_rates[None, None], T, 0).repeat(B, 1)
    sched = _periods(rates[:T], L)[:, 0]  # [P, B, K] set at the period's start
    cols: dict[str, np.ndarray] = {
        "world": np.broadcast_to(np.arange(B)[None, :, None], (P, B, N)),
        "period": np.broadcast_to(np.arange(P)[:, None, None], (P, B, N)),
        "agent": np.broadcast_to(np.arange(N)[None, None, :], (P, B, N)),
        "skill": np.broadcast_to(state.skill * game.params.build_payment, (P, B, N)),
        "pre_tax_income": income, "tax": tax, "transfer": transfer,
        "post_tax_income": income - tax + transfer,
        "marginal_rate": marginal_rate(income, game.cutoffs, sched),
        "coin": coin, "labor": end("labor"), "utility": end("utility"),
        "wood_gathered": total("gathered_wood"), "stone_gathered": total("gathered_stone"),
        "houses_built": total("built").astype(np.float64),
        "build_income": total("build_income"), "trade_income": total("trade_income"),
    }
    prod, eq = metrics.productivity(coin), metrics.equality(coin)  # [P, B]
    step_welfare = _periods(metrics.social_welfare(info["coin"][:T]), L).sum(1)  # [P, B]
    for k, v in (("productivity", prod), ("equality", eq), ("welfare", prod * eq),
                 ("welfare_sum", step_welfare)):
        cols[k] = np.broadcast_to(v[..., None], (P, B, N))
    for j in range(sched.shape[-1]):
        cols[f"rate_{j}"] = np.broadcast_to(sched[:, :, j, None], (P, B, N))
    df = pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in cols.items()})
    return df.sort_values(["world", "period", "agent"], kind="stable").reset_index(drop=True)
