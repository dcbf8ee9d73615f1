"""Runs browser: every stored run (``econsim.store``), one opened in detail, several
compared on the final evaluation of each seed (``econsim.analysis.episode_table``, the same
rows the Regression page uses by default)."""

import json

import streamlit as st

from econsim import analysis, store
from econsim.app_pages import charts, common
from econsim.errors import ScenarioError

ss = st.session_state
st.title("Runs")
root = common.runs_root()
runs = common.list_runs(root)
if runs.empty:
    st.info(f"No runs in `{root}` yet. Train one from the Scenario builder, or run "
            "`econsim run gtb_flat30` in a shell (another folder: restart the app with "
            "`ECONSIM_RUNS=FOLDER make app`).")
    st.stop()

st.caption(f"{len(runs)} run(s) in `{root}` (one folder each; queried with DuckDB).")
st.dataframe(runs, hide_index=True)
ids = runs["run_id"].tolist()[::-1]  # newest first

# ------------------------------------------------------------------------------ one run
st.subheader("Open a run")
run_id = st.selectbox("Run", ids, key="r_open")
try:
    path = store.run_dir(run_id, root)
    info = json.loads(store.inside(path, "run.json").read_text())
except (ScenarioError, OSError, ValueError) as err:  # changed since it was listed
    st.error(common.one_line(err))
    st.stop()
if info.get("error"):
    st.error(f"Run {info.get('status', 'failed')}: {info['error']}")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Status", info.get("status", "?"))
c2.metric("Iterations", f"{info.get('iterations_done', 0)} / {info.get('iterations', '?')}")
c3.metric("Seeds", ", ".join(str(s) for s in info.get("seeds", [])))
c4.metric("Wall time", f"{info.get('wall_s', 0):.0f} s")
with st.expander("Scenario (resolved)"):
    toml = store.inside(path, "scenario.toml")
    st.code(toml.read_text() if toml.is_file() else "(missing)", language="toml")
try:
    episodes = analysis.load(run_id, "episodes", root)
except Exception as err:  # a run killed at its start has no table yet
    st.warning(common.one_line(err))
    st.stop()
final = analysis.select_evaluations(episodes, "final")
if not final.empty:
    st.markdown(f"**{analysis.evaluation_label('final').capitalize()}** (mean over its "
                "episodes)")
    st.dataframe(final, hide_index=True)
metric = "welfare_sum" if "welfare_sum" in episodes else "collective"
staged = ("; shaded: the curriculum's stage 1, one agent alone in the induced game"
          if charts.stage1_end(episodes) is not None else "")
st.markdown(f"**Training curve** ({metric}; dashed: evaluations{staged})")
st.altair_chart(charts.training_curves(episodes, metric))
files = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
st.caption("Files: " + ", ".join(files))

# ------------------------------------------------------------------------------ compare
st.subheader("Compare runs")
label = analysis.evaluation_label("final")
has_rows = set(common.runs_with(root))  # not a run killed before its first row
with_data = [r for r in ids if r in has_rows]
chosen = st.multiselect("Runs to compare", with_data, default=with_data, key="r_compare",
                        help=f"compared on the episodes of the {label}")
an = common.analysis()
if chosen and an is None:
    st.warning("econsim.analysis is not installed in this version: comparison unavailable.")
elif chosen:
    try:
        table = common.runs_episodes(chosen, root, "final")
    except ValueError as err:
        st.error(common.one_line(err))
        st.stop()
    st.caption(f"Per episode, {label}: {len(table):,} rows (the Regression page's default "
               "data).")
    skip = {"seed", "iteration", "episode", "periods", "episodes", "length", "epsilon",
            "stage"}
    numeric = [c for c in table.select_dtypes("number").columns
               if c not in skip and not str(c).startswith("mechanism_")]
    first = next((c for c in ("welfare_sum", "collective") if c in numeric), numeric[0])
    metric = st.selectbox("Metric", numeric, index=numeric.index(first), key="r_metric")
    from econsim import uncertainty

    conf = uncertainty.confidence(table, [metric], by="run_id")
    labels = [c for c in ("scenario", "mechanism") if c in table]
    if labels:
        conf = table.groupby("run_id", sort=False)[labels].first().reset_index().merge(
            conf, on="run_id")
    st.caption("Mean over seeds of each seed's mean and its 95% confidence interval across "
               "seeds (seeds are the unit of replication; the bars' dots are the seeds).")
    st.dataframe(conf.drop(columns="outcome").round(4), hide_index=True)
    st.altair_chart(charts.seed_bars(table, [metric], by="run_id", width=480))
    st.page_link("econsim/app_pages/regression.py", label="Test the differences in a "
                 "regression →")
