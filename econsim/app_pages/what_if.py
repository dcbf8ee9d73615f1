"""What-if: play random, idle or trained agents under one or more tax mechanisms in the
Mesa model (``econsim.whatif``), with a progress bar and a cancel button; compare the
mechanisms side by side on the same seeds."""

import streamlit as st

from econsim import scenario as scenario_mod
from econsim import store, uncertainty, whatif
from econsim.app_pages import charts, common
from econsim.errors import ScenarioError
from learners.brains import SCRIPTED_WORKERS
from mechanisms import registry

ss = st.session_state
BUILDER = common.BUILDER_OPTION
DEFAULTS = {"w_scenario": whatif.DEFAULT_SCENARIO, "w_brains": "scripted",
            "w_mechanisms": ["us_federal", "flat"], "w_flat_rates": "0.3", "w_episodes": 1,
            "w_seeds": "0-3", "w_aversion": 1.0, "w_epsilon": 1.0}
MAX_CUSTOM = 4  # custom schedules side by side
BRAIN_LABELS = {"scripted": "Scripted workers (rule-based; random where a game has none)",
                "random": "Random actions (a null model: no economic behaviour)",
                "noop": "Idle (always no-op)"}

common.keep(DEFAULTS)
if "w_brackets_data" not in ss:
    ss.w_brackets_data = common.brackets_frame()

st.title("What-if")
st.caption("Play agents in the Mesa model under each mechanism, on the same seeds, and "
           "compare what happens. Scripted workers gather, build, trade and weigh income "
           "against labour (taxes change what they do); random or idle agents are null "
           "models; trained agents (from a stored run) show learned behaviour, held fixed "
           "under each mechanism.")

# ------------------------------------------------------------------------------ inputs
root = common.runs_root()
brains = ["scripted", "random", "noop"] + [f"trained:{r}" for r in common.trained_runs(root)]
if ss.w_brains not in brains:
    ss.w_brains = "scripted"
scenarios = ([BUILDER] if ss.get(common.BUILDER_KEY) else []) + scenario_mod.names()
if ss.w_scenario not in scenarios:
    ss.w_scenario = DEFAULTS["w_scenario"]



def _on_brains() -> None:
    """Trained agents: play the run's own seeds (a seed picks the trained replica) and show
    the run's own scenario."""
    if ss.w_brains.startswith("trained:"):
        runs = common.list_runs(root).set_index("run_id")
        run = runs.loc[ss.w_brains.removeprefix("trained:")]
        ss.w_seeds = str(run["seeds"])
        if run["scenario"] in scenarios:
            ss.w_scenario = run["scenario"]


c1, c2 = st.columns(2)
brain = c2.selectbox("Agents", brains, key="w_brains", on_change=_on_brains,
                     format_func=lambda b: BRAIN_LABELS.get(b, b.replace("trained:",
                                                                         "Trained: ")))
trained = brain.startswith("trained:")
if trained:  # the run's own scenario, whatever its name (shipped, builder, file)
    runs_table = common.list_runs(root).set_index("run_id")
    own = str(runs_table.loc[brain.removeprefix("trained:"), "scenario"])
    c1.text_input("Scenario (game and its settings)", own, disabled=True,
                  key=f"w_own_scenario_{own}", help="trained agents play their run's own "
                  "scenario")
    name = own
else:
    name = c1.selectbox("Scenario (game and its settings)", scenarios, key="w_scenario")
adapt = 0
if trained:
    c1, c2 = st.columns(2)
    mode = c1.radio("Trained agents under another mechanism", ["fixed", "relearn"],
                    key="w_adapt_mode", horizontal=True,
                    format_func={"fixed": "behaviour held fixed",
                                 "relearn": "agents re-learn under each mechanism"}.get,
                    help="held fixed: the agents act as they learned under the run's own "
                         "policy; re-learn: they first go on training (warm-started from the "
                         "run, all seeds at once) under each mechanism")
    if mode == "relearn":
        adapt = int(c2.number_input("Training iterations per mechanism", 1, 10_000, 20,
                                    key="w_adapt"))


def _scenario():
    """The chosen scenario (None: the trained run's own)."""
    if trained:
        return None
    if name == BUILDER:
        return scenario_mod.from_dict(ss[common.BUILDER_KEY], source="builder scenario")
    return scenario_mod.load(name)


try:
    sc = _scenario()
    if sc is None:
        sc = scenario_mod.load(store.inside(store.run_dir(brain.removeprefix("trained:"),
                                                          root), "scenario.toml"))
    taxes = common.has_taxes(sc.env_name)
except (ScenarioError, ValueError) as err:
    st.error(common.one_line(err))
    st.stop()

if brain == "scripted" and sc.env_name in SCRIPTED_WORKERS:
    st.number_input("Labour aversion of the scripted workers", 0.0, whatif.MAX_AVERSION,
                    step=0.1, key="w_aversion", format="%.2f",
                    help="how heavily a worker weighs its labour against the coin it "
                         "earns: 1 = as the game's utility does; larger values make the "
                         "workers work less (each decides on its income after tax)")
options = ["scenario", *registry.names()] if taxes else ["scenario"]
ss.w_mechanisms = [m for m in ss.w_mechanisms if m in options] or ["scenario"]
mechs = st.multiselect("Mechanisms to compare", options, key="w_mechanisms",
                       format_func=common.label,
                       help="'As in the scenario' is the scenario's own mechanism, or the "
                            "learned planner of a trained MetaGrad / dual-RL run")
if "flat" in mechs:
    st.text_input("Flat tax rates", key="w_flat_rates",
                  help="one or more rates in [0, 1], comma separated (e.g. 0.1, 0.3, 0.5): "
                       "each is one mechanism, side by side")
custom: list = []  # one edited bracket table per custom schedule
if "custom" in mechs:
    n_custom = int(st.number_input("Custom schedules", 1, MAX_CUSTOM, 1, key="w_n_custom",
                                   help="each is one mechanism, side by side"))
    st.caption("Custom brackets: lower edge (coin) and marginal rate above it.")
    cols = st.columns(n_custom)
    for i, col in enumerate(cols):
        data_key = "w_brackets_data" if i == 0 else f"w_brackets_data_{i}"
        if data_key not in ss:
            ss[data_key] = common.brackets_frame()
        with col:
            custom.append(st.data_editor(ss[data_key], key="w_brackets" if i == 0
                                         else f"w_brackets_{i}", num_rows="dynamic",
                                         hide_index=True))
c1, c2, c3 = st.columns(3)
c1.number_input("Episodes per seed and mechanism", min_value=1, max_value=200, step=1,
                key="w_episodes")
c2.text_input("Seeds", key="w_seeds", help="e.g. 0-3 or 0,5; every mechanism plays these")
if taxes:
    c3.number_input("Inequality aversion ε (Atkinson)", 0.0, whatif.MAX_EPSILON, step=0.5,
                    key="w_epsilon", format="%.2f",
                    help="of the Atkinson index and the equally distributed equivalent "
                         "income: 0 = no aversion (the mean), 1 = the usual choice (the "
                         "geometric mean), larger = more weight on the poorest")
common.remember(DEFAULTS)


def _flat_rates(text: str) -> list[float]:
    """``"0.1, 0.3"`` -> [0.1, 0.3] (one-line errors; the mechanism checks the range)."""
    rates = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        try:
            rates.append(float(part))
        except ValueError:
            raise ValueError(f"flat tax rates: {part.strip()!r} is not a number (give rates "
                             "in [0, 1], comma separated)") from None
    if not rates:
        raise ValueError("flat tax rates: give at least one rate in [0, 1]")
    if len(set(rates)) != len(rates):
        raise ValueError("flat tax rates: each rate at most once")
    return rates


def _specs() -> list:
    out = []
    for m in mechs:
        if m == "scenario":
            out.append(None)
        elif m == "flat":
            out += [{"name": "flat", "rate": r} for r in _flat_rates(ss.w_flat_rates)]
        elif m == "custom":
            out += [common.brackets_spec(b) for b in custom]
        else:
            out.append(m)
    return out


def _on_run() -> None:
    ss.w_cancel_flag = False


def _on_cancel() -> None:
    ss.w_cancel_flag = True


c1, c2, _ = st.columns([1, 1, 4])
run = c1.button("Run what-if", key="w_run", type="primary", on_click=_on_run)
c2.button("Cancel", key="w_cancel", on_click=_on_cancel,
          help="stops between two steps; the finished episodes are kept")

if run:
    try:
        if not mechs:
            raise ValueError("mechanisms: pick at least one")
        ss.w_job = whatif.WhatIfJob.create(  # scripted: the game's workers, else random
            _scenario(), _specs(), int(ss.w_episodes), common.parse_seeds(ss.w_seeds),
            None if brain == "scripted" else brain, root, adapt,
            float(ss.w_aversion) if brain == "scripted" and sc.env_name in SCRIPTED_WORKERS
            else 1.0, float(ss.w_epsilon) if taxes else 1.0)
    except (ScenarioError, ValueError) as err:
        st.error(common.one_line(err))

# ------------------------------------------------------------------------------ play
job = ss.get("w_job")
if job is not None and not job.done:
    # a job survives reruns (e.g. the cancel click interrupts the script): resume or stop it
    if ss.get("w_cancel_flag"):
        job.cancel()
    else:
        bar = st.progress(job.fraction, text="Starting …")
        try:
            job.run(progress=lambda f, s: bar.progress(f, text=f"Playing {s}"),
                    should_stop=lambda: bool(ss.get("w_cancel_flag")))
        except Exception as err:  # a brain or model failure: one line, no traceback
            ss.pop("w_job", None)
            st.error(f"What-if failed: {common.one_line(err)}")
            st.stop()
        bar.empty()
if job is not None and job.done:
    ss[common.RESULT_KEY] = job.result()
    ss.pop("w_job", None)

# ------------------------------------------------------------------------------ results
WELFARE_FUNCTIONS = ("utilitarian", "atkinson", "atkinson_income", "nash", "rawlsian")
res = ss.get(common.RESULT_KEY)
if res is None:
    st.info("Choose mechanisms and press **Run what-if** (the defaults compare US-federal "
            "and a 30% flat tax in the GTB economy with scripted workers on seeds 0-3, in about "
            "a second).")
    st.stop()

st.divider()
planned = len(res.mechanisms) * len(res.seeds) * res.episodes_requested
if res.cancelled:
    st.warning(f"Cancelled: {res.episodes_done} of {planned} episodes finished; the tables "
               "below hold those.")
st.subheader("Results")
st.caption(f"{res.scenario} ({res.env}), agents: {res.agents_text()}, mechanisms: "
           f"{', '.join(res.mechanisms)}, seeds {res.seeds}, {res.episodes_requested} "
           f"episode(s) each; {res.episodes_done} episodes in {res.wall_s:.1f} s.")
if res.episodes.empty:
    st.info("No episode finished.")
    st.stop()

economy = "welfare_sum" in res.episodes
st.markdown("**Per episode: mean over seeds [95% confidence interval across seeds]**")
st.caption("Seeds are the unit of replication: each seed's episodes are averaged first "
           "(episodes of one seed share its agents and world, so they are not independent); "
           "the interval is Student's t over the seeds. With one seed there is none.")
st.dataframe(uncertainty.readable(res.confidence(res.outcomes())), hide_index=True)
metrics = charts.EPISODE_METRICS if economy else ("collective_return",)
st.altair_chart(charts.episode_bars(res.episodes, metrics))
main = [c for c in (*metrics, *WELFARE_FUNCTIONS) if c in res.episodes]
st.markdown("**Welfare measures: mean and 95% confidence interval across seeds**" + (
    f" (Atkinson at inequality aversion ε = {res.atkinson_epsilon:g})" if economy else ""))
conf = res.confidence(main)
st.altair_chart(charts.ci_points(conf))
if len(res.mechanisms) > 1:
    baseline = st.selectbox("Baseline mechanism for the paired differences", res.mechanisms,
                            key="w_baseline")
    diff = res.differences(baseline, main)
    st.markdown(f"**Difference to {baseline}, seed by seed** (mean and 95% CI)")
    st.caption("Every mechanism plays the same seeds, so each seed's outcome is compared "
               "with the baseline's on that seed (a paired comparison); an interval that "
               "does not cross 0 is a difference the seeds agree on.")
    st.altair_chart(charts.ci_points(diff, "difference", zero=True))
    st.dataframe(uncertainty.readable(diff, value="difference"), hide_index=True)
if economy:
    st.markdown("**Over the episode** (mean over seeds and episodes)")
    st.altair_chart(charts.metrics_over_time(res.world))
if not res.schedules.empty:
    st.markdown("**Tax schedules** (mean rate in force per bracket)")
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.schedule_bars(res.schedules))
    c2.altair_chart(charts.tax_curve(res.tax_curve()))

c1, c2, c3 = st.columns(3)
c1.page_link("econsim/app_pages/plots.py", label="More plots →")
c2.page_link("econsim/app_pages/exports.py", label="Download the tables →")
c3.page_link("econsim/app_pages/regression.py", label="Regress welfare on mechanism →")
