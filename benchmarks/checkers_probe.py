"""What a trained Checkers CM3 team does, and whether its critics see the other agent.

For a stored ``checkers_cm3`` run (its last checkpoint, every seed):

* one greedy episode per seed from the start: steps, each agent's red and yellow items and
  the joint actions (``A/B`` per step: ``s`` stay, ``U``, ``D``, ``L``, ``R``);
* the critics at the start state, where A's ``left`` takes the yellow item at (0, 7), one
  of B's: the change of B's global Q_B(s, a, g^B) and of the credit function Q_c(s, a^A,
  g^B) from A staying to A stepping left (B moving down in both; the true effect is about
  -1, the item B loses), of A's own Q_A, and the actor's probability of that step;
* every step of that greedy episode where an agent takes an item of the other's colour:
  the global Q of both goals for the step taken and for staying instead (the other agent's
  action unchanged). Equal values (staying worth the step taken less one step's discount)
  mean the critics expect the item to be lost anyway under the current policies, i.e. that
  waiting pays only if the other agent changes its path too.

    .venv/bin/python benchmarks/checkers_probe.py checkers_cm3-20261202-184858-50d5 \\
        --root runs/bench_cm3
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import stored_trainer  # noqa: E402
from econsim.envs.checkers import DOWN, LEFT, STAY  # noqa: E402
from learners.multigoal import Transitions  # noqa: E402

LETTERS = "sUDLR"  # stay, up, down, left, right


@torch.no_grad()
def greedy_episode(trainer, r: int) -> tuple[str, list[tuple[Any, np.ndarray]]]:
    """One greedy episode of replica ``r`` from the start: a line of what happened and the
    ``(state, joint action)`` of every step."""
    game, one = trainer.game, trainer.replica(r)
    state, steps = game.reset(1, np.random.default_rng(0)), []
    for _ in range(game.max_steps):
        obs = torch.from_numpy(game.observe(state)).to(torch.get_default_dtype())
        act = one.policy(one.params, obs.reshape(1, 1, game.n_agents, -1), 0.0)[0, 0]
        act = act.argmax(-1).numpy()[None]
        steps.append((copy.deepcopy(state), act))  # step works in place
        step = game.step(state, act, None)
        state = step.state
        if step.done.all():
            break
    d = game.describe(state)
    moves = " ".join("".join(LETTERS[a] for a in act[0]) for _, act in steps)
    return (f"{len(steps)} steps; A red {d['red'][0, 0]} yellow {d['yellow'][0, 0]}, B red "
            f"{d['red'][0, 1]} yellow {d['yellow'][0, 1]}: {moves}"), steps


def minibatch(trainer, state, acts: torch.Tensor) -> Transitions:
    """The one-world ``state`` under each joint action of ``acts [S, N]``, for every
    replica: ``[R, S, ...]``."""
    game, R, S = trainer.game, trainer.R, len(acts)
    dtype = torch.get_default_dtype()
    obs = torch.from_numpy(game.observe(state)).to(dtype)
    s_env, s_ag = (torch.from_numpy(x).to(dtype) for x in game.global_state(state))
    return Transitions(game, {
        "obs": obs.expand(S, -1, -1)[None].expand(R, -1, -1, -1),
        "s_env": s_env.expand(S, -1)[None].expand(R, -1, -1),
        "s_ag": s_ag.expand(S, -1, -1)[None].expand(R, -1, -1, -1),
        "actions": acts[None].expand(R, -1, -1)})


@torch.no_grad()
def wrong_steps(trainer, r: int, steps: list[tuple[Any, np.ndarray]]) -> list[str]:
    """For each step of ``steps`` where an agent m takes an item of the other's colour: the
    global Q_n(s, a) of both goals n for the joint action taken and with m staying."""
    game, out = trainer.game, []
    for t, (state, act) in enumerate(steps):
        info = game.step(copy.deepcopy(state), act, None).info
        for m, item in ((0, "yellow"), (1, "red")):
            if not info[item][0, m]:
                continue
            acts = torch.from_numpy(np.repeat(act, 2, axis=0))
            acts[1, m] = STAY
            q = trainer.shape["q"].apply(trainer.q, *trainer.q_inputs(
                minibatch(trainer, state, acts), acts[None].expand(trainer.R, -1, -1)))
            taken, stay = q[r, 0, :, 0], q[r, 1, :, 0]
            out.append(f"t={t} {'AB'[m]} takes a {item} ({LETTERS[act[0, m]]}): Q_A, Q_B "
                       f"{float(taken[0]):.2f}, {float(taken[1]):.2f}; staying "
                       f"{float(stay[0]):.2f}, {float(stay[1]):.2f}")
    return out


@torch.no_grad()
def critics_at_start(trainer) -> list[str]:
    """Per seed: how Q_B, Q_c(., g^B) and Q_A change when A takes the yellow at (0, 7)."""
    state = trainer.game.reset(1, np.random.default_rng(0))
    mb = minibatch(trainer, state, torch.tensor([[STAY, DOWN], [LEFT, DOWN]]))
    q = trainer.shape["q"].apply(trainer.q, *trainer.q_inputs(mb, mb.actions))[..., 0]
    qc = trainer.credit_values(trainer.qc, mb, actions=mb.actions)  # [R, S, n, m]
    pi = trainer.policy(trainer.actor, mb.obs, 0.0)[:, 0]  # [R, m, A]
    return [f"Q_B {float(q[r, 1, 1] - q[r, 0, 1]):+.2f}, Q_c(a^A, g^B) "
            f"{float(qc[r, 1, 1, 0] - qc[r, 0, 1, 0]):+.2f}, Q_A "
            f"{float(q[r, 1, 0] - q[r, 0, 0]):+.2f}, pi_A(left) {float(pi[r, 0, LEFT]):.2f}"
            for r in range(trainer.R)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="run id of a stored checkers_cm3 run")
    p.add_argument("--root", default=None, help="folder holding run folders")
    args = p.parse_args(argv)
    trainer = stored_trainer(args.run, args.root, "checkers", "cm3")
    print(f"{args.run} at iteration {trainer.iteration} (stage {trainer.stage})")
    critics = critics_at_start(trainer)
    for r, seed in enumerate(trainer.seeds):
        line, steps = greedy_episode(trainer, r)
        print(f"seed {seed}: {line}")
        print(f"  A takes B's yellow at the start: {critics[r]}")
        for w in wrong_steps(trainer, r, steps):
            print(f"  {w}")


if __name__ == "__main__":
    main()
