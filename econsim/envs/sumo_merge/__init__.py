"""The SUMO double lane merge of CM3 (Diss §3.4, App. A.5, A.7.2, Table A.1; SPEC §7, §7b),
on the real Eclipse SUMO simulator.

Needs the SUMO wheels, ``pip install 'econsim[traffic]'`` (``eclipse-sumo``, ``libsumo``,
``sumolib``, ``traci`` 1.28). This module imports without them; making the game without them
raises :class:`MissingSumo`, one line naming the extra (``requires`` / ``extra``:
``econsim.core.registry.unavailable``).

**Road and simulator.** econsim writes the road itself: one straight edge of 200 m with 4
lanes of 3.2 m (12.8 m; lanes 0..3 from the right), speed limit 30 m/s, built by the wheel's
``netconvert`` (``pool.net_xml``). SUMO runs with steps of 0.2 s and the sub-lane model at
0.8 m lateral resolution; collisions are detected (``--collision.action remove``: SUMO takes
both vehicles of a collision off the road in the step it happens, ``--collision.mingap-factor
0``: only bodies that touch collide, front-to-back and side by side, not a short gap);
stuck vehicles are never teleported (``--time-to-teleport -1``); every waiting vehicle is
tried for insertion on its own (``--eager-insert true``: a learning car does not queue
behind SUMO cars waiting for another lane); warnings are off.

**Learning cars (egos)**, vehicle type per SPEC §7: 5 x 1.8 m, minGap 0, maxSpeed 50,
maxSpeedLat 2, lcCooperative 0, lcSpeedGainRight 1, lcPushy 1, lcPushyGap 0, lcAssertive
100, lcAccelLat 10, no speed deviation or dawdling. Once on the road SUMO's own control is
off: ``speedMode 0`` (no safe-speed, acceleration, deceleration or right-of-way checks: the
car drives the speed it is given, also above the speed limit) and ``laneChangeMode 0`` (no
lane changes of its own; lateral moves the agent asks for ignore other vehicles). So only the
agents' actions move them, and they can crash. Each ego enters at the start of the road
(SUMO's ``departPos="base"``: back at 0.1 m, front at 5.1 m) in its initial lane's centre at
29.1 m/s, after a departure delay:
N(0, 0.5 s) per car (``depart_noise``, clipped at 4 sigma), rounded to steps and shifted so
that the first car departs at step 0 (``delay`` in the state). SUMO inserts a car only where
it touches nobody (``insertionChecks="collision"``); a car that cannot enter waits.
**Start** (``start``): with "all_on_road" (default, the reference code; the Diss does not
say) the episode's first step comes once every car is on the road: until then the earlier
cars keep their speed and lateral position (no-ops; in traffic SUMO brakes them where going
on would be unsafe), so at step 0 a car that left k steps earlier is k steps (5.8 m each on
the empty road) ahead, and the steps and the time-out count from there. A car that heavy
traffic keeps from entering for 25 steps after its departure time enters later, waiting as
with "own_departure".
With "own_departure" (econsim until 2026-12-03) each car acts from its own departure and a
car still waiting is part of every step, its actions ignored.

**Actions** (5): 0 no-op (keep the speed and the lateral target), 1 accelerate (+2.5 m/s^2
over the step: +0.5 m/s), 2 decelerate (-0.5 m/s, not below 0), 3 left, 4 right: move the
car's lateral target one sub-lane (0.8 m) left or right, within the outer lanes' centres
(y in [1.6, 11.2]). SUMO moves the car toward its target at its lateral limits (maxSpeedLat 2
m/s, lcAccelLat 10 m/s^2): 0.4 m per step, so one sub-lane takes two steps, one lane (4
sub-lanes) eight. Speeds are capped at maxSpeed 50 m/s. A car waiting to enter or off the
road ignores its actions.

**Observation** of car n (float32, ``[o_self, goal, o_others]``, capability ``MultiGoal``):

* ``o_self`` (3) = [speed / 29, (y_goal - y) / 12.8, (190 - x) / 190]: the speed; the signed
  number of sub-lanes from the car's centre to the centre of its goal lane (y_goal = 3.2 g +
  1.6), positive when the goal lies to the left, normalised by the road's 16 sub-lanes (=
  metres / 12.8); the distance of its front to the goal line x = 190 m, normalised by 190;
* ``goal`` (4) = one-hot of the goal lane;
* ``o_others`` (13 x 9 x 2 = 234, two cars; none for one car) = a grid centred on the car's
  centre, flattened (row, column, channel): row r = 0..12 covers the longitudinal offsets
  [2.5 (r - 6) - 1.25, 2.5 (r - 6) + 1.25) m (row 12 is 15 m ahead, row 0 15 m behind),
  column c = 0..8 the lateral offsets [0.8 (c - 4) - 0.4, 0.8 (c - 4) + 0.4) m (column 8 is
  four sub-lanes to the left). Channel 0 is 1 where another vehicle's body (the other
  learning car while it is on the road, or a SUMO car) overlaps the cell, channel 1 its
  relative speed (v_other - v_self) / 29, clipped to [-2, 2], of the nearest such vehicle.

A car waiting to enter is observed at x = 0 in its lane's centre at 29.1 m/s; a car that
has arrived, collided or timed out keeps its last position and speed. Every value lies in
[-2, 2]. ``global_state``: no environment part; per car [x / 200, y / 12.8, v / 29]
(Diss A.7.2 "State").

**Rewards** per car and step (Diss A.7.2; the reference code's differences, SPEC §7b, are
not followed): -1 when it collides (with the other car or a SUMO car; its episode ends, SUMO
removes it); 10 (1 - Delta) in the step its front reaches x >= 190 m, Delta = |y - y_goal| /
12.8 (its sub-lane distance from the goal lane's centre over the 16 sub-lanes; the reference
code's 1 - |sub-lanes| / 16), after which it leaves the road (taken out of SUMO); -0.1 in a
step it drove and ends faster than 35.7 m/s; -10 at the time-out for each car not yet
arrived or collided. The time-out comes ``timeout`` (33) steps after the last car's
scheduled departure (``clock = "last_departure"``, as the reference code counts an episode's
steps once every car is on the road: with departures up to a few steps apart a car that
leaves late could otherwise not reach 190 m in time at the road's speed, 184.9 m taking 32
of the 33 steps); ``clock = "first_departure"`` counts from the first car's departure
(econsim before 2026-12-02; a scenario stored then, whose ``max_steps`` was the time-out,
loads with this clock). Both clocks apply to ``start = "own_departure"`` only; with
"all_on_road" the time-out comes ``timeout`` steps after step 0. ``max_steps``, the longest
an episode can last, is ``timeout`` plus, with "own_departure" and the clock from the last
departure, the largest possible delay (``max_delay``; 0 for one car). The episode ends at
the time-out or once every car has arrived or collided. With both cars reaching their goal
lanes' centres the team scores the maximum 20.

**Time-to-collision mask** (``ttc_mask``, off by default: the Diss has none; the reference
code's safety rule as SPEC §7b states it, "TTC <= 2 s masks no-op and accelerate";
capability ``ActionMask``): a driving car whose time to collision is at most ``TTC_LIMIT``
(2 s) may not keep its speed or accelerate (no-op and accelerate are illegal; decelerate,
left and right stay legal). Which vehicles count and how the time is measured is econsim's
reading: a car's time to collision is the least, over the vehicles ahead of it in its path
(the other learning car while it drives, SUMO's cars; in its path: their bodies overlap its
body laterally; ahead: their front is ahead of its front), of the gap from its front to
their back over the speed at which it closes on them (none when it does not close; 0 once
they touch). Off, every action is always legal.

**Starts** (``config``): "train": with probability ``random_start`` (0.2) initial and goal
lanes uniform at random (independently per car), else the training formation
(``formation``): "C1", car 0 in lane 1 with goal lane 3 and car 1 in lane 2 with goal lane 0
(default: Diss A.5 trains "with configurations C1 and C2", and C3 "occur[s] with low
probability" in training; the reference code's stage-2 file places the cars so), or "C3",
car 0 in lane 1 with goal lane 2 and car 1 in lane 2 with goal lane 1 (the text of Diss
A.7.2; econsim until 2026-12-03). The Diss contradicts itself here; C1 is the reading its
Table A.1 and the reference agree on, and the one that makes the merge pay: arriving
straight is worth 10 (1 - 8/16) = 5 per car in C1 against 7.5 in C3, the merge 10. Table
A.1's "C1" [1, 2] -> [3, 0], "C2" uniform at random, "C3" [1, 2] -> [2, 1], "C4" [0, 1] ->
[3, 2]. One car (``n_agents=1``,
``induced()``, the stage-1 MDP): lanes uniform at random.

**Traffic** (``traffic``): "none", the empty road of training; "heavy", Table A.1's test
traffic: SUMO-controlled sedans (5 x 1.8 m) and trucks (7.1 x 2.4 m, maxSpeed 35 m/s) enter
each lane with probability 0.9, 0.9, 0.2, 0.2 per second at 29.1 m/s, trucks being 20% of
lane 0's and 10% of lane 1's vehicles; speedDev 0.1, sigma 0.5, SUMO's sub-lane lane
changing. The road fills for ``warmup`` (10) seconds before the egos depart. Up to
``MAX_OTHERS`` SUMO cars per world are kept in the state (those nearest a learning car).

**Worlds and randomness.** A batch of B worlds is B SUMO simulations in B worker processes
(``pool``; at most ``MAX_WORLDS``). Every draw is made in ``reset`` from its ``rng`` with the
batch leading (starts, goals, delays, and each world's SUMO ``--seed``); ``step`` draws
nothing, so a world's episode does not depend on the batch it is in. The state is plain data
(the episode's draws, the actions so far, and the last snapshot of the road): a world whose
worker holds another episode is reloaded and replayed. ``reset`` starts the workers but no
simulation; the first ``observe``, ``step``, ``describe``, ``global_state`` or
``render_rgb`` of a fresh world loads it (so ``reset_done`` loads only the worlds it
restarts). ``close()`` (or ``with game:``) stops the workers; so does garbage collection.

``info`` per step, ``[B, N]`` 0/1 (capability ``AgentEvents``): ``collision``, ``arrived``,
``timeout``, ``speeding``, and ``merged`` (1 for every car of a world on the step its episode
ends with every car arrived in its goal lane and no collision: the success of a merge).
``describe``: ``x``, ``y`` (capability ``Plane``, extent (0, 200,
0, 12.8)), ``speed``, ``lane`` (the lane its centre is in), ``goal``, ``status`` (0 waiting,
1 driving, 2 arrived, 3 collided, 4 timed out). ``render_rgb`` draws the four lanes from
above with the learning cars and SUMO's cars (capability ``Render``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from econsim.bounds import FINITE, Probability, Steps, Text
from econsim.core import Box, Discrete, Step, check_actions
from econsim.core.capabilities import (
    ActionMask,
    AgentEvents,
    MultiGoal,
    Plane,
    Processes,
    Render,
)
from econsim.core.registry import importable, register_game

ROAD_LENGTH, LANES, LANE_WIDTH = 200.0, 4, 3.2
ROAD_WIDTH = LANES * LANE_WIDTH  # 12.8
SPEED_LIMIT = 30.0
STEP_LENGTH = 0.2  # s
SUBLANE = 0.8  # lateral resolution, m
SUBLANES = round(ROAD_WIDTH / SUBLANE)  # 16
ARRIVE_X = 190.0
SPEED_SCALE = 29.0  # speeds are observed / 29
SPEEDING = 35.7
ACCEL = 2.5  # m/s^2
MAX_SPEED = 50.0  # the egos' maxSpeed
DEPART_SPEED = 29.1
EGO_LENGTH, EGO_WIDTH = 5.0, 1.8
Y_MIN, Y_MAX = 0.5 * LANE_WIDTH, ROAD_WIDTH - 0.5 * LANE_WIDTH  # lateral targets: lane centres
REWARD_COLLISION, REWARD_ARRIVE, REWARD_SPEEDING, REWARD_TIMEOUT = -1.0, 10.0, -0.1, -10.0
GRID_ROWS, GRID_COLS, CELL_LENGTH = 13, 9, 2.5
OBS_BOUND = 2.0
MAX_OTHERS = 160  # SUMO cars kept per world
MAX_WORLDS = 64  # worlds (SUMO processes) per batch
NOISE_CLIP = 4.0  # departure noise clipped at 4 sigma
TTC_LIMIT = 2.0  # s: the reference code's time-to-collision threshold (ttc_mask)

WAITING, DRIVING, ARRIVED, COLLIDED, TIMED_OUT = range(5)
STATUS_NAMES = ("waiting", "driving", "arrived", "collided", "timed out")
ACTION_NAMES = ("noop", "accelerate", "decelerate", "left", "right")
#: illegal at a time to collision <= TTC_LIMIT when ttc_mask is on
MASKED_ACTIONS = tuple(ACTION_NAMES.index(a) for a in ("noop", "accelerate"))

#: config -> (initial lanes, goal lanes) of the two cars; None: uniform at random ("train":
#: the ``formation``, uniform with probability ``random_start``)
CONFIGS: dict[str, tuple[tuple[int, int], tuple[int, int]] | None] = {
    "C1": ((1, 2), (3, 0)),
    "C2": None,
    "C3": ((1, 2), (2, 1)),
    "C4": ((0, 1), (3, 2)),
}
TRAFFIC = ("none", "heavy")
#: heavy traffic per lane: (insertion probability per second, share of trucks)
FLOWS = ((0.9, 0.2), (0.9, 0.1), (0.2, 0.0), (0.2, 0.0))

EGO_COLOURS = ((31, 119, 180), (44, 160, 44))  # car 0 blue, car 1 green
CRASH_COLOUR = (214, 39, 40)
SEDAN_COLOUR, TRUCK_COLOUR = (240, 200, 40), (230, 140, 30)
ASPHALT, MARKING, GOAL_LINE = (90, 90, 90), (235, 235, 235), (120, 200, 120)


class MissingSumo(ImportError):
    """The SUMO wheels are not installed; ``str(err)`` is one line naming the extra."""


class Params(BaseModel):
    model_config = FINITE
    n_agents: int = Field(2, ge=1, le=2, description="learning cars: 2, or 1 for the stage-1 "
                          "MDP (lanes at random)")
    config: Text = Field("train", description="starts: 'train' (the formation, or at random "
                         "with probability random_start) or Table A.1's 'C1', 'C2', 'C3', 'C4'")
    formation: Literal["C1", "C3"] = Field(
        "C1", description="'train': the cars' formation, C1 [1, 2] -> [3, 0] (Diss A.5 and the "
        "reference code) or C3 [1, 2] -> [2, 1] (the text of Diss A.7.2; econsim until "
        "2026-12-03)")
    random_start: Probability = Field(0.2, description="'train': chance that a world's lanes "
                                      "and goals are uniform at random instead")
    traffic: Text = Field("none", description="'none' (empty road, training) or 'heavy' "
                          "(Table A.1's SUMO sedans and trucks)")
    timeout: Steps = Field(33, description="time-out in steps of 0.2 s (Diss: 33; reference "
                           "code: 40), counted from the first step ('start' all_on_road) or "
                           "by 'clock'")
    clock: Literal["last_departure", "first_departure"] = Field(
        "last_departure", description="with start = own_departure, when the time-out's count "
        "starts: at the last car's scheduled departure (the reference code: once all cars are "
        "on the road) or at the "
        "first's (econsim before 2026-12-02)")
    depart_noise: float = Field(0.5, ge=0, le=2, description="standard deviation of each "
                                "car's departure time, seconds")
    start: Literal["all_on_road", "own_departure"] = Field(
        "all_on_road", description="when the cars start to act: once every car is on the "
        "road (the reference code: SUMO keeps the earlier cars' speed and lane until the last "
        "departs; the steps and the time-out count from then, whatever 'clock' says) or each "
        "at its own departure (econsim until 2026-12-03: a waiting car's actions are ignored "
        "but its transitions are learnt from)")
    warmup: float = Field(10.0, ge=0, le=60, description="'heavy': seconds of SUMO traffic "
                          "before the learning cars depart")
    ttc_mask: bool = Field(False, description="the reference code's safety rule: no-op and "
                           "accelerate are illegal for a car at most 2 s from a collision "
                           "with a vehicle ahead in its path (off: the Diss, every action "
                           "always legal)")

    @model_validator(mode="before")
    @classmethod
    def _stored_before_the_clock(cls, data):
        """A scenario stored before 2026-12-02 names the time-out ``max_steps`` and meant the
        count from the first departure, each car acting from its own, in formation C3: read it
        so (runs stored then load and resume)."""
        if isinstance(data, dict) and "max_steps" in data and "timeout" not in data:
            data = {**data, "timeout": data["max_steps"],
                    "clock": data.get("clock", "first_departure"),
                    "start": data.get("start", "own_departure"),
                    "formation": data.get("formation", "C3")}
            del data["max_steps"]
        return data

    @field_validator("config")
    @classmethod
    def _known_config(cls, v):
        if v != "train" and v not in CONFIGS:
            raise ValueError(f"unknown config (allowed: train, {', '.join(CONFIGS)})")
        return v

    @field_validator("traffic")
    @classmethod
    def _known_traffic(cls, v):
        if v not in TRAFFIC:
            raise ValueError(f"unknown traffic (allowed: {', '.join(TRAFFIC)})")
        return v

    @model_validator(mode="after")
    def _fits(self):
        if self.n_agents == 1 and self.config not in ("train", "C2"):
            raise ValueError(f"config {self.config!r} places two cars (one car: 'train' or "
                             "'C2', lanes at random)")
        return self


@dataclass
class State:
    """One world per row: the episode's draws, the actions so far and the last snapshot of
    the road (module docstring)."""

    t: np.ndarray  # [B] steps taken
    episode: np.ndarray  # [B] key of the episode (its simulation), unique within the game
    seed: np.ndarray  # [B] SUMO --seed of the episode
    lane: np.ndarray  # [B, N] initial lane
    goal: np.ndarray  # [B, N] goal lane
    delay: np.ndarray  # [B, N] departure step (all_on_road: steps before step 0)
    history: np.ndarray  # [B, max_steps, N] int8 actions taken
    ready: np.ndarray  # [B] the snapshot below is the simulation's (False: not loaded yet)
    status: np.ndarray  # [B, N] int8 WAITING .. TIMED_OUT
    x: np.ndarray  # [B, N] float32 front bumper along the road, m
    y: np.ndarray  # [B, N] float32 centre, from the right edge, m
    v: np.ndarray  # [B, N] float32 speed, m/s
    bx: np.ndarray  # [B, K] float32 SUMO cars: front bumper
    by: np.ndarray  # [B, K] float32 centre
    bv: np.ndarray  # [B, K] float32 speed
    blen: np.ndarray  # [B, K] float32 length
    bwid: np.ndarray  # [B, K] float32 width
    bkind: np.ndarray  # [B, K] int8: -1 empty slot, 0 sedan, 1 truck


class Vehicles(NamedTuple):
    """Every vehicle a learning car may meet, ``[B, M]`` with ``M = N + K``: the learning
    cars first, then SUMO's (float64 sizes, positions and speeds)."""

    front: np.ndarray  # front bumper x
    length: np.ndarray
    y: np.ndarray  # centre
    width: np.ndarray
    speed: np.ndarray
    there: np.ndarray  # bool: a learning car that drives, an occupied SUMO slot


def vehicles(s: State) -> Vehicles:
    """The learning cars and SUMO's side by side (see ``Vehicles``)."""
    b, n = s.x.shape
    return Vehicles(
        front=np.concatenate([s.x, s.bx], 1).astype(np.float64),
        length=np.concatenate([np.full((b, n), EGO_LENGTH), s.blen], 1),
        y=np.concatenate([s.y, s.by], 1).astype(np.float64),
        width=np.concatenate([np.full((b, n), EGO_WIDTH), s.bwid], 1),
        speed=np.concatenate([s.v, s.bv], 1).astype(np.float64),
        there=np.concatenate([s.status == DRIVING, s.bkind >= 0], 1))


def time_to_collision(s: State) -> np.ndarray:
    """``[B, N]`` seconds until each learning car would touch the nearest vehicle ahead in
    its path at the current speeds (``inf`` if it closes on none; 0 once it touches one); the
    vehicles: the other learning car while it drives, SUMO's cars (module docstring). The
    value of a car that is not driving means nothing (``action_mask`` ignores it)."""
    n = s.x.shape[1]
    v = vehicles(s)
    me_front, me_y = v.front[:, :n, None], v.y[:, :n, None]
    ahead = (v.there[:, None, :] & (v.front[:, None, :] > me_front)
             & (np.abs(v.y[:, None, :] - me_y) < (v.width[:, None, :] + EGO_WIDTH) / 2))
    ahead[:, np.arange(n), np.arange(n)] = False  # not itself
    gap = np.maximum((v.front - v.length)[:, None, :] - me_front, 0.0)  # [B, N, M]
    closing = v.speed[:, :n, None] - v.speed[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ttc = np.where(ahead & ((closing > 0) | (gap == 0)), gap / np.maximum(closing, 1e-12),
                       np.inf)
    return np.fmin.reduce(ttc, axis=2)  # a NaN (none expected) never hides a close vehicle


def lane_centre(lane) -> np.ndarray:
    """Lateral position (m from the right edge) of the centre of ``lane``."""
    return (np.asarray(lane) + 0.5) * LANE_WIDTH


def routes_xml(traffic: str) -> str:
    """Vehicle types, the route and (heavy traffic) the background flows, as SUMO XML."""
    lines = [
        "<routes>",
        f'    <vType id="ego" vClass="passenger" length="{EGO_LENGTH:g}" '
        f'width="{EGO_WIDTH:g}" minGap="0" maxSpeed="{MAX_SPEED:g}" maxSpeedLat="2" '
        'speedDev="0" sigma="0" lcCooperative="0" lcSpeedGainRight="1" lcPushy="1" '
        'lcPushyGap="0" lcAssertive="100" lcAccelLat="10"/>',
        '    <vType id="sedan" vClass="passenger" length="5" width="1.8" speedDev="0.1" '
        'sigma="0.5"/>',
        '    <vType id="truck" vClass="truck" length="7.1" width="2.4" maxSpeed="35" '
        'speedDev="0.1" sigma="0.5"/>',
        '    <route id="road" edges="road"/>',
    ]
    if traffic == "heavy":
        for k, (p, trucks) in enumerate(FLOWS):
            kind = "sedan"
            if trucks:
                kind = f"lane{k}"
                lines.append(f'    <vTypeDistribution id="{kind}" vTypes="sedan truck" '
                             f'probabilities="{1 - trucks:g} {trucks:g}"/>')
            lines.append(f'    <flow id="bg{k}" type="{kind}" route="road" begin="0" '
                         f'end="100000" probability="{p:g}" departLane="{k}" '
                         f'departSpeed="{DEPART_SPEED:g}"/>')
    lines.append("</routes>")
    return "\n".join(lines) + "\n"


SUMO_OPTIONS = (
    "--step-length", f"{STEP_LENGTH:g}", "--lateral-resolution", f"{SUBLANE:g}",
    "--collision.action", "remove", "--collision.mingap-factor", "0",
    "--time-to-teleport", "-1", "--eager-insert", "true", "--begin", "0",
    "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true",
    "--xml-validation", "never",
)


def missing_sumo() -> MissingSumo | None:
    """The error to raise when the SUMO wheels cannot be imported here, else None."""
    for module in SumoMerge.requires:
        if not importable(module):
            return MissingSumo(f"sumo_merge needs the SUMO wheels ({module} is missing): "
                               f"pip install 'econsim[{SumoMerge.extra}]'")
    return None


@register_game("sumo_merge", Params)
class SumoMerge(MultiGoal, ActionMask, Plane, AgentEvents, Render, Processes):
    """The SUMO double lane merge, batch-first (rules, observation, info: the module
    docstring)."""

    name = "sumo_merge"
    #: optional packages the game needs, and the extra that installs them
    requires = ("sumo", "libsumo")
    extra = "traffic"
    #: what ``econsim bench`` measures (``econsim.core.registry.bench_of``)
    bench_variants = {"sumo_merge(empty)": {},
                      "sumo_merge(heavy)": {"traffic": "heavy", "config": "C2"}}
    bench_batches = (1, 8)
    action_space = Discrete(5)
    action_names = ACTION_NAMES
    agent_info_keys = ("collision", "arrived", "timeout", "speeding", "merged")
    extent = (0.0, ROAD_LENGTH, 0.0, ROAD_WIDTH)
    max_worlds = MAX_WORLDS  # one SUMO process per world (capability Processes)
    self_size, goal_size, env_state_size, agent_state_size = 3, LANES, 0, 3
    columns = {  # the data dictionary's entries of this game (econsim.dictionary)
        "run_agents": {
            "collision": ("0/1", "the car collided (-1 reward, its episode ends)"),
            "arrived": ("0/1", "the car reached x >= 190 m (10 (1 - lane offset) reward)"),
            "timeout": ("0/1", "the car was still on its way at the time-out (-10 reward)"),
            "speeding": ("steps", "steps the car ended faster than 35.7 m/s (-0.1 each)"),
            "merged": ("0/1", "the episode ended with every car arrived in its goal lane and no "
                       "collision (the same for every car of the world)"),
        },
        "steps": {
            "x": ("m", "front bumper of the car along the road (0 to 200)"),
            "y": ("m", "centre of the car from the road's right edge (0 to 12.8)"),
            "speed": ("m/s", "speed of the car"),
            "lane": ("lane", "lane the car's centre is in (0 = rightmost)"),
            "goal": ("lane", "the car's goal lane"),
            "status": ("code", "0 waiting to enter, 1 driving, 2 arrived, 3 collided, "
                       "4 timed out"),
            "collision": ("0/1", "1 if the car collided this step"),
            "arrived": ("0/1", "1 if the car reached x >= 190 m this step"),
            "timeout": ("0/1", "1 if the car timed out this step"),
            "speeding": ("0/1", "1 if the car ended this step faster than 35.7 m/s"),
            "merged": ("0/1", "1 on the step the episode ended with every car arrived in its "
                       "goal lane and no collision"),
        },
    }

    def __init__(self, **params) -> None:
        p = self.params = Params(**params)
        missing = missing_sumo()
        if missing is not None:
            raise missing
        from econsim.envs.sumo_merge import pool

        self.n_agents = n = p.n_agents
        self.timeout = p.timeout
        #: departure noise in steps is clipped at 4 sigma, so delays (one car: none) range
        #: over 2 rint(4 sigma) steps; the clock from the last departure can add them
        self._clip = NOISE_CLIP * p.depart_noise / STEP_LENGTH
        self.max_delay = 2 * int(np.rint(self._clip)) if n > 1 else 0
        late = p.clock == "last_departure" and p.start == "own_departure"
        self.max_steps = p.timeout + (self.max_delay if late else 0)
        self.config, self.traffic = p.config, p.traffic
        if n == 1 or p.config == "C2":
            self.random_start = 1.0
        else:
            self.random_start = p.random_start if p.config == "train" else 0.0
        fixed = CONFIGS[p.formation if p.config == "train" else p.config] or CONFIGS["C1"]
        self._lanes0 = np.array(fixed[0][:n], np.int64)
        self._goals0 = np.array(fixed[1][:n], np.int64)
        self.others_size = GRID_ROWS * GRID_COLS * 2 if n > 1 else 0
        self.others_image = (GRID_ROWS, GRID_COLS, 2) if n > 1 else None
        self.obs_size = self.self_size + self.goal_size + self.others_size
        self.observation_space = Box((self.obs_size,), -OBS_BOUND, OBS_BOUND)
        warmup = round(p.warmup / STEP_LENGTH) if p.traffic == "heavy" else 0
        self._pool = pool.Pool({
            "net_xml": pool.net_xml(ROAD_LENGTH, LANES, LANE_WIDTH, SPEED_LIMIT),
            "routes_xml": routes_xml(p.traffic), "options": list(SUMO_OPTIONS),
            "n_agents": n, "warmup_steps": warmup, "step_length": STEP_LENGTH,
            "depart_speed": DEPART_SPEED, "accel": ACCEL, "max_speed": MAX_SPEED,
            "sublane": SUBLANE, "y_min": Y_MIN, "y_max": Y_MAX, "lane_width": LANE_WIDTH,
            "road_width": ROAD_WIDTH, "arrive_x": ARRIVE_X,
            "preroll": p.start == "all_on_road",
        })
        self._episodes = itertools.count()
        self._goal_eye = np.eye(LANES, dtype=np.float32)

    # ------------------------------------------------------------------ processes
    def close(self) -> None:
        """Stop this game's SUMO workers (a later reset starts new ones)."""
        self._pool.close()

    def __reduce__(self):
        """A copy (``copy``, ``pickle``) is the same game with workers of its own."""
        return (_rebuild, (self.params.model_dump(),))

    def __enter__(self) -> SumoMerge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def pids(self) -> list[int]:
        """Process ids of the game's SUMO workers (one per world of the largest batch)."""
        return self._pool.pids()

    def folders(self) -> list[str]:
        """Temporary folders of the game's SUMO workers (removed when they exit)."""
        return self._pool.folders()

    # ------------------------------------------------------------------ contract
    def reset(self, batch: int, rng: np.random.Generator) -> State:
        if not 1 <= batch <= MAX_WORLDS:
            raise ValueError(f"{self.name}: batch {batch} is not allowed (allowed: 1 to "
                             f"{MAX_WORLDS} worlds, one SUMO process each)")
        n = self.n_agents
        pick = rng.random((batch, 1)) < self.random_start
        lanes = rng.integers(0, LANES, size=(batch, n))
        goals = rng.integers(0, LANES, size=(batch, n))
        noise = rng.standard_normal((batch, n)) * self.params.depart_noise / STEP_LENGTH
        seed = rng.integers(0, 2**31 - 1, size=batch)
        lanes = np.where(pick, lanes, self._lanes0).astype(np.int64)
        goals = np.where(pick, goals, self._goals0).astype(np.int64)
        steps = np.rint(np.clip(noise, -self._clip, self._clip)).astype(np.int64)
        self._pool.ensure(batch)
        k = MAX_OTHERS
        empty = np.zeros((batch, k), np.float32)
        return State(
            t=np.zeros(batch, np.int64),
            episode=np.fromiter(itertools.islice(self._episodes, batch), np.int64, batch),
            seed=seed.astype(np.int64), lane=lanes, goal=goals,
            delay=steps - steps.min(1, keepdims=True),
            history=np.zeros((batch, self.max_steps, n), np.int8),
            ready=np.zeros(batch, bool),
            status=np.zeros((batch, n), np.int8),
            x=np.zeros((batch, n), np.float32),
            y=lane_centre(lanes).astype(np.float32),
            v=np.full((batch, n), DEPART_SPEED, np.float32),
            bx=empty, by=empty.copy(), bv=empty.copy(), blen=empty.copy(), bwid=empty.copy(),
            bkind=np.full((batch, k), -1, np.int8))

    def _request(self, s: State, b: int, actions: np.ndarray | None) -> tuple:
        t = int(s.t[b])
        return ("run", int(s.episode[b]), int(s.seed[b]), s.lane[b].tolist(),
                s.delay[b].tolist(), s.history[b, :t].copy(), actions)

    def _write(self, s: State, b: int, snap: dict) -> None:
        """Row ``b`` of ``s`` from a worker's snapshot."""
        s.status[b] = snap["status"]
        s.x[b], s.y[b], s.v[b] = snap["x"], snap["y"], snap["v"]
        bx = snap["bx"]
        keep = np.arange(len(bx))
        if len(bx) > MAX_OTHERS:  # the SUMO cars nearest a learning car
            gap = np.abs(bx[:, None] - snap["x"][None]).min(1)
            keep = np.sort(np.argsort(gap, kind="stable")[:MAX_OTHERS])
        m = len(keep)
        for name in ("bx", "by", "bv", "blen", "bwid"):
            row = getattr(s, name)[b]
            row[:m], row[m:] = snap[name][keep], 0.0
        s.bkind[b, :m], s.bkind[b, m:] = snap["bkind"][keep], -1

    def _sync(self, s: State) -> None:
        """Load the worlds of ``s`` whose snapshot is not the simulation's yet (in place)."""
        rows = np.flatnonzero(~s.ready)
        if rows.size:
            replies = self._pool.exchange({int(b): self._request(s, b, None) for b in rows})
            for b, snap in replies.items():
                self._write(s, b, snap)
            s.ready[rows] = True

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        acts = check_actions(self, actions, state.t.shape[0])
        self._sync(state)
        old = state.status
        s = State(**{f.name: getattr(state, f.name).copy() for f in fields(State)})
        on = (old == WAITING) | (old == DRIVING)
        deadline = self.deadline(s)
        active = (s.t < deadline) & on.any(1)
        rows = np.flatnonzero(active)
        replies = self._pool.exchange(
            {int(b): self._request(s, b, acts[b].astype(np.int8)) for b in rows})
        for b, snap in replies.items():
            self._write(s, b, snap)
        s.history[rows, s.t[rows]] = acts[rows]
        s.t[rows] += 1
        new = s.status
        collided = on & (new == COLLIDED)
        arrived = (old != ARRIVED) & (new == ARRIVED)
        speeding = (old == DRIVING) & ((new == DRIVING) | arrived) & (s.v > SPEEDING)
        late = (active & (s.t >= deadline))[:, None] & ((new == WAITING)
                                                                 | (new == DRIVING))
        s.status = np.where(late, np.int8(TIMED_OUT), new).astype(np.int8)
        offset = np.abs(s.y - lane_centre(s.goal)) / ROAD_WIDTH
        reward = (REWARD_COLLISION * collided + REWARD_ARRIVE * (1 - offset) * arrived
                  + REWARD_SPEEDING * speeding + REWARD_TIMEOUT * late).astype(np.float32)
        done = (s.t >= deadline) | (s.status >= ARRIVED).all(1)
        lane = np.clip(s.y // LANE_WIDTH, 0, LANES - 1)  # the lane each car ended in
        merged = active & done & ((s.status == ARRIVED) & (lane == s.goal)).all(1)
        info = {"collision": collided.astype(np.int64), "arrived": arrived.astype(np.int64),
                "timeout": late.astype(np.int64), "speeding": speeding.astype(np.int64),
                "merged": np.repeat(merged[:, None], s.status.shape[1], 1).astype(np.int64)}
        return Step(s, self._observe(s), reward, done, info)

    def deadline(self, s: State) -> np.ndarray:
        """``[B]`` the step count at which each world times out (``clock``)."""
        if self.params.clock == "first_departure" or self.params.start == "all_on_road":
            return np.full(s.t.shape, self.timeout, np.int64)
        return s.delay.max(1) + self.timeout

    # ------------------------------------------------------------------ observation
    def observe(self, state: State) -> np.ndarray:
        self._sync(state)
        return self._observe(state)

    def _observe(self, s: State) -> np.ndarray:
        b, n = s.t.shape[0], self.n_agents
        obs = np.zeros((b, n, self.obs_size), np.float32)
        obs[..., 0] = s.v / SPEED_SCALE
        obs[..., 1] = (lane_centre(s.goal) - s.y) / ROAD_WIDTH
        obs[..., 2] = (ARRIVE_X - s.x) / ARRIVE_X
        obs[..., 3:3 + LANES] = self._goal_eye[s.goal]
        if n > 1:
            obs[..., 3 + LANES:] = self.grid(s).reshape(b, n, -1)
        return obs

    def grid(self, s: State) -> np.ndarray:
        """``[B, N, 13, 9, 2]`` float32: each car's view of the other vehicles (module
        docstring: rows ahead/behind, columns left/right, occupancy and relative speed)."""
        b, n = s.t.shape[0], self.n_agents
        v = vehicles(s)
        length, width, speed, there = v.length, v.width, v.speed, v.there
        cx = v.front - length / 2  # centres; the first n: the observers
        dx = cx[:, None, :] - cx[:, :n, None]  # [B, N, M]
        dy = v.y[:, None, :] - v.y[:, :n, None]
        half_x, half_y = GRID_ROWS * CELL_LENGTH / 2, GRID_COLS * SUBLANE / 2
        r_lo = np.floor((dx - length[:, None] / 2 + half_x) / CELL_LENGTH)
        r_hi = np.ceil((dx + length[:, None] / 2 + half_x) / CELL_LENGTH) - 1
        c_lo = np.floor((dy - width[:, None] / 2 + half_y) / SUBLANE)
        c_hi = np.ceil((dy + width[:, None] / 2 + half_y) / SUBLANE) - 1
        seen = (there[:, None, :] & (r_hi >= 0) & (r_lo < GRID_ROWS) & (c_hi >= 0)
                & (c_lo < GRID_COLS))
        seen[:, np.arange(n), np.arange(n)] = False  # not itself
        wb, wn, wm = np.nonzero(seen)  # the (world, car, vehicle) pairs in view
        out = np.zeros((b, n, GRID_ROWS, GRID_COLS, 2), np.float32)
        if wb.size == 0:
            return out
        rows, cols = np.arange(GRID_ROWS), np.arange(GRID_COLS)
        cover = (((rows >= r_lo[wb, wn, wm, None]) & (rows <= r_hi[wb, wn, wm, None]))[:, :, None]
                 & ((cols >= c_lo[wb, wn, wm, None]) & (cols <= c_hi[wb, wn, wm, None]))[:, None])
        # the nearest vehicle of a cell gives its relative speed: rank pairs by distance
        dist = np.hypot(dx[wb, wn, wm], dy[wb, wn, wm])
        order = np.lexsort((wm, dist))  # nearest first, ties by index
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        best = np.full((b, n, GRID_ROWS, GRID_COLS), order.size, np.int64)
        np.minimum.at(best, (wb, wn), np.where(cover, rank[:, None, None], order.size))
        occupied = best < order.size
        pair = order[np.minimum(best, order.size - 1)]
        rel = (speed[wb[pair], wm[pair]] - speed[wb[pair], wn[pair]]) / SPEED_SCALE
        rel = np.clip(rel, -OBS_BOUND, OBS_BOUND)
        out[..., 0] = occupied
        out[..., 1] = np.where(occupied, rel, 0.0)
        return out

    # ------------------------------------------------------------------ ActionMask
    def action_mask(self, state: State) -> np.ndarray:
        """``[B, N, 5]`` bool: every action, except no-op and accelerate for a driving car
        within ``TTC_LIMIT`` of a collision when ``ttc_mask`` is on (module docstring)."""
        b, n = state.status.shape
        legal = np.ones((b, n, len(ACTION_NAMES)), bool)
        if self.params.ttc_mask:
            self._sync(state)
            close = (state.status == DRIVING) & (time_to_collision(state) <= TTC_LIMIT)
            legal[..., list(MASKED_ACTIONS)] = ~close[..., None]
        return legal

    # ------------------------------------------------------------------ MultiGoal
    def global_state(self, state: State) -> tuple[np.ndarray, np.ndarray]:
        """``(s_env [B, 0], s_agents [B, N, 3] = [x / 200, y / 12.8, v / 29])`` (A.7.2)."""
        self._sync(state)
        b = state.t.shape[0]
        agents = np.stack([state.x / ROAD_LENGTH, state.y / ROAD_WIDTH,
                           state.v / SPEED_SCALE], -1).astype(np.float32)
        return np.zeros((b, 0), np.float32), agents

    def induced(self) -> SumoMerge:
        """Stage 1 of CM3 (Diss A.7.2 "Induced MDP"): one car, initial and goal lanes
        uniform at random, the empty road."""
        return SumoMerge(**{**self.params.model_dump(), "n_agents": 1, "config": "train",
                            "traffic": "none"})

    # ------------------------------------------------------------------ Plane, Mesa, replays
    def landmarks(self, state: State, world: int = 0) -> np.ndarray:
        """``[N, 2]``: each car's goal, the centre of its goal lane at x = 190 m."""
        g = state.goal[world]
        return np.stack([np.full(len(g), ARRIVE_X), lane_centre(g)], -1).astype(np.float64)

    def describe(self, state: State) -> dict[str, np.ndarray]:
        self._sync(state)
        lane = np.clip(np.floor(state.y / LANE_WIDTH), 0, LANES - 1).astype(np.int64)
        return {"x": state.x.copy(), "y": state.y.copy(), "speed": state.v.copy(),
                "lane": lane, "goal": state.goal.copy(),
                "status": state.status.astype(np.int64)}

    def render_rgb(self, state: State, world: int = 0, scale: int = 4) -> np.ndarray:
        """``[13 scale, 200 scale, 3]`` uint8 top view of ``world`` (lane 3 at the top, the
        road running left to right): lane markings, the goal line at 190 m with each car's
        goal lane marked in its colour, SUMO's sedans (yellow) and trucks (orange), the
        learning cars in their colours (a collided one in red where it crashed)."""
        self._sync(state)
        h, w = int(np.ceil(ROAD_WIDTH * scale)), int(ROAD_LENGTH * scale)
        img = np.empty((h, w, 3), np.uint8)
        img[:] = ASPHALT

        def box(x0, x1, y0, y1, colour):  # metres -> pixels, y up
            c0, c1 = max(int(round(x0 * scale)), 0), min(int(round(x1 * scale)), w)
            r0 = max(int(round(h - y1 * scale)), 0)
            r1 = min(int(round(h - y0 * scale)), h)
            if c0 < c1 and r0 < r1:
                img[r0:r1, c0:c1] = colour

        for k in range(1, LANES):  # dashed lane markings: 3 m of every 9 m
            for x0 in np.arange(0.0, ROAD_LENGTH, 9.0):
                box(x0, x0 + 3.0, k * LANE_WIDTH - 0.08, k * LANE_WIDTH + 0.08, MARKING)
        box(ARRIVE_X - 0.15, ARRIVE_X + 0.15, 0.0, ROAD_WIDTH, GOAL_LINE)
        for i, g in enumerate(state.goal[world]):
            box(ARRIVE_X + 1.0, ARRIVE_X + 3.0, g * LANE_WIDTH + 0.4, (g + 1) * LANE_WIDTH - 0.4,
                EGO_COLOURS[i % len(EGO_COLOURS)])
        for k in np.flatnonzero(state.bkind[world] >= 0):
            x, y = float(state.bx[world, k]), float(state.by[world, k])
            ln, wd = float(state.blen[world, k]), float(state.bwid[world, k])
            box(x - ln, x, y - wd / 2, y + wd / 2,
                TRUCK_COLOUR if state.bkind[world, k] == 1 else SEDAN_COLOUR)
        for i in range(self.n_agents):
            st = state.status[world, i]
            if st == WAITING:
                continue
            x, y = float(state.x[world, i]), float(state.y[world, i])
            colour = CRASH_COLOUR if st == COLLIDED else EGO_COLOURS[i % len(EGO_COLOURS)]
            box(x - EGO_LENGTH, x, y - EGO_WIDTH / 2, y + EGO_WIDTH / 2, colour)
        return img


def _rebuild(params: dict) -> SumoMerge:
    return SumoMerge(**params)
