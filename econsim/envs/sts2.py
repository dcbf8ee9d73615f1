"""STS2, the Simple Team Sports Simulator in 3v3 mode (Diss §4.3.1; SPEC §8, §8b).

Re-implemented from the rules below (SPEC §8 and the facts its authors checked in the
reference code), batch-first: a step, an observation or the script is one call of a
function compiled with numba that loops over the worlds of the batch (``_step``,
``_observe``, ``_script``; bit-identical to the numpy kernel it replaced, which
``tests/test_sts2_kernel_pins.py`` pins). Actions outside 0..8 are a one-line error.

Players and coordinates
-----------------------
Six discs of radius 0.75 on the rink x in [-9, 9], z in [-18, 18]. Players 0, 1, 2 are the
learning team (``n_agents = 3``); players 3, 4, 5 are the scripted opponent team, played
inside the kernel. The learning team attacks the net at (0, +18) and defends (0, -18); the
opponents the reverse. (The reference code's learning "home" team attacks -z; the rink is
mirrored in z here so that the learning team attacks upwards in pictures. No rule depends on
the sign.)

One step is one tick, in this order:

1. **Timers.** Every player's action timer drops by 1 (not below 0). A player whose timer is
   still above 0 is *busy*: it has no input and no puck action this tick, cannot steal and
   cannot intercept (the reference's "stunned" state; its velocity carries on).
2. **Decisions**, from the positions at the start of the tick. Learning agents: actions (9)
   ``none, shoot, pass_1, pass_2, pass_3, down, up, right, left``; the moves are relative to
   the attack direction (up = towards the attacked net, +z; right = +x); shoot or pass without
   the puck, or a pass to oneself, is ``none``; a shot or pass has no move input.
   Scripted players (the opponents, and the last ``scripted_teammates`` learning slots, whose
   action from the learner is ignored and overridden by the script):

   * the carrier skates towards the net it attacks; it shoots if its distance to that net is
     below 0.3 x the rink diagonal (0.3 * sqrt(18^2 + 36^2) = 12.07) and the simulated
     success (on-net chance x through-chance of the shot line) is above 0.3; else it passes to
     the non-busy teammate closest to the net among those closer to the net than itself with a
     through-chance above 0.8 (ties: the lower index); else it only skates;
   * when a teammate has the puck: it skates to (net + own position) / 2 + 9 unit(own
     position - team centroid);
   * when the other team has the puck: the two players of the team nearest the carrier (ties:
     lower index) chase the carrier, the third goes to the midpoint between the carrier and
     the net the carrier attacks.

   A scripted input (target - position) becomes a unit vector rounded to {-1, 0, 1} per axis
   (a diagonal is then normalised by the motion model).
3. **Motion** (SPEC §8): input ``i`` (normalised if longer than 1), ``a = i (|i| - v.i /
   0.5) 0.05``, ``v <- v + a``, the speed capped at 0.5 per tick, ``p <- p + v``.
4. **Walls**: a centre beyond [-8.25, 8.25] x [-17.25, 17.25] (the rink less the radius) is
   clamped back and that velocity component set to 0.
5. **Collisions**: each pair at most 1.5 apart (centres), in index order (0,1), (0,2), ...,
   (4,5), is pushed apart to 0.7575 each side of its midpoint along the line between them
   (along x when they coincide), and both get the pair's average velocity. **Steal**: if one
   of the pair carries the puck and the other is an opponent whose timer is 0, the carrier is
   stunned (timer 20) and the other takes the puck (timer at least 15). Then the wall rule
   again (see "Choices" below).
6. **Puck action** of the carrier of the start of the tick, if it still has the puck
   (positions after the motion):

   * **shot** at the net it attacks: on net with chance ``|u_z| min(1, 4 / |dz|)`` (``u``
     the unit vector to the net, ``dz`` the z distance); then the *interception test* over
     the non-busy opponents; the shooter's timer becomes at least 10. Intercepted: the
     interceptor takes the puck (timer at least 15). Else on net: **goal**. Else missed: the
     player (any team) nearest the attacked net takes the puck (timer at least 15).
   * **pass** to a teammate: the interception test along the line to it; intercepted, the
     interceptor takes the puck, else the target (timer at least 15); the passer's timer
     becomes at least 10.

   Interception test (source s, target g, unit direction u, length L): for each candidate in
   index order with ``along = u.(p - s) > 0`` (in front of the source), ``a = min(along, L)``,
   the intercept point ``s + a u`` (the target if beyond it), ``closest = max(0, |p - point| -
   0.05 a)``; ``prob = 0`` if ``closest > 3.5``, else ``0.5 + 0.5 closest / 3.5`` (SPEC; the
   reference's min 0.5 / max 1.0 chances: the chance *grows* with the gap, as there). A
   candidate whose ``closest`` is below the best so far intercepts with chance ``prob``
   (one uniform draw per candidate), becoming the best. Through-chance: ``prod(1 - prob)``.
7. **Kick-off** (reset): players placed in their own half, x a random integer in [-9, 9),
   z = -18 + 36 r for the learning team and 18 - 36 r for the opponents, r uniform in
   [0, 0.5), then the wall rule; velocities and timers 0; a random player of the kick-off
   team has the puck and timer 15. The kick-off team alternates with the total score
   of the world's match: team ``(first + goals so far) mod 2``.
8. **End**: on a goal (``end_on_goal``, the Diss) or after ``max_steps`` (500) steps.
   With ``end_on_goal = False`` a goal is followed by a kick-off inside the same step (the
   original game's rule) and the episode runs to ``max_steps``.

Team reward (the same for the three learning agents, ``[B, 3]``): +1 when the learning team
scores, -1 when the opponents score; +0.1 on the step the learning team takes the puck from
the opponents, -0.1 when it loses it to them (a kick-off is no change); ``+c`` for every step
ending with the learning team in possession, ``-c`` otherwise (the scorer keeps the puck on
its goal step, as in the reference); -0.5 (``draw_penalty``) on the last step of an episode
that ends in a draw at the cap.

Observation of agent n (31 float32, Diss §4.3.1, the reference's normalisation): the carrier's
position relative to the agent divided by the rink size (18, 36) and its velocity relative to
the agent's (4); the agent has the puck (1); its team has the puck (1); its own position
(x / 9, z / 18) and velocity (4); each teammate in index order: relative position / (18, 36)
and relative velocity (2 x 4); the opponents have the puck (1); each opponent: relative
position and velocity (3 x 4). The first 10 entries are what HSD's skill decoder sees.
Velocities are in rink units per tick (|v| <= 0.5), so every entry lies in [-1, 1].

Global state (``global_state``, ``[B, 34]``, ``state_size = 34``; capability ``GlobalState``,
what QMIX's mixer and HSD's high level see; the reward is shared, ``shared_reward``): the
carrier's position (x / 9, z / 18) and velocity (4), a one-hot of the carrier among the 6
players (3 learning, then 3 opponents), then (x / 9, z / 18, vx, vz) of each player 0..5 (24).

``info`` per step, per learning agent ``[B, 3]`` (capability ``AgentEvents``; the rollout
sums them per episode): ``shot`` (shot taken), ``goal`` (scored), ``rebound`` (took the puck
after its team's missed shot), ``pass_attempt``, ``pass_made`` (a completed pass),
``pass_received``, ``interception`` (took the puck by intercepting an opponent's shot or
pass), ``steal`` (took the puck from the opponent carrier by contact), ``possession`` (has
the puck after the step), and ``win`` / ``lose`` / ``draw`` (1 for every agent of the team on
the last step of an episode the team won, lost or drew; they are per-agent step events
rather than ``EpisodeMetrics``, which sees only the actions). Passes are ``pass_*`` since
``pass`` is a Python keyword (no attribute or formula term could name it).

Helpers: ``make_state`` builds a hand-made world (tests, what-if starts); ``script(state)``
is the scripted policy of all six players (inputs, the carrier's shot or pass);
``scripted [6]`` marks the players the script moves.

All randomness comes from the ``rng`` argument with the batch as the leading axis (reset:
``rng.random((B, 14))``; every step: ``rng.random((B, 4))``, plus ``rng.random((B, 13))`` for
the kick-offs when ``end_on_goal`` is False), drawn whether used or not, so a world's
trajectory does not depend on the batch it is in (when the batch is reset as a whole, as the
trainers' rollout does: ``econsim.core.reset_done`` draws a fresh batch whenever any world is
done, which shifts the streams of a ``ReplicaRNG``'s other replicas).

Mesa and replays: ``describe`` gives ``x``, ``z`` (and ``y`` = ``z``, the second coordinate
of capability ``Plane``), ``vx``, ``vz``, ``has_puck`` of the learning agents; ``extent`` is
the rink and the ``landmarks`` are the two nets (row 0: the net the learning team attacks);
``bodies`` are the three opponents and the puck, which the Mesa face also places.
``render_rgb`` draws the rink, both teams (busy players paler), the puck on its carrier and
a ring around the player of the step's main event.

Choices where neither the Diss nor SPEC decide, and where they disagree
----------------------------------------------------------------------
* Possession reward ``c``: the Diss says ``1 / (2 + max steps)`` (0.00199); SPEC §8 and the
  reference code use ``1 / (2 max steps)`` = 0.001. The Diss wins by the rule of this
  project (default ``possession_reward = None`` = Diss); pass ``possession_reward=0.001`` for
  the reference's value.
* State order: the Diss lists the carrier, the one-hot of the 6 players, then every player;
  the reference interleaves the learning team's one-hot and players, then the opponents'.
  The Diss order is used (the same 34 numbers).
* The Diss calls the carrier's position "relative to the goal"; the reference divides the
  position by the half-rink (the nets' x is 0), which is what is used.
* Kick-off team: the reference never resets its score between episodes, so its kick-off
  alternates between episodes ending in a goal. Batch-first worlds are reset one by one
  without memory, so ``kickoff = "random"`` (default) draws the kick-off team of a fresh
  world (the team at an even total score) at random; ``"learners"``/``"opponents"`` fix it.
  Within a world's match (``end_on_goal = False``) it alternates with the score.
* The reference applies the wall rule once, before the collisions, so a push could leave a
  disc over the boards until the next tick; here the wall rule runs again after the
  collision pass, so every centre stays inside the rink less the radius.
* The reference visits ordered pairs (each pair twice per tick); here each pair once in index
  order. Two coincident players are separated along -x / +x (the reference would put both on
  the same point).
* "Busy" teammates of the scripted pass are those with a timer after this tick's decrement
  for every player (the reference decides players one by one).
* The reference's first observation of an episode comes after one idle tick; here it is the
  kick-off state itself. Its draw penalty is also paid when a goal falls on step 500; here
  only on a draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit
from pydantic import BaseModel, Field

from econsim.bounds import FINITE, Coefficient, Probability, Steps
from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import AgentEvents, GlobalState, Plane, Render
from econsim.core.game import check_actions
from econsim.core.registry import register_game

# ------------------------------------------------------------------------------ rules
HALF_X, HALF_Z = 9.0, 18.0  # the rink is [-9, 9] x [-18, 18]
RADIUS = 0.75
X_MAX, Z_MAX = HALF_X - RADIUS, HALF_Z - RADIUS  # where a centre may be
MAX_SPEED = 0.5  # per tick
MAX_ACCEL = 0.05
CONTACT = 2 * RADIUS  # centres at most this far apart collide
PUSH = RADIUS * 1.01  # each collider ends this far from the pair's midpoint
STUN = 20  # carrier's timer after a steal
RECEIVE = 15  # timer of a player taking the puck (steal, pass, interception, rebound, kick-off)
SHOT_DELAY = 10  # shooter's timer
PASS_DELAY = 10  # passer's timer
SHOT_SCALE = 4.0  # on-net chance min(1, 4 / |dz|)
INTERCEPT_DIST = 3.5
INTERCEPT_MIN, INTERCEPT_MAX = 0.5, 1.0
INTERCEPT_SPEED = 0.05
SHOOT_DIST = 0.3 * math.hypot(2 * HALF_X, 2 * HALF_Z)  # scripted shooter's range, 12.07
SHOT_CHANCE = 0.3  # scripted shooter's least simulated success
PASS_CHANCE = 0.8  # scripted passer's least through-chance
CHASERS = 2  # scripted defenders chasing the carrier
SUPPORT = HALF_X  # scripted support spacing (half the rink width)
GOAL_REWARD = 1.0
CHANGE_REWARD = 0.1

N_PLAYERS, TEAM_SIZE = 6, 3
TEAM = np.array([0, 0, 0, 1, 1, 1])  # 0: learning team, 1: opponents
TEAM_NET_Z = np.array([HALF_Z, -HALF_Z])  # z of the net each team attacks
NET_Z = TEAM_NET_Z[TEAM]  # per player
MATES = np.array([[q for q in range(3 * (p // 3), 3 * (p // 3) + 3) if q != p]
                  for p in range(N_PLAYERS)])  # [6, 2] teammates of each player
OPPONENTS = np.array([[q for q in range(N_PLAYERS) if TEAM[q] != TEAM[p]]
                      for p in range(N_PLAYERS)])  # [6, 3]
#: for learning agent n: its teammates in index order, then the opponents (observation order)
OTHERS = np.array([[q for q in range(N_PLAYERS) if q != n] for n in range(TEAM_SIZE)])

NONE, SHOOT, PASS_1, PASS_2, PASS_3, DOWN, UP, RIGHT, LEFT = range(9)
# entries of an agent's observation used by name elsewhere (HSD's scripted rewards, the skill
# analysis of econsim.skills)
OBS_TEAM_PUCK = 5  # its team has the puck
OBS_OWN_X, OBS_OWN_Z = 6, 7  # its own x / 9, z / 18
ACTION_NAMES = ("none", "shoot", "pass_1", "pass_2", "pass_3", "down", "up", "right", "left")
_MOVE_X = np.array([0, 0, 0, 0, 0, 0, 0, 1, -1], np.float64)
_MOVE_Z = np.array([0, 0, 0, 0, 0, -1, 1, 0, 0], np.float64)

OBS_SIZE, STATE_SIZE = 31, 34
EVENTS = ("shot", "goal", "rebound", "pass_attempt", "pass_made", "pass_received",
          "interception", "steal", "possession", "win", "lose", "draw")
#: codes of ``State.event`` (the step's main event, drawn by ``render_rgb``)
EVENT_NONE, EVENT_STEAL, EVENT_PASS, EVENT_INTERCEPTION, EVENT_SHOT, EVENT_GOAL = range(6)

_EPISODE = "per episode (summed over its steps)"

# pictures
TEAM_COLOURS = ((31, 119, 180), (214, 39, 40))
ICE, BOARDS, LINE, NET, PUCK, MARK = ((236, 243, 249), (90, 90, 90), (200, 200, 215),
                                      (60, 60, 60), (0, 0, 0), (255, 200, 0))


class Params(BaseModel):
    model_config = FINITE
    scripted_teammates: int = Field(0, ge=0, le=2, description="learning slots played by the "
                                    "scripted policy (the last 1 or 2; their actions are "
                                    "ignored): Table 4.1's ad-hoc teammates")
    max_steps: Steps = Field(500, description="steps per episode (a draw at the cap)")
    end_on_goal: bool = Field(True, description="a goal ends the episode (the Diss); False: a "
                              "kick-off follows within the step, as in the original game")
    kickoff: Literal["random", "learners", "opponents"] = Field(
        "random", description="team kicking off a fresh world (at an even total score)")
    possession_reward: Probability | None = Field(
        None, description="reward per step with (minus: without) the puck; None: the Diss's "
        "1 / (2 + max_steps); the reference code: 1 / (2 max_steps) = 0.001")
    draw_penalty: Coefficient = Field(0.5, description="paid on the last step of a drawn "
                                      "episode (the reference code)")


@dataclass
class State:
    """One world per row; one ``[B, 6]`` array per player quantity (players 0-2: the learning
    team, 3-5: the opponents)."""

    t: np.ndarray  # [B] steps taken
    x: np.ndarray  # [B, 6] float64 position
    z: np.ndarray
    vx: np.ndarray  # [B, 6] velocity per tick
    vz: np.ndarray
    timer: np.ndarray  # [B, 6] int64 action timer (busy while > 0 after the tick's decrement)
    holder: np.ndarray  # [B] int64 player with the puck (0..5)
    score: np.ndarray  # [B, 2] goals of the learning team and of the opponents in the match
    first: np.ndarray  # [B] team kicking off at an even total score
    event: np.ndarray  # [B] the last step's main event (EVENT_*)
    actor: np.ndarray  # [B] its player (-1: none)


# ------------------------------------------------------------------------------ the kernel
# Compiled with numba: one loop over the worlds per call. Every arithmetic operation is the
# one the numpy kernel of 2026-12-04 performed, in the same order and precision, so both give
# the same bits (tests/test_sts2_kernel_pins.py pins them).
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
_NO_KICK = np.empty((0, 13))  # the kick-off uniforms when a goal ends the episode


_FIELDS = ("t", "x", "z", "vx", "vz", "timer", "holder", "score", "first", "event", "actor")
_FLOATS = frozenset({"x", "z", "vx", "vz"})  # float64; the others int64


def _typed(s: State) -> State:
    """``s`` as the compiled kernel takes it: contiguous float64 positions and velocities,
    int64 counters (a state stored as float32, sliced or read-only still works: converted),
    and a carrier outside 0..5 is a one-line error. ``STS2`` skips it for the state its
    last step or reset returned (the kernel's own arrays), so a rollout does not pay it."""
    arrays = [getattr(s, f) for f in _FIELDS]
    if not all(a.dtype == (np.float64 if f in _FLOATS else np.int64)
               and a.flags.c_contiguous for f, a in zip(_FIELDS, arrays, strict=True)):
        s = State(**{f: np.ascontiguousarray(a, np.float64 if f in _FLOATS else np.int64)
                     for f, a in zip(_FIELDS, arrays, strict=True)})
    _check_carriers(s.holder)
    return s


def _check_carriers(holder: np.ndarray) -> None:
    """A carrier outside 0..5 is a one-line error."""
    if not _carriers_valid(holder):
        raise ValueError(f"sts2 state: holder must be a player in 0..{N_PLAYERS - 1}, got "
                         f"values in {int(holder.min())}..{int(holder.max())}")


@njit(**_JIT)
def _carriers_valid(holder):
    for h in holder:  # noqa: SIM110 (a loop numba compiles)
        if h < 0 or h >= N_PLAYERS:
            return False
    return True


_EVENT_ORDER = np.array([EVENT_STEAL, EVENT_PASS, EVENT_SHOT, EVENT_INTERCEPTION, EVENT_GOAL])
(_I_SHOT, _I_GOAL, _I_REBOUND, _I_PASS_ATTEMPT, _I_PASS_MADE, _I_PASS_RECEIVED,
 _I_INTERCEPTION, _I_STEAL, _I_POSSESSION, _I_WIN, _I_LOSE, _I_DRAW) = range(len(EVENTS))


@njit(**_JIT)
def on_net_chance(x: float, z: float, net_z: float) -> float:
    """``|u_z| min(1, 4 / |dz|)`` for a shot from ``(x, z)`` at the net ``(0, net_z)``."""
    dz = abs(net_z - z)
    return dz / np.sqrt(x * x + dz * dz) * min(1.0, SHOT_SCALE / dz)


@njit(**_JIT)
def shot_line(sx: float, sz: float, tx: float, tz: float) -> tuple[float, float, float]:
    """The unit direction ``(ux, uz)`` and the length L of the line from ``(sx, sz)`` to
    ``(tx, tz)`` (L has 1e-10 added, so a line of length 0 has a direction of 0)."""
    dx, dz = tx - sx, tz - sz
    length = np.sqrt(dx * dx + dz * dz) + 1e-10
    return dx / length, dz / length, length


@njit(**_JIT)
def interception(sx: float, sz: float, ux: float, uz: float, length: float, px: float,
                 pz: float, capable: bool) -> tuple[float, float]:
    """The interception test for a candidate at ``(px, pz)`` on the line from ``(sx, sz)``
    (direction and length from :func:`shot_line`): ``(prob, closest)``, its chance (0 behind
    the source, beyond 3.5 or not ``capable``) and its gap to the line."""
    along = (px - sx) * ux + (pz - sz) * uz
    a = min(along, length)
    gx, gz = px - (sx + ux * a), pz - (sz + uz * a)
    closest = max(0.0, np.sqrt(gx * gx + gz * gz) - INTERCEPT_SPEED * a)
    if capable and along > 0 and closest <= INTERCEPT_DIST:
        return (INTERCEPT_MAX - INTERCEPT_MIN) * closest / INTERCEPT_DIST + INTERCEPT_MIN, closest
    return 0.0, closest


@njit(**_JIT)
def _through(x, z, free, h, tx, tz) -> float:
    """Chance that no opponent of carrier ``h`` (``free`` ones only) intercepts the line from
    it to ``(tx, tz)``: ``prod(1 - prob)`` in candidate order."""
    ux, uz, length = shot_line(x[h], z[h], tx, tz)
    out = 1.0
    for k in range(TEAM_SIZE):
        q = OPPONENTS[h, k]
        prob, _ = interception(x[h], z[h], ux, uz, length, x[q], z[q], free[q])
        out = out * (1 - prob) if k else 1 - prob
    return out


@njit(**_JIT)
def _intercepted(x, z, timer, h, tx, tz, u) -> int:
    """The interception of carrier ``h``'s shot or pass towards ``(tx, tz)``: the candidates
    (non-busy opponents) in order, one whose gap is below the best so far intercepts if its
    uniform ``u[k]`` is below its chance. Returns the interceptor (a player) or -1."""
    ux, uz, length = shot_line(x[h], z[h], tx, tz)
    who, best = -1, length + 1.0
    for k in range(TEAM_SIZE):
        q = OPPONENTS[h, k]
        prob, closest = interception(x[h], z[h], ux, uz, length, x[q], z[q], timer[q] == 0)
        if u[k] < prob and closest < best:
            who, best = q, closest
    return who


@njit(**_JIT)
def _script_world(x, z, h, free, ix, iz) -> tuple[bool, int]:
    """The scripted policy in one world (module docstring, step 2): inputs of all six
    players into ``ix``, ``iz``; returns the carrier's ``(shoot, pass_to)`` (-1: no pass)."""
    cx, cz = x[h], z[h]
    team_h = h // TEAM_SIZE
    for team in range(2):
        lo = TEAM_SIZE * team
        mx = (x[lo] + x[lo + 1] + x[lo + 2]) / 3
        mz = (z[lo] + z[lo + 1] + z[lo + 2]) / 3
        d = np.empty(TEAM_SIZE)
        for k in range(TEAM_SIZE):
            dx, dz = x[lo + k] - cx, z[lo + k] - cz
            d[k] = dx * dx + dz * dz
        for k in range(TEAM_SIZE):
            p = lo + k
            if team == team_h:  # supporters: (net + own position) / 2 + 9 unit(p - centroid)
                dx, dz = x[p] - mx, z[p] - mz
                norm = np.sqrt(dx * dx + dz * dz) + 1e-10
                tx = 0.5 * x[p] + SUPPORT * dx / norm
                tz = 0.5 * (NET_Z[p] + z[p]) + SUPPORT * dz / norm
            else:  # the 2 nearest the carrier (ties: lower index) chase it, the other covers
                ahead = 0
                for q in range(TEAM_SIZE):
                    if d[q] < d[k] or (d[q] == d[k] and q < k):
                        ahead += 1
                if ahead < CHASERS:
                    tx, tz = cx, cz
                else:
                    tx, tz = 0.5 * cx, 0.5 * (cz + TEAM_NET_Z[team_h])
            if p == h:  # the carrier skates to the net it attacks
                tx, tz = 0.0, NET_Z[h]
            gx, gz = tx - x[p], tz - z[p]  # the input: the unit vector rounded to {-1, 0, 1}
            n = np.sqrt(gx * gx + gz * gz)
            scale = 1.0 / max(n, 0.01) if n > 0.01 else 1.0
            ix[p], iz[p] = np.rint(gx * scale), np.rint(gz * scale)
    # the carrier: shoot, pass or skate
    net_z = NET_Z[h]
    dz = net_z - cz
    dist = np.sqrt(cx * cx + dz * dz)
    shoot = (dist < SHOOT_DIST
             and _through(x, z, free, h, 0.0, net_z) * on_net_chance(cx, cz, net_z)
             > SHOT_CHANCE)
    pass_to, best = -1, np.inf
    for k in range(TEAM_SIZE - 1):
        m = MATES[h, k]
        dz = z[m] - net_z
        mate_dist = np.sqrt(x[m] * x[m] + dz * dz)
        if (free[m] and _through(x, z, free, h, x[m], z[m]) > PASS_CHANCE
                and mate_dist < dist and mate_dist < best):
            pass_to, best = m, mate_dist
    return shoot, (-1 if shoot else pass_to)


@njit(**_JIT)
def _script(x, z, holder, free):
    """:func:`_script_world` over a batch: ``(ix, iz, shoot, pass_to)``."""
    b = x.shape[0]
    ix, iz = np.empty((b, N_PLAYERS)), np.empty((b, N_PLAYERS))
    shoot, pass_to = np.empty(b, np.bool_), np.empty(b, np.int64)
    for w in range(b):
        shoot[w], pass_to[w] = _script_world(x[w], z[w], holder[w], free[w], ix[w], iz[w])
    return ix, iz, shoot, pass_to


@njit(**_JIT)
def _kickoff(u, team, x, z, vx, vz, timer) -> int:
    """Kick-off placements of one world from 13 uniforms ``u`` for kick-off ``team``, in
    place; returns the carrier."""
    for p in range(N_PLAYERS):
        x[p] = min(max(np.floor(u[p] * (2 * HALF_X)) - HALF_X, -X_MAX), X_MAX)
        z[p] = min(max(NET_Z[p] * (2 * (u[6 + p] * 0.5) - 1), -Z_MAX), Z_MAX)
        vx[p] = vz[p] = 0.0
        timer[p] = 0
    holder = team * TEAM_SIZE + min(int(u[12] * TEAM_SIZE), 2)
    timer[holder] = RECEIVE
    return holder


@njit(**_JIT)
def _reset(u, first):
    """Fresh worlds from uniforms ``u [B, 14]`` and kick-off teams ``first [B]``."""
    b = u.shape[0]
    x, z = np.empty((b, N_PLAYERS)), np.empty((b, N_PLAYERS))
    vx, vz = np.zeros((b, N_PLAYERS)), np.zeros((b, N_PLAYERS))
    timer, holder = np.zeros((b, N_PLAYERS), np.int64), np.empty(b, np.int64)
    for w in range(b):
        holder[w] = _kickoff(u[w], first[w], x[w], z[w], vx[w], vz[w], timer[w])
    return x, z, vx, vz, timer, holder


@njit(**_JIT)
def _wall(pos, vel, limit) -> None:
    """The wall rule for one coordinate of one player's arrays, in place."""
    for p in range(N_PLAYERS):
        if pos[p] < -limit or pos[p] > limit:
            pos[p] = min(max(pos[p], -limit), limit)
            vel[p] = 0.0


@njit(**_JIT)
def _collide(x, z, vx, vz, timer, holder, steals) -> int:
    """Step 5 in one world, in place: every pair in index order that touches is pushed apart
    and takes its average velocity; a steal on contact. Returns the carrier."""
    for i in range(N_PLAYERS):
        for j in range(i + 1, N_PLAYERS):
            dx, dz = x[i] - x[j], z[i] - z[j]
            if not dx * dx + dz * dz <= CONTACT * CONTACT:
                continue
            mid_x, mid_z = 0.5 * (x[i] + x[j]), 0.5 * (z[i] + z[j])
            hx, hz = x[i] - mid_x, z[i] - mid_z
            hn = np.sqrt(hx * hx + hz * hz)
            if hn > 0.001:
                ux, uz = hx / hn, hz / hn
            else:  # coincident: apart along x
                ux, uz = -1.0, 0.0
            x[i], z[i] = mid_x + PUSH * ux, mid_z + PUSH * uz
            x[j], z[j] = mid_x - PUSH * ux, mid_z - PUSH * uz
            avx, avz = 0.5 * (vx[i] + vx[j]), 0.5 * (vz[i] + vz[j])
            vx[i] = vx[j] = avx
            vz[i] = vz[j] = avz
            if TEAM[i] == TEAM[j]:
                continue
            if holder == i and timer[j] == 0:
                victim, thief = i, j
            elif holder == j and timer[i] == 0:
                victim, thief = j, i
            else:
                continue
            timer[victim] = STUN
            timer[thief] = max(timer[thief], RECEIVE)
            holder = thief
            steals[thief] += 1
    return holder


@njit(**_JIT)
def _observe_world(x, z, vx, vz, h, obs) -> None:
    """The ``[3, 31]`` observations of one world (module docstring) into ``obs``."""
    for n in range(TEAM_SIZE):
        for k in range(4):
            v = (x, z, vx, vz)[k]
            scale = (2 * HALF_X, 2 * HALF_Z, 1.0, 1.0)[k]
            obs[n, k] = (v[h] - v[n]) / scale
            for j in range(N_PLAYERS - 1):
                col = 10 + k + 4 * j if j < 2 else 19 + k + 4 * (j - 2)
                obs[n, col] = (v[OTHERS[n, j]] - v[n]) / scale
        obs[n, 4] = 1.0 if h == n else 0.0
        obs[n, OBS_TEAM_PUCK] = 1.0 if h < TEAM_SIZE else 0.0
        obs[n, OBS_OWN_X] = x[n] / HALF_X
        obs[n, OBS_OWN_Z] = z[n] / HALF_Z
        obs[n, 8] = vx[n]
        obs[n, 9] = vz[n]
        obs[n, 18] = 1.0 if h >= TEAM_SIZE else 0.0


@njit(**_JIT)
def _observe(x, z, vx, vz, holder):
    obs = np.empty((x.shape[0], TEAM_SIZE, OBS_SIZE), np.float32)
    for w in range(x.shape[0]):
        _observe_world(x[w], z[w], vx[w], vz[w], holder[w], obs[w])
    return obs


@njit(**_JIT)
def _global_state(x, z, vx, vz, holder):
    out = np.zeros((x.shape[0], STATE_SIZE), np.float32)
    for w in range(x.shape[0]):
        h = holder[w]
        out[w, 0], out[w, 1] = x[w, h] / HALF_X, z[w, h] / HALF_Z
        out[w, 2], out[w, 3] = vx[w, h], vz[w, h]
        out[w, 4 + h] = 1.0
        for p in range(N_PLAYERS):
            out[w, 10 + 4 * p], out[w, 11 + 4 * p] = x[w, p] / HALF_X, z[w, p] / HALF_Z
            out[w, 12 + 4 * p], out[w, 13 + 4 * p] = vx[w, p], vz[w, p]
    return out


@njit(**_JIT)
def _step(t0, x0, z0, vx0, vz0, timer0, holder0, score0, first, actions, u, u_kick,
          scripted, max_steps, end_on_goal, c, draw_penalty):
    """One tick of every world (module docstring, steps 1-8); the new state's arrays, the
    team reward ``[B]``, done, the events ``[12, B, 3]`` (in ``EVENTS`` order) and the
    observations."""
    b = x0.shape[0]
    x, z, vx, vz = x0.copy(), z0.copy(), vx0.copy(), vz0.copy()
    timer, holder, score = timer0.copy(), holder0.copy(), score0.copy()
    t = t0 + 1
    event, actor = np.zeros(b, np.int64), np.full(b, -1, np.int64)
    reward, done = np.empty(b), np.empty(b, np.bool_)
    info = np.zeros((len(EVENTS), b, TEAM_SIZE), np.int64)
    ix, iz = np.empty(N_PLAYERS), np.empty(N_PLAYERS)
    free = np.empty(N_PLAYERS, np.bool_)
    steals = np.zeros(N_PLAYERS, np.int64)
    for w in range(b):
        xw, zw, vxw, vzw, tw = x[w], z[w], vx[w], vz[w], timer[w]
        # 1. timers
        for p in range(N_PLAYERS):
            tw[p] = max(tw[p] - 1, 0)
            free[p] = tw[p] == 0
        h0 = holder[w]
        # 2. decisions
        s_shoot, s_pass = _script_world(xw, zw, h0, free, ix, iz)
        for p in range(TEAM_SIZE):
            if not scripted[p]:
                ix[p], iz[p] = _MOVE_X[actions[w, p]], _MOVE_Z[actions[w, p]]
        for p in range(N_PLAYERS):
            ix[p] *= free[p]
            iz[p] *= free[p]
        a_h = actions[w, min(h0, TEAM_SIZE - 1)]  # the learning carrier's action
        if h0 < TEAM_SIZE and not scripted[h0]:
            shoot = a_h == SHOOT
            pass_to = a_h - PASS_1 if PASS_1 <= a_h <= PASS_3 and a_h - PASS_1 != h0 else -1
        else:
            shoot, pass_to = s_shoot, s_pass
        shoot = shoot and free[h0]
        if not free[h0]:
            pass_to = -1
        # 3. motion
        for p in range(N_PLAYERS):
            n = np.sqrt(ix[p] * ix[p] + iz[p] * iz[p])
            if n > 1:
                ix[p], iz[p] = ix[p] / n, iz[p] / n
                n = 1.0
            gain = (n - (vxw[p] * ix[p] + vzw[p] * iz[p]) / MAX_SPEED) * MAX_ACCEL
            vxw[p], vzw[p] = vxw[p] + ix[p] * gain, vzw[p] + iz[p] * gain
            speed = np.sqrt(vxw[p] * vxw[p] + vzw[p] * vzw[p])
            if speed > MAX_SPEED:
                cap = MAX_SPEED / speed
                vxw[p], vzw[p] = vxw[p] * cap, vzw[p] * cap
            xw[p], zw[p] = xw[p] + vxw[p], zw[p] + vzw[p]
        # 4.-5. walls, collisions with steals, walls
        _wall(xw, vxw, X_MAX)
        _wall(zw, vzw, Z_MAX)
        steals[:] = 0
        h = _collide(xw, zw, vxw, vzw, tw, h0, steals)
        stealer = h if h != h0 else -1
        _wall(xw, vxw, X_MAX)
        _wall(zw, vzw, Z_MAX)
        # 6. the carrier's shot or pass (if it still has the puck)
        shooter = h0 if shoot and h == h0 else -1
        passer = h0 if pass_to >= 0 and h == h0 else -1
        scorer = rebounder = catcher = receiver = -1
        if shooter >= 0:
            net_z = NET_Z[h0]
            on_net = u[w, 0] < on_net_chance(xw[h0], zw[h0], net_z)
            taker = _intercepted(xw, zw, tw, h0, 0.0, net_z, u[w, 1:])
            tw[h0] = max(tw[h0], SHOT_DELAY)
            if taker >= 0:
                catcher = taker
            elif on_net:
                scorer = h0
            else:  # missed: the player nearest the attacked net takes it
                best = np.inf
                for p in range(N_PLAYERS):
                    dz = zw[p] - net_z
                    d = xw[p] * xw[p] + dz * dz
                    if d < best:
                        taker, best = p, d
                rebounder = taker
            if taker >= 0:
                h = taker
                tw[h] = max(tw[h], RECEIVE)
        if passer >= 0:
            taker = _intercepted(xw, zw, tw, h0, xw[pass_to], zw[pass_to], u[w, 1:])
            if taker >= 0:
                catcher = taker
            else:
                taker = receiver = pass_to
            h = taker
            tw[taker] = max(tw[taker], RECEIVE)
            tw[h0] = max(tw[h0], PASS_DELAY)
        # goals, kick-offs, rewards, the end
        scored = scorer // TEAM_SIZE if scorer >= 0 else -1  # team that scored
        if scored >= 0:
            score[w, scored] += 1
        before, after = h0 // TEAM_SIZE, h // TEAM_SIZE
        have = h  # the carrier of the step (before a kick-off)
        if not end_on_goal and scored >= 0:
            h = _kickoff(u_kick[w], (first[w] + score[w, 0] + score[w, 1]) % 2, xw, zw, vxw,
                         vzw, tw)
        holder[w] = h
        won, lost = 1.0 if scored == 0 else 0.0, 1.0 if scored == 1 else 0.0
        took = 1.0 if before == 1 and after == 0 else 0.0
        gave = 1.0 if before == 0 and after == 1 else 0.0
        r = GOAL_REWARD * (won - lost) + CHANGE_REWARD * (took - gave) + (c if after == 0 else -c)
        at_cap = t[w] >= max_steps
        if end_on_goal:
            win, lose = scored == 0, scored == 1
            draw = at_cap and scored < 0
            done[w] = at_cap or scored >= 0
        else:
            win = at_cap and score[w, 0] > score[w, 1]
            lose = at_cap and score[w, 0] < score[w, 1]
            draw = at_cap and score[w, 0] == score[w, 1]
            done[w] = at_cap
        reward[w] = r - draw_penalty * (1.0 if draw else 0.0)
        for k in range(len(_EVENT_ORDER)):
            who = (stealer, passer, shooter, catcher, scorer)[k]
            if who >= 0:
                event[w], actor[w] = _EVENT_ORDER[k], who
        own_rebound = rebounder if rebounder // TEAM_SIZE == shooter // TEAM_SIZE else -1
        done_pass = passer if receiver >= 0 else -1
        for n in range(TEAM_SIZE):
            info[_I_SHOT, w, n] = shooter == n
            info[_I_GOAL, w, n] = scorer == n
            info[_I_REBOUND, w, n] = own_rebound == n
            info[_I_PASS_ATTEMPT, w, n] = passer == n
            info[_I_PASS_MADE, w, n] = done_pass == n
            info[_I_PASS_RECEIVED, w, n] = receiver == n
            info[_I_INTERCEPTION, w, n] = catcher == n
            info[_I_STEAL, w, n] = steals[n]
            info[_I_POSSESSION, w, n] = have == n
            info[_I_WIN, w, n], info[_I_LOSE, w, n], info[_I_DRAW, w, n] = win, lose, draw
    obs = _observe(x, z, vx, vz, holder)
    return t, x, z, vx, vz, timer, holder, score, event, actor, reward, done, info, obs


@register_game("sts2", Params)
class STS2(Plane, AgentEvents, Render, GlobalState):
    """STS2 3v3 against the scripted team, batch-first (module docstring: rules, observation,
    state, info, choices)."""

    name = "sts2"
    n_agents = TEAM_SIZE
    bench_variants = {"sts2(scripted=0)": {}, "sts2(scripted=2)": {"scripted_teammates": 2}}
    bench_batches = (1, 1024)
    action_space = Discrete(9)
    action_names = ACTION_NAMES
    observation_space = Box((OBS_SIZE,), -1.0, 1.0)
    state_size = STATE_SIZE
    shared_reward = True  # the three learning agents all receive the team reward
    agent_info_keys = EVENTS
    extent = (-HALF_X, HALF_X, -HALF_Z, HALF_Z)
    columns = {
        "run_agents": {
            "shot": ("shots", f"shots the agent took, {_EPISODE}"),
            "goal": ("goals", f"goals the agent scored, {_EPISODE}"),
            "rebound": ("rebounds", "times the agent took the puck after its team's missed "
                        f"shot (offensive rebounds), {_EPISODE}"),
            "pass_attempt": ("passes", f"passes the agent tried, {_EPISODE}"),
            "pass_made": ("passes", f"completed passes the agent made, {_EPISODE}"),
            "pass_received": ("passes", f"completed passes the agent received, {_EPISODE}"),
            "interception": ("interceptions", "opponent shots or passes the agent intercepted, "
                             f"{_EPISODE}"),
            "steal": ("steals", "times the agent took the puck from the opponent carrier by "
                      f"contact, {_EPISODE}"),
            "possession": ("steps", f"steps the agent ended with the puck, {_EPISODE}"),
            "win": ("0/1", "1 if the learning team won the episode (it scored the goal that "
                    "ended it; without end_on_goal: more goals at the cap); the same for its "
                    "three agents"),
            "lose": ("0/1", "1 if the learning team lost the episode (the scripted team "
                     "scored)"),
            "draw": ("0/1", "1 if the episode reached the step cap without a winner"),
        },
        "steps": {
            "x": ("rink units", "x coordinate of the agent after the step (rink x in [-9, 9])"),
            "y": ("rink units", "the agent's z coordinate (the plane's second axis; the "
                  "learning team attacks +z)"),
            "z": ("rink units", "z coordinate of the agent after the step (rink z in [-18, 18])"),
            "vx": ("rink units/step", "x velocity of the agent after the step (speed <= 0.5)"),
            "vz": ("rink units/step", "z velocity of the agent after the step"),
            "has_puck": ("0/1", "1 if the agent has the puck after the step"),
            "shot": ("0/1", "1 if the agent shot this step"),
            "goal": ("0/1", "1 if the agent scored this step"),
            "rebound": ("0/1", "1 if the agent took the puck after its team's missed shot"),
            "pass_attempt": ("0/1", "1 if the agent passed this step"),
            "pass_made": ("0/1", "1 if the agent's pass this step reached its teammate"),
            "pass_received": ("0/1", "1 if the agent received a teammate's pass this step"),
            "interception": ("0/1", "1 if the agent intercepted an opponent's shot or pass"),
            "steal": ("steals", "times the agent took the puck by contact this step"),
            "possession": ("0/1", "1 if the agent has the puck after the step"),
            "win": ("0/1", "1 on the last step of an episode the learning team won"),
            "lose": ("0/1", "1 on the last step of an episode the learning team lost"),
            "draw": ("0/1", "1 on the last step of a drawn episode"),
        },
    }

    def __init__(self, **params) -> None:
        p = self.params = Params(**params)
        self.max_steps = p.max_steps
        self.scripted_teammates = p.scripted_teammates
        self.end_on_goal = p.end_on_goal
        self.kickoff = p.kickoff
        self.possession_reward = (1.0 / (2 + p.max_steps) if p.possession_reward is None
                                  else p.possession_reward)
        self.draw_penalty = p.draw_penalty
        #: players moved by the script: the opponents and the last scripted learning slots
        self.scripted = np.arange(N_PLAYERS) >= TEAM_SIZE - p.scripted_teammates
        self._fresh: State | None = None  # the state the kernel returned last (see _typed)

    def _kernel_state(self, state: State) -> State:
        """``state`` ready for the compiled kernel (:func:`_typed`, unless it is the one the
        last step or reset returned)."""
        return state if state is self._fresh else _typed(state)

    # ------------------------------------------------------------------ starts
    def reset(self, batch: int, rng: np.random.Generator) -> State:
        u = rng.random((batch, 14))
        if self.kickoff == "random":
            first = (u[:, 13] < 0.5).astype(np.int64)
        else:
            first = np.full(batch, int(self.kickoff == "opponents"), np.int64)
        x, z, vx, vz, timer, holder = _reset(u, first)
        self._fresh = State(t=np.zeros(batch, np.int64), x=x, z=z, vx=vx, vz=vz, timer=timer,
                            holder=holder, score=np.zeros((batch, 2), np.int64), first=first,
                            event=np.zeros(batch, np.int64),
                            actor=np.full(batch, -1, np.int64))
        return self._fresh

    def make_state(self, x, z, vx=None, vz=None, holder=0, timer=None, t=0, score=(0, 0),
                   first=0) -> State:
        """A state from positions (and velocities) ``[B, 6]``, the carrier (an int or
        ``[B]``), timers ``[B, 6]`` (default 0), steps taken, score and kick-off team
        (hand-made worlds: tests, what-if starts)."""
        x, z = np.array(x, np.float64, ndmin=2), np.array(z, np.float64, ndmin=2)
        b = x.shape[0]
        shape = (b, N_PLAYERS)
        vx = np.zeros(shape) if vx is None else np.array(vx, np.float64, ndmin=2)
        vz = np.zeros(shape) if vz is None else np.array(vz, np.float64, ndmin=2)
        timer = (np.zeros(shape, np.int64) if timer is None
                 else np.array(timer, np.int64, ndmin=2))
        if not x.shape == z.shape == vx.shape == vz.shape == timer.shape == shape:
            raise ValueError(f"{self.name}: x, z, vx, vz and timer must have shape [batch, 6]")
        holder = np.broadcast_to(np.asarray(holder, np.int64), (b,)).copy()
        _check_carriers(holder)
        return State(t=np.full(b, t, np.int64), x=x.copy(), z=z.copy(), vx=vx.copy(),
                     vz=vz.copy(), timer=timer.copy(), holder=holder,
                     score=np.broadcast_to(np.asarray(score, np.int64), (b, 2)).copy(),
                     first=np.broadcast_to(np.asarray(first, np.int64), (b,)).copy(),
                     event=np.zeros(b, np.int64), actor=np.full(b, -1, np.int64))

    # ------------------------------------------------------------------ the script
    def script(self, state: State, free: np.ndarray | None = None):
        """The scripted policy for all 6 players from ``state`` (``free [B, 6]``: players
        not busy; default: timers at 0).

        Returns inputs ``(ix, iz)`` ``[B, 6]`` in {-1, 0, 1}, and for the carrier ``shoot
        [B]`` bool and ``pass_to [B]`` (the target player, or -1)."""
        s = self._kernel_state(state)
        free = s.timer == 0 if free is None else np.ascontiguousarray(free, np.bool_)
        return _script(s.x, s.z, s.holder, free)

    # ------------------------------------------------------------------ one tick
    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        s = self._kernel_state(state)
        b = len(s.t)
        actions = np.asarray(check_actions(self, actions, b), np.int64)
        u = rng.random((b, 4))  # shot on net, interception by candidates 0..2
        u_kick = _NO_KICK if self.end_on_goal else rng.random((b, 13))
        (t, x, z, vx, vz, timer, holder, score, event, actor, reward, done, info,
         obs) = _step(s.t, s.x, s.z, s.vx, s.vz, s.timer, s.holder, s.score, s.first, actions,
                      u, u_kick, self.scripted, self.max_steps, self.end_on_goal,
                      self.possession_reward, self.draw_penalty)
        new = self._fresh = State(t=t, x=x, z=z, vx=vx, vz=vz, timer=timer, holder=holder,
                                  score=score, first=s.first, event=event, actor=actor)
        r = np.repeat(reward.astype(np.float32)[:, None], TEAM_SIZE, 1)
        return Step(new, obs, r, done, dict(zip(EVENTS, info, strict=True)))

    # ------------------------------------------------------------------ views
    def observe(self, state: State) -> np.ndarray:
        """``[B, 3, 31]`` float32 observations of the learning agents (module docstring)."""
        s = self._kernel_state(state)
        return _observe(s.x, s.z, s.vx, s.vz, s.holder)

    def global_state(self, state: State) -> np.ndarray:
        """``[B, 34]`` float32 global state (Diss §4.3.1): the carrier's (x / 9, z / 18, vx,
        vz), a one-hot of the carrier among players 0..5, then (x / 9, z / 18, vx, vz) of
        each player 0..5 (the learning team first)."""
        s = self._kernel_state(state)
        return _global_state(s.x, s.z, s.vx, s.vz, s.holder)

    def describe(self, state: State) -> dict[str, np.ndarray]:
        s = state
        return {"x": s.x[:, :3].copy(), "y": s.z[:, :3].copy(), "z": s.z[:, :3].copy(),
                "vx": s.vx[:, :3].copy(), "vz": s.vz[:, :3].copy(),
                "has_puck": (s.holder[:, None] == np.arange(TEAM_SIZE)).astype(np.int64)}

    # ------------------------------------------------------------------ Plane, replays
    def landmarks(self, state: State, world: int = 0) -> np.ndarray:
        """``[2, 2]`` the nets: row 0 the one the learning team attacks, row 1 its own."""
        return np.array([[0.0, HALF_Z], [0.0, -HALF_Z]])

    def bodies(self, state: State, world: int = 0) -> dict[str, tuple[float, float]]:
        """The scripted opponents (``opponent 3`` .. ``opponent 5``) and the ``puck`` (on its
        carrier), (x, z) each: the Mesa face shows all six players and the puck."""
        s = state
        out = {f"opponent {p}": (float(s.x[world, p]), float(s.z[world, p]))
               for p in range(TEAM_SIZE, N_PLAYERS)}
        h = int(s.holder[world])
        out["puck"] = (float(s.x[world, h]), float(s.z[world, h]))
        return out

    def render_rgb(self, state: State, world: int = 0, scale: int = 8) -> np.ndarray:
        """``[36 scale + 2, 18 scale + 2, 3]`` uint8 picture of ``world`` (+z up: the
        learning team, blue, attacks the top net; the scripted team is red). Busy players
        are pale; the carrier holds a black puck; the player of the step's main event
        (steal, pass, interception, shot, goal) has a yellow ring."""
        s = state
        h, w = int(2 * HALF_Z * scale) + 2, int(2 * HALF_X * scale) + 2
        xs = -HALF_X + (np.arange(w) - 0.5) / scale
        zs = HALF_Z - (np.arange(h) - 0.5) / scale
        X, Z = np.meshgrid(xs, zs)
        img = np.empty((h, w, 3), np.uint8)
        img[:] = ICE
        img[np.abs(Z) <= 0.5 / scale + 1e-9] = LINE  # centre line
        for net_z in (HALF_Z, -HALF_Z):
            img[(np.abs(X) <= 1.5) & (np.abs(Z - net_z) <= 0.6)] = NET
        img[[0, -1]] = BOARDS
        img[:, [0, -1]] = BOARDS
        r2 = RADIUS * RADIUS
        actor = int(s.actor[world])
        for p in range(N_PLAYERS):
            d2 = (X - s.x[world, p]) ** 2 + (Z - s.z[world, p]) ** 2
            colour = np.array(TEAM_COLOURS[TEAM[p]], np.float64)
            if s.timer[world, p] > 0:
                colour = 0.5 * colour + 0.5 * 255
            if p == actor:
                img[(d2 <= (RADIUS + 0.45) ** 2) & (d2 > (RADIUS + 0.15) ** 2)] = MARK
            img[d2 <= r2] = colour.astype(np.uint8)
            if p == int(s.holder[world]):
                img[d2 <= 0.35 ** 2] = PUCK
        return img
