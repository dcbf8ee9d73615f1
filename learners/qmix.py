"""QMIX: monotonic value-function factorisation on a cooperative multi-goal game (Diss §3.4
"Algorithm implementations", A.8, Table A.3 "QMIX"; Rashid et al. 2018 [18] as the Diss
describes it). Written once for chapters 3 and 4 (HSD's high level is QMIX over latent
skills): :func:`qmix_target` and :func:`qmix_loss` take any per-agent Q-values and any
mixer state, and the mixer is ``learners.nets.QMixer``.

* **Agent network** ``Q(o^n, g^n, .)``, shared by the agents: the agent's own goal and
  observation ``(o_self, g^n, o_others)`` (the Diss: individual goals to each agent network)
  -> one ReLU layer (navigation 64: ``agent_hidden``) -> ``|A|`` linear Q-values (A.8.1).
* **Behaviour**: epsilon-greedy over the agent's Q-values, as probabilities
  ``(1 - eps) onehot(argmax_a Q) + eps / |A|`` (ties: the first maximum), so that acting,
  evaluation (``eps = 0``: greedy) and the Mesa face go through ``policy`` like every learner
  of the chapter; in a game with an action mask the argmax and the eps share are over the
  allowed actions, and the target's ``max_a'`` over those allowed at ``o'``.
* **Mixer**: ``Q_tot(s, q^1, ..., q^N)``, monotonic in every ``q^n``, its weights from
  hypernetworks of the mixer state ``(s_env, s^1, ..., s^N, g^1, ..., g^N)`` (the Diss gives
  all goals to the mixer), embedding 64 (navigation; ``embed``); see ``QMixer``.
* **Update** on the team reward ``sum_n R^n``, TD(0) against target networks (agent and
  mixer): ``y = sum_n R^n + gamma (1 - done) Q_tot'(s', (max_a' Q'_n(o'^n, a'))_n)``, the
  standard QMIX target; with ``double_q`` the next actions are the online network's
  ``argmax_a' Q_n(o'^n, a')``, valued by the target network. Loss: the mean squared TD error
  of ``Q_tot(s, (Q_n(o^n, a^n))_n)``; one Adam optimiser (``lr_critic``, Table A.3's
  "Learning rate Q") over the agent network and the mixer.
* **Targets**: soft updates ``theta' <- tau theta + (1 - tau) theta'`` after every minibatch,
  with the harness's ``tau`` (0.01), rather than the original's hard copy every K updates:
  the reference code of both chapters updates every target network softly with tau 0.01
  (SPEC §7b, §8b; HSD's high level is this module), and the chapter's other learners do the
  same, so the methods differ in what they learn, not in how their targets trail.

**Output layer at zero** (``out_init``; chapter 3's scenarios): with every layer
Glorot-uniform, the mixer's gain ``sum_n dQ_tot / dq_n`` at the start times the agents'
spread of Q over actions makes the target's ``Q_tot'(s', max_a' Q'_n)`` exceed ``Q_tot'`` at
the agents' mean Q by more than the size of the team's reward per step
(``benchmarks/qmix_probe.py --scenario NAME --out-init glorot``, seeds 0-2: Cross 21 to 626
against rewards of -7 to -18, Checkers 39 to 78 against rewards near 0): every backup
raises the values, which then grow without bound (Cross: Q_tot about 1e11 at 15,000
episodes, while every reward is negative). Starting the output layer at zero removes that
first overestimate; the Diss does not state an initialisation. It is not enough alone: with
the targets' tau 0.01 Q_tot still diverged after 6,400-8,500 Cross episodes (gradient
clipping at norm 10 too), with tau 0.001 it did not (README, "QMIX in navigation"), so
chapter 3's QMIX scenarios set both.

Off-policy (Table A.3): transitions go to a ring buffer of ``replay`` (1e4) per replica; the
Diss trains every 10 environment steps, which the harness does as ``updates`` minibatches
after each iteration of ``batch`` episodes (navigation: 10 episodes x 50 steps / 10 = 50).
Exploration: eps 1.0 -> 0.05 over 8e4 episodes (8000 iterations). ``lr_actor``, ``hidden``
and ``branch`` of the shared config are unused (QMIX has no actor). Checkers (Table A.5)
sets its own (lr 1e-5, eps end 0.1, embedding 128).

**Team games with a flat global state** (capability ``GlobalState``; STS2, the QMIX baseline
of Diss §4.3.2, SPEC §8b): the agent network sees the agent's observation (there are no
goals) and, with ``agent_id``, a one-hot of the agent's index (a parameter-shared network
cannot otherwise tell which of STS2's ``pass_k`` actions is a pass to itself); the mixer
sees the game's ``global_state``; the team reward is ``game.team_reward`` (STS2: the shared
reward once, not three times). ``warmup`` iterations of uniformly random actions come before
the epsilon schedule (SPEC §8: 10 random episodes, then 0.5 -> 0.05 over 1000 episodes).
``sts2_qmix`` in iterations of 10 episodes: 5000 iterations (50k episodes), ``warmup`` 1,
epsilon over 100 iterations, ``updates`` 150 (train every 10 steps: 10 episodes of about
150 steps, which end at a goal), replay 1e5 joint steps, minibatch 256, lr 1e-4, tau 0.01.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import Count, Hidden, Iterations, LearningRate, Minibatches, Width
from econsim.core import Game
from econsim.core.capabilities import GlobalState, MultiGoal, has
from learners.multigoal import MultiGoalConfig, MultiGoalTrainer, Transitions, where_masked
from learners.nets import Params, QMixer, init_mlp, mlp
from learners.pg import LinearSchedule
from learners.registry import register_algorithm

__all__ = ["QMIXConfig", "QMIXTrainer", "epsilon_greedy", "qmix_loss", "qmix_target",
           "with_agent_ids"]


def epsilon_greedy(q: torch.Tensor, eps: float,
                   legal: torch.Tensor | None = None) -> torch.Tensor:
    """Probabilities ``(1 - eps) onehot(argmax q) + eps / |A|`` for Q-values ``[..., A]``;
    with ``legal [..., A]`` (a game's action mask) the argmax and the eps share are over the
    allowed actions only."""
    A = q.shape[-1]
    greedy = torch.nn.functional.one_hot(q.argmax(-1), A).to(q.dtype)

    def masked() -> torch.Tensor:
        best = torch.nn.functional.one_hot(best_legal(q, legal), A).to(q.dtype)
        return (1 - eps) * best + eps * legal / legal.sum(-1, keepdim=True)

    return where_masked(legal, (1 - eps) * greedy + eps / A, masked)


def best_legal(q: torch.Tensor, legal: torch.Tensor | None) -> torch.Tensor:
    """``argmax q [..., A]`` over the allowed actions (``legal``; None: all)."""
    return (q if legal is None else q.masked_fill(~legal, -torch.inf)).argmax(-1)


def with_agent_ids(x: torch.Tensor, n_agents: int) -> torch.Tensor:
    """``x [..., N, D]`` with each agent's one-hot index appended: ``[..., N, D + N]``."""
    ids = torch.eye(n_agents, dtype=x.dtype).expand(*x.shape[:-1], n_agents)
    return torch.cat([x, ids], -1)


def qmix_target(mixer: QMixer, mixer_t: Params, q_next_t: torch.Tensor,
                next_state: torch.Tensor, reward: torch.Tensor, done: torch.Tensor,
                gamma: float | torch.Tensor,
                q_next_online: torch.Tensor | None = None,
                next_legal: torch.Tensor | None = None) -> torch.Tensor:
    """The QMIX TD target ``y = r + gamma (1 - done) Q_tot'(s', q')`` ``[R, S]`` (no gradient).

    ``q_next_t [R, S, N, A]``: the target agent network's Q-values at the next observations;
    ``q'_n = max_a' q_next_t`` or, given ``q_next_online`` (double Q), ``q_next_t`` at the
    online network's argmax. ``next_state [R, S, D]`` (the mixer's input), ``reward`` and
    ``done [R, S]``; ``gamma`` a float or a tensor broadcastable to ``[R, S]`` (e.g. an SMDP
    discount per transition). ``next_legal [R, S, N, A]``: the actions allowed at the next
    observations (a game's action mask); the max and the argmax are over those.
    """
    with torch.no_grad():
        pick = q_next_t if q_next_online is None else q_next_online
        q_next = q_next_t.gather(-1, best_legal(pick, next_legal)[..., None])[..., 0]
        return reward + gamma * (1 - done) * mixer.apply(mixer_t, q_next, next_state)


def qmix_loss(mixer: QMixer, params: Params, q_taken: torch.Tensor, state: torch.Tensor,
              y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss [R], Q_tot [R, S])``: the mean squared TD error ``(y - Q_tot(s, q))^2`` per
    replica, for the chosen actions' Q-values ``q_taken [R, S, N]`` of any per-agent network
    (with gradient), the mixer state ``[R, S, D]`` and targets ``y [R, S]``."""
    q_tot = mixer.apply(params, q_taken, state)
    return ((y - q_tot) ** 2).mean(1), q_tot


class QMIXConfig(MultiGoalConfig):
    """QMIX hyperparameters (Diss Tables A.3, A.5 "QMIX"). Defaults: cooperative navigation."""

    kinds: ClassVar[tuple[str, ...]] = ("qmix",)
    agent_hidden: Hidden = Field([64], description="hidden layers of the agent Q network "
                                 "(navigation: one of 64)")
    embed: Width = Field(64, description="mixer embedding dimension (navigation 64, "
                         "Checkers 128)")
    hyper_hidden: Hidden = Field([], description="hidden layers of the hypernetworks of the "
                                 "mixing weights (none: one linear layer, the original)")
    double_q: bool = Field(False, description="next actions by the online agent network's "
                           "argmax (double Q) instead of the target's max")
    replay: Iterations | None = Field(10_000, description="replay capacity in transitions "
                                      "per replica (Table A.3: 1e4)")
    updates: Minibatches = Field(50, description="minibatch updates per iteration: the "
                                 "iteration's steps / 10 (navigation: 10 x 50 / 10)")
    lr_critic: LearningRate = Field(1e-3, description="learning rate of the agent network "
                                    "and mixer (Adam; Table A.3 'Learning rate Q')")
    epsilon: LinearSchedule = Field(
        LinearSchedule(start=1.0, end=0.05, steps=8000),
        description="epsilon-greedy exploration per iteration (Table A.3: 8e4 episodes)")
    warmup: Count = Field(0, description="iterations of uniformly random actions before the "
                          "epsilon schedule starts (STS2: 10 episodes, one iteration of 10)")
    agent_id: bool = Field(False, description="the agent network also sees a one-hot of the "
                           "agent's index (STS2: which pass action is a pass to itself)")
    out_init: Literal["glorot", "zero"] = Field(
        "glorot", description="the agent network's output layer at the start: Glorot-uniform "
        "like every layer (the reference code's framework default), or zero (every action "
        "starts at the same value, so the target's max adds no overestimate at first; "
        "chapter 3's QMIX scenarios, module docstring)")


@register_algorithm("qmix")
class QMIXTrainer(MultiGoalTrainer):
    """QMIX with goal-conditioned agent networks and mixer, or on a team game with a flat
    global state (see the module docstring)."""

    Config = QMIXConfig
    default_kind = "qmix"
    nets: ClassVar[tuple[str, ...]] = ("q", "q_t", "mixer", "mixer_t")
    optimisers: ClassVar[tuple[str, ...]] = ("opt",)
    games = (MultiGoal, GlobalState)

    def epsilon(self) -> float:
        return self.cfg.epsilon.after(self.cfg.warmup, self.iteration)

    def mixer_state_size(self, game: Game) -> int:
        if not has(game, MultiGoal):
            return game.state_size
        return (game.env_state_size + game.n_agents * game.agent_state_size
                + game.n_agents * game.goal_size)

    def build(self, stage: int) -> None:
        game: Game = self.game
        obs = (game.self_size + game.goal_size + game.others_size if has(game, MultiGoal)
               else game.observation_space.shape[0])
        obs += self.N if self.cfg.agent_id else 0
        self.q = init_mlp([obs, *self.cfg.agent_hidden, self.A], self.gens("qmix/agent"))
        if self.cfg.out_init == "zero":
            with torch.no_grad():
                self.q[f"w{len(self.cfg.agent_hidden)}"].zero_()
        self.mixer_shape = QMixer(self.N, self.mixer_state_size(game), self.cfg.embed,
                                  tuple(self.cfg.hyper_hidden))
        self.mixer = self.mixer_shape.init(self.gens("qmix/mixer"))
        self.q_t = {k: v.detach().clone() for k, v in self.q.items()}
        self.mixer_t = {k: v.detach().clone() for k, v in self.mixer.items()}
        self.make_optimisers()

    def make_optimisers(self) -> None:
        self.opt = torch.optim.Adam([*self.q.values(), *self.mixer.values()],
                                    lr=self.cfg.lr_critic)

    @property
    def params(self) -> Params:
        """The agent Q network (what acts)."""
        return self.q

    def agent_q(self, params: Params, obs: torch.Tensor) -> torch.Tensor:
        """Per-agent Q-values ``[R, ..., A]`` for observations ``[R, ..., D]`` (``[o_self, g^n,
        o_others]``: the agent's own goal and observation; with ``agent_id`` the observations
        are ``[R, ..., N, D]``, every agent's, and get the agents' one-hot indices)."""
        if self.cfg.agent_id:
            obs = with_agent_ids(obs, self.N)
        x = obs.reshape(obs.shape[0], -1, obs.shape[-1])
        return mlp(params, x).reshape(*obs.shape[:-1], self.A)

    def policy(self, params: Params, obs: torch.Tensor, eps: float,
               legal: torch.Tensor | None = None) -> torch.Tensor:
        return epsilon_greedy(self.agent_q(params, obs), eps, legal)

    @torch.no_grad()
    def act_one(self, obs: np.ndarray, legal: np.ndarray, generator: torch.Generator,
                replica: int = 0, agent: int = 0) -> int:
        """The greedy legal action of agent ``agent``."""
        params = {k: v[replica:replica + 1] for k, v in self.params.items()}
        x = torch.as_tensor(np.asarray(obs, np.float32)).reshape(1, 1, -1)
        if self.cfg.agent_id:
            x = torch.cat([x, torch.nn.functional.one_hot(torch.tensor([[agent]]), self.N)
                           .to(x.dtype)], -1)
        return int(best_legal(mlp(params, x)[0, 0], torch.as_tensor(np.asarray(legal, bool))))

    def mixer_state(self, mb: Transitions, nxt: bool = False) -> torch.Tensor:
        """The mixer's input ``(s_env, s^1..s^N, g^1..g^N)`` ``[R, S, D]`` (a flat global state
        game: its ``state``)."""
        if not has(self.game, MultiGoal):
            return mb.state(nxt)
        _, goal, _, s_env, s_ag = mb.parts(nxt)
        return torch.cat([s_env, s_ag.flatten(-2), goal.flatten(-2)], -1)

    def team_reward(self, mb: Transitions) -> torch.Tensor:
        """``[R, S]``: the sum of the agents' rewards (multi-goal), or the game's team reward."""
        if not has(self.game, MultiGoal):
            return self.game.team_reward(mb.rewards)
        return mb.rewards.sum(-1)

    def train_step(self, mb: Transitions) -> dict[str, np.ndarray]:
        """One minibatch update of the agent network and mixer, then the soft targets."""
        with torch.no_grad():
            y = qmix_target(self.mixer_shape, self.mixer_t, self.agent_q(self.q_t, mb.next_obs),
                            self.mixer_state(mb, True), self.team_reward(mb), mb.done,
                            self.cfg.gamma,
                            self.agent_q(self.q, mb.next_obs) if self.cfg.double_q else None,
                            mb.legal(True))
        q_taken = self.agent_q(self.q, mb.obs).gather(-1, mb.actions[..., None].long())[..., 0]
        loss, q_tot = qmix_loss(self.mixer_shape, self.mixer, q_taken, self.mixer_state(mb), y)
        self.descend(self.opt, loss.sum())
        self.soft_targets([("q_t", "q"), ("mixer_t", "mixer")])
        return {"td_loss": loss.detach().numpy(), "q_tot": q_tot.detach().mean(1).numpy()}
