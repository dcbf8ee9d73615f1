"""Altair charts of the workbench, built from econsim's tidy tables (no Streamlit here).

Each function takes a DataFrame as econsim writes it (``WhatIfResult`` tables, a run's
``periods`` / ``episodes`` tables) and returns an ``alt.Chart``; data is aggregated in pandas
first so the charts stay small in the browser.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

METRICS = ("welfare", "productivity", "equality")  # per step or period (instantaneous)
EPISODE_METRICS = ("welfare_sum", "welfare_final", "productivity", "equality")  # per episode
ACTIVITY = {"wood_gathered": "wood gathered", "stone_gathered": "stone gathered",
            "houses_built": "houses built",
            "trade_volume": "units traded"}
COIN_AXIS = alt.Axis(format=",.0f")  # coin: 1,200, not 1.2e+3
RATE_AXIS = alt.Axis(format=".0%")
TERRAIN_COLORS = {"empty": "#f3ecd9", "water": "#6aa9e0", "wood source": "#4f9a4a",
                  "stone source": "#9a9a9a", "house": "#9b5a2a"}


def _color(df: pd.DataFrame, by: str = "mechanism") -> alt.Color:
    """Colour by ``by`` in the order of appearance; the legend below the chart, where wide
    faceted charts cannot push it out of the page."""
    return alt.Color(f"{by}:N", title=by, sort=list(dict.fromkeys(df[by])),
                     scale=alt.Scale(scheme="tableau10"),
                     legend=alt.Legend(orient="bottom", labelLimit=400))


def metrics_over_time(df: pd.DataFrame, x: str = "step",
                      metrics: tuple[str, ...] = METRICS, by: str = "mechanism") -> alt.Chart:
    """Mean of each metric over seeds and episodes against ``x`` (step or period), one panel
    per metric, one line per ``by`` value."""
    metrics = tuple(m for m in metrics if m in df)
    mean = df.groupby([by, x], sort=False)[list(metrics)].mean().reset_index()
    long = mean.melt(id_vars=[by, x], value_vars=list(metrics), var_name="metric")
    base = alt.Chart(long).mark_line().encode(
        x=alt.X(f"{x}:Q", title=x), y=alt.Y("value:Q", title=None),
        color=_color(long, by), tooltip=[by, x, "metric", alt.Tooltip("value:Q", format=".3f")])
    return base.properties(height=160, width=520).facet(
        row=alt.Row("metric:N", sort=list(metrics), title=None)
    ).resolve_scale(y="independent")


def seed_bars(episodes: pd.DataFrame, metrics: tuple[str, ...] | list[str],
              by: str = "mechanism", names: dict[str, str] | None = None,
              y_title: str | None = None, width: int = 180) -> alt.Chart:
    """Per ``by`` value and metric: a bar at the mean over seeds of each seed's mean, its 95%
    confidence interval across seeds (black rule, ``econsim.uncertainty``; none with one
    seed) and a dot per seed; one panel per metric (``names``: panel titles)."""
    from econsim import uncertainty  # scipy: not on the start page

    metrics = [m for m in metrics if m in episodes]
    per = uncertainty.seed_means(episodes, metrics, by)
    conf = uncertainty.confidence(episodes, metrics, by).rename(columns={"outcome": "metric"})
    dots = per.melt(id_vars=[by, "seed"], value_vars=metrics, var_name="metric")
    names = names or {}
    for df in (conf, dots):
        df["metric"] = df["metric"].map(lambda m: names.get(m, m))
    conf = conf[np.isfinite(conf["mean"])].assign(kind="mean")
    df = pd.concat([conf, dots.assign(kind="seed")], ignore_index=True)
    order = list(dict.fromkeys(episodes[by]))
    x = alt.X(f"{by}:N", title=None, sort=order)
    is_mean, is_seed = alt.datum.kind == "mean", alt.datum.kind == "seed"
    bars = alt.Chart().transform_filter(is_mean).mark_bar().encode(
        x=x, y=alt.Y("mean:Q", title=y_title), color=_color(df, by),
        tooltip=[by, "metric", alt.Tooltip("mean:Q", format=",.3f", title="mean over seeds"),
                 alt.Tooltip("ci_low:Q", format=",.3f", title="95% CI low"),
                 alt.Tooltip("ci_high:Q", format=",.3f", title="95% CI high"), "seeds:Q"])
    rule = alt.Chart().transform_filter(is_mean).mark_rule(color="black", strokeWidth=2
                                                           ).encode(x=x, y="ci_low:Q",
                                                                    y2="ci_high:Q")
    seeds = alt.Chart().transform_filter(is_seed).mark_circle(
        color="#444", size=22, opacity=0.7).encode(
        x=x, y="value:Q", tooltip=[by, "seed:Q", alt.Tooltip("value:Q", format=",.3f",
                                                               title="seed mean")])
    sort = [names.get(m, m) for m in metrics]
    return alt.layer(bars, rule, seeds, data=df).properties(width=width, height=180).facet(
        column=alt.Column("metric:N", sort=sort, title=None)).resolve_scale(y="independent")


def episode_bars(episodes: pd.DataFrame, metrics: tuple[str, ...] = EPISODE_METRICS,
                 by: str = "mechanism") -> alt.Chart:
    """Per-episode outcomes: mean over seeds with the 95% CI across seeds and a dot per seed
    (:func:`seed_bars`), one panel per metric."""
    return seed_bars(episodes, metrics, by)


def coin_text(x: float) -> str:
    """Coin as people read it: ``1,250``, ``84.2``, ``10`` (never ``1.25e+03``)."""
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.1f}"


def _bracket_label(lower: float, upper: float) -> str:
    if not np.isfinite(upper):
        return f"{coin_text(lower)}+"
    return f"{coin_text(lower)}-{coin_text(upper)}"


def schedule_bars(schedules: pd.DataFrame) -> alt.Chart:
    """Marginal tax rate per bracket (bracket edges in coin), grouped by mechanism."""
    df = schedules.copy()
    if "mechanism" not in df:
        df["mechanism"] = "schedule"
    df["bracket (coin)"] = [_bracket_label(lo, up) for lo, up in zip(df["lower"], df["upper"],
                                                                       strict=True)]
    order = list(dict.fromkeys(df.sort_values("lower")["bracket (coin)"]))
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("bracket (coin):N", sort=order), xOffset="mechanism:N",
        y=alt.Y("rate:Q", title="marginal rate", axis=RATE_AXIS),
        color=_color(df), tooltip=["mechanism", "bracket (coin)",
                                   alt.Tooltip("rate:Q", format=".1%")],
    ).properties(height=260)


def tax_curve(curve: pd.DataFrame, y: str = "tax") -> alt.Chart:
    """``T(z)``: tax due (or after-tax income, average rate) against pre-tax income."""
    rate = y.endswith("rate")
    titles = {"tax": "tax due T(z) (coin)", "after_tax": "income after tax (coin)",
              "average_rate": "average rate T(z) / z", "marginal_rate": "marginal rate"}
    return alt.Chart(curve).mark_line().encode(
        x=alt.X("income:Q", title="pre-tax income z (coin per period)", axis=COIN_AXIS),
        y=alt.Y(f"{y}:Q", title=titles.get(y, y), axis=RATE_AXIS if rate else COIN_AXIS),
        color=_color(curve), tooltip=["mechanism", alt.Tooltip("income:Q", format=",.1f"),
                                      alt.Tooltip(f"{y}:Q", format=".1%" if rate else ",.2f")],
    ).properties(height=260)


def income_by_skill(periods: pd.DataFrame, by: str = "mechanism") -> alt.Chart:
    """Each agent's income per episode before tax and after redistribution, against its
    skill (build pay per house): one point pair per agent and episode, one panel per
    mechanism."""
    keys = [by, "seed", "episode", "agent"]
    keys = [k for k in keys if k in periods]
    df = periods.groupby(keys, sort=False).agg(
        skill=("skill", "first"), before=("pre_tax_income", "sum"),
        after=("post_tax_income", "sum")).reset_index()
    base = alt.Chart(df).encode(x=alt.X("skill:Q", title="skill (coin per house)",
                                        scale=alt.Scale(zero=False)))
    rule = base.mark_rule(color="#888").encode(y="before:Q", y2="after:Q")
    points = base.transform_fold(["before", "after"], as_=["income", "coin"]).mark_circle(
        size=60).encode(
        y=alt.Y("coin:Q", title="income per episode (coin)"),
        color=alt.Color("income:N", sort=["before", "after"],
                        scale=alt.Scale(range=["#d62728", "#2ca02c"]),
                        legend=alt.Legend(title=None, orient="bottom", labelLimit=400,
                                          labelExpr="datum.label == 'before' ? "
                                          "'before tax' : 'after redistribution'")),
        tooltip=[k for k in keys if k != by] + ["skill:Q", "before:Q", "after:Q"])
    return alt.layer(rule, points, data=df).properties(width=260, height=240).facet(
        column=alt.Column(f"{by}:N", sort=list(dict.fromkeys(df[by])), title=None))


def activity_bars(episodes: pd.DataFrame, by: str = "mechanism") -> alt.Chart:
    """What the agents did per episode (gathered, built, traded): mean over seeds with the
    95% CI across seeds and a dot per seed (:func:`seed_bars`)."""
    return seed_bars(episodes, [c for c in ACTIVITY if c in episodes], by, names=ACTIVITY,
                     y_title="per episode", width=150)


def activity_over_time(steps: pd.DataFrame, x: str = "step",
                       by: str = "mechanism") -> alt.Chart:
    """Cumulative gathered / built / traded units over the episode (mean of seeds and
    episodes), one line per mechanism."""
    cols = {"gathered_wood": "wood gathered", "gathered_stone": "stone gathered",
            "built": "houses built", "trade_volume": "units traded"}
    cols = {k: v for k, v in cols.items() if k in steps}
    per_step = steps.groupby([by, "seed", "episode", x], sort=False)[list(cols)].sum()
    cum = per_step.groupby(level=[0, 1, 2], sort=False).cumsum()
    mean = cum.groupby(level=[0, 3], sort=False).mean().reset_index()
    long = mean.melt(id_vars=[by, x], value_vars=list(cols), var_name="activity")
    long["activity"] = long["activity"].map(cols)
    return alt.Chart(long).mark_line().encode(
        x=f"{x}:Q", y=alt.Y("value:Q", title="cumulative"), color=_color(long, by),
        tooltip=[by, "activity", x, alt.Tooltip("value:Q", format=".1f")],
    ).properties(width=150, height=180).facet(column=alt.Column("activity:N", title=None))


def world_map(terrain: pd.DataFrame, agents: pd.DataFrame,
              houses: pd.DataFrame | None = None) -> alt.Chart:
    """The GTB map: water, wood and stone sources, houses (with their owner) and the agents
    (numbered markers). ``agents``/``houses`` have ``row``, ``col``, ``agent``."""
    cells = terrain.copy()
    if houses is not None and not houses.empty:
        at = houses.drop_duplicates(["row", "col"]).set_index(["row", "col"])["agent"]
        idx = pd.MultiIndex.from_frame(cells[["row", "col"]])
        owner = at.reindex(idx).to_numpy()
        cells.loc[~pd.isna(owner), "terrain"] = "house"
        cells["owner"] = ["" if pd.isna(o) else f"agent {int(o)}" for o in owner]
    else:
        cells["owner"] = ""
    kinds = list(TERRAIN_COLORS)
    n_rows = int(cells["row"].max()) + 1
    size = 26 * n_rows
    y = alt.Y("row:O", axis=None)
    x = alt.X("col:O", axis=None)
    grid = alt.Chart(cells).mark_rect(stroke="white", strokeWidth=1).encode(
        x=x, y=y, color=alt.Color("terrain:N", scale=alt.Scale(
            domain=kinds, range=[TERRAIN_COLORS[k] for k in kinds]), title="cell"),
        tooltip=["row", "col", "terrain", "owner"])
    ag = agents.assign(label=agents["agent"].astype(int).astype(str))
    marks = alt.Chart(ag).mark_circle(size=360, opacity=1, stroke="black").encode(
        x=x, y=y, color=alt.value("#ffd23f"),
        tooltip=["agent", "row", "col"] + [c for c in ("coin", "wood", "stone") if c in ag])
    text = alt.Chart(ag).mark_text(fontWeight="bold", fontSize=12).encode(x=x, y=y,
                                                                          text="label:N")
    return alt.layer(grid, marks, text).properties(width=size, height=size)


#: agent n's colour in a plane (``AGENT_COLORS[n % 8]``): the palette of navigation's own
#: pictures (``render_rgb``), so a path and the pictured replay show an agent alike
AGENT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#17becf")


def plane_paths(steps: pd.DataFrame, plane: pd.DataFrame,
                extent: tuple[float, float, float, float], t: int | None = None,
                width: int = 440) -> alt.LayerChart:
    """One episode of a game in a plane (capability ``Plane``, e.g. navigation), in the
    plane's coordinates over ``extent`` = ``(x_min, x_max, y_min, y_max)``: each agent's path
    from its start up to step ``t`` (default: the episode's last; 0: the start), its
    position at ``t`` (numbered disc), its start (hollow circle) and its goal landmark
    (hollow square), one colour per agent.

    ``steps``: the episode's rows of ``WhatIfResult.steps`` (``step`` 1.., ``agent``, ``x``,
    ``y``); ``plane``: its rows of ``WhatIfResult.plane`` (``agent``, ``start_x``,
    ``start_y``, ``goal_x``, ``goal_y``)."""
    x0, x1, y0, y1 = (float(v) for v in extent)
    last = int(steps["step"].max()) if len(steps) else 0
    t = last if t is None else min(max(int(t), 0), last)
    starts = plane.dropna(subset=["start_x", "start_y"])
    path = pd.concat([
        pd.DataFrame({"agent": starts["agent"].to_numpy(), "step": 0,
                      "x": starts["start_x"].to_numpy(), "y": starts["start_y"].to_numpy()}),
        steps.loc[steps["step"] <= t, ["agent", "step", "x", "y"]]], ignore_index=True)
    extra = [c for c in ("distance", "reward") if c in steps]
    now = path[path["step"] == t].merge(
        steps[["agent", "step", *extra]], on=["agent", "step"], how="left")
    goals = plane.dropna(subset=["goal_x", "goal_y"])
    agents = sorted({int(a) for a in pd.concat([plane["agent"], path["agent"]])})
    name = lambda df: df.assign(agent=df["agent"].astype(int).astype(str))  # noqa: E731
    path, now, goals = name(path), name(now), name(goals)
    color = alt.Color("agent:N", title="agent", scale=alt.Scale(
        domain=[str(a) for a in agents],
        range=[AGENT_COLORS[a % len(AGENT_COLORS)] for a in agents]))
    sx = alt.Scale(domain=[x0, x1], nice=False, zero=False)
    sy = alt.Scale(domain=[y0, y1], nice=False, zero=False)
    x, y = alt.X("x:Q", title="x", scale=sx), alt.Y("y:Q", title="y", scale=sy)
    xy = [alt.Tooltip("x:Q", format=".2f"), alt.Tooltip("y:Q", format=".2f")]
    trails = alt.Chart(path).mark_line(clip=True, strokeWidth=2, opacity=0.75).encode(
        x=x, y=y, color=color, detail="agent:N", order="step:Q",
        tooltip=["agent:N", "step:Q", *xy])
    start = alt.Chart(path[path["step"] == 0]).mark_point(
        shape="circle", filled=False, size=110, strokeWidth=2, clip=True).encode(
        x=x, y=y, color=color, tooltip=["agent:N", alt.Tooltip("step:Q", title="start"), *xy])
    goal = alt.Chart(goals).mark_point(shape="square", filled=False, size=260, strokeWidth=2.5,
                                       clip=True).encode(
        x=alt.X("goal_x:Q", scale=sx, title="x"), y=alt.Y("goal_y:Q", scale=sy, title="y"),
        color=color,
        tooltip=["agent:N", alt.Tooltip("goal_x:Q", format=".2f", title="goal x"),
                 alt.Tooltip("goal_y:Q", format=".2f", title="goal y")])
    disc = alt.Chart(now).mark_circle(size=280, opacity=1, stroke="black", strokeWidth=1,
                                      clip=True).encode(
        x=x, y=y, color=color,
        tooltip=["agent:N", "step:Q", *xy, *[alt.Tooltip(f"{c}:Q", format=".3f")
                                             for c in extra]])
    label = alt.Chart(now).mark_text(color="white", fontWeight="bold", fontSize=11,
                                     clip=True).encode(x=x, y=y, text="agent:N")
    height = round(width * (y1 - y0) / (x1 - x0))
    return alt.layer(trails, start, goal, disc, label).properties(
        width=width, height=height, title=f"step {t} of {last}")


STAGE1 = "stage 1: one agent, induced game"


def _phase_dash() -> alt.StrokeDash:
    """Training windows solid, evaluations dashed (fixed, not by the order of the rows)."""
    return alt.StrokeDash("phase:N", scale=alt.Scale(domain=["train", "eval"],
                                                     range=[[1, 0], [5, 3]]))


def stage1_end(episodes: pd.DataFrame) -> int | None:
    """The last iteration whose rows hold stage-1 numbers of a curriculum (CM3: column
    ``stage``, 1 = stage 1 on the single-agent induced game, 2 = stage 2; a log window
    across the switch averages to between), or None if the run has no stage 1."""
    if "stage" not in episodes or "iteration" not in episodes:
        return None
    stage = pd.to_numeric(episodes["stage"], errors="coerce")
    if stage.isna().all() or not stage.between(1, 2).all() or not (stage < 2).any():
        return None
    return int(episodes.loc[stage < 2, "iteration"].max())


def training_curves(episodes: pd.DataFrame, metric: str = "collective") -> alt.Chart:
    """A run's ``metric`` against training iteration, one line per seed (solid: training
    windows; dashed with points: evaluations). A curriculum's stage 1 (CM3, column
    ``stage``) is shaded, up to a rule after its last iteration: its returns are one agent's
    in the single-agent induced game, not the team's."""
    df = episodes.dropna(subset=[metric])
    df = df.assign(seed=df["seed"].astype(str))
    end = stage1_end(df)
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("iteration:Q", title="iteration"),
        y=alt.Y(f"{metric}:Q", scale=alt.Scale(zero=False)),
        color=alt.Color("seed:N"), strokeDash=_phase_dash(),
        tooltip=["seed", "phase", "iteration", alt.Tooltip(f"{metric}:Q", format=".3f"),
                 *(["stage"] if end is not None else [])],
    )
    if end is None:
        return lines.properties(height=280)
    band = pd.DataFrame({"start": [float(df["iteration"].min())],
                         "end": [end + 0.5], "label": [STAGE1]})
    rect = alt.Chart(band).mark_rect(color="#9e9e9e", opacity=0.2).encode(
        x=alt.X("start:Q", title="iteration"), x2="end:Q",
        tooltip=alt.Tooltip("label:N", title="shaded"))
    at_end = alt.X("end:Q", title="iteration")
    rule = alt.Chart(band).mark_rule(color="#555", strokeDash=[4, 3]).encode(x=at_end)
    text = alt.Chart(band).mark_text(align="right", baseline="top", dx=-4, dy=4,
                                     color="#444").encode(x=at_end, y=alt.value(0),
                                                          text="label:N")
    return alt.layer(rect, rule, text, lines).properties(height=280)


def incentive_curves(agents: pd.DataFrame) -> alt.Chart:
    """Incentives received per episode by each agent against training iteration (mean over
    seeds; solid: training windows, dashed: evaluations)."""
    df = agents.groupby(["phase", "iteration", "agent"], as_index=False)["received"].mean()
    df = df.assign(agent=df["agent"].astype(str))
    return alt.Chart(df).mark_line().encode(
        x=alt.X("iteration:Q"), y=alt.Y("received:Q", title="incentive received per episode"),
        color=alt.Color("agent:N"), strokeDash=_phase_dash(),
        tooltip=["agent", "phase", "iteration", alt.Tooltip("received:Q", format=".2f")],
    ).properties(height=240)


# ------------------------------------------------------------ skills of an HSD team (ch. 4)
def _skill_color() -> alt.Color:
    return alt.Color("skill:N", title="skill", scale=alt.Scale(scheme="tableau10"))


def skill_bars(summary: pd.DataFrame, by: str, title: str, order: list[str]) -> alt.Chart:
    """Grouped bars of ``econsim.skills.summary`` rows (one seed): the mean per episode of
    each ``by`` value (event or action) per skill, with a standard-error bar."""
    df = summary.assign(skill=summary["skill"].astype(str), low=summary["mean"] - summary["se"],
                        high=summary["mean"] + summary["se"])
    x = alt.X(f"{by}:N", sort=[o for o in order if o in set(df[by])], title=None)
    base = alt.Chart(df).encode(x=x, xOffset=alt.XOffset("skill:N"))
    bars = base.mark_bar().encode(
        y=alt.Y("mean:Q", title=title), color=_skill_color(),
        tooltip=["skill", by, alt.Tooltip("mean:Q", format=".2f"),
                 alt.Tooltip("se:Q", format=".2f", title="standard error"), "episodes"])
    err = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    return alt.layer(bars, err).properties(height=260)


def skill_pca(points: pd.DataFrame, explained: pd.DataFrame) -> alt.Chart:
    """``econsim.skills.pca`` projections of one seed: a dot per episode and skill, a cross at
    each skill's mean; axis titles give each component's share of the variance."""
    share = dict(zip(explained["component"], explained["explained"], strict=True))
    df = points.assign(skill=points["skill"].astype(str))
    means = df.groupby("skill", as_index=False)[["pc1", "pc2"]].mean()
    x = alt.X("pc1:Q", title=f"component 1 ({share.get(1, 0):.0%} of the variance)")
    y = alt.Y("pc2:Q", title=f"component 2 ({share.get(2, 0):.0%})")
    dots = alt.Chart(df).mark_circle(size=18, opacity=0.35).encode(
        x=x, y=y, color=_skill_color(), tooltip=["skill", "episode"])
    cross = alt.Chart(means).mark_point(shape="cross", size=220, filled=True,
                                        stroke="black").encode(
        x=x, y=y, color=_skill_color(), tooltip=["skill"])
    return alt.layer(dots, cross).properties(height=300, width=360)


def skill_usage(summary: pd.DataFrame) -> alt.Chart:
    """High-level choices per episode of each skill, with and without the puck (one seed)."""
    df = summary.assign(skill=summary["skill"].astype(str),
                        puck=np.where(summary["team_puck"], "team has the puck",
                                      "opponents have it"))
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("skill:N"), xOffset="puck:N", y=alt.Y("mean:Q", title="choices per episode"),
        color=alt.Color("puck:N", title=None),
        tooltip=["skill", "puck", alt.Tooltip("mean:Q", format=".2f")]).properties(height=220)


def skill_heatmap(heat: pd.DataFrame) -> alt.Chart:
    """``econsim.skills.heatmap`` of one seed: steps spent in each skill per rink cell (x
    across, z up: the team attacks the top), one panel per skill."""
    df = heat.assign(skill=heat["skill"].astype(str))
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("col:O", title="x", axis=None), y=alt.Y("row:O", title="z", sort="descending",
                                                        axis=None),
        color=alt.Color("steps:Q", scale=alt.Scale(scheme="inferno")),
        tooltip=["skill", alt.Tooltip("x:Q", format=".1f"), alt.Tooltip("z:Q", format=".1f"),
                 "steps"],
    ).properties(width=90, height=180).facet(column=alt.Column("skill:N", title="skill"))


def ci_points(table: pd.DataFrame, value: str = "mean", by: str = "mechanism",
              zero: bool = False) -> alt.Chart:
    """A point and its confidence interval per ``by`` value, one panel per outcome
    (``econsim.uncertainty`` tables: ``value`` is ``mean`` or ``difference``); ``zero`` draws
    the line of no difference."""
    df = table.dropna(subset=[value])
    df = df[np.isfinite(df[value])]
    y = alt.Y(f"{by}:N", title=None, sort=list(dict.fromkeys(df[by])),
              axis=alt.Axis(labelLimit=260))
    tip = [by, "outcome", alt.Tooltip(f"{value}:Q", format=".3f"),
           alt.Tooltip("ci_low:Q", format=".3f", title="95% CI low"),
           alt.Tooltip("ci_high:Q", format=".3f", title="95% CI high"), "seeds"]
    base = alt.Chart().encode(y=y)
    rule = base.mark_rule().encode(x=alt.X("ci_low:Q", title=None), x2="ci_high:Q")
    point = base.mark_point(filled=True, size=70).encode(x=f"{value}:Q", color=_color(df, by),
                                                         tooltip=tip)
    layers = [rule, point]
    if zero:
        layers.insert(0, alt.Chart().mark_rule(color="#888", strokeDash=[4, 3]).encode(
            x=alt.datum(0)))
    return alt.layer(*layers, data=df).properties(
        width=220, height=max(50, 28 * df[by].nunique())).facet(
        facet=alt.Facet("outcome:N", sort=list(dict.fromkeys(df["outcome"])), title=None),
        columns=3).resolve_scale(x="independent")


# ------------------------------------------------------------- distribution (workbench II)
def tradeoff(points: pd.DataFrame, iso: pd.DataFrame, by: str = "mechanism") -> alt.Chart:
    """Equality against productivity: a point per mechanism x seed, the frontier of the
    undominated points (solid), iso-welfare curves ``equality = w / productivity`` (dashed
    grey, labelled with w)."""
    x = alt.X("productivity:Q", title="productivity (total coin)", axis=COIN_AXIS,
              scale=alt.Scale(zero=False))
    y = alt.Y("equality:Q", title="equality (1 - Gini)", scale=alt.Scale(zero=False))
    dots = alt.Chart(points).mark_circle(size=80).encode(
        x=x, y=y, color=_color(points, by),
        tooltip=[by, "seed", alt.Tooltip("productivity:Q", format=",.1f"),
                 alt.Tooltip("equality:Q", format=".3f"),
                 alt.Tooltip("welfare:Q", format=",.1f"), "frontier"])
    front = points[points["frontier"]].sort_values("productivity")
    line = alt.Chart(front).mark_line(color="black", strokeWidth=1.5).encode(
        x="productivity:Q", y="equality:Q", order="productivity:Q")
    curves = alt.Chart(iso).mark_line(color="#999", strokeDash=[4, 3]).encode(
        x="productivity:Q", y="equality:Q", detail="welfare:N",
        tooltip=[alt.Tooltip("welfare:Q", format=",.0f", title="welfare on this curve")])
    last = iso.sort_values("productivity").groupby("welfare").tail(1)
    labels = alt.Chart(last).mark_text(align="left", dx=4, color="#777").encode(
        x="productivity:Q", y="equality:Q", text=alt.Text("welfare:Q", format=",.0f"))
    return alt.layer(curves, labels, line, dots).properties(width=560, height=340)


def lorenz(curves: pd.DataFrame, by: str = "mechanism") -> alt.Chart:
    """Lorenz curves of agent income per episode, before (dashed) and after (solid) tax and
    transfers, one colour per mechanism, with the line of equality."""
    df = curves.assign(income=curves["income"].map({"pre_tax": "before tax",
                                                    "post_tax": "after tax and transfer"}))
    x = alt.X("people:Q", title="poorest share of agent-episodes", axis=RATE_AXIS)
    y = alt.Y("share:Q", title="share of all income", axis=RATE_AXIS)
    diag = alt.Chart(pd.DataFrame({"people": [0.0, 1.0], "share": [0.0, 1.0]})).mark_line(
        color="#bbb").encode(x=x, y=y)
    lines = alt.Chart(df).mark_line().encode(
        x=x, y=y, color=_color(df, by),
        strokeDash=alt.StrokeDash("income:N", sort=["after tax and transfer", "before tax"],
                                  title=None, legend=alt.Legend(orient="bottom",
                                                                labelLimit=400)),
        tooltip=[by, "income", alt.Tooltip("people:Q", format=".0%"),
                 alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("gini:Q", format=".3f")])
    return alt.layer(diag, lines).properties(width=380, height=340)


def incidence(table: pd.DataFrame, by: str = "mechanism", group_title: str = "decile"
              ) -> alt.Chart:
    """Average tax rate, net rate (tax minus transfer, over pre-tax income) and mean marginal
    rate per group (income decile or skill band), one line per mechanism."""
    long = table.melt(id_vars=[by, "group", "agents", "pre_tax"],
                      value_vars=["average_rate", "net_rate", "marginal_rate"],
                      var_name="rate").dropna(subset=["value"])
    long["rate"] = long["rate"].map({"average_rate": "average rate (tax / income)",
                                     "net_rate": "net rate ((tax - transfer) / income)",
                                     "marginal_rate": "marginal rate faced"})
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("group:O", title=group_title), y=alt.Y("value:Q", title=None, axis=RATE_AXIS),
        color=_color(long, by),
        tooltip=[by, "group", "agents", alt.Tooltip("pre_tax:Q", format=",.1f",
                                                    title="mean pre-tax income"),
                 alt.Tooltip("value:Q", format=".1%")],
    ).properties(width=260, height=220).facet(
        column=alt.Column("rate:N", title=None)).resolve_scale(y="independent")


def income_distribution(incomes: pd.DataFrame, by: str = "mechanism") -> alt.Chart:
    """Histograms of agent income per episode before tax and after tax and transfer
    (``econsim.distribution.incomes``), one panel per mechanism."""
    long = incomes.melt(id_vars=[by], value_vars=["pre_tax", "post_tax"], var_name="income",
                        value_name="coin")
    long["income"] = long["income"].map({"pre_tax": "before tax",
                                         "post_tax": "after tax and transfer"})
    return alt.Chart(long).mark_bar(opacity=0.55).encode(
        x=alt.X("coin:Q", bin=alt.Bin(maxbins=25), title="income per episode (coin)",
                axis=COIN_AXIS),
        y=alt.Y("count():Q", title="agent-episodes", stack=None),
        color=alt.Color("income:N", sort=["before tax", "after tax and transfer"],
                        scale=alt.Scale(range=["#d62728", "#2ca02c"]), title=None,
                        legend=alt.Legend(orient="bottom", labelLimit=400)),
        tooltip=["income", alt.Tooltip("count():Q", title="agent-episodes")],
    ).properties(width=260, height=200).facet(
        column=alt.Column(f"{by}:N", sort=list(dict.fromkeys(incomes[by])), title=None))
