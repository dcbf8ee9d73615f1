"""Distribution tables of an economy's outcomes: Lorenz curves, tax incidence, and the
equality-productivity trade-off across mechanisms (tidy pandas; the app draws them).

Inputs are econsim's own tables: a per-period table (one row per mechanism x seed x episode
x period x agent: ``pre_tax_income``, ``tax``, ``transfer``, ``post_tax_income``,
``marginal_rate``, ``skill``; a what-if's ``periods`` or a run's ``periods.parquet``) and a
per-episode table (``productivity``, ``equality``).

* :func:`incomes` — each agent's income over an episode, before tax and after tax and the
  equal transfer (the unit of the distribution: an agent in an episode).
* :func:`lorenz` — the Lorenz curve of either income per group (mechanism): the share of
  all income held by the poorest share of agent-episodes, from (0, 0) to (1, 1); with the
  Gini coefficient of ``econsim.metrics.gini`` (the one of every equality column).
* :func:`incidence` — by skill group or by pre-tax income decile: the average tax rate
  (tax paid / pre-tax income, ratios of sums), the average net rate (tax minus transfer,
  over pre-tax income: negative for net recipients) and the mean marginal rate faced.
* :func:`tax_curve` — ``T(z)``, after-tax income, average and marginal rates of schedules.
* :func:`tradeoff` — each mechanism x seed as a point (mean productivity and equality over
  its episodes) with its welfare ``productivity x equality``, and which points are on the
  frontier (no other point has both more productivity and more equality); iso-welfare
  curves are ``equality = w / productivity`` (:func:`iso_welfare`, :func:`iso_welfare_of`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from econsim import metrics
from mechanisms.tax import bracket_tax, marginal_rate

__all__ = ["incomes", "lorenz", "incidence", "tradeoff", "iso_welfare", "iso_welfare_of",
           "tax_curve"]

EPISODE_KEYS = ("seed", "episode", "agent")


def _need(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: the table has no column(s) {', '.join(missing)} "
                         f"(columns: {', '.join(map(str, df.columns))})")


def incomes(periods: pd.DataFrame, by: str = "mechanism") -> pd.DataFrame:
    """``by, seed, episode, agent, skill, pre_tax, tax, transfer, post_tax, marginal_rate``:
    sums over the episode's periods per agent (``marginal_rate``: its mean)."""
    _need(periods, (by, *EPISODE_KEYS, "skill", "pre_tax_income", "tax", "transfer",
                    "post_tax_income", "marginal_rate"), "incomes")
    return periods.groupby([by, *EPISODE_KEYS], sort=False).agg(
        skill=("skill", "first"), pre_tax=("pre_tax_income", "sum"), tax=("tax", "sum"),
        transfer=("transfer", "sum"), post_tax=("post_tax_income", "sum"),
        marginal_rate=("marginal_rate", "mean")).reset_index()


def _lorenz_points(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The curve's points and the Gini of ``x`` as everywhere in econsim
    (``econsim.metrics.gini``, normalised so one holder of everything gives 1)."""
    x = np.sort(np.maximum(np.asarray(x, np.float64), 0.0))
    n = len(x)
    people = np.arange(n + 1) / n
    total = x.sum()
    cum = np.concatenate([[0.0], np.cumsum(x)]) / total if total > 0 else people
    return people, cum, float(metrics.gini(x))


def lorenz(periods: pd.DataFrame, by: str = "mechanism") -> pd.DataFrame:
    """``by, income (pre_tax / post_tax), people, share, gini``: the Lorenz curve of agent
    incomes per episode for each group, pooled over seeds and episodes (negative incomes
    count as 0)."""
    inc = incomes(periods, by)
    rows = []
    for group, part in inc.groupby(by, sort=False):
        for kind in ("pre_tax", "post_tax"):
            people, share, gini = _lorenz_points(part[kind].to_numpy())
            rows.append(pd.DataFrame({by: group, "income": kind, "people": people,
                                      "share": share, "gini": gini}))
    return pd.concat(rows, ignore_index=True)


def incidence(periods: pd.DataFrame, by: str = "mechanism", group: str = "decile",
              bins: int = 10) -> pd.DataFrame:
    """Tax incidence per ``by`` and ``group``: ``"decile"`` (pre-tax income deciles of the
    agent-episodes of each ``by`` group, 1 = poorest; ``bins`` quantiles) or ``"skill"``
    (``bins`` equal-width bands over the skills in the table, coin per house, labelled by
    their range).
    Columns ``by, group, agents, pre_tax, average_rate, net_rate, marginal_rate``."""
    if group not in ("decile", "skill"):
        raise ValueError(f"incidence: group {group!r} is not allowed (allowed: decile, skill)")
    if not isinstance(bins, int) or not 1 <= bins <= 100:
        raise ValueError(f"incidence: bins must be an integer in 1..100, got {bins!r}")
    inc = incomes(periods, by)
    low, high = float(inc["skill"].min()), float(inc["skill"].max())
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)  # same for all
    parts = []
    for name, part in inc.groupby(by, sort=False):
        part = part.copy()
        if group == "decile":
            ranks = part["pre_tax"].rank(method="first")
            part["group"] = np.ceil(ranks / len(part) * bins).astype(int).clip(1, bins)
        else:
            idx = np.clip(np.searchsorted(edges, part["skill"], side="right") - 1, 0, bins - 1)
            part["group"] = idx  # band index (sorts numerically), labelled below
        g = part.groupby("group", sort=True)
        out = g.agg(agents=("pre_tax", "size"), pre_tax=("pre_tax", "sum"), tax=("tax", "sum"),
                    transfer=("transfer", "sum"), marginal_rate=("marginal_rate", "mean"))
        safe = out["pre_tax"].where(out["pre_tax"] > 0)
        out["average_rate"] = out["tax"] / safe
        out["net_rate"] = (out["tax"] - out["transfer"]) / safe
        out["pre_tax"] = out["pre_tax"] / out["agents"]  # mean per agent-episode
        out = out.reset_index()
        if group == "skill":
            out["group"] = [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in out["group"]]
        parts.append(out.assign(**{by: name}))
    cols = [by, "group", "agents", "pre_tax", "average_rate", "net_rate", "marginal_rate"]
    return pd.concat(parts, ignore_index=True)[cols]


def tradeoff(episodes: pd.DataFrame, by: str = "mechanism") -> pd.DataFrame:
    """``by, seed, productivity, equality, welfare, frontier``: one point per group x seed
    (means over its episodes); ``frontier`` marks the points no other point dominates
    (at least as productive and as equal, and better in one)."""
    _need(episodes, (by, "seed", "productivity", "equality"), "tradeoff")
    pts = episodes.groupby([by, "seed"], sort=False)[["productivity", "equality"]].mean(
        ).reset_index()
    pts["welfare"] = pts["productivity"] * pts["equality"]
    p, e = pts["productivity"].to_numpy(), pts["equality"].to_numpy()
    dominated = ((p[None, :] >= p[:, None]) & (e[None, :] >= e[:, None])
                 & ((p[None, :] > p[:, None]) | (e[None, :] > e[:, None]))).any(1)
    pts["frontier"] = ~dominated
    return pts


def iso_welfare_of(points: pd.DataFrame, shares: tuple[float, ...] = (0.5, 0.75, 1.0),
                   grid: int = 60) -> pd.DataFrame:
    """:func:`iso_welfare` at ``shares`` of the best welfare among :func:`tradeoff`'s
    ``points``, over productivity from 0.8 x their lowest to 1.2 x their highest."""
    if points.empty or not (points["welfare"] > 0).any():
        return iso_welfare([], np.array([]))
    top = float(points["welfare"].max())
    p = np.linspace(max(points["productivity"].min() * 0.8, 1e-9),
                    points["productivity"].max() * 1.2, grid)
    return iso_welfare([top * f for f in shares], p)


def iso_welfare(levels: list[float], productivity: np.ndarray) -> pd.DataFrame:
    """``welfare, productivity, equality`` on the curves ``equality = welfare /
    productivity`` (equality at most 1) for each welfare level, over ``productivity``."""
    p = np.asarray(productivity, np.float64)
    p = p[p > 0]
    rows = [pd.DataFrame({"welfare": w, "productivity": p, "equality": w / p})
            for w in levels]
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["welfare", "productivity", "equality"])
    return out[out["equality"] <= 1.0].reset_index(drop=True)


def tax_curve(schedules: pd.DataFrame, z_max: float | None = None,
              points: int = 201) -> pd.DataFrame:
    """Tax due ``T(z)`` (eq. 6.7), after-tax income, average and marginal rate on a grid of
    incomes ``z`` in ``[0, z_max]``, for each mechanism of ``schedules`` (columns
    ``mechanism`` (optional), ``lower``, ``rate``). Default ``z_max``: 1.5 x the top cutoff."""
    if schedules is None or schedules.empty:
        return pd.DataFrame(columns=["mechanism", "income", "tax", "after_tax", "average_rate",
                                     "marginal_rate"])
    if "mechanism" not in schedules:
        schedules = schedules.assign(mechanism="schedule")
    top = float(schedules["lower"].max())
    z = np.linspace(0.0, z_max or max(1.5 * top, 10.0), points)
    parts = []
    for name, s in schedules.groupby("mechanism", sort=False):
        cutoffs, rates = s["lower"].to_numpy(float), s["rate"].to_numpy(float)
        due = bracket_tax(z[:, None], cutoffs, rates)[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = np.where(z > 0, due / z, rates[0])
        parts.append(pd.DataFrame({
            "mechanism": name, "income": z, "tax": due, "after_tax": z - due,
            "average_rate": avg, "marginal_rate": marginal_rate(z[:, None], cutoffs, rates)[:, 0],
        }))
    return pd.concat(parts, ignore_index=True)
