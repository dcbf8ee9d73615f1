"""A tiny cooperative multi-goal game for the chapter-3 learners' unit tests (unregistered).

N agents on a line of ``L`` cells; each has a goal cell. Actions 0 stay, 1 left, 2 right.
Reward per agent: ``-|p - g| / L``, and -1 when it shares its cell with another agent.
Episodes last ``max_steps`` steps or end when every agent is on its goal. Observation:
``[p / L]`` (o_self), ``[g / L]`` (goal), the others' ``(p_j - p) / L`` (o_others).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import MultiGoal


@dataclass
class LineState:
    pos: np.ndarray  # [B, N]
    goal: np.ndarray  # [B, N]
    t: np.ndarray  # [B]


class Line(MultiGoal):
    name = "line"
    action_space = Discrete(3)
    action_names = ("stay", "left", "right")
    self_size, goal_size, env_state_size, agent_state_size = 1, 1, 0, 1

    def __init__(self, n_agents: int = 2, length: int = 5, max_steps: int = 8) -> None:
        self.n_agents, self.length, self.max_steps = n_agents, length, max_steps
        self.others_size = n_agents - 1
        self.observation_space = Box((2 + self.others_size,), -1.0, 1.0)
        self._oth = np.array([[j for j in range(n_agents) if j != i] for i in range(n_agents)],
                             dtype=np.int64).reshape(n_agents, n_agents - 1)

    def induced(self) -> Line:
        return Line(1, self.length, self.max_steps)

    def reset(self, batch: int, rng) -> LineState:
        pos = rng.integers(0, self.length, size=(batch, self.n_agents))
        goal = rng.integers(0, self.length, size=(batch, self.n_agents))
        return LineState(pos, goal, np.zeros(batch, np.int64))

    def observe(self, s: LineState) -> np.ndarray:
        p, g = s.pos / self.length, s.goal / self.length
        rel = p[:, self._oth] - p[:, :, None]
        return np.concatenate([p[..., None], g[..., None], rel], -1).astype(np.float32)

    def step(self, s: LineState, actions: np.ndarray, rng) -> Step:
        move = np.array([0, -1, 1])[actions]
        pos = np.clip(s.pos + move, 0, self.length - 1)
        same = (pos[:, :, None] == pos[:, None, :]).sum(-1) - 1
        reward = (-np.abs(pos - s.goal) / self.length - (same > 0)).astype(np.float32)
        new = LineState(pos, s.goal, s.t + 1)
        done = (new.t >= self.max_steps) | (pos == s.goal).all(1)
        return Step(new, self.observe(new), reward, done, {"crowded": same > 0})

    def describe(self, s: LineState) -> dict[str, np.ndarray]:
        return {"position": s.pos}

    def global_state(self, s: LineState) -> tuple[np.ndarray, np.ndarray]:
        B = s.pos.shape[0]
        return (np.zeros((B, 0), np.float32),
                (s.pos / self.length).astype(np.float32)[..., None])
