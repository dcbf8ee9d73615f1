"""A rule-based economic agent for Gather-Trade-Build: behaviour without training.

``ScriptedWorker`` is a brain (``learners.brains``) for the Mesa face of the ``gtb`` game. It
reads only its own observation (the 11 x 11 window and the vector of ``GTB.vector_fields``)
and follows the textbook logic of a worker who weighs income against the disutility of
labour, with the utility of the game itself (``u = crra(coin) - labor_weight x labor``,
Diss eq. C.17):

1. **Work or rest.** The next house pays ``pay (1 - tau)`` after tax, where ``pay`` is the
   agent's build pay and ``tau`` the marginal rate at its income so far this period (both in
   its observation). Selling the two units a house needs instead brings ``2 price (1 -
   tau)``. The worker compares each plan's utility gain ``crra(coin + net) - crra(coin)``
   with its labour cost ``labour_aversion x labor_weight x labour`` (a house: the build
   labour plus ``gather_labour / 2`` per unit still to gather; selling: the gathering of
   the units it does not hold and two orders)
   and follows the better plan; if neither gains more than it costs, it rests (no-op).
   ``labour_aversion`` = 1 weighs labour as the game's utility does; larger values make a
   lazier worker. Taxes therefore bite: a higher marginal rate lowers the net pay, so
   low-skill workers stop building sooner, and some prefer to sell (a division of labour
   between gatherers and builders through the market).
2. **Build** when holding a wood and a stone (a builder): on the current cell if a house may
   stand there (the game's own rule, ``GTB.buildable``), else walk to the nearest such cell.
3. **Trade** at posted prices: a seller offers every unit it holds (one open ask per
   resource at ``ask_price``); a builder buys a unit it lacks from the cheapest open ask of
   another agent (its observation lists them) at up to ``bid_price``, offers a surplus (two
   or more of one resource, none of the other), and bids ``bid_price`` for the missing unit
   when it has the coin and sees none within ``buy_distance`` steps.
4. **Gather** otherwise: walk (breadth-first over passable cells of the window) to the
   nearest visible unit of a resource it needs (a builder: the one it lacks, either when it
   lacks both; a seller: either); with none in sight, step towards the nearest source of
   it, or explore in a random direction.

Paths are planned on the window the agent sees (water, the map's edge, other agents' houses
and other agents block it): a plan, not a rule; the game decides whether each move
succeeds. Random choices (exploration, ties) come from the brain's ``rng``, so a what-if's
seed fixes them. ``workers(game, rng, **settings)`` gives one brain per agent.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from econsim.bounds import FINITE
from econsim.envs.gtb.game import BUILD, DOWN, LEFT, NOOP, RIGHT, SPATIAL_CHANNELS, UP
from econsim.envs.gtb.world import MOVES

__all__ = ["WorkerSettings", "ScriptedWorker", "workers"]

# the spatial channels of GTB's observation, by name
WOOD, STONE, WOOD_SRC, STONE_SRC, WATER, OUTSIDE, AGENT, OTHER_HOUSE = (
    SPATIAL_CHANNELS.index(c) for c in ("wood", "stone", "wood_source", "stone_source",
                                        "water", "outside", "agent", "other_house"))
STEPS = tuple((a, *MOVES[a]) for a in (UP, DOWN, LEFT, RIGHT))  # action, row, col change


#: the largest labour aversion a scripted worker accepts (the what-if's bound too)
MAX_LABOUR_AVERSION = 100.0


class WorkerSettings(BaseModel):
    """Settings of the scripted worker (module docstring)."""

    model_config = FINITE
    labour_aversion: float = Field(
        1.0, ge=0, le=MAX_LABOUR_AVERSION, description="weight of the labour cost against the "
        "game's labor_weight (1: as the utility does; larger: lazier)")
    gather_labour: float = Field(12.0, ge=0, le=1000, description="labour the worker expects "
                                 "to spend gathering the two units of a house")
    ask_price: int = Field(5, ge=0, le=1000, description="posted price of a unit it sells")
    bid_price: int = Field(5, ge=0, le=1000, description="posted price of a unit it buys")
    buy_distance: int = Field(4, ge=0, le=100, description="buy a missing unit when none is "
                              "this close")


class ScriptedWorker:
    """One GTB agent following the rules of the module docstring."""

    def __init__(self, game: Any, rng: np.random.Generator,
                 settings: WorkerSettings | None = None) -> None:
        if game.name != "gtb":
            raise ValueError(f"the scripted worker plays gtb, not {game.name!r}")
        self.game, self.rng = game, rng
        self.s = settings or WorkerSettings()
        p = game.params
        if max(self.s.ask_price, self.s.bid_price) > p.max_price:
            raise ValueError(f"scripted worker: prices must be at most the game's max_price "
                             f"{p.max_price}")
        self.p, self.fields = p, game.vector_fields
        self.r = p.view_radius
        self.heading = int(rng.integers(4))

    def reset(self) -> None:
        """A new episode: a new exploring direction."""
        self.heading = int(self.rng.integers(4))

    # ------------------------------------------------------------------ the plan
    def _gain(self, coin: float, net: float) -> float:
        return float(self.game.crra(np.float64(coin + net)) - self.game.crra(np.float64(coin)))

    def plan(self, coin: float, pay: float, tau: float, wood: float = 0.0,
             stone: float = 0.0) -> str:
        """``build``, ``sell`` or ``rest``: the plan with the larger utility gain net of its
        labour cost, if positive (units already held need no gathering)."""
        cost = self.s.labour_aversion * self.p.labor_weight
        per_unit = self.s.gather_labour / 2
        missing = max(0.0, 1 - wood) + max(0.0, 1 - stone)
        build = self._gain(coin, pay * (1 - tau)) - cost * (
            self.p.build_labor + per_unit * missing)
        held = min(2.0, wood + stone)
        sell = self._gain(coin, 2 * self.s.ask_price * (1 - tau)) - cost * (
            per_unit * (2 - held) + 2 * self.p.order_labor)
        best = max(("build", build), ("sell", sell), key=lambda kv: kv[1])
        return best[0] if best[1] > 0 else "rest"

    # --------------------------------------------------------------------- acting
    def act(self, agent: Any) -> int:
        spatial, vec = self.game.split_obs(np.asarray(agent.observation))
        f = self.fields
        coin, wood, stone = (float(vec[f[k].start]) for k in ("coin", "wood", "stone"))
        pay, tau = float(vec[f["build_pay"].start]), float(vec[f["marginal_rate"].start])
        own = vec[f["own_orders"]].reshape(2, 2, -1)  # [resource, side, price]
        others = vec[f["other_orders"]].reshape(2, 2, -1)
        plan = self.plan(coin + float(vec[f["escrow_coin"].start]), pay, tau, wood, stone)
        if plan == "rest":
            return NOOP
        held = (wood, stone)
        if plan == "sell":  # offer what it holds, else gather either resource
            for r in (0, 1):
                if held[r] >= 1 and own[r, 1].sum() == 0:
                    return self.game.trade_action(r, "ask", self.s.ask_price)
            return self._gather(spatial, (WOOD, STONE))
        if wood >= 1 and stone >= 1:  # where a house may stand: the game's own rule
            free = self._buildable_window(agent)
            return BUILD if free[self.r, self.r] else self._to(
                spatial, lambda rr, cc: bool(free[rr, cc]))
        needed = [r for r in (0, 1) if held[r] < 1]
        for r in needed:  # buy a missing unit someone offers at an acceptable price
            asks = np.flatnonzero(others[r, 1] > 0)
            cheap = asks[asks <= min(self.s.bid_price, coin)]
            if len(cheap) and own[r, 0].sum() == 0:
                return self.game.trade_action(r, "bid", int(cheap[0]))
        for r in (0, 1):  # a surplus of one and none of the other: offer one unit
            if held[r] >= 2 and held[1 - r] < 1 and own[r, 1].sum() == 0:
                return self.game.trade_action(r, "ask", self.s.ask_price)
        if len(needed) == 1:
            r = needed[0]
            channel = (WOOD, STONE)[r]
            if own[r, 0].sum() == 0 and coin >= self.s.bid_price and \
                    self._distance(spatial, channel) > self.s.buy_distance:
                return self.game.trade_action(r, "bid", self.s.bid_price)
            return self._gather(spatial, (channel,))
        return self._gather(spatial, (WOOD, STONE))

    # --------------------------------------------------------------- the window
    def _passable(self, spatial: np.ndarray, r: int, c: int) -> bool:
        v = spatial.shape[1]
        if not (0 <= r < v and 0 <= c < v):
            return False
        if spatial[WATER, r, c] or spatial[OUTSIDE, r, c] or spatial[OTHER_HOUSE, r, c]:
            return False
        return not (spatial[AGENT, r, c] and (r, c) != (self.r, self.r))

    def _buildable_window(self, agent: Any) -> np.ndarray:
        """``[V, V]`` bool over the agent's window: ``GTB.buildable`` of the world the agent
        is in (False outside the map)."""
        game, v = self.game, 2 * self.r + 1
        free = game.buildable(agent.model.state)[0].reshape(game.height, game.width)
        rows = int(agent.row) - self.r + np.arange(v)
        cols = int(agent.col) - self.r + np.arange(v)
        inside = ((rows >= 0) & (rows < game.height))[:, None] & (
            (cols >= 0) & (cols < game.width))[None, :]
        return inside & free[np.clip(rows, 0, game.height - 1)][:, np.clip(cols, 0,
                                                                          game.width - 1)]

    def _search(self, spatial: np.ndarray, goal) -> tuple[int, int] | None:
        """Breadth-first from the centre: (first move, distance) to the nearest passable cell
        where ``goal(r, c)``, or None. Moves are tried in a random order (ties)."""
        start = (self.r, self.r)
        order = [STEPS[k] for k in self.rng.permutation(4)]
        seen = {start: (NOOP, 0)}
        queue = deque([start])
        while queue:
            r, c = queue.popleft()
            first, dist = seen[(r, c)]
            if (r, c) != start and goal(r, c):
                return first, dist
            for action, dr, dc in order:
                nxt = (r + dr, c + dc)
                if nxt not in seen and self._passable(spatial, *nxt):
                    seen[nxt] = (action if (r, c) == start else first, dist + 1)
                    queue.append(nxt)
        return None

    def _to(self, spatial: np.ndarray, goal) -> int:
        found = self._search(spatial, goal)
        return found[0] if found else self._explore(spatial)

    def _distance(self, spatial: np.ndarray, channel: int) -> float:
        found = self._search(spatial, lambda r, c: spatial[channel, r, c] > 0)
        return found[1] if found else np.inf

    def _gather(self, spatial: np.ndarray, channels: tuple[int, ...]) -> int:
        unit = self._search(spatial, lambda r, c: any(spatial[k, r, c] > 0 for k in channels))
        if unit is not None:
            return unit[0]
        sources = tuple({WOOD: WOOD_SRC, STONE: STONE_SRC}[k] for k in channels)
        src = self._search(spatial, lambda r, c: any(spatial[k, r, c] > 0 for k in sources))
        return src[0] if src is not None else self._explore(spatial)

    def _explore(self, spatial: np.ndarray) -> int:
        """Keep heading one way while it is passable, else turn at random."""
        for _ in range(4):
            action, dr, dc = STEPS[self.heading]
            if self._passable(spatial, self.r + dr, self.r + dc):
                return action
            self.heading = int(self.rng.integers(4))
        return NOOP

    def __repr__(self) -> str:
        return f"ScriptedWorker({self.s.model_dump()})"


def workers(game: Any, rng: np.random.Generator, **settings) -> list[ScriptedWorker]:
    """One scripted worker per agent of ``game`` (``settings``: :class:`WorkerSettings`)."""
    s = WorkerSettings(**settings)
    return [ScriptedWorker(game, rng, s) for _ in range(game.n_agents)]
