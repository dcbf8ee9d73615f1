"""Gather-Trade-Build (GTB): the AI-Economist's "simple_wood_and_stone" economy (SPEC §6).

Rules (Diss §6.3.1, App. C.2.1; SPEC §6), batch-first; the step, the observation and the
action mask run compiled (numba, ``kernel.py``, one loop over worlds and agents), the tax
rule, utility and ``info`` in numpy:

* 15x15 map (``world.py``): wood (W) and stone (S) source cells hold at most one unit; an
  empty source cell regrows its unit with probability ``regen_prob`` (0.01) per step; water
  (@) is impassable. ``n_agents`` (4) agents start at the map corners (top-left, top-right,
  bottom-left, bottom-right) with ``start_coin`` (10) coin.
* Skills (drawn at reset): build pay rate ``build_payment * min(3, 2 * Lomax(4) + 1)`` coin
  per house; with ``gather_bonus`` a probability ``min(2, Lomax(3)) / 2`` of collecting a
  second unit (numpy's ``pareto`` is the Lomax, i.e. Pareto shifted to start at 0).
* Actions (one per agent and step), ``A = 6 + 4 * (max_price + 1) = 50``:
  ``0`` no-op; ``1..4`` move up/down/left/right (labor 1); moving onto a source cell that has
  a unit collects it (labor +1); ``5`` build a house on the agent's cell from 1 wood + 1
  stone, paid the agent's build pay rate (labor 10); ``6 + (r * 2 + side) * 11 + price``
  place an order in the continuous double auction (``market.py``) for resource ``r``
  (0 wood, 1 stone), side 0 bid / 1 ask, integer ``price`` 0..10 (labor 0.25); at most 5
  open orders per agent, orders expire after 50 steps, escrow holds their coin/resource.
  An invalid action (see :meth:`GTB.action_mask`) does nothing and costs no labor.
* Movement is simultaneous: a move fails if the target is off the map, water, another
  agent's house, a cell occupied by another agent at the start of the step, or a cell that
  another agent also moves into this step (nobody enters a contested cell).
* Houses (choice documented here; the Diss does not say): a house can be built only on a
  cell that is not a resource source and has no house; it stays for the episode and blocks
  the other agents' movement (``houses_block``); its owner may walk over it.
* Order of a step: moves and gathering, building, orders (arrival in a random order), order
  expiry, resource regrowth, taxes (at period ends), utility and reward.
* Taxes (capability ``TaxPeriods``): the state holds each world's bracket rates
  ``tax_rates [B, K]`` for the current period (``set_tax_rates``; default
  ``Params.tax_rates``, the free market) and the game's ``tax_cutoffs`` (US-federal by
  default). On the last step of each ``period_length``-step period, income = coin now - coin
  after the last enactment, and the installed tax rule (a component, ``install_tax``;
  ``econsim.envs.make`` installs ``mechanisms.tax.enact``: eq. 6.7 capped at the coin in the
  inventory, not escrow, the revenue shared equally, eq. 6.8) says what each agent pays and
  receives. Without a rule nobody is taxed.
* Utility ``u = crra(coin) - labor_weight * labor`` with ``crra(z) = (z^(1-eta) - 1)/(1-eta)``
  (eq. C.17) on the agent's coin (available + escrow); reward ``u_t - u_{t-1}`` (eq. C.16).

Randomness inside ``step`` (regrowth, bonus collection, arrival order of orders) comes from a
counter-based stream per world (SplitMix64 of the world's ``key`` and ``t``), so a world's
trajectory does not depend on the batch it is stepped in; ``reset`` draws the keys and the
skills from its ``rng``. The ``rng`` argument of ``step`` is accepted for the contract.

Observation per agent (float32, one flat vector, ``obs_size = 9 * 11 * 11 + 111 = 1200``):
``[spatial (9, 11, 11) channel-major | vector (111)]``; ``split_obs`` undoes it
(``spatial_shape``, ``spatial_size``, ``vector_size``). The window is centred on the agent;
its channels (``SPATIAL_CHANNELS``): wood unit, stone unit, wood source, stone source, water,
outside the map, agent (the observer itself is the centre), own house, other agents' house.
The vector (``vector_fields`` maps names to slices): available coin, wood, stone; the same in
escrow; cumulative labor; build pay per house; gather bonus probability; row and col scaled
to [0, 1]; houses built; own open orders per (resource, side, price) (44); all other agents'
open orders, same layout (44); this period's K tax rates; the marginal rate at this period's
income so far; that income; fraction of the period and of the episode elapsed. Values are raw
(not normalised). The Diss's agents see 11x11x9 + 136 (App. C.2.1) of the AI-Economist's own
layout, which it does not list; this is our layout of the same information.

Quirks kept simple (documented choices): an agent standing on a source collects only by
moving onto it (the top-left start is itself a wood source); a unit may regrow under an
agent; a move into a cell that another agent leaves in the same step fails.

``info`` (``[B, N]`` unless noted): ``coin`` (available + escrow), ``wood``, ``stone``
(owned), ``labor`` (cumulative), ``utility``, ``income`` (this period so far, pre-tax; at a
period end the taxed income), ``tax``, ``transfer`` (non-zero only at period ends), ``built``
(a house this step), ``build_income``, ``gathered_wood``, ``gathered_stone`` (units this
step), ``trade_income`` (net coin from trades this step), ``trade_volume`` (units bought +
sold this step), ``period`` ``[B]`` (index of this step's tax period), ``period_end`` ``[B]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from econsim.bounds import (
    FINITE,
    MAX_AGENTS,
    MAX_BRACKETS,
    MAX_COEF,
    MAX_COIN,
    MAX_STEPS,
    Agents,
    Coefficient,
    PositiveCoefficient,
    Probability,
    Steps,
    Text,
)
from econsim.core import Box, Discrete, Step, check_actions
from econsim.core.brackets import US_FEDERAL_CUTOFFS, check_schedule, torch_of
from econsim.core.buffers import Recycler
from econsim.core.capabilities import (
    ActionMask,
    AgentEvents,
    Economy,
    Grid,
    PlannerView,
    TaxPeriods,
)
from econsim.core.registry import register_game
from econsim.envs.gtb import kernel
from econsim.envs.gtb.kernel import BUILD, DOWN, LEFT, NOOP, RIGHT, TRADE0, UP  # noqa: F401
from econsim.envs.gtb.market import RESOURCES, SIDES, Market
from econsim.envs.gtb.world import World, load_world, map_path

MAX_VIEW = 50  # cells: a (2r+1)^2 window wider than any sensible map
MAX_ORDERS = 100  # open orders per agent
Cell = Annotated[int, Field(ge=0, le=MAX_STEPS)]  # a row or column index
Edge = Annotated[float, Field(ge=0, le=MAX_COIN)]  # a bracket's lower edge in coin

SPATIAL_CHANNELS = ("wood", "stone", "wood_source", "stone_source", "water", "outside",
                    "agent", "own_house", "other_house")


class Params(BaseModel):
    model_config = FINITE
    n_agents: Agents = Field(4, description="number of agents")
    map: Text = Field("pure_and_mixed_15x15", description="map name: packaged, or "
                      "<name>.txt in the folder $ECONSIM_MAPS")
    starts: list[tuple[Cell, Cell]] = Field(
        [], max_length=MAX_AGENTS,
        description="(row, col) start of each agent; [] = the map corners (n_agents <= 4)")
    max_steps: Steps = Field(100, description="H, steps per episode")
    period_length: Steps = Field(10, description="steps per tax period")
    view_radius: int = Field(5, ge=0, le=MAX_VIEW, description="egocentric window is 2r+1 square")
    start_coin: Coefficient = Field(10.0)
    regen_prob: Probability = Field(0.01, description="regrowth prob per empty source")
    move_labor: Coefficient = Field(1.0)
    collect_labor: Coefficient = Field(1.0)
    build_labor: Coefficient = Field(10.0)
    order_labor: Coefficient = Field(0.25)
    build_payment: Coefficient = Field(10.0, description="coin per house at skill 1")
    build_skill_pareto: PositiveCoefficient = Field(4.0, description="Lomax shape of build skill")
    build_skill_max: float = Field(3.0, ge=1, le=MAX_COEF, description="cap of the pay multiplier")
    gather_bonus: bool = Field(True, description="skill: chance of a second unit")
    gather_skill_pareto: PositiveCoefficient = Field(3.0)
    gather_skill_max: PositiveCoefficient = Field(2.0)
    max_price: int = Field(10, ge=0, le=1000)
    max_orders: int = Field(5, ge=1, le=MAX_ORDERS, description="open orders per agent (all kinds)")
    order_expiry: Steps = Field(50, description="steps an order stays open")
    eta: float = Field(0.23, gt=0, lt=1, description="CRRA curvature, in (0, 1) (1 is log "
                       "utility; above 1 utility is -inf at zero coin)")
    labor_weight: Coefficient = Field(0.21)
    tax_cutoffs: list[Edge] = Field(list(US_FEDERAL_CUTOFFS), max_length=MAX_BRACKETS,
                                    description="bracket edges")
    tax_rates: list[Probability] = Field([0.0] * len(US_FEDERAL_CUTOFFS), max_length=MAX_BRACKETS,
                                         description="bracket rates at reset (default: free "
                                         "market)")
    houses_block: bool = Field(True, description="houses block the other agents")

    @field_validator("map")
    @classmethod
    def _map_exists(cls, v):
        map_path(v)
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.max_steps % self.period_length:
            raise ValueError(f"max_steps ({self.max_steps}) must be a multiple of "
                             f"period_length ({self.period_length})")
        check_schedule(self.tax_cutoffs, self.tax_rates)
        world = _world(self.map)
        starts = self.starts
        if not starts:
            if self.n_agents > 4:
                raise ValueError(f"n_agents={self.n_agents} > 4 needs explicit starts")
            starts = world.corners()[: self.n_agents]
        if len(starts) != self.n_agents:
            raise ValueError(f"starts has {len(starts)} cells for n_agents={self.n_agents}")
        if len(set(starts)) != len(starts):
            raise ValueError("starts must be distinct cells")
        for r, c in starts:
            if not (0 <= r < world.height and 0 <= c < world.width) or world.water[r, c]:
                raise ValueError(f"start {(r, c)} is off the map or on water")
        return self


def crra(coin, eta: float):
    """Isoelastic utility of coin ``(z^(1-eta) - 1) / (1 - eta)`` (eq. C.17), coin <= 0
    counting as 0; numpy arrays or torch tensors (finite gradients at and below 0)."""
    e = 1.0 - eta
    if torch_of(coin) is not None:  # torch: avoid 0 ** e, whose gradient is infinite
        pos = coin > 0
        safe = coin.where(pos, coin.new_ones(coin.shape))
        # exp(e log z), not z ** e: torch's vectorised pow rounds an element differently
        # depending on its place in the tensor, so one world's (or seed's) utility would
        # depend on the others beside it; numpy's pow agrees with either to a few ulps
        power = (e * safe.log()).exp()
        return ((power - 1.0) / e).where(pos, coin.new_full(coin.shape, -1.0 / e))
    return (np.power(np.maximum(coin, 0.0), e) - 1.0) / e


def utility(coin, labor, params: Params):
    """``u = crra(coin) - labor_weight * labor`` (eq. C.17); numpy or torch."""
    return crra(coin, params.eta) - params.labor_weight * labor


@lru_cache(maxsize=8)
def _world(name: str) -> World:
    return load_world(name)


@dataclass
class State:
    """One GTB world per row; every field has the batch as its leading dimension."""

    t: np.ndarray  # [B] steps taken
    key: np.ndarray  # [B] uint64 seed of the world's counter-based random stream
    pos: np.ndarray  # [B, N] flat cell (row * W + col)
    res: np.ndarray  # [B, H*W] bool: a resource unit lies on the (source) cell
    house: np.ndarray  # [B, H*W] int8 owner of the house on the cell, -1 none
    inv: np.ndarray  # [B, N, 3] available coin, wood, stone
    esc: np.ndarray  # [B, N, 3] coin, wood, stone held in escrow by open orders
    labor: np.ndarray  # [B, N] cumulative labor
    skill: np.ndarray  # [B, N] build pay multiplier in [1, build_skill_max]
    gather_p: np.ndarray  # [B, N] probability of a bonus unit when collecting
    houses: np.ndarray  # [B, N] houses built so far
    coin_last: np.ndarray  # [B, N] coin (available + escrow) after the last tax enactment
    utility: np.ndarray  # [B, N] utility after the last step
    tax_rates: np.ndarray  # [B, K] marginal rates of the current period
    o_code: np.ndarray  # [B, N, M] open orders (market.py), -1 empty
    o_seq: np.ndarray  # [B, N, M] sequence numbers t * N + arrival rank




@register_game("gtb", Params)
class GTB(TaxPeriods, ActionMask, Grid, AgentEvents, Economy, PlannerView):
    """Gather-Trade-Build economy, batch-first (see the module docstring for the rules)."""

    name = "gtb"
    bench_batches = (1, 256)  # what ``econsim bench`` measures (a heavy step)

    def __init__(self, **params) -> None:
        p = self.params = Params(**params)
        self.n_agents = n = p.n_agents
        self.max_steps = p.max_steps
        self.period_length = p.period_length
        self.n_periods = p.max_steps // p.period_length
        self.world = w = _world(p.map)
        self.height, self.width = w.height, w.width
        starts = p.starts or w.corners()[:n]
        self._starts = np.array([r * w.width + c for r, c in starts], np.int64)
        self.cutoffs = np.asarray(p.tax_cutoffs, np.float64)
        self.default_rates = np.asarray(p.tax_rates, np.float64)
        self.n_brackets = len(self.cutoffs)
        self.market = mk = Market(n, p.max_orders, p.max_price, p.order_expiry, p.max_steps)

        # actions
        p1 = p.max_price + 1
        self.action_names = ("noop", "up", "down", "left", "right", "build") + tuple(
            f"{s}_{r}_{price}" for r in RESOURCES for s in SIDES for price in range(p1))
        self.action_space = Discrete(len(self.action_names))
        a = np.arange(self.action_space.n)
        self._a_move = np.where((a >= UP) & (a <= RIGHT), a, 0)
        self._a_code = np.where(a >= TRADE0, a - TRADE0, -1)

        # observation: [spatial (C, V, V) | vector]
        v = 2 * p.view_radius + 1
        self.spatial_shape = (len(SPATIAL_CHANNELS), v, v)
        self.spatial_size = int(np.prod(self.spatial_shape))
        k = self.n_brackets
        fields = [("coin", 1), ("wood", 1), ("stone", 1), ("escrow_coin", 1),
                  ("escrow_wood", 1), ("escrow_stone", 1), ("labor", 1), ("build_pay", 1),
                  ("gather_skill", 1), ("row", 1), ("col", 1), ("houses", 1),
                  ("own_orders", mk.n_codes), ("other_orders", mk.n_codes),
                  ("tax_rates", k), ("marginal_rate", 1), ("period_income", 1),
                  ("period_progress", 1), ("episode_progress", 1)]
        self.vector_fields: dict[str, slice] = {}
        at = 0
        for name, size in fields:
            self.vector_fields[name] = slice(at, at + size)
            at += size
        self.vector_size = at
        self.observation_space = Box((self.spatial_size + self.vector_size,))

        # static tables
        self._is_src = w.src_type_flat >= 0
        self._pos_scale = (1.0 / max(1, w.height - 1), 1.0 / max(1, w.width - 1))
        self._out = Recycler()  # observation arrays, reused once nobody holds them
        window = self._windows(p.view_radius)
        inside = window >= 0
        cell = np.where(inside, window, 0)
        # uint8, [H*W, 4, V*V]: H*W*4*(2r+1)^2 bytes (109 KB at the defaults)
        static = np.stack([inside & (w.src_type_flat[cell] == 0),
                           inside & (w.src_type_flat[cell] == 1),
                           inside & w.water.ravel()[cell], ~inside], 1).astype(np.uint8)
        self.tables = kernel.Tables(
            nbr=w.nbr, src_type=w.src_type_flat, src_cells=w.src_cells.astype(np.int64),
            a_move=self._a_move, a_code=self._a_code, price=mk.price, is_bid=mk.is_bid,
            item_in=mk.item_in.astype(np.int64), item_out=mk.item_out.astype(np.int64),
            need=mk.need, escrow=mk.escrow, match=mk.match,
            row=np.arange(w.n_cells) // w.width, col=np.arange(w.n_cells) % w.width,
            static=np.ascontiguousarray(static), cutoffs=self.cutoffs,
            side=2 * p.view_radius + 1)
        self.rules = kernel.Rules(
            move_labor=p.move_labor, collect_labor=p.collect_labor, build_labor=p.build_labor,
            order_labor=p.order_labor, build_payment=p.build_payment, regen_prob=p.regen_prob,
            gather_bonus=p.gather_bonus, houses_block=p.houses_block, max_orders=p.max_orders,
            order_expiry=p.order_expiry)

    def _check_book(self, state: State) -> None:
        """The compiled kernel trusts the book's width: one line if a state has another."""
        if state.o_code.shape[-1] != self.params.max_orders:
            raise ValueError(f"gtb: the state's order book has {state.o_code.shape[-1]} slots "
                             f"per agent, the game {self.params.max_orders} (max_orders)")

    def _windows(self, r: int) -> np.ndarray:
        """``[H*W, (2r+1)^2]``: the flat cell under each position of the window centred on
        each cell, row by row; -1 outside the map."""
        h, w = self.height, self.width
        d = np.arange(-r, r + 1)
        rows = np.arange(h)[:, None, None, None] + d[None, None, :, None]
        cols = np.arange(w)[None, :, None, None] + d[None, None, None, :]
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        return np.where(inside, rows * w + cols, -1).reshape(h * w, -1).astype(np.int64)

    # ------------------------------------------------------------------ helpers
    def crra(self, coin: np.ndarray) -> np.ndarray:
        return crra(coin, self.params.eta)

    def _utility(self, coin: np.ndarray, labor: np.ndarray) -> np.ndarray:
        return utility(coin, labor, self.params)

    def split_obs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``obs [..., obs_size]`` -> ``(spatial [..., C, V, V], vector [..., vector_size])``."""
        s = self.spatial_size
        return obs[..., :s].reshape(*obs.shape[:-1], *self.spatial_shape), obs[..., s:]

    def trade_action(self, resource: str | int, side: str | int, price: int) -> int:
        """Index of the order action, e.g. ``trade_action("wood", "ask", 3)``."""
        r = RESOURCES.index(resource) if isinstance(resource, str) else int(resource)
        sd = SIDES.index(side) if isinstance(side, str) else int(side)
        if not 0 <= price <= self.params.max_price:
            raise ValueError(f"gtb: price must be in 0..{self.params.max_price}, got {price}")
        return TRADE0 + (r * 2 + sd) * (self.params.max_price + 1) + int(price)

    def period(self, state: State) -> np.ndarray:
        """Index of the tax period the next step belongs to, ``[B]``."""
        return np.minimum(state.t // self.period_length, self.n_periods - 1)

    def set_tax_rates(self, state: State, rates) -> State:
        """Set this period's bracket rates: ``[K]`` for all worlds or ``[B, K]``, in [0, 1]."""
        r = np.asarray(rates, np.float64)
        if r.shape[-1:] != (self.n_brackets,) or r.ndim > 2:
            raise ValueError(f"gtb: tax rates must have shape ({self.n_brackets},) or "
                             f"(batch, {self.n_brackets}), got {r.shape}")
        if not ((r >= 0) & (r <= 1)).all():
            raise ValueError("gtb: tax rates must lie in [0, 1]")
        state.tax_rates[...] = r
        return state

    def tax_rates(self, state: State) -> np.ndarray:
        return state.tax_rates

    def planner_view(self, state: State) -> dict[str, np.ndarray]:
        """What a learned tax planner sees at a period start (capability ``PlannerView``)."""
        s = state
        b = s.t.shape[0]
        return {"step": s.t, "coin_last": s.coin_last, "holdings": s.inv + s.esc,
                "labor": s.labor, "houses": s.houses,
                "skill": s.skill * self.params.build_payment, "gather_skill": s.gather_p,
                "orders": self.market.counts(s.o_code).sum(1).reshape(b, 4, -1).sum(-1)}

    # ------------------------------------------------------------------ contract
    def reset(self, batch: int, rng: np.random.Generator) -> State:
        p, n = self.params, self.n_agents
        key = rng.integers(0, np.iinfo(np.uint64).max, size=batch, dtype=np.uint64,
                           endpoint=True)
        skill = np.minimum(p.build_skill_max, 2.0 * rng.pareto(p.build_skill_pareto,
                                                               (batch, n)) + 1.0)
        if p.gather_bonus:
            gather_p = np.minimum(p.gather_skill_max, rng.pareto(p.gather_skill_pareto,
                                                                 (batch, n)))
            gather_p /= p.gather_skill_max
        else:
            gather_p = np.zeros((batch, n))
        inv = np.zeros((batch, n, 3))
        inv[..., 0] = p.start_coin
        coin = np.full((batch, n), p.start_coin)
        o_code, o_seq = self.market.empty_book(batch)
        return State(
            t=np.zeros(batch, np.int64), key=key,
            pos=np.repeat(self._starts[None], batch, 0),
            res=np.repeat(self._is_src[None], batch, 0),
            house=np.full((batch, self.world.n_cells), -1, np.int8),
            inv=inv, esc=np.zeros((batch, n, 3)), labor=np.zeros((batch, n)),
            skill=skill, gather_p=gather_p, houses=np.zeros((batch, n), np.int64),
            coin_last=coin.copy(), utility=self._utility(coin, 0.0),
            tax_rates=np.repeat(self.default_rates[None], batch, 0),
            o_code=o_code, o_seq=o_seq,
        )

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        s = state
        b = s.t.shape[0]
        act = check_actions(self, actions, b).astype(np.int64, copy=False)
        self._check_book(s)
        inv, esc = s.inv, s.esc
        s.o_code = np.ascontiguousarray(s.o_code)
        s.o_seq = np.ascontiguousarray(s.o_seq)
        s.pos, build, build_income, gathered_wood, gathered_stone, trade_flow, trade_volume = \
            kernel.step(act, s.t, s.key, s.pos, s.res, s.house, inv, esc, s.labor, s.skill,
                        s.gather_p, s.houses, s.o_code, s.o_seq, self.tables, self.rules)
        labor = s.labor
        t = s.t = s.t + 1

        # taxes on the last step of a period
        coin = inv[..., 0] + esc[..., 0]
        income = coin - s.coin_last
        end = t % self.period_length == 0
        tax, transfer = np.zeros((b, self.n_agents)), np.zeros((b, self.n_agents))
        if end.any():
            if self.tax_rule is None and s.tax_rates[end].any():
                raise ValueError("gtb: tax rates are set but no tax rule is installed (build "
                                 "the game with econsim.envs.make, or call install_tax)")
            if self.tax_rule is not None:  # the installed component (TaxPeriods)
                tax, transfer = self.tax_rule(inv[..., 0], income, self.cutoffs, s.tax_rates)
                tax *= end[:, None]
                transfer *= end[:, None]
                inv[..., 0] += transfer - tax
                coin = coin + (transfer - tax)
            s.coin_last = np.where(end[:, None], coin, s.coin_last)

        utility = self._utility(coin, labor)
        reward = (utility - s.utility).astype(np.float32)
        s.utility = utility
        info = {
            "coin": coin, "wood": inv[..., 1] + esc[..., 1], "stone": inv[..., 2] + esc[..., 2],
            "labor": labor.copy(), "utility": utility.copy(), "income": income, "tax": tax,
            "transfer": transfer, "built": build, "build_income": build_income,
            "gathered_wood": gathered_wood, "gathered_stone": gathered_stone,
            "trade_income": trade_flow, "trade_volume": trade_volume,
            "period": (t - 1) // self.period_length, "period_end": end,
        }
        return Step(s, self.observe(s), reward, t >= self.max_steps, info)

    # ------------------------------------------------------------------ observation
    def observe(self, state: State) -> np.ndarray:
        s, p = state, self.params
        obs = self._out.empty((s.t.shape[0], self.n_agents, self.observation_space.shape[0]),
                              np.float32)
        kernel.observe(obs, s.t, s.pos, s.res, s.house, s.inv, s.esc, s.labor, s.skill,
                       s.gather_p, s.houses, s.coin_last, s.tax_rates,
                       np.ascontiguousarray(s.o_code), self.tables, p.build_payment,
                       *self._pos_scale, self.period_length, self.max_steps,
                       self.market.n_codes)
        return obs

    # ------------------------------------------------------------------ for learners and Mesa
    def buildable(self, state: State) -> np.ndarray:
        """``[B, H*W]`` bool: a house may stand on the cell (not a resource source, no house
        yet: the rule of ``BUILD``)."""
        out = np.empty(state.house.shape, bool)
        kernel.buildable(out, state.house, self.tables)
        return out

    def action_mask(self, state: State) -> np.ndarray:
        """Legal actions ``[B, N, A]`` bool: illegal ones would be no-ops (no-op is legal).

        A move into a cell another agent also moves into this step is legal but fails.
        """
        s = state
        self._check_book(s)
        mask = np.empty((*s.pos.shape, self.action_space.n), bool)
        kernel.action_mask(mask, s.pos, s.house, s.inv, np.ascontiguousarray(s.o_code),
                           self.tables, self.rules)
        return mask

    #: per-agent info keys the Mesa face shows as agent attributes and reporters
    agent_info_keys = ("income", "tax", "transfer", "built", "build_income", "gathered_wood",
                       "gathered_stone", "trade_income")

    def episode_summary(self, info: dict[str, np.ndarray], state: State) -> dict[str, np.ndarray]:
        """Per world / per agent outcomes of whole episodes (``tables.episode_summary``)."""
        from econsim.envs.gtb import tables  # pandas: loaded when a table is asked for

        return tables.episode_summary(self, info, state)

    def period_table(self, info: dict[str, np.ndarray], state: State,
                     rates: np.ndarray | None):
        """Tidy rows per world x tax period x agent, a DataFrame (``tables.period_table``)."""
        from econsim.envs.gtb import tables

        return tables.period_table(self, info, state, rates)

    def terrain(self) -> dict[str, np.ndarray]:
        """One entry per cell: ``row``, ``col`` and ``terrain`` (``water``, ``wood source``,
        ``stone source``, ``empty``)."""
        w = self.world
        rows, cols = np.indices(w.water.shape)
        kind = np.select([w.water, w.source == 0, w.source == 1],
                         ["water", "wood source", "stone source"], "empty")
        return {"row": rows.ravel(), "col": cols.ravel(), "terrain": kind.ravel()}

    def describe(self, state: State) -> dict[str, np.ndarray]:
        s = state
        rows, cols = np.divmod(s.pos, self.width)
        return {
            "row": rows, "col": cols,
            "coin": s.inv[..., 0] + s.esc[..., 0],
            "wood": s.inv[..., 1] + s.esc[..., 1],
            "stone": s.inv[..., 2] + s.esc[..., 2],
            "labor": s.labor.copy(),
            "skill": s.skill * self.params.build_payment,  # coin per house, as in the tables
            "gather_skill": s.gather_p.copy(), "utility": s.utility.copy(),
            "houses": s.houses.copy(),
        }
