"""MetaGrad tax designer for Gather-Trade-Build (Diss §6.2-6.3, Algorithm 3; SPEC §5)."""


import numpy as np
import pandas as pd
import pytest
import torch

from econsim import checkpoint, envs, metrics, runner, scenario
from econsim.model import EconModel
from learners.metagrad_gtb import AdamMoments, MetaGradTaxConfig, MetaGradTaxTrainer
from mechanisms.tax import bracket_tax

TINY = dict(hidden=[8], designer_hidden=[6], designer_value_hidden=[6])


def _trainer(seeds=(0,), batch=1, game=None, **kw):
    game = game or envs.make("gtb", max_steps=20, period_length=5)
    cfg = MetaGradTaxConfig(**{**TINY, "batch": batch, **kw})
    return MetaGradTaxTrainer(game, cfg, list(seeds))


def _used(tr, ro):
    return torch.as_tensor(ro.rates[::tr.L])


def test_recomputed_rewards_match_the_kernel_including_the_cap():
    """Rewards rebuilt in torch from the used rates equal the kernel's, also where the tax
    was capped at the coin available (rates ~1 make the cap bind)."""
    tr = _trainer(batch=8, game=envs.make("gtb"))
    with torch.no_grad():  # saturate the sigmoid: every rate 1
        tr.eta["w0"].abs_()
        tr.eta["w1"].abs_().mul_(100.0)
    ro = tr.run_episodes(8)
    L = tr.L
    income = ro.info["income"][L - 1::L]
    due = bracket_tax(income, tr.game.cutoffs, ro.rates[::L])
    capped = ro.info["tax"][L - 1::L] < due - 1e-9
    assert capped.any() and (ro.info["tax"] > 0).any()
    out = tr.recompute(ro, _used(tr, ro))
    # torch's exp(e log z) and numpy's z ** e agree to a few ulps of float64
    torch.testing.assert_close(out["rewards"].float(), ro.rewards, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["utility"].numpy(), ro.info["utility"], atol=1e-10)
    np.testing.assert_allclose(out["coin"].numpy(), ro.info["coin"], atol=1e-10)
    # and with the designer's own (recomputed) rates the difference is float32 noise
    assert (tr.rewards_of(tr.eta, ro).float() - ro.rewards).abs().max() < 1e-4


def test_recompute_derivative_matches_finite_differences():
    tr = _trainer(batch=8, game=envs.make("gtb"))
    with torch.no_grad():
        tr.eta["w0"].abs_()
        tr.eta["w1"].abs_().mul_(100.0)
    ro = tr.run_episodes(8)
    # just inside the used rates (all 1): at rate 1 a tax due can equal the coin available
    # exactly, a kink of min(due, cap) where a central difference averages two slopes
    rates = (_used(tr, ro) * 0.99).clone().requires_grad_(True)
    weights = torch.randn(ro.rewards.shape, generator=torch.Generator().manual_seed(0),
                          dtype=torch.float64)
    f = lambda r: (tr.recompute(ro, r)["rewards"] * weights).sum()  # noqa: E731
    (analytic,) = torch.autograd.grad(f(rates), rates)
    d = torch.randn(rates.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = 1e-6
    with torch.no_grad():
        numeric = (f(rates + h * d) - f(rates - h * d)) / (2 * h)
    assert abs((analytic * d).sum()) > 1e-3
    assert torch.isclose((analytic * d).sum(), numeric, rtol=1e-6)


def test_rates_are_in_unit_interval_and_recorded_per_period():
    tr = _trainer(batch=2)
    ro = tr.run_episodes(2)
    assert ro.rates.shape == (20, 2, 7)
    assert ((ro.rates >= 0) & (ro.rates <= 1)).all()
    per = ro.rates.reshape(4, 5, 2, 7)
    assert (per == per[:, :1]).all()  # set at each period's start, constant within it
    again = tr.designer_rates(tr.eta, ro.info["designer_obs"]).detach().double().numpy()
    np.testing.assert_allclose(again, per[:, 0], atol=1e-6)
    table = tr.period_table(ro, 2)
    np.testing.assert_allclose(table.sort_values(["replica", "episode", "period", "agent"])
                               .rate_3.to_numpy()[::4], per[:, 0, :, 3].T.ravel())


def test_copy_step_is_one_adam_step_of_the_ppo_update():
    """The differentiable copy equals PPOTrainer.update with one full-batch step (current
    moments, bias correction), after some training so the moments are not zero."""
    tr = _trainer(seeds=(0, 1), batch=2, epochs=1, minibatches=1)
    tr.iterate()
    tau = tr.tau
    theta = {k: v.detach().clone() for k, v in tr.sub("pi").items()}
    moments = tr.policy_moments()
    assert moments.step > 0 and all(v.abs().sum() > 0 for v in moments.v.values())
    with torch.no_grad():
        copy = tr.copy_step(theta, moments, tr.recompute(tau, _used(tr, tau))["rewards"], tau)
    tr.update(tau)
    for k, v in tr.sub("pi").items():
        real, mine = v.detach() - theta[k], copy[k] - theta[k]
        assert real.abs().max() > 0
        torch.testing.assert_close(mine, real, rtol=1e-3, atol=1e-3 * moments.lr)


def _double(params):
    return {k: v.detach().double().requires_grad_(True) for k, v in params.items()}


@pytest.mark.parametrize("outer", ["copy", "prime"])
def test_meta_gradient_matches_finite_differences(outer):
    """d(designer loss)/d eta through the rates, the taxes, the rewards, GAE and one Adam
    step of the agents equals a central difference (float64, one world, 20 steps)."""
    tr = _trainer(seeds=(1,), batch=1, epochs=1, minibatches=1)
    tr.iterate()  # non-zero Adam moments
    tau = tr.tau
    assert tau.info["tax"].sum() > 0
    theta = {k: v.detach().clone() for k, v in tr.sub("pi").items()}
    m = tr.policy_moments()
    moments = AdamMoments(m.step, _double(m.m), _double(m.v), m.lr, m.betas, m.eps)
    tr.update(tau)
    prime = {k: v.detach().double() for k, v in tr.sub("pi").items()}
    tau_hat = tr.run_episodes(1)
    adv, _ = tr.designer_advantages(tau_hat)
    adv = adv.double()
    eta, theta = _double(tr.eta), _double(theta)
    theta = {k: v.detach() for k, v in theta.items()}
    grads, _ = tr.meta_gradient(eta, theta, moments, tau, tau_hat, adv,
                                prime if outer == "prime" else None)
    with torch.no_grad():
        copy0 = tr.copy_step(theta, moments, tr.rewards_of(eta, tau), tau)

    def outer_loss(e):
        c = tr.copy_step(theta, moments, tr.rewards_of(e, tau), tau)
        at = c if outer == "copy" else {k: prime[k] + c[k] - copy0[k] for k in c}
        return tr.outer_loss(at, tau_hat, adv).sum()

    gen = torch.Generator().manual_seed(0)
    d = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in eta.items()}
    h = 1e-5
    with torch.no_grad():
        numeric = (outer_loss({k: v + h * d[k] for k, v in eta.items()})
                   - outer_loss({k: v - h * d[k] for k, v in eta.items()})) / (2 * h)
    analytic = sum((g * d[k]).sum() for g, k in zip(grads, eta, strict=True))
    assert abs(analytic) > 1e-6, "degenerate check: gradient is zero"
    assert torch.isclose(analytic, numeric, rtol=1e-4), (analytic, numeric)


def test_direct_welfare_matches_metrics_and_adds_a_gradient():
    tr = _trainer(batch=2, direct=True)
    ro = tr.run_episodes(2)
    coin = torch.as_tensor(ro.info["coin"])
    np.testing.assert_allclose(tr.welfare(coin).numpy(), metrics.social_welfare(ro.info["coin"]))
    ret = tr.direct_return(tr.eta, ro)
    assert ret.shape == (1,)
    grads = torch.autograd.grad(ret.sum(), list(tr.eta.values()))
    assert sum(g.abs().sum() for g in grads) > 0
    out = tr.iterate()
    assert np.isfinite(out["designer_loss"]).all()


def test_state_dict_round_trip_reproduces_the_next_iteration(tmp_path):
    a = _trainer(seeds=(0, 1), batch=1, epochs=1, minibatches=2)
    eta0 = {k: v.detach().clone() for k, v in a.eta.items()}
    a.iterate()  # the agents' Adam had no moments: no designer step yet
    assert all(torch.equal(v, eta0[k]) for k, v in a.eta.items())
    checkpoint.save(tmp_path / "last.pt", a.state_dict())  # plain data, weights-only load
    saved = checkpoint.load(tmp_path / "last.pt")
    out_a = a.iterate()
    b = _trainer(seeds=(0, 1), batch=1, epochs=1, minibatches=2)
    b.load_state_dict(saved)
    out_b = b.iterate()
    for k in out_a:
        np.testing.assert_array_equal(out_a[k], out_b[k], err_msg=k)
    for name in ("params", "eta", "phi"):
        for k, v in getattr(a, name).items():
            assert torch.equal(v, getattr(b, name)[k]), (name, k)
    np.testing.assert_array_equal(a.tau.rates, b.tau.rates)
    assert not all(torch.equal(v, eta0[k]) for k, v in a.eta.items())


def test_runner_writes_periods_with_the_designers_rates(tmp_path):
    data = scenario.load("gtb_metagrad").resolved()
    assert "mechanism" not in data
    data["env"].update(max_steps=20, period_length=5)
    data["algorithm"].update(batch=1, epochs=1, minibatches=2, **TINY)
    data["train"].update(iterations=2, log_every=1, eval_every=2, eval_episodes=2,
                         checkpoint_every=2)
    sc = scenario.from_dict(data, "tiny")
    result = runner.run(sc, seeds=[0, 1], progress=False, root=tmp_path)
    periods = pd.read_parquet(result.path / "periods.parquet")
    assert len(periods) == 2 * 2 * 4 * 4  # seeds x episodes x periods x agents
    rates = periods[[f"rate_{k}" for k in range(7)]].to_numpy()
    assert ((rates > 0) & (rates < 1)).all()
    sums = periods.groupby(["seed", "episode", "period"])[["tax", "transfer"]].sum()
    assert np.allclose(sums.tax, sums.transfer)
    ep = result.episodes
    assert {"rate_0", "designer_loss", "designer_return", "welfare_sum"} <= set(ep.columns)
    # the trained designer drives a Mesa world
    model = EconModel(sc, seed=0, mechanism=result.trainer.tax_mechanism(1))
    model.step()
    assert len(model.tax_rates) == 7 and 0 < min(model.tax_rates) <= max(model.tax_rates) < 1


def test_refuses_a_mechanism_and_non_economies():
    data = scenario.load("gtb_metagrad").resolved()
    data["mechanism"] = {"name": "us_federal"}
    with pytest.raises(Exception, match="does not take a tax mechanism"):
        scenario.from_dict(data, "x.toml")
    with pytest.raises(ValueError, match="has no taxes"):
        MetaGradTaxTrainer(envs.make("escape_room", n_agents=2, n_required=1),
                           MetaGradTaxConfig(), [0])
