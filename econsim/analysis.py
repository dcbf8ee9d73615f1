"""Tidy tables of stored runs and OLS regressions with clustered standard errors.

>>> from econsim import analysis
>>> periods = analysis.tidy(["gtb_flat30-...", "gtb_us_federal-..."])   # per agent x period
>>> episodes = analysis.episode_table(["gtb_flat30-...", "gtb_us_federal-..."])  # per episode
>>> fit = analysis.regress("welfare ~ top_rate + C(mechanism)", episodes, cluster="seed")
>>> print(fit.summary_text()); fit.table; fit.to_csv("welfare.csv")
>>> analysis.data_dictionary("episodes")                            # column, unit, meaning

Tables
------
``tidy(runs, table)`` concatenates one stored table (``periods``, ``episodes`` or ``agents``)
of the given runs and adds, in front, the run metadata ``run_id, scenario, env, algorithm,
mechanism, seed`` (``mechanism``: the scenario's ``[mechanism]`` name, or ``metagrad`` /
``dual_rl`` for a learned planner, or ``none``), for runs made by ``econsim sweep`` the
``sweep`` id and one column per swept parameter (``mechanism.rate`` -> ``mechanism_rate``),
and, where the table has the tax schedule (``rate_0..rate_{K-1}``), ``top_rate`` (the rate of
the highest bracket) and ``mean_rate`` (the unweighted mean over brackets).

``episode_table(runs)`` has one row per run x seed x evaluation x episode of GTB runs, built
from the per-period table (see :data:`DATA_DICTIONARY` ``["episodes"]``). Its ``welfare`` is
the **sum over the episode's tax periods** of equality x productivity at each period's end;
``productivity``/``equality``/``final_welfare`` are at the episode's end; ``tax_revenue`` is
all tax collected in the episode; ``top_rate``/``mean_rate`` average the schedule in force
over the periods. Runs without a per-period table (games other than GTB) contribute their
evaluation rows of ``episodes.parquet`` (one row per seed x evaluation, averaged over that
evaluation's episodes) with the same metadata columns.

Regressions
-----------
``regress(formula, data, cluster="seed")`` fits OLS with the statsmodels formula API
(``smf.ols``; patsy formulas: ``C(x)`` for categories, ``np.log(x)``, ``a:b``) and
cluster-robust standard errors (statsmodels' ``cov_type="cluster"``: CR1 small-sample
correction, t tests with G - 1 degrees of freedom, G = number of clusters). Rows with a
missing value in a formula variable or in the cluster column are dropped, and the cluster
labels are taken from the rows the model kept, so they stay aligned. ``cluster=None`` gives
classical (homoskedastic) standard errors. Bad input raises a one-line ``ValueError`` that
names what is wrong and the columns that exist.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from econsim import store
from econsim.envs.gtb.tables import PERIOD_COLUMNS

TABLES = store.TABLES  # episodes, agents, periods
LEARNED_PLANNERS = {"metagrad": "metagrad", "dual-rl": "dual_rl"}  # algorithm prefix -> name

#: metadata columns ``tidy`` puts in front of every table
META_COLUMNS: dict[str, tuple[str, str]] = {
    "run_id": ("id", "run folder name (runs/<run_id>/)"),
    "scenario": ("name", "scenario name (scenarios/<name>.toml or the run's scenario.toml)"),
    "env": ("name", "game (econsim.envs), e.g. gtb"),
    "algorithm": ("name", "training algorithm of the agents (and planner), e.g. ppo"),
    "mechanism": ("name", "tax mechanism: the scenario's [mechanism] name (free_market, flat, "
                  "us_federal, saez, custom), 'metagrad' or 'dual_rl' for a learned planner, "
                  "'none' without one"),
    "sweep": ("id", "sweep id for runs made by `econsim sweep` (empty otherwise)"),
    "seed": ("index", "random seed of the replica; the natural cluster for standard errors"),
    "phase": ("name", "'eval' (greedy evaluation) or 'train'"),
    "iteration": ("iterations", "training iteration at which the evaluation ran"),
    "episode": ("index", "evaluation episode (0-based) within that evaluation"),
}

_RATES: dict[str, tuple[str, str]] = {
    "rate_k": ("rate", "marginal tax rate of bracket k in force in the period (k = 0 lowest)"),
    "top_rate": ("rate", "marginal rate of the highest bracket (rate_{K-1})"),
    "mean_rate": ("rate", "unweighted mean of the bracket rates rate_0..rate_{K-1}"),
}

#: table -> column -> (unit, meaning). ``periods``: ``tidy(table="periods")``, one row per
#: run x seed x evaluation x episode x period x agent; ``episodes``: ``episode_table``.
DATA_DICTIONARY: dict[str, dict[str, tuple[str, str]]] = {
    "periods": {**META_COLUMNS, **PERIOD_COLUMNS, **_RATES},
    "episodes": {
        **META_COLUMNS,
        "periods": ("periods", "tax periods in the episode"),
        "welfare": ("coin", "sum over the episode's periods of equality x productivity at "
                    "each period's end (the per-period welfare column summed)"),
        "final_welfare": ("coin", "equality x productivity at the episode's end"),
        "productivity": ("coin", "sum of all agents' coin at the episode's end"),
        "equality": ("share", "1 - normalised Gini of coin at the episode's end"),
        "tax_revenue": ("coin", "tax collected from all agents over the episode (all of it "
                        "is redistributed equally)"),
        "pre_tax_income": ("coin", "income earned by all agents over the episode before tax"),
        "houses_built": ("houses", "houses built by all agents over the episode"),
        "wood_gathered": ("units", "wood collected by all agents over the episode"),
        "stone_gathered": ("units", "stone collected by all agents over the episode"),
        "trade_income": ("coin", "net coin from market trades, all agents (sums to ~0)"),
        "mean_utility": ("util", "mean over agents of utility at the episode's end"),
        "top_rate": ("rate", "marginal rate of the highest bracket, mean over the periods"),
        "mean_rate": ("rate", "unweighted mean of the bracket rates, mean over the periods"),
    },
}


# --------------------------------------------------------------------------- run metadata


def mechanism_of(spec: dict[str, Any]) -> str:
    """The ``mechanism`` label of a (resolved) scenario dict."""
    mech = spec.get("mechanism")
    if mech:
        return str(mech.get("name"))
    alg = str(spec.get("algorithm", {}).get("name", ""))
    for prefix, label in LEARNED_PLANNERS.items():
        if alg.startswith(prefix):
            return label
    return "none"


def param_column(path: str) -> str:
    """Column name of a swept parameter: ``mechanism.rate`` -> ``mechanism_rate``; a name
    that is already a column (a whole ``mechanism`` table swept) gets ``set_`` in front."""
    col = re.sub(r"\W", "_", path)
    taken = {*DATA_DICTIONARY["periods"], *DATA_DICTIONARY["episodes"], "collective"}
    return f"set_{col}" if col in taken or re.fullmatch(r"rate_\d+", col) else col


def run_meta(run_id: str, root: str | Path | None = None) -> dict[str, Any]:
    """``mechanism`` and, for sweep runs, ``sweep`` + one entry per swept parameter."""
    path = store.run_dir(run_id, root)
    meta: dict[str, Any] = {"mechanism": "none", "sweep": None}
    toml = path / "scenario.toml"
    if toml.is_file():
        meta["mechanism"] = mechanism_of(tomllib.loads(toml.read_text()))
    sweep = path / "sweep.json"
    if sweep.is_file():
        info = json.loads(sweep.read_text())
        meta["sweep"] = info.get("sweep")
        for key, value in info.get("params", {}).items():
            meta[param_column(key)] = value if np.isscalar(value) else json.dumps(value)
    return meta


def _run_ids(runs: list[str] | str | None, root: str | Path | None) -> list[str]:
    """Run ids; ``None`` = all usable runs under ``root``; shell patterns (``sweep1-*``)
    expand; any other entry must be a plain run id."""
    root = store.root_path(root)
    known = store.runs(root).run_id.tolist()
    if runs is None:
        return known
    ids: list[str] = []
    for run in [runs] if isinstance(runs, str) else list(runs):
        if any(ch in run for ch in "*?["):
            matched = [r for r in known if fnmatch.fnmatchcase(r, run)]
            if not matched:
                raise ValueError(f"no run in {root}/ matches {run!r} "
                                 f"(latest runs: {', '.join(known[-5:]) or 'none'})")
        else:
            matched = [store.check_run_id(run)]
        ids += [r for r in matched if r not in ids]
    return ids


def _with_meta(df: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    df = df.copy()
    for key, value in meta.items():
        df[key] = value
    return df


def _order(df: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    front = [c for c in ("run_id", "scenario", "env", "algorithm", "mechanism", "sweep",
                         *params, "seed", "phase", "iteration", "episode") if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]]


def _add_rates(df: pd.DataFrame) -> pd.DataFrame:
    rates = sorted((c for c in df.columns if re.fullmatch(r"rate_\d+", c)),
                   key=lambda c: int(c.split("_")[1]))
    if rates:
        df["top_rate"] = df[rates[-1]]
        df["mean_rate"] = df[rates].mean(axis=1)
    return df


# --------------------------------------------------------------------------- tables


def tidy(runs: list[str] | str | None = None, table: str = "periods",
         root: str | Path | None = None) -> pd.DataFrame:
    """One stored table (``periods``, ``episodes``, ``agents``) of ``runs`` (all if None),
    with run metadata and derived rate columns (see the module docstring). ``runs`` may
    hold shell patterns, e.g. ``["gtb_flat30-sweep-*"]``.

    With ``runs=None`` runs that lack the table (``periods`` exists for GTB runs only) are
    skipped; a run named explicitly that lacks it is an error.
    """
    if table not in TABLES:
        raise ValueError(f"table {table!r} is not allowed (allowed: {', '.join(TABLES)})")
    root = store.root_path(root)
    ids = _run_ids(runs, root)
    frames, params = [], []
    for run_id in ids:
        path = store.table_file(run_id, table, root)
        if path is None:
            if runs is None:
                continue
            hint = " (only GTB runs have one; use table='episodes')" if table == "periods" else ""
            raise ValueError(f"run {run_id!r} has no {table} table{hint}")
        meta = run_meta(run_id, root)
        params += [k for k in meta if k not in ("mechanism", "sweep") and k not in params]
        frames.append(_with_meta(store.read_table(path), meta))
    if not frames:
        where = f"in {root}/" if runs is None else f"among {', '.join(ids) or 'no runs'}"
        raise ValueError(f"no run {where} has a {table} table (list runs: econsim list runs)")
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return _order(_add_rates(df), params).reset_index(drop=True)


def _param_columns(periods: pd.DataFrame) -> list[str]:
    """Columns of a per-period table that are neither metadata, outcomes nor rates, and are
    constant within each run: swept parameters (and any label a user added per run)."""
    known = DATA_DICTIONARY["periods"]
    extra = [c for c in periods.columns
             if c not in known and not re.fullmatch(r"rate_\d+", str(c))]
    if not extra or "run_id" not in periods:
        return extra
    varies = periods.groupby("run_id", dropna=False)[extra].nunique(dropna=False).max()
    return [c for c in extra if varies[c] <= 1]


def _aggregate_periods(periods: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Per-period rows (agents x periods) -> one row per run x seed x evaluation x episode."""
    missing = [c for c in ("period", "agent", "welfare", "tax") if c not in periods]
    if missing:
        raise ValueError(f"episode_table: not a per-period table (missing column(s) "
                         f"{', '.join(missing)}; columns: {_columns(periods)})")
    keys = [c for c in (*META_COLUMNS, *params) if c in periods and c != "episode"]
    keys += ["episode"] if "episode" in periods else []
    world_cols = [c for c in ("productivity", "equality", "welfare", "top_rate", "mean_rate")
                  if c in periods]
    sums = [c for c in ("tax", "pre_tax_income", "houses_built", "wood_gathered",
                        "stone_gathered", "trade_income") if c in periods]
    per_period = periods.groupby([*keys, "period"], dropna=False, sort=False).agg(
        **{c: (c, "first") for c in world_cols},
        **{c: (c, "sum") for c in sums},
        **({"mean_utility": ("utility", "mean")} if "utility" in periods else {}),
    ).reset_index().sort_values([*keys, "period"], kind="stable")
    out = per_period.groupby(keys, dropna=False, sort=False).agg(
        periods=("period", "size"),
        welfare=("welfare", "sum"),
        **{c: (c, "last") for c in ("productivity", "equality") if c in per_period},
        **{("tax_revenue" if c == "tax" else c): (c, "sum") for c in sums},
        **({"mean_utility": ("mean_utility", "last")} if "mean_utility" in per_period else {}),
        **{c: (c, "mean") for c in ("top_rate", "mean_rate") if c in per_period},
    ).reset_index()
    if {"productivity", "equality"} <= set(out.columns):
        out.insert(out.columns.get_loc("productivity"), "final_welfare",
                   out.productivity * out.equality)
    return out


def episode_table(runs: list[str] | str | None = None, root: str | Path | None = None, *,
                  periods: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run x seed x evaluation x episode (see the module docstring).

    ``periods``: aggregate this per-period table (e.g. a filtered ``tidy()``) instead of
    reading runs. Runs without a per-period table contribute their ``episodes.parquet``
    evaluation rows.
    """
    if periods is not None:
        params = _param_columns(periods)
        return _order(_aggregate_periods(periods, params), params).reset_index(drop=True)
    root = store.root_path(root)
    ids = _run_ids(runs, root)
    if runs is None:  # all runs: those with rows (not a run killed at its start)
        ids = [r for r in ids if store.table_file(r, "episodes", root) is not None]
    if not ids:
        raise ValueError(f"no runs in {root}/ (make one: econsim run gtb_flat30)")
    params = run_params(ids, root)
    gtb = [r for r in ids if store.table_file(r, "periods", root) is not None]
    frames = []
    if gtb:
        frames.append(_aggregate_periods(tidy(gtb, "periods", root), params))
    other = [r for r in ids if r not in gtb]
    if other:
        ep = tidy(other, "episodes", root)
        frames.append(ep[ep.phase == "eval"])
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return _order(df, params).reset_index(drop=True)


def run_params(runs: list[str], root: str | Path | None = None) -> list[str]:
    """Columns of swept parameters among ``runs`` (empty unless some came from a sweep)."""
    cols: list[str] = []
    for run_id in runs:
        cols += [k for k in run_meta(run_id, root) if k not in ("mechanism", "sweep")
                 and k not in cols]
    return cols


def data_dictionary(table: str = "periods", columns: list[str] | None = None) -> pd.DataFrame:
    """``column, unit, meaning`` of ``table`` (``periods`` or ``episodes``).

    ``columns``: describe exactly these (e.g. ``df.columns`` of an export), in that order;
    ``rate_3`` is described as bracket 3's rate, unknown columns get empty unit and meaning.
    """
    if table not in DATA_DICTIONARY:
        raise ValueError(f"table {table!r} is not allowed (allowed: "
                         f"{', '.join(DATA_DICTIONARY)})")
    known = DATA_DICTIONARY[table]
    rows = []
    for col in (columns if columns is not None else known):
        col = str(col)
        if col in known:
            unit, meaning = known[col]
        elif m := re.fullmatch(r"rate_(\d+)", col):
            unit, meaning = "rate", f"marginal tax rate of bracket {m.group(1)} (0 = lowest)"
        else:
            unit, meaning = "", ""
        rows.append({"column": col, "unit": unit, "meaning": meaning})
    return pd.DataFrame(rows, columns=["column", "unit", "meaning"])


# --------------------------------------------------------------------------- regressions


@dataclass
class Regression:
    """A fitted OLS regression: ``result`` is the statsmodels results object."""

    formula: str
    cluster: str | None
    result: Any
    n_clusters: int | None = None

    @property
    def table(self) -> pd.DataFrame:
        """term, coef, std_err, t, p, ci_low, ci_high (one row per term)."""
        r = self.result
        ci = r.conf_int()
        return pd.DataFrame({
            "term": r.params.index, "coef": r.params.to_numpy(), "std_err": r.bse.to_numpy(),
            "t": r.tvalues.to_numpy(), "p": r.pvalues.to_numpy(),
            "ci_low": ci.iloc[:, 0].to_numpy(), "ci_high": ci.iloc[:, 1].to_numpy(),
        })

    @property
    def nobs(self) -> int:
        return int(self.result.nobs)

    def summary_text(self) -> str:
        """statsmodels' summary plus a line saying how standard errors were computed."""
        se = (f"Standard errors clustered by {self.cluster} ({self.n_clusters} clusters)."
              if self.cluster else "Standard errors assume homoskedastic, independent errors.")
        with warnings.catch_warnings():  # e.g. "omni_normtest is not valid with < 8 obs"
            warnings.simplefilter("ignore")
            text = self.result.summary().as_text()
        return f"{text}\n{se}"

    def to_csv(self, path: str | Path) -> Path:
        """Write :attr:`table` as CSV; returns the path."""
        path = Path(path)
        self.table.to_csv(path, index=False)
        return path

    def __str__(self) -> str:
        return self.summary_text()


def _columns(data: pd.DataFrame) -> str:
    cols = [str(c) for c in data.columns]
    return ", ".join(cols[:40]) + (f", ... ({len(cols)} in all)" if len(cols) > 40 else "")


def _formula_error(formula: str, err: Exception, data: pd.DataFrame) -> ValueError:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    name = re.search(r"name '([^']+)' is not defined", text)
    if name:
        text = f"unknown column {name.group(1)!r}"
    else:
        text = re.sub(r"^Error evaluating factor: ", "", text)
    return ValueError(f"regress: formula {formula!r}: {text} (columns: {_columns(data)})")


def regress(formula: str, data: pd.DataFrame, cluster: str | None = "seed") -> Regression:
    """OLS of ``formula`` on ``data`` with standard errors clustered by column ``cluster``
    (``None``: classical standard errors). See the module docstring."""
    import statsmodels.formula.api as smf

    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"regress: data must be a pandas DataFrame, not {type(data).__name__}")
    if data.empty:
        raise ValueError("regress: data has no rows")
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(f"regress: formula {formula!r} must look like 'y ~ x1 + C(x2)' "
                         f"(columns: {_columns(data)})")
    if cluster is not None and cluster not in data.columns:
        raise ValueError(f"regress: cluster column {cluster!r} not found "
                         f"(columns: {_columns(data)})")
    frame = data.reset_index(drop=True)  # unique labels, so the kept rows can be looked up
    if cluster is not None:
        frame = frame[frame[cluster].notna()]
    try:
        model = smf.ols(formula, data=frame)
    except Exception as err:  # patsy errors are multi-line, with a caret under the problem
        raise _formula_error(formula, err, data) from None
    if model.exog.shape[0] == 0:
        raise ValueError(f"regress: no rows left after dropping missing values in {formula!r}")
    if cluster is None:
        return Regression(formula, None, model.fit())
    kept = model.data.row_labels  # rows patsy kept after dropping NaN rows
    groups = pd.factorize(frame.loc[kept, cluster], sort=True)[0]  # 1-D, aligned with exog
    n_groups = int(len(np.unique(groups)))
    if n_groups < 2:
        raise ValueError(f"regress: cluster column {cluster!r} has {n_groups} group(s) in the "
                         f"{len(groups)} rows used; clustered standard errors need at least 2 "
                         f"(use cluster=None or another column; columns: {_columns(data)})")
    result = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    return Regression(formula, cluster, result, n_groups)
