"""Throughput of the game kernels (``econsim bench``): env-steps per second with random play;
and of training end to end (``econsim bench --train``, :func:`train_throughput`).

What one measured step holds: the agents' actions are drawn, the game steps every world
(which observes the new state), and finished worlds are reset and observed again (what a
rollout does each step).
Actions are drawn uniformly among the **legal** ones of games that declare an action mask
(capability ``ActionMask``, e.g. GTB: a gather, build or trade that can happen; this is
what the AI-Economist's own harness does), so the economy moves as it does in play;
``sampler="uniform"`` draws over all actions (most of them no-ops in GTB). A case first
plays ``warmup`` seconds (allocations, caches, SUMO loading its worlds), then ``rounds``
timed rounds of ``seconds`` each: the table gives the median with the min and max over
rounds (machines are noisy; compare medians measured side by side), env-steps/s (worlds x
steps) and agent-steps/s (x agents). ``checksum`` hashes every numeric array of the final
state and of the last observation: it reads the kernel's whole output, and two kernels that
play the same seed, batch and number of ``steps`` must agree on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from econsim import envs
from econsim.core import make_rng, reset_done
from econsim.core.capabilities import ActionMask, Processes, has
from econsim.core.registry import bench_of, unavailable
from econsim.core.timing import outermost

MAX_BATCH = 1_000_000  # worlds at once
MAX_SECONDS = 600.0  # per round
MAX_ROUNDS = 100
MAX_VALUES = 2**28  # observation values of one step of all worlds (about 1 GB of float32)
SAMPLERS = ("masked", "uniform")


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


def checksum(*parts: Any) -> str:
    """A hash (blake2b, 16 hex digits) of every numeric array in ``parts`` (arrays, or
    dataclass states of arrays): their dtypes, shapes and bytes."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        arrays = ([getattr(part, f.name) for f in dataclasses.fields(part)]
                  if dataclasses.is_dataclass(part) else [part])
        for a in arrays:
            a = np.ascontiguousarray(a)
            if a.dtype.kind in "biuf":
                digest.update(f"{a.dtype.str}{a.shape}".encode())
                digest.update(a.tobytes())
    return digest.hexdigest()


def pick_legal(legal: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``legal [..., A]`` bool, ``u [...]`` uniforms in [0, 1) -> the ``floor(u * L)``-th
    legal action of each row (``L`` legal ones; 0 where none is): uniform over the legal
    actions with one draw per row."""
    if np.shape(u) != np.shape(legal)[:-1]:
        raise ValueError(f"pick_legal: one uniform per row of legal actions, got {np.shape(u)} "
                         f"for {np.shape(legal)}")
    rows = np.ascontiguousarray(legal).reshape(-1, legal.shape[-1])
    return _pick(rows, np.ascontiguousarray(u, np.float64).reshape(-1)).reshape(u.shape)


@njit(cache=True, nogil=True)
def _pick(rows: np.ndarray, flat: np.ndarray) -> np.ndarray:
    out = np.zeros(flat.shape[0], np.int64)
    for r in range(rows.shape[0]):
        n = 0
        for a in range(rows.shape[1]):
            n += rows[r, a]
        k = int(flat[r] * n)
        for a in range(rows.shape[1]):  # the k-th legal action (0-based)
            k -= rows[r, a]
            if k < 0:
                out[r] = a
                break
    return out


def _sampler(game: Any, sampler: str, rng: np.random.Generator, batch: int):
    """``state -> actions [batch, n_agents]``: uniform over the legal actions (``masked``,
    games with ``ActionMask``; ``pick_legal``) or over all actions."""
    if sampler == "masked" and has(game, ActionMask):
        def masked(state: Any) -> np.ndarray:
            legal = game.action_mask(state)
            return pick_legal(legal, rng.random(legal.shape[:-1]))
        return masked
    return lambda state: game.action_space.sample(rng, (batch, game.n_agents))


def random_play(game: Any, batch: int, sampler: str, rng: np.random.Generator
                ) -> Iterator[tuple[Any, np.ndarray, Any]]:
    """The benchmark's play (module docstring), one ``(state, obs, step)`` per step of all
    ``batch`` worlds: random actions (``sampler``: ``masked`` draws among the legal ones of
    an ``ActionMask`` game), the step with the observation it returns, finished worlds reset
    and observed again."""
    act = _sampler(game, sampler, rng, batch)
    state = game.reset(batch, rng)
    obs = game.observe(state)  # a rollout observes its first state (SUMO: loads worlds)
    while True:
        step = game.step(state, act(state), rng)
        state, obs = step.state, step.obs
        if step.done.any():  # finished worlds start again: observe them
            state = reset_done(game, state, step.done, rng)
            obs = game.observe(state)
        yield state, obs, step


def measure(env: str, params: dict, batch: int = 4096, seconds: float = 1.0,
            rounds: int = 3, warmup: float = 0.5, sampler: str = "masked",
            seed: int = 0) -> dict[str, Any]:
    """Time ``rounds`` rounds of ``seconds`` of :func:`random_play` after ``warmup``
    seconds: ``env_steps_per_s`` (median), ``min``, ``max``, ``agent_steps_per_s``,
    ``sampler`` (as used: ``uniform`` for a game without an action mask), ``steps`` (timed
    world-steps), ``checksum`` (of the final state and observation)."""
    _check(batch, seconds, rounds, warmup, sampler)
    game = envs.make(env, **params)
    values = batch * game.n_agents * math.prod(game.observation_space.shape)
    if values > MAX_VALUES:
        raise ValueError(f"--batch: {batch:,} is not allowed for {env}: {values:,} observation "
                         f"values per step (allowed: at most {MAX_VALUES:,})")
    used = "masked" if sampler == "masked" and has(game, ActionMask) else "uniform"
    try:
        play = random_play(game, batch, used, make_rng(seed, "bench"))
        last: tuple = ()

        def timed(duration: float) -> tuple[int, float]:
            nonlocal last
            steps, t0 = 0, time.perf_counter()
            while True:
                last = next(play)
                steps += batch
                elapsed = time.perf_counter() - t0
                if elapsed >= duration:
                    return steps, elapsed

        if warmup > 0:
            timed(warmup)
        rates, total = [], 0
        for _ in range(rounds):
            steps, elapsed = timed(seconds)
            rates.append(steps / elapsed)
            total += steps
        digest = checksum(*last[:2])  # the final state and observation
    finally:
        if has(game, Processes):  # SUMO workers stop with the case
            game.close()
    median = statistics.median(rates)
    return {"env_steps_per_s": round(median), "min": round(min(rates)),
            "max": round(max(rates)), "agent_steps_per_s": round(median * game.n_agents),
            "sampler": used, "steps": total, "checksum": digest}


def env_steps_per_second(env: str, params: dict, batch: int = 4096,
                         seconds: float = 1.0, seed: int = 0) -> float:
    """World-steps per second of one round of ``seconds`` without warm-up (:func:`measure`)."""
    return float(measure(env, params, batch, seconds, rounds=1, warmup=0.0,
                         seed=seed)["env_steps_per_s"])


def _check(batch: int | None, seconds: float, rounds: int, warmup: float,
           sampler: str) -> None:
    """The table's settings, before anything is measured (one-line ValueErrors)."""
    if batch is not None and (isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH):
        raise ValueError(f"--batch: {batch!r} is not allowed (allowed: 1 to {MAX_BATCH:,} worlds)")
    for name, value, low_open in (("--seconds", seconds, True), ("--warmup", warmup, False)):
        if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value)
                                           and (value > 0 if low_open else value >= 0)
                                           and value <= MAX_SECONDS):
            bound = "more than 0" if low_open else "0 or more"
            raise ValueError(f"{name}: {value!r} is not allowed (allowed: {bound}, at most "
                             f"{MAX_SECONDS:g})")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise ValueError(f"--rounds: {rounds!r} is not allowed (allowed: 1 to {MAX_ROUNDS})")
    if sampler not in SAMPLERS:
        raise ValueError(f"--sampler: {sampler!r} is not allowed (allowed: "
                         f"{', '.join(SAMPLERS)})")


def speed_table(names: list[str] | None = None, batch: int | None = None,
                seconds: float = 1.0, rounds: int = 3, warmup: float = 0.5,
                sampler: str = "masked") -> pd.DataFrame:
    """One row per game and batch size (:func:`measure`) at ``batch`` worlds (default: the
    game's declared ``bench_batches``, else 4096). Without ``names``: every game whose
    optional packages are installed (``econsim.core.registry.unavailable``); a game named
    explicitly is measured or fails with its one-line reason."""
    _check(batch, seconds, rounds, warmup, sampler)
    cases = default_cases()
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
    rows = []
    for name in chosen:
        env, params, batches = cases[name]
        for b in (batch,) if batch is not None else batches:
            rows.append({"game": name, "batch": b,
                         **measure(env, params, b, seconds, rounds, warmup, sampler)})
    return pd.DataFrame(rows)


def machine() -> dict[str, Any]:
    """Where a table was measured: CPUs, torch threads, platform and the versions of
    econsim and its libraries (``econsim.report.versions``)."""
    import torch

    from econsim.report import versions

    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(), **versions()}


def json_path(path: str | Path) -> Path:
    """``--json``: a file name ending in .json (one-line ValueError otherwise)."""
    path = Path(path)
    if path.suffix != ".json" or path.is_dir():
        raise ValueError(f"--json: {str(path)!r} is not allowed (give a file name ending "
                         "in .json)")
    return path


def write_json(path: str | Path, table: pd.DataFrame, settings: dict[str, Any]) -> Path:
    """The table as JSON (``{"settings", "machine", "rows"}``), written atomically."""
    from econsim.files import write_text

    path = json_path(path)
    doc = {"settings": settings, "machine": machine(),
           "rows": json.loads(table.to_json(orient="records"))}
    write_text(path, json.dumps(doc, indent=2))  # folders made, atomically
    return path


# ------------------------------------------------------------------ training throughput


@contextlib.contextmanager
def timed_games(clock: dict[str, float]) -> Iterator[None]:
    """While inside, every registered game's ``reset``, ``step`` and ``observe`` add their
    time to ``clock["env_s"]`` (the outermost call only) and ``step`` its worlds to
    ``clock["env_steps"]``; the classes are restored on exit."""
    clock.setdefault("env_s", 0.0)
    clock.setdefault("env_steps", 0)
    depth = [0]  # reset, step and observe nest (a step observes): the outermost counts

    def time_of(name: str):
        def record(seconds: float, args: tuple) -> None:
            clock["env_s"] += seconds
            if name == "step":  # (self, state, actions, rng): the actions' worlds
                clock["env_steps"] += int(np.shape(args[2])[0])
        return record

    saved = []
    for env in envs.names():
        cls = envs.game_class(env)
        for name in ("reset", "step", "observe"):
            if name in vars(cls):
                saved.append((cls, name, vars(cls)[name]))
                setattr(cls, name, outermost(vars(cls)[name], depth, time_of(name)))
    try:
        yield
    finally:
        for cls, name, fn in reversed(saved):
            setattr(cls, name, fn)


def matmul_peak(size: int = 512, seconds: float = 0.3) -> float:
    """GFLOP/s of a float32 ``size x size`` matrix product with torch's current threads:
    the machine's practical ceiling for the networks' dense layers."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - t0) / 1e9


def train_throughput(scenario: str | Path, iterations: int = 3, seeds: list[int] | None = None,
                     warmup: int = 1, threads: int = 1, dense: bool = False) -> dict[str, Any]:
    """End-to-end training speed of ``scenario`` (``econsim bench --train``): ``warmup``
    untimed iterations, then ``iterations`` timed ones: env-steps/s (worlds x steps the
    games stepped, training only), the share of the time in the games (reset, step,
    observe), in inference (the rollouts, ``learners.rollout.timed_rollout``, less their
    games) and in the update (the rest), the learner's achieved GFLOP/s (torch's
    ``FlopCounterMode`` over one more iteration, over the inference and update time) beside
    :func:`matmul_peak`, with ``threads`` torch threads (runs train with 1). The FLOPs
    include the sparse first layer's (``learners.sparse``: 2 per multiply-add of a non-zero);
    ``dense=True`` keeps every input dense (the same numbers, for comparison)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from econsim import scenario as scenario_mod
    from learners import sparse
    from learners.rollout import recording

    if isinstance(iterations, bool) or not isinstance(iterations, int) \
            or not 1 <= iterations <= 10_000:
        raise ValueError(f"--iterations: {iterations!r} is not allowed (allowed: 1 to 10,000)")
    sc = scenario_mod.load(scenario)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with sparse.dense_only() if dense else contextlib.nullcontext():
            trainer = sc.make_trainer(seeds if seeds is not None else sc.seeds)
            try:
                for _ in range(warmup):
                    trainer.iterate()
                clock: dict[str, float] = {}
                with timed_games(clock), recording() as rollouts:
                    t0 = time.perf_counter()
                    for _ in range(iterations):
                        trainer.iterate()
                    wall = time.perf_counter() - t0
                counted = sparse.flops()
                with FlopCounterMode(display=False) as flops:
                    trainer.iterate()
                counted = flops.get_total_flops() + sparse.flops() - counted
            finally:
                if has(trainer.game, Processes):
                    trainer.game.close()
        peak = matmul_peak()
    finally:
        torch.set_num_threads(before)
    env = clock["env_s"]
    inference = max(rollouts["rollout_s"] - env, 0.0)  # the rollouts less their games
    update = max(wall - env - inference, 1e-9)
    return {"scenario": sc.name, "seeds": len(trainer.seeds), "iterations": iterations,
            "env_steps": int(clock["env_steps"]), "wall_s": round(wall, 3),
            "env_steps_per_s": round(clock["env_steps"] / wall),
            "env_share": round(env / wall, 3), "inference_share": round(inference / wall, 3),
            "update_share": round(update / wall, 3),
            "learner_gflops": round(counted * iterations
                                    / max(wall - env, 1e-9) / 1e9, 2),
            "matmul_peak_gflops": round(peak, 1), "threads": threads}
