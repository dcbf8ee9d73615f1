"""Cleanup learners: LIO on actor-critic agents, AC / AC-d / AC-c, per-agent event metrics,
and the tiny-budget Cleanup benchmark (Diss §5.6, §B.4.2; issue 5)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from econsim import envs, scenario
from econsim.core import Step
from learners import default_kind, trainer_class
from learners.lio_ac import LIOACConfig, LIOACTrainer

SCENARIOS = ["cleanup7_lio", "cleanup7_ac", "cleanup7_acd", "cleanup7_acc", "cleanup7_ia",
             "cleanup7_cen"]


def _trainer(name: str, seeds=(0, 1), **override):
    """Trainer of scenario ``name`` (its resolved settings, agents filled in)."""
    data = scenario.load(name).resolved()
    env = {k: v for k, v in data["env"].items() if k != "name"}
    game = envs.make(data["env"]["name"], **env)
    alg = data["algorithm"]
    T = trainer_class(alg["name"])
    cfg = {k: v for k, v in alg.items() if k != "name"}
    cfg.setdefault("agents", [default_kind(alg["name"])] * game.n_agents)
    return T(game, T.Config(**{**cfg, **override}), list(seeds))


def _Recorder(game):
    """The same game (its class, hence its declared capabilities) keeping every step's
    ``info`` and ``done``."""

    class Recording(type(game)):
        def step(self, state, actions, rng) -> Step:
            out = super().step(state, actions, rng)
            self.infos.append({k: np.array(v) for k, v in out.info.items()})
            self.dones.append(np.array(out.done))
            return out

    rec = object.__new__(Recording)
    rec.__dict__.update(vars(game))
    rec.infos, rec.dones = [], []
    return rec


# ------------------------------------------------------------------------ scenarios
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenarios_build_the_diss_learners(name):
    tr = _trainer(name, seeds=(0,))
    assert tr.game.name == "cleanup" and tr.N == 2 and tr.agents.A == 6
    # no parameter sharing (Diss §5.3.2) except in the centralised upper bound
    assert tr.agents.share == (name == "cleanup7_cen")
    assert tr.cfg.entropy == 0.1 and tr.cfg.epsilon.end == 0.05
    expected = {"cleanup7_lio": ["lio", "lio"], "cleanup7_ac": ["ac", "ac"],
                "cleanup7_acd": ["ac-d", "ac-d"], "cleanup7_acc": ["ac-c", "ac-c"],
                "cleanup7_ia": ["ia", "ia"], "cleanup7_cen": ["cen", "cen"]}[name]
    assert tr.kinds == expected
    # Table B.5, 7x7 (Cen: the AC setting)
    lr = {"cleanup7_ac": 1e-3, "cleanup7_ia": 1e-3, "cleanup7_cen": 1e-3}.get(name, 1e-4)
    assert tr.cfg.lr == lr


@pytest.mark.parametrize("name", ["cleanup10_lio", "cleanup10_ac", "cleanup10_ia",
                                  "cleanup10_cen"])
def test_10x10_scenarios_follow_table_b5_and_train(name):
    tr = _trainer(name, seeds=(0,))
    assert tr.game.params.map == "10x10" and tr.N == 3 and tr.agents.obs_dim >= 15 * 15 * 3
    # Table B.5, 10x10: eps 0.5 -> 0.05 over 1000 (LIO) / 5000 (AC, IA) iterations
    steps, lr = {"cleanup10_lio": (1000, 1e-4), "cleanup10_ac": (5000, 1e-3),
                 "cleanup10_ia": (5000, 1e-3), "cleanup10_cen": (1000, 1e-3)}[name]
    assert (tr.cfg.epsilon.start, tr.cfg.epsilon.end, tr.cfg.epsilon.steps) == (0.5, 0.05, steps)
    assert tr.cfg.lr == lr
    m = tr.iterate()
    assert m["apples"].shape == (1, 3) and np.all(np.isfinite(m["collective"]))


def test_lio_ac_config_defaults_and_validation():
    cfg = LIOACConfig()
    assert cfg.lr_cost is None and cfg.cost == 1e-4 and cfg.cost_on_sigmoid
    assert cfg.r_max == 2.0 and cfg.tau == 0.01 and cfg.lr_critic == 1e-3
    for bad in ({"share": True}, {"one_episode": True}, {"agents": ["lio", "pg"]}):
        with pytest.raises(ValueError):
            LIOACConfig(**bad)


# ------------------------------------------------------------------------- training
@pytest.mark.parametrize("name", SCENARIOS)
def test_learners_iterate_on_cleanup_with_finite_metrics(name):
    torch.manual_seed(0)
    tr = _trainer(name)
    for _ in range(2):
        m = tr.iterate()
    assert tr.iteration == 2
    for k in ("collective", "value_loss", "apples", "waste_cleaned", "fired", "given"):
        assert np.all(np.isfinite(m[k])), k
    assert m["collective"].shape == (2,) and m["apples"].shape == (2, 2)
    np.testing.assert_allclose(m["collective"], m["return"].sum(1), rtol=1e-6)
    ev = tr.evaluate(3)
    assert np.all(np.isfinite(ev["collective"]))
    if name == "cleanup7_lio":
        assert (m["given"] > 0).all()  # sigmoid incentives are paid every step
        np.testing.assert_allclose(m["given"].sum(1), m["received"].sum(1), rtol=1e-5)
    if name in ("cleanup7_ac", "cleanup7_ia", "cleanup7_cen"):
        assert (m["given"] == 0).all()


def test_event_sums_in_metrics_equal_the_info_sums():
    tr = _trainer("cleanup7_ac", seeds=(0, 1))
    rec = _Recorder(tr.game)
    tr.game = rec
    batch = tr.run_episodes(tr.params, 0.5, 3)  # 2 replicas x 3 episodes
    m = tr.metrics(batch)
    alive = np.ones(6)
    sums = {k: np.zeros((6, 2)) for k in ("apples", "waste_cleaned", "fired", "fired_hit")}
    for info, done in zip(rec.infos, rec.dones, strict=True):
        for k in sums:
            sums[k] += info[k] * alive[:, None]
        alive = alive * (1 - done)
    for k, total in sums.items():
        np.testing.assert_allclose(m[k], total.reshape(2, 3, 2).mean(1), rtol=1e-6)
        np.testing.assert_allclose(batch.events[k].sum(0).numpy(), total, rtol=1e-6)
    # the collected apples are the extrinsic return; fired = clean actions
    np.testing.assert_allclose(m["apples"], m["return"], rtol=1e-6)
    np.testing.assert_allclose(m["fired"], m["n_clean"], rtol=1e-6)
    assert "waste_density" not in m  # per-world info is not a per-agent event


def test_lio_ac_outer_weights_are_extrinsic_td_errors():
    tr = _trainer("cleanup7_lio", seeds=(0,))
    batch = tr.run_episodes(tr.params, 0.5, 2)
    for d in (tr.agents.critic, tr.agents.target):  # V = 0: TD errors equal the extrinsic rewards
        for v in d.values():
            v.data.zero_()
    got = tr.outer_returns(batch)
    want = tr.agents.members(batch.env_rewards * batch.mask[..., None])
    torch.testing.assert_close(got, want)


def test_lio_ac_outer_weights_as_eq_5_10_are_the_extrinsic_reward_to_go():
    """``outer_weight = "return"``: each step's weight is the giver's discounted extrinsic
    return from that step on (eq. 5.10), summed here by hand; the critic plays no part."""
    tr = _trainer("cleanup7_lio", seeds=(0, 1), outer_weight="return")
    batch = tr.run_episodes(tr.params, 0.5, 2)
    r = (batch.env_rewards * batch.mask[..., None]).numpy()  # [T, R*B, N]
    T, gamma = r.shape[0], tr.cfg.gamma
    want = np.zeros_like(r)
    for t in range(T):
        want[t] = sum(gamma ** (k - t) * r[k] for k in range(t, T))
    torch.testing.assert_close(tr.outer_returns(batch), tr.agents.members(torch.from_numpy(want)))
    for d in (tr.agents.critic, tr.agents.target):  # the critic does not enter
        for v in d.values():
            v.data.add_(1.0)
    torch.testing.assert_close(tr.outer_returns(batch), tr.agents.members(torch.from_numpy(want)))


@pytest.mark.parametrize("conv", [False, True])
def test_lio_ac_incentive_step_reaches_eta_through_the_recipient_update(conv):
    tr = _trainer("cleanup7_lio", seeds=(0,), conv=conv)
    eps = tr.epsilon()
    tau = tr.run_episodes(tr.params, eps, 1)
    pay, _ = tr.full_transfers(tr.eta, tau)
    prime = tr.agents.update({k: v.detach() for k, v in tr.params.items()}, tau,
                      tr.total_rewards(tau, pay), eps)
    assert all(v.requires_grad for v in prime.values())  # theta_hat is a function of eta
    tau_hat = tr.run_episodes({k: v.detach() for k, v in prime.items()}, eps, 1)
    grads = tr.incentive.meta_gradients(prime, tau_hat, None, eps)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    before = {k: v.detach().clone() for k, v in tr.eta.items()}
    critic = {k: v.detach().clone() for k, v in tr.agents.critic.items()}
    tr.iterate()
    assert any(not torch.equal(before[k], tr.eta[k]) for k in before)
    assert any(not torch.equal(critic[k], tr.agents.critic[k]) for k in critic)


@pytest.mark.parametrize(("conv", "incentive_conv", "want"),
                         [(False, None, False), (True, None, True), (True, False, False),
                          (False, True, True)])
def test_lio_ac_incentive_function_takes_the_conv_front_end(conv, incentive_conv, want):
    """Diss §B.4.2: the incentive function's conv layer, then the first FC layer, then the
    others' actions; ``incentive_conv`` follows ``conv`` unless set."""
    tr = _trainer("cleanup7_lio", seeds=(0,), conv=conv, incentive_conv=incentive_conv)
    eta = tr.incentive.eta
    assert ("conv.w" in eta) == want and ("pre.w0" in eta) == want
    if want:
        hidden = tr.cfg.incentive_hidden
        actions = (tr.N - 1) * tr.game.action_feature_size
        assert eta["w0"].shape[1:] == (hidden[0] + actions, hidden[1])
    tau = tr.run_episodes(tr.params, tr.epsilon(), 1)
    pay, sig = tr.full_transfers(tr.eta, tau)
    assert pay.shape[-2:] == (tr.N, tr.N) and float(sig.detach().max()) <= 1.0
    grads = torch.autograd.grad(sig.sum(), list(eta.values()))
    assert all(float(g.abs().sum()) > 0 for g in grads)


def test_lio_ac_incentive_conv_needs_an_image_game():
    game = envs.make("escape_room", n_agents=2, n_required=1)
    with pytest.raises(ValueError, match="algorithm.incentive_conv: escape_room has no image"):
        LIOACTrainer(game, LIOACTrainer.Config(incentive_conv=True), [0])


def test_lio_ac_replica_and_checkpoint_roundtrip():
    tr = _trainer("cleanup7_lio", seeds=(0, 1))
    tr.iterate()
    one = tr.replica(1)
    assert isinstance(one, LIOACTrainer) and one.R == 1
    for k, v in one.eta.items():
        torch.testing.assert_close(v, tr.eta[k][tr.G:2 * tr.G])
    for k, v in one.agents.critic.items():
        torch.testing.assert_close(v, tr.agents.critic[k][tr.N:2 * tr.N])
    state = tr.state_dict()
    other = _trainer("cleanup7_lio", seeds=(0, 1))
    other.load_state_dict(state)
    a, b = tr.iterate(), other.iterate()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_inequity_aversion_shaping_by_hand():
    tr = _trainer("cleanup7_ia", seeds=(0,))
    assert (tr.cfg.alpha, tr.cfg.beta, tr.cfg.smoothing) == (0.0, 0.05, 0.95)
    batch = tr.run_episodes(tr.params, 0.5, 1)
    T = batch.mask.shape[0]
    r = torch.zeros(T, 1, 2)
    r[0, 0, 0] = 1.0  # agent 0 collects an apple at t = 0, agent 1 at t = 1
    r[1, 0, 1] = 1.0
    batch.env_rewards = r
    u = tr.total_rewards(batch)
    d = 0.99 * 0.95
    # t=0: e = (1, 0): agent 0 is ahead by 1; t=1: e = (d, 1): agent 1 ahead by 1 - d
    torch.testing.assert_close(u[0, 0], torch.tensor([1.0 - 0.05, 0.0]))
    torch.testing.assert_close(u[1, 0], torch.tensor([0.0, 1.0 - 0.05 * (1 - d)]))
    torch.testing.assert_close(u[2, 0], torch.tensor([0.0, -0.05 * (d - d * d)]))
    tr.cfg.alpha = 0.5  # disadvantageous aversion charges the one behind
    torch.testing.assert_close(tr.total_rewards(batch)[0, 0], torch.tensor([0.95, -0.5]))


def test_cen_learns_from_the_collective_reward():
    tr = _trainer("cleanup7_cen", seeds=(0, 1))
    assert tr.params["pi.w0"].shape[0] == 2  # one shared policy per replica
    batch = tr.run_episodes(tr.params, 0.5, 2)
    batch.env_rewards = torch.rand_like(batch.env_rewards)
    u = tr.total_rewards(batch)
    torch.testing.assert_close(u[..., 0], batch.env_rewards.sum(-1))
    torch.testing.assert_close(u[..., 1], batch.env_rewards.sum(-1))


# ------------------------------------------------------------------------ benchmark
def test_cleanup_benchmark_tiny_budget(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import cleanup as bench

    df, dol = bench.main(["--iterations", "2", "--seeds", "0,1", "--root", str(tmp_path),
                          "--docs", str(tmp_path), "--quiet"])
    assert sorted(df.scenario) == sorted(["cleanup7_ac"] * 2 + ["cleanup7_lio"] * 2)
    assert np.isfinite(df.collective).all() and (df.iterations == 2).all()
    assert len(dol) == 2 * 2 * 2  # scenario x seed x agent
    for col in ("apples", "waste_cleaned", "given", "received", "return"):
        assert col in dol.columns and np.isfinite(dol[col]).all()
    np.testing.assert_allclose(dol.apples, dol["return"], rtol=1e-6)
    out = capsys.readouterr().out
    assert "Division of labour" in out and "ratio" in out


def test_cleanup_benchmark_designers_tiny_budget(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import cleanup as bench

    df, dol = bench.main(["--designers", "--iterations", "2", "--seeds", "0", "--root",
                          str(tmp_path), "--docs", str(tmp_path), "--quiet"])
    assert sorted(df.scenario) == ["cleanup7_dualrl", "cleanup7_metagrad"]
    np.testing.assert_allclose(df.collective, df.extrinsic - df.incentives, rtol=1e-5)
    assert {"received", "offer_clean", "offer_collect", "offer_else"} <= set(dol.columns)
    assert np.isfinite(dol[["received", "offer_clean"]]).all().all()
    assert "MetaGrad" in capsys.readouterr().out


def test_cleanup_benchmark_conv_option_reaches_the_run(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import cleanup as bench

    df, _ = bench.main(["--conv", "--scenarios", "cleanup7_ac", "--iterations", "1",
                        "--seeds", "0", "--root", str(tmp_path), "--docs", str(tmp_path),
                        "--quiet"])
    saved = scenario.load(tmp_path / df.run_id[0] / "scenario.toml")
    assert saved.resolved()["algorithm"]["conv"] is True


# --------------------------------------------------- the Cleanup audit (issue 16)
def _adam_steps(opt: torch.optim.Optimizer) -> set[int]:
    return {int(st["step"]) for st in opt.state.values()}


def test_lio_ac_takes_one_adam_step_of_eta_per_iteration_with_the_cost_in_it():
    """The cost joins the outer loss: one Adam step per iteration (the reference's single
    step); ``cost_double_step`` restores the earlier second, cost-only step."""
    tr = _trainer("cleanup7_lio", seeds=(0,))
    tr.iterate()
    assert _adam_steps(tr.incentive.opt) == {1}
    old = _trainer("cleanup7_lio", seeds=(0,), cost_double_step=True)
    old.iterate()
    assert _adam_steps(old.incentive.opt) == {2}
    # the first Adam step moves each weight by lr g / (|g| + 1e-8): lr x sign(g) unless the
    # gradient is tiny; the earlier double step moved them further
    lr = tr.cfg.lr_incentive
    fresh = _trainer("cleanup7_lio", seeds=(0,))
    before = {k: v.detach().clone() for k, v in fresh.eta.items()}
    fresh.iterate()
    moved = torch.cat([(v.detach() - before[k]).abs().flatten() for k, v in fresh.eta.items()])
    assert float(moved.max()) <= lr * 1.001
    assert float(moved[moved > 0].median()) == pytest.approx(lr, rel=1e-3)
    old_moved = torch.cat([(v.detach() - before[k]).abs().flatten()
                           for k, v in old.eta.items()])
    assert float(old_moved.median()) > 1.2 * lr


def test_lio_ac_on_cleanup_observes_the_image_only():
    """The running total given (up to ~100 beside pixels <= 1) is no input by default: the
    policy, critic and incentive function see the game's observation (plus, for the
    incentive function, the others' actions); ``observe_given = true`` restores it."""
    tr = _trainer("cleanup7_lio", seeds=(0,))
    image = int(np.prod(tr.game.observation_space.shape))
    assert tr.agents.obs_dim == image
    # the others' actions as the Diss's "used the cleaning beam" one-hot (2 per other)
    assert tr.incentive.inc_in == image + (tr.N - 1) * tr.game.action_feature_size
    actions = torch.tensor([[[0, tr.game.action_names.index("clean")]]])  # [1, 1, N]
    seen = tr.incentive.inputs(torch.zeros(1, 1, tr.N, image), actions)[..., image:]
    assert seen[0, 0].tolist() == [[0.0, 1.0], [1.0, 0.0]]  # giver 0 sees 1 clean, 1 sees 0 not
    onehot = _trainer("cleanup7_lio", seeds=(0,), incentive_actions="onehot")
    assert onehot.incentive.inc_in == image + (tr.N - 1) * tr.agents.A
    assert _trainer("cleanup7_lio", seeds=(0,), observe_given=True).agents.obs_dim == \
        image + tr.N - 1
    # the incentive paid at a step does not depend on what was paid before
    tau = tr.run_episodes(tr.params, tr.epsilon(), 1)
    pay, _ = tr.full_transfers(tr.eta, tau)
    again, _ = tr.full_transfers(tr.eta, tau)
    assert torch.equal(pay, again)
    given = tau.obs[..., image:]
    assert given.numel() == 0  # no running total in the recorded observations


@pytest.mark.parametrize("schedule", ["linear", "adaptive"])
def test_cost_weight_schedules_of_the_reference_code(schedule):
    """'linear': the cost's weight goes 0 -> 1 over cost_ramp iterations; 'adaptive': from 0,
    every cost_period iterations up by cost_period / cost_ramp when the period's extrinsic
    return beat the previous period's, else down, within [0, 1]; each replica on its own."""
    tr = _trainer("cleanup7_lio", seeds=(0, 1), cost_schedule=schedule, cost_ramp=4,
                  cost_period=1)
    inc = tr.incentive
    assert torch.equal(inc.cost_scale, torch.zeros(2))  # no cost at the start
    if schedule == "linear":
        for it in range(1, 7):
            tr.iterate()
            assert torch.allclose(inc.cost_scale, torch.full((2,), min(1.0, it / 4)))
        return
    # adaptive, driven by hand: returns rise on replica 0, fall on replica 1
    for it, ret in enumerate(([1.0, 5.0], [2.0, 4.0], [3.0, 3.0], [4.0, 2.0]), start=1):
        inc.schedule_cost(it, np.array(ret))
    # first period: no comparison yet; then three comparisons of step 1/4
    assert torch.allclose(inc.cost_scale, torch.tensor([0.75, 0.0]))
    state = tr.state_dict()
    again = _trainer("cleanup7_lio", seeds=(0, 1), cost_schedule=schedule, cost_ramp=4,
                     cost_period=1)
    again.load_state_dict(state)
    assert torch.equal(again.incentive.cost_scale, inc.cost_scale)
    assert torch.equal(tr.replica(0).incentive.cost_scale, torch.tensor([0.75]))
    # the cost is weighted per replica: replica 1 (weight 0) pays no cost
    tau = tr.run_episodes(tr.params, tr.epsilon(), 1)
    inc.cost_scale = torch.tensor([0.0, 0.0])
    assert float(inc.cost(tau).detach()) == 0.0



def _recorded_iteration(**opts):
    """A trainer after two iterations, the state before the second, its epsilon, and what
    the second did: the parameters each ``run_episodes`` call played, the batches (tau,
    tau_hat) and the gradients sent to the incentive step."""
    tr = _trainer("cleanup7_lio", seeds=(0,), **opts)
    tr.iterate()  # past the first iteration's fresh critic
    start = tr.state_dict()
    played_by, batches, sent = [], [], []
    play, step = tr.run_episodes, tr.incentive.step

    def record(params, *rest):
        played_by.append({k: v.detach().clone() for k, v in params.items()})
        batches.append(play(params, *rest))
        return batches[-1]

    tr.run_episodes = record
    tr.incentive.step = lambda grads: sent.append([g.clone() for g in grads]) or step(grads)
    eps = tr.epsilon()
    tr.iterate()
    return tr, start, eps, played_by, batches, sent


@pytest.mark.parametrize("bootstrap", ["target", "online"])
@pytest.mark.parametrize("timing", ["diss", "reference"])
def test_lio_ac_critic_timing_by_hand(timing, bootstrap):
    """One iteration recomputed from its own batches. ``critic_timing = "diss"``: the
    critic steps last (TD(0) on tau, extrinsic + incentives as paid); the played and the
    differentiable update and the giver's outer TD error read the critic and target from
    before it; the target moves once. ``"reference"``: the played update reads the critic
    from before its step, the differentiable inner step and the outer TD error the stepped
    critic and once-moved target, and the target moves twice. tau_hat is played by the new
    main policy."""
    # lr 0.02: the inner step's critic only moves the point where the outer gradient is
    # read (by lr x the TD errors' change), invisible at Cleanup's 1e-4
    opts = {"critic_timing": timing, "td_bootstrap": bootstrap, "batch": 1, "lr": 0.02}
    tr, start, eps, played_by, (tau, tau_hat), sent = _recorded_iteration(**opts)
    ref = _trainer("cleanup7_lio", seeds=(0,), **opts)
    ref.load_state_dict(start)
    theta = {k: v.detach() for k, v in start["params"].items()}
    pay, _ = ref.full_transfers(ref.eta, tau)
    clone = lambda d: {k: v.detach().clone() for k, v in d.items()}  # noqa: E731
    before = (clone(start["critic"]), clone(start["target"]))
    ref.agents.learn_values(tau, ref.total_rewards(tau))  # the critic's own step, by hand
    stepped = (clone(ref.agents.critic), clone(ref.agents.target))
    for k, v in stepped[0].items():
        torch.testing.assert_close(tr.agents.critic[k].detach(), v)
    assert not all(torch.equal(before[0][k], stepped[0][k]) for k in before[0])

    def update_with(critics, rewards):
        ref.agents.critic, ref.agents.target = clone(critics[0]), clone(critics[1])
        return ref.agents.update(theta, tau, rewards, eps)

    def grads_with(critics):
        prime = update_with(critics, ref.total_rewards(tau, pay))
        g = ref.incentive.meta_gradients(prime, tau_hat, None, eps)
        extra = torch.autograd.grad(ref.incentive.cost(tau), list(ref.eta.values()),
                                    allow_unused=True, retain_graph=True)
        return [a if e is None else a + e for a, e in zip(g, extra, strict=True)]

    read, other = (stepped, before) if timing == "reference" else (before, stepped)
    played = update_with(before, ref.total_rewards(tau, pay.detach()))
    for k, v in played.items():
        torch.testing.assert_close(played_by[1][k], v.detach())
        torch.testing.assert_close(tr.params[k], v.detach())
    want = grads_with(read)
    for got, w in zip(sent[0], want, strict=True):
        torch.testing.assert_close(got, w)
    assert any(not torch.allclose(a, b) for a, b in zip(want, grads_with(other), strict=True))
    keep = (1 - tr.cfg.tau) ** (2 if timing == "reference" else 1)
    for k, v in before[1].items():
        torch.testing.assert_close(tr.agents.target[k], keep * v + (1 - keep) * stepped[0][k])


def test_lio_ac_critic_timing_defaults_to_the_diss():
    cfg = LIOACConfig()
    assert cfg.critic_timing == "diss" and cfg.td_bootstrap == "target"


def test_lio_ac_reference_timing_moves_only_the_givers_targets_twice():
    """A plain AC agent among LIO givers: its target moves once per iteration (the
    reference's second move belongs to the incentive step, which only givers take)."""
    game = envs.make("escape_room", n_agents=3, n_required=1)
    cfg = LIOACConfig(agents=["lio", "lio", "ac"], critic_timing="reference", batch=2,
                      tau=0.25)
    tr = LIOACTrainer(game, cfg, [0, 1])
    target0 = {k: v.clone() for k, v in tr.agents.target.items()}
    tr.iterate()
    critic = {k: v.detach() for k, v in tr.agents.critic.items()}
    for r in range(tr.R):
        for a in range(tr.N):
            row = r * tr.N + a
            keep = (1 - cfg.tau) ** (2 if a in tr.givers else 1)
            for k, v in target0.items():
                torch.testing.assert_close(tr.agents.target[k][row],
                                           keep * v[row] + (1 - keep) * critic[k][row])


def test_lio_ac_bootstrap_time_limit_changes_only_the_last_step():
    """``bootstrap_time_limit`` (the reference code): Cleanup's episodes end by the
    limit only, so every episode's 50th TD error reads V after it; the others are as with
    the terminal default. A full iteration runs with it."""
    boot = _trainer("cleanup7_lio", seeds=(0, 1), batch=2, bootstrap_time_limit=True)
    plain = _trainer("cleanup7_lio", seeds=(0, 1), batch=2, bootstrap_time_limit=False)
    batch = boot.run_episodes(boot.params, 0.5, 2)
    assert batch.mask.all() and batch.final["obs"].shape[:2] == batch.mask.shape[1:] + (2,)
    for tr in (boot, plain):
        for v in tr.agents.target.values():
            v.data.add_(0.5)  # V after the limit is not zero
    rewards = boot.total_rewards(batch)
    a, b = boot.agents.advantages(batch, rewards), plain.agents.advantages(batch, rewards)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert (a[:, -1] - b[:, -1]).abs().min() > 0
    out = boot.iterate()
    assert all(np.isfinite(v).all() for v in out.values())


def test_cleanup_scenarios_bootstrap_past_the_time_limit():
    """Every shipped Cleanup scenario's actor-critic agents bootstrap past the 50-step limit
    (since 2026-12-05, as the reference code; README, Cleanup: the terminal last step's TD
    error is 15-43x the others'); ``bootstrap_time_limit = false`` is the earlier behaviour.
    The trainer built from the scenario asks the rollout for the observation after the last
    step."""
    names = [n for n in scenario.names() if scenario.load(n).env_name == "cleanup"]
    assert names, "no shipped Cleanup scenario"
    for name in names:
        sc = scenario.load(name)
        assert sc.resolved()["algorithm"]["bootstrap_time_limit"] is True, name
    assert _trainer("cleanup7_ac", seeds=(0,)).agents.wants_final
    assert not _trainer("cleanup7_ac", seeds=(0,), bootstrap_time_limit=False).agents.wants_final
