"""Batched rollout helpers: run a batch of episodes and keep them as time-major arrays.

Episodes in a batch may end at different steps. ``Trajectory.mask[t, b]`` is 1 while world
``b`` was still in its episode at step ``t``; steps after the end are recorded but masked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from econsim.core.capabilities import SeesCurrentActions, has
from econsim.core.game import Game

ActFn = Callable[[np.ndarray, int], np.ndarray]  # (obs [B, N, ...], t) -> actions [B, N]


@dataclass
class Trajectory:
    """Time-major record of a batch of episodes (arrays ``[T, batch, ...]``)."""

    obs: np.ndarray  # [T, B, N, *obs] observation each action was chosen from
    actions: np.ndarray  # [T, B, N]
    rewards: np.ndarray  # [T, B, N] extrinsic rewards
    mask: np.ndarray  # [T, B] 1.0 while the episode is running
    last_obs: np.ndarray  # [T, B, N, *obs] observation after each step
    done: np.ndarray  # [T, B] the episode ended at this step
    info: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def returns(self) -> np.ndarray:
        """Undiscounted episode return per world and agent, ``[B, N]``."""
        return (self.rewards * self.mask[..., None]).sum(0)

    @property
    def lengths(self) -> np.ndarray:
        return self.mask.sum(0)


class Recorder:
    """Collects steps of a batched episode; ``finish()`` returns a ``Trajectory``."""

    def __init__(self) -> None:
        self.rows: dict[str, list[np.ndarray]] = {}
        self.info: dict[str, list[np.ndarray]] = {}
        self.alive: np.ndarray | None = None

    def add(self, obs, actions, step) -> np.ndarray:
        """Record one step; returns the mask (1 = running) the step was recorded with."""
        if self.alive is None:
            self.alive = np.ones(step.done.shape[0], dtype=np.float32)
        mask = self.alive.copy()
        for k, v in (("obs", obs), ("actions", actions), ("rewards", step.reward),
                     ("mask", mask), ("last_obs", step.obs), ("done", step.done & (mask > 0))):
            self.rows.setdefault(k, []).append(np.asarray(v))
        for k, v in step.info.items():
            self.info.setdefault(k, []).append(np.asarray(v))
        self.alive = self.alive * (1.0 - step.done.astype(np.float32))
        return mask

    @property
    def all_done(self) -> bool:
        return self.alive is not None and not self.alive.any()

    def finish(self) -> Trajectory:
        s = {k: np.stack(v) for k, v in self.rows.items()}
        return Trajectory(info={k: np.stack(v) for k, v in self.info.items()}, **s)


def rollout(game: Game, act: ActFn, batch: int, rng: np.random.Generator,
            max_steps: int | None = None) -> Trajectory:
    """Run ``batch`` episodes of ``game`` with ``act`` choosing every agent's action."""
    state = game.reset(batch, rng)
    obs = game.observe(state)
    rec = Recorder()
    for t in range(max_steps or game.max_steps):
        actions = act(obs, t)
        step = game.step(state, actions, rng)
        rec.add(obs, actions, step)
        state, obs = step.state, step.obs
        if rec.all_done:
            break
    return rec.finish()


def discounted_returns(rewards: np.ndarray, mask: np.ndarray, gamma: float) -> np.ndarray:
    """Reward-to-go ``G_t = sum_l gamma^(l-t) r_l`` over time axis 0 (masked), numpy."""
    out = np.zeros_like(rewards)
    running = np.zeros_like(rewards[0])
    m = mask.reshape(mask.shape + (1,) * (rewards.ndim - mask.ndim))
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = (rewards[t] + gamma * running) * m[t]
        out[t] = running
    return out


def watched(game: Game) -> tuple[tuple[int, int], ...]:
    """The game's ``(observer, actor)`` pairs (capability ``SeesCurrentActions``), else ()."""
    return tuple(game.sees_current_action) if has(game, SeesCurrentActions) else ()


def seen_action_size(game: Game) -> int:
    """Length of the current-action features ``seen_actions`` appends to each observation."""
    pairs = watched(game)
    if not pairs:
        return 0
    per_observer = max(sum(1 for o, _ in pairs if o == i) for i in range(game.n_agents))
    return per_observer * game.action_space.n


def seen_actions(game: Game, actions: np.ndarray) -> np.ndarray:
    """One-hots of the actions an agent may see before it moves (``sees_current_action``).

    ``actions [B, N]`` -> ``[B, N, seen_action_size(game)]``; rows of agents who see nobody
    are zero. Agents whose actions are seen move first; observers then choose.
    """
    A = game.action_space.n
    out = np.zeros((actions.shape[0], game.n_agents, seen_action_size(game)), np.float32)
    slot = [0] * game.n_agents
    for observer, actor in watched(game):
        k = slot[observer]
        out[np.arange(actions.shape[0]), observer, k * A + actions[:, actor]] = 1.0
        slot[observer] += 1
    return out


def reset_done(game: Game, state, done: np.ndarray, rng: np.random.Generator):
    """Reset the worlds whose episode is ``done`` (fields of a dataclass State), in place."""
    if not done.any():
        return state
    fresh = game.reset(done.shape[0], rng)
    for f in dataclasses.fields(state):
        old, new = getattr(state, f.name), getattr(fresh, f.name)
        mask = done.reshape(done.shape + (1,) * (old.ndim - 1))
        setattr(state, f.name, np.where(mask, new, old))
    return state
