"""Exports: tidy CSV and Parquet of the last what-if and of stored runs (per agent and
period, per episode), with a data dictionary (column, unit, meaning)."""

import pandas as pd
import streamlit as st

from econsim.app_pages import common

ss = st.session_state
TITLES = {"periods": "per agent and tax period", "episodes": "per episode",
          "steps": "per agent and step", "world": "per step (world)"}

st.title("Exports")
st.caption("Tidy tables: one row per observation, one column per variable. CSV opens in "
           "Excel, Stata or R; Parquet keeps the types for pandas, DuckDB or R's arrow.")


def _downloads(df: pd.DataFrame, stem: str, title: str, key: str) -> None:
    st.markdown(f"**{title}**: {len(df):,} rows x {df.shape[1]} columns")
    c1, c2 = st.columns(2)
    c1.download_button(f"CSV: {title}", common.csv_bytes(df), file_name=f"{stem}.csv",
                       mime="text/csv", key=f"{key}_csv")
    c2.download_button(f"Parquet: {title}", common.parquet_bytes(df),
                       file_name=f"{stem}.parquet", mime="application/octet-stream",
                       key=f"{key}_parquet")


def _dictionary(df: pd.DataFrame, stem: str, key: str) -> None:
    with st.expander("Data dictionary (column, unit, meaning)", expanded=True):
        st.dataframe(df, hide_index=True)
        st.download_button("CSV: data dictionary", common.csv_bytes(df),
                           file_name=f"{stem}-dictionary.csv", mime="text/csv", key=key)


tab_w, tab_r = st.tabs(["Last what-if", "Stored runs"])

with tab_w:
    res = ss.get(common.RESULT_KEY)
    if res is None or res.episodes.empty:
        st.info("No what-if yet: run one on the What-if page.")
    else:
        st.caption(f"What-if of {res.scenario}: {', '.join(res.mechanisms)}; seeds "
                   f"{res.seeds}; {res.episodes_done} episodes.")
        for name, df in res.tables().items():
            if not df.empty:
                _downloads(df, f"whatif-{res.scenario}-{name}", TITLES[name], f"e_w_{name}")
        _dictionary(res.data_dictionary(), f"whatif-{res.scenario}", "e_w_dictionary")

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
                    _downloads(periods, "runs-periods", TITLES["periods"], "e_r_periods")
                    parts.append(an.data_dictionary("periods", list(periods.columns))
                                 .assign(table="periods"))
                episodes = common.runs_episodes(chosen, root, which)
                _downloads(episodes, "runs-episodes", TITLES["episodes"], "e_r_episodes")
                parts.append(an.data_dictionary("episodes", list(episodes.columns))
                             .assign(table="episodes"))
            except ValueError as err:
                st.error(common.one_line(err))
            if parts:
                d = pd.concat(parts, ignore_index=True)
                _dictionary(d[["table", "column", "unit", "meaning"]], "runs", "e_r_dictionary")
