"""Reproduce Figure 4.4a of the dissertation: win rate against the scripted team over training.

Trains HSD, QMIX, IQL, HSD-scripted and HSD-ext on STS2 3v3 (the scenarios ``sts2_hsd``,
``sts2_qmix``, ``sts2_iql``, ``sts2_hsd_scripted``, ``sts2_hsd_ext``: the Diss's settings,
50k episodes = 5000 iterations of 10 episodes, evaluation of 20 greedy episodes every 100
training episodes) over the seeds (the Diss: 5), plots each method's evaluation win rate
against training episodes, the mean over seeds with a shaded 95% confidence interval
(``mean +- t_{0.975, n-1} s / sqrt(n)``; none with one seed), to ``docs/hsd_winrate.png``, and
prints a table per method: the final win / lose / draw rates (mean of the last ``LAST``
evaluations of each seed, then mean over seeds with the 95% CI half-width of the win rate),
the budget in episodes and the wall time.

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
from econsim import runner  # noqa: E402
from econsim.cli import parse_seeds  # noqa: E402

SCENARIOS = {"hsd": "sts2_hsd", "qmix": "sts2_qmix", "iql": "sts2_iql",
             "hsd-scripted": "sts2_hsd_scripted", "hsd-ext": "sts2_hsd_ext"}
LAST = 5  # evaluations averaged for the final level
EVAL_EVERY = 10  # iterations: 100 episodes of 10
COLUMNS = ("collective", "team_return", "win_rate", "lose_rate", "draw_rate")


def small(method: str) -> dict:
    """``--small``: the learner settings of a smoke test (names of each algorithm)."""
    common = {"batch": 2, "updates": 4, "minibatch": 32}
    if method.startswith("hsd"):
        return {**common, "high_updates": 2, "replay_high": 2000, "replay_low": 2000}
    return {**common, "replay": 2000}


def half_width(values: np.ndarray) -> float:
    """The 95% confidence half-width of the mean of ``values`` (Student t; 0 for one)."""
    n = len(values)
    if n < 2:
        return 0.0
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / np.sqrt(n))


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


def summary(curve: pd.DataFrame, done: pd.DataFrame) -> pd.DataFrame:
    """Final outcome rates per method (mean over seeds of each seed's last evaluations)."""
    out = []
    for method, c in curve.groupby("method", sort=False):
        per_seed = c.sort_values("episodes").groupby("seed")[list(COLUMNS)].apply(
            lambda s: s.iloc[-LAST:].mean())
        win = per_seed.win_rate.to_numpy()
        out.append({"method": method, "win": round(float(win.mean()), 3),
                    "win_ci95": round(half_width(win), 3),
                    "lose": round(float(per_seed.lose_rate.mean()), 3),
                    "draw": round(float(per_seed.draw_rate.mean()), 3),
                    "team_return": round(float(per_seed.team_return.mean()), 3),
                    "seeds": len(per_seed), "budget_episodes": int(c.episodes.max()),
                    "wall_s": float(done[done.method == method].wall_s.iloc[0])})
    return pd.DataFrame(out)


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


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-4", root="runs/bench_hsd")
    p.add_argument("--methods", default=",".join(SCENARIOS),
                   help=f"of {', '.join(SCENARIOS)}")
    p.add_argument("--docs", default="docs", help="where the PNG goes")
    p.add_argument("--small", action="store_true", help="tiny learners: a smoke test")
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
    table = summary(curve, done)
    print("\nFigure 4.4a summary (final = mean of each seed's last "
          f"{LAST} evaluations of {int(curve.eval_episodes.max())} episodes; win_ci95: 95% "
          "CI half-width over seeds):")
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
