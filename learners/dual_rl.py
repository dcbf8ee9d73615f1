"""Dual-RL: the incentive designer is itself an ordinary RL agent (Diss §6.3.2, §C.2.2).

The centralized analogue of give-reward actions (and of the "AI Economist" planner): every
step, after the agents' simultaneous actions, the designer observes the same input as the
MetaGrad designer (``[3N position one-hots, 3N action one-hots]`` in Escape Room) and *samples*
an incentive for each action type; each agent receives the value for the action it took.
Its reward is the agents' collective extrinsic reward minus the incentives it paid
(§6.3.2), and it learns by REINFORCE on that reward's reward-to-go on the same episodes
the agents learn from (Adam, ``alpha_ID``). Agents are the same PG learners as in MetaGrad,
updated with ``r_env + received`` (never charged).

* ``dual-rl-d``: a categorical policy over ``|S|^K`` joint choices, one value of the set
  ``S`` (``incentive_values``; the Diss tried {0, 1.1}, {0, 1.1, 2}, {0, 0.5, 1, 1.5, 2}) per
  action type; the MLP has the agents' architecture; entropy bonus ``designer_entropy``.
* ``dual-rl-c``: ``u ~ N(mu_eta(s, a), 1)`` per action type, paid ``r_max sigmoid(u)`` (the
  same squashing as MetaGrad); the policy gradient uses ``log N(u; mu, 1)`` (the squash is a
  fixed change of variables, so its Jacobian does not depend on eta).

Composition: ``DualRLDTrainer`` / ``DualRLCTrainer`` = ``DualRLDDesigner`` /
``DualRLCDesigner`` (this file) + an agents component (``learners.pg.PGAgents``; actor-critic
agents in ``learners.designer_ac``) + the designer plumbing of ``learners.designer``. One
iteration (``DualRLTrainer.iterate``): play tau (the designer samples its incentives while
the agents act); the agents' SGD step on ``r_env + received``; the designer's Adam step on
``-sum_t [log pi_eta(a^ID_t | s_t, a_t) A^ID_t + beta H_t]`` (``A^ID``: reward-to-go of
``R^ID``, or GAE with the designer critic); then the designer critic and the agents'
critics (actor-critic agents) on tau.
"""

from __future__ import annotations

import math
from abc import abstractmethod

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from econsim.bounds import MAX_LIST, Coefficient, Hidden, LearningRate
from learners.designer import Designer, DesignerConfig, DesignerTrainer
from learners.functional import sigmoid
from learners.nets import Params, detach, init_mlp
from learners.registry import register_algorithm
from learners.replicas import categorical, normal


class DualRLDConfig(DesignerConfig):
    """Dual-RL (d) in ER(5, 2) (Table C.1)."""

    hidden: Hidden = Field([128, 64], description="agents' policy MLP hidden sizes")
    lr: LearningRate = Field(3.41e-4, description="agents' learning rate (plain SGD)")
    entropy: Coefficient = Field(0.386, description="agents' entropy coefficient")
    designer_hidden: Hidden = Field([128, 64], description="designer MLP hidden sizes")
    lr_designer: LearningRate = Field(2.47e-3, description="alpha_ID: designer Adam lr")
    designer_entropy: Coefficient = Field(0.488, description="designer entropy coefficient")
    incentive_values: list[Coefficient] = Field(
        [0.0, 1.1], min_length=2, max_length=MAX_LIST,
        description="the set S of incentives per action type")

    @field_validator("incentive_values")
    @classmethod
    def _distinct(cls, v: list[float]) -> list[float]:
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError("incentive values must be distinct and >= 0")
        return v

    @model_validator(mode="after")
    def _within_r_max(self):
        if max(self.incentive_values) > self.r_max:
            raise ValueError(f"incentive values must be <= r_max ({self.r_max})")
        return self


class DualRLCConfig(DesignerConfig):
    """Dual-RL (c) in ER(5, 2) (Table C.1)."""

    hidden: Hidden = Field([64, 32], description="agents' policy MLP hidden sizes")
    lr: LearningRate = Field(7.70e-4, description="agents' learning rate (plain SGD)")
    entropy: Coefficient = Field(7.07, description="agents' entropy coefficient")
    designer_hidden: Hidden = Field([64, 64], description="designer MLP hidden sizes")
    lr_designer: LearningRate = Field(1.17e-4, description="alpha_ID: designer Adam lr")


class DualRLDesigner(Designer):
    """A designer that is an RL agent: ``log_prob_entropy`` of its recorded samples, and its
    REINFORCE loss."""

    @abstractmethod
    def log_prob_entropy(self, eta: Params, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Designer ``log pi(action_t | x_t)`` and policy entropy, both ``[T, RB]``."""

    def entropy_coefficient(self) -> float:
        """The designer's entropy coefficient beta (none: 0)."""
        return 0.0

    def loss(self, eta: Params, batch) -> torch.Tensor:
        """Policy gradient ``-sum_t [log pi(a^ID_t) A^ID_t + beta H_t]`` with ``A^ID`` the
        reward-to-go of ``r^ID`` (REINFORCE) or its GAE advantage with the designer critic;
        mean over episodes, summed over replicas."""
        logp, ent = self.log_prob_entropy(eta, batch)
        beta = self.entropy_coefficient()
        per_world = ((logp * self.advantages(batch) + beta * ent) * batch.mask).sum(0)
        return -per_world.reshape(self.R, -1).mean(1).sum()


class DualRLDDesigner(DualRLDesigner):
    """Dual-RL (d): one categorical choice of ``|S|^K`` incentive assignments per step."""

    def __init__(self, game, cfg: DualRLDConfig, seeds: list[int], view) -> None:
        self.S = len(cfg.incentive_values)
        super().__init__(game, cfg, seeds, view)
        self.values = torch.tensor(cfg.incentive_values).to(view.dtype)
        self.digits = self.S ** torch.arange(view.K)  # choice k -> value index per type

    def init_eta(self, gens):
        return init_mlp([self.view.des_dim, *self.cfg.designer_hidden, self.S ** self.view.K],
                        gens)

    def decode_choice(self, k: torch.Tensor) -> torch.Tensor:
        """Joint choice ``[...]`` -> incentive per type ``[..., K]``."""
        return self.values[(k[..., None] // self.digits) % self.S]

    def offers(self, inputs, extra, rng):
        logits = self.view.net(self.eta, inputs)  # [T, RB, S^K]; draws replica-major
        k = categorical(rng, torch.softmax(logits, -1).transpose(0, 1)).transpose(0, 1)
        extra["des_choice"] = k
        return self.decode_choice(k)

    def entropy_coefficient(self) -> float:
        return self.cfg.designer_entropy

    def log_prob_entropy(self, eta, batch):
        logp_all = torch.log_softmax(self.view.net(eta, batch.extra["des_in"]), -1)
        logp = logp_all.gather(-1, batch.extra["des_choice"][..., None]).squeeze(-1)
        return logp, -(logp_all.exp() * logp_all).sum(-1)


class DualRLCDesigner(DualRLDesigner):
    """Dual-RL (c): Gaussian ``N(mu_eta, 1)`` per type squashed by ``r_max sigmoid``."""

    def init_eta(self, gens):
        return init_mlp([self.view.des_dim, *self.cfg.designer_hidden, self.view.K], gens)

    def offers(self, inputs, extra, rng):
        mu = self.view.net(self.eta, inputs)
        noise = normal(rng, (mu.shape[1], mu.shape[0], *mu.shape[2:]), mu.dtype)
        u = mu + noise.transpose(0, 1)  # [T, RB, K]; drawn replica-major
        extra["des_u"] = u
        return self.cfg.r_max * sigmoid(u)

    def log_prob_entropy(self, eta, batch):
        mu = self.view.net(eta, batch.extra["des_in"])
        u = batch.extra["des_u"]
        logp = (-0.5 * (u - mu) ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        return logp, torch.zeros_like(logp)  # fixed unit variance: constant entropy


class DualRLTrainer(DesignerTrainer):
    """The dual-RL iteration for any ``DualRLDesigner`` and any agents component."""

    Designer = DualRLDesigner

    def iterate(self) -> dict[str, np.ndarray]:
        """Play tau; agents' step; designer's REINFORCE step; value functions on tau."""
        des = self.designer
        eps = self.epsilon()
        tau = self.run_episodes(self.params, eps, self.cfg.batch)
        rewards = self.total_rewards(tau)
        new = self.agents.update(detach(self.params), tau, rewards, eps)
        des.opt.zero_grad()
        des.loss(des.eta, tau).backward()
        des.opt.step()
        values = des.learn_values(tau)  # the designer critic, then the agents' critics
        values.update(self.agents.learn_values(tau, self.total_rewards(tau)))
        self.params = detach(new)
        self.iteration += 1
        return {**self.metrics(tau), **values}


@register_algorithm("dual-rl-d")
class DualRLDTrainer(DualRLTrainer):
    """Dual-RL (d) designer + PG agents."""

    Config = DualRLDConfig
    Designer = DualRLDDesigner


@register_algorithm("dual-rl-c")
class DualRLCTrainer(DualRLTrainer):
    """Dual-RL (c) designer + PG agents."""

    Config = DualRLCConfig
    Designer = DualRLCDesigner
