"""A tiny cooperative team game with a flat global state (capability ``GlobalState``) for the
chapter-4 learners' unit tests (unregistered).

N agents on a line of ``L`` cells and one flag cell, drawn per episode. Actions 0 stay, 1 left,
2 right. The team reward, the same for every agent: ``-(sum_n |p_n - f|) / (N L)`` per step,
and +1 (a ``win`` for every agent, the episode ends) on the step all agents stand on the flag.
A draw at ``max_steps``. Observation: ``[p / L, f / L, (p_j - p) / L for the others]``;
global state ``[p_1 / L, ..., p_N / L, f / L]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import AgentEvents, GlobalState


@dataclass
class RallyState:
    pos: np.ndarray  # [B, N]
    flag: np.ndarray  # [B]
    t: np.ndarray  # [B]


class Rally(GlobalState, AgentEvents):
    name = "rally"
    action_space = Discrete(3)
    action_names = ("stay", "left", "right")
    shared_reward = True
    agent_info_keys = ("win", "lose", "draw")

    def __init__(self, n_agents: int = 2, length: int = 7, max_steps: int = 10) -> None:
        self.n_agents, self.length, self.max_steps = n_agents, length, max_steps
        self.observation_space = Box((1 + n_agents,), -1.0, 1.0)
        self.state_size = n_agents + 1
        self._oth = np.array([[j for j in range(n_agents) if j != i] for i in range(n_agents)],
                             dtype=np.int64).reshape(n_agents, n_agents - 1)

    def reset(self, batch: int, rng) -> RallyState:
        pos = rng.integers(0, self.length, size=(batch, self.n_agents))
        flag = rng.integers(0, self.length, size=(batch,))
        return RallyState(pos, flag, np.zeros(batch, np.int64))

    def observe(self, s: RallyState) -> np.ndarray:
        p, f = s.pos / self.length, s.flag / self.length
        rel = p[:, self._oth] - p[:, :, None]
        flag = np.repeat(f[:, None, None], self.n_agents, 1)
        return np.concatenate([p[..., None], flag, rel], -1).astype(np.float32)

    def step(self, s: RallyState, actions: np.ndarray, rng) -> Step:
        move = np.array([0, -1, 1])[actions]
        pos = np.clip(s.pos + move, 0, self.length - 1)
        gap = np.abs(pos - s.flag[:, None]).sum(1) / (self.n_agents * self.length)
        won = (pos == s.flag[:, None]).all(1)
        new = RallyState(pos, s.flag, s.t + 1)
        draw = ~won & (new.t >= self.max_steps)
        team = (won - gap).astype(np.float32)
        ones = np.ones((1, self.n_agents), np.int64)
        info = {"win": won[:, None] * ones, "lose": 0 * ones.repeat(len(pos), 0),
                "draw": draw[:, None] * ones}
        return Step(new, self.observe(new), np.repeat(team[:, None], self.n_agents, 1),
                    won | draw, info)

    def describe(self, s: RallyState) -> dict[str, np.ndarray]:
        return {"position": s.pos}

    def global_state(self, s: RallyState) -> np.ndarray:
        return np.concatenate([s.pos, s.flag[:, None]], 1).astype(np.float32) / self.length
