"""Cooperative navigation (Diss §3.4, App. A.7.1; SPEC §7): hand-worked physics, rewards,
starts, observation layout, the induced stage-1 game, batch independence, parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from econsim import envs
from econsim.core import ReplicaRNG, reset_done
from econsim.core.capabilities import AgentEvents, MultiGoal, Plane, Render, has
from econsim.envs.navigation import CUTOFF, FORMATIONS, Navigation, penetration

NOOP, LEFT, RIGHT, DOWN, UP = range(5)


def _step(game, state, actions):
    return game.step(state, np.asarray(actions, np.int64).reshape(-1, game.n_agents), None)


def _pen(d: float) -> float:
    """k log(1 + exp(-(d - 0.3) / k)), worked out in float64."""
    return 1e-3 * math.log1p(math.exp(-(d - 0.3) / 1e-3))


def _far(n: int) -> np.ndarray:
    """[1, n, 2] positions 1 apart (no contact force at all)."""
    return np.array([[[i, -3.0] for i in range(n)]], np.float32)


# ------------------------------------------------------------------------------ physics
def test_one_step_from_rest_with_plus_x():
    game = envs.make("navigation", formation="antipodal")
    pos = np.array([[[-.9, -.9], [.9, .9], [-.9, .9], [.9, -.9]]], np.float32)
    state = game.make_state(pos, -pos)
    out = _step(game, state, [RIGHT, NOOP, UP, LEFT])
    s = out.state
    np.testing.assert_allclose(s.vx[0], [0.5, 0, 0, -0.5], atol=1e-7)
    np.testing.assert_allclose(s.vy[0], [0, 0, 0.5, 0], atol=1e-7)
    np.testing.assert_allclose(s.x[0], pos[0, :, 0] + [0.05, 0, 0, -0.05], atol=1e-7)
    np.testing.assert_allclose(s.y[0], pos[0, :, 1] + [0, 0, 0.05, 0], atol=1e-7)
    assert (s.vy[0, [0, 1, 3]] == 0).all() and (s.vx[0, [1, 2]] == 0).all()  # exactly


def test_damping_shrinks_velocity_by_three_quarters_per_step():
    game = envs.make("navigation", formation="random", n_agents=1)
    v0 = np.array([1.0, -2.0])
    state = game.make_state([[[0.0, 0.0]]], [[[1.0, 1.0]]], vel=[[v0]])
    p = np.zeros(2)
    for k in range(1, 6):
        state = _step(game, state, [NOOP]).state
        p = p + 0.75 ** k * v0 * 0.1
        np.testing.assert_allclose([state.vx[0, 0], state.vy[0, 0]], 0.75 ** k * v0, rtol=1e-6)
        np.testing.assert_allclose([state.x[0, 0], state.y[0, 0]], p, rtol=1e-5, atol=1e-7)


def test_contact_force_along_the_line_and_collision_penalty():
    """Agents 0.2 apart on the direction (0.6, 0.8), moving towards each other at speed 2:
    the force on agent 0 is 100 * pen(0.2) * (p0 - p1) / d = 10 * (-0.6, -0.8); after the
    step they are still closer than 0.3, so each pays -1."""
    game = envs.make("navigation", formation="random", n_agents=2)
    u = np.array([0.6, 0.8])
    p0, p1 = np.zeros(2), 0.2 * u
    v0 = 2 * u
    state = game.make_state([[p0, p1]], [[p0, p1]], vel=[[v0, -v0]])
    out = _step(game, state, [NOOP, NOOP])
    force0 = 100 * _pen(0.2) * (p0 - p1) / 0.2
    assert abs(np.linalg.norm(force0) - 10.0) < 1e-9  # pen(0.2) = 0.1 to 1e-40
    v0_new = 0.75 * v0 + force0 * 0.1
    s = out.state
    np.testing.assert_allclose([s.vx[0, 0], s.vy[0, 0]], v0_new, atol=1e-6)
    np.testing.assert_allclose([s.vx[0, 1], s.vy[0, 1]], -v0_new, atol=1e-6)  # opposite
    new0, new1 = p0 + v0_new * 0.1, p1 - v0_new * 0.1
    np.testing.assert_allclose([s.x[0, 0], s.y[0, 0]], new0, atol=1e-6)
    assert np.linalg.norm(new1 - new0) < 0.3
    dist = np.array([np.linalg.norm(new0 - p0), np.linalg.norm(new1 - p1)])
    np.testing.assert_allclose(out.reward[0], -dist - 1, atol=1e-6)
    assert out.info["collisions"][0].tolist() == [1, 1]


def test_collisions_count_every_touching_agent():
    """The middle agent touches both others (-2); the outer two are 0.5 apart (-1 each)."""
    game = envs.make("navigation", formation="random", n_agents=3)
    pos = np.array([[[-0.25, 0], [0, 0], [0.25, 0]]], np.float32)
    state = game.make_state(pos, pos)
    out = _step(game, state, [RIGHT, NOOP, LEFT])  # pushed together: they stay close
    assert out.info["collisions"][0].tolist() == [1, 2, 1]
    np.testing.assert_allclose(out.reward[0], -out.info["distance"][0] - [1, 2, 1])


def test_contact_matches_the_dense_formula_and_the_cutoff_is_exact():
    assert penetration(np.float32(CUTOFF)) == 0
    far = np.linspace(CUTOFF, 5, 1000, dtype=np.float32)
    assert (penetration(far) == 0).all()  # the float32 softplus underflows beyond CUTOFF
    game = envs.make("navigation", formation="random", n_agents=5)
    rng = np.random.default_rng(3)
    pos = rng.uniform(-0.4, 0.4, (64, 5, 2))
    state = game.make_state(pos, pos)
    fx, fy = game._contact(state)
    p = state.x.astype(np.float64), state.y.astype(np.float64)
    diff = np.stack([p[0][:, :, None] - p[0][:, None], p[1][:, :, None] - p[1][:, None]], -1)
    d = np.sqrt((diff ** 2).sum(-1)) + np.eye(5)  # the diagonal has no force
    pen = 1e-3 * np.logaddexp(0, (0.3 - d) / 1e-3) * (1 - np.eye(5))
    dense = (100 * pen / d)[..., None] * diff
    np.testing.assert_allclose(np.stack([fx, fy], -1), dense.sum(2), atol=2e-4, rtol=1e-4)


def test_agents_at_the_same_point_push_nothing():
    game = envs.make("navigation", formation="random", n_agents=2)
    state = game.make_state([[[0.1, 0.1], [0.1, 0.1]]], [[[0.0, 0.0], [0.0, 0.0]]])
    out = _step(game, state, [NOOP, NOOP])
    assert np.isfinite(out.obs).all()
    assert (out.state.vx == 0).all() and (out.state.vy == 0).all()
    assert out.info["collisions"][0].tolist() == [1, 1]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 6))
def test_contact_forces_cancel_so_momentum_only_decays(seed, n):
    """Forces between agents come in equal and opposite pairs: with noop actions the sum of
    the velocities only shrinks by the damping, and relative observations are antisymmetric."""
    rng = np.random.default_rng(seed)
    game = envs.make("navigation", formation="random", n_agents=n)
    pos = rng.uniform(-0.3, 0.3, (8, n, 2))
    vel = rng.uniform(-1, 1, (8, n, 2))
    state = game.make_state(pos, pos, vel)
    v_sum = vel.astype(np.float32).sum(1)
    out = _step(game, state, np.zeros((8, n)))
    s = out.state
    np.testing.assert_allclose(np.stack([s.vx.sum(1), s.vy.sum(1)], -1), 0.75 * v_sum,
                               atol=1e-4)
    others = game.split(out.obs)[2].reshape(8, n, n - 1, 4)
    for i in range(n):
        for k, j in enumerate(m for m in range(n) if m != i):
            back = i if i < j else i - 1  # i's slot among j's others
            np.testing.assert_array_equal(others[:, i, k], -others[:, j, back])
    assert (out.info["collisions"].sum(1) % 2 == 0).all()
    assert (out.reward <= 0).all()


# ------------------------------------------------------------------------------ rewards, done
def test_reward_is_minus_distance_and_done_when_all_reached():
    game = envs.make("navigation", formation="random", n_agents=2)
    goal = np.array([[[0.5, 0.5], [-2.0, -2.0]]], np.float32)
    pos = goal + np.array([[[0.04, 0.0], [0.3, 0.4]]], np.float32)
    out = _step(game, game.make_state(pos, goal), [NOOP, NOOP])
    np.testing.assert_allclose(out.reward[0], [-0.04, -0.5], rtol=1e-5)
    np.testing.assert_allclose(out.info["distance"][0], [0.04, 0.5], rtol=1e-5)
    assert out.info["reached"][0].tolist() == [True, False] and not out.done[0]
    pos2 = goal + np.array([[[0.04, 0.0], [0.0, -0.05]]], np.float32)
    out = _step(game, game.make_state(pos2, goal), [NOOP, NOOP])
    assert out.info["reached"][0].tolist() == [True, True] and out.done[0]  # <= 0.05


def test_episode_cap():
    for kwargs, cap in (({}, 50), ({"max_steps": 7}, 7)):
        game = envs.make("navigation", **kwargs)
        assert game.max_steps == cap
        state = game.reset(2, np.random.default_rng(0))
        for t in range(1, cap + 1):
            out = _step(game, state, np.zeros((2, 4)))
            state = out.state
            assert out.done.tolist() == [t == cap] * 2
    assert envs.make("navigation").induced().max_steps == 25


# ------------------------------------------------------------------------------ starts
@pytest.mark.parametrize("formation", ["antipodal", "cross"])
def test_fixed_formations(formation):
    game = envs.make("navigation", formation=formation, random_start=0.0)
    state = game.reset(5, np.random.default_rng(0))
    starts, goals = (np.array(a, np.float32) for a in FORMATIONS[formation])
    assert game.n_agents == 4 and game.landmarks(state, 3).shape == (4, 2)
    for w in range(5):
        np.testing.assert_array_equal(np.stack([state.x[w], state.y[w]], -1), starts)
        np.testing.assert_array_equal(game.landmarks(state, w), goals)
    assert (state.vx == 0).all() and (state.vy == 0).all() and (state.t == 0).all()


def test_table_of_starts():
    assert FORMATIONS["antipodal"] == (((-.9, -.9), (.9, .9), (-.9, .9), (.9, -.9)),
                                       ((.9, .9), (-.9, -.9), (.9, -.9), (-.9, .9)))
    assert FORMATIONS["cross"] == (((-.9, -.15), (.9, .15), (.15, -.9), (-.15, .9)),
                                   ((.9, -.15), (-.9, .15), (.15, .9), (-.15, -.9)))
    assert FORMATIONS["merge"] == (((-.9, .2), (-.9, -.2)), ((.9, -.2), (.9, .2)))


def test_merge_start_noise():
    game = envs.make("navigation", formation="merge", random_start=0.0)
    assert game.n_agents == 2
    B = 20_000
    state = game.reset(B, np.random.default_rng(1))
    starts, goals = (np.array(a) for a in FORMATIONS["merge"])
    pos = np.stack([state.x, state.y], -1)
    noise = pos - starts
    np.testing.assert_allclose(noise.mean(0), 0, atol=0.003)  # 4 sigma / sqrt(B) ~ 0.0014
    np.testing.assert_allclose(noise.std(0), 0.05, rtol=0.03)
    assert np.abs(noise).max() <= 0.25 + 1e-6  # clipped at 5 sigma
    np.testing.assert_array_equal(np.stack([state.gx, state.gy], -1),
                                  np.broadcast_to(goals.astype(np.float32), (B, 2, 2)))


@pytest.mark.parametrize("formation, p", [("antipodal", 0.2), ("merge", 0.2), ("cross", 0.7)])
def test_random_start_probability(formation, p):
    game = envs.make("navigation", formation=formation, random_start=p)
    B = 20_000
    state = game.reset(B, np.random.default_rng(2))
    goals = np.array(FORMATIONS[formation][1], np.float32)
    random = (np.stack([state.gx, state.gy], -1) != goals).any((1, 2))
    sd = math.sqrt(p * (1 - p) / B)
    assert abs(random.mean() - p) < 5 * sd
    pos = np.stack([state.x, state.y], -1)[random]
    assert (np.abs(pos) < 1).all() and (np.abs(np.stack([state.gx, state.gy], -1)[random])
                                        < 1).all()
    np.testing.assert_allclose(pos.mean(), 0, atol=0.02)  # uniform on (-1, 1)
    np.testing.assert_allclose(pos.var(), 1 / 3, rtol=0.05)


def test_random_formation():
    game = envs.make("navigation", formation="random")
    assert game.n_agents == 4
    state = envs.make("navigation", formation="random", n_agents=7).reset(
        1000, np.random.default_rng(0))
    assert state.x.shape == (1000, 7)
    for a in (state.x, state.y, state.gx, state.gy):
        assert (np.abs(a) < 1).all() and a.std() > 0.5


# ------------------------------------------------------------------------------ observations
def test_observation_layout():
    game = envs.make("navigation", formation="random", n_agents=3)
    assert has(game, MultiGoal) and has(game, Plane) and has(game, AgentEvents)
    assert has(game, Render)
    assert (game.self_size, game.goal_size, game.others_size) == (4, 2, 8)
    assert game.observation_space.shape == (14,) and game.agent_state_size == 4
    rng = np.random.default_rng(0)
    pos, goal, vel = (rng.uniform(-1, 1, (2, 3, 2)) for _ in range(3))
    state = game.make_state(pos, goal, vel)
    obs = game.observe(state)
    assert obs.shape == (2, 3, 14) and obs.dtype == np.float32
    o_self, g, o_others = game.split(obs)
    pos, goal, vel = (a.astype(np.float32) for a in (pos, goal, vel))
    np.testing.assert_array_equal(o_self, np.concatenate([vel, pos], -1))
    np.testing.assert_array_equal(g, goal)
    for i in range(3):
        expect = [np.concatenate([vel[:, j] - vel[:, i], pos[:, j] - pos[:, i]], -1)
                  for j in range(3) if j != i]
        np.testing.assert_array_equal(o_others[:, i], np.concatenate(expect, -1))
    s_env, s_agents = game.global_state(state)
    assert s_env.shape == (2, 0) and s_env.dtype == np.float32
    np.testing.assert_array_equal(s_agents, o_self)
    assert s_agents.dtype == np.float32


def test_observations_stay_in_the_box():
    for formation in ("antipodal", "merge", "random"):
        game = envs.make("navigation", formation=formation)
        rng = np.random.default_rng(0)
        state = game.reset(512, rng)
        assert game.observation_space.contains(game.observe(state))
        for _ in range(game.max_steps):
            out = game.step(state, game.action_space.sample(rng, (512, game.n_agents)), rng)
            assert game.observation_space.contains(out.obs)
            state = out.state
    box = envs.make("navigation").observation_space
    assert np.isfinite([box.low, box.high]).all() and box.high == -box.low


def test_induced_single_agent_game():
    game = envs.make("navigation", formation="cross")
    one = game.induced()
    assert isinstance(one, Navigation) and one.n_agents == 1 and one.max_steps == 25
    assert one.formation == "random" and one.others_size == 0
    for k in ("self_size", "goal_size", "agent_state_size", "env_state_size"):
        assert getattr(one, k) == getattr(game, k)
    assert one.observation_space.shape == (6,)
    rng = np.random.default_rng(0)
    state = one.reset(4, rng)
    out = one.step(state, np.full((4, 1), RIGHT), rng)
    assert out.obs.shape == (4, 1, 6) and out.reward.shape == (4, 1)
    assert (out.info["collisions"] == 0).all()
    np.testing.assert_allclose(out.reward[:, 0], -out.info["distance"][:, 0])
    assert one.global_state(out.state)[1].shape == (4, 1, 4)


# ------------------------------------------------------------------------------ batches, seeds
@pytest.mark.parametrize("formation", ["antipodal", "merge", "random"])
def test_a_world_does_not_depend_on_its_batch(formation):
    game = envs.make("navigation", formation=formation, random_start=0.5)
    seeds = [3, 5, 7]
    many = ReplicaRNG.from_seeds(seeds, "env")
    alone = ReplicaRNG.from_seeds([5], "env")
    s3, s1 = game.reset(3, many), game.reset(1, alone)
    acts = np.random.default_rng(0)
    for _ in range(3 * game.max_steps):
        a3 = acts.integers(0, 5, (3, game.n_agents))
        o3, o1 = game.step(s3, a3, many), game.step(s1, a3[1:2], alone)
        np.testing.assert_array_equal(o3.obs[1:2], o1.obs)
        np.testing.assert_array_equal(o3.reward[1:2], o1.reward)
        assert o3.done[1] == o1.done[0]
        for k in o1.info:
            np.testing.assert_array_equal(o3.info[k][1:2], o1.info[k])
        s3 = reset_done(game, o3.state, o3.done, many)
        s1 = reset_done(game, o1.state, o1.done, alone)


# ------------------------------------------------------------------------------ params, extras
@pytest.mark.parametrize("params, match", [
    ({"formation": "square"}, r"formation: .*unknown formation \(allowed: antipodal, cross"),
    ({"formation": "antipodal", "n_agents": 3}, "n_agents=3 does not fit formation"),
    ({"formation": "merge", "n_agents": 4}, "n_agents=4 does not fit formation 'merge'"),
    ({"random_start": 1.5}, "random_start"),
    ({"max_steps": 0}, "max_steps"),
    ({"formation": "random", "n_agents": 0}, "n_agents"),
    ({"speed": 3}, "unknown field"),
])
def test_bad_params_are_one_line_errors(params, match):
    with pytest.raises(ValueError, match=match) as err:
        envs.make("navigation", **params)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("navigation")


def test_params_round_trip_with_defaults_written_out():
    model = envs.params_model("navigation")
    for params in ({}, {"formation": "merge"}, {"formation": "random", "n_agents": 3}):
        dumped = model(**params).model_dump(mode="json")
        assert model(**dumped).model_dump(mode="json") == dumped
        assert envs.make("navigation", **dumped).n_agents == dumped["n_agents"]


def test_render_draws_agents_and_landmarks_in_their_colours():
    from econsim.envs.navigation import AGENT_COLOURS, BACKGROUND

    game = envs.make("navigation")
    pos = np.array([[[-.9, -.9], [.9, .9], [-.9, .9], [.9, -.9]]])
    goal = np.array([[[0.0, 0.5], [0.5, 0.0], [0.0, -0.5], [-0.5, 0.0]]])
    state = game.make_state(np.concatenate([pos, pos]), np.concatenate([goal, goal]))
    img = game.render_rgb(state, 1)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8

    def pixel(x, y):  # extent (-1.5, 1.5) over 128 pixels, y up
        return tuple(int(c) for c in img[int((1.5 - y) / 3 * 128), int((x + 1.5) / 3 * 128)])

    for i in range(4):
        assert pixel(*pos[0, i]) == AGENT_COLOURS[i]  # a disc centred on the agent
        assert pixel(*(pos[0, i] + [0.1, 0.0])) == AGENT_COLOURS[i]  # radius 0.15
        gx, gy = goal[0, i]
        assert pixel(gx, gy) == BACKGROUND  # a ring: hollow
        assert pixel(gx + 0.05, gy) == AGENT_COLOURS[i]
    assert pixel(1.3, 1.3) == BACKGROUND


def test_describe_and_info_keys():
    game = envs.make("navigation", formation="merge")
    rng = np.random.default_rng(0)
    state = game.reset(3, rng)
    out = game.step(state, np.ones((3, 2), np.int64), rng)
    d = game.describe(out.state)
    assert set(d) == {"x", "y", "vx", "vy", "distance"}
    assert all(v.shape == (3, 2) for v in d.values())
    np.testing.assert_array_equal(d["distance"], out.info["distance"])
    assert set(game.agent_info_keys) <= set(out.info)
    assert out.info["collisions"].dtype == np.int64 and out.info["reached"].dtype == bool


def test_what_if_replay_has_frames_and_documented_columns():
    from econsim import scenario as scenario_mod
    from econsim import whatif

    sc = scenario_mod.from_dict({
        "name": "nav_tiny", "seeds": [0],
        "env": {"name": "navigation", "formation": "merge", "max_steps": 6},
        "algorithm": {"name": "ac"}, "train": {"iterations": 1}})
    result = whatif.run_whatif(sc, episodes=1, seed=0, brains="random")
    frames = next(iter(result.frames.values()))
    assert len(frames) == 6 and frames[0].shape == (128, 128, 3)
    assert {"x", "y", "vx", "vy", "distance", "collisions", "reached"} <= set(result.steps)
    dd = result.data_dictionary()
    assert (dd.meaning != "").all(), dd[dd.meaning == ""]
