"""Reproduce LIO vs AC on Cleanup 7x7 (Diss §5.6, Fig. 5.6a, B.5a,b).

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

MAIN = ["cleanup7_lio", "cleanup7_ac"]
EXTRA = ["cleanup7_acd", "cleanup7_acc", "cleanup7_ia", "cleanup7_cen"]
EVENTS = ["return", "apples", "waste_cleaned", "n_clean", "given", "received"]


def _one(name: str, seeds: list[int], iterations: int | None, root: str,
         progress: bool) -> pd.DataFrame:
    torch.set_num_threads(1)
    return run_scenarios([name], seeds, iterations, root, progress=progress,
                         columns=("collective", "length"))


def division_of_labour(df: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """Per scenario x seed x agent: the final evaluation's per-agent event counts."""
    out = []
    for run_id in df.run_id.unique():
        ag = pd.read_parquet(Path(root) / run_id / "agents.parquet").query("phase == 'eval'")
        ag = ag[ag.iteration == ag.iteration.max()]
        cols = [c for c in EVENTS if c in ag.columns]
        out.append(ag[["scenario", "seed", "agent", *cols]])
    return pd.concat(out, ignore_index=True)


def main(argv: list[str] | None = None):
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-2", root="runs/bench_cleanup")
    p.add_argument("--extra", action="store_true", help="also AC-d, AC-c, IA and Cen")
    p.add_argument("--jobs", type=int, default=1, help="scenarios trained in parallel")
    p.add_argument("--scenarios", help="comma-separated scenario names (default: LIO and AC)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = (args.scenarios.split(",") if args.scenarios
             else MAIN + (EXTRA if args.extra else []))
    seeds = parse_seeds(args.seeds)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            parts = list(pool.map(_one, names, [seeds] * len(names),
                                  [args.iterations] * len(names), [args.root] * len(names),
                                  [False] * len(names)))
    else:
        parts = [_one(n, seeds, args.iterations, args.root, not args.quiet) for n in names]
    df = pd.concat(parts, ignore_index=True)
    print("\nFinal collective return (evaluation, eps = 0) per seed:")
    print(df[["scenario", "seed", "iterations", "collective", "wall_s"]].to_string(index=False))
    wide = df.pivot(index="seed", columns="scenario", values="collective")
    if {"cleanup7_lio", "cleanup7_ac"} <= set(wide.columns):
        wide["lio/ac"] = wide.cleanup7_lio / wide.cleanup7_ac.where(wide.cleanup7_ac != 0)
        means = df.groupby("scenario").collective.mean()
        ratio = means["cleanup7_lio"] / means["cleanup7_ac"] if means["cleanup7_ac"] else float(
            "inf")
        print(f"\nMean collective: LIO {means['cleanup7_lio']:.2f}, AC "
              f"{means['cleanup7_ac']:.2f}, ratio {ratio:.2f} (acceptance: >= 1.5)")
    print("\nCollective per seed:")
    print(wide.round(2).to_string())
    dol = division_of_labour(df, args.root)
    print("\nDivision of labour (final evaluation, per agent, mean per episode):")
    print(dol.round(2).to_string(index=False))
    return df, dol


if __name__ == "__main__":
    main()
