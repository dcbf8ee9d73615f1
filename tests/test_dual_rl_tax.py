"""Dual-RL tax planner (learners/dual_rl_tax.py): a PPO planner choosing each bracket's rate
on the 0.05 grid once per tax period, with the curriculum and the annealed rate cap."""

import numpy as np
import pandas as pd
import pytest
import torch

from econsim import envs, runner, scenario
from econsim.errors import ScenarioError
from econsim.model import EconModel
from learners.dual_rl_tax import DualRLTaxConfig, DualRLTaxTrainer

TINY = dict(hidden=[16], planner_hidden=[16], batch=1, epochs=1, minibatches=2)


def _trainer(seeds=(0, 1), **cfg) -> DualRLTaxTrainer:
    return DualRLTaxTrainer(envs.make("gtb"), DualRLTaxConfig(**{**TINY, **cfg}), list(seeds))


def _on_grid(x: np.ndarray, step: float = 0.05) -> bool:
    return bool(np.allclose(x / step, np.round(x / step), atol=1e-9))


def _snapshot(params: dict) -> dict:
    return {k: v.detach().clone() for k, v in params.items()}


def _changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_cap_schedule_and_rates_on_grid():
    tr = _trainer(curriculum_iterations=3, anneal_episodes=10)
    caps = []
    for it in (0, 2, 3, 8, 13, 20):
        tr.iteration = it
        caps.append(tr.tax_cap())
    # phase 1: 0; phase 2 starts at 0.1 and reaches 1 after 10 episodes (batch 1)
    assert caps == pytest.approx([0.0, 0.0, 0.1, 0.1 + 0.9 * 5 / 10, 1.0, 1.0])
    tr.iteration = 3
    ro = tr.run_episodes(4)
    rates = ro.rates  # [T, RB, K] in force at every step
    assert rates.shape == (100, 2 * 4, 7)
    assert _on_grid(rates) and rates.min() >= 0 and rates.max() <= 0.1 + 1e-12
    assert (rates > 0).any()  # the planner does act
    # constant within a period, one schedule per world
    per = rates.reshape(10, 10, 8, 7)
    assert (per == per[:, :1]).all()
    tr.iteration = 8  # cap 0.55 -> choices 0 .. 0.55
    rates = tr.run_episodes(4).rates
    assert _on_grid(rates) and rates.max() <= 0.55 + 1e-12 and rates.max() > 0.1
    uncapped = _trainer().run_episodes(4).rates
    assert _on_grid(uncapped) and uncapped.max() > 0.55 and uncapped.max() <= 1.0


def test_phase_one_is_a_free_market_then_the_planner_learns():
    tr = _trainer(curriculum_iterations=1, anneal_episodes=4)
    planner, agents = _snapshot(tr.pparams), _snapshot(tr.params)
    m = tr.iterate()  # phase 1
    assert all((m[f"rate_{k}"] == 0).all() for k in range(7))
    assert (m["tax_cap"] == 0).all() and (m["tax_revenue"] == 0).all()
    assert (m["planner_entropy"] == 0).all()
    assert not _changed(planner, tr.pparams)  # the planner neither acts nor learns
    assert _changed(agents, tr.params)  # the agents do
    agents = _snapshot(tr.params)
    m = tr.iterate()  # phase 2: the planner acts under cap 0.1 and takes a PPO step
    assert (m["tax_cap"] == pytest.approx(0.1))
    rate_means = np.stack([m[f"rate_{k}"] for k in range(7)], 1)
    assert rate_means.shape == (2, 7) and (rate_means <= 0.1).all() and (rate_means > 0).any()
    assert _changed(planner, tr.pparams) and _changed(agents, tr.params)
    for k in ("planner_policy_loss", "planner_value_loss", "planner_entropy",
              "planner_reward"):
        assert m[k].shape == (2,) and np.isfinite(m[k]).all()
    assert (m["planner_entropy"] > 0).all()
    # the planner's reward is 0.01 x the episode's sum_t prod_t eq_t
    assert np.allclose(m["planner_reward"], 0.01 * m["welfare_sum"], rtol=1e-5)
    # each replica's planner has its own parameters (one planner per seed)
    w = tr.pparams["pi.w0"]
    assert w.shape[0] == 2 and not torch.equal(w[0], w[1])


def test_welfare_change_reward_telescopes():
    tr = _trainer(planner_reward="welfare_change")
    ro = tr.run_episodes(2)
    r = tr.planner_rewards(ro.info)  # [P, RB]
    from econsim import metrics
    coin = ro.info["coin"]
    start = metrics.social_welfare(np.full(coin.shape[1:], 10.0))
    assert np.allclose(r.sum(0), 0.01 * (metrics.social_welfare(coin[-1]) - start))


def test_state_dict_round_trip_reproduces_next_iteration():
    a = _trainer(anneal_episodes=3)
    a.iterate()
    state = a.state_dict()
    m_a = a.iterate()
    b = _trainer(anneal_episodes=3)
    b.load_state_dict(state)
    m_b = b.iterate()
    assert m_a.keys() == m_b.keys()
    for k in m_a:
        np.testing.assert_allclose(m_a[k], m_b[k], rtol=1e-6, err_msg=k)
    for k in a.pparams:
        assert torch.equal(a.pparams[k], b.pparams[k]), k
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k]), k


def test_run_writes_periods_with_planner_rates(tmp_path):
    data = scenario.load("gtb_dualrl_curriculum").resolved()
    data["algorithm"].update(**TINY, curriculum_iterations=1, anneal_episodes=2)
    data["train"].update(iterations=2, log_every=1, eval_every=1, eval_episodes=2,
                         checkpoint_every=2)
    sc = scenario.from_dict(data, "tiny")
    result = runner.run(sc, seeds=[0, 1], progress=False, root=tmp_path)
    periods = pd.read_parquet(result.path / "periods.parquet")
    # evaluations after iteration 1 (phase 2 starts, cap 0.1) and 2 (cap 0.55)
    assert len(periods) == 2 * 2 * 2 * 10 * 4
    rates = periods[[f"rate_{k}" for k in range(7)]].to_numpy()
    assert _on_grid(rates)
    first = periods.iteration == 1
    assert rates[first.to_numpy()].max() <= 0.1 + 1e-12
    assert rates[(~first).to_numpy()].max() <= 0.55 + 1e-12 and rates.max() > 0
    sums = periods.groupby(["iteration", "seed", "episode", "period"])[["tax", "transfer"]].sum()
    assert np.allclose(sums.tax, sums.transfer)
    ep = result.episodes
    assert {f"rate_{k}" for k in range(7)} | {"tax_cap", "planner_reward"} <= set(ep.columns)
    train = ep.query("phase == 'train'").sort_values("iteration")
    assert (train[train.iteration == 1].rate_0 == 0).all()  # phase 1 logged as free market
    # a dual-RL scenario refuses a separate tax mechanism
    data["mechanism"] = {"name": "us_federal"}
    with pytest.raises(ScenarioError, match="does not take a tax mechanism"):
        scenario.from_dict(data, "x.toml")


def test_planner_sets_rates_in_the_mesa_face():
    tr = _trainer(seeds=(0,))
    model = EconModel(scenario.load("gtb_dualrl"), seed=0, mechanism=tr.tax_mechanism(0))
    for _ in range(12):
        model.step()
    rates = np.asarray(model.tax_rates)
    assert rates.shape == (7,) and _on_grid(rates) and 0 < rates.max() <= 1.0
