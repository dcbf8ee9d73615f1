"""Reproduce Figure 4.4a of the dissertation: win rate against the scripted team over training.

Trains HSD, QMIX, IQL, HSD-scripted and HSD-ext on STS2 3v3 (the scenarios ``sts2_hsd``,
``sts2_qmix``, ``sts2_iql``, ``sts2_hsd_scripted``, ``sts2_hsd_ext``: the Diss's settings,
50k episodes = 5000 iterations of 10 episodes, evaluation of 20 greedy episodes every 100
training episodes) over the seeds (the Diss: 5), plots each method's evaluation win rate
against training episodes, the mean over seeds with a shaded 95% confidence interval
(``mean +- t_{0.975, n-1} s / sqrt(n)``; none with one seed), to ``docs/hsd_winrate.png``, and
prints a table per method: the final win / lose / draw rates (mean of the last ``LAST``
evaluations of each seed, then mean over seeds with the 95% CI half-width of the win rate),
the budget in episodes and the wall time, and the final rates per seed (whether it wins more
often than it loses); the curve's points go to ``docs/hsd_winrate.csv`` (method x seed x
evaluation) and Table 4.1 (``--table``) to ``docs/hsd_table_4_1.csv``.

``--analysis`` adds Figure 4.2 for the trained HSD team (``econsim.skills``: 100 greedy test
episodes per seed): ``docs/hsd_skills.png`` (one seed's policy: events and primitive actions
per skill with standard errors, their PCA, skill usage with and without the puck, the skill
time series of three episodes, where on the rink each skill is used) and the tidy table
``docs/hsd_skill_events.csv`` (seed x skill x event: mean count per episode, standard error),
and whether the skills play differently, measured: ``docs/hsd_skill_contrasts.csv`` (per seed,
pair of skills and event, the rates per 100 steps in the skill, their difference and its
bootstrap CI; the pairs with a clear difference are printed); with ``--methods hsd8``
(HSD with 8 skills) also Figure 4.3 as ``docs/hsd8_skills.png``.
``--table`` adds Table 4.1: win / lose % over 100 test episodes per seed for HSD, QMIX and IQL
with their training teammates, with 1 and 2 scripted teammates (the last learning slots
played by the script), and for HSD with agent 0 fixed to its most offensive / most defensive
skill (measured by the analysis: most shots; most steals and interceptions).

The budget is stated with ``--iterations`` (of 10 episodes; evaluations every 10 iterations);
``--resume`` continues unfinished runs and reuses finished ones, so a long benchmark can span
sessions. ``--small`` shrinks every learner (2 episodes per iteration, 4 minibatches of 32,
buffers of 2000, evaluations of 4 episodes): a smoke test of the pipeline, not a result.

    .venv/bin/python benchmarks/hsd.py --methods hsd,qmix,iql --iterations 500 --seeds 0-2 \\
        --resume
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parser, run_scenarios, save_figure  # noqa: E402
from econsim import envs, model, runner, skills  # noqa: E402
from econsim.cli import parse_seeds  # noqa: E402
from econsim.envs import sts2  # noqa: E402
from econsim.uncertainty import half_width  # noqa: E402

SCENARIOS = {"hsd": "sts2_hsd", "qmix": "sts2_qmix", "iql": "sts2_iql",
             "hsd-scripted": "sts2_hsd_scripted", "hsd-ext": "sts2_hsd_ext",
             "hsd8": "sts2_hsd8"}
FIGURE_4_4A = ("hsd", "qmix", "iql", "hsd-scripted", "hsd-ext")  # the default methods
ANALYSED = ("hsd", "hsd8")  # --analysis: Fig. 4.2 (4 skills) and Fig. 4.3 (8 skills)
LAST = 5  # evaluations averaged for the final level
EVAL_EVERY = 10  # iterations: 100 episodes of 10
COLUMNS = ("collective", "team_return", "win_rate", "lose_rate", "draw_rate")


def small(method: str) -> dict:
    """``--small``: the learner settings of a smoke test (names of each algorithm)."""
    common = {"batch": 2, "updates": 4, "minibatch": 32}
    if method.startswith("hsd"):
        return {**common, "high_updates": 2, "replay_high": 2000, "replay_low": 2000}
    return {**common, "replay": 2000}


def curves(run_ids: dict[str, str], root: str) -> pd.DataFrame:
    """Evaluation curves: one row per method x seed x evaluation (episodes, outcome rates)."""
    rows = []
    for method, run_id in run_ids.items():
        result = runner.load_result(run_id, root)
        batch = int(result.scenario.algorithm.get("batch", 10))
        ev = result.episodes.query("phase == 'eval'")
        for _, r in ev.iterrows():
            rows.append({"method": method, "seed": int(r.seed),
                         "episodes": int(r.iteration) * batch, "eval_episodes": int(r.episodes),
                         **{k: float(r[k]) for k in COLUMNS}})
    return pd.DataFrame(rows)


def finals(curve: pd.DataFrame) -> pd.DataFrame:
    """Per method and seed (methods in the curve's order): the mean of each of ``COLUMNS``
    over its last ``LAST`` evaluations, and whether it wins more often than it loses."""
    order = {m: i for i, m in enumerate(curve.method.unique())}
    last = (curve.sort_values("episodes").groupby(["method", "seed"])[list(COLUMNS)]
            .apply(lambda s: s.iloc[-LAST:].mean()).reset_index())
    last = last.sort_values(["method", "seed"], ignore_index=True,
                            key=lambda c: c.map(order) if c.name == "method" else c)
    return last.assign(wins_more=last.win_rate > last.lose_rate)


def summary(curve: pd.DataFrame, done: pd.DataFrame) -> pd.DataFrame:
    """Final outcome rates per method: the mean over seeds of :func:`finals`."""
    out = []
    for method, per_seed in finals(curve).groupby("method", sort=False):
        win = per_seed.win_rate.to_numpy()
        out.append({"method": method, "win": round(float(win.mean()), 3),
                    "win_ci95": round(half_width(win), 3),
                    "lose": round(float(per_seed.lose_rate.mean()), 3),
                    "draw": round(float(per_seed.draw_rate.mean()), 3),
                    "team_return": round(float(per_seed.team_return.mean()), 3),
                    "seeds": len(per_seed),
                    "budget_episodes": int(curve[curve.method == method].episodes.max()),
                    "wall_s": float(done[done.method == method].wall_s.iloc[0])})
    return pd.DataFrame(out)


def progress(curve: pd.DataFrame, every: int = 5000, window: int = 10,
             levels: tuple[float, ...] = (0.3, 0.5)) -> pd.DataFrame:
    """Learning speed per method: the win rate averaged over seeds and the last ``window``
    evaluations at every ``every`` training episodes, and the first episode count at which
    that average reaches each of ``levels`` (``first_0.5``; NaN: never)."""
    out = []
    for method, c in curve.groupby("method", sort=False):
        mean = c.groupby("episodes").win_rate.mean().rolling(window).mean()
        row = {"method": method}
        for at in range(every, int(mean.index.max()) + 1, every):
            row[f"at_{at}"] = round(float(mean[mean.index <= at].iloc[-1]), 3)
        for level in levels:
            reached = mean.index[mean >= level]
            row[f"first_{level:g}"] = int(reached.min()) if len(reached) else np.nan
        out.append(row)
    return pd.DataFrame(out)


def hsd_alpha(run_id: str, root: str) -> pd.DataFrame:
    """Per seed of an HSD run: the final alpha and decoder accuracy (last training row), how
    many evaluations reached the alpha threshold (each lowers alpha) and the best one."""
    result = runner.load_result(run_id, root)
    threshold = float(result.scenario.algorithm.get("alpha", {}).get("threshold", 0.7))
    ep = result.episodes
    train = ep[ep.phase == "train"].sort_values("iteration").groupby("seed").tail(1)
    ev = ep[ep.phase == "eval"].groupby("seed").win_rate
    return pd.DataFrame({"seed": train.seed.to_numpy(), "alpha": train.alpha.to_numpy(),
                         "decoder_accuracy": train.decoder_accuracy.round(3).to_numpy(),
                         f"evaluations_won_{threshold:g}": ev.apply(
                             lambda w: int((w >= threshold).sum())).to_numpy(),
                         "best_evaluation": ev.max().round(3).to_numpy()})


def plot(curve: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, c in curve.groupby("method", sort=False):
        g = c.groupby("episodes").win_rate
        x = g.mean().index.to_numpy()
        mean = g.mean().to_numpy()
        half = np.array([half_width(v.to_numpy()) for _, v in g])
        ax.plot(x, mean, marker="o", markersize=3, label=method)
        ax.fill_between(x, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1), alpha=0.2)
    seeds = curve.groupby("method").seed.nunique().max()
    ax.set_xlabel("training episodes")
    ax.set_ylabel("win rate vs the scripted team")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"STS2 3v3 (Fig. 4.4a): mean and 95% CI over {seeds} seed(s)")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def skill_analysis(run_id: str, root: str, docs: Path, episodes: int = 100,
                   prefix: str = "hsd") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figure 4.2 (4.3 with 8 skills) of the trained HSD run ``run_id``: writes the figure
    (its first seed) and the tidy table of every seed (``<prefix>_skills.png``,
    ``<prefix>_skill_events.csv``), the skills' event profiles compared pair by pair
    (``<prefix>_skill_contrasts.csv``, ``econsim.skills.contrasts``, printed: the pairs with a
    clear difference); returns the table and the per-episode events."""
    trainer = model.load_trainer(run_id, root)
    tr = skills.trace(trainer, episodes)
    events = skills.events_by_skill(tr)
    table = skills.summary(events, ["skill", "event"], "count")
    docs.mkdir(parents=True, exist_ok=True)
    table.to_csv(docs / f"{prefix}_skill_events.csv", index=False)
    contrast = skills.contrasts(tr)
    contrast.to_csv(docs / f"{prefix}_skill_contrasts.csv", index=False)
    pairs = skills.distinct_pairs(contrast)
    clear = pairs[(pairs.a_more != "") | (pairs.b_more != "")]
    print(f"\n{prefix}: pairs of skills whose event rates per 100 steps in the skill differ "
          f"(95% bootstrap CI over test episodes, simultaneous over pairs x events; opposite: "
          f"each clearly higher on some event), {int(pairs.opposite.sum())} of {len(pairs)} "
          "pairs opposite:")
    print(clear.to_string(index=False) if len(clear) else "  none")
    plot_skills(tr, events, int(trainer.seeds[0]), docs / f"{prefix}_skills.png")
    return table, events


def plot_skills(tr: pd.DataFrame, events: pd.DataFrame, seed: int, path: Path) -> None:
    """Figure 4.2 a-g for one seed's policy (``econsim.skills`` tables of the trace ``tr``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    tr = tr[tr.seed == seed]  # (keeps tr.attrs: the number of skills)
    events = events[events.seed == seed]
    ks = list(range(int(tr.attrs.get("skills", tr.skill.max() + 1))))
    K = len(ks)
    colours = [plt.get_cmap("tab10")(k % 10) for k in range(max(ks) + 1)]
    fig = plt.figure(figsize=(15, 16))
    grid = fig.add_gridspec(4, max(4, K))
    w = grid.ncols

    def bars(ax, table: pd.DataFrame, by: str, value: str, title: str, ylabel: str,
             names: list[str], log: bool = False) -> None:
        s = skills.summary(table, ["skill", by], value)
        names = [n for n in names if n in set(s[by])]
        width = 0.8 / K
        for j, k in enumerate(ks):
            part = s[s.skill == k].set_index(by).reindex(names)
            x = np.arange(len(names)) + (j - (K - 1) / 2) * width
            ax.bar(x, part["mean"], width, yerr=part["se"], color=colours[k], label=f"skill {k}")
        ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
        if log:  # possession steps are 10-100 times the other events
            ax.set_yscale("symlog", linthresh=0.1)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)

    def scatter(ax, table: pd.DataFrame, column: str, value: str, title: str,
                scale: bool = False) -> None:
        pts, loads = skills.pca(table, column, value, scale=scale)
        for k in ks:
            p = pts[pts.skill == k]
            ax.scatter(p.pc1, p.pc2, s=6, alpha=0.25, color=colours[k])
            ax.scatter(p.pc1.mean(), p.pc2.mean(), s=90, marker="X", color=colours[k],
                       edgecolor="black", label=f"skill {k}")
        ev = loads.set_index("component").explained
        ax.set_xlabel(f"component 1 ({ev.get(1, 0):.0%})")
        ax.set_ylabel(f"component 2 ({ev.get(2, 0):.0%})")
        ax.set_title(title)
        ax.legend(fontsize=8)

    half = w // 2
    bars(fig.add_subplot(grid[0, :half + 1]), events, "event", "count",
         "(a) game events per skill (mean, s.e. over episodes)",
         "count per episode (symlog scale)", list(sts2.EVENTS), log=True)
    scatter(fig.add_subplot(grid[0, half + 1:]), events, "event", "count",
            "(b) PCA of the events (standardised)", scale=True)
    actions = skills.actions_by_skill(tr)
    used = actions[actions.groupby(["episode", "skill"])["count"].transform("sum") > 0]
    bars(fig.add_subplot(grid[1, :half + 1]), used, "action", "share",
         "(c) primitive actions per skill", "share of the skill's steps",
         list(sts2.ACTION_NAMES))
    scatter(fig.add_subplot(grid[1, half + 1:]), used, "action", "share",
            "(d) PCA of the skills' actions")
    use = skills.summary(skills.usage(tr), ["skill", "team_puck"], "choices")
    ax = fig.add_subplot(grid[2, :2])
    for j, (puck, label) in enumerate(((True, "team has the puck"),
                                       (False, "opponents have it"))):
        part = use[use.team_puck == puck].set_index("skill").reindex(ks)
        ax.bar(np.arange(K) + (j - 0.5) * 0.4, part["mean"], 0.4, yerr=part["se"],
               label=label)
    ax.set_xticks(np.arange(K), [f"skill {k}" for k in ks])
    ax.set_ylabel("choices per episode (3 agents)")
    ax.set_title("(e) skill usage")
    ax.legend(fontsize=8)
    tl = skills.timeline(tr, episodes=3)
    cmap = ListedColormap(colours)
    for e in range(3):
        ax = fig.add_subplot(grid[2, 2:]) if e == 0 else ax
        part = tl[tl.episode == e].pivot(index="agent", columns="segment", values="skill")
        ax.imshow(part.to_numpy(np.float64), cmap=cmap, vmin=-0.5, vmax=len(colours) - 0.5,
                  aspect="auto", interpolation="nearest",
                  extent=(-0.5, part.shape[1] - 0.5, 3 * e + 2.5, 3 * e - 0.5))
    ax.set_ylim(8.5, -0.5)
    ax.set_yticks(range(9), [f"ep {e + 1}, agent {n}" for e in range(3) for n in range(3)],
                  fontsize=7)
    ax.set_xlabel("high-level step (10 primitive steps each)")
    ax.set_title("(f) skills chosen over three test episodes (colour: skill)")
    heat = skills.heatmap(tr)
    for j, k in enumerate(ks[:w]):
        ax = fig.add_subplot(grid[3, j])
        img = heat[heat.skill == k].pivot(index="row", columns="col", values="steps")
        ax.imshow(np.log1p(img.to_numpy()[::-1]), cmap="magma", extent=(-9, 9, -18, 18))
        ax.set_title(f"(g) skill {k}: where it is used (log steps)", fontsize=9)
        ax.set_xlabel("x")
        if j == 0:
            ax.set_ylabel("z (attacking up)")
    figure = "4.2" if K == 4 else "4.3"
    fig.suptitle(f"STS2 3v3: the skills of a trained HSD team (seed {seed}, "
                 f"{tr.episode.nunique()} test episodes; Diss Fig. {figure})", y=1.0)
    save_figure(fig, path)


def adhoc_table(run_ids: dict[str, str], root: str, events: pd.DataFrame | None,
                episodes: int = 100) -> pd.DataFrame:
    """Table 4.1: win / lose % over ``episodes`` greedy test episodes per seed (mean over
    seeds, with the 95% CI half-width of the win %), per method and teammates."""
    rows = []
    for method, run_id in run_ids.items():
        if method not in ("hsd", "qmix", "iql"):
            continue
        trainer = model.load_trainer(run_id, root)
        params = runner.load_result(run_id, root).scenario.env_params
        settings = {"training teammates": {}}
        for k in (1, 2):
            game = envs.make("sts2", **{**params, "scripted_teammates": k})
            settings[f"{k} scripted teammate{'s' * (k > 1)}"] = {"game": game}
        outs = {name: trainer.evaluate(episodes, **kw) for name, kw in settings.items()}
        if method == "hsd" and events is not None:
            for role in ("offensive", "defensive"):
                per_seed = []
                for r, seed in enumerate(trainer.seeds):
                    k = skills.extreme_skills(events, int(seed))[role]
                    one = trainer.replica(r).evaluate(episodes, fixed_skills={0: k})
                    per_seed.append({key: v[0] for key, v in one.items()})
                outs[f"agent 0 fixed to its {role} skill"] = {
                    key: np.array([p[key] for p in per_seed]) for key in per_seed[0]}
        for name, out in outs.items():
            win, lose = 100 * np.asarray(out["win_rate"]), 100 * np.asarray(out["lose_rate"])
            rows.append({"method": method, "teammates": name, "win_%": round(win.mean(), 1),
                         "win_ci95": round(half_width(win), 1),
                         "lose_%": round(lose.mean(), 1), "seeds": len(win)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-4", root="runs/bench_hsd")
    p.add_argument("--methods", default=",".join(FIGURE_4_4A),
                   help=f"of {', '.join(SCENARIOS)}")
    p.add_argument("--docs", default="docs", help="where the PNG goes")
    p.add_argument("--small", action="store_true", help="tiny learners: a smoke test")
    p.add_argument("--analysis", action="store_true",
                   help="Figure 4.2: the skill analysis of the trained HSD team")
    p.add_argument("--table", action="store_true",
                   help="Table 4.1: win / lose %% with scripted teammates or a fixed skill")
    p.add_argument("--test-episodes", type=int, default=100,
                   help="test episodes per seed of --analysis and --table (default 100)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # one core per benchmark process; results do not depend on it
    seeds = parse_seeds(a.seeds)
    methods = [m for m in a.methods.split(",") if m]
    bad = [m for m in methods if m not in SCENARIOS]
    if bad:
        raise SystemExit(f"unknown methods {bad} (allowed: {', '.join(SCENARIOS)})")
    parts = []
    for method in methods:
        done = run_scenarios([SCENARIOS[method]], seeds, a.iterations, a.root,
                             progress=not a.quiet, eval_every=EVAL_EVERY, columns=COLUMNS,
                             algorithm=small(method) if a.small else None, resume=a.resume,
                             checkpoint_every=100, eval_episodes=4 if a.small else None)
        parts.append(done.assign(method=method))
    done = pd.concat(parts, ignore_index=True)
    ids = {m: done[done.method == m].run_id.iloc[0] for m in methods}
    curve = curves(ids, a.root)
    plot(curve, Path(a.docs) / "hsd_winrate.png")
    curve.to_csv(Path(a.docs) / "hsd_winrate.csv", index=False)
    table = summary(curve, done)
    print("\nFigure 4.4a summary (final = mean of each seed's last "
          f"{LAST} evaluations of {int(curve.eval_episodes.max())} episodes; win_ci95: 95% "
          "CI half-width over seeds):")
    print(table.to_string(index=False))
    print(f"\nPer seed (mean of the last {LAST} evaluations):")
    print(finals(curve)[["method", "seed", "win_rate", "lose_rate", "draw_rate", "wins_more"]]
          .round(3).to_string(index=False))
    print("\nLearning speed (win rate, mean over seeds and 10 evaluations; first_L: first "
          "training episode count where it reaches L):")
    print(progress(curve).to_string(index=False))
    for method in [m for m in ids if m.startswith("hsd") and m != "hsd-scripted"]:
        print(f"\n{method}: alpha and the skill decoder at the end, per seed:")
        print(hsd_alpha(ids[method], a.root).to_string(index=False))
    events = None
    for method in [m for m in ANALYSED if m in ids] if a.analysis else []:
        skill_table, found = skill_analysis(ids[method], a.root, Path(a.docs),
                                            a.test_episodes, prefix=method)
        events = found if method == "hsd" else events
        print(f"\nFigure {4.2 if method == 'hsd' else 4.3}: "
              f"{Path(a.docs) / f'{method}_skills.png'}; mean events per test episode by skill "
              "(all seeds):")
        print(skill_table.groupby(["skill", "event"])["mean"].mean().unstack("event")
              .round(2).to_string())
    if a.table:
        if events is None and "hsd" in ids:
            events = skills.events_by_skill(skills.trace(
                model.load_trainer(ids["hsd"], a.root), a.test_episodes))
        adhoc = adhoc_table(ids, a.root, events, a.test_episodes)
        adhoc.to_csv(Path(a.docs) / "hsd_table_4_1.csv", index=False)
        print(f"\nTable 4.1 ({a.test_episodes} test episodes per seed):")
        print(adhoc.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
