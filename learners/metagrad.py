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

Composition: ``MetaGradTrainer`` = ``MetaGradDesigner`` (this file) + an agents component
(``Agents``: ``learners.pg.PGAgents`` here, ``learners.ac.ACAgents`` in
``learners.designer_ac``) + the designer plumbing of ``learners.designer`` (what the
designer sees and pays for, the rollout with incentives, the optional designer critic,
reports, checkpoints). Steps 2 and 4 use only the agents' interface (``update``, ``probs``,
``learn_values``), so the same ``iterate`` serves both kinds of agents.

With ``designer_critic`` (Cleanup, Table C.3), ``A^ID`` is GAE(gamma, lambda) of ``R^ID`` with
``V_ID(s)`` (``learners.designer.DesignerCritic``); the critic steps after the designer, on
tau_hat (the trajectory the designer learned from), then actor-critic agents' critics step
on tau with the incentives as paid. Without it (Escape Room) ``A^ID`` is the reward-to-go.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import Coefficient, LearningRate
from learners.designer import Designer, DesignerConfig, DesignerTrainer, incentive_types
from learners.functional import policy_loss, sigmoid
from learners.nets import Params, detach, init_mlp
from learners.pg import Batch
from learners.registry import register_algorithm

__all__ = ["DesignerConfig", "DesignerTrainer", "MetaGradConfig", "MetaGradDesigner",
           "MetaGradTrainer", "incentive_types"]


class MetaGradConfig(DesignerConfig):
    """MetaGrad in Escape Room (Tables C.1, C.2; SPEC §5)."""

    designer_out_bias: bool = Field(False, description="bias on the designer's sigmoid layer")
    cost: Coefficient = Field(1.0, description="coefficient of the incentive cost psi")
    lr_cost: LearningRate | None = Field(
        6.03e-5, gt=0, description="alpha_cost: separate Adam for psi; None adds it to the loss")
    cost_form: Literal["paid", "outputs"] = Field(
        "paid", description="psi = incentives paid to agents (Diss §6.3.2) or 'outputs': sum of "
        "the raw sigmoid outputs for every action type (SPEC §5, reference code)")


class MetaGradDesigner(Designer):
    """The designer ``mu_eta = r_max sigmoid(MLP_eta(s, a))`` per incentive type, its cost
    ``psi`` (eq. 6.1, 6.4) with an optional separate Adam ``opt_cost``, and ``R^ID``."""

    def __init__(self, game, cfg: MetaGradConfig, seeds: list[int], view) -> None:
        super().__init__(game, cfg, seeds, view)
        self.opt_cost = (torch.optim.Adam(self.eta.values(), lr=cfg.lr_cost)
                         if cfg.lr_cost is not None and cfg.cost > 0 else None)

    def init_eta(self, gens):
        sizes = [self.view.des_dim, *self.cfg.designer_hidden, self.view.K]
        return init_mlp(sizes, gens, out_bias=self.cfg.designer_out_bias)

    def sigmoids(self, eta: Params, inputs: torch.Tensor) -> torch.Tensor:
        """Designer sigmoid outputs in (0, 1) per type: ``[T, RB, D] -> [T, RB, K]``."""
        return sigmoid(self.view.net(eta, inputs))

    def offers(self, inputs, extra, rng):
        return self.cfg.r_max * self.sigmoids(self.eta, inputs)

    def incentives(self, eta: Params, batch: Batch) -> torch.Tensor:
        """Incentives of ``batch`` as a differentiable function of eta: ``[T, RB, N]``."""
        offer = self.cfg.r_max * self.sigmoids(eta, batch.extra["des_in"])
        return self.view.paid(offer, batch.extra["types"]) * batch.mask[..., None]

    def rewards(self, batch: Batch) -> torch.Tensor:
        """``R^ID = sum_i r^i_env`` (incentives excluded at train time, §6.3.2 footnote)."""
        return batch.env_rewards.sum(-1) * batch.mask

    def cost(self, eta: Params, tau: Batch) -> torch.Tensor:
        """``psi(tau) = cost * sum_t gamma^t (incentives)`` per episode, summed over replicas."""
        if self.cfg.cost_form == "paid":
            per_step = self.incentives(eta, tau).sum(-1)  # [T, RB]
        else:
            per_step = self.sigmoids(eta, tau.extra["des_in"]).sum(-1) * tau.mask
        disc = self.cfg.gamma ** torch.arange(per_step.shape[0], dtype=per_step.dtype)
        per_world = (disc[:, None] * per_step).sum(0)
        return self.cfg.cost * per_world.reshape(self.R, -1).mean(1).sum()

    def adam(self, opt: torch.optim.Optimizer, grads) -> None:
        """One step of ``opt`` (``opt`` or ``opt_cost``) with ``grads`` of ``eta``."""
        for p, g in zip(self.eta.values(), grads, strict=True):
            p.grad = torch.zeros_like(p) if g is None else g
        opt.step()
        opt.zero_grad()

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.opt_cost is not None:
            state["opt_cost"] = copy.deepcopy(self.opt_cost.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.opt_cost is not None:
            self.opt_cost.load_state_dict(state["opt_cost"])


@register_algorithm("metagrad")
class MetaGradTrainer(DesignerTrainer):
    """MetaGrad (Algorithm 3, M = 1, pipelined): ``MetaGradDesigner`` + PG agents."""

    Config = MetaGradConfig
    Designer = MetaGradDesigner

    def __init__(self, game, config: MetaGradConfig, seeds: list[int], **agent_options) -> None:
        super().__init__(game, config, seeds, **agent_options)
        self.tau: Batch | None = None  # the pipelined trajectory (tau_hat of the last iteration)
        self.tau_eps = 0.0  # the exploration floor tau was played with

    # ------------------------------------------------------------------------ training
    def prime_update(self, eta: Params, tau: Batch, eps: float) -> Params:
        """theta_hat(eta): one SGD step of every agent on tau with ``r_env + mu_eta`` (eq. 6.3)."""
        main = {k: v.detach() for k, v in self.params.items()}
        incentive = self.designer.incentives(eta, tau)
        return self.agents.update(main, tau, self.total_rewards(tau, incentive), eps)

    def designer_loss(self, prime: Params, tau_hat: Batch, eps: float) -> torch.Tensor:
        """Outer loss (eq. 6.5 at ratio 1): ``-sum_i sum_t log pi_theta_hat^i(a^i_t) A^ID_t`` on
        tau_hat (``A^ID``: reward-to-go of ``R^ID``, or its GAE advantage with the designer
        critic), mean over episodes, summed over replicas (each replica's designer only
        reaches its own agents)."""
        ag = self.agents
        per_agent = lambda x: ag.members(x[..., None].expand(-1, -1, self.N))  # noqa: E731
        mask, w = per_agent(tau_hat.mask), per_agent(self.designer.advantages(tau_hat))
        probs = ag.probs(prime, ag.members(tau_hat.obs), eps)
        return policy_loss(probs, ag.members(tau_hat.actions), w, mask, 0.0)

    def iterate(self) -> dict[str, np.ndarray]:
        """Algorithm 3: steps 1-5 of the module docstring, then the value functions."""
        des = self.designer
        eps = self.epsilon()
        if self.tau is None:  # 1. (once) tau with the main policies
            self.tau, self.tau_eps = self.run_episodes(self.params, eps, self.cfg.batch), eps
        tau, params = self.tau, list(des.eta.values())
        prime = self.prime_update(des.eta, tau, self.tau_eps)  # 2. theta_hat(eta)
        tau_hat = self.run_episodes(detach(prime), eps, self.cfg.batch)  # 3. validation
        loss = self.designer_loss(prime, tau_hat, eps)  # 4. designer step (and cost)
        cost = des.cost(des.eta, tau) if self.cfg.cost > 0 else None
        if cost is not None and des.opt_cost is None:
            loss = loss + cost
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        if cost is not None and des.opt_cost is not None:  # both gradients at the same eta
            cost_grads = torch.autograd.grad(cost, params, allow_unused=True)
            des.adam(des.opt, grads)
            des.adam(des.opt_cost, cost_grads)
        else:
            des.adam(des.opt, grads)
        values = des.learn_values(tau_hat)  # designer critic on the episodes it learned from
        values.update(self.agents.learn_values(tau, self.total_rewards(tau)))  # agents' critics
        self.params = detach(prime)  # 5. primes become main; tau <- tau_hat
        self.tau, self.tau_eps = tau_hat, eps
        self.iteration += 1
        return {**self.metrics(tau_hat), **values}

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = super().state_dict()
        state["tau"] = None if self.tau is None else {
            k: copy.deepcopy(v) for k, v in dataclasses.asdict(self.tau).items()}
        state["tau_eps"] = self.tau_eps
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.tau = None if state["tau"] is None else Batch(**copy.deepcopy(state["tau"]))
        self.tau_eps = state["tau_eps"]
