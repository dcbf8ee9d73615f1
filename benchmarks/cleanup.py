"""Reproduce LIO vs AC on Cleanup 7x7 and 10x10 (Diss §5.6, Fig. 5.6a,b, B.5).

Paper: LIO agents find a division of labour (one cleans the river, the other harvests and
pays it) and collect far more apples than independent actor-critic agents, who compete for
apples after cleaning. Acceptance (issue 5): LIO's collective return >= 1.5x AC's on the
same budget and seeds, with the division of labour visible in the exported events.

Budget: the Diss trains 50,000 episodes; here every scenario gets the same number of
iterations (one training episode tau per seed and iteration; LIO plays a second episode
tau_hat for its incentive step), all seeds vectorised in one process. Final evaluation:
``eval_episodes`` greedy episodes (eps = 0) per seed.

    .venv/bin/python benchmarks/cleanup.py                       # scenarios' budgets, seeds 0-2
    .venv/bin/python benchmarks/cleanup.py --iterations 3000 --jobs 2 --quiet
    .venv/bin/python benchmarks/cleanup.py --extra               # also AC-d, AC-c, IA, Cen
    .venv/bin/python benchmarks/cleanup.py --scenarios cleanup7_acd,cleanup7_acc
    .venv/bin/python benchmarks/cleanup.py --map 10x10 --extra     # 3 agents: LIO, AC, IA, Cen
    .venv/bin/python benchmarks/cleanup.py --designers             # MetaGrad vs dual-RL (c), 7x7
    .venv/bin/python benchmarks/cleanup.py --conv                  # agents with the conv layer

Designers (Diss §6.4, Fig. 6.2): a central designer pays incentives per action type (clean /
collect / else) to shared actor-critic agents; their ``collective`` is the extrinsic return
minus the incentives paid (the Diss's test-time ID reward), ``extrinsic`` and ``incentives``
are printed beside it.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, run_scenarios  # noqa: E402

from econsim.cli import parse_seeds  # noqa: E402

#: scenario name suffixes per map (``cleanup7_lio``, ``cleanup10_ia``, ...)
MAIN = ["lio", "ac"]
EXTRA = {"7x7": ["acd", "acc", "ia", "cen"], "10x10": ["ia", "cen"]}
DESIGNERS = ["metagrad", "dualrl"]
COLUMNS = ("collective", "length", "extrinsic", "incentives")
PREFIX = {"7x7": "cleanup7_", "10x10": "cleanup10_"}
EVENTS = ["return", "apples", "waste_cleaned", "n_clean", "given", "received"]
OFFERS = ["offer_clean", "offer_collect", "offer_else"]


def _one(name: str, seeds: list[int], iterations: int | None, root: str,
         progress: bool, conv: bool = False, resume: bool = False) -> pd.DataFrame:
    torch.set_num_threads(1)
    return run_scenarios([name], seeds, iterations, root, progress=progress,
                         columns=COLUMNS, algorithm={"conv": True} if conv else None,
                         resume=resume)


def division_of_labour(df: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """Per scenario x seed x agent: the final evaluation's per-agent event counts."""
    out = []
    for run_id in df.run_id.unique():
        ag = pd.read_parquet(Path(root) / run_id / "agents.parquet").query("phase == 'eval'")
        ag = ag[ag.iteration == ag.iteration.max()]
        cols = [c for c in EVENTS if c in ag.columns]
        part = ag[["scenario", "seed", "agent", *cols]]
        ep = pd.read_parquet(Path(root) / run_id / "episodes.parquet").query("phase == 'eval'")
        offers = [c for c in OFFERS if c in ep.columns]
        if offers:  # a designer's mean offer per action type in that evaluation
            ep = ep[ep.iteration == ep.iteration.max()][["seed", *offers]]
            part = part.merge(ep, on="seed", how="left")
        out.append(part)
    return pd.concat(out, ignore_index=True)


def main(argv: list[str] | None = None):
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-2", root="runs/bench_cleanup")
    p.add_argument("--map", choices=sorted(PREFIX), default="7x7", help="Cleanup map")
    p.add_argument("--extra", action="store_true",
                   help="also the baselines AC-d, AC-c (7x7 only), IA and Cen")
    p.add_argument("--designers", action="store_true",
                   help="MetaGrad vs dual-RL (c) (central designers, 7x7) instead of LIO vs AC")
    p.add_argument("--conv", action="store_true",
                   help="agents (policy, critic and LIO's incentive function) with the "
                   "Diss's conv(6, 3x3) front end instead of the MLP")
    p.add_argument("--jobs", type=int, default=1, help="scenarios trained in parallel")
    p.add_argument("--scenarios", help="comma-separated scenario names (default: LIO and AC)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    pre = PREFIX[args.map]
    main_names = DESIGNERS if args.designers else MAIN
    if args.designers and args.map != "7x7":
        p.error("--designers: the designer scenarios are 7x7 (Diss Fig. 6.2)")
    names = (args.scenarios.split(",") if args.scenarios
             else [pre + n for n in main_names + (EXTRA[args.map] if args.extra else [])])
    seeds = parse_seeds(args.seeds)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            parts = list(pool.map(_one, names, [seeds] * len(names),
                                  [args.iterations] * len(names), [args.root] * len(names),
                                  [False] * len(names), [args.conv] * len(names),
                                  [args.resume] * len(names)))
    else:
        parts = [_one(n, seeds, args.iterations, args.root, not args.quiet, args.conv,
                      args.resume) for n in names]
    df = pd.concat(parts, ignore_index=True)
    print("\nFinal collective return (evaluation, eps = 0) per seed:")
    shown = [c for c in ("scenario", "seed", "iterations", "collective", "extrinsic",
                         "incentives", "wall_s") if c in df.columns]
    print(df[shown].to_string(index=False))
    wide = df.pivot(index="seed", columns="scenario", values="collective")
    lio, ac = pre + "lio", pre + "ac"
    if {lio, ac} <= set(wide.columns):
        wide["lio/ac"] = wide[lio] / wide[ac].where(wide[ac] != 0)
        means = df.groupby("scenario").collective.mean()
        ratio = means[lio] / means[ac] if means[ac] else float("inf")
        print(f"\nMean collective: LIO {means[lio]:.2f}, AC {means[ac]:.2f}, ratio {ratio:.2f}"
              " (acceptance on 7x7: >= 1.5)")
    mg, dual = pre + "metagrad", pre + "dualrl"
    if {mg, dual} <= set(wide.columns):
        means = df.groupby("scenario").collective.mean()
        print(f"\nMean collective (extrinsic - incentives): MetaGrad {means[mg]:.2f}, "
              f"dual-RL (c) {means[dual]:.2f}")
    print("\nCollective per seed:")
    print(wide.round(2).to_string())
    dol = division_of_labour(df, args.root)
    print("\nDivision of labour (final evaluation, per agent, mean per episode):")
    print(dol.round(2).to_string(index=False))
    return df, dol


if __name__ == "__main__":
    main()
