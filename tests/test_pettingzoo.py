"""econsim.pettingzoo: every registered game as a PettingZoo ParallelEnv."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from econsim import envs
from econsim.core.capabilities import ActionMask, Render, has
from econsim.core.seeding import make_rng
from tests.registered import games

NAMES = envs.names()
GAMES = games()  # parameters: a game missing optional packages is skipped, saying why


@pytest.fixture
def pz():
    """The adapter module (the test is skipped if pettingzoo is not installed)."""
    pytest.importorskip("pettingzoo")
    import econsim.pettingzoo

    return econsim.pettingzoo


class Spy:
    """A Generator that records whether anything was drawn from it."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.used = rng, False

    def __getattr__(self, name):
        self.used = True
        return getattr(self.rng, name)


def _uses_rng(name: str) -> bool:
    game = envs.make(name)
    spy = Spy(np.random.default_rng(0))
    state = game.reset(1, spy)
    for _ in range(3):
        state = game.step(state, np.zeros((1, game.n_agents), np.int64), spy).state
    return spy.used


def _actions(env, rng: np.random.Generator) -> dict[str, int]:
    n = env.action_space(env.possible_agents[0]).n
    return {a: int(rng.integers(n)) for a in env.agents}


def _episode(env, seed: int, action_seed: int = 0, steps: int = 100) -> list:
    """Observations, rewards, terminations and infos of up to ``steps`` steps."""
    rng = np.random.default_rng(action_seed)
    obs, infos = env.reset(seed=seed)
    out = [(obs, infos)]
    for _ in range(steps):
        if not env.agents:
            break
        out.append(env.step(_actions(env, rng)))
    return out


def _same(x, y) -> bool:
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, tuple | list):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, np.ndarray):
        return isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)
    return type(x) is type(y) and x == y


@pytest.mark.parametrize("name", GAMES)
def test_parallel_api(pz, name):
    from pettingzoo.test import parallel_api_test, parallel_seed_test
    from pettingzoo.test.state_test import test_parallel_env as check_state

    env = pz.parallel_env(name)
    parallel_api_test(env, num_cycles=120)  # GTB: 100 steps, two episodes
    parallel_seed_test(lambda: pz.parallel_env(name), num_cycles=10)
    check_state(env, seed=0)
    assert env.possible_agents == [f"agent_{i}" for i in range(env.game.n_agents)]
    assert env.metadata["name"] == f"econsim_{name}"


@pytest.mark.parametrize("name", GAMES)
def test_spaces_follow_the_game(pz, name):
    import gymnasium

    env, game = pz.parallel_env(name), envs.make(name)
    obs, _ = env.reset(seed=0)
    for agent in env.possible_agents:
        ospace, aspace = env.observation_space(agent), env.action_space(agent)
        assert isinstance(ospace, gymnasium.spaces.Box) and ospace.dtype == np.float32
        assert ospace.shape == tuple(game.observation_space.shape)
        assert np.all(ospace.low == game.observation_space.low)
        assert np.all(ospace.high == game.observation_space.high)
        assert isinstance(aspace, gymnasium.spaces.Discrete) and aspace.n == game.action_space.n
        assert ospace.contains(obs[agent])


@pytest.mark.parametrize("name", GAMES)
def test_same_seed_same_episode_and_other_seed_differs(pz, name):
    a = _episode(pz.parallel_env(name), seed=3)
    b = _episode(pz.parallel_env(name), seed=3)
    assert _same(a, b)
    # reset(seed) restarts the stream: the same env replays its episode
    env = pz.parallel_env(name)
    _episode(env, seed=5)
    assert _same(_episode(env, seed=3), a)
    c = _episode(pz.parallel_env(name), seed=4)
    if _uses_rng(name):
        # a game may draw only at reset and land on the same start for two seeds
        # (navigation: its fixed formation 80% of the time); some other seed differs
        others = (c, *(_episode(pz.parallel_env(name), seed=s) for s in range(6, 16)))
        assert not all(_same(a, o) for o in others)
    else:
        assert _same(a, c)


@pytest.mark.parametrize("name", GAMES)
def test_matches_the_game(pz, name):
    """Observations, rewards, the end of the episode and per-agent infos are the game's own,
    with the game's random stream make_rng(seed, "pettingzoo")."""
    env, game = pz.parallel_env(name), envs.make(name)
    rng, arng = make_rng(7, "pettingzoo"), np.random.default_rng(1)
    obs, _ = env.reset(seed=7)
    state = game.reset(1, rng)
    for _ in range(game.max_steps):
        acts = _actions(env, arng)
        obs, rew, term, trunc, infos = env.step(acts)
        st = game.step(state, np.array([[acts[a] for a in env.possible_agents]]), rng)
        state = st.state
        done = bool(st.done[0])
        for i, a in enumerate(env.possible_agents):
            np.testing.assert_array_equal(obs[a], st.obs[0, i])
            assert rew[a] == pytest.approx(float(st.reward[0, i]))
            assert term[a] is done and trunc[a] is False
            for key, value in st.info.items():
                want = value[0, i] if value.ndim >= 2 and value.shape[1] == game.n_agents \
                    else value[0]
                np.testing.assert_array_equal(infos[a][key], want)
        if done:
            break
    assert done and env.agents == []
    with pytest.raises(ValueError, match="episode is over; call reset"):
        env.step({})


@pytest.mark.parametrize("name", GAMES)
def test_action_masks_where_the_game_has_them(pz, name):
    env = pz.parallel_env(name)
    _, infos = env.reset(seed=0)
    masked = has(env.game, ActionMask)
    for agent in env.possible_agents:
        assert ("action_mask" in infos[agent]) is masked
        assert env.action_mask(agent).shape == (env.action_space(agent).n,)


def test_gtb_action_masks_are_the_games(pz):
    env, game = pz.parallel_env("gtb"), envs.make("gtb")
    assert has(game, ActionMask)
    rng = make_rng(11, "pettingzoo")
    _, infos = env.reset(seed=11)
    state = game.reset(1, rng)
    seen_illegal = False
    for _ in range(30):
        want = game.action_mask(state)[0]
        acts = {}
        for i, a in enumerate(env.possible_agents):
            mask = infos[a]["action_mask"]
            assert mask.dtype == np.int8 and mask.shape == (game.action_space.n,)
            np.testing.assert_array_equal(mask, want[i].astype(np.int8))
            np.testing.assert_array_equal(env.action_mask(a), mask)
            seen_illegal |= not mask.all()
            acts[a] = int(env.action_space(a).sample(mask=mask))  # PettingZoo's way
            assert mask[acts[a]] == 1
        _, _, _, _, infos = env.step(acts)
        state = game.step(state, np.array([[acts[a] for a in env.possible_agents]]), rng).state
    assert seen_illegal
    # a masked action is a no-op in the game, not an error
    illegal = int(np.flatnonzero(infos["agent_0"]["action_mask"] == 0)[0])
    env.step({a: (illegal if a == "agent_0" else 0) for a in env.agents})


@pytest.mark.parametrize("name", GAMES)
def test_render(pz, name):
    if has(envs.game_class(name), Render):
        env = pz.parallel_env(name, render_mode="rgb_array")
        env.reset(seed=0)
        img = env.render()
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert pz.parallel_env(name).metadata["render_modes"] == ["rgb_array"]
    else:
        with pytest.raises(ValueError, match=r"render_mode 'rgb_array' is not supported"):
            pz.parallel_env(name, render_mode="rgb_array")


def _one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    msg = str(err.value)
    assert msg and "\n" not in msg
    return msg


def test_bad_input_gives_one_line_value_errors(pz):
    msg = _one_line_error(pz.parallel_env, "no_such_game")
    assert "no_such_game" in msg and all(n in msg for n in NAMES)
    msg = _one_line_error(pz.parallel_env, "ipd", max_steps=0)
    assert "max_steps" in msg
    msg = _one_line_error(pz.parallel_env, "ipd", bogus=1)
    assert "bogus" in msg and "max_steps" in msg
    msg = _one_line_error(pz.parallel_env, "gtb", render_mode="human")
    assert "'human'" in msg and "allowed" in msg

    env = pz.parallel_env("ipd")
    assert "reset()" in _one_line_error(env.step, {"agent_0": 0, "agent_1": 0})
    env.reset(seed=0)
    msg = _one_line_error(env.step, {"agent_0": 0, "agent_1": 2})
    assert "agent_1" in msg and "0..1" in msg and "2" in msg
    msg = _one_line_error(env.step, {"agent_0": 0, "agent_1": 0.5})
    assert "agent_1" in msg and "integer" in msg
    msg = _one_line_error(env.step, {"agent_0": 0})
    assert "missing agent_1" in msg
    msg = _one_line_error(env.step, {"agent_0": 0, "agent_1": 0, "agent_9": 1})
    assert "agent_9" in msg and "agent_0, agent_1" in msg
    msg = _one_line_error(env.step, [0, 1])
    assert "dict" in msg
    msg = _one_line_error(env.action_space, "agent_9")
    assert "agent_9" in msg


def test_import_without_pettingzoo():
    """Importing the adapter works without pettingzoo; parallel_env then says what to do."""
    code = (
        "import sys; sys.modules['pettingzoo'] = None\n"
        "import econsim.pettingzoo as p\n"
        "try:\n"
        "    p.parallel_env('ipd')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "pip install econsim[pettingzoo]" in out.stdout


@pytest.mark.parametrize("seed", ["a", -1, 1.5, True, 2**64])
def test_a_bad_seed_is_one_line(pz, seed):
    env = pz.parallel_env("ipd")
    with pytest.raises(ValueError, match=r"^ipd: seed must be an integer in 0..2\*\*63-1 or None"):
        env.reset(seed=seed)
