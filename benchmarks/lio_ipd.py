"""Reproduce LIO in the Iterated Prisoner's Dilemma (Diss §5.4, Fig. 5.4, Prop. 3).

Paper: two LIO agents converge to mutual cooperation (collective -2 per step); LIO paired
with PG converges near DC (-3 per step); PG agents defect. Acceptance: LIO ends with
P(C, C) >= 0.9, measured as the share of evaluation rounds (ε = 0, 100 episodes of 5
rounds per seed) in which both agents cooperate.

    .venv/bin/python benchmarks/lio_ipd.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, run_scenarios  # noqa: E402

from econsim.cli import parse_seeds  # noqa: E402


def main(argv: list[str] | None = None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pairs", action="store_true", help="also LIO+PG and PG+PG")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = ["ipd_lio"] + (["ipd_lio_pg", "ipd_pg"] if args.pairs else [])
    df = run_scenarios(names, parse_seeds(args.seeds), args.iterations, args.root,
                       progress=not args.quiet, resume=args.resume)
    df["per_step"] = df.collective / 5
    print("\nFinal evaluation (ε = 0, 100 episodes of 5 rounds per seed):")
    print(df[["scenario", "seed", "iterations", "per_step", "mutual_cooperation", "wall_s"]]
          .round(3).to_string(index=False))
    summary = df.groupby("scenario").agg(
        per_step=("per_step", "mean"), p_cc=("mutual_cooperation", "mean"),
        p_cc_min=("mutual_cooperation", "min"), seeds=("seed", "count"),
        wall_s=("wall_s", "first")).reset_index()
    print("\nSummary (P(C,C) = share of rounds with mutual cooperation):")
    print(summary.round(3).to_string(index=False))
    return df


if __name__ == "__main__":
    main()
