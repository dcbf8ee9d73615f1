"""Why a chapter-3 QMIX team scores what it does: its greedy actions, the size of its
Q-values, the gain of its mixer and how much the target's max overestimates.

For a stored QMIX run on a multi-goal game (its last checkpoint, every seed), or with
``--scenario`` for the untrained networks of a shipped scenario, over ``--episodes`` greedy
evaluation episodes (the evaluation streams of the trainer's iteration), the steps of each
episode up to its end:

* each agent's most frequent greedy action and its share of the agent's steps (one action
  at ~100% whatever the state: the agent no longer steers; in navigation, with no walls, it
  drifts off);
* the mean agent Q-value ``Q_n(o^n, a^n)`` of the actions played, the team's discounted
  return actually obtained from those states to the episode's end, and ``Q_tot`` there
  (Diss §3.4, QMIX); with negative rewards, a ``Q_tot`` above that return is an
  overestimate (in navigation ``Q_tot`` also counts the steps after the step cap, which only
  lower the true value);
* the mixer's gain ``sum_n dQ_tot / dq_n`` at those states: how much ``Q_tot`` moves per
  unit of agent Q;
* ``overestimate``: the target's ``Q_tot'(s', max_a' Q'_n)`` (``qmix_target``) less
  ``Q_tot'`` at the agents' mean Q over actions, at the next states, against the team's
  reward per step (``reward``): when the first is larger than the size of the second, every
  backup raises the values (``learners.qmix``, ``out_init``);
* for a stored run, from its log: the training ``Q_tot`` and TD loss at a few iterations.

    .venv/bin/python benchmarks/qmix_probe.py nav_cross_qmix-20261203-034058-2735 \\
        --root runs/bench_nav
    .venv/bin/python benchmarks/qmix_probe.py --scenario nav_cross_qmix --out-init glorot
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
from econsim import runner, scenario  # noqa: E402
from econsim.cli import parse_seeds  # noqa: E402
from econsim.core.capabilities import MultiGoal, has  # noqa: E402
from learners.functional import reward_to_go  # noqa: E402
from learners.multigoal import Transitions  # noqa: E402
from learners.qmix import qmix_target  # noqa: E402
from learners.rollout import Batch  # noqa: E402


def play(trainer, episodes: int) -> tuple[Batch, Transitions, torch.Tensor]:
    """The trainer's evaluation episodes (``MultiGoalTrainer.evaluation_batch``): the batch,
    its transitions ``[R, T*B]`` (time-major within a replica) and which of them are steps
    of an episode (not after its end)."""
    batch = trainer.evaluation_batch(episodes)
    fields, valid = trainer.transitions(batch)
    return batch, Transitions(trainer.game, fields), valid


def returns(trainer, mb: Transitions, steps: int, gamma: float) -> torch.Tensor:
    """The team's discounted return from each transition to its episode's end, ``[R, T*B]``
    (steps after an episode's end pay nothing)."""
    team = trainer.team_reward(mb)
    R, TB = team.shape
    return reward_to_go(team.reshape(R, steps, TB // steps), gamma).reshape(R, TB)


def probe(trainer, episodes: int) -> pd.DataFrame:
    """One row per seed x agent of what the greedy team does and what its networks say."""
    batch, mb, valid = play(trainer, episodes)
    mix = trainer.mixer_shape
    q = trainer.agent_q(trainer.q, mb.obs).detach()
    taken = q.gather(-1, mb.actions[..., None].long())[..., 0].requires_grad_(True)
    q_tot = mix.apply(trainer.mixer, taken, trainer.mixer_state(mb))
    gain, = torch.autograd.grad(q_tot.sum(), taken)
    q_tot = q_tot.detach()
    with torch.no_grad():  # the target's bootstrap term (gamma 1, no reward) less the mean's
        q_next = trainer.agent_q(trainer.q_t, mb.next_obs)
        s_next, zero = trainer.mixer_state(mb, True), torch.zeros_like(q_tot)
        over = (qmix_target(mix, trainer.mixer_t, q_next, s_next, zero, zero, 1.0,
                            next_legal=mb.legal(True))
                - mix.apply(trainer.mixer_t, q_next.mean(-1), s_next))
    ret = returns(trainer, mb, batch.mask.shape[0], trainer.cfg.gamma)
    team = trainer.team_reward(mb)
    names, rows = trainer.game.action_names, []
    for r, seed in enumerate(trainer.seeds):
        v = valid[r]
        for n in range(trainer.N):
            count = torch.bincount(mb.actions[r, v, n].long(), minlength=trainer.A)
            rows.append({
                "seed": seed, "agent": n, "top_action": names[int(count.argmax())],
                "top_share": float(count.max() / count.sum()),
                "agent_q": float(taken[r, v, n].detach().mean()),
                "q_spread": float((q[r, v, n].amax(-1) - q[r, v, n].amin(-1)).mean()),
                "q_tot": float(q_tot[r, v].mean()), "return": float(ret[r, v].mean()),
                "gain": float(gain[r, v].sum(-1).mean()),
                "overestimate": float(over[r, v].mean()), "reward": float(team[r, v].mean())})
    return pd.DataFrame(rows)


def trace(run_id: str, root: str, points: int = 6) -> pd.DataFrame:
    """Training ``Q_tot`` and TD loss (mean over seeds) at ``points`` iterations."""
    ep = runner.load_result(run_id, root).episodes
    ep = ep[ep.phase == "train"].groupby("iteration")[["q_tot", "td_loss"]].mean()
    at = np.unique(np.linspace(0, len(ep) - 1, points).round().astype(int))
    return ep.iloc[at]


def untrained(name: str, seeds: list[int], out_init: str | None):
    """The untrained trainer of shipped scenario ``name`` (a QMIX one on a multi-goal game),
    with ``out_init`` overriding the scenario's."""
    data = scenario.load(name).resolved()
    if data["algorithm"]["name"] != "qmix":
        raise SystemExit(f"{name} is a {data['algorithm']['name']} scenario, not qmix")
    if out_init:
        data["algorithm"]["out_init"] = out_init
    return scenario.from_dict(data, name).make_trainer(seeds)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="?", help="run id of a stored QMIX run on a multi-goal game")
    p.add_argument("--root", default="runs/bench_nav", help="runs folder of the stored run")
    p.add_argument("--scenario", help="instead of a run: the untrained networks of this "
                   "shipped QMIX scenario (e.g. nav_cross_qmix)")
    p.add_argument("--out-init", choices=("glorot", "zero"),
                   help="with --scenario: the agent network's output layer at the start")
    p.add_argument("--seeds", default="0-2", help="with --scenario: seeds (e.g. 0-2)")
    p.add_argument("--episodes", type=int, default=10, help="greedy episodes per seed")
    a = p.parse_args(argv)
    if (a.run is None) == (a.scenario is None):
        p.error("give a run id or --scenario, not both")
    torch.set_num_threads(1)
    trainer = (untrained(a.scenario, parse_seeds(a.seeds), a.out_init) if a.scenario
               else stored_trainer(a.run, a.root, None, "qmix"))
    if not has(trainer.game, MultiGoal):
        raise SystemExit(f"{a.run or a.scenario}: the probe reads chapter 3's multi-goal "
                         f"games, not {type(trainer.game).__name__}")
    table = probe(trainer, a.episodes)
    with pd.option_context("display.width", 140, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
        if a.run:
            print("\ntraining log (mean over seeds):")
            print(trace(a.run, a.root).to_string())
    return table


if __name__ == "__main__":
    main()
