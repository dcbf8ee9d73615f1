"""Rules of the IPD and Escape Room kernels against hand-worked cases (SPEC §1-2)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from econsim import envs
from econsim.core import Game, check_actions, reset_done
from econsim.envs.escape_room import DOOR, LEVER, START
from tests.registered import why_not


def test_registry_and_protocol():
    assert {"cleanup", "escape_room", "escape_room_asym", "gtb", "ipd"} <= set(envs.names())
    for name in envs.names():
        if why_not(name):  # optional packages missing (tests/registered.py)
            with pytest.raises(ImportError, match=r"pip install 'econsim\[\w+\]'"):
                envs.make(name)
            continue
        game = envs.make(name)
        assert isinstance(game, Game)


def test_unknown_env_and_bad_params_are_one_line():
    with pytest.raises(ValueError,
                       match=r"unknown env 'nope' \(allowed: (\w+, )*cleanup, escape_room"):
        envs.make("nope")
    with pytest.raises(ValueError, match="must be below n_agents") as e:
        envs.make("escape_room", n_agents=3, n_required=3)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"escape_room.foo: unknown field \(allowed: n_agents"):
        envs.make("escape_room", foo=1)


def test_ipd_payoffs_and_observation(rng):
    game = envs.make("ipd")
    state = game.reset(4, rng)
    obs = game.observe(state)
    assert (obs[:, :, 4] == 1).all() and obs.sum() == 8
    joint = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    step = game.step(state, joint, rng)
    assert step.reward.tolist() == [[-1, -1], [-3, 0], [0, -3], [-2, -2]]
    # observation index 2*a0 + a1, identical for both agents
    assert (step.obs.argmax(-1) == np.array([0, 1, 2, 3])[:, None]).all()
    assert not step.done.any()
    for _ in range(4):
        step = game.step(step.state, joint, rng)
    assert step.done.all()


def test_escape_room_optimum_in_one_step(rng):
    for n, m in [(2, 1), (3, 2), (5, 3)]:
        game = envs.make("escape_room", n_agents=n, n_required=m)
        state = game.reset(1, rng)
        actions = np.array([[LEVER] * m + [DOOR] * (n - m)])
        step = game.step(state, actions, rng)
        assert step.reward.sum() == game.optimum == 10 * (n - m) - m
        assert step.done.all()


def test_escape_room_door_needs_lever_action_not_position(rng):
    game = envs.make("escape_room", n_agents=2, n_required=1)
    state = game.reset(1, rng)
    step = game.step(state, np.array([[LEVER, START]]), rng)  # agent0 walks to the lever
    assert step.reward.tolist() == [[-1, 0]] and not step.done[0]
    # agent0 at the lever but choosing start: door closed, agent1's move costs -1
    step = game.step(step.state, np.array([[START, DOOR]]), rng)
    assert step.reward.tolist() == [[-1, -1]] and not step.done[0]
    # staying at the lever counts as pulling; agent1 stays at the door and gets +10
    step = game.step(step.state, np.array([[LEVER, DOOR]]), rng)
    assert step.reward.tolist() == [[-1, 10]] and step.done[0]


def test_escape_room_several_winners_and_timeout(rng):
    game = envs.make("escape_room", n_agents=3, n_required=1)
    step = game.step(game.reset(1, rng), np.array([[LEVER, DOOR, DOOR]]), rng)
    assert step.reward.tolist() == [[-1, 10, 10]]
    state = game.reset(1, rng)
    for t in range(5):
        step = game.step(state, np.array([[START, START, START]]), rng)
        state = step.state
        assert step.reward.sum() == 0
        assert step.done[0] == (t == 4)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 6), data=st.data())
def test_escape_room_reward_rules(n, data):
    m = data.draw(st.integers(1, n - 1))
    game = envs.make("escape_room", n_agents=n, n_required=m)
    rng = np.random.default_rng(0)
    state = game.reset(1, rng)
    state.pos[:] = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    actions = np.array([data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))])
    before = state.pos.copy()
    step = game.step(state, actions, rng)
    open_ = (actions == LEVER).sum() >= m
    for i in range(n):
        a = actions[0, i]
        expect = 10 if open_ and a == DOOR else (0 if a == before[0, i] else -1)
        assert step.reward[0, i] == expect
    assert (step.state.pos == actions).all()
    assert step.done[0] == (open_ and (actions == DOOR).any())


def test_asymmetric_escape_room(rng):
    game = envs.make("escape_room_asym")
    # A2 pulls the lever (-1), A1 exits (+10): optimum 9, then rewards 0 until step 5
    step = game.step(game.reset(1, rng), np.array([[1, 1]]), rng)
    assert step.reward.tolist() == [[10, -1]]
    total = step.reward.sum()
    for _ in range(4):
        step = game.step(step.state, np.array([[0, 0]]), rng)
        total += step.reward.sum()
    assert total == game.optimum == 9 and step.done[0]
    # A2 stays at start: A1 is penalised every step, even staying
    step = game.step(game.reset(1, rng), np.array([[0, 0]]), rng)
    assert step.reward.tolist() == [[-1, 0]]
    obs = game.observe(game.reset(1, rng))
    assert obs[0, 1, 3:].sum() == 0  # A2 sees only its own position


def test_batch_equals_single_worlds(rng):
    """The kernel is batch-first: a batch of worlds equals the worlds stepped one by one."""
    game = envs.make("escape_room", n_agents=3, n_required=2)
    acts = rng.integers(0, 3, size=(5, 8, 3))
    state = game.reset(8, rng)
    batch_rewards = []
    for a in acts:
        step = game.step(state, a, rng)
        state = step.state
        batch_rewards.append(step.reward)
    for b in range(8):
        s = game.reset(1, rng)
        for t, a in enumerate(acts):
            step = game.step(s, a[b:b + 1], rng)
            s = step.state
            assert (step.reward[0] == batch_rewards[t][b]).all()


def test_reset_done_and_check_actions(rng):
    game = envs.make("escape_room", n_agents=2, n_required=1)
    state = game.reset(3, rng)
    step = game.step(state, np.array([[LEVER, DOOR], [START, START], [LEVER, LEVER]]), rng)
    assert step.done.tolist() == [True, False, False]
    state = reset_done(game, step.state, step.done, rng)
    assert state.pos[0].tolist() == [START, START] and state.t.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="integers in 0..2"):
        check_actions(game, np.array([[0, 5]]), 1)
    with pytest.raises(ValueError, match="shape"):
        check_actions(game, np.array([0, 1]), 1)
