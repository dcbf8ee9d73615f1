"""COMA and QMIX, the chapter-3 baselines (learners.coma, learners.qmix, learners.nets.QMixer),
on the toy multi-goal game of ``tests.multigoal_toy``."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from econsim import checkpoint
from econsim.core import torch_generator
from learners.coma import COMAConfig, COMATrainer
from learners.multigoal import Transitions
from learners.nets import QMixer, mlp
from learners.pg import LinearSchedule
from learners.qmix import QMIXConfig, QMIXTrainer, epsilon_greedy, qmix_loss, qmix_target
from tests.multigoal_toy import Line

SMALL = {"batch": 3, "updates": 2, "minibatch": 16, "hidden": [8, 8], "branch": [8]}


def make(name: str, seeds: list[int], n_agents: int = 2, **over):
    if name == "coma":
        cfg = COMAConfig(**{**SMALL, "critic_hidden": [16, 16], **over})
        return COMATrainer(Line(n_agents), cfg, seeds)
    cfg = QMIXConfig(**{**SMALL, "agent_hidden": [16], "embed": 8, "replay": 100, **over})
    return QMIXTrainer(Line(n_agents), cfg, seeds)


def minibatch(trainer, eps: float = 0.5, size: int = 16) -> Transitions:
    """A minibatch of freshly played transitions (the trainer's own streams)."""
    batch = trainer.play(trainer.game, trainer.params, eps, 2, trainer.rng, trainer.act_rng)
    trainer.replay.add(*trainer.transitions(batch))
    mb = Transitions(trainer.game, trainer.replay.sample(trainer.train_rng, size))
    trainer.replay.clear()
    return mb


# ---------------------------------------------------------------------------- both
@pytest.mark.parametrize("name", ["coma", "qmix"])
def test_shapes_and_a_few_iterations(name):
    t = make(name, [0, 1], n_agents=3)
    R, N, A = 2, 3, 3
    for _ in range(3):
        out = t.iterate()
    assert out["return"].shape == (R, N) and out["collective"].shape == (R,)
    learned = {"coma": ("critic_loss", "advantage"), "qmix": ("td_loss", "q_tot")}[name]
    for k in learned:
        assert out[k].shape == (R,) and np.isfinite(out[k]).all(), k
    assert t.iteration == 3
    obs = torch.rand(R, 5, N, t.game.observation_space.shape[0])
    probs = t.policy(t.params, obs, 0.2)
    assert probs.shape == (R, 5, N, A)
    assert torch.allclose(probs.sum(-1), torch.ones(R, 5, N))
    assert (probs >= 0.2 / A - 1e-7).all()
    ev = t.evaluate(2)
    assert ev["collective"].shape == (R,)
    one = t.replica(1)  # acting: the replica's policy is the stack's row 1
    assert torch.equal(one.policy(one.params, obs[1:], 0.2), probs[1:])
    legal = np.ones(A, bool)
    assert 0 <= one.act_one(obs[1, 0, 0].numpy(), legal, torch_generator(0, "t")) < A
    if name == "qmix":  # greedy among the legal actions, also when the argmax is illegal
        q = t.agent_q(one.params, obs[1:2, :1, :1])[0, 0, 0]
        legal[int(q.argmax())] = False
        best = int(q.masked_fill(torch.as_tensor(~legal), -torch.inf).argmax())
        assert one.act_one(obs[1, 0, 0].numpy(), legal, torch_generator(0, "t")) == best


@pytest.mark.parametrize("name", ["coma", "qmix"])
def test_checkpoint_round_trip_resumes_bit_for_bit(name, tmp_path):
    a = make(name, [4, 5])
    for _ in range(2):
        a.iterate()
    checkpoint.save(tmp_path / "c.pt", {"trainer": a.state_dict()})
    b = make(name, [4, 5])
    checkpoint.restore(b, checkpoint.load(tmp_path / "c.pt")["trainer"])
    for _ in range(2):
        ma, mb = a.iterate(), b.iterate()
        assert ma.keys() == mb.keys()
        for k in ma:
            assert np.array_equal(ma[k], mb[k]), k
    for net in a.nets:
        for k, v in getattr(a, net).items():
            assert torch.equal(v, getattr(b, net)[k]), (net, k)


@pytest.mark.parametrize("name", ["coma", "qmix"])
def test_a_seed_trains_the_same_alone_or_beside_others(name):
    alone, group = make(name, [3]), make(name, [1, 3, 7])
    for it in range(4):
        ma, mg = alone.iterate(), group.iterate()
        for k, v in ma.items():
            assert np.array_equal(v[0], mg[k][1]), (it, k)
    ea, eg = alone.evaluate(3), group.evaluate(3)
    assert np.array_equal(ea["collective"][0], eg["collective"][1])
    for net in alone.nets:
        for k, v in getattr(alone, net).items():
            assert torch.equal(v[0], getattr(group, net)[k][1]), (net, k)


# ---------------------------------------------------------------------------- COMA
def test_coma_critic_input_and_counterfactual_baseline_by_brute_force():
    """Q(s, a) and sum_a^ pi(a^|o^n) Q(s, (a^, a^-n)) from one batched critic call equal a loop
    over replicas, samples, agents and actions that builds each input by hand and calls the
    network directly."""
    t = make("coma", [2, 6], n_agents=3)
    t.iterate()
    mb = minibatch(t, size=6)
    N, A = 3, t.A
    with torch.no_grad():
        pi = t.policy(t.actor, mb.obs, 0.3)
        taken, base = t.counterfactual(t.q_values(t.critic, mb, mb.actions), mb.actions, pi)
    o_self, goal, _, s_env, s_ag = mb.parts()
    assert t.critic_size(t.game) == 0 + N * 1 + (N - 1) * A + N * 1 + N + 1
    for r in range(2):
        one = {k: v[r:r + 1] for k, v in t.critic.items()}
        for i in range(6):
            joint = mb.actions[r, i].tolist()
            for n in range(N):
                others = [m for m in range(N) if m != n]
                expect_base, expect_taken = 0.0, None
                for a_hat in range(A):
                    acts = list(joint)
                    acts[n] = a_hat
                    x = torch.cat([
                        s_env[r, i], s_ag[r, i].flatten(),
                        *[torch.eye(A)[acts[m]] for m in others],
                        goal[r, i, n], *[goal[r, i, m] for m in others],
                        torch.eye(N)[n], o_self[r, i, n]])
                    with torch.no_grad():
                        q = mlp(one, x[None, None])[0, 0, a_hat]
                    expect_base += float(pi[r, i, n, a_hat]) * float(q)
                    if a_hat == joint[n]:
                        expect_taken = float(q)
                assert taken[r, i, n].item() == pytest.approx(expect_taken, abs=1e-5)
                assert base[r, i, n].item() == pytest.approx(expect_base, abs=1e-5)


def test_coma_defaults_follow_table_a3():
    cfg = COMAConfig()
    assert (cfg.lr_actor, cfg.lr_critic, cfg.critic_hidden) == (1e-5, 1e-4, [128, 128])
    assert (cfg.epsilon.start, cfg.epsilon.end, cfg.epsilon.steps) == (1.0, 0.05, 2000)
    assert cfg.replay is None and cfg.updates == 24 and cfg.minibatch == 128


# ---------------------------------------------------------------------------- QMIX
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), agent=st.integers(0, 3),
       delta=st.floats(0.0, 10.0, allow_nan=False), scale=st.floats(0.1, 3.0))
def test_the_mixer_is_monotonic_in_every_agent_q(seed, agent, delta, scale):
    """Raising any agent's Q never lowers Q_tot, for any parameters (random biases too)."""
    g = torch.Generator().manual_seed(seed)
    mixer = QMixer(4, 5, 8, hyper_hidden=(6,) if seed % 2 else ())
    params = {k: torch.randn(v.shape, generator=g) * scale
              for k, v in mixer.init([torch_generator(seed, "m")] * 2).items()}
    q = torch.randn(2, 7, 4, generator=g) * 3
    state = torch.randn(2, 7, 5, generator=g)
    up = q.clone()
    up[..., agent] += delta
    before, after = mixer.apply(params, q, state), mixer.apply(params, up, state)
    assert (after >= before - 1e-5).all()
    q.requires_grad_(True)
    (grad,) = torch.autograd.grad(mixer.apply(params, q, state).sum(), q)
    assert (grad >= 0).all()


def test_mixer_output_shape_and_parameters():
    mixer = QMixer(3, 6, 10)
    gens = [torch_generator(s, "m") for s in (1, 2)]
    p = mixer.init(gens)
    assert p["w1.w0"].shape == (2, 6, 30) and p["b1.w0"].shape == (2, 6, 10)
    assert p["w2.w0"].shape == (2, 6, 10)
    assert p["v.w0"].shape == (2, 6, 10) and p["v.w1"].shape == (2, 10, 1)
    out = mixer.apply(p, torch.randn(2, 4, 5, 3), torch.randn(2, 4, 5, 6))
    assert out.shape == (2, 4, 5)
    # by hand for one sample: elu(q |W1| + b1) . |w2| + V(s)
    q, s = torch.randn(3), torch.randn(6)
    w1 = (s @ p["w1.w0"][0] + p["w1.b0"][0, 0]).abs().reshape(3, 10)
    h = torch.nn.functional.elu(q @ w1 + s @ p["b1.w0"][0] + p["b1.b0"][0, 0])
    w2 = (s @ p["w2.w0"][0] + p["w2.b0"][0, 0]).abs()
    v = torch.relu(s @ p["v.w0"][0] + p["v.b0"][0, 0]) @ p["v.w1"][0] + p["v.b1"][0, 0]
    got = mixer.apply({k: x[:1] for k, x in p.items()}, q[None, None], s[None, None])
    assert torch.allclose(got[0, 0], h @ w2 + v[0], atol=1e-5)


def test_epsilon_greedy_probabilities():
    q = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0]])
    assert torch.equal(epsilon_greedy(q, 0.0), torch.tensor([[0.0, 1, 0], [1, 0, 0]]))
    assert torch.allclose(epsilon_greedy(q, 1.0), torch.full((2, 3), 1 / 3))
    p = epsilon_greedy(q, 0.3)
    assert torch.allclose(p, torch.tensor([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1]]))
    t = make("qmix", [0])
    obs = torch.rand(1, 4, 2, 3)
    assert torch.equal(t.policy(t.params, obs, 0.3), epsilon_greedy(t.agent_q(t.q, obs), 0.3))


def test_qmix_target_standard_and_double_q():
    mixer = QMixer(2, 3, 4)
    p = mixer.init([torch_generator(0, "m")])
    q_t = torch.tensor([[[[1.0, 4.0, 0.0], [2.0, 0.0, 3.0]]]])  # [R=1, S=1, N=2, A=3]
    online = torch.tensor([[[[9.0, 0.0, 0.0], [0.0, 9.0, 0.0]]]])
    s2, r, done = torch.randn(1, 1, 3), torch.tensor([[0.5]]), torch.tensor([[0.0]])
    y = qmix_target(mixer, p, q_t, s2, r, done, 0.9)
    assert torch.allclose(y, r + 0.9 * mixer.apply(p, torch.tensor([[[4.0, 3.0]]]), s2))
    yd = qmix_target(mixer, p, q_t, s2, r, done, 0.9, online)
    assert torch.allclose(yd, r + 0.9 * mixer.apply(p, torch.tensor([[[1.0, 0.0]]]), s2))
    assert torch.equal(qmix_target(mixer, p, q_t, s2, r, torch.ones(1, 1), 0.9), r)
    loss, q_tot = qmix_loss(mixer, p, torch.zeros(1, 1, 2), s2, y)
    assert loss.shape == (1,) and torch.allclose(loss, (y - q_tot).pow(2).mean(1))


def test_zero_output_layer_starts_every_action_level_and_still_learns():
    """``out_init = "zero"``: every action's Q is the output bias (0) at the start, so the
    target's max equals the mixer at any action; one update moves the output layer and the
    actions apart. ``glorot`` (the default) starts them apart."""
    t = make("qmix", [0, 1], out_init="zero")
    obs = torch.rand(2, 5, 2, 3, generator=torch_generator(0, "obs"))  # not the global stream
    assert torch.equal(t.agent_q(t.q, obs), torch.zeros(2, 5, 2, t.A))
    t.train_step(minibatch(t))
    q = t.agent_q(t.q, obs)
    # Adam's first step moves only the weights of the actions in the minibatch: some
    # observations may still see equal values, not all
    assert (t.q["w1"] != 0).any() and (q.amax(-1) > q.amin(-1)).any(-1).all()
    g = make("qmix", [0, 1])
    q = g.agent_q(g.q, obs)
    assert (q.amax(-1) > q.amin(-1)).all()


def test_qmix_defaults_follow_table_a3():
    cfg = QMIXConfig()
    assert (cfg.lr_critic, cfg.agent_hidden, cfg.embed) == (1e-3, [64], 64)
    assert (cfg.replay, cfg.updates, cfg.minibatch, cfg.double_q) == (10_000, 50, 128, False)
    assert cfg.out_init == "glorot"
    assert (cfg.epsilon.start, cfg.epsilon.end, cfg.epsilon.steps) == (1.0, 0.05, 8000)


# ------------------------------------------------------------------- learning sanity
LEARN = {
    "coma": {"batch": 10, "updates": 8, "minibatch": 64, "hidden": [32, 32], "branch": [32],
             "critic_hidden": [64, 64], "lr_actor": 3e-3, "lr_critic": 1e-2,
             "epsilon": LinearSchedule(start=0.3, end=0.05, steps=50)},
    "qmix": {"batch": 10, "updates": 8, "minibatch": 64, "agent_hidden": [32], "embed": 16,
             "replay": 2000, "lr_critic": 1e-2, "tau": 0.05,
             "epsilon": LinearSchedule(start=1.0, end=0.05, steps=50)},
}


@pytest.mark.parametrize("name", ["coma", "qmix"])
def test_the_team_return_improves_on_the_toy_game(name):
    """100 iterations on the 2-agent line, 2 seeds: the mean team return of the last three
    greedy evaluations (20 episodes each) beats the first evaluation's by a clear margin."""
    cls, cfg_cls = {"coma": (COMATrainer, COMAConfig), "qmix": (QMIXTrainer, QMIXConfig)}[name]
    t = cls(Line(2), cfg_cls(**LEARN[name]), [0, 1])
    evals = []
    for it in range(101):
        if it % 10 == 0:
            evals.append(t.evaluate(20)["collective"].mean())
        if it < 100:
            t.iterate()
    first, last = evals[0], float(np.mean(evals[-3:]))
    assert last > first + 2.0, (first, last, evals)
