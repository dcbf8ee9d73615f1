"""IQL: independent Q-learning, the flat baseline of chapter 4 (Diss §4.3.2; SPEC §8b) and
HSD's low level (``learners.hsd`` uses :func:`iql_target` and :func:`iql_loss`).

Every agent learns its own action values ``Q(o^n, a)`` from its own reward as if the others
were part of the environment (Tan 1993 [9], with DQN's replay and target network [2]):

* **Network**: one ReLU MLP shared by the agents (parameter sharing, Diss §4.3.2), 128-128
  (``hidden``), on the agent's observation and, with ``agent_id``, a one-hot of its index
  (a shared network cannot otherwise tell which of STS2's ``pass_k`` actions is a pass to
  itself); one member per replica (``learners.nets``).
* **Behaviour**: epsilon-greedy, ``(1 - eps) onehot(argmax_a Q) + eps / |A|`` (ties: the
  first maximum); ``warmup`` iterations of uniformly random actions before the schedule. In
  a game with an action mask the argmax, the eps share and the target's max are over the
  allowed actions.
* **Update**: ``y = r^n + gamma (1 - done) max_a' Q'(o'^n, a')`` with the target network
  ``Q'`` (``double_q``: the online network's argmax valued by ``Q'``); loss the mean squared
  TD error over a minibatch of *agent* transitions ``(o^n, a^n, r^n, o'^n)`` (each agent's
  step is one transition, as Algorithm 1 stores the low level's); one Adam optimiser
  (``lr_critic``); soft targets ``tau`` after every minibatch.
* **Reward**: the game's reward of the agent: in STS2 the team reward, which every agent
  receives (the Diss's "team reward per agent"); in a multi-goal game the agent's own.

Budget, in iterations of ``batch`` episodes (the harness of ``learners.multigoal``): the Diss
trains every 10 environment steps with minibatches of 256 transitions, which is ``updates``
minibatches after each iteration of ``batch`` episodes: ``batch x episode length / 10``
(STS2 episodes end at a goal, on average about 130-150 steps early in training, so 10
episodes give about 150 updates); replay 1e5 agent transitions per replica; lr 1e-4;
gamma 0.99; tau 0.01; epsilon 0.5 -> 0.05 over 1000 episodes (100 iterations) after 10
random episodes (``warmup`` 1 iteration).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import Count, Hidden, Iterations, LearningRate, Minibatches
from econsim.core import Game
from econsim.core.capabilities import GlobalState, MultiGoal, has
from learners.multigoal import (
    MASKS,
    MultiGoalConfig,
    MultiGoalTrainer,
    Transitions,
    split_agents,
)
from learners.nets import Params, init_mlp, mlp
from learners.pg import LinearSchedule
from learners.qmix import best_legal, epsilon_greedy, with_agent_ids
from learners.registry import register_algorithm
from learners.rollout import Batch

__all__ = ["IQLConfig", "IQLTrainer", "iql_loss", "iql_target"]


def iql_target(q_next_t: torch.Tensor, reward: torch.Tensor, done: torch.Tensor,
               gamma: float, q_next_online: torch.Tensor | None = None,
               next_legal: torch.Tensor | None = None) -> torch.Tensor:
    """The independent TD target ``y = r + gamma (1 - done) max_a' q'(a')`` (no gradient).

    ``q_next_t [..., A]``: the target network's values at the next observations (``[R, S,
    A]``); ``reward``, ``done [...]``. With ``q_next_online`` (double Q) the next action is
    its argmax, valued by ``q_next_t``; ``next_legal [..., A]`` (a game's action mask) limits
    the max and the argmax to the allowed actions."""
    with torch.no_grad():
        pick = q_next_t if q_next_online is None else q_next_online
        q_next = q_next_t.gather(-1, best_legal(pick, next_legal)[..., None])[..., 0]
        return reward + gamma * (1 - done) * q_next


def iql_loss(q: torch.Tensor, actions: torch.Tensor, y: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss [R], q_taken [R, S])``: the mean squared TD error per replica of the taken
    actions' values ``q [R, S, A]`` (with gradient) against the targets ``y [R, S]``."""
    q_taken = q.gather(-1, actions[..., None].long())[..., 0]
    return ((y - q_taken) ** 2).mean(1), q_taken


class IQLConfig(MultiGoalConfig):
    """IQL hyperparameters. Defaults: the STS2 baseline (Diss §4.3.2, SPEC §8b)."""

    kinds: ClassVar[tuple[str, ...]] = ("iql",)
    hidden: Hidden = Field([128, 128], description="hidden layers of the Q network (Diss "
                           "§4.3.2: 128-128)")
    replay: Iterations = Field(100_000, description="replay capacity in agent transitions "
                               "per replica (SPEC §8b: 1e5)")
    minibatch: Minibatches = Field(256, description="agent transitions per minibatch")
    updates: Minibatches = Field(150, description="minibatch updates per iteration: batch x "
                                 "episode length / 10 (the Diss trains every 10 steps)")
    lr_critic: LearningRate = Field(1e-4, description="learning rate of the Q network (Adam)")
    epsilon: LinearSchedule = Field(
        LinearSchedule(start=0.5, end=0.05, steps=100),
        description="epsilon-greedy exploration per iteration after the warm-up (SPEC §8: "
        "0.5 -> 0.05 over 1000 episodes)")
    warmup: Count = Field(1, description="iterations of uniformly random actions before the "
                          "epsilon schedule starts (SPEC §8: 10 episodes)")
    agent_id: bool = Field(True, description="the Q network also sees a one-hot of the "
                           "agent's index")
    double_q: bool = Field(False, description="next actions by the online network's argmax")


@register_algorithm("iql")
class IQLTrainer(MultiGoalTrainer):
    """Independent Q-learning with a parameter-shared Q network (module docstring)."""

    Config = IQLConfig
    default_kind = "iql"
    nets: ClassVar[tuple[str, ...]] = ("q", "q_t")
    optimisers: ClassVar[tuple[str, ...]] = ("opt",)
    games = (MultiGoal, GlobalState)

    def epsilon(self) -> float:
        return self.cfg.epsilon.after(self.cfg.warmup, self.iteration)

    def build(self, stage: int) -> None:
        game: Game = self.game
        obs = (game.self_size + game.goal_size + game.others_size if has(game, MultiGoal)
               else game.observation_space.shape[0])
        obs += self.N if self.cfg.agent_id else 0
        self.q = init_mlp([obs, *self.cfg.hidden, self.A], self.gens("iql/q"))
        self.q_t = {k: v.detach().clone() for k, v in self.q.items()}
        self.make_optimisers()

    def make_optimisers(self) -> None:
        self.opt = self.adam(self.q, self.cfg.lr_critic)

    def capacity(self) -> int:
        return self.cfg.replay

    @property
    def params(self) -> Params:
        """The Q network (what acts)."""
        return self.q

    # ------------------------------------------------------------------------ values
    def q_values(self, params: Params, obs: torch.Tensor) -> torch.Tensor:
        """``Q(o^n, .)`` ``[R, ..., N, A]`` for every agent's observation ``[R, ..., N, D]``."""
        if self.cfg.agent_id:
            obs = with_agent_ids(obs, self.N)
        x = obs.reshape(obs.shape[0], -1, obs.shape[-1])
        return mlp(params, x).reshape(*obs.shape[:-1], self.A)

    def q_rows(self, params: Params, obs: torch.Tensor, agent: torch.Tensor) -> torch.Tensor:
        """``Q(o, .)`` ``[R, S, A]`` of agent transitions: observations ``[R, S, D]`` of the
        agents ``agent [R, S]``."""
        if self.cfg.agent_id:
            obs = torch.cat([obs, torch.nn.functional.one_hot(agent.long(), self.N)
                             .to(obs.dtype)], -1)
        return mlp(params, obs)

    def policy(self, params: Params, obs: torch.Tensor, eps: float,
               legal: torch.Tensor | None = None) -> torch.Tensor:
        return epsilon_greedy(self.q_values(params, obs), eps, legal)

    @torch.no_grad()
    def act_one(self, obs: np.ndarray, legal: np.ndarray, generator: torch.Generator,
                replica: int = 0, agent: int = 0) -> int:
        """The greedy legal action of agent ``agent``."""
        params = {k: v[replica:replica + 1] for k, v in self.params.items()}
        x = torch.as_tensor(np.asarray(obs, np.float32)).reshape(1, 1, -1)
        q = self.q_rows(params, x, torch.tensor([[agent]]))[0, 0]
        return int(best_legal(q, torch.as_tensor(np.asarray(legal, bool))))

    # ---------------------------------------------------------------------- training
    def transitions(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One transition per agent and step: ``[R, T*B*N, ...]`` (observation, action, the
        agent's reward, next observation, done, the agent's index)."""
        fields, valid = super().transitions(batch)
        per_agent = ("obs", "actions", "rewards", "next_obs", *MASKS)
        keep = {k: fields[k] for k in (*per_agent, "done") if k in fields}
        return split_agents(keep, valid, self.N, per_agent)

    def train_step(self, mb: Transitions) -> dict[str, np.ndarray]:
        """One minibatch update of the Q network, then the soft target update."""
        with torch.no_grad():
            y = iql_target(self.q_rows(self.q_t, mb.next_obs, mb.agent), mb.rewards, mb.done,
                           self.cfg.gamma,
                           self.q_rows(self.q, mb.next_obs, mb.agent) if self.cfg.double_q
                           else None, mb.legal(True))
        loss, q_taken = iql_loss(self.q_rows(self.q, mb.obs, mb.agent), mb.actions, y)
        self.descend(self.opt, loss.sum())
        self.soft_targets([("q_t", "q")])
        return {"td_loss": loss.detach().numpy(), "q": q_taken.detach().mean(1).numpy()}
