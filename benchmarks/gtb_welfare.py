"""Social welfare of tax mechanisms in the Gather-Trade-Build economy (Diss §6.3.1, Fig. 6.4).

Trains 4 parameter-shared PPO agents under each mechanism (3 seeds) and prints the final
evaluation: social welfare ``welfare_sum`` (sum over the episode's 100 steps of productivity x
equality, unit coin x share x steps), productivity,
equality and tax revenue per episode, and the tax schedule in force (mean rate per bracket
over the evaluation's periods). Paper: MetaGrad's welfare > dual-RL's and > US-federal's;
MetaGrad taxes 0-10 coin more and 10-39 coin less than US-federal.

    .venv/bin/python benchmarks/gtb_welfare.py                 # all mechanisms, seeds 0-2
    .venv/bin/python benchmarks/gtb_welfare.py --only gtb_us_federal gtb_free_market
    # issue 15's comparison at 10x the budget (16,000 training episodes per seed), two
    # scenarios at a time, continued by a later invocation with the same arguments:
    .venv/bin/python benchmarks/gtb_welfare.py --iterations 4000 --jobs 2 --resume \
        --root runs/gtb10x --only gtb_metagrad gtb_us_federal gtb_dualrl gtb_free_market \
        --test-episodes 50 --docs docs

With ``--iterations`` a run evaluates 16 times over training and checkpoints every 100
iterations. ``--test-episodes N``: the table comes from N more evaluation episodes per seed
played by each run's last checkpoint (the final evaluation has only ``eval_episodes``). MetaGrad's
welfare is tested against each other mechanism's by Welch's t over the seeds (each seed's
training run is one independent observation). ``--docs``
writes ``gtb_welfare_<iterations>it_{seeds,schedules,curves,tests}.csv`` and the figure
``gtb_welfare_<iterations>it.png`` (welfare, productivity and equality over training, and the
schedules in force at the end).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, run_each, run_scenarios, save_figure  # noqa: E402

from econsim import model, scenario  # noqa: E402
from econsim.cli import parse_seeds  # noqa: E402
from econsim.core.brackets import US_FEDERAL_CUTOFFS  # noqa: E402
from econsim.files import atomic_write  # noqa: E402

SCENARIOS = ["gtb_free_market", "gtb_us_federal", "gtb_flat30", "gtb_saez", "gtb_metagrad",
             "gtb_dualrl"]
METRICS = ["welfare_sum", "productivity", "equality", "tax_revenue"]
BRACKETS = [f"{c:g}" for c in US_FEDERAL_CUTOFFS]  # coin where each bracket starts (the
# game's default cutoffs, which every GTB scenario uses)
CHECKPOINT_EVERY = 100  # iterations between checkpoints: what a --resume loses at most


def _one(name: str, seeds: list[int], iterations: int | None, root: str, progress: bool,
         resume: bool) -> pd.DataFrame:
    """Train one scenario (a worker of --jobs); with ``iterations``, 16 evaluations over
    training (``phase = eval`` in the run's ``episodes.parquet``) and a checkpoint every
    ``CHECKPOINT_EVERY`` iterations. Both are part of the run's settings, so ``--resume``
    finds only runs made with them."""
    torch.set_num_threads(1)
    return run_scenarios([name], seeds, iterations, root, progress=progress, columns=METRICS,
                         resume=resume, checkpoint_every=CHECKPOINT_EVERY,
                         eval_every=max(1, iterations // 16) if iterations else None)


def retest(df: pd.DataFrame, root: str, episodes: int
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each run's trainer from its last checkpoint plays ``episodes`` evaluation episodes per
    seed: (one row per scenario x seed with the means of ``METRICS``, one row per scenario
    with the mean marginal rate per bracket over those episodes' periods). They are drawn
    from the evaluation streams of the last iteration, the streams the run's final
    evaluation started from (the policy is fixed, so this only sets which worlds are
    played)."""
    rows, rates = [], []
    for name, run_id in df.groupby("scenario", sort=False).run_id.first().items():
        trainer = model.load_trainer(run_id, root)
        out = trainer.evaluate(episodes)
        periods = out["_tables"]["periods"]
        built = builders(periods, "replica")
        for r, seed in enumerate(trainer.seeds):
            rows.append({"scenario": name, "seed": seed, "iterations": trainer.iteration,
                         "episodes": episodes, **{k: float(out[k][r]) for k in METRICS},
                         "builders": float(built[r]), "run_id": run_id})
        rates.append({"scenario": name, **schedule(periods)})
    return pd.DataFrame(rows), pd.DataFrame(rates)


def schedule(periods: pd.DataFrame) -> dict[str, float]:
    """The mean marginal rate per bracket (``rate_0``...) over a period table's rows."""
    return periods.filter(regex=r"^rate_\d+$").mean().to_dict()


def builders(periods: pd.DataFrame, by: str) -> pd.Series:
    """Per value of ``by`` (seed or replica): the share of agent-episodes in which the agent
    built at least one house (a worker, as opposed to an agent that barely moves)."""
    built = periods.groupby([by, "episode", "agent"]).houses_built.sum() > 0
    return built.groupby(level=by).mean()


def final_rates(df: pd.DataFrame, root: str) -> pd.DataFrame:
    """Per scenario: the mean marginal rate per bracket over the final evaluation's periods;
    adds ``builders`` (:func:`builders`) to ``df``'s rows."""
    rates = []
    for name, run_id in df.groupby("scenario", sort=False).run_id.first().items():
        periods = pd.read_parquet(Path(root) / run_id / "periods.parquet")
        last = periods[periods.iteration == periods.iteration.max()]
        built = builders(last, "seed")
        mine = df.scenario == name
        df.loc[mine, "builders"] = df.loc[mine, "seed"].map(built).to_numpy(float)
        rates.append({"scenario": name, **schedule(last)})
    return pd.DataFrame(rates)


def curves(df: pd.DataFrame, root: str) -> pd.DataFrame:
    """Training curves: one row per scenario x seed x logged iteration (every ``log_every``
    iterations, the training episodes' means) of ``METRICS``, the agents' return and, for
    learned planners, the rates in force and the designer's return;
    ``episodes``: training episodes per seed so far (summed from the log)."""
    out = []
    for run_id in df.run_id.unique():
        ep = pd.read_parquet(Path(root) / run_id / "episodes.parquet").query("phase == 'train'")
        extra = [c for c in ep.columns if c.startswith("rate_") or c == "designer_return"]
        part = ep[["scenario", "seed", "iteration", "collective", *METRICS, *extra]].copy()
        part.insert(3, "episodes", ep.groupby("seed").episodes.cumsum())  # as logged
        out.append(part)
    return pd.concat(out, ignore_index=True)


def compare(per_seed: pd.DataFrame, scenario: str, others: list[str],
            outcome: str = "welfare_sum") -> pd.DataFrame:
    """``scenario``'s ``outcome`` against each of ``others``: Welch's t-test over the seeds
    (each seed's training run is one independent observation; unequal variances, since a
    learned planner's seeds spread more than a fixed schedule's), two-sided, uncorrected for
    the number of comparisons. One row per comparison with both means, the difference, its
    standard error, t, the Welch degrees of freedom and p."""
    from scipy import stats

    a = per_seed.loc[per_seed.scenario == scenario, outcome].to_numpy(float)
    rows = []
    for other in others:
        b = per_seed.loc[per_seed.scenario == other, outcome].to_numpy(float)
        if min(len(a), len(b)) < 2:
            raise SystemExit(f"compare: {scenario} has {len(a)} and {other} {len(b)} seeds; "
                             "a t-test needs at least 2 each")
        res = stats.ttest_ind(a, b, equal_var=False)
        se = (a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) ** 0.5
        rows.append({"scenario": scenario, "against": other, "outcome": outcome,
                     "mean": a.mean(), "mean_against": b.mean(), "diff": a.mean() - b.mean(),
                     "std_err": se, "t": float(res.statistic), "df": float(res.df),
                     "p": float(res.pvalue), "seeds": len(a), "seeds_against": len(b)})
    return pd.DataFrame(rows)


def plot(curve: pd.DataFrame, per_seed: pd.DataFrame, rates: pd.DataFrame, path: Path,
         smooth: int = 10) -> None:
    """Welfare, productivity, equality over training (mean over seeds of a rolling mean over
    ``smooth`` logged points, band = min-max over seeds; dots = the final table's value per
    seed) and the schedules of the final table (mean rate per bracket over its periods)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("welfare_sum", "social welfare per episode"),
              ("productivity", "productivity (coin per episode)"),
              ("equality", "equality (1 - Gini)")]
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    colours = dict(zip(curve.scenario.unique(), plt.cm.tab10.colors, strict=False))
    for ax, (col, title) in zip(axes, panels, strict=False):
        for name, c in curve.groupby("scenario", sort=False):
            wide = c.pivot(index="episodes", columns="seed", values=col)
            wide = wide.rolling(smooth, min_periods=1).mean()
            x = wide.index / 1000
            ax.plot(x, wide.mean(axis=1), color=colours[name], lw=1.2,
                    label=name.removeprefix("gtb_"))
            ax.fill_between(x, wide.min(axis=1), wide.max(axis=1), color=colours[name], alpha=0.15)
            last = per_seed[per_seed.scenario == name]
            ax.scatter(last.episodes_trained / 1000, last[col], color=colours[name], s=14, zorder=3)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training episodes per seed (thousands)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    ax = axes[3]
    cols = [c for c in rates.columns if c.startswith("rate_")]
    width = 0.8 / max(1, len(rates))
    for i, (_, row) in enumerate(rates.iterrows()):
        ax.bar([k + i * width for k in range(len(cols))], row[cols].to_numpy(float), width,
               color=colours.get(row.scenario), label=row.scenario.removeprefix("gtb_"))
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(cols))], BRACKETS, fontsize=7)
    ax.set_xlabel("bracket starts at (coin)")
    ax.set_title("marginal rate after training (mean over periods)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path)



def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-2")
    p.add_argument("--only", nargs="+", help="a subset of the scenarios")
    p.add_argument("--jobs", type=int, default=1,
                   help="scenarios trained in parallel, one process and one torch thread "
                   "each, without progress bars (default 1)")
    p.add_argument("--test-episodes", type=int, default=0,
                   help="after training, each run's last checkpoint plays this many "
                   "evaluation episodes per seed, which then replace the final evaluation "
                   "in the tables, the tests and the CSVs (default 0: the final evaluation)")
    p.add_argument("--docs", help="write the tables (CSV) and the figure (PNG) here, named "
                   "gtb_welfare_<iterations>it_*")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = [n for n in (args.only or SCENARIOS) if n in scenario.names()]
    seeds = parse_seeds(args.seeds)
    df = run_each(_one, names, args.jobs, not args.quiet, seeds=seeds,
                  iterations=args.iterations, root=args.root, resume=args.resume)
    if args.test_episodes:
        per_seed, rates = retest(df, args.root, args.test_episodes)
        what = f"{args.test_episodes} test episodes per seed after training"
    else:
        per_seed, rates = df, final_rates(df, args.root)
        what = "the final evaluation"
    curve = curves(df, args.root)
    trained = curve.groupby(["scenario", "seed"]).episodes.max().rename("episodes_trained")
    per_seed = per_seed.join(trained, on=["scenario", "seed"])
    print(f"\nPer seed ({what}; per episode of 100 steps):")
    print(per_seed[["scenario", "seed", "iterations", *METRICS, "builders"]].round(2)
          .to_string(index=False))
    summary = per_seed.groupby("scenario", sort=False).agg(
        **{k: (k, "mean") for k in [*METRICS, "builders"]},
        welfare_sd=("welfare_sum", "std"),
        seeds=("seed", "count")).reset_index()
    summary["wall_s"] = summary.scenario.map(df.groupby("scenario").wall_s.first())
    print("\nSummary (mean over seeds; welfare_sd: its standard deviation over seeds; "
          "builders: share of agent-episodes with a house built):")
    print(summary.round(2).to_string(index=False))
    print("\nTax schedule in force (mean marginal rate per bracket; brackets start at "
          + ", ".join(BRACKETS) + " coin):")
    print(rates.round(3).to_string(index=False))
    others = [n for n in names if n != "gtb_metagrad"]
    tests = pd.DataFrame()
    if "gtb_metagrad" in names and others:
        if len(seeds) < 2:
            print("\nNo tests of MetaGrad's welfare against the others: one seed each.")
        else:
            tests = compare(per_seed, "gtb_metagrad", others)
            print("\nMetaGrad's social welfare against the others (Welch's t over seeds, "
                  "two-sided, uncorrected):")
            print(tests.round(3).to_string(index=False))
    if args.docs:
        tag = f"gtb_welfare_{int(per_seed.iterations.max())}it"
        docs = Path(args.docs)
        docs.mkdir(parents=True, exist_ok=True)
        for table, suffix in ((per_seed, "seeds"), (rates, "schedules"), (curve, "curves")):
            atomic_write(docs / f"{tag}_{suffix}.csv",
                         lambda tmp, t=table: t.to_csv(tmp, index=False))
        if len(tests):
            atomic_write(docs / f"{tag}_tests.csv", lambda tmp: tests.to_csv(tmp, index=False))
        plot(curve, per_seed, rates, docs / f"{tag}.png")
        print(f"\nwrote {docs}/{tag}*.csv and {tag}.png")
    return per_seed


if __name__ == "__main__":
    main()
