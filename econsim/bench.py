"""Throughput of the game kernels with random actions (``econsim bench``)."""

from __future__ import annotations

import math
import time

import pandas as pd

from econsim import envs
from econsim.core import make_rng, reset_done
from econsim.core.registry import bench_of, unavailable

MAX_BATCH = 1_000_000  # worlds at once
MAX_SECONDS = 600.0  # per case
MAX_VALUES = 2**28  # observation values of one step of all worlds (about 1 GB of float32)


def default_cases() -> dict[str, tuple[str, dict, tuple[int, ...]]]:
    """Every registered game, as it declares (``econsim.core.registry.bench_of``: its
    ``bench_variants``, else its defaults; its ``bench_batches``): case -> (env, params,
    batch sizes)."""
    cases: dict[str, tuple[str, dict, tuple[int, ...]]] = {}
    for env in envs.names():
        variants, batches = bench_of(envs.game_class(env))
        for case, params in (variants or {env: {}}).items():
            cases[case] = (env, params, batches)
    return cases


def env_steps_per_second(env: str, params: dict, batch: int = 4096,
                         seconds: float = 1.0, seed: int = 0) -> float:
    """World-steps per second: random actions, finished worlds reset as they end."""
    game = envs.make(env, **params)
    values = batch * game.n_agents * math.prod(game.observation_space.shape)
    if values > MAX_VALUES:
        raise ValueError(f"--batch: {batch:,} is not allowed for {env}: {values:,} observation "
                         f"values per step (allowed: at most {MAX_VALUES:,})")
    rng = make_rng(seed, "bench")
    state = game.reset(batch, rng)
    game.observe(state)  # a rollout observes its first state (SUMO: loads the worlds)
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
    game's declared ``bench_batches``, else 4096). Without ``names``: every game whose
    optional packages are installed (``econsim.core.registry.unavailable``); a game named
    explicitly is measured or fails with its one-line reason."""
    rows = []
    cases = default_cases()
    if batch is not None and (isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH):
        raise ValueError(f"--batch: {batch!r} is not allowed (allowed: 1 to {MAX_BATCH:,} worlds)")
    if not (isinstance(seconds, int | float) and math.isfinite(seconds)
            and 0 < seconds <= MAX_SECONDS):
        raise ValueError(f"--seconds: {seconds!r} is not allowed (allowed: more than 0, at most "
                         f"{MAX_SECONDS:g})")
    unknown = [n for n in names or [] if n not in cases and n not in envs.names()]
    if unknown:
        raise ValueError(f"bench: unknown game {unknown[0]!r} (allowed: "
                         f"{', '.join(sorted({*cases, *envs.names()}))})")
    if not names:  # every game that can run here (not those missing optional packages)
        names = [c for c, (env, _, _) in cases.items()
                 if unavailable(envs.game_class(env)) is None]
    chosen = []  # a game's name stands for all its declared variants
    for name in names:
        chosen += [name] if name in cases else [c for c, v in cases.items() if v[0] == name]
    for name in chosen:
        env, params, batches = cases[name]
        for b in (batch,) if batch is not None else batches:
            sps = env_steps_per_second(env, params, b, seconds)
            rows.append({"game": name, "batch": b, "env_steps_per_s": round(sps)})
    return pd.DataFrame(rows)

