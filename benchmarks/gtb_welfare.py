"""Social welfare of tax mechanisms in the Gather-Trade-Build economy (Diss §6.3.1, Fig. 6.4).

Trains 4 parameter-shared PPO agents under each mechanism (3 seeds) and prints the final
evaluation: social welfare ``welfare_sum`` (sum over the episode's 100 steps of productivity x
equality, unit coin x share x steps), productivity,
equality and tax revenue per episode, and the tax schedule in force (mean rate per bracket
over the evaluation's periods). Paper: MetaGrad's welfare > dual-RL's and > US-federal's;
MetaGrad taxes 0-10 coin more and 10-39 coin less than US-federal.

    .venv/bin/python benchmarks/gtb_welfare.py                 # all mechanisms, seeds 0-2
    .venv/bin/python benchmarks/gtb_welfare.py --only gtb_us_federal gtb_free_market
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, run_scenarios  # noqa: E402

from econsim import scenario  # noqa: E402
from econsim.cli import parse_seeds  # noqa: E402

SCENARIOS = ["gtb_free_market", "gtb_us_federal", "gtb_flat30", "gtb_saez", "gtb_metagrad",
             "gtb_dualrl"]
METRICS = ["welfare_sum", "productivity", "equality", "tax_revenue"]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-2")
    p.add_argument("--only", nargs="+", help="a subset of the scenarios")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = [n for n in (args.only or SCENARIOS) if n in scenario.names()]
    df = run_scenarios(names, parse_seeds(args.seeds), args.iterations, args.root,
                       progress=not args.quiet, columns=METRICS, resume=args.resume)
    print("\nFinal evaluation per seed (per episode of 100 steps):")
    print(df[["scenario", "seed", "iterations", *METRICS, "wall_s"]].round(2)
          .to_string(index=False))
    summary = df.groupby("scenario", sort=False).agg(
        **{k: (k, "mean") for k in METRICS}, seeds=("seed", "count"),
        wall_s=("wall_s", "first")).reset_index()
    print("\nSummary (mean over seeds):")
    print(summary.round(2).to_string(index=False))
    rates = []
    for name, run_id in df.groupby("scenario", sort=False).run_id.first().items():
        periods = pd.read_parquet(Path(args.root) / run_id / "periods.parquet")
        last = periods[periods.iteration == periods.iteration.max()]
        cols = [c for c in last.columns if c.startswith("rate_")]
        rates.append({"scenario": name, **last[cols].mean().round(3).to_dict()})
    print("\nTax schedule in force at the final evaluation (mean marginal rate per bracket; "
          "brackets start at 0, 9.7, 39.5, 84.2, 160.7, 204.1, 510.3 coin):")
    print(pd.DataFrame(rates).to_string(index=False))
    return df


if __name__ == "__main__":
    main()
