"""Exports: tidy CSV, Parquet and Stata (.dta, with variable labels) of the last what-if and
of stored runs (per agent and period, per episode), with a data dictionary (column, unit,
meaning); the what-if also as one zip with its scenario and the code that reruns it."""

import pandas as pd
import streamlit as st

from econsim import report, stata, store
from econsim.app_pages import common

ss = st.session_state
TITLES = {"periods": "per agent and tax period", "episodes": "per episode",
          "steps": "per agent and step", "world": "per step (world)"}

st.title("Exports")
st.caption("Tidy tables: one row per observation, one column per variable. CSV opens in "
           "Excel or R; Stata files carry each variable's meaning and unit as its label; "
           "Parquet keeps the types for pandas, DuckDB or R's arrow.")


def _downloads(df: pd.DataFrame, stem: str, title: str, key: str, table: str) -> None:
    """CSV, Parquet and Stata buttons for ``df`` (``table``: its data-dictionary table)."""
    st.markdown(f"**{title}**: {len(df):,} rows x {df.shape[1]} columns")
    c1, c2, c3 = st.columns(3)
    c1.download_button(f"CSV: {title}", common.csv_bytes(df), file_name=f"{stem}.csv",
                       mime="text/csv", key=f"{key}_csv")
    c2.download_button(f"Parquet: {title}", common.parquet_bytes(df),
                       file_name=f"{stem}.parquet", mime="application/octet-stream",
                       key=f"{key}_parquet")
    c3.download_button(f"Stata: {title}", stata.dta_bytes(df, table, title),
                       file_name=f"{stem}.dta", mime="application/x-stata-dta",
                       key=f"{key}_dta")


def _dictionary(df: pd.DataFrame, stem: str, key: str) -> None:
    with st.expander("Data dictionary (column, unit, meaning)", expanded=True):
        st.dataframe(df, hide_index=True)
        st.download_button("CSV: data dictionary", common.csv_bytes(df),
                           file_name=f"{stem}-dictionary.csv", mime="text/csv", key=key)


def _readme(res) -> str:
    """README.txt of the what-if zip: what it holds and how to play it again."""
    return (f"econsim what-if of {res.scenario} ({res.env}); agents: {res.agents_text()}; "
            f"mechanisms: {', '.join(res.mechanisms)}; seeds {res.seeds}; "
            f"{res.episodes_requested} episode(s) each.\n\nFiles: one CSV and one Stata "
            f"file per table, the data dictionary (table, column, unit, meaning) and the "
            f"scenario ({res.scenario}-scenario.toml). Rerun it with Python, after saving "
            f"the scenario as {res.scenario}.toml:\n\n{res.rerun_code()}")


tab_w, tab_r = st.tabs(["Last what-if", "Stored runs"])

with tab_w:
    res = ss.get(common.RESULT_KEY)
    if res is None or res.episodes.empty:
        st.info("No what-if yet: run one on the What-if page.")
    else:
        st.caption(f"What-if of {res.scenario}: {', '.join(res.mechanisms)}; agents: "
                   f"{res.agents_text()}; seeds {res.seeds}; {res.episodes_done} episodes. "
                   "Every table carries the agents in its column `agents`.")
        stem = f"whatif-{res.scenario}"
        st.download_button(
            "Everything (zip): every table as CSV and Stata, the data dictionary, the "
            "scenario and the code that reruns it",
            stata.bundle(res.tables(), stem, scenario_toml=res.scenario_toml,
                         readme=_readme(res)),
            file_name=f"{stem}.zip", mime="application/zip", key="e_w_zip", type="primary")
        c1, c2 = st.columns([1, 2])
        base = c1.selectbox("Report: differences against", res.mechanisms, key="e_w_base")
        c2.download_button(
            "HTML report: scenario, results with confidence intervals, plots, versions and "
            "the code that reruns it (one file)", report.whatif_report(res, base),
            file_name=f"{stem}-report.html", mime="text/html", key="e_w_report")
        for name, df in res.tables().items():
            if not df.empty:
                _downloads(df, f"{stem}-{name}", TITLES[name], f"e_w_{name}", name)
        _dictionary(res.data_dictionary(), stem, "e_w_dictionary")

with tab_r:
    root = common.runs_root()
    runs = common.list_runs(root)
    an = common.analysis()
    if runs.empty:
        st.info(f"No runs in `{root}` yet.")
    elif an is None:
        st.warning("econsim.analysis is not installed in this version: use "
                   "`econsim export RUN_ID` instead.")
    else:
        ids = common.runs_with(root)  # runs with rows (not killed at their start)
        chosen = st.multiselect("Runs", ids, default=ids, key="e_runs")
        if chosen:
            which = st.selectbox("Evaluations", common.evaluation_options(chosen, root),
                                 key="e_evaluations", format_func=an.evaluation_label)
            st.caption(f"Rows of the {an.evaluation_label(which)}.")
            parts = []
            try:
                economies = set(common.runs_with(root, "periods"))
                gtb = [r for r in chosen if r in economies]
                if gtb:
                    periods = an.tidy(gtb, "periods", root, evaluations=which)
                    _downloads(periods, "runs-periods", TITLES["periods"], "e_r_periods",
                               "periods")
                    parts.append(an.data_dictionary("periods", list(periods.columns))
                                 .assign(table="periods"))
                episodes = common.runs_episodes(chosen, root, which)
                _downloads(episodes, "runs-episodes", TITLES["episodes"], "e_r_episodes",
                           "episodes")
                parts.append(an.data_dictionary("episodes", list(episodes.columns))
                             .assign(table="episodes"))
            except ValueError as err:
                st.error(common.one_line(err))
            if parts:
                d = pd.concat(parts, ignore_index=True)
                _dictionary(d[["table", "column", "unit", "meaning"]], "runs", "e_r_dictionary")
                tables = {"episodes": episodes, **({"periods": periods} if gtb else {})}
                scenarios = {r: store.inside(store.run_dir(r, root), "scenario.toml")
                             .read_text() for r in chosen}
                st.download_button(
                    "Everything (zip): these tables as CSV and Stata, the data dictionary and "
                    "each run's scenario", stata.bundle(
                        tables, "runs",
                        scenario_toml=scenarios, readme=(
                            f"econsim runs {', '.join(chosen)}; rows of the "
                            f"{an.evaluation_label(which)}. Each run's scenario is "
                            "runs-<run_id>-scenario.toml; `econsim run` on it trains the run "
                            "again.\n")),
                    file_name="runs.zip", mime="application/zip", key="e_r_zip")
