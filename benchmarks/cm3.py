"""Reproduce Figure 3.5 (a-c, e-j) of the dissertation: CM3 vs its ablations and baselines.

Trains every method on Antipodal, Cross, Merge (cooperative navigation) and Checkers over the
seeds, evaluating 10 episodes every 10 iterations (100 training episodes, as the Diss does),
and prints, per environment and method, the final return (the mean of the last five
evaluations, mean over seeds) and the episode at which the seed-mean curve first gets within
10% of its final level from its first evaluation, i.e. ``x - x_0 >= 0.9 (x_final - x_0)``
(returns are negative in navigation, so "90% of the final return" is measured as progress
from the start), and, with IAC among the methods, the episode at which each method's curve
first reaches IAC's final level and holds it on average over the next five evaluations
(``episodes_to_iac_final``: "CM3 reaches IAC's final return in fewer episodes"). CM3's
stage-1 episodes are counted: its iterations include stage 1.

Curves (mean and min-max over seeds) go to ``docs/cm3_<env>.png`` (left: baselines, right:
ablations), and their points to ``docs/cm3_<env>_curves.csv`` (method, seed, run, episodes,
collective): a later invocation replaces the rows of the (method, seed) pairs it ran and keeps
the others, so the figure and the table gather methods and seeds trained in different sessions
or processes (``runs/`` is not kept; the behaviour columns and wall time are those of the
methods this invocation ran). One file gathers one configuration (``--iterations``,
``--conv``); another needs another ``--docs`` folder. The budget is stated with
``--iterations`` (10 episodes
each); ``--resume`` continues unfinished runs and reuses finished ones, so the benchmark can
span sessions where ``runs/`` stays.
``--conv off`` trains (or finds) Checkers runs with dense layers on the images instead of
A.8.3's convolutions (the runs before 2026-12-03).

    .venv/bin/python benchmarks/cm3.py --envs antipodal --methods cm3,iac --iterations 2500 \
        --seeds 0-2 --resume
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import gather_csv, parser, run_scenarios, save_figure  # noqa: E402
from econsim import runner  # noqa: E402
from econsim.cli import parse_seeds  # noqa: E402

ENVS = {"antipodal": "nav_antipodal", "cross": "nav_cross", "merge": "nav_merge",
        "checkers": "checkers"}
METHODS = ("cm3", "direct", "qv", "iac", "coma", "qmix")
BASELINES = ("cm3", "iac", "coma", "qmix")
ABLATIONS = ("cm3", "direct", "qv")
LAST = 5  # evaluations averaged for the final level
BASELINE = "iac"  # the acceptance compares CM3 with IAC: episodes to reach IAC's final level


def curves(run_ids: dict[str, str], root: str) -> pd.DataFrame:
    """Evaluation curves: one row per method x seed x evaluation (episodes, collective), with
    the run and its settings (``iterations``, ``conv``: Checkers' convolutions or not)."""
    rows = []
    for method, run_id in run_ids.items():
        result = runner.load_result(run_id, root)
        ev = result.episodes.query("phase == 'eval'")
        batch = result.scenario.algorithm.get("batch", 10)
        conv = "on" if result.scenario.algorithm.get("conv") else "off"
        for _, r in ev.iterrows():
            rows.append({"method": method, "seed": int(r.seed), "run": run_id,
                         "iterations": result.scenario.train.iterations, "conv": conv,
                         "episodes": int(r.iteration) * int(batch),
                         "collective": float(r.collective)})
    return pd.DataFrame(rows)


def gather(curve: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``curve`` with the rows of ``path`` (an earlier ``cm3_<env>_curves.csv`` of the same
    iterations and ``conv``) whose (method, seed) it does not hold; written back to
    ``path`` (``benchmarks.common.gather_csv``)."""
    return gather_csv(curve, path, ["method", "seed"], ["iterations", "conv"],
                      ["method", "seed", "episodes"], order={"method": METHODS})


def behaviour(run_ids: dict[str, str], root: str) -> pd.DataFrame:
    """What the agents do in the last five evaluations (per episode, mean over seeds):
    navigation: collisions (agent-steps touching another agent, summed over agents) and
    steps spent on the own landmark (summed over agents); Checkers: each agent's red and
    yellow items."""
    rows = []
    for method, run_id in run_ids.items():
        ag = runner.load_result(run_id, root).agents.query("phase == 'eval'")
        last = sorted(ag.iteration.unique())[-LAST:]
        ag = ag[ag.iteration.isin(last)]
        row: dict = {"method": method}
        if "collisions" in ag:
            per = ag.groupby(["seed", "iteration"])[["collisions", "reached"]].sum().mean()
            row.update(collisions=round(per.collisions, 2), steps_on_goal=round(per.reached, 1))
        if "merged" in ag:  # SUMO: share of episodes that ended in a clean double merge
            per = ag.groupby(["seed", "iteration"])[["merged", "collision"]].mean().mean()
            row.update(merged=round(per.merged, 2), collision_rate=round(per.collision, 2))
        if "red" in ag:
            per = ag.groupby("agent")[["red", "yellow"]].mean()
            for a, name in ((0, "A"), (1, "B")):
                row.update({f"{name}_red": round(per.red[a], 1),
                            f"{name}_yellow": round(per.yellow[a], 1)})
        rows.append(row)
    return pd.DataFrame(rows)


def summary(curve: pd.DataFrame) -> pd.DataFrame:
    """Final level and episodes to 90% progress of the seed-mean curve, per method."""
    out = []
    for method, c in curve.groupby("method", sort=False):
        mean = c.groupby("episodes").collective.mean().sort_index()
        final = mean.iloc[-LAST:].mean()
        start = mean.iloc[0]
        reached = mean.index[(mean - start) >= 0.9 * (final - start)]
        per_seed = c.sort_values("episodes").groupby("seed").collective.apply(
            lambda s: s.iloc[-LAST:].mean())
        out.append({"method": method, "final": round(final, 2),
                    "final_min": round(per_seed.min(), 2), "final_max": round(per_seed.max(), 2),
                    "episodes_to_90pct": int(reached[0]) if len(reached) else None,
                    "seeds": len(per_seed), "budget_episodes": int(mean.index.max())})
    table = pd.DataFrame(out)
    if BASELINE in set(table.method):  # when each method first reaches IAC's final level
        target = float(table.loc[table.method == BASELINE, "final"].iloc[0])
        table[f"episodes_to_{BASELINE}_final"] = [
            first_at(curve[curve.method == m], target) for m in table.method]
    return table


def first_at(c: pd.DataFrame, level: float) -> int | None:
    """The first evaluation (training episodes) at which the seed-mean curve of ``c`` is at
    least ``level`` and stays there on average: the mean of it and the next ``LAST - 1``
    evaluations is too (one lucky evaluation does not count)."""
    mean = c.groupby("episodes").collective.mean().sort_index()
    ahead = mean[::-1].rolling(LAST, min_periods=1).mean()[::-1]
    hit = mean.index[(mean >= level) & (ahead >= level)]
    return int(hit[0]) if len(hit) else None


def plot(env: str, curve: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, group, title in ((axes[0], BASELINES, "baselines"), (axes[1], ABLATIONS,
                                                                 "ablations")):
        for method in group:
            c = curve[curve.method == method]
            if c.empty:
                continue
            g = c.groupby("episodes").collective
            x, m = g.mean().index, g.mean().to_numpy()
            ax.plot(x, m, label=method)
            ax.fill_between(x, g.min().to_numpy(), g.max().to_numpy(), alpha=0.2)
        ax.set_title(f"{env}: {title}")
        ax.set_xlabel("training episodes (CM3: incl. stage 1)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    axes[0].set_ylabel("evaluation return (sum over agents)")
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-2", root="runs/bench_cm3")
    p.add_argument("--envs", default=",".join(ENVS), help=f"of {', '.join(ENVS)}")
    p.add_argument("--methods", default=",".join(METHODS), help=f"of {', '.join(METHODS)}")
    p.add_argument("--docs", default="docs", help="where the PNG curves and their CSV go")
    p.add_argument("--conv", choices=("on", "off"), default="on",
                   help="Checkers' A.8.3 convolutions (off: dense layers on the images, the "
                   "runs before 2026-12-03)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # one core per benchmark process; results do not depend on it
    seeds = parse_seeds(a.seeds)
    envs = [e for e in a.envs.split(",") if e]
    methods = [m for m in a.methods.split(",") if m]
    bad = [e for e in envs if e not in ENVS] + [m for m in methods if m not in METHODS]
    if bad:
        raise SystemExit(f"unknown {bad} (envs: {', '.join(ENVS)}; methods: "
                         f"{', '.join(METHODS)})")
    tables = []
    for env in envs:
        names = [f"{ENVS[env]}_{m}" for m in methods]
        done = run_scenarios(names, seeds, a.iterations, a.root, progress=not a.quiet,
                             eval_every=10, resume=a.resume, checkpoint_every=100,
                             algorithm={"conv": a.conv == "on"})
        ids = {n.removeprefix(ENVS[env] + "_"): done[done.scenario == n].run_id.iloc[0]
               for n in names}
        curve = gather(curves(ids, a.root), Path(a.docs) / f"cm3_{env}_curves.csv")
        plot(env, curve, Path(a.docs) / f"cm3_{env}.png")
        s = summary(curve).merge(behaviour(ids, a.root), on="method", how="left")
        s.insert(0, "env", env)
        s["wall_s"] = [float(done[done.scenario == f"{ENVS[env]}_{m}"].wall_s.iloc[0])
                       if m in methods else None for m in s.method]
        tables.append(s)
        print(s.to_string(index=False), flush=True)
    table = pd.concat(tables, ignore_index=True)
    print("\nFigure 3.5 summary (final = mean of the last 5 evaluations; episodes to 90% "
          "progress of the seed-mean curve):")
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
