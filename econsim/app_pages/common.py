"""Helpers shared by the workbench pages: the runs folder, mechanism and algorithm choices,
bracket tables, downloads and one-line errors. Everything game-, algorithm- or
mechanism-specific is read from econsim's registries, so a new game, learner or tax
mechanism appears in the app without changes here."""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import econsim
import learners
from econsim import cli, envs, scenario, store
from econsim.core.capabilities import PlannerView, TaxPeriods, has
from econsim.errors import ScenarioError, StoreWarning
from mechanisms import registry
from mechanisms.tax import US_FEDERAL_CUTOFFS, US_FEDERAL_RATES

RUNS_ENV = store.RUNS_ENV
ROOT_KEY = "runs_root"  # kept for old sessions; the runs folder is never read from it
RESULT_KEY = "whatif_result"  # the last what-if's WhatIfResult (session state)
BUILDER_KEY = "builder_scenario"  # the builder's last valid scenario dict (session state)
BUILDER_OPTION = "(from the builder)"  # the what-if's name for that scenario

#: friendly names; anything not listed shows its registry name
LABELS = {
    "free_market": "Free market (no tax)",
    "us_federal": "US federal (2018 brackets)",
    "flat": "Flat tax",
    "custom": "Custom brackets",
    "saez": "Saez formula (adaptive)",
    "metagrad-tax": "MetaGrad tax designer (learned)",
    "dual-rl-tax": "Dual-RL tax planner (learned)",
    "metagrad": "MetaGrad incentive designer (learned)",
    "dual-rl-d": "Dual-RL incentive designer, discrete (learned)",
    "dual-rl-c": "Dual-RL incentive designer, continuous (learned)",
    "metagrad-ac": "MetaGrad incentive designer over actor-critic agents (learned; Cleanup)",
    "dual-rl-c-ac": "Dual-RL continuous designer over actor-critic agents (learned; Cleanup)",
    "fixed-incentives": "Fixed incentives per action (stated by hand)",
    "none": "None: the agents alone",
    "scenario": "As in the scenario / trained run",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


# --------------------------------------------------------------------------- runs folder


def default_root() -> str:
    """``$ECONSIM_RUNS`` if set, else ``runs`` (the rule of the CLI and the library:
    ``econsim.store.default_root``)."""
    return str(store.default_root())


def runs_root() -> Path:
    """The runs folder: ``store.default_root()`` (``$ECONSIM_RUNS`` when the app was started,
    else ``runs``). Nothing a browser sends can change it (the sidebar only shows it), so
    the app never trains into or reads from another folder."""
    return store.default_root()


def list_runs(root: Path) -> pd.DataFrame:
    """``store.runs(root)``: the usable runs (an empty table if the folder does not exist),
    oldest first by start time (the pages list them reversed: the newest opens first);
    each folder the store skips is shown as a one-line warning on the page."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StoreWarning)
        df = store.runs(root)
    if not df.empty:
        df = df.sort_values(["started", "run_id"], na_position="first",
                            kind="stable").reset_index(drop=True)
    skipped = [str(w.message) for w in caught if issubclass(w.category, StoreWarning)]
    if skipped:
        import streamlit as st

        for message in skipped:
            st.warning(message, icon=":material/folder_off:")
    return df


def _quiet_scan(root: Path) -> list[store.StoredRun]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        return store.scan(root)


def trained_runs(root: Path) -> list[str]:
    """Run ids in ``root`` that have a checkpoint (usable as trained brains), the newest
    first by start time (runs started in the same second: by id)."""
    runs = sorted((r for r in _quiet_scan(root)
                   if (r.path / "checkpoints" / "last.pt").is_file()), key=lambda r: r.run_id)
    runs.sort(key=lambda r: str(r.info.get("started") or ""), reverse=True)  # stable
    return [r.run_id for r in runs]


def runs_with(root: Path, table: str = "episodes") -> list[str]:
    """Ids of the usable runs in ``root`` that have rows in ``table`` (a run killed at its
    start has none yet)."""
    return [r.run_id for r in _quiet_scan(root) if table in r.tables]


# --------------------------------------------------------------------------- registries


@functools.cache
def has_taxes(env_name: str) -> bool:
    """Whether the game takes a tax mechanism (an economy, e.g. GTB)."""
    return has(envs.game_class(env_name), TaxPeriods)


@functools.cache
def env_fields(env_name: str) -> dict[str, Any]:
    """Parameters of a game with their defaults (its pydantic ``Params``)."""
    return {k: f.default for k, f in envs.params_model(env_name).model_fields.items()}


def n_agents_of(env_name: str, params: dict[str, Any] | None = None) -> int:
    """The number of agents the game's parameters resolve to (its pydantic ``Params``):
    a default of None means "implied by other parameters" (navigation's formation,
    Cleanup's map), so the field's default alone is not a number. Parameters that do not
    validate (a half-typed TOML) fall back to the game's defaults."""
    model = envs.params_model(env_name)
    params = {k: v for k, v in (params or {}).items() if k not in ("name", "n_agents")}
    try:
        n = model(**params).n_agents
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        n = model().n_agents
    return int(n)


def _role(alg: str) -> str:
    """``agents``, ``tax_designer`` (sets tax rates: GTB) or ``designer`` (pays incentives)."""
    cls = learners.trainer_class(alg)
    if cls.plans_taxes:
        return "tax_designer"
    return "designer" if cls.central_designer else "agents"


def algorithm_roles() -> dict[str, str]:
    return {a: _role(a) for a in learners.algorithm_names()}


@dataclass(frozen=True)
class Choice:
    """One entry of the builder's mechanism list: ``key`` like ``tax:flat``."""

    key: str
    kind: str  # "tax" (a [mechanism] table), "designer" (a learning algorithm), "none"
    name: str

    @property
    def label(self) -> str:
        return label(self.name)


def mechanism_choices(env_name: str) -> list[Choice]:
    """Mechanisms that fit the game: tax schedules and tax designers for economies,
    "none" and incentive designers for the other games."""
    roles = algorithm_roles()
    if has_taxes(env_name):
        planned = has(envs.game_class(env_name), PlannerView)  # learned planners need it
        return ([Choice(f"tax:{m}", "tax", m) for m in registry.names()]
                + [Choice(f"designer:{a}", "designer", a) for a, r in roles.items()
                   if r == "tax_designer" and planned])
    return ([Choice("none", "none", "none")]
            + [Choice(f"designer:{a}", "designer", a) for a, r in roles.items()
               if r == "designer"])


def choice(key: str) -> Choice:
    kind, _, name = key.partition(":")
    return Choice(key, kind, name or kind)


def agent_algorithms(env_name: str, mechanism_key: str) -> list[str]:
    """Learning algorithms of the agents under a mechanism choice."""
    c = choice(mechanism_key)
    if c.kind == "designer":
        return [c.name]
    roles = algorithm_roles()
    algs = [a for a, r in roles.items() if r == "agents"]
    if c.kind == "tax" or has_taxes(env_name):
        algs = [a for a in algs if learners.trainer_class(a).takes_mechanism]
    # the usual learner of the game's shipped scenarios first (PPO for GTB, LIO elsewhere)
    order = {"ppo": 0, "lio": 1, "pg": 2}
    return sorted(algs, key=lambda a: (order.get(a, 9), a))


def scenario_mechanism_key(data: dict) -> str:
    """The builder's mechanism choice of a scenario dict."""
    alg = (data.get("algorithm") or {}).get("name")
    if alg and alg in learners.algorithm_names() and _role(alg) != "agents":
        return f"designer:{alg}"
    mech = data.get("mechanism")
    if isinstance(mech, dict) and mech.get("name"):
        return f"tax:{mech['name']}"
    return "none"


# --------------------------------------------------------------------------- brackets


def brackets_frame(thresholds=US_FEDERAL_CUTOFFS, rates=US_FEDERAL_RATES) -> pd.DataFrame:
    """A bracket table for ``st.data_editor``: lower edge (coin) and marginal rate."""
    return pd.DataFrame({"threshold": np.asarray(thresholds, float),
                         "rate": np.asarray(rates, float)})


def brackets_spec(df: pd.DataFrame) -> dict:
    """``{"name": "custom", "thresholds": [...], "rates": [...]}`` of an edited table (rows
    with an empty cell are dropped; the schedule itself is validated by econsim)."""
    df = pd.DataFrame(df).dropna(how="any")
    return {"name": "custom", "thresholds": [float(x) for x in df["threshold"]],
            "rates": [float(x) for x in df["rate"]]}


def schedule_of(spec: dict) -> pd.DataFrame | None:
    """The bracket schedule of a mechanism spec now (``lower``, ``upper``, ``rate``), or None
    if it is not a valid schedule mechanism."""
    try:
        mech = registry.build(spec)
    except ValueError:
        return None
    return mech.schedule()


# --------------------------------------------------------------------------- figures

#: the repository's docs/ folder: the parent of the ``econsim`` package folder holds it (a
#: checkout or an editable install; an installed wheel has none, and nothing is shown)
DOCS = Path(econsim.__file__).resolve().parent.parent / "docs"
#: Figure 3.5 reproductions that ``benchmarks/cm3.py`` and ``benchmarks/sumo_merge.py`` write
#: into docs/, by game and navigation formation (several where one figure does not hold every
#: method or setting); the file names are fixed here, never built from a run's values
FIGURES = {("navigation", "antipodal"): ("cm3_antipodal.png",),
           ("navigation", "cross"): ("cm3_cross.png",),
           ("navigation", "merge"): ("cm3_merge.png",),
           ("checkers", None): ("cm3_checkers.png", "cm3_checkers_direct_coma_qmix.png"),
           ("sumo_merge", None): ("cm3_sumo_c1_frozen_iac_coma.png", "cm3_sumo.png")}
FIGURE_CAPTION = ("Figure 3.5 reproduction: evaluation return vs training episodes, mean and "
                  "min-max over seeds; benchmarks/cm3.py (SUMO: benchmarks/sumo_merge.py; "
                  "the README says which settings each picture has)")


def reproduction_figures(env_name: str, env_params: dict[str, Any]) -> list[Path]:
    """The benchmarks' Figure 3.5 pictures of a game (navigation by its formation) that
    docs/ holds, in :data:`FIGURES`' order. ``env_name`` and ``env_params`` only pick an entry
    of :data:`FIGURES`; the paths are ``DOCS`` / names written there."""
    formation = env_params.get("formation") if env_name == "navigation" else None
    try:
        names = FIGURES.get((env_name, formation), ())
    except TypeError:  # an unhashable value is no key
        return []
    return [DOCS / name for name in names if (DOCS / name).is_file()]


# --------------------------------------------------------------------------- input text


def parse_seeds(text: str) -> list[int]:
    """``0-4`` or ``0,2,5`` -> seeds (as the CLI's ``--seeds``); one-line ValueError."""
    try:
        return cli.parse_seeds(str(text).replace(" ", ""))
    except ScenarioError as err:
        raise ValueError(str(err).removeprefix("--")) from None


def parse_toml(text: str, what: str) -> dict:
    """A TOML snippet as a dict; one-line ScenarioError naming ``what`` if it is not TOML (or
    too large or nested too deep: the checks of a scenario file, ``scenario.parse_text``)."""
    return scenario.parse_text(text or "", what)


def one_line(err: BaseException) -> str:
    """An exception as one line (the first line of its message)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# --------------------------------------------------------------------------- downloads


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def dictionary_frame(columns: dict[str, tuple[str, str]],
                     present: list[str] | None = None) -> pd.DataFrame:
    """A data dictionary (column, unit, meaning), restricted to ``present`` columns."""
    rows = [{"column": c, "unit": u, "meaning": m} for c, (u, m) in columns.items()
            if present is None or c in present]
    return pd.DataFrame(rows, columns=["column", "unit", "meaning"])


def evaluation_options(runs: list[str], root: Path) -> list:
    """``final``, ``all`` and every evaluation iteration of ``runs`` (for a selectbox)."""
    its: set[int] = set()
    for run_id in runs:
        try:
            ep = store.load(run_id, "episodes", root)
        except ScenarioError:
            continue
        its |= {int(i) for i in ep.loc[ep["phase"] == "eval", "iteration"].unique()}
    return ["final", "all", *sorted(its)]


def runs_episodes(runs: list[str], root: Path, evaluations: Any = "final") -> pd.DataFrame:
    """The per-episode table of stored runs that the Runs and Regression pages both show
    (``econsim.analysis.episode_table``)."""
    from econsim import analysis as an

    return an.episode_table(runs, root=root, evaluations=evaluations)


def categorical_columns(formula: str, data: pd.DataFrame) -> list[str]:
    """Columns of ``formula`` that enter as categories (inside ``C(...)`` or not numeric):
    the ones a reference level can be picked for."""
    from econsim.formula import columns_used

    used, inside_c = columns_used(formula, data.columns)
    return [c for c in used if c in inside_c or not pd.api.types.is_numeric_dtype(data[c])]


def levels(data: pd.DataFrame, column: str, formula: str | None = None) -> list:
    """The values of a column in the order patsy sorts them (its default reference first);
    with ``formula``, only those of the rows the regression keeps
    (``econsim.analysis.complete_rows``: not ``none`` of runs without the outcome)."""
    if formula is not None:
        from econsim.analysis import complete_rows

        data = complete_rows(formula, data)
    return sorted(pd.unique(data[column].dropna()).tolist(), key=lambda v: (str(type(v)), v))


def regress(an, formula: str, data: pd.DataFrame, cluster: str | None,
            reference: dict[str, Any], bootstrap: Any):
    """``analysis.regress``; the few-clusters warning is shown by the page, not logged."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", an.FewClustersWarning)
        return an.regress(formula, data, cluster=cluster, reference=reference,
                          bootstrap=bootstrap)


def analysis():
    """``econsim.analysis`` (tidy tables, data dictionary, regressions), or None if this
    installation does not have it yet."""
    try:
        from econsim import analysis as mod
    except ImportError:
        return None
    return mod


# --------------------------------------------------------------------------- widget memory


def keep(defaults: dict[str, Any]) -> None:
    """Give widgets (by key) their value from the last visit of the page, else a default.

    Streamlit forgets a widget's value when its page is not shown; call this before the
    widgets and :func:`remember` after them."""
    import streamlit as st

    for k, v in defaults.items():
        if k not in st.session_state:
            st.session_state[k] = st.session_state.get(f"_keep_{k}", v)


def remember(keys) -> None:
    import streamlit as st

    for k in keys:
        if k in st.session_state:
            st.session_state[f"_keep_{k}"] = st.session_state[k]
