"""Cleanup: the sequential social dilemma of LIO and MetaGrad (Diss §5.3.1, App. B.4.1; SPEC §3).

Rules, batch-first numpy, no loop over worlds:

* Maps ``MAPS`` ("7x7", "10x10"): ``@`` wall, ``H`` waste at start, ``R`` river, ``B`` apple
  spawn cell, ``P`` agent spawn. Agent k starts on the last free P cell in row-major order
  (7x7: agent0 (5, 2), agent1 (1, 4)). Agents face up; no rotation, no tagging beam. Walls
  block; every other cell (river and waste included) can be walked on.
* Actions (6): 0 left, 1 right, 2 up, 3 down, 4 stay, 5 clean (fire the cleaning beam; the
  firer does not move; cleaning costs nothing).
* Step order: moves -> apple consumption (+1 reward, the cell empties) -> cleaning beams ->
  spawning -> observations.
* Moves are simultaneous. A move into a wall fails. Agents moving into the same cell: one of
  them, chosen at random, gets it; the others stay. A move into a cell where another agent
  ends the step (because it stayed or its move failed) fails, repeated until nothing changes;
  agents may swap cells or follow each other in a line (the leader vacates its cell).
* Cleaning beam (facing up), ``beam_width`` (3) parallel rays of up to ``beam_length`` (5)
  cells: the centre ray starts at the cell above the agent, the side rays at (row, col +- 1)
  and go up. A ray stops at a wall or the map edge; the first waste cell it reaches becomes
  river and stops the ray (<= 1 waste per ray); a ray reaching an agent stops there (no
  effect). Rays of different agents are simultaneous and see the waste as it was before any
  beam of this step: a waste cell hit by two agents' rays is cleaned once and counts in both
  agents' ``waste_cleaned``. Apples do not stop rays.
* Spawning (after the beams; SPEC §3): ``A`` = number of H + R cells of the base map (7x7: 2;
  10x10: 16); waste density ``d`` = waste cells / ``A``. If ``d >= depletion_threshold`` no
  apple and no waste spawns. Else waste prob = ``waste_spawn_prob`` and apple prob =
  ``apple_respawn_prob`` if ``d <= restoration_threshold``, else
  ``(1 - (d - rest) / (depl - rest)) * apple_respawn_prob`` (:func:`spawn_probs`). Each B
  cell with no apple and no agent grows an apple independently with the apple prob. At most
  one waste cell per step: the H/R cells are visited in a random order, each river cell is an
  independent draw with the waste prob, and the first success turns into waste.
* At reset the H cells hold waste, the R cells are river and there are no apples ("each
  episode starts with a waste level above the threshold and no apples present", Diss
  §5.3.1). The 7x7 map starts at ``d = 1`` (10x10 at ``d = 0.5 >= 0.4``): nothing spawns
  until someone cleans.
* An episode lasts ``max_steps`` (50) steps.

Randomness inside ``step`` (move conflicts, apples, waste) comes from a counter-based stream
per world (SplitMix64 of the world's ``key`` and ``t``), so a world's trajectory does not
depend on the batch it is stepped in; ``reset`` draws the keys from its ``rng``. The ``rng``
argument of ``step`` is accepted for the contract.

Observation of each agent (float32, one flat vector of ``obs_size = V * V * 3``, ``V = 2 *
view_size + 1``): the egocentric RGB image ``image_shape = (V, V, 3)`` (row, col, channel;
channel-last, flattened in that order) centred on the agent, divided by 256, cells outside the
map black. Colours ``COLOURS``: wall (180,180,180), apple (0,255,0), waste (113,75,24), river
(99,156,194), beam cells of this step (100,255,255), agent k ``AGENT_COLOURS[k]`` (agent0
(159,67,255), agent1 (2,81,154), agent2 (204,0,204): the third is our choice), empty black.
Agents are drawn over beams, beams over apples / river / waste. ``global_image(state)`` is the
whole map ``[B, H, W, 3]`` in the same colours. ``fired_onehot(state)`` ``[B, N, 2]`` is the
one-hot [did not clean, cleaned] of the last step (for incentive modules and the designer;
also ``info["fired_onehot"]``).

For a central incentive designer (Diss §6.3.2, App. C.2.2): ``global_features(state)`` is the
global image flattened (``global_size`` values), ``action_features(actions)`` the one-hot
[did not clean, cleaned] of the actions just taken (``action_feature_size = 2`` per agent),
and ``incentive_type(actions, rewards)`` the designer's action type of each agent's step in
``incentive_types`` = (clean, collect, else): clean if the action was the cleaning beam,
collect if the agent's extrinsic reward was positive (it ate an apple), else else.

``info`` per step: ``[B, N]``: ``apples`` (collected, 0/1), ``waste_cleaned`` (cells),
``fired`` (beam used), ``fired_hit`` (fired and cleaned >= 1 cell), ``fired_miss`` (fired and
cleaned 0); ``fired_onehot`` ``[B, N, 2]`` float32; per world ``[B]``: ``waste_density`` (after
this step's cleaning and spawning), ``apple_prob`` and ``waste_prob`` (the probabilities this
step's spawning used). ``describe(state)``: ``row``, ``col``, ``apples`` and
``waste_cleaned`` so far this episode, ``fired`` (last step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from econsim.bounds import FINITE, Agents, Probability, Steps, Text
from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import (
    AgentEvents,
    DesignerView,
    EpisodeMetrics,
    Grid,
    ImageObservation,
    Render,
)
from econsim.core.registry import register_game
from econsim.core.seeding import counter_uniforms

LEFT, RIGHT, UP, DOWN, STAY, CLEAN = range(6)
ACTION_NAMES = ("left", "right", "up", "down", "stay", "clean")
#: the central designer's incentive types (Diss §6.3.2): clean, collected an apple, else
INCENTIVE_TYPES = ("clean", "collect", "else")

MAPS: dict[str, tuple[str, ...]] = {
    "7x7": (
        "@@@@@@@",
        "@H  PB@",
        "@H   B@",
        "@    B@",
        "@    B@",
        "@ P  B@",
        "@@@@@@@",
    ),
    "10x10": (
        "@@@@@@@@@@",
        "@HH   P B@",
        "@RR    BB@",
        "@HH     B@",
        "@RR    BB@",
        "@HH P   B@",
        "@RR    BB@",
        "@HH     B@",
        "@RRP   BB@",
        "@@@@@@@@@@",
    ),
}

#: Table B.2 (Diss App. B.4.1) per map
SETTINGS: dict[str, dict[str, float | int]] = {
    "7x7": {"n_agents": 2, "apple_respawn_prob": 0.5, "depletion_threshold": 0.6,
            "restoration_threshold": 0.0, "waste_spawn_prob": 0.5, "view_size": 4},
    "10x10": {"n_agents": 3, "apple_respawn_prob": 0.3, "depletion_threshold": 0.4,
              "restoration_threshold": 0.0, "waste_spawn_prob": 0.5, "view_size": 7},
}

COLOURS: dict[str, tuple[int, int, int]] = {
    "empty": (0, 0, 0), "wall": (180, 180, 180), "river": (99, 156, 194),
    "waste": (113, 75, 24), "apple": (0, 255, 0), "beam": (100, 255, 255),
}
AGENT_COLOURS = ((159, 67, 255), (2, 81, 154), (204, 0, 204), (216, 30, 54), (254, 151, 0))

# colour codes of the rendered grid
_EMPTY, _WALL, _RIVER, _WASTE, _APPLE, _BEAM, _AGENT0 = range(7)


MAX_BEAM = 20  # cells: wider or longer than either map


class Params(BaseModel):
    model_config = FINITE
    map: Text = Field("7x7", description="'7x7' or '10x10' (SPEC §3 layouts)")
    n_agents: Agents | None = Field(None, description="default: 2 on 7x7, 3 on 10x10")
    apple_respawn_prob: Probability | None = Field(None,
                                                   description="default (Table B.2): 0.5 / 0.3")
    depletion_threshold: Probability | None = Field(None, description="default: 0.6 / 0.4")
    restoration_threshold: Probability | None = Field(None, description="default: 0")
    waste_spawn_prob: Probability | None = Field(None, description="default: 0.5")
    view_size: int | None = Field(None, ge=0, le=20,
                                  description="observation (2v+1)^2; default 4 / 7")
    max_steps: Steps = Field(50, description="steps per episode")
    beam_width: int = Field(3, ge=1, le=MAX_BEAM, description="parallel rays (odd)")
    beam_length: int = Field(5, ge=1, le=MAX_BEAM, description="cells per ray")

    @field_validator("map")
    @classmethod
    def _known_map(cls, v):
        if v not in MAPS:
            raise ValueError(f"unknown map (allowed: {', '.join(MAPS)})")
        return v

    @model_validator(mode="after")
    def _resolve(self):
        for k, v in SETTINGS[self.map].items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        n_spawn = sum(row.count("P") for row in MAPS[self.map])
        if self.n_agents > n_spawn:
            raise ValueError(f"n_agents={self.n_agents} is more than the {n_spawn} spawn cells "
                             f"of map {self.map}")
        if self.restoration_threshold >= self.depletion_threshold:
            raise ValueError(f"restoration_threshold ({self.restoration_threshold}) must be "
                             f"below depletion_threshold ({self.depletion_threshold})")
        if self.beam_width % 2 == 0:
            raise ValueError(f"beam_width ({self.beam_width}) must be odd")
        return self


def spawn_probs(density, apple_prob: float, depletion: float, restoration: float,
                waste_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """(apple prob, waste prob) at waste ``density`` (SPEC §3), elementwise."""
    d = np.asarray(density, np.float64)
    depleted = d >= depletion
    frac = np.clip(1.0 - (d - restoration) / (depletion - restoration), 0.0, 1.0)
    pa = np.where(depleted, 0.0, np.where(d <= restoration, apple_prob, frac * apple_prob))
    pw = np.where(depleted, 0.0, waste_prob)
    return pa, pw


@dataclass
class State:
    """One Cleanup world per row; flat cells are ``row * width + col``."""

    t: np.ndarray  # [B] steps taken
    key: np.ndarray  # [B] uint64 seed of the world's counter-based random stream
    pos: np.ndarray  # [B, N] flat cell of each agent
    apple: np.ndarray  # [B, H*W] bool: an apple lies on the cell (B cells only)
    waste: np.ndarray  # [B, H*W] bool: the cell is waste (H/R cells only; else river)
    beam: np.ndarray  # [B, H*W] bool: a cleaning beam covered the cell in the last step
    fired: np.ndarray  # [B, N] bool: the agent fired the beam in the last step
    apples: np.ndarray  # [B, N] apples collected this episode
    cleaned: np.ndarray  # [B, N] waste cells cleaned this episode




def parse_map(name: str) -> dict[str, np.ndarray]:
    """Static layout of map ``name``: bool grids ``wall``, ``waste0`` (H), ``river0`` (R),
    ``apple_cell`` (B) of shape [H, W], and ``spawns`` [(row, col)] in agent order."""
    rows = MAPS[name]
    g = np.array([list(r) for r in rows])
    p_cells = [(int(r), int(c)) for r, c in zip(*np.nonzero(g == "P"), strict=True)]
    return {"wall": g == "@", "waste0": g == "H", "river0": g == "R", "apple_cell": g == "B",
            "spawns": p_cells[::-1]}


def clean_onehot(cleaned: np.ndarray) -> np.ndarray:
    """Boolean ``[...]`` -> float32 one-hot [did not clean, cleaned] ``[..., 2]``."""
    f = np.asarray(cleaned).astype(np.float32)
    return np.stack([1.0 - f, f], -1)


@register_game("cleanup", Params)
class Cleanup(Grid, AgentEvents, EpisodeMetrics, DesignerView, ImageObservation, Render):
    """Cleanup, batch-first (see the module docstring for the rules, observation and info)."""

    name = "cleanup"
    bench_batches = (1, 256)  # what ``econsim bench`` measures (a heavy step)
    action_space = Discrete(6)
    action_names = ACTION_NAMES
    incentive_types = INCENTIVE_TYPES
    action_feature_size = 2
    columns = {  # the data dictionary's entries of this game (econsim.dictionary)
        "run_agents": {
            "apples": ("apples", "apples collected per episode"),
            "waste_cleaned": ("cells", "waste cells cleaned per episode"),
            "fired": ("steps", "steps the agent fired the cleaning beam per episode"),
            "fired_hit": ("steps", "beams that cleaned at least one cell per episode"),
            "fired_miss": ("steps", "beams that cleaned nothing per episode"),
        },
        "run_episodes": {"clean_rate_{k}": ("share", "share of steps agent {k} fired the beam")},
        "steps": {
            "apples": ("apples", "apples collected so far this episode"),
            "waste_cleaned": ("cells", "waste cells cleaned so far this episode"),
            "fired": ("0/1", "1 if the agent fired the cleaning beam this step"),
        },
    }

    def __init__(self, **params) -> None:
        p = self.params = Params(**params)
        self.n_agents = n = p.n_agents
        self.max_steps = p.max_steps
        self.layout = lay = parse_map(p.map)
        self.height, self.width = h, w = lay["wall"].shape
        self.n_cells = c = h * w
        self.apple_prob = p.apple_respawn_prob
        self.depletion = p.depletion_threshold
        self.restoration = p.restoration_threshold
        self.waste_prob = p.waste_spawn_prob
        self.view_size = v = p.view_size
        side = 2 * v + 1
        self.image_shape = (side, side, 3)
        self.obs_size = side * side * 3
        self.observation_space = Box((self.obs_size,), 0.0, 1.0)
        self.global_size = h * w * 3

        wall = lay["wall"].ravel()
        self._wall = wall
        self._spawns = np.array([r * w + cc for r, cc in lay["spawns"][:n]], np.int64)
        self._waste0 = lay["waste0"].ravel()
        self._wcells = np.flatnonzero(lay["waste0"].ravel() | lay["river0"].ravel())
        self.n_wasteable = len(self._wcells)  # A
        self._bcells = np.flatnonzero(lay["apple_cell"].ravel())
        self._delta = np.array([-1, 1, -w, w, 0, 0], np.int64)
        self._eye = np.eye(n, dtype=bool)

        # rays[cell, ray, k]: flat cell k of each ray fired from ``cell``; c = no cell (every
        # ray ends with one, so the first stop of a ray is always found)
        half, length = p.beam_width // 2, p.beam_length
        rays = np.full((c, p.beam_width, length + 1), c, np.int64)
        for cell in range(c):
            r0, c0 = divmod(cell, w)
            for j, off in enumerate(range(-half, half + 1)):
                col, row = c0 + off, (r0 - 1 if off == 0 else r0)
                for k in range(length):
                    rr = row - k
                    if not (0 <= rr < h and 0 <= col < w) or lay["wall"][rr, col]:
                        break
                    rays[cell, j, k] = rr * w + col
        self._rays = rays

        # window[cell]: flat cells of the (2v+1)^2 window centred on ``cell``; c = outside
        rr, cc = np.divmod(np.arange(c), w)
        dr, dc = np.divmod(np.arange(side * side), side)
        wr, wc = rr[:, None] + dr[None] - v, cc[:, None] + dc[None] - v
        inside = (wr >= 0) & (wr < h) & (wc >= 0) & (wc < w)
        self._window = np.where(inside, wr * w + wc, c).astype(np.intp)

        self._base_code = np.where(wall, _WALL, np.where(
            np.isin(np.arange(c), self._wcells), _RIVER, _EMPTY)).astype(np.uint8)
        pal = [COLOURS[k] for k in ("empty", "wall", "river", "waste", "apple", "beam")]
        pal += list(AGENT_COLOURS[:n])
        self.palette = np.array(pal, np.float32) / 256.0  # [codes, 3]
        self._palette_u8 = np.array(pal, np.uint8)
        self._agent_code = (_AGENT0 + np.arange(n)).astype(np.uint8)

        # random numbers per world and step: move priorities | apples | waste draws | order
        nb, a = len(self._bcells), self.n_wasteable
        self._n_rand = n + nb + 2 * a
        self._counter = np.arange(1, self._n_rand + 1, dtype=np.uint64)
        self._slices = (slice(0, n), slice(n, n + nb), slice(n + nb, n + nb + a),
                        slice(n + nb + a, n + nb + 2 * a))
        self._rows: dict[int, np.ndarray] = {}
        self._offsets: dict[int, np.ndarray] = {}

    def _bi(self, batch: int) -> np.ndarray:
        """``arange(batch)``, cached."""
        bi = self._rows.get(batch)
        if bi is None:
            bi = self._rows[batch] = np.arange(batch)
        return bi

    # ------------------------------------------------------------------ dynamics helpers
    def spawn_probs(self, density) -> tuple[np.ndarray, np.ndarray]:
        """(apple prob, waste prob) at waste ``density`` with this game's parameters."""
        return spawn_probs(density, self.apple_prob, self.depletion, self.restoration,
                           self.waste_prob)

    def waste_density(self, state: State) -> np.ndarray:
        """``[B]`` current waste cells / A."""
        return state.waste.sum(1) / self.n_wasteable

    def cell(self, row: int, col: int) -> int:
        """Flat index of (row, col)."""
        return row * self.width + col

    # ------------------------------------------------------------------ contract
    def reset(self, batch: int, rng: np.random.Generator) -> State:
        n, c = self.n_agents, self.n_cells
        key = rng.integers(0, np.iinfo(np.uint64).max, size=batch, dtype=np.uint64,
                           endpoint=True)
        return State(
            t=np.zeros(batch, np.int64), key=key,
            pos=np.repeat(self._spawns[None], batch, 0),
            apple=np.zeros((batch, c), bool),
            waste=np.repeat(self._waste0[None], batch, 0),
            beam=np.zeros((batch, c), bool),
            fired=np.zeros((batch, n), bool),
            apples=np.zeros((batch, n), np.int64),
            cleaned=np.zeros((batch, n), np.int64),
        )

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        s, n, c = state, self.n_agents, self.n_cells
        act = np.asarray(actions)
        b = act.shape[0]
        bi = self._bi(b)
        bi1 = bi[:, None]
        u = counter_uniforms(s.key[:, None], (s.t.astype(np.uint64) * np.uint64(self._n_rand))
                      [:, None] + self._counter)
        s_pr, s_ap, s_wd, s_wo = self._slices

        # moves
        pos = s.pos
        want = pos + self._delta[act]
        want = np.where(self._wall[want], pos, want)
        moving = want != pos
        pr = u[:, s_pr]
        if n > 1:
            same = (want[:, :, None] == want[:, None, :]) & ~self._eye
            beaten = moving[:, None, :] & (pr[:, None, :] > pr[:, :, None])
            ok = moving & ~(same & beaten).any(2)
            final = np.where(ok, want, pos)
            for _ in range(n):
                blocked = ok & ((want[:, :, None] == final[:, None, :]) & ~self._eye).any(2)
                if not blocked.any():
                    break
                ok &= ~blocked
                final = np.where(ok, want, pos)
        else:
            final = want
        s.pos = final

        # apple consumption
        got = s.apple[bi1, final]
        s.apple[bi1, final] = False
        s.apples += got

        # cleaning beams (on the waste before any beam of this step)
        fire = act == CLEAN
        s.fired = fire
        cleaned = np.zeros((b, n), np.int64)
        beam = np.zeros((b, c + 1), bool)
        if fire.any():
            cells = np.where(fire[:, :, None, None], self._rays[final], c)  # [B, N, R, L]
            wx = np.zeros((b, c + 1), bool)
            wx[:, :c] = s.waste
            occ = np.zeros((b, c + 1), bool)
            occ[bi1, final] = True
            b4 = bi[:, None, None, None]
            w_on = wx[b4, cells]
            stop = w_on | occ[b4, cells] | (cells == c)
            first = stop.argmax(-1)[..., None]  # every ray ends in a stop (cell c)
            hit = np.take_along_axis(w_on, first, -1)[..., 0]  # [B, N, R]
            k = np.arange(cells.shape[-1])
            covered = (k < first) | ((k == first) & hit[..., None])
            beam[b4, np.where(covered, cells, c)] = True
            hitcell = np.where(hit, np.take_along_axis(cells, first, -1)[..., 0], c)
            wx[bi[:, None, None], hitcell] = False
            s.waste = wx[:, :c]
            cleaned = hit.sum(-1)
            s.cleaned += cleaned
        s.beam = beam[:, :c]

        # spawning
        a = self.n_wasteable
        pa, pw = self.spawn_probs(s.waste.sum(1) / a)
        bc = self._bcells
        occ_b = (final[:, :, None] == bc).any(1)  # [B, nB]
        s.apple[:, bc] |= ~occ_b & (u[:, s_ap] < pa[:, None])
        wc = self._wcells
        succ = ~s.waste[:, wc] & (u[:, s_wd] < pw[:, None])
        any_w = succ.any(1)
        if any_w.any():
            order = np.where(succ, u[:, s_wo], 2.0).argmin(1)
            s.waste[bi[any_w], wc[order[any_w]]] = True

        s.t = s.t + 1
        info = {
            "apples": got.astype(np.int64), "waste_cleaned": cleaned, "fired": fire,
            "fired_hit": fire & (cleaned > 0), "fired_miss": fire & (cleaned == 0),
            "fired_onehot": self.fired_onehot(s),
            "waste_density": s.waste.sum(1) / a, "apple_prob": pa, "waste_prob": pw,
        }
        return Step(s, self.observe(s), got.astype(np.float32), s.t >= self.max_steps, info)

    # ------------------------------------------------------------------ observation
    def _codes(self, state: State) -> np.ndarray:
        """Colour code of every cell ``[B, H*W + 1]`` (the last column: outside, black)."""
        s = state
        b, c = s.t.shape[0], self.n_cells
        code = np.zeros((b, c + 1), np.uint8)
        code[:, :c] = self._base_code
        code[:, :c] += s.waste  # river -> waste
        code[:, :c] += s.apple * np.uint8(_APPLE)  # B cells are empty floor
        code[:, :c][s.beam] = _BEAM
        code[self._bi(b)[:, None], s.pos] = self._agent_code
        return code

    def observe(self, state: State) -> np.ndarray:
        code = self._codes(state)
        b = code.shape[0]
        off = self._offsets.get(b)
        if off is None:
            off = self._offsets[b] = (np.arange(b, dtype=np.intp) * (self.n_cells + 1))[
                :, None, None]
        # np.take is several times faster than fancy indexing here
        win = np.take(code.ravel(), np.take(self._window, state.pos, axis=0) + off)
        return np.take(self.palette, win, axis=0).reshape(b, self.n_agents, self.obs_size)

    def global_image(self, state: State) -> np.ndarray:
        """Whole map ``[B, H, W, 3]`` float32 RGB / 256 (the designer's view)."""
        code = self._codes(state)[:, :self.n_cells]
        return self.palette[code].reshape(-1, self.height, self.width, 3)

    def render_rgb(self, state: State, world: int = 0) -> np.ndarray:
        """Whole map of one world as uint8 RGB ``[H, W, 3]`` (for the app)."""
        code = self._codes(state)[world, :self.n_cells]
        return self._palette_u8[code].reshape(self.height, self.width, 3)

    def fired_onehot(self, state: State) -> np.ndarray:
        """``[B, N, 2]`` float32 one-hot [did not clean, cleaned] of the last step."""
        return clean_onehot(state.fired)

    # ------------------------------------------------------------------ for a central designer
    def global_features(self, state: State) -> np.ndarray:
        """The global image flattened, ``[B, global_size]`` (the designer's view of the state)."""
        return self.global_image(state).reshape(-1, self.global_size)

    def action_features(self, actions: np.ndarray) -> np.ndarray:
        """``actions [..., N]`` -> one-hot [did not clean, cleaned] ``[..., N, 2]``."""
        return clean_onehot(np.asarray(actions) == CLEAN)

    def incentive_type(self, actions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """Index into ``incentive_types`` of each agent's step ``[..., N]``: 0 clean (fired the
        beam), 1 collect (extrinsic reward > 0), 2 else (Diss §6.3.2, App. C.2.2)."""
        actions = np.asarray(actions)
        return np.where(actions == CLEAN, 0, np.where(np.asarray(rewards) > 0, 1, 2))

    # ------------------------------------------------------------------ for Mesa and metrics
    #: per-agent info keys the Mesa face shows as agent attributes
    agent_info_keys = ("apples", "waste_cleaned", "fired")

    def describe(self, state: State) -> dict[str, np.ndarray]:
        rows, cols = np.divmod(state.pos, self.width)
        return {"row": rows, "col": cols, "apples": state.apples.copy(),
                "waste_cleaned": state.cleaned.copy(), "fired": state.fired.copy()}

    def episode_metrics(self, actions: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """Per world ``[B]``: share of live steps each agent spent firing the beam
        (``clean_rate_k``)."""
        m = mask.astype(np.float64)
        live = np.maximum(m.sum(0), 1.0)
        fired = (actions == CLEAN) * m[..., None]
        return {f"clean_rate_{k}": fired[..., k].sum(0) / live for k in range(self.n_agents)}
