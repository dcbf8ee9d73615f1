"""The GTB kernel's output pinned bit for bit: every step's state, observation, reward, info
and action mask of random play, hashed. The pins were written with the numpy kernel of
2026-12-03 (commit cdc3a2f, before issue 15's rewrite), so a faster kernel must reproduce it
exactly. The numpy kernel itself gives other last bits on another processor (on 2026-12-04
the numpy kernel at cdc3a2f gave the second set below on an AVX2 machine, and so did the
compiled kernel; numpy's vector math differs across instruction sets), so ``PINS`` holds one
set per processor it was written on, and the play must give one of them.

    PYTHONPATH=. .venv/bin/python tests/test_gtb_kernel_pins.py   # print the hashes
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from econsim import envs
from econsim.bench import checksum
from econsim.core import reset_done
from mechanisms.tax import US_FEDERAL_RATES

# (batch, steps, params) -> hash of the whole play
CASES = {
    "batch 1, 220 steps": (1, 220, {}),
    "batch 5, 160 steps, US-federal taxes, faster regrowth": (
        5, 160, {"tax_rates": list(US_FEDERAL_RATES), "period_length": 40,
                 "max_steps": 120, "regen_prob": 0.05}),
    "batch 3, 130 steps, 3 agents, other sizes and rules": (
        3, 130, {"n_agents": 3, "houses_block": False, "gather_bonus": False,
                 "view_radius": 3, "max_price": 5, "max_orders": 2, "order_expiry": 20}),
    "batch 2, 150 steps, 8 agents, radius 0, expiry 1, any action": (
        2, 150, {"n_agents": 8, "starts": [(0, 0), (0, 14), (14, 0), (14, 14), (6, 6), (3, 3),
                                           (11, 3), (3, 11)],
                 "view_radius": 0, "order_expiry": 1, "regen_prob": 0.1}),
}
ANY_ACTION = {"batch 2, 150 steps, 8 agents, radius 0, expiry 1, any action"}  # illegal too
PINS = [
    {  # written 2026-12-04 on the machine of issue 15's rewrite
        "batch 1, 220 steps": "3da4544fa27cd9de",
        "batch 5, 160 steps, US-federal taxes, faster regrowth": "e6854cb598b0f23d",
        "batch 3, 130 steps, 3 agents, other sizes and rules": "6ac2e8304802d2b5",
        "batch 2, 150 steps, 8 agents, radius 0, expiry 1, any action": "88ebc63ba9bdd4a0",
    },
    {  # AVX2 (AMD EPYC), 2026-12-04: the numpy kernel at cdc3a2f gives these too
        "batch 1, 220 steps": "e6fbca2b6b6b499e",
        "batch 5, 160 steps, US-federal taxes, faster regrowth": "94ed3c6d76e7e80f",
        "batch 3, 130 steps, 3 agents, other sizes and rules": "6a88962d1c4e7631",
        "batch 2, 150 steps, 8 agents, radius 0, expiry 1, any action": "62ad4aa0e8c787a4",
    },
]


def play(batch: int, steps: int, params: dict, any_action: bool = False) -> str:
    """Masked random play (finished worlds reset; ``any_action``: uniform over all actions,
    illegal ones included), every output of every step hashed."""
    game = envs.make("gtb", **params)
    rng = np.random.default_rng(11)
    digest = hashlib.blake2b(digest_size=8)
    state = game.reset(batch, rng)
    digest.update(checksum(game.observe(state)).encode())
    for _ in range(steps):
        legal = game.action_mask(state)
        actions = np.argmax(np.where(legal | any_action, rng.random(legal.shape), -1.0), -1)
        step = game.step(state, actions, rng)
        info = [step.info[k] for k in sorted(step.info)]
        digest.update(checksum(legal, step.state, step.obs, step.reward, step.done,
                               *info).encode())
        state = step.state
        if step.done.any():
            state = reset_done(game, state, step.done, rng)
            digest.update(checksum(state, game.observe(state)).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("case", CASES)
def test_kernel_output_is_pinned(case):
    got = play(*CASES[case], any_action=case in ANY_ACTION)
    assert got in {pins[case] for pins in PINS}, (
        f"{case}: {got} is none of the pinned hashes (on a new kind of processor, pin the "
        "numpy kernel of commit cdc3a2f first)")


if __name__ == "__main__":
    for case, args in CASES.items():
        print(f"    {case!r}: {play(*args, any_action=case in ANY_ACTION)!r},")
