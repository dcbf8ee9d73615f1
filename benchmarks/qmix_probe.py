"""Why a trained navigation QMIX team scores what it does: its greedy actions, the size of
its Q-values and the gain of its mixer.

For a stored ``nav_*_qmix`` run (its last checkpoint, every seed), over ``--episodes``
greedy evaluation episodes (the evaluation streams of the last iteration):

* each agent's most frequent greedy action and its share of the agent's steps (one action
  at ~100% whatever the state: the agent no longer steers; in navigation, with no walls, it
  drifts off);
* the mean agent Q-value ``Q_n(o^n, a^n)`` of the actions played, the team's discounted
  return actually obtained from those states to the step cap, and ``Q_tot`` there (Diss
  §3.4, QMIX): with negative rewards, a ``Q_tot`` above that return is an overestimate
  (``Q_tot`` also counts the steps after the cap, which only lower the true value);
* the mixer's gain ``sum_n dQ_tot / dq_n`` at those states: how much ``Q_tot`` moves per
  unit of agent Q (the max in the target, ``Q_tot'(s', max_a' Q'_n)``, overestimates by
  about the gain times the agents' spread of Q over actions);
* from the run's log: the training ``Q_tot`` and TD loss at a few iterations.

    .venv/bin/python benchmarks/qmix_probe.py nav_cross_qmix-20261203-034058-2735 \\
        --root runs/bench_nav
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import stored_trainer  # noqa: E402
from econsim import runner  # noqa: E402
from learners.multigoal import Transitions  # noqa: E402
from learners.rollout import ReplicaRNG  # noqa: E402


def to_go(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """``sum_{k >= t} gamma^(k - t) r_k`` for every step ``t`` of ``rewards [R, T, ...]``."""
    out, acc = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        acc = rewards[:, t] + gamma * acc
        out[:, t] = acc
    return out


def probe(trainer, episodes: int) -> pd.DataFrame:
    """One row per seed x agent of what the greedy team does and what its networks say."""
    game, N = trainer.game, trainer.N
    key = (trainer.iteration,)
    batch = trainer.play(game, trainer.params, 0.0, episodes,
                         ReplicaRNG.from_seeds(trainer.seeds, "eval/env", *key),
                         ReplicaRNG.from_seeds(trainer.seeds, "eval/act", *key))
    fields, _ = trainer.transitions(batch)  # [R, T*B, ...], time-major within a world
    mb = Transitions(game, fields)
    q = trainer.agent_q(trainer.q, mb.obs).detach()
    taken = q.gather(-1, mb.actions[..., None].long())[..., 0].requires_grad_(True)
    q_tot = trainer.mixer_shape.apply(trainer.mixer, taken, trainer.mixer_state(mb))
    gain, = torch.autograd.grad(q_tot.sum(), taken)
    # the team's discounted return from each step to the end of its episode, [R, T, B]
    T, B = batch.mask.shape[0], episodes
    ret = to_go(trainer.team_reward(mb).reshape(trainer.R, T, B), trainer.cfg.gamma)
    acts = mb.actions.long()
    names = getattr(game, "action_names", None) or [str(a) for a in range(trainer.A)]
    rows = []
    for r, seed in enumerate(trainer.seeds):
        for n in range(N):
            count = torch.bincount(acts[r, :, n], minlength=trainer.A)
            rows.append({
                "seed": seed, "agent": n, "top_action": names[int(count.argmax())],
                "top_share": float(count.max() / count.sum()),
                "agent_q": float(taken[r, :, n].detach().mean()),
                "q_spread": float((q[r, :, n].max(-1).values - q[r, :, n].min(-1).values)
                                  .mean()),
                "q_tot": float(q_tot[r].detach().mean()), "return": float(ret[r].mean()),
                "gain": float(gain[r].sum(-1).mean())})
    return pd.DataFrame(rows)


def trace(run_id: str, root: str, points: int = 6) -> pd.DataFrame:
    """Training ``Q_tot`` and TD loss (mean over seeds) at ``points`` iterations."""
    ep = runner.load_result(run_id, root).episodes
    ep = ep[ep.phase == "train"].groupby("iteration")[["q_tot", "td_loss"]].mean()
    at = np.unique(np.linspace(0, len(ep) - 1, points).round().astype(int))
    return ep.iloc[at]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="run id of a stored nav_*_qmix run")
    p.add_argument("--root", default="runs/bench_nav", help="runs folder")
    p.add_argument("--episodes", type=int, default=10, help="greedy episodes per seed")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    trainer = stored_trainer(a.run, a.root, "navigation", "qmix")
    table = probe(trainer, a.episodes)
    with pd.option_context("display.width", 120, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
        print("\ntraining log (mean over seeds):")
        print(trace(a.run, a.root).to_string())
    return table


if __name__ == "__main__":
    main()
