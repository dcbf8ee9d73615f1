"""COMA: counterfactual multi-agent policy gradients on a cooperative multi-goal game (Diss
§3.4 "Algorithm implementations", A.8, Table A.3 "COMA"; Foerster et al. 2018 [17] as the
Diss describes it).

* **Actor**: the same augmented actor as IAC and CM3's stage 2,
  ``pi(a | o_self, g, o_others)``, shared by the agents (Diss §3.3.5, A.8.1), with the
  exploration floor ``pi_eps = (1 - eps) softmax + eps / |A|`` (Diss A.8).
* **Centralised critic** (Diss A.8, A.8.1): one network ``Q(s, (a^n, a^{-n}), g)`` evaluated
  for every agent n, whose input is the global state ``s = (s_env, s^1, ..., s^N)``, the
  other agents' one-hot actions ``a^{-n}``, agent n's goal ``g^n``, the other goals
  ``g^{-n}``, agent n's one-hot label and its ``o_self^n`` (the label and ``o_self`` tell the
  evaluations for different agents apart); two ReLU layers (navigation 128, 128:
  ``critic_hidden``) and ``|A|`` linear outputs, output ``i`` = ``Q(s, a^n = i, a^{-n}, g)``.
  No recurrent layers and no previous actions (the Diss's choice for all COMA runs).
* **Critic update**: the joint goal and the team reward ``sum_n R^n`` train the global Q
  (Diss §3.4). TD(0) on minibatches of the iteration's transitions:
  ``y = sum_n R^n + gamma (1 - done) Q'_n(s', a')[a'^n]`` for each agent n, with the target
  critic ``Q'`` and the next joint action ``a' ~ pi'``, the *target actor* (as CM3's critics
  sample theirs, so that the two methods differ in their critic and advantage only); loss
  ``(1/(S N)) sum_i sum_n (y^n_i - Q_n(s_i, a_i)[a^n_i])^2``. The original's TD(lambda) over
  whole episodes has no place in the minibatch harness; TD(0) is what the chapter's other
  critics use.
* **Actor update** with the counterfactual advantage
  ``A^n(s, a) = Q(s, a) - sum_a^ pi(a^ | o^n) Q(s, (a^, a^{-n}))`` (every ``a^`` from one
  critic call, the outputs of the network), from the just-updated critic; loss
  ``-(1/S) sum_i sum_n log pi_eps(a^n_i | o^n_i) A^n_i``.
* Targets (actor and critic) follow by soft updates with ``tau`` after each minibatch.

On-policy like IAC and CM3 in navigation (Table A.3): ``batch`` episodes are played,
``updates`` (the Diss's epochs, 24) minibatches of ``minibatch`` transitions are drawn from
them, and the buffer is cleared (``replay = None``). Defaults are Table A.3's: lr actor 1e-5,
lr critic 1e-4, eps 1.0 -> 0.05 over 2e4 episodes (2000 iterations of 10 episodes). Checkers
(Table A.5) sets its own (256-unit critic layers, lr 1e-4 / 1e-3, eps end 0.1).

Deviation (documented): image parts of the state or of ``o_self`` (Checkers) enter the
critic's dense layers flat, without the convolutions A.8.3 gives COMA's Q (the actor, CM3's,
has them with ``conv``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import Hidden, LearningRate
from econsim.core import Game
from learners.multigoal import (
    MultiGoalConfig,
    MultiGoalTrainer,
    Transitions,
    one_hot,
    others_index,
)
from learners.nets import Params, init_mlp, mlp
from learners.pg import LinearSchedule
from learners.registry import register_algorithm
from learners.replicas import categorical

__all__ = ["COMAConfig", "COMATrainer"]


class COMAConfig(MultiGoalConfig):
    """COMA hyperparameters (Diss Tables A.3, A.5 "COMA"). Defaults: cooperative navigation.

    ``hidden`` and ``branch`` are the actor's (the same as IAC's and CM3's stage 2)."""

    kinds: ClassVar[tuple[str, ...]] = ("coma",)
    critic_hidden: Hidden = Field([128, 128], description="hidden layers of the centralised "
                                  "critic (navigation 128, 128; Checkers 256, 256)")
    lr_actor: LearningRate = Field(1e-5, description="actor learning rate (Adam)")
    lr_critic: LearningRate = Field(1e-4, description="critic learning rate (Adam)")
    epsilon: LinearSchedule = Field(
        LinearSchedule(start=1.0, end=0.05, steps=2000),
        description="exploration lower bound eps per iteration (Table A.3: 2e4 episodes)")


@register_algorithm("coma")
class COMATrainer(MultiGoalTrainer):
    """COMA with a goal-conditioned centralised critic (see the module docstring)."""

    Config = COMAConfig
    default_kind = "coma"
    nets: ClassVar[tuple[str, ...]] = ("actor", "actor_t", "critic", "critic_t")
    optimisers: ClassVar[tuple[str, ...]] = ("actor_opt", "critic_opt")

    # ----------------------------------------------------------------------- networks
    def critic_size(self, game: Game) -> int:
        """Length of the critic's input ``(s, a^{-n}, g^n, g^{-n}, onehot(n), o_self^n)``."""
        N = game.n_agents
        return (game.env_state_size + N * game.agent_state_size + (N - 1) * self.A
                + N * game.goal_size + N + game.self_size)

    def build(self, stage: int) -> None:
        game: Game = self.game
        self.actor_shape = self.actor_net(game)
        self.actor = self.actor_shape.init(self.gens("coma/actor"))
        self.critic = init_mlp([self.critic_size(game), *self.cfg.critic_hidden, self.A],
                               self.gens("coma/critic"))
        self.actor_t = {k: v.detach().clone() for k, v in self.actor.items()}
        self.critic_t = {k: v.detach().clone() for k, v in self.critic.items()}
        self.make_optimisers()

    def make_optimisers(self) -> None:
        self.actor_opt = self.adam(self.actor, self.cfg.lr_actor)
        self.critic_opt = self.adam(self.critic, self.cfg.lr_critic)

    def policy(self, params: Params, obs: torch.Tensor, eps: float,
               legal: torch.Tensor | None = None) -> torch.Tensor:
        return self.actor_probs(self.actor_shape, params, obs, eps, legal)

    # ------------------------------------------------------------------ critic inputs
    def critic_inputs(self, mb: Transitions, actions: torch.Tensor,
                      nxt: bool = False) -> torch.Tensor:
        """The critic's input for every agent n, ``[R, S, N, critic_size]``: the global state,
        the others' one-hot ``actions [R, S, N]``, ``g^n``, ``g^{-n}``, n's label, ``o_self^n``."""
        o_self, goal, _, s_env, s_ag = mb.parts(nxt)
        N = mb.N
        lead = (*goal.shape[:2], N)
        oth = others_index(N)
        act = one_hot(actions, self.A)
        every = lambda x: x[:, :, None].expand(*lead, x.shape[-1])  # noqa: E731 (same for all n)
        return torch.cat([
            every(s_env), every(s_ag.flatten(-2)), act[:, :, oth].flatten(-2), goal,
            goal[:, :, oth].flatten(-2), torch.eye(N, dtype=goal.dtype).expand(*lead, N),
            o_self], -1)

    def q_values(self, params: Params, mb: Transitions, actions: torch.Tensor,
                 nxt: bool = False) -> torch.Tensor:
        """``Q(s, (a^n = i, a^{-n}), g)`` for every agent n and action i: ``[R, S, N, A]``."""
        x = self.critic_inputs(mb, actions, nxt)
        R, S, N, D = x.shape
        return mlp(params, x.reshape(R, S * N, D)).reshape(R, S, N, self.A)

    @staticmethod
    def counterfactual(q: torch.Tensor, actions: torch.Tensor,
                       pi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Q(s, a) [R, S, N], baseline [R, S, N])`` from the critic's outputs ``q [R, S, N,
        A]``, the joint action and the agents' policies ``pi [R, S, N, A]``: the baseline of
        agent n is ``sum_a^ pi(a^ | o^n) Q(s, (a^, a^{-n}))``, the others' actions held fixed."""
        taken = q.gather(-1, actions[..., None].long())[..., 0]
        return taken, (pi * q).sum(-1)

    # ------------------------------------------------------------------------ training
    def train_step(self, mb: Transitions) -> dict[str, np.ndarray]:
        """One minibatch update: critic (TD(0) on the team reward), actor (counterfactual
        advantage from the updated critic), then the soft target updates."""
        eps = self.epsilon()
        team = mb.rewards.sum(-1, keepdim=True)  # [R, S, 1]: sum_n R^n
        go_on = (1 - mb.done)[:, :, None]
        with torch.no_grad():  # a' ~ pi' (the target actor)
            a_next = categorical(self.train_rng, self.policy(self.actor_t, mb.next_obs, eps,
                                                             mb.legal(True)))
            q_next = self.q_values(self.critic_t, mb, a_next, True)
            y = team + self.cfg.gamma * go_on * q_next.gather(-1, a_next[..., None])[..., 0]
        q = self.q_values(self.critic, mb, mb.actions)
        taken = q.gather(-1, mb.actions[..., None].long())[..., 0]
        critic_loss = ((y - taken) ** 2).mean((1, 2))
        self.descend(self.critic_opt, critic_loss.sum())

        probs = self.policy(self.actor, mb.obs, eps, mb.legal())  # [R, S, N, A]
        with torch.no_grad():
            q_taken, baseline = self.counterfactual(
                self.q_values(self.critic, mb, mb.actions), mb.actions, probs.detach())
            adv = q_taken - baseline
        logp = torch.log(probs.gather(-1, mb.actions[..., None].long())[..., 0])
        actor_loss = -(logp * adv).sum(-1).mean(1)
        self.descend(self.actor_opt, actor_loss.sum())
        self.soft_targets([("actor_t", "actor"), ("critic_t", "critic")])
        return {"critic_loss": critic_loss.detach().numpy(),
                "advantage": adv.abs().mean((1, 2)).numpy()}
