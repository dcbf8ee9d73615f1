"""Cooperative navigation, the particle game of CM3 (Diss §3.4, App. A.7.1; SPEC §7).

Rules, batch-first float32 numpy (no Python loop over worlds; the few loops run over the
N - 1 other-agent slots or the 4 coordinates, each vectorised over the batch):

* Agents are discs of radius 0.15 and mass 1 in an unbounded plane; each agent n has its
  own landmark g^n (landmarks do not collide and never move).
* Actions (5): 0 noop, 1 left (-x), 2 right (+x), 3 down (-y), 4 up (+y); a move is a
  force of 5 along that unit vector.
* Soft contact between every pair of agents i, j (``d`` their distance, ``d_min = 0.3`` the
  sum of radii, margin ``k = 1e-3``): penetration ``k * log(1 + exp(-(d - d_min) / k))``
  (a softplus, computed as ``np.logaddexp``), force on i ``100 * penetration * (p_i - p_j) /
  d`` and the opposite on j. Two agents at exactly the same point have no direction and
  push nothing.
* Integration with ``dt = 0.1`` and damping 0.25: ``v <- (1 - 0.25) v + F dt`` (F: action
  plus contact forces, from the positions before the step), then ``p <- p + v dt``. No
  speed cap.
* Reward of agent n, on the positions after the step: ``-||p_n - g_n||``, and -1 for each
  other agent closer than 0.3 (a collision; both agents of the pair pay). An agent has
  *reached* its landmark when its distance is at most 0.05; the episode is done when every
  agent has reached its own landmark, or after ``max_steps`` (50; stage 1: 25) steps.
* Starts (``formation``, :data:`FORMATIONS`): "antipodal" (4 agents), "cross" (4; the
  Diss's "Intersection") and "merge" (2; each start coordinate gets N(0, 0.05^2) noise,
  clipped to +-0.25 = 5 sigma so that the observation bounds hold); with probability
  ``random_start`` (0.2) a world instead gets agents and landmarks uniform in (-1, 1)^2.
  "random": always uniform, ``n_agents`` agents (4). Velocities start at 0. The Diss
  (A.7.1) lists the merge agents in the other order; SPEC §7's order is used, in which the
  two agents cross lanes (that is what makes it a merge).

Every random draw is made in ``reset`` from its ``rng`` with the batch as the leading axis;
``step`` is deterministic, so a world's trajectory does not depend on the batch it is in.

Observation of agent n (float32, ``4 + 2 + 4 (N - 1)`` values): ``o_self = [v_x, v_y, p_x,
p_y]`` (own), ``goal = g^n``, then ``o_others``: for each other agent m in index order
``[v_m - v_n, p_m - p_n]`` (capability ``MultiGoal``: ``split`` gives the three parts). The
global state is ``[v, p]`` of every agent (``global_state``; no environment part).
``induced()`` is the stage-1 game: one agent, uniform random start and landmark, 25 steps.

Observation bounds (``observation_space``): a contact force is at most ``100 * k *
softplus(d_min / k)`` (about 30) per other agent, so a force component is at most ``f = 5 +
30 (N - 1)``, a velocity component at most ``f dt / 0.25`` (the damped geometric series), a
position at most ``1.25 + max_steps * dt * v_max`` from the origin within an episode, and a
relative value twice that. The box holds every state reachable within ``max_steps`` steps
of a reset (with 1% slack for float32 rounding); it is finite but wide (about +-380 for 4
agents and 50 steps).

``info`` per step, ``[B, N]`` (capability ``AgentEvents``): ``collisions`` (other agents
closer than 0.3 after the step), ``reached`` (at the landmark after the step), ``distance``
(to the own landmark after the step). ``describe(state)``: ``x``, ``y``, ``vx``, ``vy``,
``distance``. ``render_rgb`` draws landmarks as rings and agents as discs, one colour per
agent (capability ``Render``); ``landmarks`` and ``extent`` place them in a plane
(capability ``Plane``; the Mesa face's ``ContinuousSpace``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from econsim.bounds import FINITE, Agents, Probability, Steps, Text
from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import AgentEvents, MultiGoal, Plane, Render
from econsim.core.registry import register_game

RADIUS = 0.15  # of every agent
D_MIN = 2 * RADIUS  # contact distance (sum of radii)
MARGIN = 1e-3  # k of the soft contact
CONTACT = 100.0  # contact force coefficient
PUSH = 5.0  # force of a move action
DT = 0.1
DAMPING = 0.25
REACHED = 0.05  # distance to the landmark that counts as reached
MERGE_NOISE = 0.05  # sigma of the merge formation's start noise
NOISE_CLIP = 5 * MERGE_NOISE

ACTION_NAMES = ("noop", "left", "right", "down", "up")  # -x, +x, -y, +y (names fit columns)
_DIRECTIONS = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float32)

#: formation -> (agent starts [N, 2], landmarks [N, 2]) (SPEC §7; Diss A.7.1, Fig. 3.2)
FORMATIONS: dict[str, tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]] = {
    "antipodal": (((-.9, -.9), (.9, .9), (-.9, .9), (.9, -.9)),
                  ((.9, .9), (-.9, -.9), (.9, -.9), (-.9, .9))),
    "cross": (((-.9, -.15), (.9, .15), (.15, -.9), (-.15, .9)),
              ((.9, -.15), (-.9, .15), (.15, .9), (-.15, -.9))),
    "merge": (((-.9, .2), (-.9, -.2)),
              ((.9, -.2), (.9, .2))),
}
KINDS = (*FORMATIONS, "random")

#: agent colours (RGB), agent n uses ``AGENT_COLOURS[n % len(AGENT_COLOURS)]``
AGENT_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
                 (148, 103, 189), (140, 86, 75), (227, 119, 194), (23, 190, 207))
BACKGROUND = (250, 250, 250)
START_AREA = (215, 215, 215)  # outline of (-1, 1)^2, where starts and landmarks lie


class Params(BaseModel):
    model_config = FINITE
    formation: Text = Field("antipodal", description="'antipodal', 'cross', 'merge' or "
                            "'random' (SPEC §7 starts)")
    n_agents: Agents | None = Field(None, description="implied by the formation (antipodal, "
                                    "cross: 4; merge: 2); random: default 4")
    random_start: Probability = Field(0.2, description="chance that a world of a fixed "
                                      "formation starts uniform at random instead")
    max_steps: Steps = Field(50, description="steps per episode (stage 1: 25)")

    @field_validator("formation")
    @classmethod
    def _known_formation(cls, v):
        if v not in KINDS:
            raise ValueError(f"unknown formation (allowed: {', '.join(KINDS)})")
        return v

    @model_validator(mode="after")
    def _resolve(self):
        if self.formation == "random":
            if self.n_agents is None:
                self.n_agents = 4
        else:
            n = len(FORMATIONS[self.formation][0])
            if self.n_agents is None:
                self.n_agents = n
            elif self.n_agents != n:
                raise ValueError(f"n_agents={self.n_agents} does not fit formation "
                                 f"{self.formation!r}, which has {n} agents (use "
                                 "formation 'random' for other numbers)")
        return self


@dataclass
class State:
    """One world per row; one contiguous ``[B, N]`` float32 array per coordinate (the
    kernel works on whole columns of agents, with no small trailing axis)."""

    t: np.ndarray  # [B] steps taken
    x: np.ndarray  # [B, N] position
    y: np.ndarray
    vx: np.ndarray  # [B, N] velocity
    vy: np.ndarray
    gx: np.ndarray  # [B, N] landmark (goal) of each agent
    gy: np.ndarray


def penetration(d):
    """Soft penetration depth ``k log(1 + exp(-(d - d_min) / k))`` at distance ``d`` (a
    stable softplus: ``np.logaddexp``), in the dtype of ``d``."""
    d = np.asarray(d)
    k = d.dtype.type(MARGIN) if d.dtype.kind == "f" else MARGIN
    return k * np.logaddexp(0, (D_MIN - d) / k)


#: beyond this distance the float32 penetration is exactly 0 (softplus(-(d - d_min) / k) =
#: log1p(exp(-110)) underflows), so the kernel evaluates it only for pairs closer than this
CUTOFF = 0.41


@register_game("navigation", Params)
class Navigation(MultiGoal, Plane, AgentEvents, Render):
    """Cooperative navigation, batch-first (module docstring: rules, observation, info)."""

    name = "navigation"
    #: what ``econsim bench`` measures (``econsim.core.registry.bench_of``)
    bench_variants = {f"navigation({f})": {"formation": f} for f in FORMATIONS}
    bench_batches = (1, 256, 4096)
    action_space = Discrete(5)
    action_names = ACTION_NAMES
    agent_info_keys = ("collisions", "reached", "distance")
    extent = (-1.5, 1.5, -1.5, 1.5)
    self_size, goal_size, agent_state_size, env_state_size = 4, 2, 4, 0
    columns = {  # the data dictionary's entries of this game (econsim.dictionary)
        "run_agents": {
            "collisions": ("contacts", "other agents within 0.3 of the agent (collisions, -1 "
                           "reward each), summed over the episode's steps"),
            "reached": ("steps", "steps the agent ended at its landmark (distance <= 0.05) "
                        "per episode"),
            "distance": ("distance x steps", "distance to the agent's own landmark summed "
                         "over the episode's steps (return = -distance - collisions)"),
        },
        "steps": {
            "x": ("position", "x coordinate of the agent after the step"),
            "y": ("position", "y coordinate of the agent after the step"),
            "vx": ("position/time", "x velocity of the agent after the step"),
            "vy": ("position/time", "y velocity of the agent after the step"),
            "distance": ("distance", "distance to the agent's own landmark after the step"),
            "collisions": ("contacts", "other agents within 0.3 of the agent after the step"),
            "reached": ("0/1", "1 if the agent is at its landmark (distance <= 0.05)"),
        },
    }

    def __init__(self, **params) -> None:
        p = self.params = Params(**params)
        self.formation = p.formation
        self.n_agents = n = p.n_agents
        self.max_steps = p.max_steps
        self.random_start = 1.0 if p.formation == "random" else p.random_start
        self.others_size = 4 * (n - 1)
        self.obs_size = 6 + self.others_size
        # observation bounds (module docstring): force, speed, position, relative value
        force = PUSH + (n - 1) * CONTACT * float(penetration(np.float64(0.0)))
        v_max = force * DT / DAMPING
        p_max = 1.0 + NOISE_CLIP + self.max_steps * DT * v_max
        self.obs_bound = round(2 * p_max * 1.01, 2)
        self.observation_space = Box((self.obs_size,), -self.obs_bound, self.obs_bound)

        if p.formation in FORMATIONS:
            starts, goals = FORMATIONS[p.formation]
            self._starts = np.array(starts, np.float32).T  # [2, N]
            self._goals = np.array(goals, np.float32).T
        self._push_x = _DIRECTIONS[:, 0] * np.float32(PUSH)  # force of each action
        self._push_y = _DIRECTIONS[:, 1] * np.float32(PUSH)
        # ordered pairs (i, m): agent i and its k-th other m, k = 0..N-2 in index order;
        # a [B, N * (N - 1)] array over them reshapes to [B, N, N - 1] (the o_others order)
        others = np.array([[m for m in range(n) if m != i] for i in range(n)], np.intp)
        self._self = np.repeat(np.arange(n, dtype=np.intp), n - 1)
        self._other = others.ravel()

    # ------------------------------------------------------------------ contract
    def reset(self, batch: int, rng: np.random.Generator) -> State:
        n = self.n_agents
        pick = rng.random((batch, 1, 1)) < self.random_start  # this world starts at random
        pos = (2 * rng.random((batch, 2, n)) - 1).astype(np.float32)
        goal = (2 * rng.random((batch, 2, n)) - 1).astype(np.float32)
        if self.formation in FORMATIONS:
            start = np.broadcast_to(self._starts, pos.shape)
            if self.formation == "merge":
                noise = rng.standard_normal((batch, 2, n)) * MERGE_NOISE
                start = start + np.clip(noise, -NOISE_CLIP, NOISE_CLIP).astype(np.float32)
            pos = np.where(pick, pos, start)
            goal = np.where(pick, goal, self._goals)
        zero = np.zeros((batch, n), np.float32)
        return State(t=np.zeros(batch, np.int64), x=pos[:, 0].copy(), y=pos[:, 1].copy(),
                     vx=zero, vy=zero.copy(), gx=goal[:, 0].copy(), gy=goal[:, 1].copy())

    def make_state(self, pos, goal, vel=None, t=0) -> State:
        """A state from positions, landmarks and velocities ``[B, N, 2]`` (velocity default
        0) after ``t`` steps (hand-made worlds: tests, what-if starts)."""
        pos, goal = np.asarray(pos, np.float32), np.asarray(goal, np.float32)
        vel = np.zeros_like(pos) if vel is None else np.asarray(vel, np.float32)
        shape = (pos.shape[0], self.n_agents, 2)
        if not pos.shape == goal.shape == vel.shape == shape:
            raise ValueError(f"{self.name}: pos, goal and vel must have shape [batch, "
                             f"{self.n_agents}, 2], got {pos.shape}, {goal.shape}, {vel.shape}")
        return State(t=np.full(shape[0], t, np.int64),
                     **{k: np.ascontiguousarray(a[..., c]) for a, names in
                        ((pos, ("x", "y")), (vel, ("vx", "vy")), (goal, ("gx", "gy")))
                        for c, k in enumerate(names)})

    def _pairs(self, a: np.ndarray) -> np.ndarray:
        """``a [B, N]`` -> ``[B, N (N - 1)]``: each agent's others' value minus its own."""
        return np.take(a, self._other, 1) - np.take(a, self._self, 1)

    def _sum_others(self, v: np.ndarray) -> np.ndarray:
        """``[B, N (N - 1)]`` over ordered pairs -> ``[B, N]`` sum over each agent's others
        (in index order, the same for every world)."""
        n = self.n_agents
        v = v.reshape(-1, n, n - 1)
        out = v[..., 0].copy()
        for k in range(1, n - 1):
            out += v[..., k]
        return out

    def _contact(self, s: State) -> tuple[np.ndarray, np.ndarray]:
        """Contact forces ``(F_x, F_y)`` ``[B, N]`` at the positions of ``s``."""
        rx, ry = self._pairs(s.x), self._pairs(s.y)  # p_m - p_i
        d = np.sqrt(rx * rx + ry * ry)
        near = np.flatnonzero(d < CUTOFF)
        scale = np.zeros_like(d)  # 100 * penetration / d; 0 when the agents coincide
        if near.size:
            dn = d.ravel()[near]
            scale.ravel()[near] = (CONTACT * penetration(dn)
                                   / np.where(dn > 0, dn, np.float32(1))) * (dn > 0)
        # force on i: 100 pen (p_i - p_m) / d = -scale * r
        return -self._sum_others(scale * rx), -self._sum_others(scale * ry)

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        s = state
        fx, fy = np.take(self._push_x, actions), np.take(self._push_y, actions)
        if self.n_agents > 1:
            cx, cy = self._contact(s)
            fx, fy = fx + cx, fy + cy
        keep = np.float32(1 - DAMPING)
        s.vx = keep * s.vx + fx * np.float32(DT)
        s.vy = keep * s.vy + fy * np.float32(DT)
        s.x = s.x + s.vx * np.float32(DT)
        s.y = s.y + s.vy * np.float32(DT)
        s.t = s.t + 1
        obs, rx, ry = self._observe(s)
        dist = self.distance(s)
        if self.n_agents > 1:
            collisions = self._sum_others((rx * rx + ry * ry < D_MIN * D_MIN)
                                          .astype(np.float32))
        else:
            collisions = np.zeros_like(dist)
        reached = dist <= REACHED
        done = reached.all(1) | (s.t >= self.max_steps)
        info = {"collisions": collisions.astype(np.int64), "reached": reached,
                "distance": dist}
        return Step(s, obs, -dist - collisions, done, info)

    def _observe(self, s: State) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Observations, and the relative positions ``p_m - p_i`` over ordered pairs.

        Each part is gathered feature by feature and written into the observations in one
        pass (``moveaxis``): writing one feature at a time strides over all of them."""
        b, n = s.t.shape[0], self.n_agents
        obs = np.empty((b, n, self.obs_size), np.float32)
        own = np.stack((s.vx, s.vy, s.x, s.y, s.gx, s.gy))  # [6, B, N]
        obs[..., :6] = np.moveaxis(own, 0, -1)
        if n == 1:
            return obs, None, None
        rel = np.empty((4, b, n * (n - 1)), np.float32)  # [v_x, v_y, p_x, p_y] of m - i
        for c, v in enumerate((s.vx, s.vy, s.x, s.y)):
            np.subtract(np.take(v, self._other, 1), np.take(v, self._self, 1), out=rel[c])
        others = obs[..., 6:].reshape(b, n, n - 1, 4)  # a view: o_others per other agent
        others[...] = np.moveaxis(rel.reshape(4, b, n, n - 1), 0, -1)
        return obs, rel[2], rel[3]

    def observe(self, state: State) -> np.ndarray:
        return self._observe(state)[0]

    def distance(self, state: State) -> np.ndarray:
        """``[B, N]`` float32 distance of each agent to its own landmark."""
        dx, dy = state.x - state.gx, state.y - state.gy
        return np.sqrt(dx * dx + dy * dy)

    # ------------------------------------------------------------------ MultiGoal
    def global_state(self, state: State) -> tuple[np.ndarray, np.ndarray]:
        """``(s_env [B, 0], s_agents [B, N, 4] = [v, p])`` float32 (Diss A.7.1)."""
        b = state.t.shape[0]
        return (np.zeros((b, 0), np.float32),
                np.stack([state.vx, state.vy, state.x, state.y], -1))

    def induced(self) -> Navigation:
        """Stage 1 of CM3 (Diss A.7.1 "Induced MDP"): one agent, uniform random start and
        landmark in (-1, 1)^2, 25 steps."""
        return Navigation(formation="random", n_agents=1, max_steps=25)

    # ------------------------------------------------------------------ Plane, Mesa, replays
    def landmarks(self, state: State, world: int = 0) -> np.ndarray:
        """``[N, 2]`` landmark of each agent in ``world``."""
        return np.stack([state.gx[world], state.gy[world]], -1).astype(np.float64)

    def describe(self, state: State) -> dict[str, np.ndarray]:
        return {"x": state.x.copy(), "y": state.y.copy(), "vx": state.vx.copy(),
                "vy": state.vy.copy(),
                "distance": self.distance(state)}

    def render_rgb(self, state: State, world: int = 0, size: int = 128) -> np.ndarray:
        """``[size, size, 3]`` uint8 picture of ``world`` over ``extent`` (y up): each
        landmark a square ring and each agent a filled disc, in the agent's colour."""
        x0, x1, y0, y1 = self.extent
        px = (x1 - x0) / size  # plane units per pixel
        xs = x0 + (np.arange(size) + 0.5) * px
        ys = y1 - (np.arange(size) + 0.5) * (y1 - y0) / size
        X, Y = np.meshgrid(xs, ys)
        img = np.empty((size, size, 3), np.uint8)
        img[:] = BACKGROUND
        box = np.maximum(np.abs(X), np.abs(Y))
        img[(box <= 1) & (box > 1 - px)] = START_AREA
        colours = np.array([AGENT_COLOURS[i % len(AGENT_COLOURS)]
                            for i in range(self.n_agents)], np.uint8)
        half = 0.06  # half side of a landmark ring
        for i, (gx, gy) in enumerate(zip(state.gx[world], state.gy[world], strict=True)):
            cheb = np.maximum(np.abs(X - gx), np.abs(Y - gy))
            img[(cheb <= half) & (cheb > half - 2 * px)] = colours[i]
        for i, (ax, ay) in enumerate(zip(state.x[world], state.y[world], strict=True)):
            img[(X - ax) ** 2 + (Y - ay) ** 2 <= RADIUS * RADIUS] = colours[i]
        return img
