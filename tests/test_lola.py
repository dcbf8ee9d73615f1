"""LOLA-d / LOLA-c (learners.lola): DiCE values, the look-ahead correction, training runs."""

import numpy as np
import pytest
import torch

import learners
from econsim import envs
from learners.functional import sgd_step
from learners.lola import LOLAConfig, LOLATrainer
from learners.pg import PGConfig, PGTrainer


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def _trainer(game="escape_room", seeds=(0, 1), **kw):
    params = {"n_agents": 2, "n_required": 1} if game == "escape_room" else {}
    params.update(kw.pop("env", {}))
    return LOLATrainer(envs.make(game, **params), LOLAConfig(**kw), list(seeds))


def _batch(tr, eps=0.3, episodes=4):
    batch = tr.run_episodes(tr.params, eps, episodes)
    return batch, tr.total_rewards(batch)


def _flat(params):
    return torch.cat([v.detach().flatten() for v in params.values()])


@pytest.mark.parametrize("kind", ["lola-d", "lola-c"])
def test_first_order_step_is_the_pg_step(float64, kind):
    """lr_lookahead = 0, gamma = 1: the DiCE gradient is REINFORCE's (PGTrainer.loss)."""
    tr = _trainer(agents=[kind, kind], gamma=1.0, lr_lookahead=0.0, lr=0.05, entropy=0.01)
    batch, rewards = _batch(tr)
    assert (rewards != 0).any()
    lola = tr.agents.update(tr.params, batch, rewards, 0.3)
    pg = sgd_step(tr.agents.loss, {k: v.detach() for k, v in tr.params.items()}, 0.05,
                  batch, rewards, 0.3)
    for k in pg:
        assert torch.allclose(lola[k], pg[k], atol=1e-10), k
    assert not torch.equal(_flat(lola), _flat(tr.params))


def test_discounted_dice_gradient_points_like_pg():
    """gamma < 1: DiCE weights step t by gamma^t, otherwise the same direction as PG."""
    tr = _trainer(agents=["lola-d", "lola-d"], lr_lookahead=0.0, gamma=0.99)
    batch, rewards = _batch(tr)
    old = _flat(tr.params)
    d_lola = _flat(tr.agents.update(tr.params, batch, rewards, 0.3)) - old
    d_pg = _flat(sgd_step(tr.agents.loss, {k: v.detach() for k, v in tr.params.items()},
                          tr.cfg.lr, batch, rewards, 0.3)) - old
    assert torch.cosine_similarity(d_lola, d_pg, 0) > 0.98


def test_dice_value_is_the_discounted_return():
    tr = _trainer(agents=["lola-c", "lola-c"])
    batch, rewards = _batch(tr)
    V, _ = tr.agents.dice(tr.params, batch, rewards, 0.3)
    T = rewards.shape[0]
    disc = 0.99 ** torch.arange(T, dtype=rewards.dtype)
    ret = (rewards * batch.mask[..., None] * disc[:, None, None]).sum(0)  # [R*B, N]
    assert torch.allclose(V, ret.reshape(2, 4, 2).mean(1), atol=1e-5)


@pytest.mark.parametrize("kind", ["lola-d", "lola-c"])
def test_lookahead_correction_is_the_lola_term(float64, kind):
    """Small lr_lookahead: (LOLA step - naive step) / (lr * la) -> (grad_i g_j)^T grad_j V_i
    with g_j = grad_j V_j: LOLA's opponent-shaping term (second-order DiCE terms)."""
    la, lr = 1e-5, 0.1
    tr = _trainer(agents=[kind, kind], lr=lr, lr_lookahead=la)
    batch, rewards = _batch(tr)
    lola = tr.agents.update(tr.params, batch, rewards, 0.3)
    naive = _trainer(agents=[kind, kind], lr=lr, lr_lookahead=0.0)
    naive.params = tr.params
    plain = naive.agents.update(tr.params, batch, rewards, 0.3)
    assert all(torch.isfinite(v).all() for v in lola.values())
    assert not torch.allclose(_flat(lola), _flat(plain), atol=0, rtol=0)

    theta = tr.agents.split(tr.params)
    V, _ = tr.agents.dice(tr.agents.join(theta), batch, rewards, 0.3)
    for i, j in ((0, 1), (1, 0)):
        names = list(theta[j])
        g_j = torch.autograd.grad(V[:, j].sum(), [theta[j][k] for k in names],
                                  create_graph=True)
        h_i = torch.autograd.grad(V[:, i].sum(), [theta[j][k] for k in names],
                                  create_graph=True)
        dot = sum((a * b.detach()).sum() for a, b in zip(g_j, h_i, strict=True))
        expected = torch.autograd.grad(dot, [theta[i][k] for k in names], retain_graph=True)
        got = [(lola[k] - plain[k]).reshape(2, 2, *lola[k].shape[1:])[:, i] / (lr * la)
               for k in names]
        e, g = torch.cat([x.flatten() for x in expected]), torch.cat([x.flatten() for x in got])
        assert e.abs().max() > 1e-6
        assert torch.allclose(g, e, rtol=1e-3, atol=1e-3 * e.abs().max().item())


def test_lookahead_changes_the_update_and_stays_finite():
    tr = _trainer(agents=["lola-d", "lola-d"], lr_lookahead=1.0)
    batch, rewards = _batch(tr)
    lola = tr.agents.update(tr.params, batch, rewards, 0.3)
    tr.agents.cfg = tr.cfg.model_copy(update={"lr_lookahead": 0.0})
    plain = tr.agents.update(tr.params, batch, rewards, 0.3)
    assert torch.isfinite(_flat(lola)).all()
    assert (_flat(lola) - _flat(plain)).abs().max() > 1e-6


def test_clip_bounds_each_agents_gradient_per_replica():
    tr = _trainer(agents=["lola-c", "lola-c"], lr=1.0, clip=0.5)
    batch, rewards = _batch(tr)
    new = tr.agents.update(tr.params, batch, rewards, 0.3)
    step = {k: (new[k] - tr.params[k].detach()).reshape(2, 2, -1) for k in new}
    norm = torch.stack([d.pow(2).sum(-1) for d in step.values()]).sum(0).sqrt()  # [R, N]
    assert (norm <= 0.5 + 1e-5).all() and (norm > 0.4).any()


def test_pg_agent_in_a_lola_team_learns_by_pg():
    tr = _trainer("escape_room_asym", agents=["lola-d", "pg"], lr_pg=1e-2)
    batch, rewards = _batch(tr)
    new = tr.agents.update(tr.params, batch, rewards, 0.3)
    pg = sgd_step(tr.agents.loss, {k: v.detach() for k, v in tr.params.items()}, 1e-2,
                  batch, rewards, 0.3)
    for k in pg:  # members r*N + 1 are the PG agent's
        assert torch.allclose(new[k][1::2], pg[k][1::2], atol=1e-7), k
        assert not torch.allclose(new[k][0::2], pg[k][0::2])


CASES = [
    ("escape_room", {"n_agents": 2, "n_required": 1}, ["{k}", "{k}"]),
    ("escape_room", {"n_agents": 3, "n_required": 2}, ["{k}", "{k}", "{k}"]),
    ("escape_room_asym", {}, ["{k}", "pg"]),
]


@pytest.mark.parametrize("kind", ["lola-d", "lola-c"])
@pytest.mark.parametrize("game,params,agents", CASES)
def test_lola_trains_on_escape_room(kind, game, params, agents):
    agents = [a.format(k=kind) for a in agents]
    tr = _trainer(game, seeds=(0, 1), env=params, agents=agents, lr_lookahead=0.1,
                  clip=1.0 if kind == "lola-c" else None)
    for _ in range(3):
        m = tr.iterate()
    ref = PGTrainer(tr.game, PGConfig(), [0, 1]).iterate()
    assert set(m) == set(ref)
    assert all(np.isfinite(v).all() for v in m.values())
    assert all(torch.isfinite(v).all() for v in tr.params.values())
    assert np.allclose(m["received"].sum(1), m["given"].sum(1), atol=1e-5)  # charged, zero-sum
    for i, a in enumerate(agents):
        if a == "pg":
            assert (m["given"][:, i] == 0).all()
    assert tr.iteration == 3


def test_state_dict_round_trip_reproduces_next_iteration():
    tr = _trainer(agents=["lola-c", "lola-c"], epsilon={"start": 0.3, "end": 0.1, "steps": 5})
    for _ in range(2):
        tr.iterate()
    state = tr.state_dict()
    expected = tr.iterate()
    other = _trainer(agents=["lola-c", "lola-c"],
                     epsilon={"start": 0.3, "end": 0.1, "steps": 5})
    other.load_state_dict(state)
    got = other.iterate()
    for k in expected:
        assert np.array_equal(expected[k], got[k]), k
    for k in tr.params:
        assert torch.equal(tr.params[k], other.params[k])


def test_registry_and_kinds():
    assert learners.trainer_class("lola-d") is LOLATrainer
    assert learners.trainer_class("lola-c") is LOLATrainer
    assert learners.default_kind("lola-c") == "lola-c"
    cfg = LOLAConfig()
    assert cfg.lr == 0.1 and cfg.give_value == 2.0 and cfg.epsilon(0) == 0.0
    with pytest.raises(ValueError, match="lola-d"):
        LOLAConfig(agents=["lio", "pg"])
    tr = _trainer(agents=["lola-d", "lola-c"])
    assert tr.agents.is_d.tolist() == [True, False] and tr.agents.is_c.tolist() == [False, True]
    assert tr.agents.A_max == 3 * 2
