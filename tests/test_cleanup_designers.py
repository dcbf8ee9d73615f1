"""Central incentive designers in Cleanup: MetaGrad and dual-RL (c) over shared actor-critic
agents (Diss §6.3.2, Table C.3; issue 5), the game's designer view and GAE."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from econsim import envs, scenario
from learners import default_kind, trainer_class
from learners.designer_ac import DualRLCACTrainer, MetaGradACConfig, MetaGradACTrainer
from learners.functional import gae, next_step, reward_to_go, td_errors
from learners.nets import detach

DESIGNERS = ["cleanup7_metagrad", "cleanup7_dualrl"]


def _trainer(name: str, seeds=(0, 1), **override):
    data = scenario.load(name).resolved()
    game = envs.make("cleanup", **{k: v for k, v in data["env"].items() if k != "name"})
    alg = data["algorithm"]
    T = trainer_class(alg["name"])
    cfg = {k: v for k, v in alg.items() if k != "name"}
    cfg.setdefault("agents", [default_kind(alg["name"])] * game.n_agents)
    return T(game, T.Config(**{**cfg, **override}), list(seeds))


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


# --------------------------------------------------------------------- the game's rules
def test_incentive_types_by_hand():
    game = envs.make("cleanup", map="7x7")
    assert game.incentive_types == ("clean", "collect", "else")
    actions = np.array([[5, 0], [4, 2], [5, 5], [1, 3]])
    rewards = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(game.incentive_type(actions, rewards),
                                  [[0, 1], [1, 2], [0, 0], [2, 2]])
    np.testing.assert_array_equal(game.action_features(np.array([[5, 4]])),
                                  [[[0.0, 1.0], [1.0, 0.0]]])


def test_global_features_are_the_flat_global_image():
    game = envs.make("cleanup", map="10x10")
    state = game.reset(3, np.random.default_rng(0))
    g = game.global_features(state)
    assert g.shape == (3, game.global_size) == (3, 10 * 10 * 3)
    np.testing.assert_array_equal(g, game.global_image(state).reshape(3, -1))


# ----------------------------------------------------------------------------- GAE
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(0, 3), st.floats(0.5, 1.0), st.integers(0, 2**31 - 1))
def test_gae_limits(T, dead, gamma, seed):
    """lambda = 1 with V = 0 is the reward-to-go; lambda = 0 is the TD(0) error."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(T + dead, 2)
    mask[T:, 1] = 0.0  # world 1 ends after T steps
    r = torch.randn(T + dead, 2, generator=g) * mask
    v = torch.randn(T + dead, 2, generator=g) * mask
    torch.testing.assert_close(gae(r, torch.zeros_like(v), mask, gamma, 1.0),
                               reward_to_go(r, gamma))
    torch.testing.assert_close(gae(r, v, mask, gamma, 0.0),
                               td_errors(r, v, next_step(v), mask * (1 - next_step(mask)),
                                         mask, gamma))


# ------------------------------------------------------------------------ the designers
@pytest.mark.parametrize("name", DESIGNERS)
def test_designer_scenarios_follow_table_c3(name):
    tr = _trainer(name, seeds=(0,))
    assert tr.agents.share and tr.kinds == ["ac", "ac"] and tr.params["pi.w0"].shape[0] == 1
    assert tr.designer.view.types == ("clean", "collect", "else") and tr.designer.view.K == 3
    assert tr.designer.view.des_dim == 7 * 7 * 3 + 2 * 2  # global image + who-cleaned one-hots
    assert tr.cfg.designer_critic and tr.designer.critic.phi is not None
    assert tr.cfg.gae_lambda == 0.99
    table = {"cleanup7_metagrad": (0.129, 6.73e-4, 5.54e-4, 1.24e-5, 2.4e-5),
             "cleanup7_dualrl": (0.173, 6.23e-4, 4.46e-4, 1.15e-5, 1.72e-5)}[name]
    c = tr.cfg
    assert (c.entropy, c.lr, c.lr_critic, c.lr_designer, c.lr_designer_critic) == table
    assert c.epsilon.start == 1.0 and c.epsilon.steps == 100


@pytest.mark.parametrize("name", DESIGNERS)
def test_designer_pays_per_action_type_and_nobody_is_charged(name):
    tr = _trainer(name)
    b = tr.run_episodes(tr.params, 0.5, 3)
    offer, inc, types = b.extra["offer"], b.extra["incentive"], b.extra["types"]
    mask = b.mask[..., None]
    assert offer.shape == b.mask.shape + (3,) and (offer > 0).all()
    assert (offer < tr.cfg.r_max).all()
    want = tr.game.incentive_type(b.env_actions.numpy(), b.env_rewards.numpy())
    np.testing.assert_array_equal(types.numpy(), want)
    torch.testing.assert_close(inc, offer.gather(-1, types) * mask)
    assert (b.transfers == 0).all()
    torch.testing.assert_close(tr.total_rewards(b), b.env_rewards + inc)
    # the designer saw the state each step was taken in and who cleaned
    assert b.extra["global"].shape == b.mask.shape + (tr.game.global_size,)
    state_dim = tr.designer.view.state_dim
    cleaned = b.extra["des_in"][..., state_dim:].reshape(*b.mask.shape, 2, 2)[..., 1]
    torch.testing.assert_close(cleaned, (b.env_actions == 5).float())
    m = tr.metrics(b)
    assert {"offer_clean", "offer_collect", "offer_else"} <= set(m)
    np.testing.assert_allclose(m["collective"], m["extrinsic"] - m["incentives"], rtol=1e-6)
    if name == "cleanup7_metagrad":
        recomputed = tr.designer.incentives(tr.designer.eta, b)
        torch.testing.assert_close(recomputed, inc)  # recomputed = recorded


@pytest.mark.parametrize("cut_off", [True, False])
def test_metagrad_ac_meta_gradient_matches_finite_differences(float64, cut_off):
    """d(outer loss)/d eta through the shared actor-critic agents' one-step update (eq. 6.3,
    TD-error weights) equals a central difference, with the last step bootstrapped (the
    scenario's ``bootstrap_time_limit``) or terminal; without the update there is none.
    The step is 1e-6: the ReLU networks' kinks lie within 1e-5 of eta for some directions
    (measured: 7 of 30 seeds at 1e-5 with the bootstrap, none at 1e-6)."""
    tr = _trainer("cleanup7_metagrad", seeds=(0, 1), hidden=[8], designer_hidden=[8, 4],
                  lr=0.05, bootstrap_time_limit=cut_off)
    eps = 0.3
    tau = tr.run_episodes(tr.params, eps, 2)
    prime = tr.prime_update(tr.designer.eta, tau, eps)
    tau_hat = tr.run_episodes(detach(prime), eps, 2)
    grads = torch.autograd.grad(tr.designer_loss(prime, tau_hat, eps),
                                list(tr.designer.eta.values()))
    direction = {k: torch.randn_like(v) for k, v in tr.designer.eta.items()}
    h = 1e-6

    def outer(eta):
        return tr.designer_loss(tr.prime_update(eta, tau, eps), tau_hat, eps)

    with torch.no_grad():
        numeric = (outer({k: v + h * direction[k] for k, v in tr.designer.eta.items()})
                   - outer({k: v - h * direction[k] for k, v in tr.designer.eta.items()})) / (2 * h)
    analytic = sum((g * direction[k]).sum() for g, k in zip(grads, tr.designer.eta, strict=True))
    assert abs(analytic) > 1e-6, "degenerate check: gradient is zero"
    assert torch.isclose(analytic, numeric, rtol=1e-4), (analytic, numeric)
    frozen = tr.designer_loss(detach(prime), tau_hat, eps)
    assert all(g is None for g in torch.autograd.grad(frozen, list(tr.designer.eta.values()),
                                                      allow_unused=True))


def test_designer_weights_are_gae_of_the_designer_reward():
    tr = _trainer("cleanup7_metagrad", seeds=(0,))
    b = tr.run_episodes(tr.params, 0.5, 2)
    for v in tr.designer.critic.phi.values():  # V_ID = 0: lambda = 1 gives the reward-to-go of R^ID
        v.data.zero_()
    tr.cfg.gae_lambda = 1.0
    r_id = b.env_rewards.sum(-1) * b.mask  # MetaGrad: extrinsic only at train time
    torch.testing.assert_close(tr.designer.advantages(b), reward_to_go(r_id, tr.cfg.gamma))
    dual = _trainer("cleanup7_dualrl", seeds=(0,))
    b = dual.run_episodes(dual.params, 0.5, 2)
    torch.testing.assert_close(dual.designer.rewards(b), (b.env_rewards.sum(-1)
                               - b.extra["incentive"].sum(-1)) * b.mask)


@pytest.mark.parametrize("name", DESIGNERS)
def test_designer_iteration_moves_designer_critics_and_targets(name):
    torch.manual_seed(0)
    tr = _trainer(name)
    snap = lambda d: {k: v.detach().clone() for k, v in d.items()}  # noqa: E731
    des, dc = tr.designer, tr.designer.critic
    eta, phi, phi_t = snap(des.eta), snap(dc.phi), snap(dc.phi_target)
    critic = snap(tr.agents.critic)
    m = tr.iterate()
    for before, now in ((eta, des.eta), (phi, dc.phi), (critic, tr.agents.critic)):
        assert any(not torch.equal(before[k], now[k]) for k in before)
    tau = tr.cfg.designer_tau
    for k in phi_t:  # soft target update of the designer critic
        torch.testing.assert_close(dc.phi_target[k], tau * dc.phi[k].detach()
                                   + (1 - tau) * phi_t[k])
    for k in ("collective", "extrinsic", "incentives", "value_loss", "designer_value_loss",
              "apples", "waste_cleaned", "offer_clean"):
        assert np.all(np.isfinite(m[k])), k
    ev = tr.evaluate(2)
    assert np.all(np.isfinite(ev["collective"])) and ev["received"].shape == (2, 2)


def test_designer_ac_replica_and_checkpoint_roundtrip():
    tr = _trainer("cleanup7_metagrad", seeds=(0, 1))
    tr.iterate()
    one = tr.replica(1)
    assert isinstance(one, MetaGradACTrainer) and one.R == 1
    for k, v in one.designer.eta.items():
        torch.testing.assert_close(v, tr.designer.eta[k][1:2])
    for k, v in one.params.items():
        torch.testing.assert_close(v, tr.params[k][1:2])  # one shared policy per replica
    other = _trainer("cleanup7_metagrad", seeds=(0, 1))
    other.load_state_dict(tr.state_dict())
    a, b = tr.iterate(), other.iterate()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert isinstance(_trainer("cleanup7_dualrl", seeds=(0,)), DualRLCACTrainer)


def test_metagrad_ac_config_refuses_unknown_agents():
    with pytest.raises(ValueError, match="not allowed"):
        MetaGradACConfig(agents=["lio", "ac"])
