"""The Mesa face: EconModel hosts the games' own kernels with batch = 1."""

from __future__ import annotations

import mesa
import numpy as np
import pytest
import torch

from econsim import envs
from econsim import scenario as scenario_mod
from econsim.core import reset_done
from econsim.model import EconModel, PlayerAgent, load_trainer, move_order
from econsim.runner import run
from learners.brains import ConstantBrain, RandomBrain, ScriptedBrain, TeamBrain, team_brains

LEVER, START, DOOR = 0, 1, 2


class ReplayBrain:
    """Plays column ``agent.index`` of a fixed action sequence, one row per model step."""

    def __init__(self, actions: np.ndarray) -> None:
        self.actions = actions

    def reset(self) -> None:
        pass

    def act(self, agent) -> int:
        return int(self.actions[agent.model.steps - 1, agent.index])


class GoIfLeverBrain:
    """Asymmetric ER observer: go to the door iff it sees A2 going to the lever now."""

    def reset(self) -> None:
        pass

    def act(self, agent) -> int:
        return int(agent.seen[1] == 1.0)  # seen = one-hot of A2's current action


def _lio_scenario() -> scenario_mod.Scenario:
    return scenario_mod.from_dict({
        "name": "er21_lio_tiny", "seeds": [0],
        "env": {"name": "escape_room", "n_agents": 2, "n_required": 1},
        "algorithm": {"name": "lio", "hidden": [64, 32], "incentive_hidden": [64, 16],
                      "lr": 1e-4, "lr_incentive": 1e-3, "lr_cost": 1e-4, "cost": 1.0,
                      "r_max": 2.0, "entropy": 0.01,
                      "epsilon": {"start": 0.5, "end": 0.1, "steps": 1000}},
        "train": {"iterations": 20, "log_every": 10, "eval_every": 10, "eval_episodes": 5,
                  "checkpoint_every": 10},
    })


@pytest.fixture(scope="module")
def lio_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    result = run(_lio_scenario(), seeds=[0], iterations=20, progress=False, root=root)
    return result, root


def test_model_is_mesa_model_with_player_agents():
    m = EconModel("er32_pg", seed=0)
    assert isinstance(m, mesa.Model)
    assert len(m.agents) == 3 and all(isinstance(a, PlayerAgent) for a in m.agents)
    assert [p.index for p in m.players] == [0, 1, 2]
    assert all(isinstance(p.brain, RandomBrain) for p in m.players)
    assert len(list(m.grid.all_cells)) == 3  # lever, start, door
    assert all(p.cell.coordinate == (START, 0) and p.position == START for p in m.players)
    m.step()
    assert all(p.cell.coordinate == (p.position, 0) for p in m.players)
    ipd = EconModel("ipd_pg", seed=0)
    assert ipd.grid is None and len(ipd.agents) == 2
    assert [p.last_action for p in ipd.players] == [-1, -1]


def test_escape_room_scripted_one_step_optimum():
    m = EconModel("er21_pg", brains=[ConstantBrain(LEVER), ConstantBrain(DOOR)], seed=0)
    m.step()
    assert not m.running and m.episodes_done == 1 and m.t == 1
    assert m.collective_return == 9.0
    assert [p.reward for p in m.players] == [-1.0, 10.0]
    assert [p.action_name for p in m.players] == ["lever", "door"]
    assert [p.cell.coordinate for p in m.players] == [(LEVER, 0), (DOOR, 0)]
    model_df = m.datacollector.get_model_vars_dataframe()
    assert model_df.collective_reward.sum() == 9.0
    assert model_df.collective_return.iloc[-1] == 9.0
    agent_df = m.datacollector.get_agent_vars_dataframe()
    assert agent_df.reward.sum() == 9.0
    last = agent_df.xs(1, level="Step")
    assert last.position.tolist() == [LEVER, DOOR] and last.return_so_far.sum() == 9.0


def test_asymmetric_escape_room_observer_moves_second():
    game = envs.make("escape_room_asym")
    assert move_order(game) == [1, 0]
    m = EconModel(game, brains=[GoIfLeverBrain(), ConstantBrain(1)], seed=0)
    while m.running:
        m.step()
    assert m.t == game.max_steps and m.collective_return == 9.0
    assert m.players[0].seen.tolist() == [0.0, 1.0]
    assert m.datacollector.get_model_vars_dataframe().collective_reward.sum() == 9.0


def test_ipd_all_cooperate():
    m = EconModel("ipd_pg", brains=[ScriptedBrain(lambda obs: 0)] * 2, seed=0)
    df = m.run_episodes(1)
    assert len(df) == 10 and df.step.max() == 5
    assert (df.reward == -1.0).all() and (df.action_name == "cooperate").all()
    assert df.groupby("agent").return_so_far.last().tolist() == [-5.0, -5.0]
    assert not m.running


@pytest.mark.parametrize("name, params", [("escape_room", {"n_agents": 3, "n_required": 2}),
                                          ("ipd", {}), ("escape_room_asym", {})])
def test_same_kernel_same_rewards(name, params):
    game = envs.make(name, **params)
    T = 23
    seq = np.random.default_rng(1).integers(0, game.action_space.n, (T, game.n_agents))
    m = EconModel(game, brains=[ReplayBrain(seq)] * game.n_agents, seed=0)
    mesa_rewards = []
    for _ in range(T):
        m.step()
        mesa_rewards.append([p.reward for p in m.players])
    # the batched kernel, world 0 plays the same sequence, the others random actions
    rng = np.random.default_rng(2)
    B = 4
    state = game.reset(B, rng)
    kernel_rewards = []
    for t in range(T):
        actions = rng.integers(0, game.action_space.n, (B, game.n_agents))
        actions[0] = seq[t]
        step = game.step(state, actions, rng)
        kernel_rewards.append(step.reward[0])
        state = reset_done(game, step.state, step.done & (np.arange(B) == 0), rng)
    np.testing.assert_array_equal(np.array(mesa_rewards), np.array(kernel_rewards))


def test_navigation_agents_move_in_a_continuous_space():
    """A ``Plane`` game: agents stand in a Mesa ContinuousSpace over the game's extent, at
    the kernel's positions (clipped into the extent for display)."""
    from mesa.space import ContinuousSpace

    game = envs.make("navigation", formation="antipodal", max_steps=30)
    m = EconModel(game, brains=[ConstantBrain(a) for a in (2, 1, 4, 3)], seed=0)
    assert isinstance(m.space, ContinuousSpace) and m.grid is None
    assert (m.space.x_min, m.space.x_max, m.space.y_min, m.space.y_max) == game.extent
    assert len(m.space.agents) == 4
    clipped = 0
    for _ in range(45):  # the agents push outwards and leave the extent, a reset brings them back
        m.step()
        d = game.describe(m.state)
        for p in m.players:
            x, y = float(d["x"][0, p.index]), float(d["y"][0, p.index])
            assert (p.x, p.y) == (x, y)
            inside = (-1.5 <= x < 1.5) and (-1.5 <= y < 1.5)
            clipped += not inside
            if inside:
                assert p.pos == (x, y)
            else:
                assert -1.5 <= p.pos[0] < 1.5 and -1.5 <= p.pos[1] < 1.5
                assert p.pos == (min(max(x, -1.5), np.nextafter(1.5, 0)),
                                 min(max(y, -1.5), np.nextafter(1.5, 0)))
    assert clipped and m.episodes_done == 1
    df = m.datacollector.get_agent_vars_dataframe()
    assert {"x", "y", "vx", "vy", "distance", "collisions", "reached"} <= set(df.columns)


def test_same_seed_same_run():
    a = EconModel("er32_pg", seed=5, episodes=3).run_episodes(3)
    b = EconModel("er32_pg", seed=5, episodes=3).run_episodes(3)
    assert a.equals(b) and sorted(a.episode.unique()) == [0, 1, 2]  # 0-based, as runs


def test_batch_run_returns_rows():
    rows = mesa.batch_run(EconModel, parameters={"scenario": "er21_pg", "seed": [0, 1]},
                          iterations=1, max_steps=10, number_processes=1,
                          display_progress=False)
    assert rows and {r["seed"] for r in rows} == {0, 1}
    assert {"collective_return", "episode", "reward", "AgentID"} <= set(rows[0])


def test_team_brains_match_trainer_decide(lio_run):
    result, _ = lio_run
    trainer = result.trainer
    brains = team_brains(trainer, 0)
    assert all(isinstance(b, TeamBrain) for b in brains)
    policy = brains[0].policy
    assert brains[1].policy is policy and policy.charge_giver is False
    m = EconModel(result.scenario, brains=brains, seed=3, episodes=4)
    ref = trainer.replica(0)
    checked = 0
    while m.running:
        snap = None
        if policy._model is m and not m.episode_over:
            snap = (policy.trainer.act_rng.get_state(), policy.given_cum.clone(),
                    policy.joint_observation(m))
        m.step()
        if snap is None:
            continue
        ref.act_rng.set_state(snap[0])
        d = ref.decide(ref.params, snap[2], snap[1], 0.0)
        pay = d.pay[0].detach().double().numpy()
        assert [p.action for p in m.players] == d.env_actions[0].tolist()
        np.testing.assert_allclose([p.incentive_given for p in m.players], pay.sum(1))
        np.testing.assert_allclose([p.incentive_received for p in m.players], pay.sum(0))
        np.testing.assert_allclose([p.total_reward for p in m.players],
                                   [p.reward for p in m.players] + pay.sum(0), rtol=1e-6)
        assert m.incentives_paid == pytest.approx(pay.sum())
        checked += 1
    assert checked >= 3
    assert (m.datacollector.get_model_vars_dataframe().incentives_paid > 0).any()


def test_from_run(lio_run):
    result, root = lio_run
    trainer = load_trainer(result.run_id, root=root)
    for k, v in result.trainer.params.items():
        assert torch.equal(trainer.params[k], v)
    m = EconModel.from_run(result.run_id, seed=0, root=root, episodes=2)
    assert isinstance(m.players[0].brain, TeamBrain)
    df = m.run_episodes(2)
    assert df.episode.nunique() == 2 and df.action.between(0, 2).all()
    with pytest.raises(ValueError, match=r"seed 7 is not one of its seeds \[0\]"):
        EconModel.from_run(result.run_id, seed=7, root=root)
    with pytest.raises(ValueError, match="no such run"):
        EconModel.from_run("nope", root=root)


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_bad_inputs_give_one_line_errors(lio_run):
    with pytest.raises(ValueError, match="got 1 brain") as e:
        EconModel("er21_pg", brains=[ConstantBrain(0)])
    _one_line(e)
    with pytest.raises(ValueError, match="is not a Brain") as e:
        EconModel("er21_pg", brains=[ConstantBrain(0), 3])
    _one_line(e)
    with pytest.raises(ValueError, match="episodes") as e:
        EconModel("er21_pg", episodes=0)
    _one_line(e)
    with pytest.raises(ValueError, match="no such scenario") as e:
        EconModel("not_a_scenario")
    _one_line(e)
    m = EconModel("er21_pg", brains=[ConstantBrain(7), ConstantBrain(0)])
    with pytest.raises(ValueError, match=r"chose 7; actions are integers in 0\.\.2") as e:
        m.step()
    _one_line(e)
    trainer = lio_run[0].trainer
    with pytest.raises(ValueError, match="replica 3 is out of range") as e:
        team_brains(trainer, 3)
    _one_line(e)
    with pytest.raises(ValueError, match="in agent order") as e:
        EconModel(lio_run[0].scenario, brains=team_brains(trainer)[::-1]).step()
    _one_line(e)
    with pytest.raises(ValueError, match="n must be an integer") as e:
        EconModel("ipd_pg").run_episodes(0)
    _one_line(e)


@pytest.mark.parametrize("name", ["er52_fixed_lever", "er52_metagrad"])
def test_a_central_designers_payments_are_replayed(name, tmp_path):
    """A run with a central designer brings it into the Mesa replay: each agent receives the
    offer for what it did (fixed incentives: the scenario's table), nobody is
    charged, and the rewards include it as in training."""
    from econsim import runner

    result = runner.run(name, seeds=[0], progress=False, root=tmp_path, iterations=2)
    m = EconModel.from_run(result.run_id, seed=0, root=tmp_path)
    for _ in range(5):
        m.step()
        got = np.array([p.incentive_received for p in m.players])
        assert all(p.incentive_given == 0 for p in m.players)
        np.testing.assert_allclose([p.total_reward for p in m.players],
                                   np.array([p.reward for p in m.players]) + got)
        assert m.incentives_paid == pytest.approx(got.sum())
        if name == "er52_fixed_lever":  # the scenario's own table: what each action earns
            table = result.scenario.trainer_config().incentives
            np.testing.assert_allclose(got, [table.get(p.action_name, 0.0) for p in m.players])
        else:  # sigmoid offers: something is paid for every action
            assert (got > 0).all()
