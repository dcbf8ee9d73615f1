"""LIO on actor-critic agents: the Cleanup variant of LIO (Diss §5.3.2, §B.4.2; SPEC §4).

In Cleanup "all algorithms are based on actor-critic": every LIO agent's policy learns from
TD(0) errors of a critic with a target network (``learners.ac.ACTrainer``) instead of the
reward-to-go, and LIO's incentive functions are trained exactly as in ``LIOTrainer``
(Algorithm 2) with two actor-critic substitutions:

* inner (differentiable) step of recipient ``j``: the TD error
  ``r^j_env + sum_k R_max sigma(eta^k)[j] + gamma V~(o') - V(o)`` with ``V``, ``V~`` constants,
  so ``theta_hat^j`` stays a function of every giver's eta (``ACAgents.weights``);
* outer loss of giver ``i`` on tau_hat: ``-sum_{j!=i} sum_t log pi_theta_hat^j(a_t) delta^i_t``
  with ``delta^i`` giver ``i``'s TD error of its *extrinsic* reward (``ACAgents.advantages``
  through ``IncentiveFunction.outer_returns``).

Composition: ``LIOACTrainer`` = LIO's incentive functions and meta-gradient (the component
``learners.lio.IncentiveFunction``, built by ``LIOTrainer``) + the actor-critic agents
component ``learners.ac.ACAgents`` (``Agents = ACAgents``); only the iteration below differs
from LIO's (the cost joins the outer loss, and the critics step at the end).

The incentive cost (coefficient 1e-4 on the sigmoid outputs) is added to the outer loss
(``lr_cost = None``, SPEC §4): one Adam step of eta per iteration, as the reference code
takes. ``cost_double_step = true`` restores econsim's earlier behaviour, a second step of the
same Adam optimiser with the cost alone (it mostly repeated the outer step's momentum, 1.67x
the learning rate per iteration: the Cleanup audit in the README). With ``lr_cost`` set the
cost has its own optimiser and step instead. After the incentive step each critic takes one
Adam step of TD(0) on tau with its total reward (extrinsic + incentives received, as paid
while playing tau) and the target networks move by ``tau``; the inner and outer losses use
the critics from before this step. No parameter sharing (Diss §5.3.2).

``critic_timing = "reference"`` takes the reference code's order instead: the played update
theta' reads the critics from before their step; the critics then take their TD(0) step on
tau and the targets move; the differentiable inner step theta_hat(eta) and the giver's outer
TD error on tau_hat read the stepped critics (so theta_hat is theta' up to the critic's one
step, and tau_hat is played by theta'); after the incentive step the givers' targets move
again.
With ``td_bootstrap = "online"`` every TD error of the agents reads ``V(o')`` from the online
critic, as there. (The reference also bootstraps past the 50th step, which the batch does
not record: econsim keeps the time limit terminal.)

Deviation (documented): the network is ``ACAgents``' pluggable ``net`` (MLP by default on
the flat image; ``conv = true``: the conv front end of §B.4.2). The incentive function sees
the own observation and, per other agent, the Diss's "did it use the cleaning beam" one-hot
(``incentive_actions = "features"``; "onehot": every action, econsim's earlier input): with
``conv`` (or ``incentive_conv = true``) through §B.4.2's network, conv(6, 3x3) on the image,
the first FC layer, then the others' actions joined and the second FC layer (``ConvNet``
with ``join_after = 1``); else (or ``incentive_conv = false``, econsim before 2026-12-02)
an MLP on the flat image and the actions.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from econsim.bounds import Coefficient, Hidden, LearningRate
from learners.ac import ACAgents, ACConfig, conv_builder
from learners.lio import LIOConfig, LIOTrainer
from learners.nets import Net, detach
from learners.registry import register_algorithm


class LIOACConfig(LIOConfig, ACConfig):
    """LIO incentive settings (``LIOConfig``) on actor-critic agents (``ACConfig``)."""

    kinds: ClassVar[tuple[str, ...]] = ("lio", "ac")
    hidden: Hidden = Field([64, 64], description="policy and critic hidden layer sizes")
    incentive_hidden: Hidden = Field([64, 64], description="hidden sizes of the incentive "
                                     "MLP, or of the FC layers after its conv layer")
    lr: LearningRate = Field(1e-4, description="policy learning rate (plain SGD, Table B.5)")
    cost: Coefficient = Field(1e-4, description="alpha: weight of the incentive cost")
    lr_cost: LearningRate | None = Field(
        None, description="None (Cleanup): cost added to the outer loss; else separate Adam")
    cost_on_sigmoid: bool = Field(True, description="cost on sigmoid outputs (SPEC §4)")
    cost_double_step: bool = Field(False, description="true: after the outer step (which "
                                   "holds the cost) a second Adam step with the cost alone "
                                   "(econsim before the Cleanup audit)")
    incentive_actions: Literal["onehot", "features"] = Field(
        "features", description="the others' actions as the game's features (Cleanup: who "
        "used the cleaning beam, the Diss's multi-hot); onehot: every action (econsim before "
        "the Cleanup audit)")
    incentive_conv: bool | None = Field(
        None, description="the incentive function's conv front end (Diss §B.4.2: conv, FC, "
        "the others' actions joined, FC); none: as conv; false with conv = true: the MLP, "
        "econsim before 2026-12-02")
    critic_timing: Literal["diss", "reference"] = Field(
        "diss", description="when the critics learn: after the incentive step, the inner and "
        "outer losses reading the critics from before it (diss); reference: the critic step "
        "on tau first, the differentiable inner step and the outer weight reading the "
        "stepped critic, the targets moved after the critic step and the givers' again "
        "after the incentive step (the reference code; with td_bootstrap = \"online\" as "
        "there; no effect without givers)")
    observe_given: bool = Field(False, description="observe the incentives given so far this "
                                "episode (true: econsim before the Cleanup audit; the Diss "
                                "has this input in Escape Room only)")

    @model_validator(mode="after")
    def _supported(self):
        if self.share:
            raise ValueError("LIO agents do not share parameters (share must be false)")
        if self.opponent_model or self.one_episode:
            raise ValueError("lio-ac supports neither opponent_model nor one_episode")
        return self


@register_algorithm("lio-ac")
class LIOACTrainer(LIOTrainer):
    """LIO agents (possibly mixed with plain AC agents) learning by actor-critic: LIO's
    incentive functions + ``ACAgents`` (optional keyword ``net``: their network builder)."""

    Config = LIOACConfig
    Agents = ACAgents
    default_kind = "lio"

    def incentive_net(self) -> Net:
        """§B.4.2's conv network (the others' actions joining after the first FC layer) with
        ``incentive_conv`` (none: ``conv``), else the MLP."""
        on = self.cfg.conv if self.cfg.incentive_conv is None else self.cfg.incentive_conv
        if not on:
            return super().incentive_net()
        return conv_builder(self.game, "incentive_conv")(self.cfg.incentive_hidden,
                                                         join_after=1, out_bias=False)

    def iterate(self) -> dict[str, np.ndarray]:
        """Algorithm 2 with actor-critic agents, then the critics' TD(0) step on tau."""
        if self.G == 0:  # no givers: plain independent actor-critic (PGTrainer's loop)
            return super().iterate()
        inc = self.incentive
        eps = self.epsilon()
        reference = self.cfg.critic_timing == "reference"
        tau = self.run_episodes(self.params, eps, self.cfg.batch)  # 1. play tau
        pay, _ = inc.full_transfers(inc.eta, tau)
        if reference:  # the played update reads the critics before their step on tau
            played = self.agents.update(detach(self.params), tau,
                                        self.total_rewards(tau, pay.detach()), eps)
            values = self.agents.learn_values(tau, self.total_rewards(tau))  # target moves
        prime = self.agents.update(detach(self.params), tau,  # 2. theta_hat(eta), TD weights
                                   self.total_rewards(tau, pay), eps)
        if not reference:
            played = prime
        tau_hat = self.run_episodes(detach(played), eps, self.cfg.batch)  # 3. play tau_hat
        grads = inc.meta_gradients(prime, tau_hat, None, eps)  # 4. eq. 5.10, TD errors
        if self.cfg.cost > 0 and inc.opt_cost is None:  # cost (eq. 5.6) added to the outer loss
            extra = torch.autograd.grad(inc.cost(tau), list(inc.eta.values()), allow_unused=True)
            grads = [g if e is None else g + e for g, e in zip(grads, extra, strict=True)]
        inc.step(grads)
        if inc.opt_cost is not None or self.cfg.cost_double_step:
            inc.cost_step(tau)  # its own optimiser, or the earlier second step
        if reference:
            self.agents.move_target(self.givers)  # the givers' second target update
        else:
            values = self.agents.learn_values(tau, self.total_rewards(tau))  # as paid
        self.params = detach(played)  # 5. primes become main
        self.iteration += 1
        out = self.metrics(tau)
        inc.schedule_cost(self.iteration, out["collective"])
        return {**out, **values}
