"""Means and 95% confidence intervals across seeds, and paired differences between mechanisms.

Seeds are the unit of replication: the episodes of one seed share its agents and its world,
so they are not independent draws. Every function here therefore first averages each
outcome over the episodes of a seed (:func:`seed_means`), then works on those per-seed
values:

* :func:`confidence` — per group (e.g. mechanism) and outcome, the mean over seeds and the
  Student-t interval ``mean +- t_{1-a/2, n-1} s / sqrt(n)`` with ``n`` seeds (the interval of
  statsmodels' ``DescrStatsW.tconfint_mean``); no interval with one seed;
* :func:`paired_differences` — per group and outcome, the difference to a ``baseline`` group
  seed by seed (all mechanisms of a what-if play the same seeds, so the comparison is
  paired: the interval of the mean difference is the paired t interval, as
  ``scipy.stats.ttest_rel``), over the seeds both have.

An outcome that is not finite in a seed (e.g. ``nash`` = -inf when an agent holds no coin)
gives a mean of +-inf and no interval for its group. :func:`readable` turns either table
into the layout of a paper's table (an outcome per row, a group per column, ``mean [low,
high]``). Used by the what-if summary (``WhatIfResult.confidence``), the experiment and runs
pages, the HTML reports and the app's tables and bars.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["seed_means", "confidence", "paired_differences", "half_width", "readable"]


def _check(table: pd.DataFrame, outcomes: Sequence[str], by: str, unit: str) -> list[str]:
    outcomes = [outcomes] if isinstance(outcomes, str) else list(outcomes)
    missing = [c for c in (by, unit, *outcomes) if c not in table.columns]
    if missing:
        raise ValueError(f"no column(s) {', '.join(map(repr, missing))} in the table "
                         f"(columns: {', '.join(map(str, table.columns))})")
    bad = [c for c in outcomes if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise ValueError(f"outcome(s) {', '.join(map(repr, bad))} are not numeric")
    return outcomes


def _level(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    return level


def seed_means(table: pd.DataFrame, outcomes: Sequence[str], by: str = "mechanism",
               unit: str = "seed") -> pd.DataFrame:
    """One row per ``by`` x ``unit`` (seed): the mean of each outcome over its episodes,
    ``by`` in the order it first appears."""
    outcomes = _check(table, outcomes, by, unit)
    return table.groupby([by, unit], sort=False)[outcomes].mean().reset_index()


def half_width(values: np.ndarray, level: float = 0.95) -> float:
    """Half-width of the Student-t interval of the mean of ``values``,
    ``t_{(1+level)/2, n-1} s / sqrt(n)``; 0 for fewer than two values."""
    values = np.asarray(values, np.float64)
    n = len(values)
    if n < 2:
        return 0.0
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))


def _interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean and the t interval of ``values`` (NaN bounds for fewer than 2 or non-finite)."""
    n = len(values)
    mean = float(np.mean(values)) if n else np.nan
    if n < 2 or not np.isfinite(values).all():
        return mean, np.nan, np.nan
    half = half_width(values, level)
    return mean, mean - half, mean + half


def confidence(table: pd.DataFrame, outcomes: Sequence[str], by: str = "mechanism",
               unit: str = "seed", level: float = 0.95) -> pd.DataFrame:
    """``by, outcome, mean, ci_low, ci_high, seeds``: the mean over seeds of each seed's
    mean outcome, with its ``level`` t interval across seeds (module docstring)."""
    level = _level(level)
    per = seed_means(table, outcomes, by, unit)
    rows = []
    for group, part in per.groupby(by, sort=False):
        for c in [o for o in per.columns if o not in (by, unit)]:
            mean, low, high = _interval(part[c].to_numpy(np.float64), level)
            rows.append({by: group, "outcome": c, "mean": mean, "ci_low": low, "ci_high": high,
                         "seeds": len(part)})
    return pd.DataFrame(rows, columns=[by, "outcome", "mean", "ci_low", "ci_high", "seeds"])


def paired_differences(table: pd.DataFrame, outcomes: Sequence[str], baseline: str,
                       by: str = "mechanism", unit: str = "seed",
                       level: float = 0.95) -> pd.DataFrame:
    """``by, outcome, baseline, difference, ci_low, ci_high, seeds``: per group other than
    ``baseline``, the mean over seeds of (the group's seed mean - the baseline's seed mean),
    with the paired t interval, over the seeds both groups have."""
    level = _level(level)
    per = seed_means(table, outcomes, by, unit)
    groups = list(dict.fromkeys(per[by]))
    if baseline not in groups:
        raise ValueError(f"baseline {baseline!r} is not among the {by} values "
                         f"({', '.join(map(str, groups))})")
    cols = [o for o in per.columns if o not in (by, unit)]
    base = per[per[by] == baseline].set_index(unit)[cols]
    rows = []
    for group in groups:
        if group == baseline:
            continue
        other = per[per[by] == group].set_index(unit)[cols]
        shared = other.index.intersection(base.index)
        diff = other.loc[shared] - base.loc[shared]
        for c in cols:
            mean, low, high = _interval(diff[c].to_numpy(np.float64), level)
            rows.append({by: group, "outcome": c, "baseline": baseline, "difference": mean,
                         "ci_low": low, "ci_high": high, "seeds": len(shared)})
    return pd.DataFrame(rows, columns=[by, "outcome", "baseline", "difference", "ci_low",
                                       "ci_high", "seeds"])


def _number(x: float, digits: int) -> str:
    if not np.isfinite(x):
        return "" if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:,.{digits}f}"


def readable(table: pd.DataFrame, by: str = "mechanism", value: str = "mean",
             digits: int = 3) -> pd.DataFrame:
    """A :func:`confidence` or :func:`paired_differences` table as people read it: one row
    per outcome, one column per ``by`` value (in their order), each cell
    ``value [ci_low, ci_high]`` rounded to ``digits`` (the value alone without an interval,
    e.g. with one seed)."""
    missing = [c for c in (by, "outcome", value, "ci_low", "ci_high") if c not in table]
    if missing:
        raise ValueError(f"no column(s) {', '.join(map(repr, missing))} in the table "
                         f"(columns: {', '.join(map(str, table.columns))})")
    cells = [
        _number(v, digits) + (f" [{_number(lo, digits)}, {_number(hi, digits)}]"
                              if np.isfinite(lo) and np.isfinite(hi) else "")
        for v, lo, hi in zip(table[value], table["ci_low"], table["ci_high"], strict=True)]
    wide = table.assign(cell=cells).pivot(index="outcome", columns=by, values="cell")
    wide = wide.reindex(index=list(dict.fromkeys(table["outcome"])),
                        columns=list(dict.fromkeys(table[by])))
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index().fillna("")
