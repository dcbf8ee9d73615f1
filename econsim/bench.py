"""Throughput of the game kernels with random actions (``econsim bench``)."""

from __future__ import annotations

import time

import pandas as pd

from econsim import envs
from econsim.core import make_rng, reset_done

# sizes of a game measured besides (or instead of) its defaults: case name -> (env, params)
VARIANTS: dict[str, dict[str, dict]] = {
    "escape_room": {"escape_room(2,1)": {"n_agents": 2, "n_required": 1},
                    "escape_room(3,2)": {"n_agents": 3, "n_required": 2},
                    "escape_room(5,3)": {"n_agents": 5, "n_required": 3}},
}
# batch sizes measured when none is given (default: 4096 worlds)
DEFAULT_BATCHES: dict[str, tuple[int, ...]] = {"gtb": (1, 256), "cleanup": (1, 256)}


def default_cases() -> dict[str, tuple[str, dict]]:
    """Every registered game (its variants, else its default parameters): case -> (env,
    params)."""
    cases: dict[str, tuple[str, dict]] = {}
    for env in envs.names():
        for case, params in VARIANTS.get(env, {env: {}}).items():
            cases[case] = (env, params)
    return cases


def env_steps_per_second(env: str, params: dict, batch: int = 4096,
                         seconds: float = 1.0, seed: int = 0) -> float:
    """World-steps per second: random actions, finished worlds reset as they end."""
    game = envs.make(env, **params)
    rng = make_rng(seed, "bench")
    state = game.reset(batch, rng)
    steps, t0 = 0, time.perf_counter()
    while True:
        actions = game.action_space.sample(rng, (batch, game.n_agents))
        step = game.step(state, actions, rng)
        state = reset_done(game, step.state, step.done, rng)
        steps += batch
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return steps / elapsed


def speed_table(names: list[str] | None = None, batch: int | None = None,
                seconds: float = 1.0) -> pd.DataFrame:
    """One row per game and batch size: env-steps/s at ``batch`` worlds (default: the
    game's ``DEFAULT_BATCHES``, else 4096)."""
    rows = []
    cases = default_cases()
    for name in names or list(cases):
        env, params = cases.get(name, (name, {}))
        for b in (batch,) if batch is not None else DEFAULT_BATCHES.get(name, (4096,)):
            sps = env_steps_per_second(env, params, b, seconds)
            rows.append({"game": name, "batch": b, "env_steps_per_s": round(sps)})
    return pd.DataFrame(rows)

