"""STS2, the Simple Team Sports Simulator in 3v3 mode (Diss §4.3.1; SPEC §8, §8b).

Re-implemented from the rules below (SPEC §8 and the facts its authors checked in the
reference code), batch-first numpy: no Python loop over worlds; the loops run over the 15
player pairs of the collision pass, the 3 candidates of an interception test or the 3
players of an observation block, each vectorised over the batch.

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
from pydantic import BaseModel, Field

from econsim.bounds import FINITE, Coefficient, Probability, Steps
from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import AgentEvents, GlobalState, Plane, Render
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
PAIRS = tuple((i, j) for i in range(N_PLAYERS) for j in range(i + 1, N_PLAYERS))
_PAIR_I, _PAIR_J = np.array(PAIRS).T
#: for learning agent n: its teammates in index order, then the opponents (observation order)
OTHERS = np.array([[q for q in range(N_PLAYERS) if q != n] for n in range(TEAM_SIZE)])
_LOWER = np.tri(3, k=-1, dtype=bool)  # [p, q]: q < p (tie-break of the chasers' ranking)

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


def _clamp(pos: np.ndarray, vel: np.ndarray, limit: float) -> None:
    """The wall rule, in place: centres clamped to [-limit, limit], that velocity zeroed."""
    out = (pos < -limit) | (pos > limit)
    np.clip(pos, -limit, limit, out=pos)
    vel[out] = 0.0


def _rectify(ix: np.ndarray, iz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A scripted input: the unit vector (if longer than 0.01) rounded to {-1, 0, 1}."""
    n = np.sqrt(ix * ix + iz * iz)
    scale = np.where(n > 0.01, 1.0 / np.maximum(n, 0.01), 1.0)
    return np.rint(ix * scale), np.rint(iz * scale)


def intercept_lines(sx, sz, tx, tz, px, pz, capable):
    """The interception test's geometry: lines from ``(sx, sz)`` to ``(tx, tz)`` (shape S),
    candidates ``(px, pz)`` and ``capable`` (shape S + (3,)).

    Returns ``prob`` (S + (3,): each candidate's interception chance; 0 behind the source or
    not capable), ``closest`` (its gap, S + (3,)) and the line length L (S)."""
    dx, dz = tx - sx, tz - sz
    length = np.sqrt(dx * dx + dz * dz) + 1e-10
    ux, uz = (dx / length)[..., None], (dz / length)[..., None]
    sx, sz = sx[..., None], sz[..., None]
    along = (px - sx) * ux + (pz - sz) * uz
    a = np.minimum(along, length[..., None])
    gx, gz = px - (sx + ux * a), pz - (sz + uz * a)
    closest = np.maximum(0.0, np.sqrt(gx * gx + gz * gz) - INTERCEPT_SPEED * a)
    prob = (INTERCEPT_MAX - INTERCEPT_MIN) * closest / INTERCEPT_DIST + INTERCEPT_MIN
    prob = np.where(capable & (along > 0) & (closest <= INTERCEPT_DIST), prob, 0.0)
    return prob, closest, length


def through_chance(prob: np.ndarray) -> np.ndarray:
    """Chance that no candidate intercepts: ``prod(1 - prob)`` over the last axis."""
    return (1 - prob[..., 0]) * (1 - prob[..., 1]) * (1 - prob[..., 2])


def interceptor(prob, closest, length, u) -> np.ndarray:
    """Who intercepts (candidate 0..2, or -1): candidates in order, one whose gap is below the
    best so far intercepts if its uniform ``u`` is below its chance."""
    who = np.full(length.shape, -1, np.int64)
    best = length + 1.0
    for k in range(3):
        take = (u[..., k] < prob[..., k]) & (closest[..., k] < best)
        who[take] = k
        best = np.where(take, closest[..., k], best)
    return who


def on_net_chance(x, z, net_z):
    """``|u_z| min(1, 4 / |dz|)`` for a shot from ``(x, z)`` at the net ``(0, net_z)``."""
    dz = np.abs(net_z - z)
    return dz / np.sqrt(x * x + dz * dz) * np.minimum(1.0, SHOT_SCALE / dz)


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
        self._scripted_cols = np.flatnonzero(self.scripted)
        self._learner_cols = np.flatnonzero(~self.scripted)

    # ------------------------------------------------------------------ starts
    def _kickoff(self, u: np.ndarray, team: np.ndarray):
        """Kick-off placements from uniforms ``u [n, 13]`` for kick-off ``team [n]``:
        ``(x, z, holder, timer)``."""
        x = np.floor(u[:, :6] * (2 * HALF_X)) - HALF_X
        z = NET_Z * (2 * (u[:, 6:12] * 0.5) - 1)
        np.clip(x, -X_MAX, X_MAX, out=x)
        np.clip(z, -Z_MAX, Z_MAX, out=z)
        holder = team * TEAM_SIZE + np.minimum((u[:, 12] * TEAM_SIZE).astype(np.int64), 2)
        timer = np.zeros((len(u), N_PLAYERS), np.int64)
        timer[np.arange(len(u)), holder] = RECEIVE
        return x, z, holder, timer

    def reset(self, batch: int, rng: np.random.Generator) -> State:
        u = rng.random((batch, 14))
        if self.kickoff == "random":
            first = (u[:, 13] < 0.5).astype(np.int64)
        else:
            first = np.full(batch, int(self.kickoff == "opponents"), np.int64)
        x, z, holder, timer = self._kickoff(u, first)
        zero = np.zeros((batch, N_PLAYERS))
        return State(t=np.zeros(batch, np.int64), x=x, z=z, vx=zero, vz=zero.copy(),
                     timer=timer, holder=holder, score=np.zeros((batch, 2), np.int64),
                     first=first, event=np.zeros(batch, np.int64),
                     actor=np.full(batch, -1, np.int64))

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
        if ((holder < 0) | (holder >= N_PLAYERS)).any():
            raise ValueError(f"{self.name}: holder must be a player 0..5")
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
        x, z, h = state.x, state.z, state.holder
        b = len(h)
        rows = np.arange(b)
        free = state.timer == 0 if free is None else free
        cx, cz = x[rows, h], z[rows, h]
        team_h = h // TEAM_SIZE
        same = TEAM[None, :] == team_h[:, None]
        # supporters: (net + own position) / 2 + 9 unit(own position - team centroid)
        mx = x.reshape(b, 2, 3).mean(2)[:, TEAM]
        mz = z.reshape(b, 2, 3).mean(2)[:, TEAM]
        dx, dz = x - mx, z - mz
        norm = np.sqrt(dx * dx + dz * dz) + 1e-10
        sup_x = 0.5 * x + SUPPORT * dx / norm
        sup_z = 0.5 * (NET_Z + z) + SUPPORT * dz / norm
        # defenders: the 2 nearest the carrier chase it, the other covers the midpoint to the
        # net the carrier attacks
        d = ((x - cx[:, None]) ** 2 + (z - cz[:, None]) ** 2).reshape(b, 2, 3)
        ahead = (d[:, :, None, :] < d[:, :, :, None]) | (
            (d[:, :, None, :] == d[:, :, :, None]) & _LOWER)
        chase = (ahead.sum(-1) < CHASERS).reshape(b, N_PLAYERS)
        def_x = np.where(chase, cx[:, None], 0.5 * cx[:, None])
        def_z = np.where(chase, cz[:, None], 0.5 * (cz + TEAM_NET_Z[team_h])[:, None])
        tx, tz = np.where(same, sup_x, def_x), np.where(same, sup_z, def_z)
        tx[rows, h] = 0.0  # the carrier skates to the net it attacks
        tz[rows, h] = NET_Z[h]
        ix, iz = _rectify(tx - x, tz - z)

        # the carrier: shoot, pass or skate
        net_z = NET_Z[h]
        dist = np.sqrt(cx * cx + (net_z - cz) ** 2)
        opp = OPPONENTS[h]  # [B, 3]
        ox, oz, able = x[rows[:, None], opp], z[rows[:, None], opp], free[rows[:, None], opp]
        prob, _, _ = intercept_lines(cx, cz, np.zeros(b), net_z, ox, oz, able)
        shoot = (dist < SHOOT_DIST) & (through_chance(prob) * on_net_chance(cx, cz, net_z)
                                       > SHOT_CHANCE)
        mates = MATES[h]  # [B, 2]
        px, pz = x[rows[:, None], mates], z[rows[:, None], mates]
        prob, _, _ = intercept_lines(np.repeat(cx[:, None], 2, 1), np.repeat(cz[:, None], 2, 1),
                                     px, pz, ox[:, None], oz[:, None], able[:, None])
        mate_dist = np.sqrt(px * px + (pz - net_z[:, None]) ** 2)
        ok = (free[rows[:, None], mates] & (through_chance(prob) > PASS_CHANCE)
              & (mate_dist < dist[:, None]))
        best = np.where(ok, mate_dist, np.inf).argmin(1)
        pass_to = np.where(~shoot & ok.any(1), mates[rows, best], -1)
        return ix, iz, shoot, pass_to

    # ------------------------------------------------------------------ one tick
    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        s = state
        actions = np.asarray(actions, np.int64)
        b = len(s.t)
        rows = np.arange(b)
        u = rng.random((b, 4))  # shot on net, interception by candidates 0..2
        u_kick = None if self.end_on_goal else rng.random((b, 13))

        # 1. timers
        timer = np.maximum(s.timer - 1, 0)
        free = timer == 0
        h0 = s.holder
        holder = h0.copy()

        # 2. decisions
        ix, iz, s_shoot, s_pass = self.script(s, free)
        a = actions
        ix[:, self._learner_cols] = _MOVE_X[a[:, self._learner_cols]]
        iz[:, self._learner_cols] = _MOVE_Z[a[:, self._learner_cols]]
        ix *= free
        iz *= free
        a_h = a[rows, np.minimum(h0, TEAM_SIZE - 1)]  # the learning carrier's action
        learning_carrier = (h0 < TEAM_SIZE) & ~self.scripted[h0]
        l_pass = np.where((a_h >= PASS_1) & (a_h <= PASS_3) & (a_h - PASS_1 != h0),
                          a_h - PASS_1, -1)
        shoot = np.where(learning_carrier, a_h == SHOOT, s_shoot) & free[rows, h0]
        pass_to = np.where(learning_carrier, l_pass, s_pass)
        pass_to = np.where(free[rows, h0], pass_to, -1)

        # 3. motion
        n = np.sqrt(ix * ix + iz * iz)
        long = n > 1
        if long.any():
            ix = np.where(long, ix / np.where(long, n, 1), ix)
            iz = np.where(long, iz / np.where(long, n, 1), iz)
            n = np.minimum(n, 1.0)
        gain = (n - (s.vx * ix + s.vz * iz) / MAX_SPEED) * MAX_ACCEL
        vx, vz = s.vx + ix * gain, s.vz + iz * gain
        speed = np.sqrt(vx * vx + vz * vz)
        fast = speed > MAX_SPEED
        if fast.any():
            cap = np.where(fast, MAX_SPEED / np.where(fast, speed, 1), 1.0)
            vx, vz = vx * cap, vz * cap
        x, z = s.x + vx, s.z + vz

        # 4.-5. walls, collisions with steals, walls
        _clamp(x, vx, X_MAX)
        _clamp(z, vz, Z_MAX)
        steals = np.zeros((b, N_PLAYERS), np.int64)
        stealer = np.full(b, -1, np.int64)
        # a pair is looked at if it touched after the motion, or once a push moved one of its
        # players (the pass is sequential: a push can bring a later pair into contact)
        dx, dz = x[:, _PAIR_I] - x[:, _PAIR_J], z[:, _PAIR_I] - z[:, _PAIR_J]
        touching = (dx * dx + dz * dz <= CONTACT * CONTACT).any(0)
        pushed: set[int] = set()
        for k, (i, j) in enumerate(PAIRS):
            if not touching[k] and i not in pushed and j not in pushed:
                continue
            dx, dz = x[:, i] - x[:, j], z[:, i] - z[:, j]
            hit = np.flatnonzero(dx * dx + dz * dz <= CONTACT * CONTACT)
            if not hit.size:
                continue
            pushed.update((i, j))
            xi, xj, zi, zj = x[hit, i], x[hit, j], z[hit, i], z[hit, j]
            mid_x, mid_z = 0.5 * (xi + xj), 0.5 * (zi + zj)
            hx, hz = xi - mid_x, zi - mid_z
            hn = np.sqrt(hx * hx + hz * hz)
            apart = hn > 0.001
            safe = np.where(apart, hn, 1.0)
            ux, uz = np.where(apart, hx / safe, -1.0), np.where(apart, hz / safe, 0.0)
            x[hit, i], z[hit, i] = mid_x + PUSH * ux, mid_z + PUSH * uz
            x[hit, j], z[hit, j] = mid_x - PUSH * ux, mid_z - PUSH * uz
            avx, avz = 0.5 * (vx[hit, i] + vx[hit, j]), 0.5 * (vz[hit, i] + vz[hit, j])
            vx[hit, i] = vx[hit, j] = avx
            vz[hit, i] = vz[hit, j] = avz
            if TEAM[i] == TEAM[j]:
                continue
            hh = holder[hit]
            by_j = (hh == i) & (timer[hit, j] == 0)
            by_i = ~by_j & (hh == j) & (timer[hit, i] == 0)
            for victim, thief, took in ((i, j, by_j), (j, i, by_i)):
                w = hit[took]
                if w.size:
                    timer[w, victim] = STUN
                    timer[w, thief] = np.maximum(timer[w, thief], RECEIVE)
                    holder[w] = thief
                    steals[w, thief] += 1
                    stealer[w] = thief
        _clamp(x, vx, X_MAX)
        _clamp(z, vz, Z_MAX)

        # 6. the carrier's shot or pass (if it still has the puck)
        still = holder == h0
        shooter = np.where(shoot & still, h0, -1)
        passer = np.where((pass_to >= 0) & still, h0, -1)
        scorer = np.full(b, -1, np.int64)
        rebounder = np.full(b, -1, np.int64)
        catcher = np.full(b, -1, np.int64)  # interceptor of a shot or pass
        receiver = np.full(b, -1, np.int64)
        w = np.flatnonzero(shooter >= 0)
        if w.size:
            p = h0[w]
            sx, sz, net_z = x[w, p], z[w, p], NET_Z[p]
            on_net = u[w, 0] < on_net_chance(sx, sz, net_z)
            opp = OPPONENTS[p]
            col = w[:, None]
            prob, closest, length = intercept_lines(sx, sz, np.zeros(len(w)), net_z,
                                                    x[col, opp], z[col, opp],
                                                    timer[col, opp] == 0)
            who = interceptor(prob, closest, length, u[w, 1:])
            timer[w, p] = np.maximum(timer[w, p], SHOT_DELAY)
            got = who >= 0
            taker = np.where(got, opp[np.arange(len(w)), np.maximum(who, 0)], -1)
            goal = ~got & on_net
            miss = ~got & ~on_net
            nearest = ((x[w] ** 2) + (z[w] - net_z[:, None]) ** 2).argmin(1)
            taker = np.where(miss, nearest, taker)
            catcher[w[got]] = taker[got]
            scorer[w[goal]] = p[goal]
            rebounder[w[miss]] = taker[miss]
            take = w[got | miss]
            holder[take] = taker[got | miss]
            timer[take, holder[take]] = np.maximum(timer[take, holder[take]], RECEIVE)
        w = np.flatnonzero(passer >= 0)
        if w.size:
            p, target = h0[w], pass_to[w]
            opp = OPPONENTS[p]
            col = w[:, None]
            prob, closest, length = intercept_lines(x[w, p], z[w, p], x[w, target],
                                                    z[w, target], x[col, opp], z[col, opp],
                                                    timer[col, opp] == 0)
            who = interceptor(prob, closest, length, u[w, 1:])
            got = who >= 0
            taker = np.where(got, opp[np.arange(len(w)), np.maximum(who, 0)], target)
            catcher[w[got]] = taker[got]
            receiver[w[~got]] = target[~got]
            holder[w] = taker
            timer[w, taker] = np.maximum(timer[w, taker], RECEIVE)
            timer[w, p] = np.maximum(timer[w, p], PASS_DELAY)

        # goals, kick-offs, rewards, the end
        scored = np.where(scorer >= 0, scorer // TEAM_SIZE, -1)  # team that scored
        score = s.score.copy()
        score[scored == 0, 0] += 1
        score[scored == 1, 1] += 1
        before, after = h0 // TEAM_SIZE, holder // TEAM_SIZE
        have = holder.copy()  # the carrier of the step (before a kick-off)
        if u_kick is not None and (scored >= 0).any():
            w = np.flatnonzero(scored >= 0)
            kx, kz, kh, kt = self._kickoff(u_kick[w], (s.first[w] + score[w].sum(1)) % 2)
            x[w], z[w], vx[w], vz[w], timer[w], holder[w] = kx, kz, 0.0, 0.0, kt, kh
        c = self.possession_reward
        reward = (GOAL_REWARD * ((scored == 0).astype(np.float64) - (scored == 1))
                  + CHANGE_REWARD * (((before == 1) & (after == 0)).astype(np.float64)
                                     - ((before == 0) & (after == 1)))
                  + np.where(after == 0, c, -c))
        t = s.t + 1
        at_cap = t >= self.max_steps
        if self.end_on_goal:
            win, lose = scored == 0, scored == 1
            draw = at_cap & (scored < 0)
            done = at_cap | (scored >= 0)
        else:
            win = at_cap & (score[:, 0] > score[:, 1])
            lose = at_cap & (score[:, 0] < score[:, 1])
            draw = at_cap & (score[:, 0] == score[:, 1])
            done = at_cap
        reward = reward - self.draw_penalty * draw

        event = np.full(b, EVENT_NONE, np.int64)
        actor = np.full(b, -1, np.int64)
        for code, who in ((EVENT_STEAL, stealer), (EVENT_PASS, passer), (EVENT_SHOT, shooter),
                          (EVENT_INTERCEPTION, catcher), (EVENT_GOAL, scorer)):
            hit = who >= 0
            event[hit], actor[hit] = code, who[hit]

        new = State(t=t, x=x, z=z, vx=vx, vz=vz, timer=timer, holder=holder, score=score,
                    first=s.first, event=event, actor=actor)
        agents = np.arange(TEAM_SIZE)

        def mine(who: np.ndarray) -> np.ndarray:
            return who[:, None] == agents

        team = np.ones((1, TEAM_SIZE), np.int64)
        own_rebound = np.where(rebounder // TEAM_SIZE == shooter // TEAM_SIZE, rebounder, -1)
        done_pass = np.where(receiver >= 0, passer, -1)
        info = {
            "shot": mine(shooter).astype(np.int64), "goal": mine(scorer).astype(np.int64),
            "rebound": mine(own_rebound).astype(np.int64),
            "pass_attempt": mine(passer).astype(np.int64),
            "pass_made": mine(done_pass).astype(np.int64),
            "pass_received": mine(receiver).astype(np.int64),
            "interception": mine(catcher).astype(np.int64),
            "steal": steals[:, :TEAM_SIZE].copy(), "possession": mine(have).astype(np.int64),
            "win": win[:, None] * team, "lose": lose[:, None] * team, "draw": draw[:, None] * team,
        }
        r = np.repeat(reward.astype(np.float32)[:, None], TEAM_SIZE, 1)
        return Step(new, self.observe(new), r, done, info)

    # ------------------------------------------------------------------ views
    def observe(self, state: State) -> np.ndarray:
        """``[B, 3, 31]`` float32 observations of the learning agents (module docstring)."""
        s = state
        b = len(s.t)
        rows = np.arange(b)
        h = s.holder
        obs = np.empty((b, TEAM_SIZE, OBS_SIZE), np.float32)
        own = (s.x[:, :3], s.z[:, :3], s.vx[:, :3], s.vz[:, :3])
        scales = (2 * HALF_X, 2 * HALF_Z, 1.0, 1.0)
        for k, (v, mine, scale) in enumerate(zip((s.x, s.z, s.vx, s.vz), own, scales,
                                                 strict=True)):
            obs[..., k] = (v[rows, h][:, None] - mine) / scale
            rel = (v[:, OTHERS] - mine[:, :, None]) / scale  # [B, 3, 5]
            obs[..., 10 + k:18:4] = rel[:, :, :2]
            obs[..., 19 + k::4] = rel[:, :, 2:]
        obs[..., 4] = h[:, None] == np.arange(TEAM_SIZE)
        obs[..., OBS_TEAM_PUCK] = (h < TEAM_SIZE)[:, None]
        obs[..., OBS_OWN_X] = own[0] / HALF_X
        obs[..., OBS_OWN_Z] = own[1] / HALF_Z
        obs[..., 8] = own[2]
        obs[..., 9] = own[3]
        obs[..., 18] = (h >= TEAM_SIZE)[:, None]
        return obs

    def global_state(self, state: State) -> np.ndarray:
        """``[B, 34]`` float32 global state (Diss §4.3.1): the carrier's (x / 9, z / 18, vx,
        vz), a one-hot of the carrier among players 0..5, then (x / 9, z / 18, vx, vz) of
        each player 0..5 (the learning team first)."""
        s = state
        b = len(s.t)
        rows, h = np.arange(b), s.holder
        out = np.zeros((b, STATE_SIZE), np.float32)
        out[:, 0], out[:, 1] = s.x[rows, h] / HALF_X, s.z[rows, h] / HALF_Z
        out[:, 2], out[:, 3] = s.vx[rows, h], s.vz[rows, h]
        out[rows, 4 + h] = 1.0
        out[:, 10::4], out[:, 11::4] = s.x / HALF_X, s.z / HALF_Z
        out[:, 12::4], out[:, 13::4] = s.vx, s.vz
        return out

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
