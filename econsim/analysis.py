"""Tidy tables of stored runs and OLS regressions with clustered standard errors.

>>> from econsim import analysis
>>> periods = analysis.tidy(["gtb_flat30-...", "gtb_us_federal-..."])   # per agent x period
>>> episodes = analysis.episode_table(["gtb_flat30-...", "gtb_us_federal-..."])  # per episode
>>> fit = analysis.regress("welfare_sum ~ C(mechanism)", episodes, cluster="seed")
>>> print(fit.summary_text()); fit.table; fit.to_csv("welfare.csv")
>>> analysis.data_dictionary("episodes")                            # column, unit, meaning

Which evaluations
-----------------
A run evaluates its agents every ``eval_every`` iterations. Early evaluations show agents
that have not learned yet, and the evaluations of one seed are not independent draws, so
pooling them in a regression is pseudo-replication (many rows, tiny standard errors, one
seed's learning curve counted as evidence). Every function here therefore takes
``evaluations``:

* ``"final"`` (the default everywhere: here, ``econsim regress``, the app's Runs and
  Regression pages): the last evaluation of each run x seed;
* an iteration number, e.g. ``200``: the evaluation at that iteration (an error names the
  iterations a run has if it lacks that one);
* ``"all"``: every evaluation, with ``iteration`` as a column (and, for ``tidy`` of the
  ``episodes``/``agents`` tables, the training windows too, ``phase = "train"``).

Tables
------
``tidy(runs, table)`` concatenates one stored table (``periods``, ``episodes`` or ``agents``)
of the given runs and adds, in front, the run metadata ``run_id, scenario, env, algorithm,
mechanism, mechanism_name, mechanism_<parameter>..., seed`` (``mechanism`` is a label with
the parameters, e.g. ``flat(rate=0.3)``; ``metagrad`` / ``dual_rl`` for a learned planner;
``none`` without one), for runs made by ``econsim sweep`` the ``sweep`` id and one column per
swept parameter (``mechanism.rate`` -> ``mechanism_rate``), and, where the table has the tax
schedule (``rate_0..rate_{K-1}``), ``top_rate`` (the rate of the highest bracket) and
``mean_rate`` (the unweighted mean over brackets). Columns of runs written before the names
were settled are renamed on reading (``econsim.dictionary.current_names``; ``load(run_id,
table)`` reads one stored table so, for the app).

``episode_table(runs)`` has one row per run x seed x evaluation x episode of GTB runs, built
from the per-period table. ``welfare_sum`` is the sum over the episode's steps of
productivity x equality (the Diss's social welfare, the same number as ``episodes.parquet``
holds for the evaluation); ``welfare_final``, ``productivity`` and ``equality`` are at the
episode's end; ``tax_revenue`` is all tax collected in the episode; ``top_rate``/``mean_rate``
average the schedule in force over the periods. Runs without a per-period table (games other
than GTB) contribute their evaluation rows of ``episodes.parquet`` (one row per seed x
evaluation, averaged over that evaluation's episodes). Units and meanings of every column:
``econsim.dictionary`` (:func:`data_dictionary`).

Regressions
-----------
``regress(formula, data, cluster="seed")`` fits OLS. The formula is checked first by
``econsim.formula.validate`` (column names, numbers, formula operators and an allowlist of
transforms; nothing else reaches patsy, which would evaluate it as Python). Standard errors
are cluster-robust (statsmodels' ``cov_type="cluster"``: CR1 small-sample correction
``G/(G-1) x (N-1)/(N-K)``, t tests and intervals with ``G - 1`` degrees of freedom,
``G`` = number of clusters); ``cluster=None`` gives classical (homoskedastic) ones. The
summary and the coefficient table state the covariance (type, cluster column, clusters,
correction, degrees of freedom). With fewer than :data:`FEW_CLUSTERS` clusters a
:class:`FewClustersWarning` is issued, the summary says so, and wild cluster bootstrap
p-values (``p_boot``, ``econsim.bootstrap``: restricted WCR, Webb weights) are added next to
the analytic ones. The joint F-test of all slopes is shown only when the cluster-robust
covariance can carry it (no more slopes than ``G - 1``). ``reference={"mechanism":
"us_federal"}`` (or ``C(mechanism, Treatment(reference="us_federal"))`` in the formula)
picks the omitted category. Rows with a missing value in a formula variable or in the
cluster column are dropped (:func:`complete_rows`), and with them the levels of a category
that occur only in those rows (so ``welfare_sum ~ C(mechanism)`` on GTB and IPD runs together
compares the GTB mechanisms); the cluster labels are taken from the rows the model kept, so
they stay aligned. Bad input raises a one-line ``ValueError`` that names what is wrong and
the columns that exist: among others a term or outcome that is not finite (``log(0)``,
``I(x / 0)``), no regressors, no more rows than parameters, ``draws`` outside 99..100,000.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from econsim import bootstrap as wild
from econsim import dictionary, metrics, store
from econsim import formula as formula_mod
from econsim import scenario as scenario_mod
from econsim.errors import ScenarioError

TABLES = store.TABLES  # episodes, agents, periods
EVALUATIONS = ("final", "all", "ITERATION")  # what `evaluations` allows
FEW_CLUSTERS = 10
MAX_VALUE = 1e100  # |value| of a regressor or the outcome (beyond it X'X overflows)

#: metadata columns ``tidy`` puts in front of every table
META_COLUMNS = dictionary.META
#: table -> column -> (unit, meaning); see ``econsim.dictionary``
DATA_DICTIONARY = dictionary.TABLES
_KIND = {"periods": "periods", "episodes": "run_episodes", "agents": "run_agents"}


class FewClustersWarning(UserWarning):
    """Cluster-robust inference with fewer than :data:`FEW_CLUSTERS` clusters."""


# --------------------------------------------------------------------------- run metadata


def mechanism_of(spec: dict[str, Any]) -> str:
    """The ``mechanism`` label of a (resolved) scenario dict, e.g. ``flat(rate=0.3)``."""
    return dictionary.mechanism_label(dictionary.scenario_mechanism(spec))


def param_column(path: str) -> str:
    """Column name of a swept parameter: ``mechanism.rate`` -> ``mechanism_rate``; a name
    that is already a column (a whole ``mechanism`` table swept) gets ``set_`` in front."""
    col = re.sub(r"\W", "_", path)
    taken = {*DATA_DICTIONARY["periods"], *DATA_DICTIONARY["episodes"],
             *DATA_DICTIONARY["run_episodes"], "collective"}
    return f"set_{col}" if col in taken or re.fullmatch(r"rate_\d+", col) else col


def run_meta(run_id: str, root: str | Path | None = None) -> dict[str, Any]:
    """``mechanism``, ``mechanism_name``, one ``mechanism_<parameter>`` per parameter and,
    for sweep runs, ``sweep`` + one entry per swept parameter."""
    path = store.run_dir(run_id, root)
    spec: dict | str = "none"
    toml = store.inside(path, "scenario.toml")
    if toml.is_file():
        try:  # the same size, UTF-8 and nesting checks as any scenario file
            spec = dictionary.scenario_mechanism(scenario_mod.read(toml))
        except ScenarioError as err:
            raise ValueError(f"run {run_id!r}: {err}") from None
    meta: dict[str, Any] = {**dictionary.mechanism_columns(spec), "sweep": None}
    sweep = store.inside(path, "sweep.json")
    if sweep.is_file():
        info = _read(run_id, sweep, json.loads)
        params = info.get("params", {}) if isinstance(info, dict) else None
        if not isinstance(params, dict):
            raise ValueError(f"run {run_id!r}: sweep.json is not a sweep's (no params table)")
        meta["sweep"] = info.get("sweep")
        for key, value in params.items():
            meta[param_column(key)] = value if np.isscalar(value) else json.dumps(value)
    return meta


def _read(run_id: str, path: Path, parse) -> Any:
    """A run's small text file parsed, or a one-line ValueError naming the run and file
    (not UTF-8, not TOML/JSON, nested deep enough to exhaust the stack, ...)."""
    if path.stat().st_size > 1_000_000:
        raise ValueError(f"run {run_id!r}: {path.name} is larger than 1 MB")
    try:
        return parse(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError(f"run {run_id!r}: {path.name} nests too deep to read") from None
    except (ValueError, OSError) as err:  # TOML/JSON/UTF-8 errors are ValueErrors
        text = " ".join(str(err).split())[:200]
        raise ValueError(f"run {run_id!r}: {path.name} cannot be read ({text})") from None


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


def load(run_id: str, table: str = "episodes", root: str | Path | None = None
         ) -> pd.DataFrame:
    """One stored table of one run as it is (``store.load``), with the columns of runs made
    before the names were settled renamed (``dictionary.current_names``): what the app's
    pages read."""
    return dictionary.current_names(store.load(run_id, table, root))


def _with_meta(df: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    df = dictionary.current_names(df)
    for key, value in meta.items():
        df[key] = value
    return df


def _order(df: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    front = [c for c in ("run_id", "scenario", "env", "algorithm", "mechanism",
                         "mechanism_name", "sweep", *params, "seed", "phase", "iteration",
                         "episode") if c in df.columns]
    front = list(dict.fromkeys(front))
    return df[front + [c for c in df.columns if c not in front]]


def _add_rates(df: pd.DataFrame) -> pd.DataFrame:
    rates = sorted((c for c in df.columns if re.fullmatch(r"rate_\d+", c)),
                   key=lambda c: int(c.split("_")[1]))
    if rates:
        df["top_rate"] = df[rates[-1]]
        df["mean_rate"] = df[rates].mean(axis=1)
    return df


# --------------------------------------------------------------------------- evaluations


def parse_evaluations(value: str | int) -> str | int:
    """``"final"``, ``"all"`` or an iteration number (``200`` or ``"200"``); one-line
    ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"evaluations: {value!r} is not allowed (allowed: final, all, or an "
                         "iteration number such as 200)")
    if isinstance(value, int | np.integer) and value >= 0:
        return int(value)
    text = str(value).strip().lower()
    if text in ("final", "all"):
        return text
    if text.isascii() and text.isdecimal() and len(text) <= 12:  # not "²" (isdigit) or "٣"
        return int(text)
    raise ValueError(f"evaluations: {value!r} is not allowed (allowed: final, all, or an "
                     "iteration number such as 200)")


def evaluation_label(evaluations: str | int) -> str:
    """What an ``evaluations`` choice means, in words: the label of the app's pages and of
    ``econsim regress``."""
    which = parse_evaluations(evaluations)
    if which == "final":
        return "final evaluation of each seed"
    if which == "all":
        return "every evaluation (iteration as a column)"
    return f"evaluation at iteration {which}"


def select_evaluations(df: pd.DataFrame, evaluations: str | int = "final") -> pd.DataFrame:
    """The rows of ``evaluations`` (see the module docstring). Tables without an
    ``iteration`` column (what-ifs) are returned as they are."""
    which = parse_evaluations(evaluations)
    if "iteration" not in df or df.empty or which == "all":
        return df
    ev = df[df["phase"] == "eval"] if "phase" in df else df
    keys = [c for c in ("run_id", "seed") if c in ev]
    if which == "final":
        last = ev.groupby(keys, dropna=False)["iteration"].transform("max") if keys else \
            ev["iteration"].max()
        return ev[ev["iteration"] == last]
    by_run = ev.groupby("run_id")["iteration"] if "run_id" in ev else None
    runs = by_run.unique().items() if by_run is not None else [("data", ev.iteration.unique())]
    for run_id, its in runs:
        if which not in set(int(i) for i in its):
            shown = ", ".join(str(int(i)) for i in sorted(its)[:20])
            raise ValueError(f"evaluations: run {run_id!r} has no evaluation at iteration "
                             f"{which} (its evaluations: {shown or 'none'})")
    return ev[ev["iteration"] == which]


# --------------------------------------------------------------------------- tables


def tidy(runs: list[str] | str | None = None, table: str = "periods",
         root: str | Path | None = None, *, evaluations: str | int = "final") -> pd.DataFrame:
    """One stored table (``periods``, ``episodes``, ``agents``) of ``runs`` (all if None),
    with run metadata and derived rate columns (see the module docstring). ``runs`` may
    hold shell patterns, e.g. ``["gtb_flat30-sweep-*"]``. ``evaluations``: ``"final"``
    (default), an iteration, or ``"all"`` (every row, training windows included).

    With ``runs=None`` runs that lack the table (``periods`` exists for GTB runs only) are
    skipped; a run named explicitly that lacks it is an error.
    """
    if table not in TABLES:
        raise ValueError(f"table {table!r} is not allowed (allowed: {', '.join(TABLES)})")
    parse_evaluations(evaluations)
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
        params += [k for k in meta if k not in ("mechanism", "mechanism_name", "sweep")
                   and k not in params]
        frames.append(_with_meta(store.read_table(path), meta))
    if not frames:
        where = f"in {root}/" if runs is None else f"among {', '.join(ids) or 'no runs'}"
        raise ValueError(f"no run {where} has a {table} table (list runs: econsim list runs)")
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df = select_evaluations(df, evaluations)
    return _order(_add_rates(df.copy()), params).reset_index(drop=True)


def _param_columns(periods: pd.DataFrame) -> list[str]:
    """Columns of a per-period table that are neither metadata, outcomes nor rates, and are
    constant within each run: mechanism parameters, swept parameters (and any label a user
    added per run)."""
    known = DATA_DICTIONARY["periods"]
    extra = [c for c in periods.columns
             if c not in known and not re.fullmatch(r"rate_\d+", str(c))]
    if not extra or "run_id" not in periods:
        return extra
    varies = periods.groupby("run_id", dropna=False)[extra].nunique(dropna=False).max()
    return [c for c in extra if varies[c] <= 1]


def _aggregate_periods(periods: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Per-period rows (agents x periods) -> one row per run x seed x evaluation x episode."""
    missing = [c for c in ("period", "agent", "productivity", "equality", "tax")
               if c not in periods]
    if missing:
        raise ValueError(f"episode_table: not a per-period table (missing column(s) "
                         f"{', '.join(missing)}; columns: {_columns(periods)})")
    keys = [c for c in (*META_COLUMNS, *params) if c in periods and c != "episode"]
    keys = list(dict.fromkeys(keys)) + (["episode"] if "episode" in periods else [])
    world_cols = [c for c in ("productivity", "equality", "welfare_sum", "top_rate",
                              "mean_rate") if c in periods]
    sums = [c for c in ("tax", "pre_tax_income", "houses_built", "wood_gathered",
                        "stone_gathered", "trade_income") if c in periods]
    per_period = periods.groupby([*keys, "period"], dropna=False, sort=False).agg(
        **{c: (c, "first") for c in world_cols},
        **{c: (c, "sum") for c in sums},
        **({"mean_utility": ("utility", "mean")} if "utility" in periods else {}),
    ).reset_index().sort_values([*keys, "period"], kind="stable")
    out = per_period.groupby(keys, dropna=False, sort=False).agg(
        periods=("period", "size"),
        **({"welfare_sum": ("welfare_sum", "sum")} if "welfare_sum" in per_period else {}),
        productivity=("productivity", "last"), equality=("equality", "last"),
        **{("tax_revenue" if c == "tax" else c): (c, "sum") for c in sums},
        **({"mean_utility": ("mean_utility", "last")} if "mean_utility" in per_period else {}),
        **{c: (c, "mean") for c in ("top_rate", "mean_rate") if c in per_period},
    ).reset_index()
    out.insert(out.columns.get_loc("productivity"), "welfare_final",
               out.productivity * out.equality)
    if {"coin", "utility"} <= set(periods.columns):  # the welfare functions at the end
        last = periods[periods["period"] == periods.groupby(keys, dropna=False)[
            "period"].transform("max")].sort_values([*keys, "agent"], kind="stable")
        rows = []
        for key, g in last.groupby(keys, dropna=False, sort=False):
            wf = metrics.welfare_functions(g["coin"].to_numpy(), g["utility"].to_numpy())
            rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,),
                                    strict=True)), **{k: float(v) for k, v in wf.items()},
                         "atkinson_epsilon": metrics.ATKINSON_EPSILON})
        out = out.merge(pd.DataFrame(rows), on=keys, how="left")
    return out


def episode_table(runs: list[str] | str | None = None, root: str | Path | None = None, *,
                  periods: pd.DataFrame | None = None,
                  evaluations: str | int = "final") -> pd.DataFrame:
    """One row per run x seed x evaluation x episode (see the module docstring).

    ``evaluations``: ``"final"`` (default; the last evaluation of each seed), an iteration
    number, or ``"all"``. ``periods``: aggregate this per-period table (e.g. a filtered
    ``tidy()``; ``evaluations`` applies to it too) instead of reading runs. Runs without a
    per-period table contribute their ``episodes.parquet`` evaluation rows.
    """
    if periods is not None:
        periods = select_evaluations(periods, evaluations)
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
        frames.append(_aggregate_periods(tidy(gtb, "periods", root, evaluations=evaluations),
                                         params))
    other = [r for r in ids if r not in gtb]
    if other:
        ep = tidy(other, "episodes", root, evaluations=evaluations)
        frames.append(ep[ep.phase == "eval"])
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return _order(df, params).reset_index(drop=True)


def run_params(runs: list[str], root: str | Path | None = None) -> list[str]:
    """Mechanism-parameter and swept-parameter columns among ``runs``."""
    cols: list[str] = []
    for run_id in runs:
        cols += [k for k in run_meta(run_id, root)
                 if k not in ("mechanism", "mechanism_name", "sweep") and k not in cols]
    return cols


def data_dictionary(table: str = "periods", columns: list[str] | None = None) -> pd.DataFrame:
    """``column, unit, meaning`` of ``table`` (``periods``, ``episodes`` = the episode table,
    ``run_episodes`` / ``run_agents`` = ``tidy(..., "episodes" / "agents")``, ``steps``,
    ``world``): see ``econsim.dictionary.data_dictionary``."""
    return dictionary.data_dictionary(table, columns)


def dictionary_kind(table: str) -> str:
    """The dictionary table of a ``tidy`` table name (``episodes`` -> ``run_episodes``)."""
    return _KIND.get(table, table)


# --------------------------------------------------------------------------- regressions


@dataclass
class Regression:
    """A fitted OLS regression: ``result`` is the statsmodels results object.

    ``p_boot``: wild cluster bootstrap p-value per term (None if not computed) and
    ``bootstrap`` how it was computed; ``references``: the omitted level of each
    categorical factor; ``warnings``: what a reader must know (few clusters, ...);
    ``untestable``: terms whose standard error is zero up to rounding (identical runs, an
    exact fit): :attr:`table` gives them std_err 0 and no t, p, interval or p_boot, since
    the t statistic would be rounding noise divided by rounding noise.
    """

    formula: str
    cluster: str | None
    result: Any
    n_clusters: int | None = None
    p_boot: pd.Series | None = None
    bootstrap: str = ""
    references: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    untestable: list[str] = field(default_factory=list)

    @property
    def nobs(self) -> int:
        return int(self.result.nobs)

    @property
    def df(self) -> int:
        """Degrees of freedom of the t tests: ``G - 1`` clustered, ``N - K`` classical."""
        if self.cluster is not None:
            return int(self.n_clusters) - 1
        return int(self.result.df_resid)

    @property
    def covariance(self) -> dict[str, Any]:
        """How the standard errors were computed (also columns of :attr:`table`)."""
        if self.cluster is None:
            return {"cov_type": "classical (homoskedastic, independent errors)",
                    "cluster": "", "n_clusters": np.nan,
                    "correction": "none (s^2 = SSR / (N - K))", "df": self.df}
        return {"cov_type": "cluster-robust (CR1)", "cluster": self.cluster,
                "n_clusters": self.n_clusters,
                "correction": "G/(G-1) x (N-1)/(N-K)", "df": self.df}

    @property
    def table(self) -> pd.DataFrame:
        """term, coef, std_err, t, p, ci_low, ci_high, [p_boot], then the covariance
        (cov_type, cluster, n_clusters, correction, df), nobs [and bootstrap]: one row per
        term, so an exported table says how its p-values were computed."""
        r = self.result
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # sqrt of a rounding-negative
            ci = r.conf_int()
            out = pd.DataFrame({
                "term": r.params.index, "coef": r.params.to_numpy(),
                "std_err": r.bse.to_numpy(), "t": r.tvalues.to_numpy(),
                "p": r.pvalues.to_numpy(), "ci_low": ci.iloc[:, 0].to_numpy(),
                "ci_high": ci.iloc[:, 1].to_numpy(),
            })
        if self.p_boot is not None:
            out["p_boot"] = self.p_boot.reindex(out.term).to_numpy()
        zero = out.term.isin(self.untestable)
        out.loc[zero, "std_err"] = 0.0
        out.loc[zero, [c for c in ("t", "p", "ci_low", "ci_high", "p_boot") if c in out]] = \
            np.nan
        for k, v in self.covariance.items():
            out[k] = v
        out["nobs"] = self.nobs
        if self.p_boot is not None:
            out["bootstrap"] = self.bootstrap
        return out

    def joint_test(self) -> str:
        """The F-test that all slopes are 0, or why it is not shown."""
        names = list(self.result.params.index)
        slopes = [i for i, n in enumerate(names) if n != "Intercept"]
        q = len(slopes)
        if q == 0:
            return "Joint test of the slopes: none (no slope in the model)."
        zero = [names[i] for i in slopes if names[i] in self.untestable]
        if zero:
            return (f"Joint test that all {q} slopes are 0: not available (the standard "
                    f"error of {', '.join(zero)} is zero up to rounding).")
        if self.cluster is not None and q > self.df:
            return (f"Joint test that all {q} slopes are 0: not available (a cluster-robust "
                    f"covariance from {self.n_clusters} clusters has rank at most "
                    f"G - 1 = {self.df}; test fewer terms or add seeds).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ft = self.result.f_test(np.eye(len(names))[slopes])
        return (f"Joint test that all {q} slopes are 0: F({int(ft.df_num)}, "
                f"{int(ft.df_denom)}) = {float(np.squeeze(ft.fvalue)):.4g}, "
                f"p = {float(ft.pvalue):.4g}.")

    def summary_text(self) -> str:
        """Model, fit, covariance, coefficients (with ``p_boot`` when computed), the joint
        test, reference levels and warnings, as plain text."""
        r = self.result
        cov = self.covariance
        if self.cluster is None:
            se = (f"Covariance: {cov['cov_type']}; t tests with N - K = {self.df} degrees "
                  "of freedom.")
        else:
            se = (f"Covariance: cluster-robust (CR1), clustered by {self.cluster}: "
                  f"{self.n_clusters} clusters; small-sample correction G/(G-1) x "
                  f"(N-1)/(N-K); t tests and intervals with G - 1 = {self.df} degrees of "
                  "freedom.")
        lines = [f"OLS: {self.formula}",
                 f"Observations: {self.nobs}; parameters: {len(r.params)}; R-squared: "
                 f"{r.rsquared:.4f}; adj. R-squared: {r.rsquared_adj:.4f}", se, ""]
        cols = ["term", "coef", "std_err", "t", "p", "ci_low", "ci_high"]
        cols += ["p_boot"] if self.p_boot is not None else []
        with pd.option_context("display.width", 200, "display.max_colwidth", 80):
            lines.append(self.table[cols].to_string(index=False, float_format="{:.4g}".format))
        lines += ["", self.joint_test()]
        if self.p_boot is not None:
            lines.append(f"p_boot: {self.bootstrap}.")
        for factor, level in self.references.items():
            lines.append(f"Reference level of {factor}: {level} (each of its coefficients is "
                         "a difference from it).")
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_csv(self, path: str | Path) -> Path:
        """Write :attr:`table` as CSV; returns the path. A path that cannot be written is
        a one-line ``ValueError``."""
        path = check_output(path)
        try:
            self.table.to_csv(path, index=False)
        except OSError as err:
            raise ValueError(f"cannot write {str(path)[:200]}: {err.strerror or err}") from None
        return path

    def __str__(self) -> str:
        return self.summary_text()


def check_output(path: str | Path) -> Path:
    """``path`` as a Path if a file can be written there: its folder exists and is writable,
    it is not a folder and its name is not too long (tried without leaving a file behind);
    else a one-line ``ValueError`` ``cannot write PATH: reason``."""
    path = Path(path)
    shown = str(path)[:200]
    try:
        if path.is_dir():
            raise ValueError(f"cannot write {shown}: it is a folder (name a file, e.g. fit.csv)")
        if not path.parent.is_dir():
            raise ValueError(f"cannot write {shown}: the folder {str(path.parent)[:200]} does "
                             "not exist")
        limit = os.pathconf(path.parent, "PC_NAME_MAX")
        if len(os.fsencode(path.name)) > limit:
            raise ValueError(f"cannot write {shown}: the file name is too long (at most "
                             f"{limit} bytes)")
        if path.exists():
            with open(path, "a"):  # writable? (appends nothing)
                pass
        else:
            with open(path, "x"):  # can be created? (removed again at once)
                pass
            path.unlink()
    except OSError as err:
        raise ValueError(f"cannot write {shown}: {err.strerror or err}") from None
    return path


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


def _set_references(frame: pd.DataFrame, reference: dict[str, Any],
                    data: pd.DataFrame) -> pd.DataFrame:
    """Make each ``reference`` column categorical with the given level first, so that
    ``C(col)`` (or a bare text column) omits that level."""
    frame = frame.copy()
    for col, level in reference.items():
        if col not in frame.columns:
            raise ValueError(f"regress: reference: column {col!r} not found "
                             f"(columns: {_columns(data)})")
        levels = list(pd.unique(frame[col].dropna()))
        match = [v for v in levels if v == level or str(v) == str(level)]
        if not match:
            shown = ", ".join(str(v) for v in sorted(levels, key=str)[:20])
            raise ValueError(f"regress: reference level {level!r} is not a value of {col!r} "
                             f"(its values: {shown})")
        rest = sorted((v for v in levels if v != match[0]), key=lambda v: (str(type(v)), v))
        frame[col] = pd.Categorical(frame[col], categories=[match[0], *rest])
    return frame


def _reference_levels(X: pd.DataFrame) -> dict[str, str]:
    """The omitted level of each categorical factor of a patsy design."""
    parts = {part for col in X.columns for part in str(col).split(":")}
    out = {}
    for factor, info in X.design_info.factor_infos.items():
        if info.type != "categorical":
            continue
        name = factor.name()
        shown = {lvl for lvl in info.categories
                 if f"{name}[T.{lvl}]" in parts or f"{name}[{lvl}]" in parts}
        omitted = [lvl for lvl in info.categories if lvl not in shown]
        if len(omitted) == 1:
            out[name] = str(omitted[0])
    return out


def complete_rows(formula: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` with a value in every column the formula names, and in each
    categorical column only the categories that still occur (so that a level seen only in
    dropped rows, e.g. ``none`` of runs without the outcome, does not enter the design)."""
    used, _ = formula_mod.columns_used(formula, frame.columns)
    frame = frame.dropna(subset=[c for c in frame.columns if str(c) in used])
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].cat.remove_unused_categories()
    return frame


def _float_numbers(formula: str, frame: pd.DataFrame, skip: list) -> pd.DataFrame:
    """Integer columns the formula uses as numbers (not inside ``C(...)``, not in ``skip``:
    the columns given a reference level) as float64, so that
    ``I(seed * 1000000 * 1000000 * 1000000)`` is 1e18 x seed, not an int64 that wrapped
    around without a word."""
    used, categorical = formula_mod.columns_used(formula, frame.columns)
    ints = [c for c in frame.columns if str(c) in used and str(c) not in categorical
            and c not in skip and pd.api.types.is_integer_dtype(frame[c].dtype)]
    return frame.astype({c: np.float64 for c in ints}) if ints else frame


def _design(formula: str, frame: pd.DataFrame, data: pd.DataFrame):
    """patsy's ``(y, X)`` of a validated formula on rows without missing values (see
    :func:`complete_rows`), with only ``econsim.formula.namespace()`` besides the data.

    A value that a transform makes infinite or undefined (``log(0)``, ``I(x / 0)``,
    ``exp(x * 1000)``) is a one-line error naming the term, not a dropped row or a numpy
    warning."""
    import patsy

    if frame.empty:
        raise ValueError(f"regress: no rows left after dropping missing values in {formula!r}")
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            y, X = patsy.dmatrices(formula, frame, NA_action=patsy.NAAction(NA_types=[]),
                                   return_type="dataframe",
                                   eval_env=patsy.EvalEnvironment([formula_mod.namespace()]))
    except Exception as err:  # patsy errors are multi-line, with a caret under the problem
        raise _formula_error(formula, err, data) from None
    if y.shape[1] != 1:
        raise ValueError(f"regress: formula {formula!r}: the outcome must be one numeric "
                         f"column (got {y.shape[1]} columns: {', '.join(y.columns)})")
    if X.shape[1] == 0:
        raise ValueError(f"regress: formula {formula!r}: no regressors (the formula removes "
                         "the intercept and keeps no term; 'y ~ 1' fits the mean alone)")
    for part in (y, X):
        values = part.to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        big = finite & (np.abs(np.where(finite, values, 0.0)) > MAX_VALUE)
        for j, name in enumerate(part.columns):
            if not finite[:, j].all():
                raise ValueError(
                    f"regress: formula {formula!r}: {name} is not finite in "
                    f"{int((~finite[:, j]).sum())} of the {len(values)} rows (e.g. a log of 0 "
                    "or of a negative number, a division by 0, or exp of a large number): "
                    "transform it so that it stays finite, or filter those rows")
            if big[:, j].any():
                raise ValueError(
                    f"regress: formula {formula!r}: {name} reaches "
                    f"{np.abs(values[:, j]).max():.3g} in absolute value (at most "
                    f"{MAX_VALUE:g}, or least squares overflows): rescale it")
    return y, X


def _check_rank(X: pd.DataFrame, formula: str) -> None:
    """A one-line error when some regressors are linear combinations of the others (their
    coefficients would not be identified, and statsmodels would print arbitrary numbers)."""
    values = X.to_numpy()
    if np.linalg.matrix_rank(values) == values.shape[1]:
        return
    norms = np.linalg.norm(values, axis=0)
    if norms.min() > 0 and np.linalg.matrix_rank(values / norms) == values.shape[1]:
        big, small = int(norms.argmax()), int(norms.argmin())
        raise ValueError(f"regress: formula {formula!r}: the terms differ too much in scale "
                         f"for least squares ({X.columns[big]} is {norms[big] / norms[small]:.1e}"
                         f" times {X.columns[small]}): rescale one, e.g. I(x / 1000)")
    kept: list[int] = []
    redundant = []
    for j, name in enumerate(X.columns):
        if np.linalg.matrix_rank(values[:, [*kept, j]]) > len(kept):
            kept.append(j)
        else:
            redundant.append(str(name))
    what = "is a linear combination" if len(redundant) == 1 else "are linear combinations"
    raise ValueError(f"regress: formula {formula!r}: {', '.join(redundant)} {what} of the "
                     "other terms in these rows, so no coefficient of it is identified (drop "
                     "it or a term it repeats, e.g. top_rate with C(mechanism) when each "
                     "mechanism has one schedule)")


ROUNDING = 1e-9  # a standard error below this share of the outcome's scale is rounding


def _flag_untestable(fit: Regression, X: pd.DataFrame, y: pd.DataFrame) -> Regression:
    """Set ``fit.untestable`` (and a warning): terms whose standard error is zero up to
    rounding, i.e. below ROUNDING x the standard error they would have if the residuals
    were as large as the outcome itself. Two identical runs compared by ``C(run_id)`` give
    a coefficient of 1e-16 with a standard error of 1e-23: t = 3e7, "p = 2e-8"."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var = np.diag(np.asarray(fit.result.cov_params(), dtype=np.float64))
        values = X.to_numpy(dtype=np.float64)
        scale = np.mean(y.to_numpy(dtype=np.float64) ** 2) * np.diag(
            np.linalg.pinv(values.T @ values))
    zero = ~(var > ROUNDING ** 2 * scale)  # NaN (a rounding-negative variance) counts
    fit.untestable = [str(n) for n, z in zip(X.columns, zero, strict=True) if z]
    if fit.untestable:
        fit.warnings.append(
            f"the standard error of {', '.join(fit.untestable)} is zero up to rounding: the "
            "outcome does not vary with it beyond rounding error (identical runs or seeds, "
            "or an exact fit), so no t, p-value or interval is given for it")
    return fit


def _wild_bootstrap(X: pd.DataFrame, y: pd.DataFrame, groups: np.ndarray, draws: int,
                    weights: str, seed: int) -> tuple[pd.Series, str]:
    """``p_boot`` per term (WCR, ``econsim.bootstrap``) and how it was computed."""
    v = wild.draws(int(groups.max()) + 1, draws, weights, seed)
    p = [wild.wcr_pvalue(X.to_numpy(), y.iloc[:, 0].to_numpy(), groups, j, v.v)[0]
         for j in range(X.shape[1])]
    return pd.Series(p, index=X.columns), f"{v.describe()}; ties count as extreme"


def regress(formula: str, data: pd.DataFrame, cluster: str | None = "seed", *,
            reference: dict[str, Any] | None = None, bootstrap: bool | str = "auto",
            draws: int = 999, weights: str = "webb", seed: int = 0) -> Regression:
    """OLS of ``formula`` on ``data`` with standard errors clustered by column ``cluster``
    (``None``: classical standard errors). See the module docstring.

    ``reference``: column -> level to omit for categorical columns. ``bootstrap``:
    ``"auto"`` (wild cluster bootstrap p-values when clustered with fewer than
    :data:`FEW_CLUSTERS` clusters), ``True`` or ``False``; ``draws``, ``weights``
    (``webb`` or ``rademacher``) and ``seed`` configure it.
    """
    import statsmodels.api as sm

    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"regress: data must be a pandas DataFrame, not {type(data).__name__}")
    if data.empty:
        raise ValueError("regress: data has no rows")
    try:
        formula_mod.validate(formula, data.columns)
    except ValueError as err:
        raise ValueError(f"regress: formula {formula!r}: {err} (columns: {_columns(data)})"
                         ) from None
    if cluster is not None and cluster not in data.columns:
        raise ValueError(f"regress: cluster column {cluster!r} not found "
                         f"(columns: {_columns(data)})")
    if bootstrap not in ("auto", True, False):
        raise ValueError(f"regress: bootstrap {bootstrap!r} is not allowed (allowed: auto, "
                         "True, False)")
    if bootstrap is True and cluster is None:
        raise ValueError("regress: the wild cluster bootstrap needs a cluster column")
    wild.check_draws(draws)
    frame = data.reset_index(drop=True)  # unique labels, so the kept rows can be looked up
    if cluster is not None:
        frame = frame[frame[cluster].notna()]
    reference = dict(reference or {})
    frame = _float_numbers(formula, complete_rows(formula, frame), skip=list(reference))
    frame = _set_references(frame, reference, data)
    y, X = _design(formula, frame, data)
    if len(X) <= X.shape[1]:
        raise ValueError(f"regress: formula {formula!r}: {len(X)} rows used for "
                         f"{X.shape[1]} parameters: with no more rows than parameters the fit "
                         "is exact and no standard error exists (use fewer terms, or more "
                         "seeds or episodes)")
    if np.ptp(y.to_numpy()) == 0:
        raise ValueError(f"regress: formula {formula!r}: the outcome {y.columns[0]} is "
                         f"{y.iloc[0, 0]:g} in all {len(y)} rows used: there is nothing to "
                         "explain")
    _check_rank(X, formula)
    refs = _reference_levels(X)
    model = sm.OLS(y, X)
    if cluster is None:
        return _flag_untestable(Regression(formula, None, model.fit(), references=refs), X, y)
    groups = pd.factorize(frame.loc[X.index, cluster], sort=True)[0]  # 1-D, aligned with X
    n_groups = int(len(np.unique(groups)))
    if n_groups < 2:
        raise ValueError(f"regress: cluster column {cluster!r} has {n_groups} group(s) in the "
                         f"{len(groups)} rows used; clustered standard errors need at least 2 "
                         f"(use cluster=None or another column; columns: {_columns(data)})")
    result = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    fit = _flag_untestable(Regression(formula, cluster, result, n_groups, references=refs),
                           X, y)
    few = n_groups < FEW_CLUSTERS
    if bootstrap is True or (bootstrap == "auto" and few):
        fit.p_boot, fit.bootstrap = _wild_bootstrap(X, y, groups, draws, weights, seed)
    if few:
        read = ("read the wild cluster bootstrap p-values (p_boot)" if fit.p_boot is not None
                else "compute wild cluster bootstrap p-values (bootstrap=True)")
        fit.warnings.append(
            f"only {n_groups} clusters ({cluster}) in the {fit.nobs} rows used: with fewer "
            f"than {FEW_CLUSTERS} clusters cluster-robust standard errors are unreliable "
            f"(usually too small); {read} and add seeds for firmer answers")
        warnings.warn(fit.warnings[-1], FewClustersWarning, stacklevel=2)
    return fit
