"""Reproduce MetaGrad (and dual-RL) incentive design in Escape Room (Diss §6.4, Fig. 6.1).

Paper: MetaGrad converges to ~26 in ER(5,2) and ~40 in ER(10,5) (collective extrinsic return
minus the incentives the designer paid); dual-RL is unstable.
Acceptance: MetaGrad >= 25 (ER(5,2)) and >= 38 (ER(10,5)) in at least 4 of 5 seeds.

    .venv/bin/python benchmarks/metagrad_escape_room.py                # MetaGrad, both games
    .venv/bin/python benchmarks/metagrad_escape_room.py --envs er52    # ER(5,2) only
    .venv/bin/python benchmarks/metagrad_escape_room.py --dual         # also dual-RL (d), (c)
    .venv/bin/python benchmarks/metagrad_escape_room.py --methods dualrl_d,dualrl_c
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, run_scenarios  # noqa: E402

from econsim.cli import parse_seeds  # noqa: E402

THRESHOLDS = {"er52": 25.0, "er105": 38.0}
METHODS = ("metagrad", "dualrl_d", "dualrl_c")
DETAIL = ["extrinsic", "incentives", "offer_lever", "offer_start", "offer_door"]


def _final_details(df: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """Add the final evaluation's extrinsic return, incentives paid and offers per seed."""
    rows = []
    for run_id, group in df.groupby("run_id", sort=False):
        ep = pd.read_parquet(Path(root) / run_id / "episodes.parquet").query("phase == 'eval'")
        last = ep[ep.iteration == ep.iteration.max()].set_index("seed")
        for _, row in group.iterrows():
            rows.append({**row.to_dict(),
                         **{k: float(last.loc[row.seed, k]) for k in DETAIL if k in last}})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--envs", default="er52,er105", help="games: er52, er105 or both (default)")
    p.add_argument("--methods", default="metagrad",
                   help="comma list of metagrad, dualrl_d, dualrl_c (default: metagrad)")
    p.add_argument("--dual", action="store_true", help="all three: MetaGrad and dual-RL (d), (c)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    games = [g for g in args.envs.split(",") if g]
    unknown = sorted(set(games) - set(THRESHOLDS))
    if unknown:
        p.error(f"--envs: {', '.join(unknown)} not allowed (allowed: er52, er105)")
    methods = METHODS if args.dual else [m for m in args.methods.split(",") if m]
    if sorted(set(methods) - set(METHODS)):
        p.error(f"--methods: {args.methods!r} not allowed (allowed: {', '.join(METHODS)})")
    names = [f"{g}_{m}" for m in methods for g in games]
    df = run_scenarios(names, parse_seeds(args.seeds), args.iterations, args.root,
                       progress=not args.quiet, resume=args.resume)
    df = _final_details(df, args.root)
    df["target"] = df.scenario.map(lambda s: THRESHOLDS[s.split("_")[0]])
    df["reached"] = df.collective >= df.target
    cols = ["scenario", "seed", "iterations", "collective", *[c for c in DETAIL if c in df],
            "reached", "wall_s"]
    print("\nFinal collective return = extrinsic - incentives paid (evaluation, 100 episodes "
          "per seed):")
    print(df[cols].round(3).to_string(index=False))
    summary = df.groupby("scenario", sort=False).agg(
        mean=("collective", "mean"), min=("collective", "min"), max=("collective", "max"),
        seeds_reaching=("reached", "sum"), seeds=("seed", "count"), target=("target", "first"),
        wall_s=("wall_s", "first")).reset_index()
    summary["accepted"] = summary.seeds_reaching >= 0.8 * summary.seeds
    print("\nSummary (acceptance: at least 4 of 5 seeds reach the target):")
    print(summary.round(2).to_string(index=False))
    return df


if __name__ == "__main__":
    main()
