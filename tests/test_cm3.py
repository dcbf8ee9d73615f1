"""CM3 (Diss ch. 3): function augmentation, the credit function, the multi-goal policy
gradient (eqs. 3.4-3.6), the curriculum's stages, on a toy multi-goal game."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from learners.cm3 import CM3Config, CM3Trainer, Stage1
from learners.multigoal import Transitions
from tests.multigoal_toy import Line


def trainer(kind: str = "cm3", n: int = 2, seeds=(0,), stage1: int = 1, **kw) -> CM3Trainer:
    cfg = CM3Config(agents=[kind] * n, batch=4, updates=2, minibatch=8,
                    stage1=Stage1(iterations=stage1, minibatch=8, updates=2), **kw)
    return CM3Trainer(Line(n), cfg, list(seeds))


def minibatch(t: CM3Trainer, size: int = 8) -> Transitions:
    game = t.stage_game()
    batch = t.play(game, t.params, 0.3, 4, t.rng, t.act_rng)
    t.replay.add(*t.transitions(batch))
    return Transitions(game, t.replay.sample(t.train_rng, size))


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_stages_and_epsilon():
    t = trainer(stage1=2)
    assert t.stage == 1 and t.stage_game().n_agents == 1
    assert t.epsilon() == t.cfg.stage1.epsilon(0)
    t.iterate(), t.iterate()
    assert t.stage == 1
    m = t.iterate()
    assert t.stage == 2 and m["stage"].tolist() == [2.0]
    assert t.epsilon() == t.cfg.epsilon(1)  # counted from the start of stage 2
    assert trainer("direct").stage == 2  # Direct: no stage 1


def test_augmentation_keeps_stage1_functions_when_branches_are_zero():
    t = trainer(stage1=1)
    t.iterate()  # stage 1
    mb = minibatch(t)
    old_actor = {k: v.detach().clone() for k, v in t.actor.items()}
    old_q = {k: v.detach().clone() for k, v in t.q.items()}
    pi1 = t.policy(old_actor, mb.obs, 0.0)
    q1_shape = t.shape["q"]
    t.augment()
    assert t.stage == 2 and "join" in t.actor and "join" in t.q and "join" in t.qc
    for name in ("actor", "q", "qc"):  # restored, not re-initialised
        src = old_actor if name == "actor" else old_q
        for k, v in src.items():
            assert torch.equal(getattr(t, name)[k], v)
    # the stage-2 networks with zero branches compute the stage-1 functions
    zero = lambda p: {k: (torch.zeros_like(v) if k == "join" else v) for k, v in p.items()}  # noqa: E731
    game = t.game
    batch = t.play(game, t.params, 0.3, 2, t.rng, t.act_rng)
    obs = batch.obs.reshape(1, -1, game.n_agents, batch.obs.shape[-1])
    pi2 = t.policy(zero(t.actor), obs, 0.0)
    o_self, goal, _ = game.split(obs)
    assert torch.allclose(pi2, t.actor_probs(t.shape["actor"], old_actor, obs, 0.0))
    mb2 = Transitions(game, {k: v for k, v in t.transitions(batch)[0].items()})
    x, br = t.q_inputs(mb2, mb2.actions)
    q2 = t.shape["q"].apply(zero(t.q), x, br)
    assert torch.allclose(q2, q1_shape.apply(old_q, x))
    qc2 = t.credit_values(zero(t.qc), mb2, actions=mb2.actions)  # [R, S, n, m]
    base = t.seen(mb2)[:, :, :, None].expand(-1, -1, -1, game.n_agents, -1)
    act = torch.nn.functional.one_hot(mb2.actions, 3).float()[:, :, None].expand(
        -1, -1, game.n_agents, -1, -1)
    assert torch.allclose(qc2, q1_shape.apply(old_q, torch.cat([base, act], -1))[..., 0])
    assert pi1.shape[-1] == 3


def test_augmentation_starts_stage_2_afresh_and_close_to_stage_1():
    """Algorithm 4: targets equal the main networks, fresh optimisers, an empty buffer; the
    joining weights start small (join_std), so the stage-2 policy is the stage-1 policy."""
    t = trainer(stage1=1)
    t.iterate()
    mb = minibatch(t)
    assert sum(t.replay.size) > 0
    before = t.policy(t.actor, mb.obs, 0.0)
    t.augment()
    for name in ("actor", "q", "qc", "v"):
        main, target = getattr(t, name), getattr(t, name + "_t")
        assert main.keys() == target.keys()
        assert all(torch.equal(main[k], target[k]) for k in main)
    assert all(not opt.state for opt in (t.actor_opt, t.q_opt, t.qc_opt, t.v_opt))
    assert t.replay.size == [0]
    assert float(t.actor["join"].detach().std()) == pytest.approx(0.01, rel=0.3)
    game = t.game
    batch = t.play(game, t.params, 0.0, 4, t.rng, t.act_rng)
    obs = batch.obs.reshape(1, -1, game.n_agents, batch.obs.shape[-1])
    zero = {**t.actor, "join": torch.zeros_like(t.actor["join"])}  # exactly stage 1
    gap = (t.policy(t.actor, obs, 0.0) - t.policy(zero, obs, 0.0)).abs().sum(-1).max()
    assert float(gap.detach()) < 0.05 and before.shape[-1] == 3


@pytest.mark.parametrize("kind, scale", [("cm3", 0.0), ("cm3", 0.1), ("qv", 0.0),
                                         ("cm3", 1.0)])
def test_restored_actor_lr_slows_or_freezes_the_restored_base(kind, scale):
    """``restored_actor_lr``: in stage 2 the restored actor parameters learn at that multiple
    of lr_actor (0: frozen), the new branch at lr_actor; 1 keeps one parameter group. The
    setting survives a resume (the optimiser's groups restore)."""
    t = trainer(kind, stage1=1, restored_actor_lr=scale)
    t.iterate()  # stage 1: one group whatever the multiplier
    assert len(t.actor_opt.param_groups) == 1
    t.iterate()  # augments, then stage-2 updates
    groups = t.actor_opt.param_groups
    assert [g["lr"] for g in groups] == ([t.cfg.lr_actor] if scale == 1 else
                                         [t.cfg.lr_actor, t.cfg.lr_actor * scale])
    before = {k: v.detach().clone() for k, v in t.actor.items()}
    t.iterate()
    moved = {k: not torch.equal(before[k], v) for k, v in t.actor.items()}
    assert moved["join"]  # the branch learns
    base = [m for k, m in moved.items() if not t.shape["actor"].grown(k)]
    assert base and (not any(base) if scale == 0 else all(base))
    b = trainer(kind, stage1=1, restored_actor_lr=scale)
    b.load_state_dict(t.state_dict())
    assert [g["lr"] for g in b.actor_opt.param_groups] == [g["lr"] for g in groups]
    ma, mb_ = t.iterate(), b.iterate()
    assert all(np.array_equal(ma[k], mb_[k]) for k in ma)


@pytest.mark.parametrize("branch_goals, taken_value", [(False, "global"), (True, "global"),
                                                       (True, "credit")])
def test_credit_advantage_is_eq_3_6_by_brute_force(float64, branch_goals, taken_value):
    """Eq. 3.6 term by term; ``taken_value = "credit"``: the first term is the credit
    function Q_c(s, a^m, g^n) of agent m's action instead of the global Q_n(s, a)."""
    t = trainer(stage1=0, n=3, branch_goals=branch_goals, taken_value=taken_value)
    mb = minibatch(t)
    pi = t.policy(t.actor, mb.obs, 0.2)
    got = t.advantage(mb, pi)  # [R, S, m]
    N, A = 3, 3
    s_ag = mb.s_ag
    o_self, goal, _ = t.game.split(mb.obs)
    want = torch.zeros_like(got)
    for i in range(mb.actions.shape[1]):
        for m in range(N):
            for n in range(N):
                # Q_n(s, a): global Q for goal n with the joint action
                oth = [j for j in range(N) if j != n]
                a1 = torch.nn.functional.one_hot(mb.actions[0, i], A).double()
                xq = torch.cat([s_ag[0, i, n], goal[0, i, n], a1[n]])
                g_oth = [goal[0, i, oth].flatten()] if branch_goals else []  # A.8.2 (SUMO)
                bq = torch.cat([s_ag[0, i, oth].flatten(), a1[oth].flatten(), *g_oth])
                q = t.shape["q"].apply(t.q, xq[None, None], bq[None, None])[0, 0, 0]
                base, credit = 0.0, []
                for b in range(A):
                    xc = torch.cat([s_ag[0, i, n], goal[0, i, n], torch.eye(A)[b].double()])
                    bc = torch.cat([s_ag[0, i, m], s_ag[0, i, oth].flatten(), *g_oth])
                    qc = t.shape["qc"].apply(t.qc, xc[None, None], bc[None, None])[0, 0, 0]
                    base = base + pi[0, i, m, b] * qc
                    credit.append(qc)
                if taken_value == "credit":
                    q = credit[int(mb.actions[0, i, m])]
                want[0, i, m] += q - base
    assert torch.allclose(got, want, atol=1e-10)


def test_policy_gradient_against_finite_differences(float64):
    """The actor's update direction is eq. 3.5: the gradient of the trainer's actor loss is
    minus the finite-difference gradient of J = (1/S) sum_i sum_m sum_n log pi_eps(a^m | o^m)
    A_nm, with pi written out here from the parameters (A_nm from ``advantage``, checked
    against eq. 3.6 by the brute-force test above)."""
    t = trainer(stage1=0)
    mb = minibatch(t)
    eps, A = 0.1, 3
    weight = t.advantage(mb, t.policy(t.actor, mb.obs, eps).detach())  # sum_n A_nm [R, S, m]

    def pi(p, o):  # the stage-2 actor of Diss §3.3.5 written out: h* joins the o_others branch
        o_self, goal, others = t.game.split(o)
        x = torch.cat([o_self, goal], -1)
        h1 = torch.relu(x @ p["w0"][0] + p["b0"][0, 0])
        b = torch.relu(others @ p["branch.w0"][0] + p["branch.b0"][0, 0])
        h2 = torch.relu(h1 @ p["w1"][0] + p["b1"][0, 0] + b @ p["join"][0])
        logits = h2 @ p["w2"][0] + p["b2"][0, 0]
        return (1 - eps) * torch.softmax(logits, -1) + eps / A

    def J(p):
        probs = pi(p, mb.obs[0])  # [S, m, A]
        logp = torch.log(probs.gather(-1, mb.actions[0][..., None])[..., 0])
        return (logp * weight[0]).sum(-1).mean()

    params = {k: v.detach().clone().requires_grad_(True) for k, v in t.actor.items()}
    t.actor_loss(t.policy(params, mb.obs, eps), mb, weight).sum().backward()
    rng = np.random.default_rng(0)
    for name in ("w0", "join", "branch.w0", "w2", "b1"):
        p = params[name]
        for _ in range(3):
            idx = tuple(int(rng.integers(n)) for n in p.shape)
            h = 1e-6
            plus = {k: v.detach().clone() for k, v in params.items()}
            minus = {k: v.detach().clone() for k, v in params.items()}
            plus[name][idx] += h
            minus[name][idx] -= h
            fd = (J(plus) - J(minus)).item() / (2 * h)
            assert -p.grad[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_train_step_credit_loss_is_algorithm_6(float64):
    """The credit loss a train step reports is Algorithm 6 lines 9-11 computed here: targets
    y^{n,m} = r^n + gamma Q_c'(s', a'^m, g^n) with a' drawn from the target actor (with the
    exploration floor) and the target critic, bootstrapping unless the step was terminal."""
    import copy

    t = trainer(stage1=0, n=3)
    for _ in range(2):
        t.iterate()
    mb = minibatch(t)
    twin = copy.deepcopy(t)
    eps, N, A = t.epsilon(), 3, 3
    from learners.replicas import categorical

    a_next = categorical(twin.train_rng, twin.policy(twin.actor_t, mb.next_obs, eps))
    reported = t.train_step(mb)["credit_loss"]

    def qc(params, s_ag, goal, n, m, a):
        oth = [j for j in range(N) if j != n]
        x = torch.cat([s_ag[n], goal[n], torch.eye(A)[a].double()])
        br = torch.cat([s_ag[m], s_ag[oth].flatten()])
        return twin.shape["qc"].apply(params, x[None, None], br[None, None])[0, 0, 0]

    _, goal, _ = t.game.split(mb.obs)
    _, goal2, _ = t.game.split(mb.next_obs)
    total = 0.0
    S = mb.actions.shape[1]
    for i in range(S):
        for n in range(N):
            for m in range(N):
                y = mb.rewards[0, i, n] + t.cfg.gamma * (1 - mb.done[0, i]) * qc(
                    twin.qc_t, mb.next_s_ag[0, i], goal2[0, i], n, m, int(a_next[0, i, m]))
                q = qc(twin.qc, mb.s_ag[0, i], goal[0, i], n, m, int(mb.actions[0, i, m]))
                total += float(((y - q) ** 2).detach())
    assert reported[0] == pytest.approx(total / (S * N * N), rel=1e-9)


def test_time_limit_bootstraps_and_natural_ends_are_terminal():
    t = trainer(stage1=0)
    game = t.game
    batch = t.play(game, t.params, 0.5, 6, t.rng, t.act_rng)
    fields, valid = t.transitions(batch)
    T = game.max_steps
    done = fields["done"].reshape(T, -1)  # one replica: rows are (t, b)
    mask = batch.mask
    ended = mask * (1 - torch.cat([mask[1:], torch.zeros_like(mask[:1])]))
    assert torch.equal(done[:-1], ended[:-1]) and not done[-1].any()
    alive_at_cap = mask[-1] > 0
    assert alive_at_cap.any() or ended[:-1].sum() == mask.shape[1]
    nxt = fields["next_obs"].reshape(T, *batch.obs.shape[1:])
    assert torch.equal(nxt[-1], batch.final["obs"]) and torch.equal(nxt[:-1], batch.obs[1:])
    off = trainer(stage1=0, bootstrap_time_limit=False)
    assert torch.equal(off.transitions(batch)[0]["done"].reshape(T, -1)[-1], mask[-1])


def test_credit_loss_gradient_against_finite_differences(float64):
    """d/d theta_Qc of the TD loss of eq. 3.4 (targets fixed) by central differences."""
    t = trainer(stage1=0)
    mb = minibatch(t)
    a_next = mb.actions.flip(-1)  # any fixed next actions
    with torch.no_grad():
        y = mb.rewards[..., None] + 0.99 * (1 - mb.done)[:, :, None, None] * t.credit_values(
            t.qc_t, mb, True, a_next)

    def loss(params):
        return ((y - t.credit_values(params, mb, False, mb.actions)) ** 2).mean()

    params = {k: v.detach().clone().requires_grad_(True) for k, v in t.qc.items()}
    loss(params).backward()
    for name in ("w0", "join", "b1"):
        p = params[name]
        idx = (0,) * p.dim()
        h = 1e-6
        plus = {k: v.detach().clone() for k, v in params.items()}
        minus = {k: v.detach().clone() for k, v in params.items()}
        plus[name][idx] += h
        minus[name][idx] -= h
        fd = (loss(plus) - loss(minus)).item() / (2 * h)
        assert p.grad[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("kind", ["cm3", "direct", "qv"])
def test_resume_and_seed_independence(kind):
    a = trainer(kind, seeds=(0, 1), stage1=1)
    for _ in range(2):
        a.iterate()
    b = trainer(kind, seeds=(0, 1), stage1=1)
    b.load_state_dict(a.state_dict())
    ma, mb_ = a.iterate(), b.iterate()
    assert all(np.array_equal(ma[k], mb_[k]) for k in ma)
    alone = trainer(kind, seeds=(1,), stage1=1)
    for _ in range(3):
        m1 = alone.iterate()
    assert np.array_equal(m1["collective"], ma["collective"][1:])
    one = a.replica(1)
    act = one.act_one(np.zeros(a.game.observation_space.shape, np.float32), np.ones(3, bool),
                      torch.Generator().manual_seed(0))
    assert 0 <= act < 3


def test_stage1_learns_to_reach_the_goal():
    """Stage 1 alone (the induced single-agent MDP) improves its return on the toy line."""
    from learners.pg import LinearSchedule

    cfg = CM3Config(batch=8, updates=8, minibatch=64, lr_actor=1e-3,
                    stage1=Stage1(iterations=60, minibatch=64, updates=8,
                                  epsilon=LinearSchedule(start=0.5, end=0.05, steps=20)))
    t = CM3Trainer(Line(2), cfg, [0, 1])
    first = np.mean([t.iterate()["collective"] for _ in range(5)])
    for _ in range(45):
        t.iterate()
    last = np.mean([t.iterate()["collective"] for _ in range(10)])
    assert t.stage == 1 and last > first + 0.5


def test_needs_a_multi_goal_game():
    from econsim import envs

    with pytest.raises(ValueError, match="multi-goal game"):
        CM3Trainer(envs.make("ipd"), CM3Config(), [0])


def test_evaluation_in_chunks_averages_separate_streams():
    t = trainer(stage1=0, seeds=(0, 1))
    whole = t.evaluate(6)
    assert all(np.array_equal(whole[k], t.evaluate(6, chunk=6)[k]) for k in whole)
    parts = t.evaluate(6, chunk=4)  # 4 + 2 episodes from two streams, weighted by size
    assert parts["collective"].shape == (2,) and not np.array_equal(parts["collective"],
                                                                    whole["collective"])


@pytest.mark.parametrize("whose", ["acting", "goal"])
def test_credit_function_reads_the_acting_agents_window(float64, whose):
    """Checkers (o_self holds an image): the credit function Q_c(s, a^m, g^n) reads acting
    agent m's o_self (``credit_observation = "acting"``) or goal agent n's (``"goal"``);
    every action at once (the baseline of eq. 3.6) agrees with the taken action's value."""
    from econsim import envs

    game = envs.make("checkers", max_steps=6)
    cfg = CM3Config(batch=2, updates=1, minibatch=8, hidden=[8, 8], branch=[4], q_branch=[4],
                    credit_branch=[4], credit_observation=whose,
                    stage1=Stage1(iterations=0, minibatch=8, updates=1))
    t = CM3Trainer(game, cfg, [0])
    mb = minibatch(t)
    o_self, goal, _ = game.split(mb.obs)
    with torch.no_grad():
        every = t.credit_values(t.qc, mb)  # [R, S, n, m, A]
        taken = t.credit_values(t.qc, mb, actions=mb.actions)  # [R, S, n, m]
    gathered = every.gather(-1, mb.actions[:, :, None, :, None].expand(-1, -1, 2, -1, 1))
    assert torch.allclose(taken, gathered[..., 0])
    i = 3
    assert not torch.equal(o_self[0, i, 0], o_self[0, i, 1])  # the two readings differ
    for n in range(2):
        for m in range(2):
            seen = o_self[0, i, m if whose == "acting" else n]
            x = torch.cat([mb.s_env[0, i], mb.s_ag[0, i, n], goal[0, i, n], seen,
                           torch.eye(t.A)[int(mb.actions[0, i, m])].double()])
            br = torch.cat([mb.s_ag[0, i, m], mb.s_ag[0, i, 1 - n]])
            with torch.no_grad():
                want = t.shape["qc"].apply(t.qc, x[None, None], br[None, None])[0, 0, 0]
            assert taken[0, i, n, m] == pytest.approx(float(want), rel=1e-10)


def test_checkers_credit_function_restores_stage_1_on_the_diagonal(float64):
    """Function augmentation on Checkers (o_self an image): with the new branch zero, the
    credit function Q_c(s, a^m, g^n) of the acting agent m = n is the stage-1 Q^1 of that
    agent, its own window included (Diss Algorithm 4)."""
    from econsim import envs

    game = envs.make("checkers", max_steps=6)
    cfg = CM3Config(batch=2, updates=1, minibatch=8, hidden=[8, 8], branch=[4], q_branch=[4],
                    credit_branch=[4], stage1=Stage1(iterations=1, minibatch=8, updates=1))
    t = CM3Trainer(game, cfg, [0])
    t.iterate()
    q1, q1_shape = {k: v.detach().clone() for k, v in t.q.items()}, t.shape["q"]
    t.augment()
    mb = minibatch(t)
    zero = {k: (torch.zeros_like(v) if k == "join" else v) for k, v in t.qc.items()}
    with torch.no_grad():
        every = t.credit_values(zero, mb)  # [R, S, n, m, A]
        for a in range(t.A):
            act = torch.nn.functional.one_hot(torch.full(mb.actions.shape, a), t.A).double()
            want = q1_shape.apply(q1, torch.cat([t.seen(mb), act], -1))[..., 0]  # [R, S, n]
            diagonal = every[..., a].diagonal(dim1=2, dim2=3)  # [R, S, n]
            torch.testing.assert_close(diagonal, want)
        assert not torch.allclose(every[:, :, 0, 1], every[:, :, 0, 0])


@pytest.mark.parametrize("image,kernel,filters", [((5, 5, 3), (3, 3), 6), ((3, 9, 2), (3, 5), 4)])
def test_stem_is_a_valid_convolution_of_its_slice(float64, image, kernel, filters):
    """``Stem`` (A.8.3's conv layers as one matrix product) computes torch's valid, stride-1
    conv2d + ReLU of the image in its slice, output ordered (row, column, filter), and its
    kernel receives the same gradient."""
    from learners.nets import AugmentedMLP, Stem

    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    stem = Stem(3, image, filters, kernel)
    params = stem.init(gens)
    with torch.no_grad():  # a bias per filter, so a filter's outputs are told apart
        params["conv.b"].copy_(torch.randn(2, filters))
    x = torch.randn(2, 5, 3 + stem.size + 2, dtype=torch.float64)
    got = stem.apply(params, x)
    H, W, C = image
    want = []
    for p in range(2):
        img = x[p, :, 3:3 + stem.size].reshape(5, H, W, C).permute(0, 3, 1, 2)
        y = torch.relu(torch.nn.functional.conv2d(img, params["conv.w"][p],
                                                  params["conv.b"][p]))
        want.append(y.permute(0, 2, 3, 1).reshape(5, -1))
    want = torch.stack(want)
    assert got.shape == (2, 5, stem.features) == want.shape
    torch.testing.assert_close(got, want)
    weights = torch.randn_like(got)  # a loss that weighs every output differently
    g_got = torch.autograd.grad((got * weights).sum(), [params["conv.w"], params["conv.b"]])
    g_want = torch.autograd.grad((want * weights).sum(), [params["conv.w"], params["conv.b"]])
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="overlap"):
        AugmentedMLP(stem.size, (4,), 1, stems=(stem,))  # runs past the input


def test_a_branch_without_a_hidden_layer_to_join_is_refused():
    """A multi-agent actor with ``hidden = []`` has no layer for its o_others branch: one
    ValueError naming what is allowed (the CLI's one-line refusal), not a modulo by zero; a
    one-agent network without hidden layers is fine."""
    from learners.nets import AugmentedMLP

    with pytest.raises(ValueError, match="allowed: at least one hidden layer"):
        trainer(stage1=0, hidden=[])
    AugmentedMLP(3, (), 5)  # no branch: a linear network


def test_checkers_critic_convolutions_read_the_grid_and_the_window(float64):
    """The critics' stems read s_T at the start of their input and o_self_T where ``seen``
    puts it (after s_env, s^n, g^n): their features are torch's conv2d of those slices."""
    from econsim import envs

    game = envs.make("checkers", max_steps=6)
    t = CM3Trainer(game, CM3Config(hidden=[8, 8], branch=[4], q_branch=[4], batch=2,
                                   stage1=Stage1(iterations=0)), [0])
    mb = minibatch(t)
    x = t.q_inputs(mb, mb.actions)[0]  # [R, S, N, base_in]
    net, p = t.shape["q"], t.q
    feats = net.front(p, x.reshape(1, -1, x.shape[-1]))
    o_self = game.split(mb.obs)[0].reshape(1, -1, game.self_size)
    grid = mb.s_env[:, :, None].expand(-1, -1, 2, -1).reshape(1, -1, game.env_state_size)
    grid_feats, window_feats = (st.features for st in net.stems)
    for i, (image, img, at) in enumerate(((game.env_image, grid, 0),
                                          (game.self_image, o_self, grid_feats))):
        H, W, C = image
        y = torch.nn.functional.conv2d(
            img[0, :, :H * W * C].reshape(-1, H, W, C).permute(0, 3, 1, 2),
            p[f"stem{i}.conv.w"][0], p[f"stem{i}.conv.b"][0]).relu()
        want = y.permute(0, 2, 3, 1).reshape(y.shape[0], -1)
        torch.testing.assert_close(feats[0, :, at:at + want.shape[1]], want)
    rest = torch.cat([mb.s_ag, game.split(mb.obs)[1], game.split(mb.obs)[0][..., H * W * C:],
                      torch.nn.functional.one_hot(mb.actions, t.A).double()], -1)
    torch.testing.assert_close(feats[0, :, grid_feats + window_feats:],
                               rest.reshape(-1, rest.shape[-1]))


def test_a_run_stored_with_dense_layers_does_not_load_into_convolutions():
    from econsim import envs

    game = envs.make("checkers", max_steps=6)
    make = lambda conv: CM3Trainer(game, CM3Config(  # noqa: E731
        hidden=[8, 8], branch=[4], q_branch=[4], conv=conv, stage1=Stage1(iterations=0)), [0])
    with pytest.raises(ValueError, match="conv = false"):
        make(True).load_state_dict(make(False).state_dict())


@pytest.mark.parametrize("conv", [True, False])
def test_checkers_networks_follow_a83(conv):
    """Checkers (``conv``, default): the actor's window through conv(6, 3x3) and a 32-unit
    layer, then with o_self_V, the previous action and the goal into the first layer; the
    critics' item grid through conv(4, 3x5) and window through conv(6, 3x3), flattened beside
    s^n, g^n, the rest of o_self and the action; IAC's V the window's conv; ``conv = false``:
    dense layers on the flat images."""
    from econsim import envs
    from learners.iac import IACConfig, IACTrainer

    game = envs.make("checkers", max_steps=6)
    t = CM3Trainer(game, CM3Config(hidden=[16, 16], branch=[4], q_branch=[4], conv=conv,
                                   stage1=Stage1(iterations=0)), [0])
    (wh, ww, wc), (gh, gw, gc) = game.self_image, game.env_image
    window, grid = wh * ww * wc, gh * gw * gc
    rest = game.self_size - window  # o_self_V and the previous action
    iac = IACTrainer(game, IACConfig(hidden=[16, 16], conv=conv), [0])
    # A.8.3: window conv(6, 3x3) (actor: then 32 units), grid conv(4, 3x5); valid, stride 1
    window_out, grid_out = 6 * (wh - 2) * (ww - 2), 4 * (gh - 2) * (gw - 4)
    if conv:
        assert t.actor["stem0.conv.w"].shape == (1, 6, wc, 3, 3)
        assert t.actor["stem0.dense.w0"].shape == (1, window_out, 32)
        assert t.actor["w0"].shape[1] == 32 + rest + game.goal_size
        for name in ("q", "qc"):
            p = getattr(t, name)
            assert p["stem0.conv.w"].shape == (1, 4, gc, 3, 5)
            assert p["stem1.conv.w"].shape == (1, 6, wc, 3, 3)
            assert p["w0"].shape[1] == grid_out + window_out + game.agent_state_size + \
                game.goal_size + rest + t.A
        assert iac.v["stem0.conv.w"].shape == (1, 6, wc, 3, 3)
    else:
        assert not any(k.startswith("stem") for k in {**t.actor, **t.q, **iac.v})
        assert t.q["w0"].shape[1] == grid + game.agent_state_size + game.goal_size + \
            game.self_size + t.A
        assert t.actor["w0"].shape[1] == window + rest + game.goal_size


def test_figure_benchmark_runs_on_a_tiny_budget(tmp_path):
    """``benchmarks/cm3.py`` end to end on 2 iterations: the table, the PNG, ``--conv off``
    reaching the stored scenario (and found again by ``--resume``), and the curves' CSV
    gathering the seeds of separate invocations (one seed's rows replaced, not repeated)."""
    from benchmarks import cm3 as bench
    from econsim import runner

    args = ["--envs", "checkers", "--methods", "iac", "--iterations", "2", "--seeds", "0",
            "--root", str(tmp_path / "runs"), "--docs", str(tmp_path), "--quiet", "--conv",
            "off"]
    threads = torch.get_num_threads()
    try:
        table = bench.main(args)
        bench.main([*args, "--resume"])  # the finished run is reused, not trained again
        other = [*args[:args.index("--seeds") + 1], "1", *args[args.index("--seeds") + 2:]]
        both = bench.main(other)
        with pytest.raises(SystemExit, match=r"holds runs with \['iterations', 'conv'\] = "
                           r"\[\(2, 'off'\)\], these have \[\(2, 'on'\)\]"):
            bench.main(args[:-2])  # Checkers' convolutions: another configuration
    finally:
        torch.set_num_threads(threads)  # the benchmark uses one
    assert table.method.tolist() == ["iac"] and (tmp_path / "cm3_checkers.png").exists()
    convs = [runner.load_result(d.name, tmp_path / "runs").scenario.algorithm["conv"]
             for d in (tmp_path / "runs").iterdir()]
    assert sorted(convs) == [False, False, True]
    saved = pd.read_csv(tmp_path / "cm3_checkers_curves.csv")
    assert sorted(set(saved.seed)) == [0, 1] and len(set(saved.run)) == 2
    assert len(saved) == 2 * len(saved[saved.seed == 1])  # seed 0 once, after three runs
    assert both.seeds.tolist() == [2]
    assert len(list((tmp_path / "runs").iterdir())) == 3  # the conv run is kept, not gathered


def test_qmix_probe_reads_a_stored_run(tmp_path):
    """``benchmarks/qmix_probe.py`` on a 2-iteration navigation QMIX run (made with an ``env``
    override, which is what ran): one row per seed x agent, the monotonic mixer's gain
    positive; another method's run is refused; the untrained networks of a scenario: no
    overestimate with the output layer at zero, some with Glorot; the team's return to go
    with gamma 1 from the start is what the evaluation reports (the transitions' layout)."""
    from benchmarks import qmix_probe
    from benchmarks.common import run_scenarios
    from econsim import runner

    root = tmp_path / "runs"
    threads = torch.get_num_threads()
    try:
        done = run_scenarios(["nav_merge_qmix", "nav_merge_iac"], [0, 1], 2, root,
                             progress=False, env={"max_steps": 20})
        table = qmix_probe.main([done.run_id.iloc[0], "--root", str(root), "--episodes", "2"])
        with pytest.raises(SystemExit, match="is iac on navigation, not qmix on any game"):
            qmix_probe.main([done.run_id.iloc[-1], "--root", str(root)])
        start = {o: qmix_probe.main(["--scenario", "nav_merge_qmix", "--out-init", o,
                                     "--seeds", "0", "--episodes", "2"])
                 for o in ("zero", "glorot")}
    finally:
        torch.set_num_threads(threads)  # the probe uses one
    assert len(table) == 2 * 2 and set(table.seed) == {0, 1} and (table.gain > 0).all()
    assert np.isfinite(table[["agent_q", "q_tot", "return", "overestimate"]].to_numpy()).all()
    stored = runner.load_result(done.run_id.iloc[0], root).scenario.resolved()
    assert stored["env"]["max_steps"] == 20
    assert (start["zero"].overestimate == 0).all() and (start["glorot"].overestimate > 0).all()

    trainer = qmix_probe.untrained("nav_merge_qmix", [0, 1], None)
    batch, mb, _ = qmix_probe.play(trainer, 3)
    T = batch.mask.shape[0]
    first = qmix_probe.returns(trainer, mb, T, 1.0).reshape(2, T, 3)[:, 0].mean(-1)
    want = trainer.metrics(batch, trainer.game)["collective"]
    assert np.allclose(first.numpy(), want, rtol=1e-5)
