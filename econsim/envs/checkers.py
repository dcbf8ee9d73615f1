"""Checkers: the two-goal gridworld of CM3 (Diss §3.4, App. A.7.3; SPEC §7, §7b).

Rules, batch-first numpy, no loop over worlds (a loop over the agents gives the move order):

* Geometry. The playable area is 3 rows x 9 columns: 8 item columns (0..7) and a start
  column (8) on the right. The dissertation's own numbers disagree (A.7.3 says "5 rows and
  13 columns" with the two outermost rows and columns on every side unreachable, which leaves
  one row, and starts agents at (2, 8) and (4, 8)); we follow SPEC §7, i.e. the reference
  code: the playable area is padded by 2 wall cells on every side, so the full grid is 7 x 13
  and the 5 x 5 observation window centred on any playable cell lies inside it. Coordinates
  are ``(row, col)``, (0, 0) top-left. ``describe`` and ``Grid`` (``height`` 3, ``width`` 9)
  use playable coordinates; the state holds flat padded cells ``row * 13 + col``.
* Agents. Agent A (index 0) starts at playable (0, 8), agent B (index 1) at (2, 8), i.e.
  padded (2, 10) and (4, 10). A's goal is to collect red without touching yellow, B's the
  reverse; goal one-hots A [1, 0], B [0, 1].
* Items. A checkerboard over the 3 x 8 item region: red where ``row + col`` is even (row 0 has
  red on even columns), yellow elsewhere; 12 red, 12 yellow. An item vanishes when an agent
  moves onto its cell; the collecting agent alone is rewarded: A +1 red, -0.5 yellow; B -0.5
  red, +1 yellow. The optimum collective return is 24 (A collects the 12 red, B the 12
  yellow, nothing else). Every neighbour of a red cell is yellow (or the start column, or a
  wall) and vice versa, so neither agent can reach its second item without the other first
  clearing a cell of the other colour: the goals are coupled.
* Actions (5): 0 stay, 1 up, 2 down, 3 left, 4 right. Agents move in index order (A, then
  B): a move into a wall (padding) cell or into another agent's current cell is blocked and
  the agent stays; B may thus enter the cell A has just left. The dissertation gives no
  penalty for a blocked move; ``blocked_penalty`` (default 0; the reference code: 0.1) is
  subtracted from the blocked agent's reward. Staying is never blocked.
* An episode ends after ``max_steps`` (75, Diss Table A.5; the reference code's class
  default was 50) or when all 24 items are collected.

Observation of each agent, flat float32 ``[o_self, goal, o_others]`` (``MultiGoal``):

* ``o_self`` (``self_size`` 84; 79 with ``previous_action = false``) = ``o_self_T``, the
  5 x 5 x 3 window centred on the agent over the padded grid, flattened (row, col,
  channel), channels 0 red, 1 yellow, 2 invalid (a wall cell or another agent's cell; the
  agent's own cell is valid); then ``o_self_V`` = the
  agent's normalised ``(row / 7, col / 13)`` in padded coordinates (the dissertation:
  "normalized by total size of grid"), then its red and yellow collected so far / 12; then
  the one-hot of its previous action (zeros at the start; ``previous_action``, default true:
  the actor of Diss A.8.3 takes the previous action, which A.7.3's observation omits);
* ``goal`` (2) = the one-hot of its role (A red, B yellow);
* ``o_others`` (2 per other agent, 0 in the single-agent game) = each other agent's
  normalised ``(row / 7, col / 13)``, in index order.

Every observed value lies in [0, 1]. ``global_state``: ``s_env`` = the 3 x 9 x 2 item grid over the
playable area (red, yellow channels; start column empty) flattened (``env_image`` (3, 9,
2)); ``s_agents`` per agent = ``[row, col, #red, #yellow]`` (the
dissertation's integer ``s_V`` of A.7.3: playable ``row`` 0-2, ``col`` 0-8, counts 0-12;
``state_coordinates = "normalised"`` gives the observation's scaling ``[row / 7, col / 13,
#red / 12, #yellow / 12]`` in padded coordinates, this module's behaviour before
2026-12-02). Neighbouring columns then differ by 1 in the critics' input instead of 0.077,
which a critic needs to tell which cell the other agent is about to enter.

``induced()`` (Params ``n_agents=1``) is the stage-1 single-agent MDP (Diss A.7.3 "Induced
MDP"): one agent whose role, A or B, is drawn uniformly per world at reset (the only draw
from ``rng``, batch-leading), placed at that role's start cell, with that role's goal and
reward table; everything else as above (§3.5 says stage 1 "alternates" between training as A
and B; we follow A.7.3's random assignment per episode). The two-agent game draws nothing:
its trajectories are a function of the actions alone; ``step`` never draws.

``info`` per step, ``[B, N]``: ``red``, ``yellow`` (collected this step, 0/1), ``blocked``
(the agent's move was blocked, 0/1). ``describe``: ``row``, ``col`` (playable), ``red``,
``yellow`` (collected so far this episode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from econsim.bounds import FINITE, Coefficient, Steps
from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import AgentEvents, Grid, MultiGoal, Render
from econsim.core.registry import register_game

STAY, UP, DOWN, LEFT, RIGHT = range(5)
ACTION_NAMES = ("stay", "up", "down", "left", "right")

ROWS, COLS = 3, 9  # playable area: 8 item columns + the start column
ITEM_COLS = 8
PAD = 2  # wall cells on every side (the 5x5 window is defined everywhere)
HEIGHT, WIDTH = ROWS + 2 * PAD, COLS + 2 * PAD  # 7 x 13 padded grid
VIEW = 2  # window radius: 5 x 5
N_RED = N_YELLOW = ROWS * ITEM_COLS // 2  # 12 each

#: cell codes of the padded grid
EMPTY, RED, YELLOW, WALL = range(4)
#: playable start cell of each role: A (0, 8), B (2, 8)
STARTS = ((0, ITEM_COLS), (ROWS - 1, ITEM_COLS))
#: reward of a role (row: A, B) for collecting a cell code (column: empty, red, yellow)
REWARDS = np.array([[0.0, 1.0, -0.5], [0.0, -0.5, 1.0]], np.float32)

COLOURS: dict[str, tuple[int, int, int]] = {
    "empty": (0, 0, 0), "red": (220, 40, 40), "yellow": (240, 200, 40),
    "wall": (180, 180, 180),
}
ROLE_COLOURS = ((60, 120, 255), (40, 200, 80))  # agent A blue, agent B green


class Params(BaseModel):
    model_config = FINITE
    n_agents: int = Field(2, ge=1, le=2,
                          description="2: the game; 1: the stage-1 induced MDP (a random role "
                                      "per world)")
    max_steps: Steps = Field(75, description="steps per episode (Diss Table A.5: 75; the "
                                             "reference code's default: 50)")
    blocked_penalty: Coefficient = Field(0.0, description="subtracted from the reward of a "
                                                          "blocked move (reference code: 0.1)")
    previous_action: bool = Field(True, description="o_self ends with the one-hot of the "
                                  "agent's previous action (zeros at the start), which the "
                                  "actor of Diss A.8.3 takes as input")
    state_coordinates: Literal["integer", "normalised"] = Field(
        "integer", description="the global state's agent part: integer playable (row, col) "
        "and counts (Diss A.7.3's s_V), or 'normalised' like the observation (padded row / 7, "
        "col / 13, counts / 12; econsim before 2026-12-02)")


def padded(row: int, col: int) -> int:
    """Flat padded cell of playable ``(row, col)``."""
    return (row + PAD) * WIDTH + col + PAD


def initial_grid() -> np.ndarray:
    """Cell codes ``[HEIGHT * WIDTH]`` of a fresh world: walls, the checkerboard, empty start
    column."""
    g = np.full((HEIGHT, WIDTH), WALL, np.int8)
    r, c = np.mgrid[0:ROWS, 0:COLS]
    g[PAD:PAD + ROWS, PAD:PAD + COLS] = np.where(
        c >= ITEM_COLS, EMPTY, np.where((r + c) % 2 == 0, RED, YELLOW))
    return g.ravel()


@dataclass
class State:
    """One Checkers world per row; cells are flat padded indices ``row * 13 + col``."""

    t: np.ndarray  # [B] steps taken
    cell: np.ndarray  # [B, 7*13] int8 code: 0 empty, 1 red, 2 yellow, 3 wall
    pos: np.ndarray  # [B, N] flat padded cell of each agent
    role: np.ndarray  # [B, N] 0 = A (collects red), 1 = B (collects yellow)
    red: np.ndarray  # [B, N] red collected this episode
    yellow: np.ndarray  # [B, N] yellow collected this episode
    last: np.ndarray  # [B, N] previous action, -1 before the first


@register_game("checkers", Params)
class Checkers(MultiGoal, Grid, AgentEvents, Render):
    """Checkers, batch-first (rules, observation and info: the module docstring)."""

    name = "checkers"
    #: what ``econsim bench`` measures (``econsim.core.registry.bench_of``)
    bench_variants = {"checkers": {}, "checkers_stage1": {"n_agents": 1}}
    bench_batches = (1, 256, 4096)
    action_space = Discrete(5)
    action_names = ACTION_NAMES
    height, width = ROWS, COLS
    agent_info_keys = ("red", "yellow", "blocked")
    self_image = (2 * VIEW + 1, 2 * VIEW + 1, 3)
    env_image = (ROWS, COLS, 2)
    goal_size = 2
    agent_state_size = 4
    columns = {  # the data dictionary's entries of this game (econsim.dictionary)
        "run_agents": {
            "red": ("items", "red items collected per episode"),
            "yellow": ("items", "yellow items collected per episode"),
            "blocked": ("steps", "moves blocked by a wall or the other agent per episode"),
        },
        "steps": {
            "red": ("items", "red items collected so far this episode"),
            "yellow": ("items", "yellow items collected so far this episode"),
            "blocked": ("0/1", "1 if the agent's move was blocked this step"),
        },
    }

    def __init__(self, **params) -> None:
        p = self.params = Params(**params)
        self.n_agents = n = p.n_agents
        self.max_steps = p.max_steps
        self.blocked_penalty = p.blocked_penalty
        side = 2 * VIEW + 1
        self.prev = self.action_space.n if p.previous_action else 0
        self.self_size = side * side * 3 + 4 + self.prev
        self.others_size = 2 * (n - 1)
        self.obs_size = self.self_size + self.goal_size + self.others_size
        self.observation_space = Box((self.obs_size,), 0.0, 1.0)
        self.env_state_size = ROWS * COLS * 2
        self.optimum = float(N_RED + N_YELLOW) if n == 2 else float(N_RED)

        self._grid0 = initial_grid()
        self._starts = np.array([padded(r, c) for r, c in STARTS], np.int64)
        self._delta = np.array([0, -WIDTH, WIDTH, -1, 1], np.int64)
        self._playable = np.array([padded(r, c) for r in range(ROWS) for c in range(COLS)])
        self._items = np.flatnonzero((self._grid0 == RED) | (self._grid0 == YELLOW))
        # window[cell]: flat cells of the 5x5 window centred on ``cell`` (clipped at the
        # border, where no agent ever stands)
        rr, cc = np.divmod(np.arange(HEIGHT * WIDTH), WIDTH)
        dr, dc = np.divmod(np.arange(side * side), side)
        wr = np.clip(rr[:, None] + dr[None] - VIEW, 0, HEIGHT - 1)
        wc = np.clip(cc[:, None] + dc[None] - VIEW, 0, WIDTH - 1)
        self._window = (wr * WIDTH + wc).astype(np.intp)
        #: channels (red, yellow, invalid) of each cell code
        self._channels = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)],
                                np.intp).reshape(n, n - 1)
        self._centre = (side * side) // 2  # the agent's own cell in its window
        self._offsets: dict[int, np.ndarray] = {}
        self._scale = np.array([1.0 / HEIGHT, 1.0 / WIDTH], np.float32)
        self._goal = np.eye(2, dtype=np.float32)
        self._palette = np.array([COLOURS[k] for k in ("empty", "red", "yellow", "wall")]
                                 + list(ROLE_COLOURS), np.uint8)

    def _offset(self, batch: int) -> np.ndarray:
        """``[B]`` flat index of each world's first cell in ``state.cell`` (cached)."""
        off = self._offsets.get(batch)
        if off is None:
            off = self._offsets[batch] = np.arange(batch, dtype=np.intp) * (HEIGHT * WIDTH)
        return off

    # ------------------------------------------------------------------ contract
    def reset(self, batch: int, rng: np.random.Generator) -> State:
        n = self.n_agents
        if n == 1:  # the induced MDP: a role per world
            role = rng.integers(0, 2, size=(batch, 1), dtype=np.int64)
        else:
            role = np.repeat(np.arange(n, dtype=np.int64)[None], batch, 0)
        return State(
            t=np.zeros(batch, np.int64),
            cell=np.repeat(self._grid0[None], batch, 0),
            pos=self._starts[role],
            role=role,
            red=np.zeros((batch, n), np.int64),
            yellow=np.zeros((batch, n), np.int64),
            last=np.full((batch, n), -1, np.int64),
        )

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        s, n = state, self.n_agents
        act = np.asarray(actions)
        b = act.shape[0]
        off = self._offset(b)  # flat index of each world's first cell
        got = np.zeros((b, n), np.int8)
        blocked = np.zeros((b, n), bool)
        pos = s.pos
        for i in range(n):  # index order: A moves first
            here = pos[:, i]
            want = here + self._delta[act[:, i]]
            stop = np.take(s.cell, want + off) == WALL
            if n > 1:
                stop |= (want[:, None] == pos[:, self._others[i]]).any(1)
            new = np.where(stop, here, want)
            pos[:, i] = new
            got[:, i] = np.take(s.cell, new + off)  # empty, red or yellow (never a wall)
            np.put(s.cell, new + off, EMPTY)  # the item vanishes
            blocked[:, i] = stop
        reward = REWARDS[s.role, got]
        if self.blocked_penalty:
            reward -= np.float32(self.blocked_penalty) * blocked
        s.pos = pos
        red, yellow = (got == RED).astype(np.int64), (got == YELLOW).astype(np.int64)
        s.red += red
        s.yellow += yellow
        s.t = s.t + 1
        s.last = act.astype(np.int64)
        left = np.take(s.cell, self._items + off[:, None]) != EMPTY
        done = (s.t >= self.max_steps) | ~left.any(1)
        info = {"red": red, "yellow": yellow, "blocked": blocked.astype(np.int64)}
        return Step(s, self.observe(s), reward, done, info)

    # ------------------------------------------------------------------ observation
    def _where(self, state: State) -> np.ndarray:
        """Normalised padded ``(row / 7, col / 13)`` of every agent, ``[B, N, 2]``."""
        return np.stack(self._padded_rc(state), -1).astype(np.float32) * self._scale

    def observe(self, state: State) -> np.ndarray:
        s, n = state, self.n_agents
        b = s.t.shape[0]
        off = self._offset(b)[:, None]
        marked = s.cell.copy()  # every agent's cell invalid ...
        np.put(marked, s.pos + off, WALL)
        code = np.take(marked, np.take(self._window, s.pos, axis=0) + off[..., None])
        code[:, :, self._centre] = np.take(s.cell, s.pos + off)  # ... but its own
        t = self._window.shape[1] * 3
        out = np.empty((b, n, self.obs_size), np.float32)
        out[:, :, :t] = np.take(self._channels, code, axis=0).reshape(b, n, t)
        where = self._where(s)
        out[:, :, t:t + 2] = where
        out[:, :, t + 2] = s.red
        out[:, :, t + 3] = s.yellow
        out[:, :, t + 2:t + 4] /= N_RED
        if self.prev:
            out[:, :, t + 4:self.self_size] = s.last[..., None] == np.arange(self.prev)
        out[:, :, self.self_size:self.self_size + 2] = self._goal[s.role]
        if n > 1:
            out[:, :, self.self_size + 2:] = where[:, self._others].reshape(b, n, -1)
        return out

    def global_state(self, state: State) -> tuple[np.ndarray, np.ndarray]:
        """``s_env [B, 54]`` (the 3x9x2 red/yellow grid) and ``s_agents [B, N, 4]`` (``[row,
        col, #red, #yellow]``, integer or normalised: ``state_coordinates``)."""
        grid = state.cell[:, self._playable]  # [B, 27]
        env = np.stack([grid == RED, grid == YELLOW], -1).astype(np.float32)
        counts = np.stack([state.red, state.yellow], -1).astype(np.float32)
        if self.params.state_coordinates == "normalised":
            where, counts = self._where(state), counts / N_RED
        else:
            where = np.stack(self._playable_rc(state), -1).astype(np.float32)
        agents = np.concatenate([where, counts], -1)
        return env.reshape(-1, self.env_state_size), agents

    def induced(self) -> Checkers:
        """The stage-1 single-agent MDP: one agent, role drawn per world (Diss A.7.3)."""
        return Checkers(**{**self.params.model_dump(), "n_agents": 1})

    # ------------------------------------------------------------------ for Mesa and the app
    @staticmethod
    def _padded_rc(state: State) -> tuple[np.ndarray, np.ndarray]:
        """Padded ``(row, col)`` of every agent, ``[B, N]`` each."""
        return np.divmod(state.pos, WIDTH)

    def _playable_rc(self, state: State) -> tuple[np.ndarray, np.ndarray]:
        """Playable ``(row, col)`` of every agent, ``[B, N]`` each."""
        rows, cols = self._padded_rc(state)
        return rows - PAD, cols - PAD

    def describe(self, state: State) -> dict[str, np.ndarray]:
        rows, cols = self._playable_rc(state)
        return {"row": rows, "col": cols, "red": state.red.copy(),
                "yellow": state.yellow.copy()}

    def render_rgb(self, state: State, world: int = 0) -> np.ndarray:
        """The padded 7 x 13 grid of one world as uint8 RGB, one pixel per cell: walls grey,
        items red / yellow, agent A blue, agent B green (by role)."""
        code = state.cell[world].astype(np.intp)
        code[state.pos[world]] = 4 + state.role[world]
        return self._palette[code].reshape(HEIGHT, WIDTH, 3)
