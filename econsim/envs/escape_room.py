"""Escape Room ER(N, M) (Diss Fig. 5.1, §B.4.1) and its asymmetric 2-player variant (§B.5.1).

Positions: 0 = lever, 1 = start, 2 = door. In ER(N, M) the action is "go to (or stay at)
position k"; after the step the agent is at k. The door is open this step iff at least M
agents chose the lever as their action (being at the lever without choosing it does not
count). Rewards, checked in order: door open and action = door -> +10; action = current
position (stay) -> 0; any move -> -1. The episode ends after a step in which the door is open
and some agent is at the door, or after ``max_steps`` (5) steps. Optimum 10(N-M) - M.

Observation of each agent: its own position one-hot, then the other agents' one-hots in
index order (3N values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, model_validator

from econsim.bounds import FINITE, MAX_AGENTS, Steps
from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import NamedPositions, SeesCurrentActions
from econsim.core.registry import register_game

LEVER, START, DOOR = 0, 1, 2
POSITIONS = ("lever", "start", "door")


class Params(BaseModel):
    model_config = FINITE
    n_agents: int = Field(2, ge=2, le=MAX_AGENTS, description="N, number of agents")
    n_required: int = Field(1, ge=1, le=MAX_AGENTS, description="M, agents needed at the lever")
    max_steps: Steps = Field(5, description="steps per episode")

    @model_validator(mode="after")
    def _m_below_n(self):
        if self.n_required >= self.n_agents:
            raise ValueError(
                f"n_required (M={self.n_required}) must be below n_agents (N={self.n_agents})"
            )
        return self


class AsymParams(BaseModel):
    model_config = FINITE
    max_steps: Steps = Field(5, description="steps per episode")


@dataclass
class State:
    pos: np.ndarray  # [B, N] position index
    t: np.ndarray  # [B] steps taken
    exited: np.ndarray  # [B] an agent has gone through the door


def _one_hot_positions(pos: np.ndarray) -> np.ndarray:
    """[B, N] positions -> [B, N, 3] one-hots."""
    return (pos[..., None] == np.arange(3)).astype(np.float32)


@register_game("escape_room", Params)
class EscapeRoom(NamedPositions):
    """ER(N, M), batch-first."""

    #: what ``econsim bench`` measures (``econsim.core.registry.bench_of``)
    bench_variants = {f"escape_room({n},{m})": {"n_agents": n, "n_required": m}
                      for n, m in ((2, 1), (3, 2), (5, 3))}

    name = "escape_room"
    action_space = Discrete(3)
    action_names = ("lever", "start", "door")
    position_names = POSITIONS
    columns = {  # the data dictionary's entries of this game (econsim.dictionary)
        "run_agents": {"lever": ("steps", "steps the agent pulled the lever per episode"),
                       "exit": ("0/1", "the agent went through the open door")},
        "steps": {"position": ("index", "position of the agent: 0 lever, 1 start, 2 door")},
    }

    def __init__(self, **params) -> None:
        self.params = Params(**params)
        self.n_agents = self.params.n_agents
        self.n_required = self.params.n_required
        self.max_steps = self.params.max_steps
        self.observation_space = Box((3 * self.n_agents,), 0.0, 1.0)
        # row i lists agent i first, then the others in index order
        n = self.n_agents
        self._view = np.array([[i] + [j for j in range(n) if j != i] for i in range(n)])

    @property
    def optimum(self) -> float:
        """Best collective return: 10(N - M) - M."""
        return 10.0 * (self.n_agents - self.n_required) - self.n_required

    def reset(self, batch: int, rng: np.random.Generator) -> State:
        return State(
            pos=np.full((batch, self.n_agents), START, np.int64),
            t=np.zeros(batch, np.int32),
            exited=np.zeros(batch, bool),
        )

    def observe(self, state: State) -> np.ndarray:
        hot = _one_hot_positions(state.pos)  # [B, N, 3]
        return hot[:, self._view].reshape(state.pos.shape[0], self.n_agents, -1)

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        lever = actions == LEVER
        door_open = lever.sum(1) >= self.n_required
        to_door = door_open[:, None] & (actions == DOOR)
        stay = actions == state.pos
        reward = np.where(to_door, 10.0, np.where(stay, 0.0, -1.0)).astype(np.float32)
        new = State(pos=actions.astype(np.int64), t=state.t + 1,
                    exited=state.exited | to_door.any(1))
        done = new.exited | (new.t >= self.max_steps)
        info = {"lever": lever, "door_open": door_open, "exit": to_door}
        return Step(new, self.observe(new), reward, done, info)

    def describe(self, state: State) -> dict[str, np.ndarray]:
        return {"position": state.pos}


@register_game("escape_room_asym", AsymParams)
class AsymmetricEscapeRoom(NamedPositions, SeesCurrentActions):
    """Asymmetric 2-player Escape Room (§B.5.1).

    Agent 0 (A1) moves in {start, door}: action 0 = start, 1 = door. Agent 1 (A2) moves in
    {start, lever}: action 0 = start, 1 = lever. The door is open iff A2's action is lever.
    A1 gets +10 when the door is open and it goes to the door, else -1 every step (staying
    too). A2 gets -1 per move, else 0. After A1 exits, all rewards are 0 until ``max_steps``.
    Optimum combined return 9.

    Observations (padded to a common length 6): A1 sees its own and A2's position one-hots;
    A2 sees only its own position one-hot, then zeros. A1 also sees A2's *current* action
    (``sees_current_action``): A2 moves first, and a learner appends that action to A1's
    observation before A1 chooses.
    """

    name = "escape_room_asym"
    n_agents = 2
    action_space = Discrete(2)
    observation_space = Box((6,), 0.0, 1.0)
    action_names = ("start", "go")
    position_names = POSITIONS
    columns = {  # the data dictionary's entries of this game (econsim.dictionary)
        "run_agents": {"lever": ("steps", "steps the agent pulled the lever per episode"),
                       "exit": ("0/1", "the agent went through the open door")},
        "steps": {"position": ("index", "position of the agent: 0 lever, 1 start, 2 door")},
    }
    sees_current_action = ((0, 1),)  # (observer, actor): A1 sees A2's action this step
    optimum = 9.0
    _TARGET = np.array([[START, DOOR], [START, LEVER]])  # [agent, action] -> position

    def __init__(self, **params) -> None:
        self.params = AsymParams(**params)
        self.max_steps = self.params.max_steps

    def reset(self, batch: int, rng: np.random.Generator) -> State:
        return State(
            pos=np.full((batch, 2), START, np.int64),
            t=np.zeros(batch, np.int32),
            exited=np.zeros(batch, bool),
        )

    def observe(self, state: State) -> np.ndarray:
        hot = _one_hot_positions(state.pos)  # [B, 2, 3]
        obs = np.zeros((state.pos.shape[0], 2, 6), np.float32)
        obs[:, 0, :3], obs[:, 0, 3:] = hot[:, 0], hot[:, 1]
        obs[:, 1, :3] = hot[:, 1]
        return obs

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        target = self._TARGET[[0, 1], actions]  # [B, 2] destination positions
        target[:, 0] = np.where(state.exited, DOOR, target[:, 0])  # A1 stays out once exited
        door_open = target[:, 1] == LEVER
        to_door = door_open & (target[:, 0] == DOOR)
        moved = target[:, 1] != state.pos[:, 1]
        live = ~state.exited
        reward = np.stack(
            [np.where(to_door, 10.0, -1.0), np.where(moved, -1.0, 0.0)], axis=1
        ).astype(np.float32) * live[:, None]
        new = State(pos=target, t=state.t + 1, exited=state.exited | to_door)
        exit_now = to_door & live
        info = {"lever": np.stack([np.zeros_like(door_open), door_open], 1),
                "door_open": door_open, "exit": np.stack([exit_now, np.zeros_like(exit_now)], 1)}
        return Step(new, self.observe(new), reward, new.t >= self.max_steps, info)

    def describe(self, state: State) -> dict[str, np.ndarray]:
        return {"position": state.pos}
