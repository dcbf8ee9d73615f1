"""The SUMO double lane merge (Diss A.7.2, Table A.1) on the real simulator: the reward rules
played out in SUMO, observations, batches of worlds, and SUMO processes that never outlive
their game or its Python process.

Needs the SUMO wheels (``pip install 'econsim[traffic]'``, part of the dev extra); without
them only the test that the module imports and says so runs.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from econsim import envs
from econsim.core import Game, ReplicaRNG
from econsim.core.capabilities import ActionMask, AgentEvents, MultiGoal, Plane, Render, has
from econsim.core.registry import unavailable
from econsim.envs.sumo_merge import (
    ARRIVED,
    COLLIDED,
    DEPART_SPEED,
    DRIVING,
    EGO_COLOURS,
    EGO_LENGTH,
    LANE_WIDTH,
    LANES,
    REWARD_ARRIVE,
    ROAD_WIDTH,
    SEDAN_COLOUR,
    SPEEDING,
    STEP_LENGTH,
    SUBLANE,
    TIMED_OUT,
    State,
    SumoMerge,
    lane_centre,
    time_to_collision,
)

MISSING = unavailable(SumoMerge)
needs_sumo = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
NOOP, ACCELERATE, DECELERATE, LEFT, RIGHT = range(5)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_module_imports_without_sumo_and_the_game_names_the_extra():
    """Every module of econsim.envs is imported; without the SUMO wheels the game is listed
    and making it raises one line naming the extra."""
    code = textwrap.dedent("""
        import sys
        sys.modules["libsumo"] = None
        sys.modules["sumo"] = None
        import econsim.envs as e
        from econsim.core.registry import unavailable
        assert "sumo_merge" in e.names()
        print(unavailable(e.game_class("sumo_merge")))
        try:
            e.make("sumo_merge")
        except ImportError as err:
            print(type(err).__name__, err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    lines = out.stdout.strip().splitlines()
    assert lines == ["sumo_merge needs sumo: pip install 'econsim[traffic]'",
                     "MissingSumo sumo_merge needs the SUMO wheels (sumo is missing): "
                     "pip install 'econsim[traffic]'"]


def test_importing_the_games_loads_no_sumo():
    code = ("import sys, econsim.envs; "
            "print([m for m in ('libsumo', 'sumo', 'traci', 'sumolib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.stdout.strip() == "[]"


def test_bad_parameters_are_one_line():
    with pytest.raises(ValueError, match=r"sumo_merge.config: 'C5' is not allowed: unknown "
                                         r"config \(allowed: train, C1, C2, C3, C4\)"):
        envs.make("sumo_merge", config="C5")
    with pytest.raises(ValueError, match=r"config 'C1' places two cars"):
        envs.make("sumo_merge", n_agents=1, config="C1")
    with pytest.raises(ValueError, match=r"sumo_merge.traffic: 'dense' is not allowed"):
        envs.make("sumo_merge", traffic="dense")
    with pytest.raises(ValueError, match=r"sumo_merge.formation: 'C2' is not allowed"):
        envs.make("sumo_merge", formation="C2")


def test_a_scenario_stored_before_the_clock_loads_with_its_old_count():
    """Runs stored before 2026-12-02 name the time-out ``max_steps`` and counted it from the
    first departure: they load (and resume) so; a new scenario counts from the last."""
    from econsim.envs.sumo_merge import Params

    old = Params(max_steps=40)
    assert (old.timeout, old.clock, old.start, old.formation) == (
        40, "first_departure", "own_departure", "C3")
    assert "max_steps" not in old.model_dump()
    assert Params().clock == "last_departure"
    assert Params(max_steps=40, clock="last_departure").clock == "last_departure"


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def side_by_side():
    """Formation [1, 2] -> [2, 1] without departure noise: both cars enter at step 0."""
    with SumoMerge(config="C3", depart_noise=0.0) as game:
        yield game


@pytest.fixture(scope="module")
def heavy():
    """Table A.1's heavy traffic, random lanes (C2)."""
    with SumoMerge(traffic="heavy", config="C2") as game:
        yield game


def play(game: SumoMerge, state, policy, steps: int | None = None):
    """Run ``policy(state) -> actions`` until every world is done (or ``steps`` steps): the
    list of Step results."""
    out = []
    for _ in range(steps or game.max_steps):
        step = game.step(state, policy(state), None)
        out.append(step)
        state = step.state
        if step.done.all():
            break
    return out


def returns(steps) -> np.ndarray:
    """``[B, N]`` episode returns (rewards after a world's end are 0 by the rules)."""
    return np.sum([s.reward for s in steps], 0)


def merge_policy(s) -> np.ndarray:
    """A scripted double merge: the car ahead speeds up to 35 m/s (below the 35.7 m/s
    penalty), the one behind to 32 m/s once the gap is over 9 m; a car moves one sub-lane
    toward its goal lane's centre whenever it stands on the sub-lane grid and the other car
    is more than 9 m away along the road."""
    b, n = s.x.shape
    a = np.zeros((b, n), np.int64)
    for w in range(b):
        for i in range(n):
            if s.status[w, i] != DRIVING:
                continue
            j = 1 - i
            other = n > 1 and s.status[w, j] == DRIVING
            ahead = not other or s.x[w, i] > s.x[w, j] or (s.x[w, i] == s.x[w, j] and i == 0)
            clear = not other or abs(s.x[w, i] - s.x[w, j]) > EGO_LENGTH + 4
            off = lane_centre(s.goal[w, i]) - s.y[w, i]
            k = (s.y[w, i] - lane_centre(0)) / 0.8
            if clear and abs(k - round(k)) < 0.05 and abs(off) > 0.4:
                a[w, i] = LEFT if off > 0 else RIGHT
            elif s.v[w, i] < (35.0 if ahead else 32.0) and (ahead or clear):
                a[w, i] = ACCELERATE
    return a


def constant(*actions):
    return lambda s: np.tile(np.array(actions, np.int64), (s.t.shape[0], 1))


# ------------------------------------------------------------------------------ the rules
@needs_sumo
def test_the_game_declares_its_capabilities(side_by_side):
    game = side_by_side
    assert isinstance(game, Game) and "sumo_merge" in envs.names()
    for cap in (MultiGoal, ActionMask, Plane, AgentEvents, Render):
        assert has(game, cap)
    assert (game.self_size, game.goal_size, game.others_size) == (3, 4, 234)
    assert game.others_image == (13, 9, 2) and game.observation_space.shape == (241,)
    assert game.env_state_size == 0 and game.agent_state_size == 3
    assert game.max_steps == game.timeout == 33 and game.extent == (0.0, 200.0, 0.0, 12.8)


@needs_sumo
def test_a_scripted_merge_scores_the_maximum():
    """Both cars change to their goal lanes without touching: 10 each, the team 20, in
    every world of a batch (departure noise on)."""
    with SumoMerge(config="C3") as game:
        rng = np.random.default_rng(0)
        state = game.reset(6, rng)
        steps = play(game, state, merge_policy)
    assert any(np.any(s.state.delay > 0) for s in steps[:1])  # departures differ
    total = returns(steps)
    np.testing.assert_allclose(total.sum(1), 20.0, atol=0.05)
    arrived = np.sum([s.info["arrived"] for s in steps], 0)
    assert (arrived == 1).all() and not np.any([s.info["collision"] for s in steps])
    merged = np.sum([s.info["merged"] for s in steps], 0)
    assert (merged == 1).all()  # a success, once per world (on its last step)
    last = steps[-1].state
    assert (last.status == ARRIVED).all() and steps[-1].done.all()
    assert np.allclose(last.y, lane_centre(last.goal))


@needs_sumo
def test_a_side_collision_costs_each_car_one(side_by_side):
    """Side by side, car 0 moves left and car 1 right: SUMO detects the side collision and
    removes both (``--collision.action remove``); each gets -1 and the episode ends."""
    game = side_by_side
    state = game.reset(1, np.random.default_rng(0))
    steps = play(game, state, constant(LEFT, RIGHT))
    assert [s.reward.tolist() for s in steps] == [[[0.0, 0.0]], [[-1.0, -1.0]]]
    last = steps[-1]
    assert last.info["collision"].tolist() == [[1, 1]] and last.done.tolist() == [True]
    assert (last.state.status == COLLIDED).all()
    assert game.describe(last.state)["status"].tolist() == [[COLLIDED, COLLIDED]]
    # a finished world steps harmlessly: no reward, nothing moves
    again = game.step(last.state, np.array([[LEFT, RIGHT]]), None)
    assert again.reward.tolist() == [[0.0, 0.0]] and again.done.all()
    assert again.state.t.tolist() == last.state.t.tolist()


@needs_sumo
def test_a_rear_end_collision_with_a_sumo_car_costs_only_the_learning_car(heavy):
    """Heavy traffic (seed 2): car 0 enters right behind a SUMO sedan and keeps
    accelerating into it. Only car 0 is penalised; SUMO removes it and the sedan."""
    rng = ReplicaRNG.from_seeds([2], "env")
    state = heavy.reset(1, rng)
    steps = play(heavy, state, constant(ACCELERATE, NOOP))
    hit = [t for t, s in enumerate(steps) if s.info["collision"].any()]
    assert hit, "car 0 never collided"
    t = hit[0]
    assert steps[t].reward.tolist() == [[-1.0, 0.0]]
    assert steps[t].info["collision"].tolist() == [[1, 0]]
    before, after = (steps[t - 1].state if t else state), steps[t].state
    assert after.status[0].tolist()[0] == COLLIDED and after.status[0, 1] == DRIVING

    def sedans_ahead(s):  # SUMO cars in car 0's lane within 10 m ahead of its front
        on = s.bkind[0] >= 0
        return int(np.sum(on & (np.abs(s.by[0] - s.y[0, 0]) < 1.0)
                          & (s.bx[0] - s.blen[0] > s.x[0, 0] - 1.0)
                          & (s.bx[0] < s.x[0, 0] + 10.0)))

    assert sedans_ahead(before) == 1 and sedans_ahead(after) == 0
    assert not steps[t].done.any()  # car 1 drives on


@needs_sumo
def test_a_rear_end_collision_between_the_learning_cars(heavy):
    """Heavy traffic (seed 7): both cars enter lane 1, car 0 two steps later; it
    accelerates into car 1: both get -1."""
    rng = ReplicaRNG.from_seeds([7], "env")
    state = heavy.reset(1, rng)
    assert state.lane.tolist() == [[1, 1]] and state.delay.tolist() == [[2, 0]]
    steps = play(heavy, state, constant(ACCELERATE, NOOP))
    t = next(t for t, s in enumerate(steps) if s.info["collision"].any())
    assert steps[t].reward.tolist() == [[-1.0, -1.0]]
    assert steps[t].done.all() and (steps[t].state.status == COLLIDED).all()


def road(x, y, v, status, bx=(), by=(), bv=(), blen=(), bwid=()) -> State:
    """A hand-made one-world state: the learning cars and SUMO's cars (kinds: sedans)."""
    n, k = len(x), len(bx)
    f = lambda a: np.array([a], np.float32)  # noqa: E731
    return State(t=np.zeros(1, np.int64), episode=np.zeros(1, np.int64),
                 seed=np.zeros(1, np.int64), lane=np.zeros((1, n), np.int64),
                 goal=np.zeros((1, n), np.int64), delay=np.zeros((1, n), np.int64),
                 history=np.zeros((1, 33, n), np.int8), ready=np.ones(1, bool),
                 status=np.array([status], np.int8), x=f(x), y=f(y), v=f(v), bx=f(bx),
                 by=f(by), bv=f(bv), blen=f(blen), bwid=f(bwid),
                 bkind=np.zeros((1, k), np.int8))


def test_time_to_collision_by_hand():
    """Car 0 (front at 100 m, 30 m/s, y 4.8) has a sedan ahead in its path (front 125 m, 5 m
    long, y 5.0, 20 m/s): gap 20 m, closing at 10 m/s, 2 s. A faster sedan ahead of car 1
    (y 8.0) never gets closer; one 1.8 m to the side of car 1 (bodies 1.8 m wide: they do not
    overlap) is not in its path; car 0 is in another path."""
    s = road(x=[100.0, 90.0], y=[4.8, 8.0], v=[30.0, 25.0], status=[DRIVING, DRIVING],
             bx=[125.0, 110.0, 96.0], by=[5.0, 8.0, 9.8], bv=[20.0, 26.0, 10.0],
             blen=[5.0, 5.0, 5.0], bwid=[1.8, 1.8, 1.8])
    np.testing.assert_allclose(time_to_collision(s), [[2.0, np.inf]])
    s.y[0, 1] = 6.5  # car 1 in the paths of car 0 (5 m ahead of it, not closing), of the
    np.testing.assert_allclose(time_to_collision(s)[0, 1], 6.0)  # first sedan (30 m, at 5)
    s.v[0, 1] = 32.5  # and of the second (15 m, not closing); now closing on all three:
    np.testing.assert_allclose(time_to_collision(s)[0, 1], 2.0)  # car 0 at 2.5 m/s first
    s.status[0, 0] = ARRIVED  # a car off the road is nobody's obstacle: the second sedan
    np.testing.assert_allclose(time_to_collision(s)[0, 1], 15 / 6.5)
    s.status[0, 0] = DRIVING
    s.x[0, 0], s.bx[0, 0] = 130.0, 135.0  # car 0's front at the first sedan's back: touching,
    assert time_to_collision(s)[0, 0] == 0.0  # closing at 10 m/s
    s.v[0, 0] = 15.0  # touching but falling back: 0 all the same
    assert time_to_collision(s)[0, 0] == 0.0


@needs_sumo
def test_the_ttc_mask_forbids_no_op_and_accelerate_close_behind(side_by_side):
    """Off (the Diss): every action is legal. On: exactly the driving car within 2 s of a
    collision loses no-op and accelerate; a car 2.5 s away keeps them."""
    assert side_by_side.action_mask(side_by_side.reset(2, np.random.default_rng(0))).all()
    with SumoMerge(config="C3", ttc_mask=True) as game:
        s = road(x=[100.0, 80.0], y=[4.8, 4.8], v=[30.0, 40.0], status=[DRIVING, DRIVING])
        legal = game.action_mask(s)  # car 1 closes at 10 m/s on car 0's back, 15 m ahead
        assert legal[0, 0].all() and legal[0, 1].tolist() == [False, False, True, True, True]
        s.x[0, 1] = 75.0  # 20 m: 2.0 s, still masked; 25 m: 2.5 s, free
        assert not game.action_mask(s)[0, 1, :2].any()
        s.x[0, 1] = 70.0
        assert game.action_mask(s).all()


@needs_sumo
def test_with_the_ttc_mask_a_car_that_respects_it_does_not_rear_end(heavy):
    """The rear-end of the learning cars above (heavy traffic, seed 7: car 0 accelerates into
    car 1) does not happen when car 0 decelerates whenever the mask forbids accelerating."""
    with SumoMerge(traffic="heavy", config="C2", ttc_mask=True) as game:
        state = game.reset(1, ReplicaRNG.from_seeds([7], "env"))
        masked = 0
        for _ in range(game.max_steps):
            legal = game.action_mask(state)
            act = np.where(legal[..., ACCELERATE], ACCELERATE, DECELERATE)
            act[:, 1] = np.where(legal[:, 1, NOOP], NOOP, DECELERATE)
            masked += int((~legal[..., ACCELERATE]).sum())
            step = game.step(state, act, None)
            assert not step.info["collision"][0, 0]
            state = step.state
            if step.done.all():
                break
    assert masked > 0  # the mask did act


@needs_sumo
def test_speeding_costs_a_tenth_per_step(side_by_side):
    """Car 0 accelerates every step (+0.5 m/s): from the step its speed passes 35.7 m/s it
    pays 0.1 per step, up to and including the step it arrives; car 1 never pays."""
    game = side_by_side
    state = game.reset(1, np.random.default_rng(0))
    steps = play(game, state, constant(ACCELERATE, NOOP))
    speed = np.array([s.state.v[0, 0] for s in steps])
    np.testing.assert_allclose(speed[:5], 29.1 + 0.5 * np.arange(1, 6), atol=1e-4)
    arrive = next(t for t, s in enumerate(steps) if s.info["arrived"][0, 0])
    fast = np.flatnonzero(speed[:arrive + 1] > SPEEDING)
    assert fast[0] == 13  # 29.1 + 0.5 * 14 = 36.1
    for t, s in enumerate(steps[:arrive]):
        assert s.reward[0, 0] == pytest.approx(-0.1 if t >= 13 else 0.0)
        assert s.info["speeding"][0, 0] == (t >= 13)
    assert steps[arrive].reward[0, 0] == pytest.approx(10 * (1 - 0.25) - 0.1)  # one lane off
    assert not any(s.info["speeding"][0, 1] for s in steps)
    assert returns(steps)[0, 1] == pytest.approx(7.5)


@needs_sumo
def test_the_time_out_costs_ten(side_by_side):
    """Both cars brake every step and never reach 190 m: -10 each at step 33, the end."""
    game = side_by_side
    state = game.reset(1, np.random.default_rng(0))
    steps = play(game, state, constant(DECELERATE, DECELERATE))
    assert len(steps) == 33 and [s.done[0] for s in steps] == [False] * 32 + [True]
    assert all((s.reward == 0).all() for s in steps[:-1])
    assert steps[-1].reward.tolist() == [[-10.0, -10.0]]
    assert steps[-1].info["timeout"].tolist() == [[1, 1]]
    assert (steps[-1].state.status == TIMED_OUT).all()
    assert np.allclose(steps[-1].state.v, 29.1 - 0.5 * 33, atol=1e-4)


@needs_sumo
@pytest.mark.parametrize("clock", ["last_departure", "first_departure"])
def test_the_time_out_clock_starts_at_the_last_departure(clock):
    """A pair that only keeps its speed, one car departing 3 steps after the other: with the
    count from the last departure (default) both arrive, each one lane from its goal (C3:
    7.5); counted from the first departure the late car, 184.9 m (32 steps at 29.1 m/s) from
    the line, times out (-10) at the first's 33rd step, short of 190 m."""
    with SumoMerge(config="C3", clock=clock, start="own_departure") as game:
        extra = game.max_delay if clock == "last_departure" else 0
        assert game.timeout == 33 and game.max_steps == 33 + extra and game.max_delay > 3
        seed = next(k for k in range(200)
                    if game.reset(1, np.random.default_rng(k)).delay.max() == 3)
        state = game.reset(1, np.random.default_rng(seed))
        steps = play(game, state, constant(NOOP, NOOP))
    late = int(state.delay[0].argmax())
    total = returns(steps)[0]
    one_lane_off = 10 * (1 - LANE_WIDTH / ROAD_WIDTH)
    if clock == "last_departure":
        np.testing.assert_allclose(total, one_lane_off, atol=1e-4)
        assert not np.any([s.info["timeout"] for s in steps])
    else:
        assert len(steps) == game.timeout and steps[-1].info["timeout"][0, late] == 1
        assert total[late] == -10.0 and total[1 - late] == pytest.approx(one_lane_off)
        assert steps[-1].state.x[0, late] < 190.0
    with SumoMerge(n_agents=1) as one:  # one car never waits for another
        assert one.max_delay == 0 and one.max_steps == one.timeout


@needs_sumo
def test_with_all_on_road_the_cars_act_once_both_have_departed():
    """start = "all_on_road" (the reference code): the car departing first drives 3 steps
    on its own at its departure speed before the first step; then both are driving, the
    leader 3 steps (17.5 m) ahead, and the steps and the time-out count from there."""
    with SumoMerge(config="C3", start="all_on_road") as game:
        assert game.max_steps == game.timeout
        seed = next(k for k in range(200)
                    if game.reset(1, np.random.default_rng(k)).delay.max() == 3)
        state = game.reset(1, np.random.default_rng(seed))
        obs = game.observe(state)
        late = int(state.delay[0].argmax())
        assert (state.status[0] == DRIVING).all()
        gap = state.x[0, 1 - late] - state.x[0, late]
        assert gap == pytest.approx(3 * STEP_LENGTH * DEPART_SPEED, abs=0.05)
        assert obs[0, late, 2] == pytest.approx((190 - state.x[0, late]) / 190, abs=1e-5)
        steps = play(game, state, constant(NOOP, NOOP))
    np.testing.assert_allclose(returns(steps)[0], REWARD_ARRIVE * (1 - LANE_WIDTH / ROAD_WIDTH),
                               atol=1e-4)
    assert len(steps) <= game.timeout


@needs_sumo
def test_in_heavy_traffic_the_cars_are_on_the_road_and_unhurt_at_step_0(heavy):
    """all_on_road in heavy traffic: the pre-roll waits until both egos have entered, SUMO
    braking the first where going on would hit a car ahead, so step 0 finds both driving."""
    assert heavy.params.start == "all_on_road"
    state = heavy.reset(8, np.random.default_rng(3))
    heavy.observe(state)
    assert (state.status == DRIVING).all()
    assert (state.delay.max(1) > 0).sum() >= 4  # most worlds had a car waiting for the other


# ------------------------------------------------------------------------------ observation
@needs_sumo
def test_observation_of_a_known_configuration(side_by_side):
    """Both cars at x = 5.1 m (front; back at 0.1) in lanes 1 and 2, goals 2 and 1: each sees
    the other in rows 5..7 (its 5 m alongside) and two columns at the edge of its view."""
    game = side_by_side
    state = game.reset(1, np.random.default_rng(0))
    obs = game.observe(state)
    assert obs.shape == (1, 2, 241) and obs.dtype == np.float32
    assert game.observation_space.contains(obs)
    o_self, goal, others = game.split(obs)
    np.testing.assert_allclose(o_self[0], [[29.1 / 29, 0.25, (190 - 5.1) / 190],
                                           [29.1 / 29, -0.25, (190 - 5.1) / 190]], rtol=1e-5)
    assert goal[0].tolist() == [[0, 0, 1, 0], [0, 1, 0, 0]]
    grid = others.reshape(1, 2, 13, 9, 2)
    want0, want1 = np.zeros((13, 9)), np.zeros((13, 9))
    want0[5:8, 7:9] = 1  # car 1 is 3.2 m to the left: columns 7, 8
    want1[5:8, 0:2] = 1  # car 0 is 3.2 m to the right: columns 0, 1
    np.testing.assert_array_equal(grid[0, 0, ..., 0], want0)
    np.testing.assert_array_equal(grid[0, 1, ..., 0], want1)
    assert (grid[..., 1] == 0).all()
    s_env, s_agents = game.global_state(state)
    assert s_env.shape == (1, 0)
    np.testing.assert_allclose(s_agents[0], [[5.1 / 200, 4.8 / 12.8, 29.1 / 29],
                                             [5.1 / 200, 8.0 / 12.8, 29.1 / 29]], rtol=1e-5)
    # car 0 accelerates: car 1 sees it 0.1 m further ahead, 0.5 m/s faster
    step = game.step(state, np.array([[ACCELERATE, NOOP]]), None)
    grid = game.split(step.obs)[2].reshape(1, 2, 13, 9, 2)
    np.testing.assert_array_equal(grid[0, 1, ..., 0], want1)
    np.testing.assert_allclose(grid[0, 1][want1 == 1][:, 1], 0.5 / 29, rtol=1e-4)
    np.testing.assert_allclose(grid[0, 0][want0 == 1][:, 1], -0.5 / 29, rtol=1e-4)


def brute_force_grid(s, b: int, i: int) -> np.ndarray:
    """Car ``i``'s 13 x 9 x 2 view in world ``b``, cell by cell (module docstring)."""
    out = np.zeros((13, 9, 2))
    me_x, me_y, me_v = s.x[b, i] - EGO_LENGTH / 2, s.y[b, i], s.v[b, i]
    vehicles = [(s.x[b, j], s.y[b, j], s.v[b, j], EGO_LENGTH, 1.8)
                for j in range(s.x.shape[1]) if j != i and s.status[b, j] == DRIVING]
    vehicles += [(s.bx[b, k], s.by[b, k], s.bv[b, k], s.blen[b, k], s.bwid[b, k])
                 for k in np.flatnonzero(s.bkind[b] >= 0)]
    for r in range(13):
        for c in range(9):
            x0, y0 = 2.5 * (r - 6) - 1.25, 0.8 * (c - 4) - 0.4
            best = None
            for k, (x, y, v, ln, wd) in enumerate(vehicles):
                dx, dy = x - ln / 2 - me_x, y - me_y
                if (dx - ln / 2 < x0 + 2.5 and dx + ln / 2 > x0
                        and dy - wd / 2 < y0 + 0.8 and dy + wd / 2 > y0):
                    d = np.hypot(dx, dy)
                    if best is None or (d, k) < best[:2]:
                        best = (d, k, v)
            if best is not None:
                out[r, c] = 1, np.clip((best[2] - me_v) / 29, -2, 2)
    return out


@needs_sumo
def test_the_grid_in_heavy_traffic_matches_a_cell_by_cell_count(heavy):
    rng = ReplicaRNG.from_seeds([5, 6], "env")
    state = heavy.reset(2, rng)
    steps = play(heavy, state, constant(NOOP, LEFT), steps=6)
    s = steps[-1].state
    assert (s.bkind >= 0).sum() > 10
    grid = heavy.grid(s)
    seen = 0
    for b in range(2):
        for i in range(2):
            want = brute_force_grid(s, b, i)
            np.testing.assert_allclose(grid[b, i], want, atol=1e-6)
            seen += want[..., 0].sum()
    assert seen > 0
    assert heavy.observation_space.contains(steps[-1].obs)


@needs_sumo
def test_induced_is_one_car_with_random_lanes_on_an_empty_road(side_by_side):
    one = side_by_side.induced()
    try:
        assert isinstance(one, SumoMerge) and one.n_agents == 1 and one.traffic == "none"
        assert (one.self_size, one.goal_size, one.others_size) == (3, 4, 0)
        assert one.observation_space.shape == (7,) and one.others_image is None
        state = one.reset(8, np.random.default_rng(1))
        assert len({(a, g) for a, g in zip(state.lane[:, 0], state.goal[:, 0],
                                           strict=True)}) > 3
        assert (state.delay == 0).all()
        steps = play(one, state, merge_policy)
        np.testing.assert_allclose(returns(steps)[:, 0], 10.0, atol=0.05)
        assert one.global_state(steps[-1].state)[1].shape == (8, 1, 3)
    finally:
        one.close()


@needs_sumo
@pytest.mark.parametrize("formation, goals", [("C1", [3, 0]), ("C3", [2, 1])])
def test_training_starts_in_the_formation_or_at_random(formation, goals):
    """'train': the formation (default C1, Diss A.5; C3 the text of A.7.2) except with
    probability random_start; both cars start in lanes 1 and 2."""
    with SumoMerge(formation=formation, random_start=0.0) as game:
        state = game.reset(4, np.random.default_rng(0))
        assert (state.lane == [1, 2]).all() and (state.goal == goals).all()
    with SumoMerge(formation=formation, random_start=1.0) as game:
        state = game.reset(16, np.random.default_rng(0))
        assert len({tuple(g) for g in state.goal}) > 4
    assert game.params.formation == formation


# ------------------------------------------------------------------------------ batches
@needs_sumo
def test_a_world_is_the_same_in_any_batch_and_after_a_replay(heavy):
    """Seed 3's world alone equals seed 3's world beside seed 1 (its draws, SUMO's seed and
    traffic); a world whose worker was taken by another state is reloaded and replayed."""
    acts = np.random.default_rng(9).integers(0, 5, (33, 2, 2))

    def run(seeds, interrupt=False):
        rng = ReplicaRNG.from_seeds(seeds, "env")
        state = heavy.reset(len(seeds), rng)
        obs, rewards = [heavy.observe(state)], []
        for t in range(33):
            if interrupt and t == 10:  # another state takes the workers
                other = heavy.reset(len(seeds), ReplicaRNG.from_seeds([0] * len(seeds), "x"))
                heavy.step(other, np.zeros((len(seeds), 2), np.int64), None)
            step = heavy.step(state, acts[t, :len(seeds)] if len(seeds) == 2 else
                              acts[t, 1:], None)
            state = step.state
            obs.append(step.obs)
            rewards.append(step.reward)
        return np.stack(obs)[:, -1], np.stack(rewards)[:, -1], state

    alone_obs, alone_rew, alone = run([3])
    pair_obs, pair_rew, pair = run([1, 3], interrupt=True)
    np.testing.assert_array_equal(alone_obs, pair_obs)
    np.testing.assert_array_equal(alone_rew, pair_rew)
    assert alone.seed[0] == pair.seed[1] and (alone.bkind[0] >= 0).sum() > 0


# ------------------------------------------------------------------------------ processes
def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its reaper counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def _wait_gone(pids, folders, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids) and not any(os.path.exists(f) for f in folders):
            return
        time.sleep(0.1)
    alive = [p for p in pids if not _gone(p)]
    left = [f for f in folders if os.path.exists(f)]
    raise AssertionError(f"left behind: processes {alive}, folders {left}")


@needs_sumo
def test_close_and_garbage_collection_stop_every_process():
    with SumoMerge() as game:
        state = game.reset(3, np.random.default_rng(0))
        game.step(state, np.zeros((3, 2), np.int64), None)
        pids, folders = game.pids(), game.folders()
        assert len(pids) == 3 and all(os.path.isdir(f) for f in folders)
    _wait_gone(pids, folders)
    assert game.pids() == []
    with pytest.raises(RuntimeError, match="sumo_merge: the game is closed"):
        game.reset(1, np.random.default_rng(0))
    game = SumoMerge()
    game.reset(2, np.random.default_rng(0))
    pids, folders = game.pids(), game.folders()
    del game
    gc.collect()
    _wait_gone(pids, folders)


@needs_sumo
def test_the_pettingzoo_env_closes_the_workers():
    from econsim.core.capabilities import Processes, has
    from econsim.pettingzoo import parallel_env

    env = parallel_env("sumo_merge")
    assert has(env.game, Processes)
    env.reset(seed=0)
    pids, folders = env.game.pids(), env.game.folders()
    assert pids
    env.close()
    _wait_gone(pids, folders)


CHILD = """
import json, sys, threading, time
import numpy as np
from econsim.envs.sumo_merge import SumoMerge

def work(out):
    game = SumoMerge(traffic=sys.argv[2])
    state = game.reset(2, np.random.default_rng(0))
    for _ in range(3):
        state = game.step(state, np.zeros((2, 2), np.int64), None).state
    out.append(game)

held = []
if sys.argv[1] == "thread":  # made in a thread that ends: no death signal, the pipe ends
    t = threading.Thread(target=work, args=(held,))
    t.start()
    t.join()
else:
    work(held)
print(json.dumps({"pids": held[0].pids(), "folders": held[0].folders()}), flush=True)
time.sleep(600)
"""


@needs_sumo
@pytest.mark.slow
@pytest.mark.parametrize(("where", "sig", "traffic"), [
    ("main", signal.SIGKILL, "none"), ("main", signal.SIGTERM, "heavy"),
    ("thread", signal.SIGKILL, "none")])
def test_a_killed_python_leaves_no_sumo_process(where, sig, traffic):
    child = subprocess.Popen([sys.executable, "-c", CHILD, where, traffic],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": ROOT})
    try:
        line = child.stdout.readline()
        assert line, "the child did not start its game"
        made = json.loads(line)
        assert len(made["pids"]) == 2 and not any(_gone(p) for p in made["pids"])
        assert all(os.path.isdir(f) for f in made["folders"])
        child.send_signal(sig)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    _wait_gone(made["pids"], made["folders"])


# ------------------------------------------------------------------------------ faces
@needs_sumo
def test_describe_render_and_the_mesa_face(heavy):
    from econsim.model import EconModel

    state = heavy.reset(1, ReplicaRNG.from_seeds([2], "env"))
    steps = play(heavy, state, constant(NOOP, NOOP), steps=3)
    s = steps[-1].state
    d = heavy.describe(s)
    assert set(d) == {"x", "y", "speed", "lane", "goal", "status"}
    assert d["lane"].tolist() == [s.lane[0].tolist()] and d["goal"].tolist() == s.goal.tolist()
    assert heavy.landmarks(s).tolist() == [[190.0, float(lane_centre(g))] for g in s.goal[0]]
    img = heavy.render_rgb(s)
    assert img.shape == (52, 800, 3) and img.dtype == np.uint8
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert set(EGO_COLOURS) <= colours and SEDAN_COLOUR in colours
    m = EconModel(heavy, seed=0)
    assert m.space is not None and len(m.players) == 2
    while m.running:
        m.step()
    assert m.episodes_done == 1 and 1 <= m.t <= heavy.max_steps


@needs_sumo
def test_the_bench_measures_it():
    from econsim import bench

    assert bench.env_steps_per_second("sumo_merge", {}, batch=2, seconds=0.5) > 0
    with pytest.raises(ValueError, match=r"sumo_merge: batch 65 is not allowed \(allowed: 1 "
                                         r"to 64 worlds"):
        SumoMerge().reset(65, np.random.default_rng(0))


@needs_sumo
def test_more_worlds_than_sumo_processes_are_refused_before_a_run_starts(tmp_path):
    """Processes.max_worlds: an evaluation of seeds x episodes worlds above it is refused
    with one line at validation, before anything is written (it failed at the first
    evaluation, leaving a failed run)."""
    from econsim import runner, scenario
    from econsim.envs.sumo_merge import MAX_WORLDS
    from econsim.errors import ScenarioError

    episodes = MAX_WORLDS // 2 + 1
    data = scenario.load("sumo_cm3").resolved()
    data["train"].update(eval_episodes=episodes, iterations=1)
    data["seeds"] = [0, 1]
    with pytest.raises(ScenarioError, match=(
            rf"train.eval_episodes: {episodes} is not allowed: 2 seeds x {episodes} "
            rf"episodes = {2 * episodes} worlds at once, and sumo_merge plays at most "
            rf"{MAX_WORLDS} \(one process each")) as err:
        scenario.from_dict(data, "too_many")
    assert "\n" not in str(err.value)
    data["seeds"] = [0]  # valid alone; the run's own seeds are counted too
    sc = scenario.from_dict(data, "too_many")
    with pytest.raises(ScenarioError, match=f"4 seeds x {episodes} episodes"):
        runner.run(sc, seeds=[0, 1, 2, 3], progress=False, root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_sumo_scenarios_treat_the_time_out_as_terminal():
    """The SUMO time-out pays -10 and ends the episode (Diss A.7.2): a learner must not
    bootstrap past it (with bootstrapping the trained critics valued the start above a car's
    maximum of 10)."""
    from econsim import scenario

    names = [n for n in scenario.names() if n.startswith("sumo_")]
    assert len(names) == 6
    for name in names:
        assert scenario.load(name).trainer_config().bootstrap_time_limit is False, name


@needs_sumo
def test_the_probe_reads_where_one_car_ends():
    """``benchmarks/sumo_probe.py`` on the one-car game: a car that steers to its goal lane
    reaches it from all 16 start x goal pairs on its centre; a car that keeps its lane ends
    ``(start - goal)`` lanes' worth of sub-lanes off and reaches it only where it started; a one-car
    observation padded for a two-car actor is a two-car observation with the other car not
    yet on the road; trainers' greedy actors play every pair; the pair's table marks the
    scripted double merge as merged without collisions; delays beyond the game's are refused."""
    from benchmarks import sumo_probe
    from econsim import scenario

    def steer(state, obs, legal):  # the scripted merge steers one car alone as well
        return merge_policy(state)

    with SumoMerge(n_agents=1, config="train") as one, SumoMerge(start="own_departure") as two:
        rows = sumo_probe.one_car(one, steer)
        assert rows.reached.all() and (rows.offset == 0).all()
        keep = sumo_probe.one_car(one, lambda state, obs, legal: np.zeros(obs.shape[:-1], int))
        per_lane = round(LANE_WIDTH / SUBLANE)  # sub-lanes in a lane
        assert (keep.offset == per_lane * (keep.start - keep.goal)).all()
        assert (keep.reached == (keep.start == keep.goal)).all()
        assert set(keep.actions) == {"n" * len(keep.actions[0])}
        alone = one.observe(sumo_probe.placed(one, [1], [2], [0]))
        waiting = two.observe(sumo_probe.placed(two, [1, 2], [2, 1], [0, 3]))
        grid = two.self_size + two.goal_size  # where o_others starts
        assert not waiting[0, 0, grid:].any() and alone.shape[-1] == grid
        np.testing.assert_array_equal(sumo_probe.padded(alone, two.obs_size)[0, 0],
                                      waiting[0, 0])
        for name in ("sumo_cm3", "sumo_iac"):
            trainer = scenario.load(name).make_trainer([0])
            rows = sumo_probe.one_car(one, sumo_probe.greedy_actor(trainer, 0))
            assert len(rows) == LANES ** 2
            assert rows.actions.str.len().between(1, one.max_steps).all()
        both = sumo_probe.pair(two, steer)
        assert both.merged.all() and (both.collisions == 0).all()
        with pytest.raises(ValueError, match="exceed the game's largest"):
            sumo_probe.placed(two, [1, 2], [2, 1], [0, two.max_delay + 1])
