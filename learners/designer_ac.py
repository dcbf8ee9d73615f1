"""MetaGrad and dual-RL (c) designers over actor-critic agents: the Cleanup setting (Diss §6.3.2).

Each trainer here is a composition, nothing more: a designer component and its iteration
(``learners.metagrad``, ``learners.dual_rl``) with the actor-critic agents component
``learners.ac.ACAgents`` (``Agents = ACAgents``) and the Table C.3 hyperparameters.

In Cleanup "we used actor-critic agents with TD(0) critic updates and parameter sharing as
the base agent for all methods" (§6.3.2). These trainers put the central designers of
``learners.metagrad`` / ``learners.dual_rl`` on top of ``learners.ac.ACAgents``:

* agents: one shared policy and one shared critic per replica (``share = true``); the actor
  step uses TD(0) errors of ``r_env + incentive`` with the critic and its target as
  constants (eq. B.9), so in MetaGrad ``theta_hat(eta)`` is still a differentiable function
  of the designer (eq. 6.3); the critic takes one TD(0) Adam step on tau with the incentives
  as paid, and its target moves by ``tau`` (eq. B.10);
* designer: incentives per action type {clean, collect, else} from the game
  (``Cleanup.incentive_type``), on the global image and the who-cleaned one-hots, with a
  designer critic and GAE advantages (``designer_critic = true``; Table C.3).

Hyperparameters are Table C.3's (SPEC §5): MetaGrad agents entropy 0.129, eps 1.0 -> 0.05
over 100 iterations, policy lr 6.73e-4, critic lr 5.54e-4, target rate 7.93e-3; designer
Adam 1.24e-5, critic Adam 2.4e-5, target rate 0.114, GAE (0.99, 0.99). Dual-RL (c): agents
0.173, 1.0 -> 0.1 over 100, 6.23e-4, 4.46e-4, 0.292; designer 1.15e-5, critic 1.72e-5,
target 0.846. Incentives are ``r_max sigmoid`` everywhere (the reference code's quirk of
paying the raw sigmoid while its update copy multiplies by 2 is not reproduced).

Deviation (documented): the agents use the MLP on the flat image unless ``conv = true``
(the conv front end of §B.4.2, ``learners.ac.ConvNet``); the designer and its critic are MLPs
on [global image, who-cleaned one-hots] (the Diss puts its conv layer on the image first).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from econsim.bounds import Coefficient, Fraction, Hidden, LearningRate, Probability
from learners.ac import ACAgents, ACConfig
from learners.dual_rl import DualRLCConfig, DualRLCTrainer
from learners.metagrad import MetaGradConfig, MetaGradTrainer
from learners.pg import LinearSchedule
from learners.registry import register_algorithm


class MetaGradACConfig(MetaGradConfig, ACConfig):
    """MetaGrad in Cleanup (Table C.3, SPEC §5) with shared actor-critic agents."""

    kinds: ClassVar[tuple[str, ...]] = ("ac",)
    share: bool = Field(True, description="agents share one policy and critic (Cleanup)")
    hidden: Hidden = Field([64, 64], description="agents' hidden sizes h1, h2")
    lr: LearningRate = Field(6.73e-4, description="alpha_theta: policy lr (plain SGD)")
    lr_critic: LearningRate = Field(5.54e-4, description="alpha_v,agent: critic Adam lr")
    tau: Fraction = Field(7.93e-3, description="agents' target update rate")
    entropy: Coefficient = Field(0.129, description="agents' entropy coefficient")
    epsilon: LinearSchedule = Field(LinearSchedule(start=1.0, end=0.05, steps=100),
                                    description="agents' exploration lower bound")
    designer_hidden: Hidden = Field([64, 64], description="designer hidden sizes h1, h2")
    lr_designer: LearningRate = Field(1.24e-5, description="alpha_ID: designer Adam lr")
    designer_critic: bool = Field(True, description="GAE advantages from a designer critic")
    lr_designer_critic: LearningRate = Field(2.4e-5, description="alpha_v,ID")
    designer_tau: Fraction = Field(0.114, description="designer target update rate")
    gae_lambda: Probability = Field(0.99, description="designer GAE lambda")
    lr_cost: LearningRate | None = Field(
        1.24e-6, gt=0, description="separate Adam for the incentive cost psi (Table C.3 gives "
        "none): alpha_ID / 10, chosen on seeds 100-101 among 1.24e-6, 3e-6 and 1.24e-5")


@register_algorithm("metagrad-ac")
class MetaGradACTrainer(MetaGradTrainer):
    """MetaGrad (Algorithm 3, pipelined) = ``MetaGradDesigner`` + shared ``ACAgents``
    (optional keyword ``net``: the agents' network builder)."""

    Config = MetaGradACConfig
    Agents = ACAgents
    default_kind = "ac"


class DualRLCACConfig(DualRLCConfig, ACConfig):
    """Dual-RL (c) in Cleanup (Table C.3) with shared actor-critic agents."""

    kinds: ClassVar[tuple[str, ...]] = ("ac",)
    share: bool = Field(True, description="agents share one policy and critic (Cleanup)")
    hidden: Hidden = Field([64, 64], description="agents' hidden sizes h1, h2")
    lr: LearningRate = Field(6.23e-4, description="alpha_theta: policy lr (plain SGD)")
    lr_critic: LearningRate = Field(4.46e-4, description="alpha_v,agent: critic Adam lr")
    tau: Fraction = Field(0.292, description="agents' target update rate")
    entropy: Coefficient = Field(0.173, description="agents' entropy coefficient")
    epsilon: LinearSchedule = Field(LinearSchedule(start=1.0, end=0.1, steps=100),
                                    description="agents' exploration lower bound")
    designer_hidden: Hidden = Field([64, 64], description="designer hidden sizes h1, h2")
    lr_designer: LearningRate = Field(1.15e-5, description="alpha_ID: designer Adam lr")
    designer_critic: bool = Field(True, description="GAE advantages from a designer critic")
    lr_designer_critic: LearningRate = Field(1.72e-5, description="alpha_v,ID")
    designer_tau: Fraction = Field(0.846, description="designer target update rate")
    gae_lambda: Probability = Field(0.99, description="designer GAE lambda")


@register_algorithm("dual-rl-c-ac")
class DualRLCACTrainer(DualRLCTrainer):
    """Dual-RL (c) = ``DualRLCDesigner`` (a Gaussian RL designer) + shared ``ACAgents``
    (optional keyword ``net``: the agents' network builder)."""

    Config = DualRLCACConfig
    Agents = ACAgents
    default_kind = "ac"
