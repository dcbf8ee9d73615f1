"""The STS2 kernel's output pinned bit for bit: every step's state, observation, global state,
reward, done, info and the script's decisions over random play, hashed. The pins were written
with the numpy kernel of 2026-12-04 (commit 33f2062, before the numba rewrite), so a faster
kernel must reproduce it exactly.

    PYTHONPATH=. .venv/bin/python tests/test_sts2_kernel_pins.py   # print the hashes
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from econsim import envs
from econsim.bench import checksum
from econsim.core import reset_done

# (batch, steps, params, crowd) -> hash of the whole play; crowd: start from a hand-made
# world with the six players packed around the centre (two of them on the same point)
CASES = {
    "batch 1, 700 steps": (1, 700, {}, False),
    "batch 6, 400 steps, kick-offs within the match, cap 150": (
        6, 400, {"end_on_goal": False, "max_steps": 150, "possession_reward": 0.001}, False),
    "batch 4, 300 steps, one scripted teammate, learners kick off": (
        4, 300, {"scripted_teammates": 1, "kickoff": "learners"}, False),
    "batch 5, 300 steps, two scripted teammates, opponents kick off, cap 80": (
        5, 300, {"scripted_teammates": 2, "kickoff": "opponents", "max_steps": 80,
                 "draw_penalty": 0.2}, False),
    "batch 3, 200 steps, a crowd, no end on goal": (
        3, 200, {"end_on_goal": False}, True),
}
PINS = {
    "batch 1, 700 steps": "516987a368db43f1",
    "batch 6, 400 steps, kick-offs within the match, cap 150": "453bddf52cbf80f9",
    "batch 4, 300 steps, one scripted teammate, learners kick off": "f5b68f5255452260",
    "batch 5, 300 steps, two scripted teammates, opponents kick off, cap 80": "cace86766508864b",
    "batch 3, 200 steps, a crowd, no end on goal": "0aefe3ff70a764d0",
}


def crowd(game, batch: int):
    """Six players within a few units of the centre, players 1 and 4 on the same point, the
    opponents' player 3 with the puck."""
    x = np.array([[-1.0, 0.5, 1.2, 0.0, 0.5, -0.6]] * batch)
    z = np.array([[-0.8, 0.0, 0.9, 0.7, 0.0, -0.2]] * batch)
    return game.make_state(x, z, holder=3)


def play(batch: int, steps: int, params: dict, packed: bool) -> str:
    """Uniform random actions (shots and passes without the puck and passes to oneself
    included); finished worlds reset; every output of every step hashed."""
    game = envs.make("sts2", **params)
    rng = np.random.default_rng(7)
    digest = hashlib.blake2b(digest_size=8)
    state = crowd(game, batch) if packed else game.reset(batch, rng)
    digest.update(checksum(state, game.observe(state), game.global_state(state)).encode())
    for _ in range(steps):
        actions = rng.integers(0, 9, (batch, 3))
        step = game.step(state, actions, rng)
        info = [step.info[k] for k in sorted(step.info)]
        digest.update(checksum(step.state, step.obs, game.global_state(step.state),
                               step.reward, step.done, *info, *game.script(step.state)).encode())
        state = step.state
        if step.done.any():
            state = reset_done(game, state, step.done, rng)
            digest.update(checksum(state, game.observe(state)).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("case", CASES)
def test_kernel_output_is_pinned(case):
    assert play(*CASES[case]) == PINS[case]


if __name__ == "__main__":
    for case, args in CASES.items():
        print(f"    {case!r}: {play(*args)!r},")
