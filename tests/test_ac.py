"""Actor-critic (Diss eqs. B.9-B.10, SPEC §4): TD errors, critic, target, trainer bookkeeping."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from econsim import checkpoint, envs
from econsim.core import Box, Discrete, Step
from learners import trainer_class
from learners.ac import ACConfig, ACTrainer, MLPNet, soft_update
from learners.functional import td_errors
from learners.nets import init_mlp


# ------------------------------------------------------------------- a tiny test game
@dataclass
class _S:
    t: np.ndarray  # [B]


class Countdown:
    """Observation = one-hot of the step; episode of 3 steps; reward 1 per step, or, with
    ``bandit``, 1 for action 0 and 0 for action 1."""

    name = "countdown"
    n_agents = 2
    max_steps = 3
    observation_space = Box((4,), 0.0, 1.0)
    action_space = Discrete(2)
    action_names = ("a", "b")

    def __init__(self, bandit: bool = False) -> None:
        self.bandit = bandit

    def reset(self, batch, rng):
        return _S(np.zeros(batch, np.int64))

    def observe(self, s):
        o = np.zeros((s.t.shape[0], 2, 4), np.float32)
        o[np.arange(s.t.shape[0]), :, s.t] = 1.0
        return o

    def step(self, s, actions, rng):
        new = _S(s.t + 1)
        r = (actions == 0) if self.bandit else np.ones(actions.shape)
        return Step(new, self.observe(new), r.astype(np.float32), new.t >= self.max_steps, {})

    def describe(self, s):
        return {}


def _cfg(**kw):
    return ACConfig(**{"observe_given": False, **kw})


# ----------------------------------------------------------------------------- td_errors
def test_td_errors_by_hand():
    # [P=1, T=3, B=1]; gamma 0.9; the episode ends at t = 2.
    r = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    v = torch.tensor([0.5, 1.0, 1.5]).reshape(1, 3, 1)
    v_next = torch.tensor([1.0, 1.5, 9.0]).reshape(1, 3, 1)
    done = torch.tensor([0.0, 0.0, 1.0]).reshape(1, 3, 1)
    mask = torch.ones(1, 3, 1)
    d = td_errors(r, v, v_next, done, mask, 0.9)
    # 1 + 0.9 * 1 - 0.5 = 1.4; 2 + 0.9 * 1.5 - 1 = 2.35; 3 + 0 (terminal) - 1.5 = 1.5
    assert torch.allclose(d.flatten(), torch.tensor([1.4, 2.35, 1.5]))
    # a step after the end (mask 0) contributes nothing
    mask2 = torch.tensor([1.0, 1.0, 0.0]).reshape(1, 3, 1)
    done2 = torch.tensor([0.0, 1.0, 0.0]).reshape(1, 3, 1)
    d2 = td_errors(r, v, v_next, done2, mask2, 0.9)
    assert torch.allclose(d2.flatten(), torch.tensor([1.4, 1.0, 0.0]))


def test_td_errors_keep_the_reward_graph():
    eta = torch.tensor(0.3, requires_grad=True)
    r = torch.ones(2, 3, 4) * eta  # rewards shaped by an "incentive parameter"
    z = torch.zeros(2, 3, 4)
    d = td_errors(r, z, z, z, torch.ones(2, 3, 4), 0.99)
    (g,) = torch.autograd.grad(d.sum(), eta)
    assert g.item() == pytest.approx(24.0)


@pytest.mark.parametrize("cut_off", [False, True])
@pytest.mark.parametrize("bootstrap", ["target", "online"])
def test_advantages_match_manual_td_errors(bootstrap, cut_off):
    """V(o') from the target (eq. B.10) or, ``td_bootstrap = "online"``, the critic; after
    an episode's last step nothing, or with ``bootstrap_time_limit`` at the game's last
    step V of the observation after it (with the incentives given, as the policy sees it);
    an episode the game ends earlier stays terminal."""
    game = envs.make("escape_room", n_agents=2, n_required=1)
    tr = ACTrainer(game, ACConfig(batch=3, td_bootstrap=bootstrap,
                                      bootstrap_time_limit=cut_off), [4])
    tr.agents.target = {k: v + 0.1 for k, v in tr.agents.target.items()}  # target != critic
    batch = tr.run_episodes(tr.params, 0.5, 12)
    assert ("policy_obs" in batch.final) == cut_off
    rewards = tr.total_rewards(batch)
    delta = tr.agents.advantages(batch, rewards)  # [N, T, B]
    critic = tr.agents.critic
    boot = critic if bootstrap == "online" else tr.agents.target
    T = batch.mask.shape[0]

    def V(params, i, o):  # agent i's value of one observation
        return tr.agents.value_net.apply({k: v[i:i + 1] for k, v in params.items()},
                                  o[None, None])[0, 0, 0]

    ends = {"limit": 0, "early": 0}
    with torch.no_grad():
        for b in range(12):
            ends["limit" if batch.mask[T - 1, b] else "early"] += 1
            for i in range(2):
                for t in range(T):
                    if batch.mask[t, b] == 0:
                        assert delta[i, t, b] == 0
                        continue
                    last = t == T - 1 or batch.mask[t + 1, b] == 0
                    nxt = 0.0 if last else tr.cfg.gamma * V(boot, i, batch.obs[t + 1, b, i])
                    if t == T - 1 and cut_off:
                        after = torch.cat([batch.final["obs"][b, i], batch.final["given"][b, i]])
                        nxt = tr.cfg.gamma * V(boot, i, after)
                    want = rewards[t, b, i] + nxt - V(critic, i, batch.obs[t, b, i])
                    assert delta[i, t, b].item() == pytest.approx(want.item(), abs=1e-5)
    assert ends["limit"] > 0 and ends["early"] > 0  # both kinds of episode end were checked


# ------------------------------------------------------------------------- critic
def test_critic_loss_bootstraps_from_the_target_whatever_td_bootstrap():
    game = envs.make("escape_room", n_agents=2, n_required=1)
    trainers = [ACTrainer(game, ACConfig(batch=3, td_bootstrap=b), [4])
                for b in ("target", "online")]
    for tr in trainers:
        tr.agents.target = {k: v + 0.1 for k, v in tr.agents.target.items()}
    batch = trainers[0].run_episodes(trainers[0].params, 0.5, 3)
    rewards = trainers[0].total_rewards(batch)
    losses = [tr.agents.value_loss(tr.agents.critic, batch, rewards) for tr in trainers]
    torch.testing.assert_close(losses[0], losses[1])
    online = trainers[1].agents
    as_online = online.value_loss(online.critic, batch, rewards)
    online.target = online.critic  # bootstrapping from the critic would give this
    assert not torch.allclose(as_online, online.value_loss(online.critic, batch, rewards))


def test_critic_learns_value_of_constant_reward():
    tr = ACTrainer(Countdown(), _cfg(hidden=[16], lr_critic=1e-2, tau=0.1, gamma=0.9, batch=2),
                   [0, 1])
    losses = [tr.iterate()["value_loss"].mean() for _ in range(150)]
    assert np.mean(losses[-10:]) < 0.01 * np.mean(losses[:10])
    obs = torch.eye(4)[:3][None, :, None].expand(4, -1, 1, -1)  # [R*N, T=3, B=1, 4]
    v = tr.agents.values(tr.agents.critic, obs)[:, :, 0]
    truth = torch.tensor([1 + 0.9 + 0.81, 1 + 0.9, 1.0])
    assert torch.allclose(v, truth.expand_as(v), atol=0.05)


def test_actor_prefers_the_rewarded_action():
    tr = ACTrainer(Countdown(bandit=True), _cfg(hidden=[16], lr=0.1, entropy=0.0, batch=4,
                                                epsilon={"start": 0.1, "end": 0.1}), [0])
    for _ in range(150):
        tr.iterate()
    probs = tr.agents.probs(tr.params, torch.eye(4)[:3][None, :, None].expand(2, -1, 1, -1), 0.0)
    assert (probs[..., 0] > 0.9).all()


def test_soft_update_arithmetic():
    target = {"w": torch.zeros(2, 3), "b": torch.full((2, 1), 4.0)}
    source = {"w": torch.ones(2, 3, requires_grad=True), "b": torch.zeros(2, 1)}
    once = soft_update(target, source, 0.01)
    assert torch.allclose(once["w"], torch.full((2, 3), 0.01))
    assert torch.allclose(once["b"], torch.full((2, 1), 3.96))
    twice = soft_update(once, source, 0.01)
    assert torch.allclose(twice["w"], torch.full((2, 3), 0.01 + 0.99 * 0.01))
    assert not twice["w"].requires_grad and torch.equal(target["w"], torch.zeros(2, 3))


def test_iteration_soft_updates_the_target():
    tr = ACTrainer(envs.make("ipd"), ACConfig(tau=0.25), [0])
    before = {k: v.clone() for k, v in tr.agents.target.items()}
    tr.iterate()
    for k in before:
        want = 0.25 * tr.agents.critic[k].detach() + 0.75 * before[k]
        assert torch.allclose(tr.agents.target[k], want, atol=1e-7)
        assert not torch.equal(tr.agents.critic[k].detach(), before[k])  # the critic moved


# ------------------------------------------------------------------------ trainer
@pytest.mark.parametrize("name, params", [("escape_room", {"n_agents": 2, "n_required": 1}),
                                          ("ipd", {})])
@pytest.mark.parametrize("share", [False, True])
def test_trainer_runs_with_finite_metrics(name, params, share):
    game = envs.make(name, **params)
    tr = trainer_class("ac")(game, ACConfig(batch=2, share=share), [0, 1])
    for _ in range(4):
        m = tr.iterate()
    assert tr.iteration == 4 and tr.epsilon() < 0.5
    assert m["return"].shape == (2, 2) and m["collective"].shape == (2,)
    assert m["value_loss"].shape == (2,)
    ev = tr.evaluate(3)
    for out in (m, ev):
        assert all(np.isfinite(v).all() for v in out.values())


def test_give_reward_kinds_run():
    game = envs.make("escape_room", n_agents=2, n_required=1)
    for agents in (["ac-d", "ac-d"], ["ac", "ac-c"]):
        tr = ACTrainer(game, ACConfig(agents=agents, batch=2), [0])
        m = tr.iterate()
        assert all(np.isfinite(v).all() for v in m.values())
    assert tr.agents.gives == [False, True]


def test_state_dict_round_trip_reproduces_next_iteration(tmp_path):
    game = envs.make("escape_room", n_agents=2, n_required=1)
    a = ACTrainer(game, ACConfig(batch=2), [3, 4])
    for _ in range(3):
        a.iterate()
    state = a.state_dict()
    m_a = a.iterate()
    a.iterate()  # moving on must not change the saved state (e.g. Adam moments in place)
    checkpoint.save(tmp_path / "last.pt", state)  # as the runner's checkpoints
    b = ACTrainer(game, ACConfig(batch=2), [3, 4])
    b.load_state_dict(checkpoint.load(tmp_path / "last.pt"))
    m_b = b.iterate()
    c = ACTrainer(game, ACConfig(batch=2), [3, 4])
    for _ in range(4):
        c.iterate()
    for k in m_a:
        np.testing.assert_array_equal(m_a[k], m_b[k])
    for mine, other in ((b.params, c.params), (b.agents.critic, c.agents.critic),
                        (b.agents.target, c.agents.target)):
        for k in mine:
            assert torch.equal(mine[k], other[k])


def test_parameter_sharing_is_one_network_for_all_agents():
    game = envs.make("escape_room", n_agents=3, n_required=2)
    tr = ACTrainer(game, ACConfig(share=True, batch=2), [0, 1])
    for _ in range(3):
        tr.iterate()
    for d in (tr.params, tr.agents.critic, tr.agents.target):
        assert all(v.shape[0] == 2 for v in d.values())  # one member per replica
        for v in tr.agents.broadcast(d).values():
            per_agent = v.reshape(2, 3, *v.shape[1:])
            assert torch.equal(per_agent[:, 0], per_agent[:, 1])
            assert torch.equal(per_agent[:, 0], per_agent[:, 2])
    one = tr.replica(1)
    assert torch.equal(one.params["pi.w0"][0], tr.params["pi.w0"][1])


def test_shared_gradient_is_the_agents_mean_gradient():
    game = envs.make("escape_room", n_agents=2, n_required=1)
    shared = ACTrainer(game, ACConfig(share=True, batch=3), [0])
    indep = ACTrainer(game, ACConfig(batch=3), [0])
    sa = shared.agents
    indep.agents.critic = {k: v.detach().clone() for k, v in sa.broadcast(sa.critic).items()}
    indep.agents.target = {k: v.clone() for k, v in sa.broadcast(sa.target).items()}
    batch = shared.run_episodes(shared.params, 0.3, 3)
    rewards = shared.total_rewards(batch)
    ps = {k: v.detach().requires_grad_(True) for k, v in shared.params.items()}
    pi = {k: v.detach().clone().requires_grad_(True) for k, v in sa.broadcast(ps).items()}
    gs = torch.autograd.grad(shared.agents.loss(ps, batch, rewards, 0.3), list(ps.values()))
    gi = torch.autograd.grad(indep.agents.loss(pi, batch, rewards, 0.3), list(pi.values()))
    for a, b in zip(gs, gi, strict=True):
        assert torch.allclose(a[0], b.mean(0), atol=1e-6)


def test_network_builder_is_a_parameter():
    calls = []

    @dataclass(frozen=True)
    class Recording(MLPNet):
        def init(self, in_dim, out_dim, gens):
            calls.append((tuple(self.hidden), in_dim, out_dim))
            return init_mlp([in_dim, *self.hidden, out_dim], gens)

    game = envs.make("ipd")
    tr = ACTrainer(game, ACConfig(hidden=[8], critic_hidden=[5, 3]), [0], net=Recording)
    tr.iterate()
    assert calls == [((8,), tr.agents.obs_dim, 2), ((5, 3), tr.agents.obs_dim, 1)]


def test_config_validation():
    with pytest.raises(ValueError, match="share=True needs all agents of one kind"):
        ACConfig(share=True, agents=["ac", "ac-d"])
    with pytest.raises(ValueError, match="not allowed"):
        ACConfig(agents=["pg", "ac"])
    with pytest.raises(ValueError):
        ACConfig(critic_lr=1e-3)  # extra fields are forbidden
    assert ACConfig().tau == 0.01 and ACConfig().lr_critic == 1e-3


# ------------------------------------------------------------------ conv front end
def test_stacked_conv_equals_each_members_own_conv():
    from learners.nets import conv, init_conv

    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    params = init_conv(3, 6, 3, gens)
    images = torch.rand(3, 4, 3, 5, 7)  # [P, B, C, H, W]
    out = conv(params, images)
    assert out.shape == (3, 4, 6, 5, 7)
    for p in range(3):
        own = torch.relu(torch.nn.functional.conv2d(images[p], params["w"][p], params["b"][p],
                                                    padding=1))
        torch.testing.assert_close(out[p], own)


def test_conv_net_reads_the_channel_last_image_and_the_rest():
    from learners.ac import ConvNet

    net = ConvNet([8], image=(3, 3, 2))
    gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    params = net.init(3 * 3 * 2 + 1, 4, gens)
    assert params["conv.w"].shape == (2, 6, 2, 3, 3) and params["w0"].shape == (2, 6 * 9 + 1, 8)
    x = torch.rand(2, 5, 19)
    y = net.apply(params, x)
    assert y.shape == (2, 5, 4)
    x2 = x.clone()
    x2[..., -1] += 1.0  # the extra input reaches the output through the MLP
    assert not torch.allclose(net.apply(params, x2), y)
    with pytest.raises(ValueError, match="smaller than the image"):
        net.init(10, 4, gens)


def test_conv_net_joins_the_rest_after_the_first_hidden_layer():
    """``join_after = 1`` (LIO's incentive function, Diss §B.4.2): conv, flatten, the first FC
    layer, then the rest of the input joins before the second; written out here."""
    from learners.ac import ConvNet
    from learners.nets import conv

    net = ConvNet([8, 5], image=(3, 3, 2), join_after=1, out_bias=False)
    gens = [torch.Generator().manual_seed(0)]
    params = net.init(3 * 3 * 2 + 4, 3, gens)
    assert params["pre.w0"].shape == (1, 6 * 9, 8) and params["w0"].shape == (1, 8 + 4, 5)
    assert "b1" not in params and "b0" in params  # no output bias
    x = torch.rand(1, 7, 22)
    img = x[..., :18].reshape(1, 7, 3, 3, 2).permute(0, 1, 4, 2, 3)
    body = {"w": params["conv.w"], "b": params["conv.b"]}
    f = conv(body, img).reshape(1, 7, -1)[0]
    h1 = torch.relu(f @ params["pre.w0"][0] + params["pre.b0"][0, 0])
    h2 = torch.relu(torch.cat([h1, x[0, :, 18:]], -1) @ params["w0"][0] + params["b0"][0, 0])
    torch.testing.assert_close(net.apply(params, x)[0], h2 @ params["w1"][0])
    with pytest.raises(ValueError, match="join_after 3 is not allowed"):
        ConvNet([8, 5], image=(3, 3, 2), join_after=3).init(22, 3, gens)


def test_conv_actor_critic_trains_on_cleanup_and_needs_an_image_game():
    game = envs.make("cleanup", map="7x7")
    tr = ACTrainer(game, ACConfig(conv=True), [0, 1])
    assert tr.params["pi.conv.w"].shape == (4, 6, 3, 3, 3)  # 2 replicas x 2 agents
    before = tr.params["pi.conv.w"].detach().clone()
    m = tr.iterate()
    assert np.all(np.isfinite(m["collective"]))
    assert not torch.equal(before, tr.params["pi.conv.w"])  # the conv layer learns
    with pytest.raises(ValueError, match="no image observation"):
        ACTrainer(envs.make("escape_room", n_agents=2, n_required=1), ACConfig(conv=True), [0])
