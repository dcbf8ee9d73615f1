"""Iterated Prisoner's Dilemma, memory-1 (Diss §5.3.1, Table 5.1; LOLA's definition).

Actions: 0 = Cooperate, 1 = Defect. Both agents observe the same 5-dim one-hot: index
``2*a0 + a1`` of the previous joint action (CC=0, CD=1, DC=2, DD=3), index 4 on the first
step. An episode is exactly ``max_steps`` (5) rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from econsim.bounds import FINITE, Steps
from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import EpisodeMetrics
from econsim.core.registry import register_game

# PAYOFF[a0, a1] = (reward of agent 0, reward of agent 1), Table 5.1.
PAYOFF = np.array(
    [[[-1.0, -1.0], [-3.0, 0.0]],
     [[0.0, -3.0], [-2.0, -2.0]]], dtype=np.float32
)


class Params(BaseModel):
    model_config = FINITE
    max_steps: Steps = Field(5, description="rounds per episode")


@dataclass
class State:
    t: np.ndarray  # [B] rounds played
    last: np.ndarray  # [B] previous joint action 2*a0 + a1, or 4 before the first round


@register_game("ipd", Params)
class IPD(EpisodeMetrics):
    """Memory-1 iterated prisoner's dilemma for two agents, batch-first."""

    name = "ipd"
    n_agents = 2
    action_space = Discrete(2)
    observation_space = Box((5,), 0.0, 1.0)
    action_names = ("cooperate", "defect")
    columns = {  # the data dictionary's entries of this game (econsim.dictionary)
        "run_agents": {"cooperated": ("rounds", "rounds the agent cooperated per episode")},
        "run_episodes": {"mutual_cooperation": ("share", "share of rounds with mutual "
                                                "cooperation (C, C)")},
        "steps": {"last_action": ("index", "the agent's action of the last round: 0 "
                                  "cooperate, 1 defect, -1 before the first")},
    }

    def __init__(self, **params) -> None:
        self.params = Params(**params)
        self.max_steps = self.params.max_steps

    def reset(self, batch: int, rng: np.random.Generator) -> State:
        return State(t=np.zeros(batch, np.int32), last=np.full(batch, 4, np.int64))

    def observe(self, state: State) -> np.ndarray:
        obs = np.zeros((state.last.shape[0], 2, 5), np.float32)
        obs[np.arange(state.last.shape[0]), :, state.last] = 1.0
        return obs

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        a0, a1 = actions[:, 0], actions[:, 1]
        reward = PAYOFF[a0, a1]
        new = State(t=state.t + 1, last=2 * a0 + a1)
        info = {"cooperated": actions == 0}
        return Step(new, self.observe(new), reward, new.t >= self.max_steps, info)

    @staticmethod
    def episode_metrics(actions: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """Share of played rounds with mutual cooperation (C, C) per episode: ``[B]``."""
        cc = (actions == 0).all(-1) * mask  # actions [T, B, 2], mask [T, B]
        return {"mutual_cooperation": cc.sum(0) / np.maximum(mask.sum(0), 1)}

    def describe(self, state: State) -> dict[str, np.ndarray]:
        own = np.stack([state.last // 2, state.last % 2], axis=1)
        return {"last_action": np.where(state.last[:, None] == 4, -1, own)}
