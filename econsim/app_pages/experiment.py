"""Experiment: a grid of parameter values x seeds, in the spirit of NetLogo's BehaviorSpace.

Every combination of the values is one training run of the scenario with all the seeds
(``econsim.sweep``: validated before anything runs, written to the runs folder like any
run); then a results table per episode; per combination the mean and 95% confidence interval across
seeds, paired differences to a baseline combination, an HTML report (``econsim.report``); and
a one-click regression of an outcome on the swept parameters, standard errors clustered by
seed (``econsim.analysis``).
"""

import pandas as pd
import streamlit as st

from econsim import analysis, report, sweep, uncertainty
from econsim import scenario as scenario_mod
from econsim.app_pages import charts, common
from econsim.errors import ScenarioError

ss = st.session_state
DEFAULTS = {"x_scenario": "gtb_flat30", "x_seeds": "0-2", "x_iterations": 5, "x_workers": 1}
MAX_RUNS = 100
#: outcomes shown beside the chosen one in the per-combination tables and the report
REPORTED = ("welfare_sum", "productivity", "equality", "utilitarian", "atkinson", "nash",
            "rawlsian", "tax_revenue", "collective")

common.keep(DEFAULTS)
if "x_grid" not in ss:
    ss.x_grid = pd.DataFrame({"parameter": ["mechanism.rate"], "values": ["0.1, 0.3, 0.5"]})

st.title("Experiment")
st.caption("Vary parameters over a grid and see how outcomes respond: every combination of "
           "the values below is one training run of the scenario on all the seeds (each "
           "written to the runs folder), then one row per episode of each run's final "
           "evaluation, and a regression of an outcome on the parameters.")

scenarios = scenario_mod.names()
if ss.x_scenario not in scenarios:
    ss.x_scenario = DEFAULTS["x_scenario"]
name = st.selectbox("Scenario", scenarios, key="x_scenario")
st.markdown("**Parameters to vary** (a dotted path into the scenario and its values, comma "
            "separated: `mechanism.rate` = `0.1, 0.3, 0.5`, `env.labor_weight` = `0.1, 0.3`, "
            "`algorithm.lr` = `1e-3, 3e-3`)")
grid_rows = st.data_editor(ss.x_grid, key="x_grid_editor", num_rows="dynamic",
                           hide_index=True)
c1, c2, c3 = st.columns(3)
c1.text_input("Seeds", key="x_seeds", help="every combination trains on these, e.g. 0-2")
c2.number_input("Training iterations per run", 1, 100_000, step=1, key="x_iterations")
c3.number_input("Runs at once", 1, 8, step=1, key="x_workers",
                help="parallel processes (this machine's cores are the limit)")
common.remember(DEFAULTS)


def _grid() -> dict:
    """The grid of the editor: path -> values (one-line errors for a bad row)."""
    grid: dict = {}
    for _, row in grid_rows.iterrows():
        path, values = str(row.get("parameter") or "").strip(), row.get("values")
        if not path:
            continue
        if values is None or not str(values).strip():
            raise ValueError(f"{path}: give at least one value")
        p, vals = sweep.parse_set(f"{path}={values}")
        if p in grid:
            raise ValueError(f"{p}: listed twice (put all its values in one row)")
        grid[p] = vals
    if not grid:
        raise ValueError("parameters: give at least one path and its values")
    return grid


root = common.runs_root()
try:
    grid = _grid()
    seeds = common.parse_seeds(ss.x_seeds)
    tasks, invalid = sweep.plan(name, grid, seeds, root=root,
                                iterations=int(ss.x_iterations))
    if invalid:
        bad = invalid[0]
        raise ValueError(f"{sweep.label(bad['params'])}: {bad['error']}")
    if len(tasks) > MAX_RUNS:
        raise ValueError(f"{len(tasks)} combinations: at most {MAX_RUNS} per experiment")
    st.info(f"{len(tasks)} run(s) x {len(seeds)} seed(s), {int(ss.x_iterations)} training "
            "iteration(s) each.")
    ready = True
except (ScenarioError, ValueError) as err:
    st.error(common.one_line(err))
    ready = False

if st.button("Run experiment", key="x_run", type="primary", disabled=not ready):
    bar = st.progress(0.0, text="Starting the runs …")

    finished = {"runs": 0}

    def _progress(row: dict) -> None:
        finished["runs"] = row["done"]
        bar.progress(row["done"] / row["total"],
                     text=f"{row['done']} of {row['total']} runs finished "
                          f"({sweep.label({k: row[k] for k in grid})}: {row['status']})")

    def _iteration(task: dict, done: int, total: int) -> None:
        runs = len(tasks)
        bar.progress(min((finished["runs"] + done / total) / runs, 1.0),
                     text=f"run {finished['runs'] + 1} of {runs} "
                          f"({sweep.label(task['params'])}): training iteration {done} of "
                          f"{total}")

    try:
        workers = int(ss.x_workers)  # one at a time: in this process, no pool to start
        table = sweep.sweep(name, grid, seeds, "inline" if workers == 1 else "local",
                            workers, root, int(ss.x_iterations), progress=_progress,
                            on_iteration=_iteration)
        ss.x_result = {"table": table, "grid": list(grid), "values": grid, "scenario": name,
                       "seeds": seeds, "iterations": int(ss.x_iterations)}
    except (ScenarioError, ValueError) as err:
        st.error(common.one_line(err))
    bar.empty()

# ------------------------------------------------------------------------------ results
result = ss.get("x_result")
if result is None:
    st.stop()
table = result["table"]
grid_of = result["values"]
st.subheader("Runs")
st.dataframe(table, hide_index=True)
done = table.loc[table["status"].isin(["finished", "existing"]), "run_id"].tolist()
if not done:
    st.warning("No run finished.")
    st.stop()
try:
    episodes = analysis.episode_table(done, root=root)
except ValueError as err:
    st.error(common.one_line(err))
    st.stop()
params = [analysis.param_column(p) for p in result["grid"]]
st.subheader("Outcomes (final evaluation of each run and seed; per episode in GTB)")
st.dataframe(episodes, hide_index=True)
st.download_button("CSV: outcomes per episode", common.csv_bytes(episodes),
                   file_name="experiment-episodes.csv", mime="text/csv", key="x_csv")
numeric = [c for c in episodes.select_dtypes("number").columns
           if c not in ("seed", "episode", "episodes", "iteration", "epsilon", *params)]
if not numeric:
    st.stop()
first = next((c for c in ("welfare_sum", "collective") if c in numeric), numeric[0])
outcome = st.selectbox("Outcome", numeric, index=numeric.index(first), key="x_outcome")

# ------------------------------------------------- per combination, across seeds (CIs)
data = sweep.by_combination(table, episodes, result["grid"])
combos = list(dict.fromkeys(data["combination"]))
st.subheader("Per combination: mean over seeds [95% confidence interval across seeds]")
st.caption("Seeds are the unit of replication: each seed's episodes are averaged first, "
           "then the mean and its Student-t interval are taken across seeds (none with one "
           "seed).")
shown = list(dict.fromkeys([outcome, *[c for c in REPORTED if c in numeric]]))
conf = uncertainty.confidence(data, shown, "combination")
st.dataframe(uncertainty.readable(conf, "combination"), hide_index=True)
st.altair_chart(charts.seed_bars(data, [outcome], by="combination",
                                 width=max(240, 90 * len(combos))))
if len(combos) > 1:
    baseline = st.selectbox("Baseline combination for the paired differences", combos,
                            key="x_baseline")
    diff = uncertainty.paired_differences(data, shown, baseline, "combination")
    st.markdown(f"**Difference to {baseline}, seed by seed** (mean and 95% CI)")
    st.caption("Every combination trains on the same seeds, so each seed's outcome is "
               "compared with the baseline's on that seed (a paired comparison).")
    st.altair_chart(charts.ci_points(diff, "difference", by="combination", zero=True))
    st.dataframe(uncertainty.readable(diff, "combination", "difference"), hide_index=True)
else:
    baseline = combos[0]
try:
    page = report.experiment_report(table, episodes, grid_of,
                                    result["scenario"], result["seeds"], result["iterations"],
                                    shown, baseline, table.attrs.get("sweep"))
    st.download_button("HTML report: the grid, results with confidence intervals, paired "
                       "differences, plots, versions and the command that reruns it",
                       page, file_name=f"experiment-{result['scenario']}-report.html",
                       mime="text/html", key="x_report")
except ValueError as err:
    st.error(common.one_line(err))

st.subheader("Regression")
formula = f"{outcome} ~ " + " + ".join(params)
st.code(formula, language=None)
if st.button("Regress the outcome on the parameters", key="x_regress"):
    try:
        fit = common.regress(analysis, formula, episodes, "seed", {}, "auto")
        st.code(fit.summary_text(), language=None)
        for w in fit.warnings:
            st.warning(w)
        st.dataframe(fit.table, hide_index=True)
    except ValueError as err:
        st.error(common.one_line(err))
