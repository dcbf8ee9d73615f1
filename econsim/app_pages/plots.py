"""Plots of the last what-if or of a stored run: welfare over time, tax schedules and
T(z), income before/after redistribution by skill, economic activity, the GTB map with
the agents, the agents' paths in a plane (navigation), replays of games that draw
themselves, training curves, and the skills of a trained HSD team."""

import numpy as np
import pandas as pd
import streamlit as st

from econsim import analysis, distribution, model, skills, store, whatif
from econsim import scenario as scenario_mod
from econsim.app_pages import charts, common
from econsim.core.capabilities import TaxPeriods, has
from econsim.errors import ScenarioError

ss = st.session_state
SOURCES = ("Last what-if", "A stored run")
TZ = {"tax": "tax due T(z)", "after_tax": "income after tax", "average_rate": "average rate",
      "marginal_rate": "marginal rate"}

common.keep({"p_source": SOURCES[0], "p_tz": "tax"})
st.title("Plots")
source = st.radio("Data", SOURCES, key="p_source", horizontal=True)
common.remember(["p_source"])


def _schedule(schedules: pd.DataFrame, key: str) -> None:
    st.subheader("Tax schedule")
    if schedules.empty:
        st.info("No tax schedule: this game has no taxes.")
        return
    c1, c2 = st.columns(2)
    c1.caption("Marginal rate per bracket (mean of the rates in force)")
    c1.altair_chart(charts.schedule_bars(schedules))
    y = c2.selectbox("Curve", list(TZ), format_func=TZ.get, key=key)
    c2.altair_chart(charts.tax_curve(whatif.tax_curve(schedules), y=y))


def _income(periods: pd.DataFrame, by: str) -> None:
    st.subheader("Income before and after redistribution, by skill")
    if periods.empty:
        st.info("No per-period table: this game has no incomes.")
        return
    st.caption("One pair of points per agent and episode: income before tax (red) and after "
               "tax and the equal transfer (green), against the agent's skill.")
    st.altair_chart(charts.income_by_skill(periods, by=by))
    st.subheader("Income distributions before and after redistribution")
    st.caption("Agent income per episode: before tax (red) and after tax and the equal "
               "transfer (green), overlaid.")
    st.altair_chart(charts.income_distribution(distribution.incomes(periods, by), by))
    st.subheader("Lorenz curves")
    st.caption("Share of all income held by the poorest share of agent-episodes, before tax "
               "(dashed) and after tax and the equal transfer (solid); the further below the "
               "grey diagonal, the more unequal. Hover for the Gini coefficient.")
    st.altair_chart(charts.lorenz(distribution.lorenz(periods, by), by))
    st.subheader("Tax incidence")
    group = st.radio("Group agents by", ["decile", "skill"], horizontal=True,
                     key=f"p_inc_{by}", format_func={"decile": "pre-tax income decile",
                                                     "skill": "skill (coin per house)"}.get)
    st.caption("Per group: tax paid over pre-tax income (average rate), tax minus the "
               "transfer received over pre-tax income (net rate; below 0: a net recipient), "
               "and the mean marginal rate faced. Deciles: 1 = the poorest tenth of "
               "agent-episodes.")
    title = "pre-tax income decile" if group == "decile" else "skill (coin per house)"
    st.altair_chart(charts.incidence(distribution.incidence(periods, by, group), by, title))


def _whatif(res: whatif.WhatIfResult) -> None:
    economy = "welfare" in res.world
    st.caption(f"What-if of {res.scenario}: {', '.join(res.mechanisms)}; agents: "
               f"{res.agents_text()}; seeds {res.seeds}.")
    if economy:
        st.subheader("Welfare, productivity and equality over time")
        st.caption("Welfare = productivity x equality (coin x share); productivity = total "
                   "coin; equality = 1 - Gini of coin. Mean over seeds and episodes at each "
                   "step.")
        st.altair_chart(charts.metrics_over_time(res.world))
        _schedule(res.schedules, "p_tz_w")
        st.subheader("The equality-productivity trade-off")
        st.caption("One point per mechanism and seed (mean over its episodes); the black "
                   "line joins the points no other point beats on both; dashed grey curves "
                   "have equal welfare (productivity x equality, labelled).")
        points = distribution.tradeoff(res.episodes)
        st.altair_chart(charts.tradeoff(points, distribution.iso_welfare_of(points)))
        _income(res.periods, "mechanism")
    else:  # no coin, no taxes: the team's return
        st.subheader("Collective return over time")
        st.caption("The agents' rewards summed over agents and over the episode so far; mean "
                   "over seeds and episodes at each step.")
        st.altair_chart(charts.metrics_over_time(res.world, metrics=("collective_return",)))
        if not res.schedules.empty:  # taxes without coin: not a shipped game
            _schedule(res.schedules, "p_tz_w")
        if not res.periods.empty:
            _income(res.periods, "mechanism")
    if economy:
        st.subheader("Economic activity")
        st.altair_chart(charts.activity_bars(res.episodes))
        st.altair_chart(charts.activity_over_time(res.steps))
    if res.terrain is not None:
        _map(res)
    if res.plane is not None and not res.plane.empty:
        _paths(res)
    if res.frames:
        _replay(res)
    st.subheader("Training curves")
    st.info("Training curves belong to stored runs: choose 'A stored run' above.")


def _map(res: whatif.WhatIfResult) -> None:
    st.subheader("The map")
    steps = res.steps
    c1, c2, c3 = st.columns(3)
    mech = c1.selectbox("Mechanism", res.mechanisms, key="p_map_mech")
    seed = c2.selectbox("Seed", sorted(steps["seed"].unique()), key="p_map_seed")
    these = steps[(steps["mechanism"] == mech) & (steps["seed"] == seed)]
    if these.empty:
        st.info("No finished episode for this mechanism and seed.")
        return
    ep = c3.selectbox("Episode", sorted(these["episode"].unique()), key="p_map_episode")
    these = these[these["episode"] == ep]
    last = int(these["step"].max())
    t = st.slider("Step", 1, last, last, key="p_map_step")
    agents = these[these["step"] == t]
    built = (these[(these["step"] <= t) & (these["built"] > 0)] if "built" in these
             else these.iloc[:0])
    st.caption("Water (blue), wood sources (green), stone sources (grey), houses (brown, "
               "on the builder's cell); the numbered circles are the agents at this step.")
    st.altair_chart(charts.world_map(res.terrain, agents, built[["row", "col", "agent"]]),
                    width="content")


def _step_slider(key: str, low: int, last: int, help: str | None = None) -> int:
    """A step slider from ``low`` to ``last`` (default ``last``); a value left by a longer
    episode is brought into range first."""
    if key in ss and not low <= ss[key] <= last:
        ss[key] = last
    return st.slider("Step", low, last, last, key=key, help=help)


def _paths(res: whatif.WhatIfResult) -> None:
    """The agents' paths in the plane over one episode (games with a ``Plane``)."""
    st.subheader("Paths in the plane")
    plane, steps = res.plane, res.steps
    c1, c2, c3 = st.columns(3)
    mechs = [m for m in res.mechanisms if m in set(plane["mechanism"])]
    mech = c1.selectbox("Mechanism", mechs, key="p_path_mech")
    plane = plane[plane["mechanism"] == mech]
    seed = c2.selectbox("Seed", sorted(plane["seed"].unique()), key="p_path_seed")
    plane = plane[plane["seed"] == seed]
    ep = c3.selectbox("Episode", sorted(plane["episode"].unique()), key="p_path_episode")
    plane = plane[plane["episode"] == ep]
    these = steps[(steps["mechanism"] == mech) & (steps["seed"] == seed)
                  & (steps["episode"] == ep)]
    last = int(these["step"].max())
    t = _step_slider("p_path_step", 0, last, help="0: where the agents started")
    st.caption("Each agent's path from its start (hollow circle) up to this step, its "
               "position now (numbered disc) and its goal landmark (hollow square, same "
               "colour), in the plane's coordinates.")
    st.altair_chart(charts.plane_paths(these, plane, res.extent, t), width="content")


def _replay(res: whatif.WhatIfResult) -> None:
    """Step-by-step picture of a game that draws itself (e.g. Cleanup, Checkers)."""
    st.subheader("Replay")
    keys = sorted(res.frames)
    c1, c2, c3 = st.columns(3)
    mech = c1.selectbox("Mechanism", sorted({k[0] for k in keys}), key="p_rep_mech")
    seed = c2.selectbox("Seed", sorted({k[1] for k in keys if k[0] == mech}), key="p_rep_seed")
    ep = c3.selectbox("Episode", sorted({k[2] for k in keys if k[:2] == (mech, seed)}),
                      key="p_rep_episode")
    frames = res.frames[(mech, seed, ep)]
    t = _step_slider("p_rep_step", 1, len(frames)) if len(frames) > 1 else 1
    cell = max(1, min(32, 384 // max(frames[0].shape[:2])))  # a grid cell: up to 32 pixels
    big = np.kron(frames[t - 1], np.ones((cell, cell, 1), np.uint8))  # crisp cells
    st.image(big, caption=f"step {t} of {len(frames)}")
    steps = res.steps
    if {"mechanism", "seed", "episode", "step"} <= set(steps.columns):
        now = steps[(steps["mechanism"] == mech) & (steps["seed"] == seed)
                    & (steps["episode"] == ep) & (steps["step"] == t)]
        cols = [c for c in ("agent", "action", "action_name", "reward", "incentive_received",
                            "incentive_given", "apples", "waste_cleaned", "row", "col",
                            "red", "yellow", "x", "y", "distance", "reached", "collisions")
                if c in now]
        if not now.empty:
            st.dataframe(now[cols], hide_index=True)


HSD = ("hsd", "hsd-scripted", "hsd-ext")


def _skills(run_id: str, root) -> None:
    """Diss Fig. 4.2 for a trained HSD team: test episodes played on demand
    (``econsim.skills``), charts of one seed's policy, the tidy table to download."""
    from econsim.envs.sts2 import ACTION_NAMES, EVENTS

    st.subheader("Skills of the trained team (Diss Fig. 4.2)")
    st.caption("Plays greedy test episodes with the run's last checkpoint (every seed) and "
               "records which latent skill each agent executes at every step.")
    c1, c2 = st.columns(2)
    episodes = int(c1.number_input("Test episodes per seed", 5, 500, 50, step=5,
                                   key="p_sk_eps"))
    if c2.button("Analyse skills", key="p_sk_go"):
        try:
            with st.spinner("Playing test episodes..."):
                ss["p_skills"] = (run_id, skills.trace(model.load_trainer(run_id, root),
                                                       episodes))
        except (ScenarioError, ValueError) as err:
            st.error(common.one_line(err))
            return
    got = ss.get("p_skills")
    if got is None or got[0] != run_id:
        return
    tr = got[1]
    seed = st.selectbox("Seed (one policy)", sorted(tr["seed"].unique()), key="p_sk_seed")
    one = tr[tr["seed"] == seed]
    n = one["episode"].nunique()
    events = skills.events_by_skill(one)
    table = skills.summary(events, ["skill", "event"], "count")
    st.markdown(f"**(a) Game events per skill** (mean per episode over {n} test episodes, "
                "bars: standard error; summed over the agents executing the skill)")
    st.altair_chart(charts.skill_bars(table, "event", "count per episode", list(EVENTS)))
    actions = skills.actions_by_skill(one)
    used = actions[actions.groupby(["episode", "skill"])["count"].transform("sum") > 0]
    st.markdown("**(c) Primitive actions per skill** (share of the skill's steps)")
    st.altair_chart(charts.skill_bars(skills.summary(used, ["skill", "action"], "share"),
                                      "action", "share of steps", list(ACTION_NAMES)))
    left, right = st.columns(2)
    with left:
        st.markdown("**(b) PCA of the skills' event counts** (standardised per event)")
        st.altair_chart(charts.skill_pca(*skills.pca(events, "event", scale=True)))
    with right:
        st.markdown("**(e) Skill usage** (high-level choices per episode)")
        st.altair_chart(charts.skill_usage(skills.summary(skills.usage(one),
                                                          ["skill", "team_puck"], "choices")))
    st.markdown("**(g) Where each skill is used** (steps per rink cell; the team attacks up)")
    st.altair_chart(charts.skill_heatmap(skills.heatmap(one)))
    st.markdown("**Do the skills play differently?** Events per 100 steps spent in each skill, "
                "pair by pair; *clearly more*: the 95% bootstrap interval over test episodes "
                "(simultaneous over all pairs and events) excludes no difference. Skills used "
                "in fewer than 10 episodes or 100 steps are left out.")
    if n < 100:
        st.caption(f"With {n} test episodes this check calls skills that play alike "
                   "different more often than 1 in 20 (simulated by "
                   "benchmarks/skill_calibration.py: 11% of seeds at 50 episodes, 21% at "
                   "30); 100 or more keep it near 5%.")
    pairs = skills.distinct_pairs(skills.contrasts(one)).drop(columns="seed").rename(
        columns={"a_more": "skill_a clearly more", "b_more": "skill_b clearly more",
                 "opposite": "different kinds of play"})
    if pairs.empty:
        st.info("No two skills were each used in at least 10 of these episodes and 100 steps: "
                "play more test episodes to compare them.")
    else:
        st.dataframe(pairs, hide_index=True)
    st.download_button("CSV: events by skill (every seed, tidy)", common.csv_bytes(
        skills.summary(skills.events_by_skill(tr), ["skill", "event"], "count")),
        file_name=f"{run_id}-skill-events.csv", key="p_sk_csv")


def _stored(run_id: str, root) -> None:
    try:
        episodes = analysis.load(run_id, "episodes", root)
    except ScenarioError as err:
        st.error(common.one_line(err))
        return
    try:
        periods = analysis.load(run_id, "periods", root)
    except ScenarioError:
        periods = pd.DataFrame()
    if not periods.empty:
        periods = analysis.select_evaluations(periods, "final")
    st.subheader("Training curves")
    numeric = [c for c in episodes.select_dtypes("number").columns
               if c not in ("seed", "iteration", "episodes", "length", "epsilon", "stage")]
    first = "welfare_sum" if "welfare_sum" in numeric else "collective"
    metric = st.selectbox("Metric", numeric, index=numeric.index(first), key="p_metric")
    st.caption("One line per seed; solid: training windows, dashed: evaluations.")
    st.altair_chart(charts.training_curves(episodes, metric))
    if charts.stage1_end(episodes) is not None:
        st.caption(f"Shaded, up to iteration {charts.stage1_end(episodes)}: the curriculum's "
                   "stage 1, where one agent learns alone in the single-agent induced game; "
                   "its returns are that agent's, not the team's (stage 2 from the rule on).")
    try:
        sc = scenario_mod.load(store.inside(store.run_dir(run_id, root), "scenario.toml"))
    except ScenarioError:  # e.g. a run of an older econsim: its tables still show
        sc = None
    if sc is not None and sc.algorithm_name in HSD:
        _skills(run_id, root)
    figures = common.reproduction_figures(sc.env_name, sc.env_params) if sc else []
    if figures:
        st.markdown("**The benchmarks' curves for this game** (every method, from the "
                    "repository's docs/)")
    for figure in figures:
        st.image(figure.read_bytes(), caption=common.FIGURE_CAPTION)
    try:
        agents = analysis.load(run_id, "agents", root)
    except ScenarioError:
        agents = pd.DataFrame()
    if {"received", "given"} <= set(agents.columns) and agents["given"].abs().sum() > 0:
        st.subheader("Incentives over training")
        st.caption("Incentives each agent received per episode (mean over seeds), "
                   "training windows and evaluations.")
        st.altair_chart(charts.incentive_curves(agents))
    if periods.empty:
        return
    st.caption("Below: the last evaluation of the run (per tax period, all seeds).")
    st.subheader("Welfare, productivity and equality over the episode")
    st.altair_chart(charts.metrics_over_time(periods, x="period", by="scenario"))
    game = sc.make_game() if sc is not None else None
    cutoffs = game.cutoffs if game is not None and has(game, TaxPeriods) else None
    rate_cols = [f"rate_{j}" for j in range(len(cutoffs))] if cutoffs is not None else []
    if rate_cols and set(rate_cols) <= set(periods.columns):
        mean = periods[rate_cols].mean()
        upper = list(cutoffs[1:]) + [float("inf")]
        schedules = pd.DataFrame({"mechanism": sc.name, "lower": cutoffs, "upper": upper,
                                  "rate": mean.to_numpy()})
        _schedule(schedules, "p_tz_r")
    _income(periods, "scenario")
    st.subheader("Economic activity")
    per_episode = periods.groupby(["scenario", "seed", "episode"])[
        ["wood_gathered", "stone_gathered", "houses_built"]].sum().reset_index()
    st.altair_chart(charts.activity_bars(per_episode, by="scenario"))
    st.info("The map needs a replay: play this run's agents in a what-if "
            "(agents: Trained) to see them move.")


if source == SOURCES[0]:
    res = ss.get(common.RESULT_KEY)
    if res is None or res.episodes.empty:
        st.info("No what-if yet: run one first (the defaults take about a second).")
        st.page_link("econsim/app_pages/what_if.py", label="Go to What-if →")
    else:
        _whatif(res)
else:
    root = common.runs_root()
    runs = common.list_runs(root)
    with_data = set(common.runs_with(root))  # not a run killed before its first row
    ids = [r for r in runs["run_id"].tolist()[::-1] if r in with_data]  # newest first
    if not ids:
        st.info(f"No runs with data in `{root}` yet: train one from the Scenario builder "
                "or with `econsim run`.")
    else:
        run_id = st.selectbox("Run", ids, key="p_run")
        _stored(run_id, root)
