"""MetaGrad incentive designer (Diss eqs. 6.3-6.6, Algorithm 3) and the dual-RL baselines."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from econsim import envs, runner
from learners.dual_rl import DualRLCConfig, DualRLCTrainer, DualRLDConfig, DualRLDTrainer
from learners.functional import reward_to_go
from learners.metagrad import MetaGradConfig, MetaGradTrainer
from learners.nets import detach
from tests.reference import small

ROOT = Path(__file__).resolve().parents[1]


def _game(n=3, m=1):
    return envs.make("escape_room", n_agents=n, n_required=m)


def _mg(seeds=(0,), n=3, m=1, **kw):
    return MetaGradTrainer(_game(n, m), MetaGradConfig(**kw), list(seeds))


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_meta_gradient_matches_finite_differences(float64):
    """d(outer loss)/d eta through the agents' one-step update equals a central difference."""
    torch.manual_seed(0)
    tr = _mg(seeds=(0, 1), batch=4, lr=0.05, hidden=[8], designer_hidden=[8, 4])
    tau = tr.run_episodes(tr.params, 0.0, 4)
    prime = tr.prime_update(tr.designer.eta, tau, 0.0)
    tau_hat = tr.run_episodes(detach(prime), 0.0, 4)
    loss = tr.designer_loss(prime, tau_hat, 0.0)
    grads = torch.autograd.grad(loss, list(tr.designer.eta.values()))
    direction = {k: torch.randn_like(v) for k, v in tr.designer.eta.items()}
    h = 1e-6  # the loss is piecewise smooth (ReLU kinks): a small step stays on one piece

    def outer(eta):
        return tr.designer_loss(tr.prime_update(eta, tau, 0.0), tau_hat, 0.0)

    with torch.no_grad():
        numeric = (outer({k: v + h * direction[k] for k, v in tr.designer.eta.items()})
                   - outer({k: v - h * direction[k] for k, v in tr.designer.eta.items()})) / (2 * h)
    analytic = sum((g * direction[k]).sum() for g, k in zip(grads, tr.designer.eta, strict=True))
    assert abs(analytic) > 1e-4, "degenerate check: gradient is zero"
    assert torch.isclose(analytic, numeric, rtol=1e-4), (analytic, numeric)
    # eta reaches the outer loss only through theta_hat: without the update, no gradient
    frozen = tr.designer_loss(detach(prime), tau_hat, 0.0)
    assert all(g is None for g in torch.autograd.grad(frozen, list(tr.designer.eta.values()),
                                                      allow_unused=True))


def test_replica_designers_are_independent():
    """Each replica's designer gradient comes from its own agents only."""
    two = _mg(seeds=(3, 5), batch=2)
    tau = two.run_episodes(two.params, 0.0, 2)
    prime = two.prime_update(two.designer.eta, tau, 0.0)
    tau_hat = two.run_episodes(detach(prime), 0.0, 2)
    grads = torch.autograd.grad(two.designer_loss(prime, tau_hat, 0.0),
                                list(two.designer.eta.values()))
    # zero out replica 1's outcomes: replica 0's gradient is unchanged
    tau_hat.env_rewards[:, 2:] = 0.0
    again = torch.autograd.grad(two.designer_loss(two.prime_update(two.designer.eta, tau, 0.0),
                                                  tau_hat, 0.0), list(two.designer.eta.values()))
    for g, a in zip(grads, again, strict=True):
        assert torch.allclose(g[0], a[0])


def test_incentives_per_action_type_bounded_and_paid_by_designer():
    tr = _mg(seeds=(0, 1))
    b = tr.run_episodes(tr.params, 0.0, 8)
    offer, inc, mask = b.extra["offer"], b.extra["incentive"], b.mask[..., None]
    assert offer.shape[-1] == 3 and (offer > 0).all() and (offer < tr.cfg.r_max).all()
    # the value for the action taken, nothing after the episode's end
    assert torch.equal(inc, offer.gather(-1, b.env_actions) * mask)
    same = b.env_actions[..., 0] == b.env_actions[..., 1]
    assert torch.equal(inc[..., 0][same], inc[..., 1][same])
    recomputed = tr.designer.incentives(tr.designer.eta, b)
    assert torch.allclose(recomputed, inc * mask)  # recomputed = recorded
    assert (b.transfers == 0).all()  # no agent pays anything
    assert torch.allclose(tr.total_rewards(b), b.env_rewards + inc * mask)  # nobody charged
    m = tr.metrics(b)
    assert (m["given"] == 0).all() and (m["received"] > 0).all()
    assert np.allclose(m["incentives"], m["received"].sum(1))
    assert np.allclose(m["collective"], m["extrinsic"] - m["incentives"])
    assert np.allclose(m["extrinsic"], m["return"].sum(1))
    assert {"offer_lever", "offer_start", "offer_door"} <= set(m)


@pytest.mark.parametrize("kw", [{}, {"cost_form": "outputs"}, {"lr_cost": None}, {"cost": 0.0}])
def test_iterations_run_and_learn(kw):
    tr = _mg(seeds=(0, 1), **kw)
    eta0 = {k: v.detach().clone() for k, v in tr.designer.eta.items()}
    theta0 = {k: v.detach().clone() for k, v in tr.params.items()}
    for _ in range(3):
        m = tr.iterate()
    assert all(np.isfinite(v).all() for v in m.values())
    assert any(not torch.equal(eta0[k], tr.designer.eta[k]) for k in eta0)
    assert any(not torch.equal(theta0[k], tr.params[k]) for k in theta0)


def test_cost_pushes_incentives_down():
    tr = _mg(seeds=(0,), lr_cost=1e-2)
    tau = tr.run_episodes(tr.params, 0.0, 8)
    before = tr.designer.cost(tr.designer.eta, tau)
    grads = torch.autograd.grad(before, list(tr.designer.eta.values()))
    with torch.no_grad():
        eta = tr.designer.eta
        after = tr.designer.cost({k: v - 1e-2 * g
                                  for (k, v), g in zip(eta.items(), grads, strict=True)}, tau)
    assert after < before


def test_state_dict_round_trip_reproduces_next_iteration():
    tr = _mg(seeds=(0, 1))
    for _ in range(3):
        tr.iterate()
    state = tr.state_dict()
    expected = tr.iterate()
    other = _mg(seeds=(0, 1))
    other.load_state_dict(state)
    got = other.iterate()
    for k in expected:
        assert np.array_equal(expected[k], got[k]), k
    for k in tr.designer.eta:
        assert torch.equal(tr.designer.eta[k], other.designer.eta[k])
    for k in tr.params:
        assert torch.equal(tr.params[k], other.params[k])


def test_evaluation_does_not_change_training_and_replica_acts():
    a, b = _mg(seeds=(0, 1)), _mg(seeds=(0, 1))
    for i in range(3):
        ma = a.iterate()
        if i == 1:
            b.evaluate(5)
        mb = b.iterate()
    assert np.array_equal(ma["collective"], mb["collective"])
    one = a.replica(1)
    for k in a.designer.eta:
        assert torch.equal(one.designer.eta[k][0], a.designer.eta[k][1])
    assert one.evaluate(3)["collective"].shape == (1,)


def test_runs_through_runner(tmp_path):
    sc = small("er52_metagrad", 4, log_every=2, eval_every=2, eval_episodes=5)
    result = runner.run(sc, seeds=[0, 1], progress=False, root=tmp_path)
    final = result.final()
    assert len(final) == 2 and final.collective.notna().all()
    assert {"extrinsic", "incentives", "offer_lever", "offer_door"} <= set(final.columns)
    agents = result.agents
    assert (agents.given == 0).all() and set(agents.kind) == {"pg"}


def _trains_then_plays(tr):
    """Three iterations move the designer and keep metrics finite; then 16 episodes."""
    eta0 = {k: v.detach().clone() for k, v in tr.designer.eta.items()}
    for _ in range(3):
        m = tr.iterate()
    assert all(np.isfinite(v).all() for v in m.values())
    assert any(not torch.equal(eta0[k], tr.designer.eta[k]) for k in eta0)
    return tr.run_episodes(tr.params, 0.0, 16)


@pytest.mark.parametrize("values", [[0.0, 1.1], [0.0, 1.1, 2.0], [0.0, 0.5, 1.0, 1.5, 2.0]])
def test_dual_rl_d_pays_only_values_from_its_set(values):
    tr = DualRLDTrainer(_game(), DualRLDConfig(incentive_values=values), [0, 1])
    choices = tr.designer.decode_choice(torch.arange(len(values) ** 3))
    assert len({tuple(c.tolist()) for c in choices}) == len(values) ** 3  # |S|^3 joint choices
    b = _trains_then_plays(tr)
    allowed = torch.tensor(values)
    assert torch.isin(b.extra["offer"], allowed).all()
    assert torch.isin(b.extra["incentive"], allowed).all()
    assert torch.equal(b.extra["offer"], tr.designer.decode_choice(b.extra["des_choice"]))
    assert torch.equal(b.extra["incentive"],
                       b.extra["offer"].gather(-1, b.env_actions) * b.mask[..., None])
    assert (b.transfers == 0).all()


def test_dual_rl_c_pays_squashed_gaussian_per_action_type():
    tr = DualRLCTrainer(_game(), DualRLCConfig(), [0, 1])
    b = _trains_then_plays(tr)
    offer, r_max = b.extra["offer"], tr.cfg.r_max
    assert offer.shape[-1] == 3 and (offer > 0).all() and (offer < r_max).all()
    assert torch.allclose(offer, r_max * torch.sigmoid(b.extra["des_u"]))
    assert torch.equal(b.extra["incentive"], offer.gather(-1, b.env_actions) * b.mask[..., None])


def test_dual_rl_designer_learns_from_collective_return_minus_paid():
    """REINFORCE with r_ID = sum_i r_env - sum_i paid and log N(u; mu, 1) (§6.3.2)."""
    tr = DualRLCTrainer(_game(), DualRLCConfig(), [0])
    b = tr.run_episodes(tr.params, 0.0, 4)
    r_id = (b.env_rewards.sum(-1) - b.extra["incentive"].sum(-1)) * b.mask
    G = reward_to_go(r_id, tr.cfg.gamma)
    mu = tr.designer.view.net(tr.designer.eta, b.extra["des_in"])
    logp = torch.distributions.Normal(mu, 1.0).log_prob(b.extra["des_u"]).sum(-1)
    expected = -(logp * G * b.mask).sum(0).mean()
    assert torch.isclose(tr.designer.loss(tr.designer.eta, b), expected)


def test_dual_rl_config_refuses_values_outside_range():
    with pytest.raises(ValueError, match="r_max"):
        DualRLDConfig(incentive_values=[0.0, 3.0])
    with pytest.raises(ValueError, match="distinct"):
        DualRLDConfig(incentive_values=[1.1, 1.1])


def test_benchmark_runs_on_a_tiny_budget(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "metagrad_escape_room", ROOT / "benchmarks" / "metagrad_escape_room.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    df = mod.main(["--iterations", "2", "--seeds", "0", "--root", str(tmp_path), "--quiet",
                   "--dual"])
    assert set(df.scenario) == {f"{g}_{m}" for g in ("er52", "er105")
                                for m in ("metagrad", "dualrl_d", "dualrl_c")}
    assert df.collective.notna().all() and df.incentives.notna().all()
    assert "Summary" in capsys.readouterr().out
