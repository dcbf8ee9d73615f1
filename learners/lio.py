"""LIO: agents that learn to incentivise other learners (Diss ch. 5, Algorithm 2).

Each LIO agent ``i`` has a policy (learned by policy gradient from extrinsic plus received
rewards, eq. 5.1-5.4) and an incentive function ``r_eta^i(o^i, a^-i) in [0, R_max]^N``
(own unit zeroed) trained by gradient ascent on its own extrinsic return *after* the
recipients learned from its incentives (eq. 5.5):

1. play tau with the main policies; incentives are paid after the simultaneous actions;
2. every agent takes one SGD step on a copy ("prime") with its total reward; the step is
   built with ``learners.functional.sgd_step`` so ``theta_hat^j`` stays a function of eta;
3. play tau_hat with the primes;
4. each giver minimises ``-sum_{j!=i} sum_t log pi_theta_hat^j(a_t^j) G^i_t`` (eq. 5.10,
   ``G^i`` = reward-to-go of its extrinsic reward on tau_hat; ``pi`` is the behaviour policy
   with the exploration floor that sampled tau_hat, so the estimator is unbiased, see
   ``outer_plain_softmax``) plus ``alpha`` times the cost
   ``sum_t gamma^t ||r_eta^i||_1`` on tau (eq. 5.6), w.r.t. its own eta only (eq. 5.7);
5. primes become main; epsilon decays once.

Variants (config flags): ``opponent_model`` = LIO-dec (each giver fits a behavioural-cloning
model of every other agent and differentiates through a fictitious update of that model
that uses the recipient's extrinsic reward plus this giver's incentives only; §5.3.2);
``one_episode`` = 1-episode LIO (the outer loss on tau itself, importance weighted by
``pi_theta_hat / pi_theta``; §B.5.1). Agents of kind ``pg`` learn the same way but give nothing.

Composition: ``IncentiveFunction`` (below) holds everything of the givers' incentive
functions (eta, paying each step, the outer loss and meta-gradient, the cost, LIO-dec's
opponent models, their checkpoint entries); ``LIOTrainer.iterate`` is Algorithm 2 top to
bottom calling it and the agents component.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import Coefficient, Hidden, Iterations, LearningRate, PositiveCoefficient
from econsim.core import torch_generator
from econsim.core.capabilities import DesignerView, has
from learners.functional import behaviour_probs, policy_loss, reward_to_go, sgd_step, sigmoid
from learners.nets import MLPNet, Net, Params, assign, detach, init_mlp, mlp
from learners.pg import Batch, PGAgents, PGConfig, PGTrainer
from learners.registry import register_algorithm


class LIOConfig(PGConfig):
    """LIO hyperparameters (Tables B.3, B.4; SPEC §4)."""

    kinds: ClassVar[tuple[str, ...]] = ("lio", "pg")
    min_agents: ClassVar[int] = 2  # a LIO agent incentivises the others
    incentive_hidden: Hidden = Field([64, 16], description="incentive MLP hidden sizes")
    lr_incentive: LearningRate = Field(1e-3, description="Adam learning rate of eta")
    r_max: PositiveCoefficient = Field(2.0, description="R_max: largest incentive per recipient")
    cost: Coefficient = Field(1.0, description="alpha: weight of the incentive cost (eq. 5.6)")
    lr_cost: LearningRate | None = Field(
        1e-4, gt=0, description="separate Adam step for the cost (ER); None adds it to the loss")
    cost_on_sigmoid: bool = Field(
        False, description="quirk of the reference code: cost on sigmoid outputs before R_max")
    opponent_model: bool = Field(False, description="LIO-dec: learn opponents' policies by BC")
    lr_opponent: LearningRate = Field(1e-3, description="Adam lr of the opponent models")
    one_episode: bool = Field(False, description="1-episode LIO (importance-weighted, §B.5.1)")
    outer_plain_softmax: bool = Field(
        False, description="quirk of the reference code: score function of the plain softmax "
        "in the outer loss although tau_hat is sampled with the exploration floor")
    incentive_actions: Literal["onehot", "features"] = Field(
        "onehot", description="what the incentive function sees of the others' actions: "
        "one-hots of every action, or the game's action features where it declares them "
        "(DesignerView; Cleanup: [did not clean, cleaned], the Diss's multi-hot of who used "
        "the cleaning beam)")
    cost_schedule: Literal["constant", "linear", "adaptive"] = Field(
        "constant", description="weight on the cost over training, multiplying cost "
        "(options of the reference code, where the weight is the coefficient itself: cost = "
        "1): constant 1; linear 0 -> 1 over cost_ramp iterations; adaptive: from 0, every "
        "cost_period iterations +-cost_period/cost_ramp (in [0, 1]): up when the period's "
        "extrinsic collective return beat the previous period's, else down")
    cost_ramp: Iterations = Field(10_000, description="iterations of the linear ramp, and the "
                                  "adaptive step's denominator")
    cost_period: Iterations = Field(1_000, description="adaptive: iterations per comparison")
    outer_weight: Literal["advantage", "return"] = Field(
        "advantage", description="the giver's weight of each step in the outer loss: the "
        "agents' advantage of the extrinsic reward (PG agents: the reward-to-go; actor-critic: "
        "the TD error with the critic of the total reward, SPEC §4 and the reference code), or "
        "'return': the extrinsic reward-to-go, eq. 5.10 as written (the same for PG agents)")


class IncentiveFunction:
    """LIO's incentive functions as a component: ``r_eta^i(o^i, a^-i) in [0, R_max]^N`` of
    every giver ``i`` (own unit zeroed), their training (eqs. 5.5-5.10) and LIO-dec's
    opponent models (§5.3.2).

    Interface (what ``LIOTrainer`` and ``learners.lio_ac.LIOACTrainer`` use):

    * set-up: one member of the trainer's ``incentive_net()`` (an MLP; LIO-AC with ``conv``:
      §B.4.2's conv network) per (replica, giver), ``eta`` (rows ``r * G + g``), drawn from
      ``torch_generator(seed, "incentive/<i>")``; ``givers`` (agent indices), ``G``; Adam
      ``opt`` (and ``opt_cost`` when ``lr_cost`` is set);
    * paying: ``pay(obs, env_actions, extra)`` for one step while playing (``[RB, N, N]``;
      records the giver inputs in ``extra["inc_in"]``) and ``full_transfers(eta, batch)``,
      the incentives of a played batch as a differentiable function of ``eta``;
    * learning: ``meta_gradients`` (eqs. 5.7, 5.10; ``dec_meta_gradients`` for LIO-dec),
      ``cost`` (eq. 5.6), ``step(grads)`` (one Adam step of ``eta``) and ``cost_step``;
    * state: ``state_dict`` / ``load_state_dict`` (entries ``eta``, ``opt``, ``opt_cost``,
      ``om``, ``opt_om``) and ``copy_replica(source, r)``.

    ``agents`` is the trainer's agents component (``PGAgents`` or ``ACAgents``): the outer
    loss scores the recipients' policies and weights them by its ``advantages``.
    """

    def __init__(self, cfg: LIOConfig, seeds: list[int], kinds: list[str],
                 agents: PGAgents, net: Net) -> None:
        self.cfg, self.seeds, self.agents, self.net = cfg, list(seeds), agents, net
        self.R, self.N, self.dtype = agents.R, agents.N, agents.dtype
        self.givers = [i for i, k in enumerate(kinds) if k == "lio"]
        self.G = len(self.givers)
        game = agents.game
        self.features = cfg.incentive_actions == "features" and has(game, DesignerView)
        per_other = game.action_feature_size if self.features else agents.A
        self.inc_in = agents.obs_dim + (self.N - 1) * per_other
        gens = [torch_generator(s, f"incentive/{i}") for s in self.seeds for i in self.givers]
        self.eta = net.init(self.inc_in, self.N, gens)
        self.own = torch.zeros(self.G, self.N)
        self.own[torch.arange(self.G), torch.tensor(self.givers)] = 1.0
        self.opt = torch.optim.Adam(self.eta.values(), lr=cfg.lr_incentive)
        self.opt_cost = (torch.optim.Adam(self.eta.values(), lr=cfg.lr_cost)
                         if cfg.lr_cost is not None and cfg.cost > 0 else None)
        # the cost's weight per replica (cost_schedule), and the adaptive schedule's memory:
        # extrinsic returns summed this period, the previous period's mean (0 before the
        # first period ends, then compared)
        constant = cfg.cost_schedule == "constant"
        self.cost_scale = torch.full((self.R,), 1.0 if constant else 0.0)
        self._period_sum = torch.zeros(self.R)
        self._period_prev = torch.zeros(self.R)
        if cfg.opponent_model:
            self._init_opponent_models()

    # ------------------------------------------------------------------------- paying
    def inputs(self, obs: torch.Tensor, env_actions: torch.Tensor) -> torch.Tensor:
        """Giver inputs ``[..., G, D + (N-1)F]``: own observation ++ the others' action
        one-hots (``F = A``) or the game's action features (``incentive_actions =
        "features"``, e.g. Cleanup's [did not clean, cleaned], ``F = 2``)."""
        if self.features:
            hot = torch.from_numpy(self.agents.game.action_features(
                env_actions.numpy())).to(self.dtype)  # [..., N, F]
        else:
            hot = torch.nn.functional.one_hot(env_actions, self.agents.A).to(self.dtype)
        oth = hot[..., self.agents.others[self.givers], :].flatten(-2)  # [..., G, (N-1)F]
        return torch.cat([obs[..., self.givers, :], oth], -1)

    def incentives(self, eta: Params, inputs: torch.Tensor) -> torch.Tensor:
        """Sigmoid outputs (own unit zeroed), ``[T, RB, G, D'] -> [T, RB, G, N]``; x R_max = pay."""
        x = self.agents.members(inputs)  # [R*G, T, B, D']
        out = sigmoid(self.net.apply(eta, x.reshape(x.shape[0], -1, x.shape[-1])))
        return self.agents.world(out.reshape(*x.shape[:3], self.N)) * (1 - self.own)

    def pay(self, obs: torch.Tensor, env_actions: torch.Tensor, extra: dict) -> torch.Tensor:
        """Incentives paid in one step after the simultaneous actions, ``[RB, N, N]`` (giver
        -> recipient); the giver inputs go to ``extra["inc_in"]`` for learning."""
        inputs = self.inputs(obs, env_actions)
        extra["inc_in"] = inputs
        pay = torch.zeros(obs.shape[0], self.N, self.N)
        if self.G:
            pay[:, self.givers] = self.cfg.r_max * self.incentives(self.eta, inputs[None])[0]
        return pay

    def full_transfers(self, eta: Params, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Incentives of ``batch`` as a differentiable function of eta: (paid ``[T, RB, N, N]``,
        sigmoid outputs ``[T, RB, G, N]``)."""
        T, RB = batch.mask.shape
        pay = torch.zeros(T, RB, self.N, self.N)
        inc = self.incentives(eta, batch.extra["inc_in"]) * batch.mask[..., None, None]
        pay[:, :, self.givers] = self.cfg.r_max * inc
        return pay, inc

    # ------------------------------------------------------------ the outer loss (eq. 5.10)
    def log_probs(self, params: Params, batch: Batch, eps: float = 0.0) -> torch.Tensor:
        """``log pi(a_t | o_t)`` of every member on ``batch``: ``[R*N, T, B]``."""
        probs = self.agents.probs(params, self.agents.members(batch.obs), eps)
        return torch.log(probs.gather(-1, self.agents.members(batch.actions)[..., None]).squeeze(-1)
                         .clamp_min(1e-12))

    def outer_returns(self, batch: Batch) -> torch.Tensor:
        """Weights ``[R*N, T, B]`` of a giver's outer loss on tau_hat: the agents' advantages
        of the extrinsic reward (PG: the reward-to-go; actor-critic: the TD error with the
        critic as a constant), or with ``outer_weight = "return"`` the extrinsic reward-to-go
        of eq. 5.10 whatever the agents."""
        rewards = batch.env_rewards * batch.mask[..., None]
        if self.cfg.outer_weight == "return":
            return reward_to_go(self.agents.members(rewards), self.cfg.gamma)
        return self.agents.advantages(batch, rewards)

    def outer_losses(self, logp: torch.Tensor, batch: Batch,
                     weight: torch.Tensor | None = None):
        """Yield (giver slot, loss eq. 5.10) for each giver; ``logp`` in member layout."""
        mask = batch.mask
        G_ext = self.outer_returns(batch)
        G_ext = G_ext.reshape(self.R, self.N, *G_ext.shape[1:])  # [R, N, T, B]
        logp = logp.reshape(self.R, self.N, *logp.shape[1:])
        m = self.agents.members(mask[..., None])[:, None].reshape(self.R, 1, *logp.shape[2:])
        if weight is not None:
            logp = logp * weight.reshape(logp.shape)
        for g, i in enumerate(self.givers):
            rec = [j for j in range(self.N) if j != i]
            term = logp[:, rec] * (G_ext[:, i:i + 1] * m)
            yield g, -term.sum(2).mean(-1).sum()

    def meta_gradients(self, prime: Params, batch: Batch, behaviour: Params | None,
                       eps: float) -> list[torch.Tensor]:
        """Gradient of each giver's loss w.r.t. its own eta only (eq. 5.7), through the
        recipients' primes ``theta_hat(eta)``; ``behaviour`` (1-episode LIO, §B.5.1): the
        policy that played ``batch``, for the importance weights ``pi_hat / pi``."""
        outer_eps = 0.0 if self.cfg.outer_plain_softmax else eps
        logp = self.log_probs(prime, batch, outer_eps)
        weight = None
        if behaviour is not None:  # 1-episode LIO: importance weights pi_hat / pi_behaviour
            with torch.no_grad():
                weight = torch.exp(logp - self.log_probs(behaviour, batch, eps))
        params = list(self.eta.values())
        total = [torch.zeros_like(p) for p in params]
        rows = torch.arange(self.R * self.G).reshape(self.R, self.G)
        for g, loss in self.outer_losses(logp, batch, weight):
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            for acc, gr in zip(total, grads, strict=True):
                if gr is not None:
                    acc[rows[:, g]] += gr[rows[:, g]]
        return total

    def step(self, grads: list[torch.Tensor]) -> None:
        """One Adam step (``opt``) of eta with ``grads`` (the outer update, Algorithm 2)."""
        self.opt.zero_grad()
        for p, g in zip(self.eta.values(), grads, strict=True):
            p.grad = g
        self.opt.step()

    # ---------------------------------------------------------------- the cost (eq. 5.6)
    def cost(self, tau: Batch) -> torch.Tensor:
        """Incentive cost ``alpha sum_t gamma^t ||r_eta(o_t, a_t)||_1`` on tau (eq. 5.6), on the
        sigmoid outputs when ``cost_on_sigmoid``; summed over replicas."""
        _, inc = self.full_transfers(self.eta, tau)  # [T, RB, G, N] in [0, 1]
        scale = 1.0 if self.cfg.cost_on_sigmoid else self.cfg.r_max
        disc = self.cfg.gamma ** torch.arange(inc.shape[0], dtype=inc.dtype)
        per_world = (disc[:, None, None, None] * inc * scale).sum((0, 2, 3))
        per_replica = per_world.reshape(self.R, -1).mean(1)
        return self.cfg.cost * (self.cost_scale.to(per_replica.dtype) * per_replica).sum()

    def schedule_cost(self, iteration: int, extrinsic: np.ndarray) -> None:
        """After ``iteration`` iterations with this one's extrinsic collective return per
        replica ``[R]``: move the cost's weight (``cost_schedule``; each replica by its own
        returns)."""
        cfg = self.cfg
        if cfg.cost_schedule == "linear":
            self.cost_scale.fill_(min(1.0, iteration / cfg.cost_ramp))
        elif cfg.cost_schedule == "adaptive":
            self._period_sum += torch.as_tensor(np.asarray(extrinsic, np.float64)).float()
            if iteration % cfg.cost_period == 0:
                mean = self._period_sum / cfg.cost_period
                step = cfg.cost_period / cfg.cost_ramp
                if iteration > cfg.cost_period:  # a previous period to compare with
                    up = torch.where(mean > self._period_prev, step, -step)
                    self.cost_scale = (self.cost_scale + up).clamp(0.0, 1.0)
                self._period_prev, self._period_sum = mean, torch.zeros(self.R)

    def cost_step(self, tau: Batch) -> None:
        """The cost's own Adam step: ``opt_cost`` when ``lr_cost`` is set, else a second step
        of ``opt`` (as the trainers always did, also in LIO-AC, which adds the cost to the
        outer loss as well); nothing when ``cost = 0`` or there is no giver."""
        if self.cfg.cost == 0 or self.G == 0:
            return
        cost = self.cost(tau)
        opt = self.opt_cost or self.opt
        opt.zero_grad()
        cost.backward()
        opt.step()

    # ----------------------------------------------------------- LIO-dec (opponent models)
    def _init_opponent_models(self) -> None:
        """Giver i's model of agent j's policy, one member per (replica, giver, other)."""
        gens = [torch_generator(s, f"opponent/{i}/{j}") for s in self.seeds
                for i in self.givers for j in range(self.N) if j != i]
        self.om = init_mlp([self.agents.obs_dim, *self.cfg.hidden, self.agents.A_max], gens)
        self.opt_om = torch.optim.Adam(self.om.values(), lr=self.cfg.lr_opponent)
        # member (r, g, k) models agent om_target[g][k]
        self.om_target = [[j for j in range(self.N) if j != i] for i in self.givers]

    def _om_view(self, x: torch.Tensor) -> torch.Tensor:
        """World ``[T, RB, N, *F]`` -> opponent-model member layout ``[R*G*(N-1), T, B, *F]``."""
        idx = [j for row in self.om_target for j in row]
        return self.agents.members(x, idx)

    def _om_probs(self, params: Params, obs_m: torch.Tensor, eps: float) -> torch.Tensor:
        logits = mlp(params, obs_m.reshape(obs_m.shape[0], -1, obs_m.shape[-1]))
        modelled = [j for r in self.om_target for j in r]
        valid = self.agents.valid.reshape(self.R, self.N, -1)[:, modelled]
        valid = valid.reshape(-1, 1, 1, valid.shape[-1])
        return behaviour_probs(logits.reshape(*obs_m.shape[:-1], -1), eps, valid)

    def fit_opponents(self, batch: Batch) -> None:
        """One Adam step of behavioural cloning on the opponents' (obs, action) pairs."""
        obs, act = self._om_view(batch.obs), self._om_view(batch.actions)
        mask = self._om_view(batch.mask[..., None].expand(-1, -1, self.N))
        probs = self._om_probs(self.om, obs, 0.0)
        nll = -torch.log(probs.gather(-1, act[..., None]).squeeze(-1).clamp_min(1e-12))
        # mean over each replica's own modelled steps, summed over replicas
        steps = mask.reshape(self.R, -1).sum(1).clamp_min(1.0)
        loss = ((nll * mask).reshape(self.R, -1).sum(1) / steps).sum()
        self.opt_om.zero_grad()
        loss.backward()
        self.opt_om.step()

    def dec_meta_gradients(self, tau: Batch, tau_hat: Batch, eps: float) -> list[torch.Tensor]:
        """LIO-dec: differentiate through a fictitious update of each opponent model (fitted
        on tau before, and on tau_hat after)."""
        self.fit_opponents(tau)
        K = self.N - 1
        pay, _ = self.full_transfers(self.eta, tau)  # [T, RB, N, N]
        # recipient j of giver i learns from env reward + i's incentives only
        rewards = torch.stack([
            tau.env_rewards[..., j] + pay[..., i, j]
            for i, row in zip(self.givers, self.om_target, strict=True) for j in row], -1)
        rewards = rewards.reshape(*rewards.shape[:2], self.G * K)  # [T, RB, G*K]
        obs, act = self._om_view(tau.obs), self._om_view(tau.actions)
        mask = self._om_view(tau.mask[..., None].expand(-1, -1, self.N))

        def loss(params: Params) -> torch.Tensor:
            G = reward_to_go(self.agents.members(rewards) * mask, self.cfg.gamma)
            return policy_loss(self._om_probs(params, obs, eps), act, G, mask, self.cfg.entropy)

        om = {k: v.detach() for k, v in self.om.items()}
        fict = sgd_step(lambda p: loss(p), om, self.cfg.lr)
        probs = self._om_probs(fict, self._om_view(tau_hat.obs), 0.0)
        logp = torch.log(probs.gather(-1, self._om_view(tau_hat.actions)[..., None]).squeeze(-1)
                         .clamp_min(1e-12)).reshape(self.R, self.G, K, *probs.shape[1:3])
        mask_hat = tau_hat.mask
        G_ext = self.outer_returns(tau_hat).reshape(self.R, self.N, *logp.shape[3:])
        m = self.agents.members(mask_hat[..., None]).reshape(self.R, *logp.shape[3:])
        loss_all = 0.0
        for g, i in enumerate(self.givers):  # each giver's graph only reaches its own eta
            loss_all = loss_all - (logp[:, g] * (G_ext[:, i] * m)[:, None]).sum(2).mean(-1).sum()
        grads = torch.autograd.grad(loss_all, list(self.eta.values()), allow_unused=True)
        self.fit_opponents(tau_hat)
        return [g if g is not None else torch.zeros_like(p)
                for g, p in zip(grads, self.eta.values(), strict=True)]

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = {"eta": {k: v.detach().clone() for k, v in self.eta.items()},
                 "opt": self.opt.state_dict()}
        if self.cfg.cost_schedule != "constant":  # a constant weight has nothing to keep
            state["cost_schedule"] = {"scale": self.cost_scale.clone(),
                                      "sum": self._period_sum.clone(),
                                      "prev": self._period_prev.clone()}
        if self.opt_cost is not None:
            state["opt_cost"] = self.opt_cost.state_dict()
        if self.cfg.opponent_model:
            state["om"] = {k: v.detach().clone() for k, v in self.om.items()}
            state["opt_om"] = self.opt_om.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        assign(self.eta, state["eta"])
        if "cost_schedule" in state and self.cfg.cost_schedule != "constant":
            # a schedule's weight and memory (a fork into the constant weight drops them)
            sched = state["cost_schedule"]
            self.cost_scale = sched["scale"].clone()
            self._period_sum, self._period_prev = sched["sum"].clone(), sched["prev"].clone()
        if self.cfg.opponent_model:
            assign(self.om, state["om"])
        self.opt.load_state_dict(state["opt"])
        if self.opt_cost is not None:
            self.opt_cost.load_state_dict(state["opt_cost"])
        if self.cfg.opponent_model:
            self.opt_om.load_state_dict(state["opt_om"])

    def copy_replica(self, source: IncentiveFunction, r: int) -> None:
        """Take replica ``r`` of ``source``'s incentive functions (and opponent models)."""
        G = self.G
        assign(self.eta, {k: v[r * G:(r + 1) * G] for k, v in source.eta.items()})
        self.cost_scale = source.cost_scale[r:r + 1].clone()
        self._period_sum = source._period_sum[r:r + 1].clone()
        self._period_prev = source._period_prev[r:r + 1].clone()
        if self.cfg.opponent_model:
            M = G * (self.N - 1)
            assign(self.om, {k: v[r * M:(r + 1) * M] for k, v in source.om.items()})


@register_algorithm("lio")
class LIOTrainer(PGTrainer):
    """LIO agents (possibly mixed with PG agents), Algorithm 2: an agents component
    (``Agents``: ``PGAgents`` here, ``ACAgents`` in ``learners.lio_ac``) + the givers'
    ``IncentiveFunction`` (``self.incentive``; ``eta``, ``givers``, ``G`` and the methods
    below the iteration are its, kept here by name)."""

    Config = LIOConfig
    default_kind = "lio"
    charge_giver = False  # the cost is the incentive function's, not the policy's (§B.1.1)

    def __init__(self, game, config: LIOConfig, seeds: list[int], **agent_options) -> None:
        super().__init__(game, config, seeds, **agent_options)
        self.incentive = IncentiveFunction(config, self.seeds, self.kinds, self.agents,
                                           self.incentive_net())

    def incentive_net(self) -> Net:
        """The incentive function's network (``IncentiveFunction``): an MLP with no output
        bias; LIO-AC overrides it."""
        return MLPNet(self.cfg.incentive_hidden, out_bias=False)

    def transfers(self, obs, actions, env_actions, give_u, extra) -> torch.Tensor:
        return self.incentive.pay(obs, env_actions, extra)

    def episodes_per_iteration(self) -> int:
        """tau and tau-hat (Algorithm 2; the Diss's episode budgets count both), or tau alone
        with 1-episode LIO or without givers."""
        return self.cfg.batch * (1 if self.G == 0 or self.cfg.one_episode else 2)

    # ------------------------------------------------------------------------ training
    def iterate(self) -> dict[str, np.ndarray]:
        """Algorithm 2 (steps as in the module docstring)."""
        if self.G == 0:  # no givers: plain independent PG
            return super().iterate()
        inc = self.incentive
        eps = self.epsilon()
        tau = self.run_episodes(self.params, eps, self.cfg.batch)  # 1. play tau
        pay, _ = inc.full_transfers(inc.eta, tau)
        prime = self.agents.update({k: v.detach() for k, v in self.params.items()}, tau,
                                   self.total_rewards(tau, pay), eps)  # 2. theta_hat(eta)
        if self.cfg.one_episode:  # 1-episode LIO: the outer loss on tau itself
            outer_batch, behaviour = tau, self.params
        else:  # 3. play tau_hat
            outer_batch, behaviour = self.run_episodes(detach(prime), eps, self.cfg.batch), None
        if self.cfg.opponent_model:  # 4. eq. 5.10 (LIO-dec: through the opponent models)
            grads = inc.dec_meta_gradients(tau, outer_batch, eps)
        else:
            grads = inc.meta_gradients(prime, outer_batch, behaviour, eps)
        inc.step(grads)
        inc.cost_step(tau)  # eq. 5.6
        self.params = detach(prime)  # 5. primes become main
        self.iteration += 1
        out = self.metrics(tau)
        inc.schedule_cost(self.iteration, out["collective"])
        return out

    # ------------------------------------------- the incentive function's names, kept here
    @property
    def eta(self) -> Params:
        return self.incentive.eta

    @property
    def givers(self) -> list[int]:
        return self.incentive.givers

    @property
    def G(self) -> int:
        return self.incentive.G

    def incentive_inputs(self, obs: torch.Tensor, env_actions: torch.Tensor) -> torch.Tensor:
        return self.incentive.inputs(obs, env_actions)

    def incentives(self, eta: Params, inputs: torch.Tensor) -> torch.Tensor:
        return self.incentive.incentives(eta, inputs)

    def full_transfers(self, eta: Params, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.incentive.full_transfers(eta, batch)

    def outer_returns(self, batch: Batch) -> torch.Tensor:
        return self.incentive.outer_returns(batch)

    def replica(self, r: int) -> LIOTrainer:
        one = super().replica(r)
        one.incentive.copy_replica(self.incentive, r)
        return one

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {**super().state_dict(), **self.incentive.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.incentive.load_state_dict(state)
