"""Policy gradient pieces, LIO's meta-gradient (eqs. 5.7-5.10) and trainer bookkeeping."""

import numpy as np
import pytest
import torch

from econsim import envs
from learners.functional import behaviour_probs, policy_loss, reward_to_go, sgd_step
from learners.lio import LIOConfig, LIOTrainer
from learners.nets import detach, init_mlp, mlp
from learners.pg import PGConfig, PGTrainer


def test_reward_to_go_by_hand():
    r = torch.tensor([[1.0], [2.0], [3.0]])  # [T, B]
    G = reward_to_go(r, 0.5)
    assert torch.allclose(G[:, 0], torch.tensor([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0]))


def test_behaviour_probs_lower_bound_and_masking():
    logits = torch.tensor([[10.0, 0.0, -10.0, 3.0]])
    p = behaviour_probs(logits, 0.2)
    assert torch.allclose(p.sum(-1), torch.ones(1)) and (p >= 0.2 / 4 - 1e-7).all()
    valid = torch.tensor([[True, True, True, False]])
    p = behaviour_probs(logits, 0.3, valid)
    assert p[0, 3] == 0 and torch.allclose(p.sum(-1), torch.ones(1))
    assert (p[0, :3] >= 0.1 - 1e-7).all()


def test_stacked_members_are_independent():
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    params = init_mlp([4, 8, 2], gens)
    x = torch.randn(3, 5, 4)
    out = mlp(params, x)
    alone = mlp({k: v[1:2] for k, v in params.items()}, x[1:2])
    assert torch.allclose(out[1:2], alone)
    again = init_mlp([4, 8, 2], [torch.Generator().manual_seed(2)])
    assert torch.equal(again["w0"][0], params["w0"][1])


def test_sgd_step_matches_manual_gradient():
    gens = [torch.Generator().manual_seed(0)]
    params = detach(init_mlp([3, 2], gens))
    obs = torch.randn(1, 4, 3)
    actions = torch.tensor([[[0], [1], [1], [0]]]).reshape(1, 4, 1)
    weights = torch.randn(1, 4, 1)
    mask = torch.ones(1, 4, 1)

    def loss(p):
        probs = behaviour_probs(mlp(p, obs).reshape(1, 4, 1, 2), 0.1)
        return policy_loss(probs, actions, weights, mask, 0.01)

    new = sgd_step(loss, params, 0.5)
    manual = torch.autograd.grad(loss(params), list(params.values()))
    for (k, v), g in zip(params.items(), manual, strict=True):
        assert torch.allclose(new[k], v - 0.5 * g, atol=1e-6)


def _er_trainer(cls=LIOTrainer, seeds=(0,), **kw):
    game = envs.make("escape_room", n_agents=2, n_required=1)
    cfg = (LIOConfig if cls is LIOTrainer else PGConfig)(**kw)
    return cls(game, cfg, list(seeds))


def _outer_loss(tr, eta, tau, tau_hat, giver):
    pay, _ = tr.full_transfers(eta, tau)
    prime = tr.agents.update({k: v.detach() for k, v in tr.params.items()}, tau,
                      tr.total_rewards(tau, pay), 0.3)
    losses = dict(tr.incentive.outer_losses(tr.incentive.log_probs(prime, tau_hat, 0.3), tau_hat))
    return losses[giver]


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_lio_meta_gradient_matches_finite_differences(float64):
    """d loss_i / d eta_i through the recipient's update equals a numerical derivative."""
    torch.manual_seed(0)
    tr = _er_trainer(batch=4, lr=0.05, epsilon={"start": 0.3, "end": 0.3, "steps": 1})
    tau = tr.run_episodes(tr.params, 0.3, 4)
    pay, _ = tr.full_transfers(tr.eta, tau)
    prime = tr.agents.update({k: v.detach() for k, v in tr.params.items()}, tau,
                      tr.total_rewards(tau, pay), 0.3)
    tau_hat = tr.run_episodes(detach(prime), 0.3, 4)
    grads = tr.incentive.meta_gradients(prime, tau_hat, None, 0.3)
    direction = {k: torch.randn_like(v) for k, v in tr.eta.items()}
    for v in direction.values():
        v[1:] = 0  # perturb giver 0 only (member row 0)
    h = 1e-4
    with torch.no_grad():
        plus = {k: v + h * direction[k] for k, v in tr.eta.items()}
        minus = {k: v - h * direction[k] for k, v in tr.eta.items()}
        numeric = (_outer_loss(tr, plus, tau, tau_hat, 0)
                   - _outer_loss(tr, minus, tau, tau_hat, 0)) / (2 * h)
    analytic = sum((g * direction[k]).sum() for g, k in zip(grads, tr.eta, strict=True))
    assert abs(analytic) > 1e-4, "degenerate check: gradient is zero"
    assert torch.isclose(analytic, numeric, rtol=1e-3), (analytic, numeric)


def test_lio_giver_gradient_excludes_other_givers_losses():
    tr = _er_trainer(batch=4, lr=0.05)
    tau = tr.run_episodes(tr.params, 0.3, 4)
    pay, _ = tr.full_transfers(tr.eta, tau)
    prime = tr.agents.update({k: v.detach() for k, v in tr.params.items()}, tau,
                      tr.total_rewards(tau, pay), 0.3)
    tau_hat = tr.run_episodes(detach(prime), 0.3, 4)
    grads = tr.incentive.meta_gradients(prime, tau_hat, None, 0.3)
    loss1 = _outer_loss(tr, tr.eta, tau, tau_hat, 1)
    own = torch.autograd.grad(loss1, list(tr.eta.values()), allow_unused=True)
    for g, o in zip(grads, own, strict=True):
        assert torch.allclose(g[1], o[1], atol=1e-6)  # row 1 = giver 1, from its own loss only


def test_incentives_bounded_and_not_to_self():
    tr = _er_trainer(seeds=(0, 1), r_max=2.0)
    batch = tr.run_episodes(tr.params, 0.5, 3)
    pay = batch.transfers
    assert (pay >= 0).all() and (pay <= 2.0).all()
    assert (torch.diagonal(pay, dim1=-2, dim2=-1) == 0).all()
    assert (pay.sum((2, 3))[batch.mask == 0] == 0).all()  # nothing paid after the end


@pytest.mark.parametrize("kind", ["pg", "pg-d", "pg-c"])
def test_pg_variants_run_and_pay(kind):
    tr = _er_trainer(PGTrainer, seeds=(0, 1), agents=[kind, kind])
    for _ in range(3):
        m = tr.iterate()
    assert set(m) >= {"return", "received", "given", "collective", "n_lever", "n_door"}
    assert all(np.isfinite(v).all() for v in m.values())
    if kind == "pg":
        assert (m["given"] == 0).all()
    # charged give-reward actions: total incentive flow is zero-sum
    assert np.allclose(m["received"].sum(1), m["given"].sum(1), atol=1e-5)


def test_pg_d_decoding():
    tr = _er_trainer(PGTrainer, agents=["pg-d", "pg"])
    env, give = tr.agents.decode(torch.tensor([[5, 2]]))  # pg-d: 5 = action 2, give bit 1
    assert env.tolist() == [[2, 2]] and give[0, 0].tolist() == [1] and give[0, 1].tolist() == [0]


def test_replicas_do_not_depend_on_each_other():
    """Replica init depends only on its seed; a replica's update uses only its own data."""
    a = _er_trainer(seeds=(3,))
    b = _er_trainer(seeds=(5, 3))
    for k in a.params:
        assert torch.equal(a.params[k][0:2], b.params[k][2:4])
    one = b.replica(1)
    for k in a.params:
        assert torch.equal(one.params[k], a.params[k])


def test_state_dict_round_trip_reproduces_next_iteration():
    tr = _er_trainer(seeds=(0, 1))
    for _ in range(3):
        tr.iterate()
    state = tr.state_dict()
    expected = tr.iterate()
    other = _er_trainer(seeds=(0, 1))
    other.load_state_dict(state)
    got = other.iterate()
    for k in expected:
        assert np.array_equal(expected[k], got[k]), k


def test_evaluation_does_not_change_training():
    a, b = _er_trainer(seeds=(0,)), _er_trainer(seeds=(0,))
    for i in range(4):
        ma = a.iterate()
        if i == 1:
            b.evaluate(10)
        mb = b.iterate()
    assert np.array_equal(ma["collective"], mb["collective"])
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])


def test_lio_variants_run():
    for kw in ({"opponent_model": True}, {"one_episode": True}, {"lr_cost": None, "cost": 1e-4}):
        tr = _er_trainer(seeds=(0, 1), **kw)
        for _ in range(3):
            m = tr.iterate()
        assert np.isfinite(m["collective"]).all()
    game = envs.make("escape_room_asym")
    tr = LIOTrainer(game, LIOConfig(agents=["lio", "pg"]), [0])
    m = tr.iterate()
    assert m["given"][0, 1] == 0  # the PG agent gives nothing


def test_observer_sees_the_action_the_actor_takes():
    """Asymmetric ER: A1's observation holds A2's current action, the one A2 then executes."""
    game = envs.make("escape_room_asym")
    tr = PGTrainer(game, PGConfig(), [0, 1])
    batch = tr.run_episodes(tr.params, 0.5, 16)
    env_dim = int(np.prod(game.observation_space.shape))
    A = game.action_space.n
    seen = batch.obs[..., 0, env_dim:env_dim + A].argmax(-1)  # [T, RB]
    alive = batch.mask > 0
    assert torch.equal(seen[alive], batch.env_actions[..., 1][alive])
    assert (batch.obs[..., 1, env_dim:env_dim + A] == 0).all()  # the actor sees nobody
