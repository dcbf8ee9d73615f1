"""How large each step's TD error is in a stored Cleanup run: the last step against the others.

Cleanup's episodes end only at the 50-step limit and nothing the agents see tells the step.
With ``bootstrap_time_limit = false`` the 50th step is terminal, so a critic that cannot
see the clock is wrong there by about its own value; with ``true`` it bootstraps past the
limit (the reference code). This probe plays ``--episodes`` episodes per seed (epsilon
``--eps``) from a checkpoint a run kept and prints, per seed and agent, the mean actor TD
error (eq. B.10 with the run's settings, the weight of the policy gradient) on the steps
before the last and on the last, and, for LIO givers, the mean weight of the outer loss
(``outer_returns``) on the same steps.

    .venv/bin/python benchmarks/cleanup_td.py RUN_ID --root runs/cl25k --iteration 12000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import stored_trainer  # noqa: E402

from econsim import runner  # noqa: E402
from learners.ac import ACAgents  # noqa: E402


def td_by_step(trainer, episodes: int = 10, eps: float = 0.05) -> pd.DataFrame:
    """Per seed and agent: its apples and cleaned waste cells per episode (the game's events,
    to tell cleaner from harvester), its mean TD error and mean |TD error| on steps
    ``0..T-2`` and its mean TD error on step ``T-1``, and for LIO givers the outer weight on
    the same steps. Plays with ``trainer``'s random streams: give it a trainer loaded for
    the purpose."""
    ag, N = trainer.agents, trainer.N
    with torch.no_grad():
        batch = trainer.run_episodes(trainer.params, eps, episodes)
        T = batch.mask.shape[0]
        if not bool(batch.mask.all()):
            raise ValueError("td_by_step needs episodes that all run to the step limit")
        td = ag.advantages(batch, trainer.total_rewards(batch)).reshape(ag.R, N, T, -1)
        weight = (trainer.outer_returns(batch).reshape(ag.R, N, T, -1)
                  if hasattr(trainer, "outer_returns") else None)
        per_episode = {k: batch.events[k].reshape(T, ag.R, -1, N).sum(0).mean(1)  # [R, N]
                       for k in ("apples", "waste_cleaned")}
    rows = []
    for r, seed in enumerate(trainer.seeds):
        for i in range(N):
            row = {"seed": seed, "agent": i,
                   **{k: float(v[r, i]) for k, v in per_episode.items()},
                   "td_before_last": float(td[r, i, :-1].mean()),
                   "abs_td_before_last": float(td[r, i, :-1].abs().mean()),
                   "td_last": float(td[r, i, -1].mean())}
            if weight is not None:
                row |= {"weight_before_last": float(weight[r, i, :-1].mean()),
                        "weight_last": float(weight[r, i, -1].mean())}
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_id")
    p.add_argument("--root", default=None, help="the runs folder holding RUN_ID")
    p.add_argument("--iteration", type=int, default=None,
                   help="a checkpoint the run kept (train.keep_every); default: its last")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--eps", type=float, default=0.05, help="exploration while playing")
    args = p.parse_args(argv)
    if args.episodes < 1 or not 0.0 <= args.eps <= 1.0:
        raise SystemExit("--episodes must be at least 1 and --eps within [0, 1]")
    try:
        algorithm = runner.load_result(args.run_id, args.root).scenario.algorithm_name
    except ValueError as err:  # no such run, or an unreadable one: one line, no traceback
        raise SystemExit(str(err)) from None
    trainer = stored_trainer(args.run_id, args.root, "cleanup", algorithm, args.iteration)
    if not isinstance(trainer.agents, ACAgents):
        raise SystemExit(f"{args.run_id} is {algorithm}, whose agents have no TD errors; "
                         "this probe reads actor-critic agents (learners.ac)")
    out = td_by_step(trainer, args.episodes, args.eps)
    print(f"{args.run_id} at iteration {args.iteration or 'last'} "
          f"(bootstrap_time_limit = {str(trainer.cfg.bootstrap_time_limit).lower()}):")
    print(out.round(2).to_string(index=False))
    return out


if __name__ == "__main__":
    main()
