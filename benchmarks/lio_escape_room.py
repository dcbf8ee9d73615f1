"""Reproduce LIO vs PG in Escape Room ER(2,1) and ER(3,2) (Diss §5.4, Fig. 5.5a,c).

Paper: LIO reaches the optimum (9 in ER(2,1), 8 in ER(3,2)); PG stays below 0.
Acceptance: LIO >= 8.5 (ER(2,1)) and >= 7.5 (ER(3,2)) in at least 4 of 5 seeds; PG not.

    .venv/bin/python benchmarks/lio_escape_room.py            # full budget, 5 seeds
    .venv/bin/python benchmarks/lio_escape_room.py --extra    # also ER(5,3), asymmetric ER
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, run_scenarios  # noqa: E402

from econsim.cli import parse_seeds  # noqa: E402

THRESHOLDS = {"er21_lio": 8.5, "er21_pg": 8.5, "er32_lio": 7.5, "er32_pg": 7.5,
              "er53_lio": 16.0, "asym_lio_pg": 8.5, "asym_pg_pg": 8.5}


def main(argv: list[str] | None = None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--extra", action="store_true", help="also ER(5,3) and asymmetric ER")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = ["er21_lio", "er21_pg", "er32_lio", "er32_pg"]
    if args.extra:
        names += ["er53_lio", "asym_lio_pg", "asym_pg_pg"]
    df = run_scenarios(names, parse_seeds(args.seeds), args.iterations, args.root,
                       progress=not args.quiet, resume=args.resume)
    df["target"] = df.scenario.map(THRESHOLDS)
    df["reached"] = df.collective >= df.target
    print("\nFinal collective return (evaluation, ε = 0, 100 episodes per seed):")
    print(df[["scenario", "seed", "iterations", "collective", "reached", "wall_s"]]
          .to_string(index=False))
    summary = df.groupby("scenario").agg(
        mean=("collective", "mean"), min=("collective", "min"), max=("collective", "max"),
        seeds_reaching=("reached", "sum"), seeds=("seed", "count"), target=("target", "first"),
        wall_s=("wall_s", "first")).reset_index()
    print("\nSummary:")
    print(summary.round(2).to_string(index=False))
    return df


if __name__ == "__main__":
    main()
