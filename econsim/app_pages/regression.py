"""Regression panel: OLS with ``econsim.analysis.regress`` (the formula passes
``econsim.formula.validate`` first), standard errors clustered by seed, the covariance
stated, a warning and wild cluster bootstrap p-values with few clusters; summary shown and
downloadable."""

import streamlit as st

from econsim.app_pages import common

ss = st.session_state
SOURCES = {"whatif_episodes": "Last what-if: per episode",
           "whatif_periods": "Last what-if: per agent and tax period",
           "runs_episodes": "Stored runs: per episode",
           "runs_periods": "Stored runs: per agent and tax period"}
BOOTSTRAP = {"auto": "Auto: with fewer than 10 clusters", "on": "On", "off": "Off"}

st.title("Regression")
st.caption("Ordinary least squares with a formula: `outcome ~ x1 + C(category)`. Allowed: "
           "column names, numbers, `~ + - * / : ** ( )`, `C(col)` (dummies; pick the "
           "reference level below), `I(...)` over arithmetic of columns, `log`/`exp`/`sqrt` "
           "(or `np.log` ...), `center(...)`, `standardize(...)`; nothing else is "
           "evaluated. Standard errors are clustered by seed, the independent replicas.")
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
common.keep({"g_source": sources[0], "g_formula": "welfare_sum ~ C(mechanism)",
             "g_cluster": "seed", "g_evaluations": "final", "g_bootstrap": "auto"})
if ss.g_source not in sources:
    ss.g_source = sources[0]
source = st.selectbox("Data", sources, key="g_source", format_func=SOURCES.get)


def _data():
    if source == "whatif_episodes":
        return res.episodes, "per episode"
    if source == "whatif_periods":
        return res.periods, "per agent and tax period"
    ids = common.runs_with(root)  # runs with rows (not killed at their start)
    chosen = st.multiselect("Runs", ids, default=ids, key="g_runs")
    if not chosen:
        raise ValueError("runs: pick at least one")
    options = common.evaluation_options(chosen, root)
    if ss.g_evaluations not in options:
        ss.g_evaluations = "final"
    which = st.selectbox("Evaluations", options, key="g_evaluations",
                         format_func=an.evaluation_label,
                         help="Early evaluations show agents that have not learned yet, and "
                              "the evaluations of one seed are not independent: the final "
                              "evaluation of each seed is the default.")
    if source == "runs_periods":
        economies = set(common.runs_with(root, "periods"))
        gtb = [r for r in chosen if r in economies]
        data = an.tidy(gtb or chosen, "periods", root, evaluations=which)
        return data, f"per agent and tax period, {an.evaluation_label(which)}"
    data = common.runs_episodes(chosen, root, which)
    return data, f"per episode, {an.evaluation_label(which)}"


try:
    data, what = _data()
except ValueError as err:
    st.error(common.one_line(err))
    st.stop()
st.caption(f"{len(data):,} rows ({what}). Columns: "
           + ", ".join(f"`{c}`" for c in data.columns))
formula = st.text_input("Formula", key="g_formula",
                        help="e.g. welfare_sum ~ C(mechanism), welfare_sum ~ mechanism_rate "
                             "(a sweep), productivity ~ C(mechanism) + C(seed)")
c1, c2 = st.columns(2)
clusters = ["seed", "none"] + [c for c in ("run_id", "mechanism", "agent") if c in data]
if ss.g_cluster not in clusters:
    ss.g_cluster = "seed"
cluster = c1.selectbox("Cluster standard errors by", clusters, key="g_cluster",
                       help="'none': classical standard errors")
c2.selectbox("Wild cluster bootstrap p-values", list(BOOTSTRAP), key="g_bootstrap",
             format_func=BOOTSTRAP.get,
             help="restricted wild cluster bootstrap-t (WCR) with Webb weights, next to the "
                  "analytic p-values")
reference = {}
for col in common.categorical_columns(formula, data):
    levels = common.levels(data, col, formula)
    if not levels:  # no row left with this formula: regress says so in one line
        continue
    key = f"g_ref_{col}"
    if ss.get(key) not in levels:
        ss[key] = levels[0]
    reference[col] = st.selectbox(f"Reference level of {col}", levels, key=key,
                                  help="the omitted category: every coefficient of "
                                       f"{col} is a difference from it")
common.remember(["g_source", "g_formula", "g_cluster", "g_evaluations", "g_bootstrap"])

if st.button("Run regression", key="g_run", type="primary"):
    try:
        boot = {"auto": "auto", "on": True, "off": False}[ss.g_bootstrap]
        ss.g_fit = common.regress(an, formula, data, None if cluster == "none" else cluster,
                                  reference, boot)
        ss.g_fit_source = f"{SOURCES[source].split(':')[0]}: {what}"
    except ValueError as err:
        ss.pop("g_fit", None)
        st.error(common.one_line(err))

fit = ss.get("g_fit")
if fit is not None:
    st.subheader("Result")
    cov = fit.covariance
    clustered = (f"clustered by `{fit.cluster}`, {fit.n_clusters} clusters, CR1 correction "
                 f"{cov['correction']}, t tests with G - 1 = {fit.df} df" if fit.cluster
                 else f"classical (homoskedastic), t tests with N - K = {fit.df} df")
    st.caption(f"`{fit.formula}` on {ss.get('g_fit_source', '')}: {fit.nobs} observations. "
               f"Standard errors: {clustered}.")
    for w in fit.warnings:
        st.warning(w)
    st.dataframe(fit.table, hide_index=True)
    st.code(fit.summary_text(), language=None)
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button("CSV: coefficient table", common.csv_bytes(fit.table),
                       file_name="regression.csv", mime="text/csv", key="g_download_csv")
    c2.download_button("Text: full summary", fit.summary_text(), file_name="regression.txt",
                       mime="text/plain", key="g_download_txt")
