"""MetaGrad: a central incentive designer trained by meta-gradients (Diss ch. 6, Algorithm 3).

The agents are ordinary independent PG learners (``learners.pg``; no parameter sharing, no
give-reward actions). A central incentive designer (ID) ``mu_eta`` adds an incentive to every
agent's reward, paid by the designer (never charged to an agent; eq. 6.2 with
``R^i_eta = r^i_env + mu_eta``). In Escape Room (§6.3.2, §C.2.2; SPEC §5) the designer is an MLP
on ``[3N position one-hots, 3N action one-hots]`` (ReLU hidden ``d1, d2``) with ``|A| = 3``
sigmoid outputs x ``r_max = 2``: output ``k`` is the incentive for action type ``k``
(lever/start/door), and each agent receives the value for the action it took.

Algorithm 3 with ``M = 1`` and pipelining (§6.3.2):

1. (once) play tau with the main policies;
2. every agent takes one differentiable SGD step on a copy ("prime") with its total reward
   ``r_env + mu_eta`` recomputed on tau (eq. 6.3; ``learners.functional.sgd_step`` keeps
   ``theta_hat`` a function of eta);
3. play tau_hat with the primes (the validation trajectory);
4. designer step on (tau, tau_hat): ascend eq. 6.4/6.5. The PPO ratio of eq. 6.5 is
   ``pi_theta_hat(eta) / stop_grad(pi_theta_hat(eta)) = 1``, whose gradient is
   ``grad_eta log pi_theta_hat(eta)``, so the outer loss is the policy-gradient loss
   ``-sum_i sum_t log pi_theta_hat^i(eta)(a^i_t | o^i_t) G_t`` on tau_hat (clipping never
   binds at ratio 1), with ``G_t`` the reward-to-go of ``R^ID = sum_i r^i_env`` (REINFORCE, no
   critic in ER). Its gradient reaches eta only through ``theta_hat(eta)``. The cost
   ``psi(tau) = sum_t gamma^t sum_i mu_eta(s_t, a_t)[a^i_t]`` (the incentives paid on tau,
   eq. 6.1, 6.4; "sum of all incentives given to agents", §6.3.2) is minimised by a separate
   Adam (§C.2.3, ``alpha_cost``). At train time the ID's reward excludes incentives (footnote
   to §6.3.2); the reported ``collective`` subtracts them (the evaluation metric);
5. primes become main; tau <- tau_hat.

``DesignerTrainer`` holds what every central designer shares (designer inputs, incentives
per action type, rewards, an optional designer critic, metrics, checkpoints);
``learners.dual_rl`` builds the dual-RL baseline on it and ``learners.designer_ac`` both
designers with actor-critic agents (Cleanup).

Games may declare the designer's view (capability ``DesignerView``; otherwise the Escape Room
defaults apply): ``global_features(state)`` / ``global_size`` (the global state; default: agent 0's
observation), ``action_features(actions)`` / ``action_feature_size`` (per agent; default: the
action one-hot) and ``incentive_types`` / ``incentive_type(actions, rewards)`` (what an
incentive is paid for; default: the action itself). Cleanup's are {clean, collect, else} with
the global image and who-cleaned one-hots (§6.3.2). Since the designer's incentives never
change what the agents observe or do during an episode, they are computed after it, from the
recorded states, actions and rewards, in one batched pass (``run_episodes``).

With ``designer_critic`` (Cleanup, Table C.3), the designer's advantages are GAE(gamma,
lambda) of its reward with a value function ``V_ID(s)`` on the global state, trained by
TD(0) (Adam ``lr_designer_critic``) against a target network moved by ``designer_tau``; the
critic steps after the designer, on the trajectory the designer learned from. Without it
(Escape Room) the weights are the reward-to-go (REINFORCE).
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import (
    Coefficient,
    Fraction,
    Hidden,
    LearningRate,
    PositiveCoefficient,
    Probability,
)
from econsim.core import torch_generator
from econsim.core.capabilities import DesignerView, has
from learners.ac import soft_update
from learners.functional import gae, next_step, policy_loss, reward_to_go, sigmoid, td_errors
from learners.nets import Params, assign, detach, init_mlp, mlp
from learners.pg import Batch, LinearSchedule, PGConfig, PGTrainer
from learners.registry import register_algorithm
from learners.replicas import episode_mean, per_replica


class DesignerConfig(PGConfig):
    """Agents (PG, Table C.1 MetaGrad column) and the designer network shared by ID methods."""

    kinds: ClassVar[tuple[str, ...]] = ("pg",)
    hidden: Hidden = Field([64, 64], description="agents' policy MLP hidden sizes h1, h2")
    lr: LearningRate = Field(9.56e-5, description="agents' learning rate (plain SGD)")
    entropy: Coefficient = Field(0.0166, description="agents' entropy coefficient")
    epsilon: LinearSchedule = Field(LinearSchedule(start=0.0, end=0.0, steps=1),
                                    description="agents' exploration floor (ER: none)")
    observe_given: bool = Field(False, description="agents give nothing, so observe nothing")
    r_max: PositiveCoefficient = Field(2.0, description="incentive = r_max * sigmoid (ER: 2)")
    designer_hidden: Hidden = Field([64, 32], description="designer MLP hidden sizes d1, d2")
    lr_designer: LearningRate = Field(7.93e-4, description="alpha_ID: designer Adam lr")
    designer_critic: bool = Field(
        False, description="advantages from a designer critic with GAE (Cleanup); false: "
        "reward-to-go (Escape Room)")
    lr_designer_critic: LearningRate = Field(2.4e-5,
                                      description="alpha_v,ID: designer critic Adam lr")
    designer_tau: Fraction = Field(0.114,
                                description="designer critic target update rate")
    gae_lambda: Probability = Field(0.99, description="GAE lambda of the designer")


class MetaGradConfig(DesignerConfig):
    """MetaGrad in Escape Room (Tables C.1, C.2; SPEC §5)."""

    designer_out_bias: bool = Field(False, description="bias on the designer's sigmoid layer")
    cost: Coefficient = Field(1.0, description="coefficient of the incentive cost psi")
    lr_cost: LearningRate | None = Field(
        6.03e-5, gt=0, description="alpha_cost: separate Adam for psi; None adds it to the loss")
    cost_form: Literal["paid", "outputs"] = Field(
        "paid", description="psi = incentives paid to agents (Diss §6.3.2) or 'outputs': sum of "
        "the raw sigmoid outputs for every action type (SPEC §5, reference code)")


def incentive_types(game) -> tuple[str, ...]:
    """What a designer pays incentives for: the game's ``incentive_types`` (``DesignerView``),
    else its actions."""
    return tuple(game.incentive_types if has(game, DesignerView) else game.action_names)


class DesignerTrainer(PGTrainer, ABC):
    """Independent agents plus a central designer paying incentives per action type.

    Designer records live in ``batch.extra``: ``des_in [T, RB, D]`` (designer inputs),
    ``offer [T, RB, K]`` (incentive per action type), ``types [T, RB, N]`` (each agent's
    action type) and ``incentive [T, RB, N]`` (what each agent received, 0 after the end);
    ``batch.transfers`` stays zero (no agent pays anything).
    """

    Config = DesignerConfig
    charge_giver = False  # the designer pays; agents are never charged
    central_designer = True

    def __init__(self, game, config: DesignerConfig, seeds: list[int]) -> None:
        super().__init__(game, config, seeds)  # config.kinds: no give-reward actions
        self.types = incentive_types(game)
        self.K = len(self.types)
        self.env_dim = int(np.prod(game.observation_space.shape))
        self.view = has(game, DesignerView)  # else: agent 0's observation, action one-hots
        self.state_dim = int(game.global_size) if self.view else self.env_dim
        self.feat_dim = int(game.action_feature_size) if self.view else self.A
        self.des_dim = self.state_dim + self.N * self.feat_dim
        self.eta = self._init_designer([torch_generator(s, "designer") for s in self.seeds])
        self.opt = torch.optim.Adam(self.eta.values(), lr=config.lr_designer)
        self.phi: Params | None = None  # designer critic (optional)
        if config.designer_critic:
            gens = [torch_generator(s, "designer_critic") for s in self.seeds]
            self.phi = init_mlp([self.state_dim, *config.designer_hidden, 1], gens)
            self.phi_target = {k: v.detach().clone() for k, v in self.phi.items()}
            self.opt_phi = torch.optim.Adam(self.phi.values(), lr=config.lr_designer_critic)

    @abstractmethod
    def _init_designer(self, gens: list[torch.Generator]) -> Params:
        """The designer's parameters, one stacked member per replica generator."""

    # ------------------------------------------------------------------------- designer
    def record_state(self, state) -> dict[str, torch.Tensor]:
        if not self.view:
            return {}
        return {"global": torch.from_numpy(self.game.global_features(state)).to(self.dtype)}

    def state_inputs(self, batch: Batch) -> torch.Tensor:
        """The designer's view of the state each step, ``[T, RB, state_dim]``: the game's
        global features, else agent 0's observation (in Escape Room every agent's position
        one-hot in index order, 3N)."""
        if "global" in batch.extra:
            return batch.extra["global"]
        return batch.obs[..., 0, :self.env_dim]

    def action_features(self, env_actions: torch.Tensor) -> torch.Tensor:
        """``[..., N]`` -> ``[..., N, feat_dim]``: the game's features, else action one-hots."""
        if self.view:
            return torch.from_numpy(self.game.action_features(env_actions.numpy())).to(self.dtype)
        return torch.nn.functional.one_hot(env_actions, self.A).to(self.dtype)

    def action_types(self, batch: Batch) -> torch.Tensor:
        """Each agent's incentive type each step ``[T, RB, N]`` (index into ``types``)."""
        if not self.view:
            return batch.env_actions
        kind = self.game.incentive_type(batch.env_actions.numpy(), batch.env_rewards.numpy())
        return torch.from_numpy(np.asarray(kind, np.int64))

    def designer_inputs(self, batch: Batch) -> torch.Tensor:
        """``[T, RB, state_dim + N * feat_dim]``: the state, then every agent's action
        features (Escape Room: 3N position one-hots then 3N action one-hots)."""
        feats = self.action_features(batch.env_actions)
        return torch.cat([self.state_inputs(batch), feats.flatten(-2)], -1)

    def designer_net(self, eta: Params, inputs: torch.Tensor) -> torch.Tensor:
        """A stacked MLP (one member per replica) on ``[T, RB, D] -> [T, RB, K]``."""
        T, RB, D = inputs.shape
        x = inputs.reshape(T, self.R, RB // self.R, D).transpose(0, 1).reshape(self.R, -1, D)
        out = mlp(eta, x)
        return out.reshape(self.R, T, RB // self.R, -1).transpose(0, 1).reshape(T, RB, -1)

    @abstractmethod
    def offers(self, inputs: torch.Tensor, extra: dict) -> torch.Tensor:
        """Incentive per action type ``[T, RB, K]`` for the episodes played (records in
        ``extra`` what learning needs, e.g. dual-RL's samples)."""

    def paid(self, offer: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """Each agent gets the offer for its action type: ``[..., K], [..., N] -> [..., N]``."""
        return offer.gather(-1, types)

    def transfers(self, obs, actions, env_actions, give_u, extra) -> torch.Tensor:
        return torch.zeros(obs.shape[0], self.N, self.N)  # nobody pays anybody

    @torch.no_grad()
    def run_episodes(self, params: Params, eps: float, batch: int) -> Batch:
        """Play the episodes, then the designer's incentives for every step played."""
        b = super().run_episodes(params, eps, batch)
        inputs = self.designer_inputs(b)
        offer = self.offers(inputs, b.extra)
        types = self.action_types(b)
        b.extra.update(des_in=inputs, offer=offer, types=types,
                       incentive=self.paid(offer, types) * b.mask[..., None])
        return b

    def total_rewards(self, batch: Batch, incentive: torch.Tensor | None = None) -> torch.Tensor:
        """``r_env + incentive`` per agent, ``[T, RB, N]``; agents are never charged."""
        inc = batch.extra["incentive"] if incentive is None else incentive
        return batch.env_rewards + inc * batch.mask[..., None]

    def designer_rewards(self, batch: Batch) -> torch.Tensor:
        """The designer's reward each step ``[T, RB]`` (0 after the end): the agents'
        collective extrinsic reward minus the incentives paid (dual-RL, §6.3.2)."""
        return (batch.env_rewards.sum(-1) - batch.extra["incentive"].sum(-1)) * batch.mask

    # -------------------------------------------------------------------- designer critic
    def designer_weights(self, batch: Batch) -> torch.Tensor:
        """Weights of the designer's score function ``[T, RB]``: the reward-to-go of its
        reward, or GAE advantages with the designer critic (constants)."""
        r = self.designer_rewards(batch)
        if self.phi is None:
            return reward_to_go(r, self.cfg.gamma)
        with torch.no_grad():
            v = self.designer_net(self.phi, self.state_inputs(batch))[..., 0] * batch.mask
        return gae(r, v, batch.mask, self.cfg.gamma, self.cfg.gae_lambda)

    def learn_values(self, agents: Batch, designer: Batch) -> dict[str, np.ndarray]:
        """Value functions after the designer's step: one TD(0) Adam step of the designer
        critic on ``designer`` (the episodes it learned from) and a target update. Agents'
        critics (actor-critic agents) learn on ``agents`` in subclasses."""
        if self.phi is None:
            return {}
        x, mask = self.state_inputs(designer), designer.mask
        with torch.no_grad():
            v_next = next_step(self.designer_net(self.phi_target, x)[..., 0])
        delta = td_errors(self.designer_rewards(designer), self.designer_net(self.phi, x)[..., 0],
                          v_next, mask * (1 - next_step(mask)), mask, self.cfg.gamma)
        m = mask.reshape(mask.shape[0], self.R, -1)
        per_replica = (delta ** 2).reshape(m.shape).sum((0, 2)) / m.sum((0, 2)).clamp_min(1)
        self.opt_phi.zero_grad()
        per_replica.sum().backward()
        self.opt_phi.step()
        self.phi_target = soft_update(self.phi_target, self.phi, self.cfg.designer_tau)
        return {"designer_value_loss": per_replica.detach().numpy()}

    # ------------------------------------------------------------------------ reporting
    def metrics(self, batch: Batch) -> dict[str, np.ndarray]:
        """Agents' metrics, with ``received`` = designer incentives, ``extrinsic`` = sum of
        env returns, ``incentives`` = total paid and ``collective = extrinsic - incentives`` (the
        Diss's evaluation metric for an ID, §6.3.2 footnote); ``offer_<type>`` = mean offer
        for that action type over the steps played."""
        out = super().metrics(batch)
        mask = batch.mask
        received = episode_mean(batch.extra["incentive"] * mask[..., None], self.R)  # [R, N]
        out["received"] = received
        out["extrinsic"] = out["collective"]
        out["incentives"] = received.sum(-1)
        out["collective"] = out["extrinsic"] - out["incentives"]
        offered = per_replica(batch.extra["offer"] * mask[..., None], self.R,
                              lambda a: a.sum((0, 1)))  # [R, K]
        steps = np.maximum(per_replica(mask, self.R, lambda a: a.sum()), 1.0)  # [R]
        for a, name in enumerate(self.types):
            out[f"offer_{name}"] = offered[:, a] / steps
        return out

    def replica(self, r: int) -> DesignerTrainer:
        one = super().replica(r)
        assign(one.eta, {k: v[r:r + 1] for k, v in self.eta.items()})
        return one

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = super().state_dict()
        state["eta"] = {k: v.detach().clone() for k, v in self.eta.items()}
        state["opt"] = copy.deepcopy(self.opt.state_dict())
        if self.phi is not None:
            state["phi"] = {k: v.detach().clone() for k, v in self.phi.items()}
            state["phi_target"] = {k: v.detach().clone() for k, v in self.phi_target.items()}
            state["opt_phi"] = copy.deepcopy(self.opt_phi.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        assign(self.eta, state["eta"])
        self.opt.load_state_dict(state["opt"])
        if self.phi is not None:
            assign(self.phi, state["phi"])
            self.phi_target = {k: v.detach().clone() for k, v in state["phi_target"].items()}
            self.opt_phi.load_state_dict(state["opt_phi"])


@register_algorithm("metagrad")
class MetaGradTrainer(DesignerTrainer):
    """MetaGrad (Algorithm 3, M = 1, pipelined) with PG agents."""

    Config = MetaGradConfig

    def __init__(self, game, config: MetaGradConfig, seeds: list[int]) -> None:
        super().__init__(game, config, seeds)
        self.opt_cost = (torch.optim.Adam(self.eta.values(), lr=config.lr_cost)
                         if config.lr_cost is not None and config.cost > 0 else None)
        self.tau: Batch | None = None  # the pipelined trajectory (tau_hat of the last iteration)
        self.tau_eps = 0.0  # the exploration floor tau was played with

    def _init_designer(self, gens):
        sizes = [self.des_dim, *self.cfg.designer_hidden, self.K]
        return init_mlp(sizes, gens, out_bias=self.cfg.designer_out_bias)

    def sigmoids(self, eta: Params, inputs: torch.Tensor) -> torch.Tensor:
        """Designer sigmoid outputs in (0, 1) per action type: ``[T, RB, D] -> [T, RB, A]``."""
        return sigmoid(self.designer_net(eta, inputs))

    def offers(self, inputs, extra):
        return self.cfg.r_max * self.sigmoids(self.eta, inputs)

    def incentives(self, eta: Params, batch: Batch) -> torch.Tensor:
        """Incentives of ``batch`` as a differentiable function of eta: ``[T, RB, N]``."""
        offer = self.cfg.r_max * self.sigmoids(eta, batch.extra["des_in"])
        return self.paid(offer, batch.extra["types"]) * batch.mask[..., None]

    def designer_rewards(self, batch: Batch) -> torch.Tensor:
        """``R^ID = sum_i r^i_env`` (incentives excluded at train time, §6.3.2 footnote)."""
        return batch.env_rewards.sum(-1) * batch.mask

    # ------------------------------------------------------------------------ training
    def prime_update(self, eta: Params, tau: Batch, eps: float) -> Params:
        """theta_hat(eta): one SGD step of every agent on tau with ``r_env + mu_eta`` (eq. 6.3)."""
        main = {k: v.detach() for k, v in self.params.items()}
        return self.update(main, tau, self.total_rewards(tau, self.incentives(eta, tau)), eps)

    def designer_loss(self, prime: Params, tau_hat: Batch, eps: float) -> torch.Tensor:
        """Outer loss (eq. 6.5 at ratio 1): ``-sum_i sum_t log pi_theta_hat^i(a^i_t) A^ID_t`` on
        tau_hat (``A^ID``: reward-to-go of ``R^ID``, or its GAE advantage with the designer
        critic), mean over episodes, summed over replicas (each replica's designer only
        reaches its own agents)."""
        per_agent = lambda x: self.members(x[..., None].expand(-1, -1, self.N))  # noqa: E731
        mask, w = per_agent(tau_hat.mask), per_agent(self.designer_weights(tau_hat))
        probs = self.probs(prime, self.members(tau_hat.obs), eps)
        return policy_loss(probs, self.members(tau_hat.actions), w, mask, 0.0)

    def cost(self, eta: Params, tau: Batch) -> torch.Tensor:
        """``psi(tau) = cost * sum_t gamma^t (incentives)`` per episode, summed over replicas."""
        if self.cfg.cost_form == "paid":
            per_step = self.incentives(eta, tau).sum(-1)  # [T, RB]
        else:
            per_step = self.sigmoids(eta, tau.extra["des_in"]).sum(-1) * tau.mask
        disc = self.cfg.gamma ** torch.arange(per_step.shape[0], dtype=per_step.dtype)
        per_world = (disc[:, None] * per_step).sum(0)
        return self.cfg.cost * per_world.reshape(self.R, -1).mean(1).sum()

    def iterate(self) -> dict[str, np.ndarray]:
        eps = self.epsilon()
        if self.tau is None:
            self.tau, self.tau_eps = self.run_episodes(self.params, eps, self.cfg.batch), eps
        tau, params = self.tau, list(self.eta.values())
        prime = self.prime_update(self.eta, tau, self.tau_eps)
        tau_hat = self.run_episodes(detach(prime), eps, self.cfg.batch)
        loss = self.designer_loss(prime, tau_hat, eps)
        cost = self.cost(self.eta, tau) if self.cfg.cost > 0 else None
        if cost is not None and self.opt_cost is None:
            loss = loss + cost
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        if cost is not None and self.opt_cost is not None:  # both gradients at the same eta
            cost_grads = torch.autograd.grad(cost, params, allow_unused=True)
            self._adam(self.opt, grads)
            self._adam(self.opt_cost, cost_grads)
        else:
            self._adam(self.opt, grads)
        values = self.learn_values(tau, tau_hat)
        self.params = detach(prime)
        self.tau, self.tau_eps = tau_hat, eps
        self.iteration += 1
        return {**self.metrics(tau_hat), **values}

    def _adam(self, opt: torch.optim.Optimizer, grads) -> None:
        for p, g in zip(self.eta.values(), grads, strict=True):
            p.grad = torch.zeros_like(p) if g is None else g
        opt.step()
        opt.zero_grad()

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.opt_cost is not None:
            state["opt_cost"] = copy.deepcopy(self.opt_cost.state_dict())
        state["tau"] = None if self.tau is None else {
            k: copy.deepcopy(v) for k, v in dataclasses.asdict(self.tau).items()}
        state["tau_eps"] = self.tau_eps
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.opt_cost is not None:
            self.opt_cost.load_state_dict(state["opt_cost"])
        self.tau = None if state["tau"] is None else Batch(**copy.deepcopy(state["tau"]))
        self.tau_eps = state["tau_eps"]
