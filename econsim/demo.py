"""``econsim demo`` (what ``make run`` runs): LIO vs PG in the Iterated Prisoner's Dilemma.

1. Trains two shipped scenarios on a short budget, two seeds each (vectorised): ``ipd_lio``
   (agents that learn to pay incentives, Diss ch. 5) and ``ipd_pg`` (plain policy gradient).
2. Prints a table of the final evaluation per seed: collective return per round
   (mutual cooperation = -2, mutual defection = -4) and the share of rounds with
   mutual cooperation P(C,C), plus the run folders holding Parquet tables and checkpoints.
3. Replays the trained LIO agents in the Mesa face (``EconModel.from_run``) for a few
   episodes and writes the DataCollector's agent table next to the run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from econsim import runner, scenario
from econsim.model import EconModel

SCENARIOS = ("ipd_lio", "ipd_pg")
SEEDS = [0, 1]
ITERATIONS = 3000  # ~30 s on 2 cores; LIO typically reaches mutual cooperation by then
QUICK_ITERATIONS = 40


def _budget(name: str, iterations: int) -> scenario.Scenario:
    data = scenario.load(name).resolved()
    data["train"].update(iterations=iterations, eval_every=max(1, iterations // 3),
                         log_every=min(data["train"]["log_every"], iterations),
                         checkpoint_every=iterations)
    return scenario.from_dict(data, name)


def main(root: str | Path | None = None, quick: bool = False) -> pd.DataFrame:
    """Run the demo in ``root`` (default: ``$ECONSIM_RUNS`` or ``runs``); returns the table
    it prints (one row per scenario x seed)."""
    iterations = QUICK_ITERATIONS if quick else ITERATIONS
    rows, results = [], {}
    for name in SCENARIOS:
        sc = _budget(name, iterations)
        print(f"\n== {name}: {sc.description}")
        result = runner.run(sc, seeds=SEEDS, root=root)
        results[name] = result
        for _, r in result.final().iterrows():
            rows.append({"scenario": name, "algorithm": sc.algorithm_name, "seed": int(r.seed),
                         "iterations": int(r.iteration),
                         "return_per_round": r.collective / r.length,
                         "p_cc": r.mutual_cooperation, "run_folder": str(result.path)})
    table = pd.DataFrame(rows)
    print("\nFinal evaluation (policies without the exploration floor, 100 episodes of 5 "
          "rounds per seed).")
    print("return_per_round: collective payoff per round (C,C = -2, D,D = -4); "
          "p_cc: share of rounds where both cooperate.\n")
    print(table.round(3).to_string(index=False))

    lio = results["ipd_lio"]
    model = EconModel.from_run(lio.run_id, seed=SEEDS[0], root=root)
    steps = model.run_episodes(3)
    mesa_path = Path(lio.path) / "mesa_replay.csv"
    steps.to_csv(mesa_path, index=False)
    model_vars = model.datacollector.get_model_vars_dataframe()
    print(f"\nMesa replay of the trained LIO agents (seed {SEEDS[0]}), 3 episodes:")
    print(steps[["episode", "step", "agent", "action_name", "reward", "incentive_received",
                 "incentive_given"]].head(10).round(3).to_string(index=False))
    print(f"  ... {len(steps)} rows; collective return per episode: "
          f"{model_vars.groupby('episode').collective_reward.sum().round(2).tolist()}")

    print("\nFiles:")
    for name, result in results.items():
        print(f"  {name:8s} {result.path}/  (episodes.parquet, agents.parquet, "
              f"checkpoints/, scenario.toml)")
    print(f"  mesa     {mesa_path}")
    print("\nNext: `econsim list runs`, `econsim export RUN_ID --format csv`, "
          "`econsim run er21_lio` (full Escape Room reproduction).")
    return table
