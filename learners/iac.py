"""IAC: independent actor-critic on a cooperative multi-goal game (Diss §3.4, A.8; [9, 17]).

Each agent learns from its own observation and reward only: an actor
``pi(a | o_self, g, o_others)`` (the same network as CM3's stage 2) and a value function
``V(o_self, g, o_others)`` (base ``(o_self, g)`` -> hidden -> h2, ``o_others`` through its own
layer into h2; Diss A.8.1; in Checkers, with ``conv``, the window first through A.8.3's
conv(6, 3x3)), trained on minibatches of the iteration's transitions:

* critic: TD(0), ``delta = R^n + gamma V'(o'^n) (1 - done) - V(o^n)`` with the target copy
  ``V'``, loss ``delta^2``;
* actor: ``-log pi_eps(a^n | o^n) delta`` with ``delta`` from the updated critic as a
  constant (the standard policy gradient with the TD error as advantage).

Agents are homogeneous and share one actor and one critic, with the goal as input (Diss
§3.3.5: the same parameter sharing as every method of the chapter); "independent" means each
agent's critic sees only what that agent observes.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import Hidden
from econsim.core import Game
from learners.multigoal import MultiGoalConfig, MultiGoalTrainer, Transitions
from learners.nets import AugmentedMLP, Params
from learners.registry import register_algorithm

__all__ = ["IACConfig", "IACTrainer"]


class IACConfig(MultiGoalConfig):
    """IAC hyperparameters (Diss Tables A.3, A.5 "IAC"). Defaults: navigation."""

    kinds: ClassVar[tuple[str, ...]] = ("iac",)
    critic_branch: Hidden = Field([128], description="layers of V's o_others branch")


@register_algorithm("iac")
class IACTrainer(MultiGoalTrainer):
    """Independent actor-critic agents (see the module docstring)."""

    Config = IACConfig
    default_kind = "iac"
    nets: ClassVar[tuple[str, ...]] = ("actor", "v", "v_t")
    optimisers: ClassVar[tuple[str, ...]] = ("actor_opt", "v_opt")

    def build(self, stage: int) -> None:
        game: Game = self.game
        self.actor_shape = self.actor_net(game)
        self.v_shape = AugmentedMLP(game.self_size + game.goal_size, tuple(self.cfg.hidden), 1,
                                    game.others_size if game.n_agents > 1 else 0,
                                    tuple(self.cfg.critic_branch),
                                    stems=self.window_stem(game, 0))
        self.actor = self.actor_shape.init(self.gens("iac/actor"))
        self.v = self.v_shape.init(self.gens("iac/v"))
        self.v_t = {k: v.detach().clone() for k, v in self.v.items()}
        self.make_optimisers()

    def make_optimisers(self) -> None:
        self.actor_opt = self.adam(self.actor, self.cfg.lr_actor)
        self.v_opt = self.adam(self.v, self.cfg.lr_critic)

    def policy(self, params: Params, obs: torch.Tensor, eps: float,
               legal: torch.Tensor | None = None) -> torch.Tensor:
        return self.actor_probs(self.actor_shape, params, obs, eps, legal)

    def values(self, params: Params, obs: torch.Tensor) -> torch.Tensor:
        """``V(o^n)`` for observations ``[R, S, N, D]`` -> ``[R, S, N]``."""
        o_self, goal, others = self.game.split(obs)
        return self.v_shape.apply(params, torch.cat([o_self, goal], -1),
                                  others if "join" in params else None)[..., 0]

    def train_step(self, mb: Transitions) -> dict[str, np.ndarray]:
        go_on = (1 - mb.done)[:, :, None]
        with torch.no_grad():
            y = mb.rewards + self.cfg.gamma * go_on * self.values(self.v_t, mb.next_obs)
        v_loss = ((y - self.values(self.v, mb.obs)) ** 2).mean((1, 2))
        self.descend(self.v_opt, v_loss.sum())
        with torch.no_grad():
            delta = y - self.values(self.v, mb.obs)
        probs = self.policy(self.actor, mb.obs, self.epsilon(), mb.legal())
        logp = torch.log(probs.gather(-1, mb.actions[..., None].long())[..., 0])
        actor_loss = -(logp * delta).sum(-1).mean(1)
        self.descend(self.actor_opt, actor_loss.sum())
        self.soft_targets([("v_t", "v")])
        return {"value_loss": v_loss.detach().numpy(),
                "advantage": delta.abs().mean((1, 2)).numpy()}
