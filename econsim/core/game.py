"""The batch-first ``Game`` contract every environment kernel follows.

A game holds its rules once, as numpy code over a leading *batch* dimension of independent
worlds. Training drives it with many worlds at once; the Mesa face (``econsim.model``)
drives the same object with ``batch=1``. A game knows nothing about learners, Mesa or
mechanisms: everything those need is returned in ``Step.info``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from econsim.core.spaces import Box, Discrete


class Step(NamedTuple):
    """Result of ``Game.step``; every array has the batch as its leading dimension."""

    state: Any  # the game's State dataclass
    obs: np.ndarray  # [batch, n_agents, *obs_shape] observations of the new state
    reward: np.ndarray  # [batch, n_agents] float32 extrinsic rewards of this step
    done: np.ndarray  # [batch] bool: the episode of that world ended with this step
    info: dict[str, np.ndarray]  # named per-step events, e.g. "lever": [batch, n_agents]


@runtime_checkable
class Game(Protocol):
    """Batch-first multi-agent game (simultaneous moves).

    ``step`` may update the arrays of ``state`` in place and returns the new state; callers
    must use the returned state. Worlds whose episode is done keep stepping harmlessly
    until the caller resets them (rollouts mask those steps out).

    Every draw from ``rng`` must have the batch as its leading dimension (e.g.
    ``rng.random((batch, n))``, never a scalar draw shared by all worlds): trainers pass a
    ``ReplicaRNG`` that gives each seed's block of worlds its own stream, so that a seed's
    worlds are the same whatever other seeds run in the batch.
    """

    name: str
    n_agents: int
    max_steps: int
    observation_space: Box  # per agent
    action_space: Discrete  # per agent
    action_names: tuple[str, ...]

    def reset(self, batch: int, rng: np.random.Generator) -> Any: ...

    def step(self, state: Any, actions: np.ndarray, rng: np.random.Generator) -> Step: ...

    def observe(self, state: Any) -> np.ndarray: ...

    def describe(self, state: Any) -> dict[str, np.ndarray]:
        """Per-agent attributes ``[batch, n_agents]`` shown by the Mesa face."""
        ...

    # Optional: ``episode_metrics(actions [T, B, N], mask [T, B]) -> {name: [B]}``, summary
    # statistics of a game's episodes (e.g. the IPD's rate of mutual cooperation) that
    # trainers and the runner report next to the returns.


def check_actions(game: Game, actions: np.ndarray, batch: int) -> np.ndarray:
    """Validate an action array for ``game``; one-line ValueError naming what is wrong."""
    a = np.asarray(actions)
    if a.shape != (batch, game.n_agents):
        raise ValueError(
            f"{game.name}: actions must have shape (batch={batch}, n_agents={game.n_agents}), "
            f"got {a.shape}"
        )
    if not game.action_space.contains(a):
        raise ValueError(
            f"{game.name}: actions must be integers in 0..{game.action_space.n - 1}, "
            f"got values {np.unique(a).tolist()}"
        )
    return a
