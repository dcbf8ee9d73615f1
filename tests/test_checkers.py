"""Checkers kernel (Diss App. A.7.3; SPEC §7): geometry and items, blocked moves and the move
order, collection rewards, termination, the optimum 24 by a scripted plan, the observation
and global state layout, the induced stage-1 MDP, invariants, batch independence."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from econsim import envs
from econsim.core import Game, ReplicaRNG, reset_done
from econsim.core.capabilities import MultiGoal, names_of
from econsim.envs.checkers import (
    DOWN,
    ITEM_COLS,
    LEFT,
    REWARDS,
    RIGHT,
    ROLE_COLOURS,
    STAY,
    UP,
    padded,
)


def fresh(batch=1, **params):
    game = envs.make("checkers", **params)
    return game, game.reset(batch, np.random.default_rng(0))


def place(state, *cells):
    """Put agent k on playable ``cells[k]`` = (row, col) in every world (an item there is
    removed, as if collected before)."""
    state.pos[:] = [padded(r, c) for r, c in cells]
    state.cell[:, state.pos[0]] = 0


def at(game, state, b=0):
    """Playable (row, col) of every agent of world ``b``."""
    d = game.describe(state)
    return [(int(r), int(c)) for r, c in zip(d["row"][b], d["col"][b], strict=True)]


def item(state, row, col, b=0):
    """Cell code at playable (row, col): 0 empty, 1 red, 2 yellow."""
    return int(state.cell[b, padded(row, col)])


def act(game, state, *actions):
    return game.step(state, np.array([actions]), np.random.default_rng(0))


def world_slice(state, b):
    return dataclasses.replace(state, **{f.name: getattr(state, f.name)[b:b + 1].copy()
                                         for f in dataclasses.fields(state)})


# ---------------------------------------------------------------------------- layout
def test_registered_with_sizes_and_capabilities():
    game, s = fresh()
    assert isinstance(game, Game) and "checkers" in envs.names()
    assert names_of(game) == ("Grid", "AgentEvents", "Render", "MultiGoal")
    assert (game.height, game.width, game.n_agents, game.max_steps) == (3, 9, 2, 75)
    assert (game.self_size, game.goal_size, game.others_size) == (84, 2, 2)
    assert game.observation_space.shape == (88,) and game.action_space.n == 5
    plain = envs.make("checkers", previous_action=False)
    assert (plain.self_size, plain.observation_space.shape) == (79, (83,))
    assert game.self_image == (5, 5, 3) and game.env_image == (3, 9, 2)
    assert (game.env_state_size, game.agent_state_size) == (54, 4)
    assert game.optimum == 24.0
    assert at(game, s) == [(0, 8), (2, 8)]
    assert s.pos[0].tolist() == [2 * 13 + 10, 4 * 13 + 10]  # padded (2, 10), (4, 10)


def test_checkerboard_of_12_red_and_12_yellow():
    _, s = fresh()
    grid = np.array([[item(s, r, c) for c in range(9)] for r in range(3)])
    assert grid.tolist() == [[1, 2, 1, 2, 1, 2, 1, 2, 0],
                             [2, 1, 2, 1, 2, 1, 2, 1, 0],
                             [1, 2, 1, 2, 1, 2, 1, 2, 0]]
    assert (grid == 1).sum() == 12 and (grid == 2).sum() == 12
    walls = s.cell[0].reshape(7, 13) == 3
    assert walls[:2].all() and walls[5:].all() and walls[:, :2].all() and walls[:, 11:].all()
    assert not walls[2:5, 2:11].any()


def test_bad_params_are_one_line():
    for bad, field in [({"n_agents": 3}, "n_agents"), ({"max_steps": 0}, "max_steps"),
                       ({"blocked_penalty": -1.0}, "blocked_penalty"), ({"foo": 1}, "foo"),
                       ({"max_steps": 1.5}, "max_steps")]:
        with pytest.raises(ValueError, match=f"checkers.{field}") as err:
            envs.make("checkers", **bad)
        assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------- moves
def test_walls_block():
    game, s = fresh()
    step = act(game, s, UP, DOWN)  # A off the top, B off the bottom
    assert at(game, s) == [(0, 8), (2, 8)]
    assert step.info["blocked"][0].tolist() == [1, 1] and step.reward[0].tolist() == [0, 0]
    step = act(game, s, RIGHT, RIGHT)  # the start column is the last one
    assert at(game, s) == [(0, 8), (2, 8)] and step.info["blocked"][0].tolist() == [1, 1]
    step = act(game, s, STAY, STAY)
    assert step.info["blocked"][0].tolist() == [0, 0]
    place(s, (1, 0), (0, 8))
    step = act(game, s, LEFT, STAY)
    assert at(game, s) == [(1, 0), (0, 8)] and step.info["blocked"][0].tolist() == [1, 0]


def test_other_agent_blocks_and_a_moves_first():
    game, s = fresh()
    place(s, (1, 8), (2, 8))
    # A moves into B's cell before B leaves it: blocked; B moves on
    step = act(game, s, DOWN, LEFT)
    assert at(game, s) == [(1, 8), (2, 7)] and step.info["blocked"][0].tolist() == [1, 0]
    # B moves into A's cell while A stays: blocked
    place(s, (1, 8), (2, 8))
    step = act(game, s, STAY, UP)
    assert at(game, s) == [(1, 8), (2, 8)] and step.info["blocked"][0].tolist() == [0, 1]
    # B may enter the cell A has just left
    step = act(game, s, UP, UP)
    assert at(game, s) == [(0, 8), (1, 8)] and step.info["blocked"][0].tolist() == [0, 0]
    # two agents heading for the same free cell: A (first) gets it
    place(s, (0, 8), (2, 8))
    step = act(game, s, DOWN, UP)
    assert at(game, s) == [(1, 8), (2, 8)] and step.info["blocked"][0].tolist() == [0, 1]


def test_blocked_penalty_is_an_option():
    game, s = fresh(blocked_penalty=0.1)
    step = act(game, s, UP, STAY)
    assert step.reward[0].tolist() == pytest.approx([-0.1, 0.0])
    game, s = fresh()  # the dissertation's rule: no penalty
    assert act(game, s, UP, STAY).reward[0].tolist() == [0.0, 0.0]


# ---------------------------------------------------------------------------- collection
def test_collection_rewards_for_both_roles_and_items_vanish():
    game, s = fresh()
    place(s, (0, 1), (1, 2))
    step = act(game, s, LEFT, LEFT)  # A -> (0, 0) red; B -> (1, 1) red
    assert step.reward[0].tolist() == [1.0, -0.5]
    assert step.info["red"][0].tolist() == [1, 1] and step.info["yellow"][0].tolist() == [0, 0]
    assert item(s, 0, 0) == 0 and item(s, 1, 1) == 0
    step = act(game, s, DOWN, DOWN)  # A -> (1, 0) yellow; B -> (2, 1) yellow
    assert step.reward[0].tolist() == [-0.5, 1.0]
    assert step.info["yellow"][0].tolist() == [1, 1]
    d = game.describe(s)
    assert d["red"][0].tolist() == [1, 1] and d["yellow"][0].tolist() == [1, 1]
    step = act(game, s, UP, UP)  # back onto cleared cells: nothing
    assert step.reward[0].tolist() == [0.0, 0.0] and step.info["red"].sum() == 0
    env, _ = game.global_state(s)
    grid = env[0].reshape(3, 9, 2)
    assert grid[0, 0].tolist() == [0, 0] and grid[1, 1].tolist() == [0, 0]
    assert grid[:, :8].sum() == 24 - 4 - 2 and grid[:, 8].sum() == 0  # 2 cleared by place


def test_episode_ends_at_max_steps():
    for steps in (75, 5):
        game, s = fresh(max_steps=steps)
        for t in range(steps):
            step = act(game, s, STAY, STAY)
            s = step.state
            assert step.done[0] == (t == steps - 1)


# The optimum 24 (Diss A.7.3, SPEC §7). Every neighbour of a red cell is yellow (or the
# empty start column, or a wall) and vice versa, so A can reach each red only through a cell
# B has already cleared, and B each yellow only through one A has cleared. This joint plan
# (A's action, B's action) was found by a breadth-first search over (A's cell, B's cell,
# items left) that forbade blocked moves and wrong-colour items; 32 steps is the fewest. Steps
# 1-6 clear column 7 and enter column 6; then an 8-step pattern (steps 7-14, its mirror image
# 15-22, again 23-30) clears two columns at a time, A and B alternating between rows; the last
# two steps take red (2, 0) and yellow (2, 1) at once.
S, U, D, L, R = STAY, UP, DOWN, LEFT, RIGHT
OPTIMAL_PLAN = [
    (S, L), (D, R), (L, U), (D, L), (S, L), (L, R),                      # column 7
    (U, S), (U, S), (D, U), (L, L), (R, L), (U, D), (L, L), (L, R),      # columns 6, 5
    (D, S), (D, S), (U, D), (L, L), (R, L), (D, U), (L, L), (L, R),      # columns 4, 3
    (U, S), (U, S), (D, U), (L, L), (R, L), (U, D), (L, L), (L, R),      # columns 2, 1
    (D, S), (D, D),                                                      # column 0
]


@pytest.mark.parametrize("penalty", [0.0, 0.1])
def test_scripted_plan_reaches_the_optimum_24_and_ends_early(penalty):
    game, s = fresh(blocked_penalty=penalty)
    total = np.zeros(2)
    for t, joint in enumerate(OPTIMAL_PLAN):
        step = act(game, s, *joint)
        s = step.state
        total += step.reward[0]
        assert step.info["blocked"].sum() == 0
        assert step.done[0] == (t == len(OPTIMAL_PLAN) - 1)
    assert len(OPTIMAL_PLAN) == 32 < game.max_steps
    assert total.tolist() == [12.0, 12.0] and total.sum() == game.optimum == 24.0
    d = game.describe(s)
    assert d["red"][0].tolist() == [12, 0] and d["yellow"][0].tolist() == [0, 12]
    assert game.global_state(s)[0].sum() == 0


# ---------------------------------------------------------------------------- observation
def test_observation_window_at_the_start():
    game, s = fresh()
    obs = game.observe(s)
    assert obs.shape == (1, 2, 88) and obs.dtype == np.float32
    o_self, goal, o_others = game.split(obs)
    assert (o_self.shape[-1], goal.shape[-1], o_others.shape[-1]) == (84, 2, 2)
    assert not o_self[0, :, 79:].any()  # no previous action yet
    win = o_self[0, 0, :75].reshape(5, 5, 3)  # A at padded (2, 10): rows 0-4, cols 8-12
    # rows 0-1 are padding; columns 11-12 (window cols 3-4) are padding
    assert win[:2, :, 2].all() and win[:, 3:, 2].all()
    # playable (0, 6) red, (0, 7) yellow, (1, 6) yellow, (1, 7) red, (2, 6) red, (2, 7) yellow
    assert win[2:, :2, 0].tolist() == [[1, 0], [0, 1], [1, 0]]
    assert win[2:, :2, 1].tolist() == [[0, 1], [1, 0], [0, 1]]
    assert win[2:, :3, 2].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1]]  # B at (2, 8)
    assert win[2, 2].tolist() == [0, 0, 0]  # own cell: valid, empty
    # o_self_V: (2 / 7, 10 / 13), nothing collected; goal; B at (4 / 7, 10 / 13)
    assert o_self[0, 0, 75:79].tolist() == pytest.approx([2 / 7, 10 / 13, 0, 0])
    assert goal[0].tolist() == [[1, 0], [0, 1]]
    assert o_others[0, 0].tolist() == pytest.approx([4 / 7, 10 / 13])
    assert o_others[0, 1].tolist() == pytest.approx([2 / 7, 10 / 13])
    win_b = o_self[0, 1, :75].reshape(5, 5, 3)  # B sees A two rows up, padding below
    assert win_b[0, 2, 2] == 1 and win_b[3:, :, 2].all() and win_b[2, 2].tolist() == [0, 0, 0]
    assert game.observation_space.contains(obs)


def test_observation_counts_and_global_state_after_collecting():
    game, s = fresh()
    place(s, (1, 1), (1, 8))
    act(game, s, UP, STAY)  # A takes yellow (0, 1)
    act(game, s, LEFT, STAY)  # and red (0, 0)
    obs = game.observe(s)
    o_self = game.split(obs)[0]
    assert o_self[0, 0, 75:79].tolist() == pytest.approx([2 / 7, 2 / 13, 1 / 12, 1 / 12])
    assert o_self[0, 0, 79:].tolist() == [0, 0, 0, 1, 0] and o_self[0, 1, 79:].tolist() == [
        1, 0, 0, 0, 0]  # previous actions: A left, B stay
    win = o_self[0, 0, :75].reshape(5, 5, 3)  # A at padded (2, 2): the top-left corner
    assert win[:2, :, 2].all() and win[:, :2, 2].all() and win[2, 2].tolist() == [0, 0, 0]
    assert win[2, 3].tolist() == [0, 0, 0]  # (0, 1), collected
    assert win[3, 3].tolist() == [0, 0, 0]  # (1, 1), cleared by place
    assert win[3, 2].tolist() == [0, 1, 0] and win[4, 2].tolist() == [1, 0, 0]
    assert win[3, 4].tolist() == [0, 1, 0] and win[2, 4].tolist() == [1, 0, 0]
    env, agents = game.global_state(s)
    assert env.shape == (1, 54) and agents.shape == (1, 2, 4) and env.dtype == np.float32
    grid = env[0].reshape(game.env_image)
    assert grid[0, :3].tolist() == [[0, 0], [0, 0], [1, 0]]
    # Diss A.7.3's s_V: integer playable (row, col) and counts; A at (0, 0), B at (1, 8)
    assert agents[0].tolist() == [[0, 0, 1, 1], [1, ITEM_COLS, 0, 0]]
    norm = envs.make("checkers", state_coordinates="normalised")  # the option: as observed
    _, scaled = norm.global_state(s)
    np.testing.assert_allclose(scaled[0, 0], o_self[0, 0, 75:79], rtol=1e-6)
    np.testing.assert_allclose(scaled[0, :, :2], game.split(obs)[2][0, ::-1], rtol=1e-6)


def test_render_draws_walls_items_and_agents():
    game, s = fresh()
    img = game.render_rgb(s)
    assert img.shape == (7, 13, 3) and img.dtype == np.uint8
    assert img[2, 10].tolist() == list(ROLE_COLOURS[0]) and img[4, 10].tolist() == list(
        ROLE_COLOURS[1])
    assert img[2, 2].tolist() != img[2, 3].tolist() != img[0, 0].tolist()
    assert img[3, 10].tolist() == [0, 0, 0]


# ---------------------------------------------------------------------------- induced MDP
def test_induced_is_one_agent_with_a_role_per_world():
    game = envs.make("checkers", blocked_penalty=0.1)
    one = game.induced()
    assert isinstance(one, MultiGoal) and one.n_agents == 1 and one.others_size == 0
    assert (one.self_size, one.goal_size, one.agent_state_size) == (84, 2, 4)
    assert one.observation_space.shape == (86,) and one.blocked_penalty == 0.1
    assert one.optimum == 12.0
    s = one.reset(256, np.random.default_rng(1))
    role = s.role[:, 0]
    assert 64 < role.sum() < 192  # both roles, about half each
    d = one.describe(s)
    assert (d["row"][:, 0] == np.where(role == 0, 0, 2)).all() and (d["col"] == 8).all()
    goal = one.split(one.observe(s))[1][:, 0]
    assert (goal.argmax(-1) == role).all()
    _, agents = one.global_state(s)
    assert agents.shape == (256, 1, 4)
    # rewards by role: from the start cell, left is yellow for A's cell and for B's cell
    step = one.step(s, np.full((256, 1), LEFT), np.random.default_rng(0))
    assert (step.reward[:, 0] == np.where(role == 0, -0.5, 1.0)).all()
    step = one.step(step.state, np.full((256, 1), UP), np.random.default_rng(0))
    # A: up from (0, 7) is a wall; B: (1, 7) is red
    assert step.reward[:, 0] == pytest.approx(np.where(role == 0, -0.1, -0.5))


def test_induced_roles_follow_the_replica_streams():
    """The role draw is batch-leading: a replica's worlds get the same roles whatever runs
    beside them."""
    one = envs.make("checkers", n_agents=1)
    alone = one.reset(8, ReplicaRNG.from_seeds([3], "train")).role
    both = one.reset(16, ReplicaRNG.from_seeds([5, 3], "train")).role
    assert (both[8:] == alone).all()


# ---------------------------------------------------------------------------- invariants
@settings(max_examples=40, deadline=None)
@given(n_agents=st.sampled_from([1, 2]), seed=st.integers(0, 2**16),
       steps=st.integers(1, 90))
def test_invariants_under_random_play(n_agents, seed, steps):
    game = envs.make("checkers", n_agents=n_agents)
    rng = np.random.default_rng(seed)
    batch = 4
    s = game.reset(batch, rng)
    for _ in range(steps):
        before = s.cell.copy()
        actions = rng.integers(0, 5, (batch, n_agents))
        step = game.step(s, actions, rng)
        s = step.state
        changed = before != s.cell
        assert (before[changed] != 0).all() and (s.cell[changed] == 0).all()  # only vanish
        got = step.info["red"] + 2 * step.info["yellow"]
        assert step.reward == pytest.approx(REWARDS[s.role, got])
        left_red = (s.cell == 1).sum(1)
        left_yellow = (s.cell == 2).sum(1)
        assert (s.red.sum(1) + left_red == 12).all()
        assert (s.yellow.sum(1) + left_yellow == 12).all()
        assert (s.cell[np.arange(batch)[:, None], s.pos] == 0).all()  # never on a wall
        if n_agents == 2:
            assert (s.pos[:, 0] != s.pos[:, 1]).all()
        d = game.describe(s)
        assert ((d["row"] >= 0) & (d["row"] < 3) & (d["col"] >= 0) & (d["col"] < 9)).all()
        assert game.observation_space.contains(step.obs)
        all_gone = left_red + left_yellow == 0
        assert (step.done == ((s.t >= game.max_steps) | all_gone)).all()
        s = reset_done(game, s, step.done, rng)


def test_a_worlds_trajectory_does_not_depend_on_its_batch():
    for n_agents in (2, 1):
        game = envs.make("checkers", n_agents=n_agents)
        rng = np.random.default_rng(2)
        acts = rng.integers(0, 5, (40, 6, n_agents))
        s = game.reset(6, rng)
        singles = [world_slice(s, b) for b in range(6)]
        for a in acts:
            step = game.step(s, a, rng)
            s = step.state
            for b in range(6):
                one = game.step(singles[b], a[b:b + 1], np.random.default_rng(b))
                singles[b] = one.state
                np.testing.assert_array_equal(one.obs[0], step.obs[b])
                np.testing.assert_array_equal(one.reward[0], step.reward[b])
                assert one.done[0] == step.done[b]


def test_mesa_face_hosts_checkers():
    from econsim.model import EconModel

    game = envs.make("checkers", max_steps=10)
    m = EconModel(game, seed=0)
    assert m.grid_shape == (3, 9)
    while m.running:
        m.step()
    assert m.t == 10
    for p in m.players:
        assert p.cell.coordinate == (p.row, p.col)
        assert {"red", "yellow", "blocked"} <= set(vars(p))
