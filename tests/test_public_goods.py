"""The linear public goods game (econsim.envs.public_goods): payoffs by hand, the budget
identity, the dilemma (free-riding dominant, full contribution efficient), batch
independence, the punishment stage's arithmetic, one-line errors, and tiny runs of its
scenarios (trainers, the runner, the Mesa face)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from econsim import envs
from econsim import scenario as scenario_mod
from econsim.core import Game, check_actions
from econsim.core.capabilities import AgentEvents, EpisodeMetrics, names_of
from econsim.errors import ScenarioError
from econsim.model import EconModel
from econsim.runner import run
from learners.brains import ScriptedBrain
from tests.reference import tiny

SCENARIOS = ["pgg_pg", "pgg_lio", "pgg_metagrad", "pgg_punish_pg"]
E = 20.0  # default endowment; default levels 0, 5, 10, 15, 20 tokens


def game(**params):
    return envs.make("public_goods", **params)


def play(g, joint, state=None):
    """One step of every world from ``state`` (default: a fresh reset)."""
    joint = np.asarray(joint, np.int64)
    state = g.reset(joint.shape[0], np.random.default_rng(0)) if state is None else state
    return g.step(state, check_actions(g, joint, joint.shape[0]), np.random.default_rng(0))


def all_profiles(g) -> np.ndarray:
    """Every joint contribution profile, ``[levels^N, N]``."""
    return np.array(list(itertools.product(range(g.levels), repeat=g.n_agents)), np.int64)


# ------------------------------------------------------------------------------ registry


def test_registered_with_capabilities():
    assert "public_goods" in envs.names()
    g = game()
    assert isinstance(g, Game) and isinstance(g, AgentEvents) and isinstance(g, EpisodeMetrics)
    assert names_of(g) == ("AgentEvents", "EpisodeMetrics")
    assert g.n_agents == 4 and g.max_steps == 10 and g.action_space.n == 5
    assert g.action_names == ("give_0pct", "give_25pct", "give_50pct", "give_75pct",
                              "give_100pct")
    p = game(punishment=True)
    assert p.max_steps == 20 and p.action_names[1] == "give_25pct_or_pun1"
    assert p.observation_space.shape == (10,) and g.observation_space.shape == (5,)


# ------------------------------------------------------------------------------ payoffs


@pytest.mark.parametrize(("joint", "payoff"), [
    ([0, 0, 0, 0], [20, 20, 20, 20]),  # nobody gives: everyone keeps e
    ([4, 4, 4, 4], [32, 32, 32, 32]),  # 20 - 20 + 0.4 * 80
    ([0, 4, 4, 4], [44, 24, 24, 24]),  # free rider: 20 + 0.4 * 60; givers 0 + 24
    ([0, 1, 2, 4], [34, 29, 24, 14]),  # pot 35, share 14
    ([2, 0, 0, 0], [14, 24, 24, 24]),  # a lone giver of 10: 10 + 4
])
def test_payoff_by_hand(joint, payoff):
    step = play(game(), [joint])
    np.testing.assert_allclose(step.info["payoff"][0], payoff)
    np.testing.assert_allclose(step.info["contribution"][0], np.array(joint) * 5.0)
    # reward = gain over keeping the endowment, in endowments
    np.testing.assert_allclose(step.reward[0], (np.array(payoff) - E) / E, rtol=1e-6)
    assert step.reward.dtype == np.float32


def test_other_parameters_by_hand():
    g = game(n_agents=3, endowment=10.0, levels=3, multiplier=2.0)  # levels 0, 5, 10
    step = play(g, [[0, 1, 2]])
    np.testing.assert_allclose(step.info["payoff"][0], [10 + 10, 5 + 10, 0 + 10])


def test_budget_identity_without_punishment():
    g = game()
    joint = all_profiles(g)
    step = play(g, joint)
    total = step.info["payoff"].sum(1)
    np.testing.assert_allclose(total, g.n_agents * E + (1.6 - 1) * step.info["contribution"]
                               .sum(1))


def test_free_riding_is_dominant_one_shot():
    """Whatever the others give, giving one level less raises one's own payoff by
    (1 - r/N) * 5 tokens."""
    g = game()
    joint = all_profiles(g)
    pay = play(g, joint).info["payoff"]
    index = {tuple(j): k for k, j in enumerate(joint.tolist())}
    for k, j in enumerate(joint.tolist()):
        for i in range(g.n_agents):
            if j[i] > 0:
                less = list(j)
                less[i] -= 1
                assert pay[index[tuple(less)], i] - pay[k, i] == pytest.approx(5 * (1 - 0.4))


def test_full_contribution_maximises_the_group_payoff():
    g = game()
    joint = all_profiles(g)
    group = play(g, joint).info["payoff"].sum(1)
    best = np.flatnonzero(group == group.max())
    assert joint[best].tolist() == [[4, 4, 4, 4]] and group.max() == 4 * 32
    assert group.min() == 4 * E and joint[group.argmin()].tolist() == [0, 0, 0, 0]


# ------------------------------------------------------------------------ observations


def test_observation_own_first_then_round_fraction():
    g = game()
    state = g.reset(1, np.random.default_rng(0))
    assert (g.observe(state) == 0).all()
    step = play(g, [[0, 1, 2, 4]])
    obs = step.obs[0]
    np.testing.assert_allclose(obs[0], [0, 0.25, 0.5, 1, 0.1])  # agent 0: index order
    np.testing.assert_allclose(obs[2], [0.5, 0, 0.25, 1, 0.1])  # own first, then 0, 1, 3
    assert g.describe(step.state)["last_contribution"][0].tolist() == [0, 5, 10, 20]
    assert g.describe(state)["last_contribution"][0].tolist() == [-1, -1, -1, -1]


def test_episode_length_and_metrics():
    g = game(rounds=3)
    state, actions = g.reset(2, np.random.default_rng(0)), []
    for t in range(3):
        a = np.array([[4, 0, 2, 0], [t, t, t, t]])
        step = g.step(state, a, np.random.default_rng(0))
        state = step.state
        actions.append(a)
        assert step.done.tolist() == [t == 2] * 2
    m = g.episode_metrics(np.stack(actions), np.ones((3, 2)))
    np.testing.assert_allclose(m["contribution_rate"], [6 / 16, 0.25])  # (1 + 0.5) / 4; t/4
    np.testing.assert_allclose(m["contribution_rate_0"], [1.0, 0.25])
    np.testing.assert_allclose(m["contribution_rate_2"], [0.5, 0.25])
    # dead steps do not count
    mask = np.array([[1, 1], [1, 0], [0, 0]], float)
    m = g.episode_metrics(np.stack(actions), mask)
    np.testing.assert_allclose(m["contribution_rate"], [6 / 16, 0.0])
    np.testing.assert_allclose(state.payoff[0], [3 * 12, 3 * 32, 3 * 22, 3 * 32])  # pot 30


def test_batch_independence():
    """World 0's trajectory is the same alone or beside other worlds (no draws, no mixing)."""
    for params in ({}, {"punishment": True}):
        g = game(**params)
        rng = np.random.default_rng(3)
        seq = rng.integers(0, g.levels, (g.max_steps, 1, g.n_agents))
        alone, crowd = g.reset(1, rng), g.reset(7, rng)
        for t in range(g.max_steps):
            others = rng.integers(0, g.levels, (6, g.n_agents))
            a = g.step(alone, seq[t], np.random.default_rng(t))
            b = g.step(crowd, np.concatenate([seq[t], others]), np.random.default_rng(99 - t))
            np.testing.assert_array_equal(a.reward[0], b.reward[0])
            np.testing.assert_array_equal(a.obs[0], b.obs[0])
            for k in a.info:
                np.testing.assert_array_equal(a.info[k][0], b.info[k][0])
            alone, crowd = a.state, b.state


# -------------------------------------------------------------------------- punishment


def test_punishment_stage_arithmetic():
    g = game(punishment=True)
    step = play(g, [[0, 4, 4, 2]])  # contributions 0, 20, 20, 10
    assert step.info["stage"].tolist() == [0]
    np.testing.assert_allclose(step.info["payoff"][0], [40, 20, 20, 30])
    obs = step.obs[0]
    assert obs[0, -2] == 1.0 and obs[0, -1] == 0.0  # a punishment stage of round 0
    # points: player 0 gave least (punishes nobody whatever it picks); 1 and 2 assign 2 and 1
    # points to each of 0 and 3; 3 assigns 4 points to 0
    step = g.step(step.state, np.array([[4, 2, 1, 4]]), np.random.default_rng(0))
    info = step.info
    assert info["stage"].tolist() == [1] and not step.done[0]
    np.testing.assert_allclose(info["punish_given"][0], [0, 4, 2, 4])
    np.testing.assert_allclose(info["punish_received"][0], [2 + 1 + 4, 0, 0, 2 + 1])
    np.testing.assert_allclose(info["punish_cost"][0], [0, 4, 2, 4])
    np.testing.assert_allclose(info["fine"][0], [21, 0, 0, 9])
    np.testing.assert_allclose(info["payoff"][0], [-21, -4, -2, -13])
    np.testing.assert_allclose(step.reward[0], np.array([-21, -4, -2, -13]) / E, rtol=1e-6)
    np.testing.assert_allclose(info["contribution"][0], 0)
    obs = step.obs[0]  # next: round 1's contribution stage; received points shown, own first
    np.testing.assert_allclose(obs[3, 4:8], np.array([3, 7, 0, 0]) / 12)
    assert obs[3, 8] == 0.0 and obs[3, 9] == pytest.approx(0.1)
    np.testing.assert_allclose(obs[3, :4], [0.5, 0, 1, 1])  # last contributions kept
    assert g.describe(step.state)["punished_so_far"][0].tolist() == [7, 0, 0, 3]
    assert g.describe(step.state)["payoff_so_far"][0].tolist() == [19, 16, 18, 17]
    m = g.episode_metrics(np.array([[[0, 4, 4, 2]], [[4, 2, 1, 4]]]), np.ones((2, 1)))
    np.testing.assert_allclose(m["punishment_points"], [10 / 4])
    np.testing.assert_allclose(m["contribution_rate"], [10 / 16])


def test_budget_identity_with_punishment():
    g = game(punishment=True, punish_cost=1.5, fine_ratio=2.0)
    rng = np.random.default_rng(5)
    B = 64
    state = g.reset(B, rng)
    pay = contrib = cost = fine = 0.0
    for _ in range(g.max_steps):
        step = g.step(state, rng.integers(0, g.levels, (B, g.n_agents)), rng)
        state, info = step.state, step.info
        pay, contrib = pay + info["payoff"].sum(1), contrib + info["contribution"].sum(1)
        cost, fine = cost + info["punish_cost"].sum(1), fine + info["fine"].sum(1)
        np.testing.assert_allclose(info["fine"].sum(1), 2.0 / 1.5 * info["punish_cost"].sum(1))
    assert step.done.all() and (fine > 0).any()
    np.testing.assert_allclose(pay, g.rounds * g.n_agents * E + 0.6 * contrib - cost - fine)
    np.testing.assert_allclose(state.payoff.sum(1), pay)


def test_no_punishment_keys_without_punishment():
    step = play(game(), [[1, 1, 1, 1]])
    assert "fine" not in step.info and game().agent_info_keys == ("contribution", "payoff")


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("params", "message"), [
    ({"multiplier": 1.0}, "multiplier r=1 must satisfy 1 < r < n_agents=4"),
    ({"multiplier": 0.5}, "multiplier r=0.5 must satisfy 1 < r < n_agents=4"),
    ({"multiplier": 4.0}, "multiplier r=4 must satisfy 1 < r < n_agents=4"),
    ({"multiplier": 2.5, "n_agents": 2}, "multiplier r=2.5 must satisfy 1 < r < n_agents=2"),
    ({"levels": 1}, "public_goods.levels: 1 is not allowed"),
    ({"endowment": 0.0}, "public_goods.endowment: 0.0 is not allowed"),
    ({"fine_ratio": -1.0}, "public_goods.fine_ratio: -1.0 is not allowed"),
    ({"rounds": 501}, "public_goods.rounds: 501 is not allowed"),
    ({"bogus": 1}, "public_goods.bogus: unknown field (allowed: n_agents"),
])
def test_bad_params_one_line(params, message):
    with pytest.raises(ValueError) as err:
        game(**params)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_scenario_one_line():
    data = scenario_mod.read(scenario_mod.find("pgg_pg"))
    data["env"]["multiplier"] = 4.0
    with pytest.raises(ScenarioError) as err:
        scenario_mod.from_dict(data, "pgg_pg.toml")
    assert str(err.value).startswith("pgg_pg.toml: env: multiplier r=4 must satisfy")
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------ tiny runs


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_tiny_run(name):
    sc = tiny(name)
    trainer = sc.make_trainer([0, 1])
    for _ in range(2):
        row = trainer.iterate()
    ev = trainer.evaluate(3)
    for m in (row, ev):
        rate = m["contribution_rate"]
        assert rate.shape == (2,) and ((rate >= 0) & (rate <= 1)).all()
        assert m["payoff"].shape == (2, 4) and np.isfinite(m["payoff"]).all()
        assert m["contribution_rate_3"].shape == (2,)
    assert ("punishment_points" in ev) == (name == "pgg_punish_pg")


def test_runner_writes_contribution_rates(tmp_path):
    result = run("pgg_pg", seeds=[0], iterations=2, progress=False, root=tmp_path)
    final = result.final()
    assert {"contribution_rate", "contribution_rate_0"} <= set(final.columns)
    assert final.seed.tolist() == [0]


def test_mesa_face_plays_an_episode():
    m = EconModel("pgg_pg", seed=0)
    df = m.run_episodes(1)
    assert len(df) == 10 * 4 and not m.running
    players = m.players
    assert sum(p.payoff_so_far for p in players) == pytest.approx(
        4 * 20 * 10 + 0.6 * sum(p.contributed_so_far for p in players))
    full = EconModel("pgg_punish_pg", brains=[ScriptedBrain(lambda obs: 4)] * 4, seed=0)
    df = full.run_episodes(1)
    assert len(df) == 20 * 4 and (df.groupby("agent").payoff_so_far.last() == 320).all()
    assert (df.punished_so_far == 0).all()  # everyone gave all: nobody gave less
