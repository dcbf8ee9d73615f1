"""Regression panel: OLS with the statsmodels formula API via ``econsim.analysis.regress``,
standard errors clustered by seed; summary shown and downloadable."""

import streamlit as st

from econsim.app_pages import common

ss = st.session_state
SOURCES = {"whatif_episodes": "Last what-if: per episode",
           "whatif_periods": "Last what-if: per agent and tax period",
           "runs_episodes": "Stored runs: per episode (last evaluations)",
           "runs_periods": "Stored runs: per agent and tax period"}

st.title("Regression")
st.caption("Ordinary least squares with a formula: `outcome ~ x1 + C(category)`; `C()` turns "
           "a column into dummies, `np.log(x)` works too. Standard errors are clustered by "
           "seed, the independent replicas.")
an = common.analysis()
if an is None:
    st.warning("econsim.analysis is not installed in this version: regressions unavailable.")
    st.stop()

res = ss.get(common.RESULT_KEY)
root = common.runs_root()
runs = common.list_runs(root)
sources = []
if res is not None and not res.episodes.empty:
    sources += ["whatif_episodes"] + (["whatif_periods"] if not res.periods.empty else [])
if not runs.empty:
    sources += ["runs_episodes", "runs_periods"]
if not sources:
    st.info("No data yet: run a what-if, or train runs (Scenario builder / `econsim run`).")
    st.stop()
common.keep({"g_source": sources[0], "g_formula": "welfare ~ C(mechanism)",
             "g_cluster": "seed"})
if ss.g_source not in sources:
    ss.g_source = sources[0]
source = st.selectbox("Data", sources, key="g_source", format_func=SOURCES.get)


def _data():
    if source == "whatif_episodes":
        return res.episodes
    if source == "whatif_periods":
        return res.periods
    ids = common.runs_with(root)  # runs with rows (not killed at their start)
    chosen = st.multiselect("Runs", ids, default=ids, key="g_runs")
    if not chosen:
        raise ValueError("runs: pick at least one")
    if source == "runs_periods":
        economies = set(common.runs_with(root, "periods"))
        gtb = [r for r in chosen if r in economies]
        return an.tidy(gtb or chosen, "periods", root)
    return an.episode_table(chosen, root=root)


try:
    data = _data()
except ValueError as err:
    st.error(common.one_line(err))
    st.stop()
st.caption(f"{len(data):,} rows. Columns: " + ", ".join(f"`{c}`" for c in data.columns))
formula = st.text_input("Formula", key="g_formula",
                        help="e.g. welfare ~ C(mechanism), welfare ~ top_rate + C(mechanism), "
                             "productivity ~ C(mechanism) + C(seed)")
clusters = ["seed", "none"] + [c for c in ("run_id", "mechanism", "agent") if c in data]
if ss.g_cluster not in clusters:
    ss.g_cluster = "seed"
cluster = st.selectbox("Cluster standard errors by", clusters, key="g_cluster",
                       help="'none': classical standard errors")
common.remember(["g_source", "g_formula", "g_cluster"])

if st.button("Run regression", key="g_run", type="primary"):
    try:
        ss.g_fit = an.regress(formula, data, cluster=None if cluster == "none" else cluster)
        ss.g_fit_source = SOURCES[source]
    except ValueError as err:
        ss.pop("g_fit", None)
        st.error(common.one_line(err))

fit = ss.get("g_fit")
if fit is not None:
    st.subheader("Result")
    st.caption(f"`{fit.formula}` on {ss.get('g_fit_source', '')}, {fit.nobs} observations.")
    st.dataframe(fit.table, hide_index=True)
    st.code(fit.summary_text(), language=None)
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button("CSV: coefficient table", common.csv_bytes(fit.table),
                       file_name="regression.csv", mime="text/csv", key="g_download_csv")
    c2.download_button("Text: full summary", fit.summary_text(), file_name="regression.txt",
                       mime="text/plain", key="g_download_txt")
