"""STS2 3v3 (Diss §4.3.1; SPEC §8): hand-worked physics, shot and pass chances on fixed
geometries, steals and timers, kick-offs, the scripted team, the end of an episode, the
observation and state layouts, invariants, batch independence, parameters, Mesa face."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from econsim import envs
from econsim.core import ReplicaRNG, reset_done
from econsim.core.capabilities import names_of
from econsim.envs.sts2 import (
    DOWN,
    LEFT,
    NONE,
    PASS_1,
    PASS_2,
    RIGHT,
    SHOOT,
    UP,
    X_MAX,
    Z_MAX,
    interception,
    on_net_chance,
    shot_line,
)

BUSY = 10**6  # a timer that keeps a player idle for the whole test
# players far apart: learners on their own half, opponents on theirs
X0 = [-6.0, 0.0, 6.0, -6.0, 0.0, 6.0]
Z0 = [-10.0, -10.0, -10.0, 10.0, 10.0, 10.0]


def game(**params):
    return envs.make("sts2", **params)


def world(g, x=X0, z=Z0, holder=3, timer=(0, 0, 0, BUSY, BUSY, BUSY), batch=1, **kw):
    """``batch`` copies of one hand-made world (default: learners free, opponents idle, the
    puck with opponent 3)."""
    rep = lambda v: np.repeat(np.asarray(v, np.float64)[None], batch, 0)  # noqa: E731
    extra = {k: rep(v) for k, v in kw.items() if k in ("vx", "vz")}
    rest = {k: v for k, v in kw.items() if k not in ("vx", "vz")}
    return g.make_state(rep(x), rep(z), holder=holder,
                        timer=np.repeat(np.asarray(timer, np.int64)[None], batch, 0),
                        **extra, **rest)


def step(g, s, actions, seed=0):
    a = np.broadcast_to(np.asarray(actions, np.int64), (len(s.t), 3))
    return g.step(s, a, np.random.default_rng(seed))


def ref_intercept(src, dst, p):
    """SPEC §8's interception chance and gap of one candidate, in plain floats."""
    L = math.dist(src, dst)
    ux, uz = (dst[0] - src[0]) / L, (dst[1] - src[1]) / L
    along = (p[0] - src[0]) * ux + (p[1] - src[1]) * uz
    if along <= 0:
        return 0.0, math.inf
    a = min(along, L)
    closest = max(0.0, math.dist(p, (src[0] + a * ux, src[1] + a * uz)) - 0.05 * a)
    return (0.0 if closest > 3.5 else 0.5 + 0.5 * closest / 3.5), closest


def ref_on_net(x, z, net_z):
    dz = abs(net_z - z)
    return dz / math.hypot(x, dz) * min(1.0, 4.0 / dz)


# ------------------------------------------------------------------------------ the game
def test_registered_with_the_diss_sizes():
    g = game()
    assert "sts2" in envs.names()
    assert names_of(g) == ("AgentEvents", "Render", "Plane", "GlobalState")
    assert (g.n_agents, g.action_space.n, g.max_steps) == (3, 9, 500)
    assert g.observation_space.shape == (31,) and g.state_size == 34
    assert g.action_names[:5] == ("none", "shoot", "pass_1", "pass_2", "pass_3")
    assert g.action_names[5:] == ("down", "up", "right", "left")
    s = g.reset(5, np.random.default_rng(0))
    assert g.observe(s).shape == (5, 3, 31) and g.global_state(s).shape == (5, 34)
    assert g.extent == (-9, 9, -18, 18)
    assert g.landmarks(s).tolist() == [[0, 18], [0, -18]]
    assert g.possession_reward == pytest.approx(1 / 502)  # the Diss's 1 / (2 + max steps)


# ------------------------------------------------------------------------------ physics
def test_acceleration_from_rest_and_braking():
    g = game()
    s = world(g)
    out = step(g, s, [UP, RIGHT, LEFT])
    t = out.state
    np.testing.assert_allclose(t.vz[0, :3], [0.05, 0, 0])
    np.testing.assert_allclose(t.vx[0, :3], [0, 0.05, -0.05])
    np.testing.assert_allclose(t.z[0, 0], -10 + 0.05)
    np.testing.assert_allclose(t.x[0, 1:3], [0.05, 6 - 0.05])
    # a = i (|i| - v.i / 0.5) 0.05: 0.05 * (1 - 0.1) = 0.045 in the second step
    t = step(g, t, [UP, NONE, DOWN]).state
    np.testing.assert_allclose(t.vz[0, 0], 0.095)
    np.testing.assert_allclose(t.z[0, 0], -10 + 0.05 + 0.095)
    np.testing.assert_allclose(t.vz[0, 2], -0.05)
    np.testing.assert_allclose(t.vx[0, 1], 0.05)  # no input: the velocity carries on
    # braking against the motion at full speed: a = -1 (1 + 1) 0.05 = -0.1
    s = world(g, vz=[0.5, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(step(g, s, [DOWN, NONE, NONE]).state.vz[0, 0], 0.4)
    assert (t.x[0, 3:] == X0[3:]).all() and (t.vx[0, 3:] == 0).all()  # idle opponents


def test_speed_cap():
    g = game()
    s = world(g, vx=[0.5, 0, 0, 0, 0, 0])
    t = step(g, s, [UP, NONE, NONE]).state
    norm = math.hypot(0.5, 0.05)
    np.testing.assert_allclose([t.vx[0, 0], t.vz[0, 0]], [0.5 * 0.5 / norm, 0.05 * 0.5 / norm])
    np.testing.assert_allclose(math.hypot(t.vx[0, 0], t.vz[0, 0]), 0.5)
    s = world(g)
    for _ in range(200):
        s = step(g, s, [RIGHT, NONE, NONE]).state
        s.x[:] = X0  # stay away from the boards
        assert math.hypot(s.vx[0, 0], s.vz[0, 0]) <= 0.5
    assert s.vx[0, 0] > 0.49


def test_walls_clamp_and_zero_that_velocity_component():
    g = game()
    s = world(g, x=[8.2, 0, -8.0, *X0[3:]], z=[-10, 17.0, -10, *Z0[3:]],
              vx=[0.3, 0, -0.4, 0, 0, 0], vz=[0.1, 0.4, 0, 0, 0, 0])
    t = step(g, s, [NONE, NONE, NONE]).state
    assert t.x[0, 0] == X_MAX == 8.25 and t.vx[0, 0] == 0
    assert t.vz[0, 0] == 0.1 and t.z[0, 0] == pytest.approx(-9.9)  # the other axis moves
    assert t.z[0, 1] == Z_MAX == 17.25 and t.vz[0, 1] == 0
    assert t.x[0, 2] == -8.25 and t.vx[0, 2] == 0


def test_a_collision_pushes_apart_and_averages_the_velocities():
    g = game()
    s = world(g, x=[0, 1.0, 6, *X0[3:]], z=[0, 0, -10, *Z0[3:]],
              vx=[0.2, -0.2, 0, 0, 0, 0], vz=[0, 0.1, 0, 0, 0, 0])
    t = step(g, s, [NONE, NONE, NONE]).state
    p0, p1 = np.array([0.2, 0.0]), np.array([0.8, 0.1])  # after the motion
    mid = (p0 + p1) / 2
    u = (p0 - mid) / np.linalg.norm(p0 - mid)
    np.testing.assert_allclose([t.x[0, 0], t.z[0, 0]], mid + 0.7575 * u)
    np.testing.assert_allclose([t.x[0, 1], t.z[0, 1]], mid - 0.7575 * u)
    np.testing.assert_allclose([t.vx[0, 0], t.vz[0, 0]], [0, 0.05])
    np.testing.assert_allclose([t.vx[0, 1], t.vz[0, 1]], [0, 0.05])
    assert math.dist((t.x[0, 0], t.z[0, 0]), (t.x[0, 1], t.z[0, 1])) == pytest.approx(1.515)
    assert t.holder[0] == 3  # teammates bumping take nothing


# ------------------------------------------------------------------------------ steals, timers
def test_steal_stuns_the_carrier_and_delays_the_thief():
    g = game()
    c = g.possession_reward
    # opponent 3 (free) chases learner 0's puck and touches it
    s = world(g, x=[0, -6, 6, 1.2, 0, 6], z=[0, -10, -10, 0, 10, 10], holder=0,
              timer=[0, 0, 0, 0, BUSY, BUSY])
    out = step(g, s, [NONE, NONE, NONE])
    assert out.state.holder[0] == 3
    assert out.state.timer[0, 0] == 20 and out.state.timer[0, 3] == 15
    assert out.info["steal"].sum() == 0  # an opponent's steal is no learner event
    assert out.reward[0].tolist() == pytest.approx([-0.1 - c] * 3)
    # learner 0 skates into opponent 3's puck and takes it
    s = world(g, x=[1.2, -6, 6, 0, 0, 6], z=[0, -10, -10, 0, 10, 10], holder=3,
              timer=[0, 0, 0, 0, BUSY, BUSY])
    out = step(g, s, [LEFT, NONE, NONE])
    assert out.state.holder[0] == 0 and out.info["steal"][0].tolist() == [1, 0, 0]
    assert out.state.timer[0, 3] == 20 and out.state.timer[0, 0] == 15
    assert out.reward[0].tolist() == pytest.approx([0.1 + c] * 3)
    assert out.info["possession"][0].tolist() == [1, 0, 0]
    # an opponent with a timer cannot steal: the pair only collides
    s = world(g, x=[0, -6, 6, 1.2, 0, 6], z=[0, -10, -10, 0, 10, 10], holder=0,
              timer=[0, 0, 0, 5, BUSY, BUSY])
    out = step(g, s, [RIGHT, NONE, NONE])
    assert out.state.holder[0] == 0 and out.state.timer[0, 0] == 0
    assert math.dist((out.state.x[0, 0], out.state.z[0, 0]),
                     (out.state.x[0, 3], out.state.z[0, 3])) == pytest.approx(1.515)


def test_a_stunned_player_ignores_its_actions_for_19_steps():
    g = game()
    s = world(g, timer=[20, 0, 0, BUSY, BUSY, BUSY])
    for k in range(1, 20):
        s = step(g, s, [UP, NONE, NONE]).state
        assert s.timer[0, 0] == 20 - k and s.vz[0, 0] == 0 and s.z[0, 0] == -10
    s = step(g, s, [UP, NONE, NONE]).state  # the 20th step: free again
    assert s.timer[0, 0] == 0 and s.vz[0, 0] == pytest.approx(0.05)


# ------------------------------------------------------------------------------ shots, passes
def test_on_net_chance_and_interception_formulas_on_fixed_geometry():
    assert on_net_chance(3.0, 10.0, 18.0) == pytest.approx(0.5 * 8 / math.sqrt(73))
    assert on_net_chance(0.0, 8.0, 18.0) == pytest.approx(0.4)
    assert on_net_chance(0.0, 16.0, 18.0) == 1.0
    assert on_net_chance(-2.0, -10.0, -18.0) == pytest.approx(ref_on_net(-2, -10, -18))
    src, dst = (0.0, 8.0), (0.0, 18.0)
    opps = [(1.0, 13.0), (0.0, 6.0), (3.0, 17.0)]  # a gap of 1 at 5 along; behind; 9 along
    want = [ref_intercept(src, dst, p) for p in opps]
    assert want[0][0] == pytest.approx(0.5 + 0.5 * 0.75 / 3.5)
    assert want[1][0] == 0.0 and want[2][0] == pytest.approx(0.5 + 0.5 * 2.55 / 3.5)
    line = shot_line(*src, *dst)
    prob = [interception(*src, *line, px, pz, True)[0] for px, pz in opps]
    np.testing.assert_allclose(prob, [w[0] for w in want])
    # beyond the target the gap is measured to the target; more than 3.5 away: no chance
    p, gap = ref_intercept((0, 0), (0, 10), (0, 12))
    assert gap == pytest.approx(2 - 0.5) and p == pytest.approx(0.5 + 0.5 * 1.5 / 3.5)
    assert ref_intercept((0, 0), (0, 10), (5, 5))[0] == 0.0
    line = shot_line(0.0, 0.0, 0.0, 10.0)
    prob = [interception(0.0, 0.0, *line, px, pz, able)[0]
            for px, pz, able in ((0.0, 12.0, True), (5.0, 5.0, True), (1.0, 5.0, False))]
    np.testing.assert_allclose(prob, [0.5 + 0.5 * 1.5 / 3.5, 0, 0])  # not capable: 0


def test_shots_go_in_with_the_on_net_chance_and_rebound_to_the_nearest():
    g = game()
    B = 20000
    # learner 0 shoots from (3, 10); the opponents are idle (nobody intercepts); learner 1
    # stands nearest the net and takes every miss (an offensive rebound)
    s = world(g, x=[3, 0, 6, *X0[3:]], z=[10, 16, -10, *Z0[3:]], holder=0, batch=B)
    out = step(g, s, [SHOOT, NONE, NONE], seed=1)
    goal = out.info["goal"][:, 0] == 1
    assert (out.info["shot"][:, 0] == 1).all()
    assert abs(goal.mean() - ref_on_net(3, 10, 18)) < 0.015
    assert (out.done == goal).all() and (out.info["win"][goal] == 1).all()
    miss = ~goal
    assert (out.state.holder[miss] == 1).all() and (out.info["rebound"][miss, 1] == 1).all()
    assert (out.state.timer[:, 0] == 10).all() and (out.state.timer[miss, 1] == 15).all()
    assert (out.state.holder[goal] == 0).all()
    c = g.possession_reward
    np.testing.assert_allclose(out.reward[goal, 0], 1 + c)
    np.testing.assert_allclose(out.reward[miss, 0], c)


def test_shot_interception_by_the_first_capable_opponent_in_front():
    g = game()
    B = 20000
    # learner 0 shoots from (0, 8): on net 0.4; opponent 3 near the line, 4 behind the
    # shooter, 5 near the net; all three free (the scripted team moves them a little first)
    s = world(g, x=[0, -7, 7, 1, 0, 3], z=[8, -12, -12, 13, 6, 17], holder=0,
              timer=[0, 0, 0, 0, 0, 0], batch=B)
    out = step(g, s, [SHOOT, NONE, NONE], seed=2)
    t = out.state
    assert (t.x == t.x[0]).all() and (t.z == t.z[0]).all()  # the motion is not random
    src = (t.x[0, 0], t.z[0, 0])
    assert src == (0, 8)
    p3, gap3 = ref_intercept(src, (0, 18), (t.x[0, 3], t.z[0, 3]))
    p4, _ = ref_intercept(src, (0, 18), (t.x[0, 4], t.z[0, 4]))
    p5, gap5 = ref_intercept(src, (0, 18), (t.x[0, 5], t.z[0, 5]))
    assert p4 == 0 and 0.55 < p3 < 0.65 and 0.8 < p5 < 0.9 and gap5 > gap3
    by3, by5 = t.holder == 3, t.holder == 5
    goal = out.info["goal"][:, 0] == 1
    assert abs(by3.mean() - p3) < 0.015
    # 5 intercepts only when 3 did not; misses rebound to 5 (nearest the net) as well
    assert abs(goal.mean() - (1 - p3) * (1 - p5) * 0.4) < 0.015
    assert abs(by5.mean() - ((1 - p3) * p5 + (1 - p3) * (1 - p5) * 0.6)) < 0.015
    assert (by3 | by5 | goal).all()
    assert (out.info["rebound"] == 0).all()  # a defensive rebound is no learner event
    assert (t.timer[by3, 3] == 15).all() and (t.timer[:, 0] == 10).all()


def test_pass_reaches_the_teammate_unless_intercepted():
    g = game()
    B = 20000
    s = world(g, x=[0, 0, 6, 1, 0, 6], z=[0, 10, -10, 5, 15, 15], holder=0,
              timer=[0, 0, 0, 0, BUSY, BUSY], batch=B)
    out = step(g, s, [PASS_2, NONE, NONE], seed=3)
    t = out.state
    p3, _ = ref_intercept((0, 0), (t.x[0, 1], t.z[0, 1]), (t.x[0, 3], t.z[0, 3]))
    assert 0.55 < p3 < 0.65
    caught = t.holder == 3
    assert abs(caught.mean() - p3) < 0.015
    assert (t.holder[~caught] == 1).all()
    assert (out.info["pass_attempt"][:, 0] == 1).all()
    assert (out.info["pass_made"][:, 0] == ~caught).all()
    assert (out.info["pass_received"][:, 1] == ~caught).all()
    assert (t.timer[:, 0] == 10).all() and (t.timer[~caught, 1] == 15).all()
    assert (t.timer[caught, 3] == 15).all()
    c = g.possession_reward
    np.testing.assert_allclose(out.reward[caught, 0], -0.1 - c)
    np.testing.assert_allclose(out.reward[~caught, 0], c)
    # a pass to oneself, and a pass or shot without the puck, do nothing
    s = world(g, x=[0, 0, 6, 1, 0, 6], z=[0, 10, -10, 5, 15, 15], holder=0)
    out = step(g, s, [PASS_1, SHOOT, PASS_1])
    assert out.state.holder[0] == 0 and (out.state.timer[0, :3] == 0).all()
    assert all(out.info[k].sum() == 0 for k in ("shot", "pass_attempt"))
    assert (out.state.vx[0, :3] == 0).all() and (out.state.vz[0, :3] == 0).all()


# ------------------------------------------------------------------------------ kick-offs, end
def test_reset_places_teams_in_their_halves_with_the_kickoff_team_holding():
    rng = np.random.default_rng(0)
    for kickoff, teams in (("learners", {0}), ("opponents", {1}), ("random", {0, 1})):
        g = game(kickoff=kickoff)
        s = g.reset(400, rng)
        assert set((s.holder // 3).tolist()) == teams
        assert (s.z[:, :3] < 0).all() and (s.z[:, 3:] > 0).all()
        assert (np.abs(s.x) <= X_MAX).all() and (np.abs(s.z) <= Z_MAX).all()
        inside = np.abs(s.x) < X_MAX
        assert (s.x[inside] == np.round(s.x[inside])).all()  # integer x (or clamped -9)
        assert (s.timer[np.arange(400), s.holder] == 15).all() and s.timer.sum() == 400 * 15
        assert (s.vx == 0).all() and (s.vz == 0).all() and (s.score == 0).all()


def test_kickoff_alternates_with_the_score_within_a_match():
    g = game(kickoff="learners", end_on_goal=False)
    c = g.possession_reward
    # learner 0 in front of the net with the opponents idle: a sure goal
    s = world(g, x=[0, -6, 6, *X0[3:]], z=[16, -10, -10, *Z0[3:]], holder=0)
    out = step(g, s, [SHOOT, NONE, NONE])
    t = out.state
    assert out.info["goal"][0].tolist() == [1, 0, 0] and not out.done[0]
    assert out.reward[0, 0] == pytest.approx(1 + c)
    assert t.score[0].tolist() == [1, 0] and t.holder[0] >= 3  # the opponents kick off
    assert (t.z[0, :3] < 0).all() and (t.z[0, 3:] > 0).all() and (t.vx == 0).all()
    assert t.timer[0].tolist() == [15 if p == t.holder[0] else 0 for p in range(6)]
    # opponent 3 in front of the learners' net with the learners idle: it shoots and scores
    s = world(g, x=[-6, 0, 6, 0, 0, 6], z=[-10, -10, -10, -16, 10, 10], holder=3,
              timer=[BUSY, BUSY, BUSY, 0, BUSY, BUSY], score=t.score[0], first=t.first[0])
    out = step(g, s, [NONE, NONE, NONE])
    assert out.state.score[0].tolist() == [1, 1] and out.state.holder[0] < 3  # learners again
    assert out.reward[0, 0] == pytest.approx(-1 - c) and out.info["lose"].sum() == 0
    # a fresh match kicked off by the opponents alternates the other way
    s.score[:], s.first[:] = 0, 1
    assert step(g, s, [NONE] * 3).state.holder[0] < 3  # total 1: team (1 + 1) % 2 = 0


def test_a_goal_ends_the_episode_with_win_or_lose():
    g = game()
    s = world(g, x=[0, -6, 6, *X0[3:]], z=[16, -10, -10, *Z0[3:]], holder=0)
    out = step(g, s, [SHOOT, NONE, NONE])
    assert out.done[0] and out.info["win"][0].tolist() == [1, 1, 1]
    assert out.info["lose"].sum() == out.info["draw"].sum() == 0
    s = world(g, x=[-6, 0, 6, 0, 0, 6], z=[-10, -10, -10, -16, 10, 10], holder=3,
              timer=[BUSY, BUSY, BUSY, 0, BUSY, BUSY])
    out = step(g, s, [NONE, NONE, NONE])
    assert out.done[0] and out.info["lose"][0].tolist() == [1, 1, 1]
    assert out.reward[0, 0] == pytest.approx(-1 - g.possession_reward)


def test_the_episode_ends_at_500_steps_with_the_draw_penalty():
    g = game()
    s = world(g, holder=1, timer=[BUSY] * 6)  # nobody moves; the learning team holds the puck
    total = 0.0
    for k in range(1, 501):
        out = step(g, s, [UP, UP, UP])
        s = out.state
        total += float(out.reward[0, 0])
        assert out.done[0] == (k == 500)
        assert out.info["draw"][0, 0] == (k == 500)
    assert out.reward[0, 0] == pytest.approx(1 / 502 - 0.5)
    assert total == pytest.approx(500 / 502 - 0.5)
    ref = game(possession_reward=0.001, draw_penalty=0.0, max_steps=3)
    s = world(ref, holder=4, timer=[BUSY] * 6)
    for _ in range(3):
        out = step(ref, s, [NONE] * 3)
        s = out.state
    assert out.done[0] and out.reward[0, 0] == pytest.approx(-0.001)


# ------------------------------------------------------------------------------ the scripted team
def _input_to(pos, target):
    d = np.subtract(target, pos)
    return np.rint(d / np.linalg.norm(d)).tolist()


def test_script_carrier_near_the_net_shoots_else_passes_forward():
    g = game()
    # opponent 3 (attacking -z) 8.2 from the net, the learners idle: it shoots
    s = world(g, x=[-6, 0, 6, 2, -6, 6], z=[-3, -3, -3, -10, 10, 10], holder=3,
              timer=[BUSY, BUSY, BUSY, 0, 0, 0])
    ix, iz, shoot, pass_to = g.script(s)
    assert shoot[0] and pass_to[0] == -1
    assert [ix[0, 3], iz[0, 3]] == _input_to((2, -10), (0, -18)) == [0, -1]
    assert step(g, s, [NONE] * 3).state.timer[0, 3] >= 10  # the kernel's shooter delay
    # far from the net: it passes to the free teammate nearest the net, if nearer than itself
    s = world(g, x=[-6, -7, 7, 0, 0, 5], z=[12, 12, 12, 5, -5, -8], holder=3,
              timer=[BUSY, BUSY, BUSY, 0, 0, 0])
    ix, iz, shoot, pass_to = g.script(s)
    assert not shoot[0] and pass_to[0] == 5
    s.timer[0, 5] = 3  # 5 is busy: 4 instead
    assert g.script(s)[3][0] == 4
    s.timer[0, 4] = 3  # nobody to pass to: skate on
    assert g.script(s)[3][0] == -1
    # a free learner in the passing lane keeps the pass from 4
    s.timer[0, 4] = 0
    s.timer[0, 0], s.x[0, 0], s.z[0, 0] = 0, 0.5, 0.0
    assert g.script(s)[3][0] == -1


def test_script_teammate_with_the_puck_means_support_position():
    g = game()
    x, z = [-6, 0, 6, 0, -4, 4], [-10, -10, -10, 5, 0, 8]
    s = world(g, x=x, z=z, holder=3, timer=[0] * 6)
    ix, iz, _, _ = g.script(s)
    cx, cz = (0 - 4 + 4) / 3, (5 + 0 + 8) / 3
    for p in (4, 5):
        d = np.array([x[p] - cx, z[p] - cz])
        target = (np.array([0.0, -18.0]) + [x[p], z[p]]) / 2 + 9 * d / np.linalg.norm(d)
        assert [ix[0, p], iz[0, p]] == _input_to((x[p], z[p]), target)
    assert [ix[0, 4], iz[0, 4]] == [0, -1] and [ix[0, 5], iz[0, 5]] == [1, -1]


def test_script_opponent_with_the_puck_two_nearest_chase():
    g = game()
    # learner 0 carries at the origin: opponents 3 and 4 are nearest and chase it, 5 covers
    # the midpoint between the carrier and the net it attacks, (0, 9)
    x, z = [0, -6, 6, 2, -1, 5], [0, -10, -10, 3, -2, 12]
    s = world(g, x=x, z=z, holder=0, timer=[0] * 6)
    ix, iz, _, _ = g.script(s)
    assert [ix[0, 3], iz[0, 3]] == _input_to((2, 3), (0, 0)) == [-1, -1]
    assert [ix[0, 4], iz[0, 4]] == _input_to((-1, -2), (0, 0)) == [0, 1]
    assert [ix[0, 5], iz[0, 5]] == _input_to((5, 12), (0, 9)) == [-1, -1]
    # the kernel moves them so (diagonals normalised by the motion model)
    t = step(g, s, [NONE] * 3).state
    np.testing.assert_allclose([t.vx[0, 3], t.vz[0, 3]], [-0.05 / math.sqrt(2)] * 2)
    np.testing.assert_allclose([t.vx[0, 4], t.vz[0, 4]], [0, 0.05])


def test_scripted_teammates_ignore_the_learners_actions():
    g = game(scripted_teammates=2)
    rng = np.random.default_rng(4)
    s = g.reset(64, rng)
    a = rng.integers(0, 9, (64, 3))
    b = a.copy()
    b[:, 1:] = rng.integers(0, 9, (64, 2))
    one, two = g.step(s, a, np.random.default_rng(9)), g.step(s, b, np.random.default_rng(9))
    np.testing.assert_array_equal(one.obs, two.obs)
    np.testing.assert_array_equal(one.reward, two.reward)
    c = a.copy()
    c[:, 0] = (a[:, 0] + 3) % 9
    three = g.step(s, c, np.random.default_rng(9))
    assert not np.array_equal(one.obs, three.obs)  # slot 0 is still the learner's
    assert g.scripted.tolist() == [False, True, True, True, True, True]
    # a scripted learning slot plays the script of its team (skates to the net it attacks)
    s = world(g, x=[-6, 0, 6, *X0[3:]], z=[-10, -10, -10, *Z0[3:]], holder=1,
              timer=[0, 0, 0, BUSY, BUSY, BUSY])
    t = step(g, s, [NONE, DOWN, DOWN]).state
    assert t.vz[0, 1] == pytest.approx(0.05)


# ------------------------------------------------------------------------------ views
def test_observation_and_global_state_layout():
    g = game()
    x, z = [-3, 1, 4, 2, -5, 7], [-8, -2, 6, 3, 9, -12]
    vx, vz = [0.1, -0.2, 0, 0.3, 0, -0.1], [0, 0.2, -0.4, 0.1, 0.5, 0]
    s = world(g, x=x, z=z, vx=vx, vz=vz, holder=4)
    o = g.observe(s)[0]
    n = 1  # agent 1: the carrier is opponent 4
    want = [(x[4] - x[n]) / 18, (z[4] - z[n]) / 36, vx[4] - vx[n], vz[4] - vz[n], 0, 0,
            x[n] / 9, z[n] / 18, vx[n], vz[n]]
    for m in (0, 2):
        want += [(x[m] - x[n]) / 18, (z[m] - z[n]) / 36, vx[m] - vx[n], vz[m] - vz[n]]
    want += [1]
    for m in (3, 4, 5):
        want += [(x[m] - x[n]) / 18, (z[m] - z[n]) / 36, vx[m] - vx[n], vz[m] - vz[n]]
    np.testing.assert_allclose(o[n], want, rtol=1e-6, atol=1e-7)
    s.holder[0] = 2
    o = g.observe(s)[0]
    assert o[:, 4].tolist() == [0, 0, 1] and (o[:, 5] == 1).all() and (o[:, 18] == 0).all()
    gs = g.global_state(s)[0]
    np.testing.assert_allclose(gs[:4], [x[2] / 9, z[2] / 18, vx[2], vz[2]], rtol=1e-6)
    assert gs[4:10].tolist() == [0, 0, 1, 0, 0, 0]
    for p in range(6):
        np.testing.assert_allclose(gs[10 + 4 * p:14 + 4 * p],
                                   [x[p] / 9, z[p] / 18, vx[p], vz[p]], rtol=1e-6, atol=1e-7)
    d = g.describe(s)
    assert set(d) == {"x", "y", "z", "vx", "vz", "has_puck"}
    assert d["z"].tolist() == [z[:3]] == d["y"].tolist() and d["has_puck"].tolist() == [[0, 0, 1]]


def test_render_draws_the_rink_both_teams_and_the_puck():
    g = game()
    s = g.reset(2, np.random.default_rng(0))
    img = g.render_rgb(s, 1)
    assert img.shape == (290, 146, 3) and img.dtype == np.uint8
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    # both teams (the carrier, timer 15 at the kick-off, is pale), the black puck, the nets
    assert {(31, 119, 180), (214, 39, 40), (0, 0, 0), (60, 60, 60), (200, 200, 215)} <= colours


# ------------------------------------------------------------------------------ invariants
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), scripted=st.integers(0, 2), end_on_goal=st.booleans())
def test_invariants_under_random_play(seed, scripted, end_on_goal):
    g = game(scripted_teammates=scripted, end_on_goal=end_on_goal)
    rng = np.random.default_rng(seed)
    s = g.reset(4, rng)
    for _ in range(60):
        out = g.step(s, rng.integers(0, 9, (4, 3)), rng)
        s = out.state
        assert (np.abs(s.x) <= X_MAX).all() and (np.abs(s.z) <= Z_MAX).all()
        assert (np.hypot(s.vx, s.vz) <= 0.5 + 1e-12).all()
        assert (s.timer >= 0).all() and ((s.holder >= 0) & (s.holder < 6)).all()
        held = out.info["possession"].sum(1)  # the carrier of the step (before a kick-off)
        assert (held <= 1).all()
        if end_on_goal:
            assert (held == (s.holder < 3)).all()
        assert g.observation_space.contains(out.obs) and out.obs.dtype == np.float32
        assert (g.global_state(s)[:, 4:10].sum(1) == 1).all()
        ends = out.info["win"][:, 0] + out.info["lose"][:, 0] + out.info["draw"][:, 0]
        assert (ends <= out.done).all() and np.isfinite(out.reward).all()
        assert (out.reward == out.reward[:, :1]).all()  # one team reward
        for k in g.agent_info_keys:  # what the rollout picks up as events
            assert out.info[k].shape == (4, 3) and out.info[k].dtype.kind in "biu"
        s = reset_done(g, s, out.done, rng)


@pytest.mark.parametrize("end_on_goal", [True, False])
def test_a_world_does_not_depend_on_its_batch(end_on_goal):
    """As the trainers play (``learners.rollout.play``): whole batches reset together, worlds
    that are done step on harmlessly. (``reset_done`` draws a fresh batch whenever any world
    is done, so beside other replicas it would shift a replica's stream.)"""
    g = game(end_on_goal=end_on_goal, max_steps=60)
    many = ReplicaRNG.from_seeds([3, 5, 7], "env")
    alone = ReplicaRNG.from_seeds([5], "env")
    acts = np.random.default_rng(0)
    ends = 0
    for _ in range(3):  # episodes
        s3, s1 = g.reset(3 * 4, many), g.reset(4, alone)
        for _ in range(g.max_steps):
            a3 = acts.integers(0, 9, (12, 3))
            o3, o1 = g.step(s3, a3, many), g.step(s1, a3[4:8], alone)
            np.testing.assert_array_equal(o3.obs[4:8], o1.obs)
            np.testing.assert_array_equal(o3.reward[4:8], o1.reward)
            np.testing.assert_array_equal(o3.done[4:8], o1.done)
            for k in o1.info:
                np.testing.assert_array_equal(o3.info[k][4:8], o1.info[k])
            s3, s1 = o3.state, o1.state
            ends += int(o3.info["goal"].sum() + o3.info["pass_made"].sum())
    assert ends > 0  # the random events were exercised


def test_the_two_scripted_teams_are_even():
    """All six players scripted (a test-only switch): the teams win about equally often."""
    g = game(max_steps=300)
    g.scripted[:] = True
    rng = np.random.default_rng(5)
    B = 1500
    s, alive = g.reset(B, rng), np.ones(B, bool)
    win = lose = 0
    for _ in range(300):
        out = g.step(s, np.zeros((B, 3), np.int64), rng)
        win += int((out.info["win"][:, 0] * alive).sum())
        lose += int((out.info["lose"][:, 0] * alive).sum())
        alive &= ~out.done
        s = out.state
    assert win + lose > 0.8 * B and abs(win - lose) < 4 * math.sqrt(win + lose)


# ------------------------------------------------------------------------------ params, Mesa
@pytest.mark.parametrize("params, match", [
    ({"scripted_teammates": 3}, "scripted_teammates"),
    ({"scripted_teammates": -1}, "scripted_teammates"),
    ({"kickoff": "home"}, "kickoff"),
    ({"max_steps": 0}, "max_steps"),
    ({"possession_reward": 2.0}, "possession_reward"),
    ({"draw_penalty": float("nan")}, "draw_penalty"),
    ({"speed": 3}, "unknown field"),
])
def test_bad_params_are_one_line_errors(params, match):
    with pytest.raises(ValueError, match=match) as err:
        game(**params)
    assert "\n" not in str(err.value) and str(err.value).startswith("sts2")


@pytest.mark.parametrize("actions, match", [
    ([[0, 9, 0]], "integers in 0..8"), ([[0, -1, 0]], "integers in 0..8"),
    ([[0, 0]], "shape"), ([[0.5, 0, 0]], "integers in 0..8"),
])
def test_bad_actions_are_one_line_errors(actions, match):
    g = game()
    s = g.reset(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match=match) as err:
        g.step(s, np.array(actions), np.random.default_rng(0))
    assert "\n" not in str(err.value) and str(err.value).startswith("sts2")


def test_a_state_stored_in_other_types_or_layouts_plays_the_same():
    """float32 positions, float-typed counters, strided and read-only arrays: the same
    observation, global state and step as the kernel's own state with those values."""
    from dataclasses import fields, replace

    g = game()
    s = g.step(g.reset(4, np.random.default_rng(1)), np.full((4, 3), UP),
               np.random.default_rng(2)).state
    strided = {f.name: np.stack([getattr(s, f.name)] * 2, 1)[:, 1] for f in fields(s)}
    x32 = s.x.astype(np.float32)
    odd = replace(s, **strided)
    odd = replace(odd, x=x32, timer=odd.timer.astype(np.float64))
    for a in (odd.z, odd.vx, odd.holder):
        a.flags.writeable = False
    assert not odd.z.flags.c_contiguous and odd.x.dtype == np.float32
    same = replace(s, x=x32.astype(np.float64))  # the values the kernel must see
    np.testing.assert_array_equal(g.observe(odd), g.observe(same))
    np.testing.assert_array_equal(g.global_state(odd), g.global_state(same))
    acts = np.random.default_rng(3).integers(0, 9, (4, 3))
    a, b = (g.step(t, acts, np.random.default_rng(4)) for t in (odd, same))
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.state.x, b.state.x)
    for bad in (lambda: g.observe(replace(s, holder=np.full(4, 6))),
                lambda: g.make_state(X0, Z0, holder=-1)):
        with pytest.raises(ValueError, match="holder must be a player in 0..5") as err:
            bad()
        assert "\n" not in str(err.value)


def test_mesa_face_shows_all_six_players_and_the_puck_on_the_rink():
    from mesa.space import ContinuousSpace

    from econsim.model import BodyAgent, EconModel

    g = game(max_steps=40)
    m = EconModel(g, seed=0, episodes=2)
    assert isinstance(m.space, ContinuousSpace) and len(m.players) == 3
    assert sorted(m.bodies) == ["opponent 3", "opponent 4", "opponent 5", "puck"]
    assert all(isinstance(b, BodyAgent) for b in m.bodies.values())
    assert len(m.agents) == 7  # three learners, three opponents, the puck
    for _ in range(30):
        m.step()
        d = g.describe(m.state)
        s = m.state
        for p in m.players:
            assert (p.x, p.y) == (float(d["x"][0, p.index]), float(d["z"][0, p.index]))
            assert p.pos == (p.x, p.y)  # always inside the rink
        for q in (3, 4, 5):
            body = m.bodies[f"opponent {q}"]
            assert body.pos == (float(s.x[0, q]), float(s.z[0, q]))
        h = int(s.holder[0])
        assert m.bodies["puck"].pos == (float(s.x[0, h]), float(s.z[0, h]))  # on its carrier
        near = m.space.get_neighbors(m.bodies["puck"].pos, 1e-9, include_center=True)
        assert m.bodies["puck"] in near
    df = m.datacollector.get_agent_vars_dataframe()
    assert {"x", "z", "has_puck", "shot", "steal", "win"} <= set(df.columns)
    assert sorted(df["agent"].unique()) == [0, 1, 2]  # the players' table: no body rows
    assert len(df) == 31 * 3
