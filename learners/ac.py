"""Independent actor-critic agents (AC, AC-d, AC-c), the learners of Cleanup (Diss §B.4.2).

Each agent ``j`` has a softmax policy ``pi_theta^j`` and a value function ``V_phi^j`` with a
target copy ``V_phi~^j``. One iteration plays a batch of episodes, then (eqs. B.9-B.10):

* actor: one plain-SGD step on ``-sum_t [log pi(a_t|o_t) delta_t + beta H(pi(.|o_t))]``
  with the TD error ``delta_t = r_t + gamma V_phi~(o_{t+1}) (1 - done_t) - V_phi(o_t)``
  used as a constant weight (``learners.functional.policy_loss`` / ``td_errors``);
  ``pi`` is the behaviour policy with the exploration lower bound
  ``(1 - eps) pi + eps/|A|``, as in PG;
* critic: one Adam step on the TD(0) loss ``mean_t (r_t + gamma V_phi~(o_{t+1})
  (1 - done_t) - V_phi(o_t))^2``;
* target: ``phi~ <- tau phi + (1 - tau) phi~`` (tau = 0.01).

Actor and critic both use the values from before this iteration's critic step. The Diss's
eq. B.9 prints the target on ``V(s)`` and the online critic on ``V(s')``; we follow eq. B.10
(target on ``s'``, online on ``s``) for both, as SPEC §4 states; ``td_bootstrap = "online"``
puts the online critic on ``s'`` in the actor's TD error, as the reference code does. The
reward is the total reward (extrinsic + incentives received, minus give-reward payments
for AC-d/AC-c); the last recorded step of an episode counts as terminal (the games end at
``max_steps``); ``bootstrap_time_limit = true`` bootstraps past the game's last step
instead, from the observation after it, as the reference code does.

``share=True`` is parameter sharing: one policy and one critic per replica, broadcast over
the agents; every agent's episodes are then extra samples of the same network, so the
losses are averaged over agents. The network is a parameter (``net``, default ``MLPNet``);
``conv = true`` plugs in the Diss's convolutional front end for image games (``ConvNet``,
§B.4.2) without touching the algorithm.
The agents are a component, ``ACAgents``: ``learners.pg.PGAgents`` (acting, give-reward
actions, the policy loss) with TD errors for weights and a critic that learns after the
actor (``learn_values``). Any trainer built on ``learners.pg.PGTrainer`` takes them with
``Agents = ACAgents`` (the designers of ``learners.designer_ac``, LIO-AC, IA, Cen).
"""

from __future__ import annotations

import copy
import functools
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from econsim.bounds import Coefficient, Fraction, Hidden, LearningRate
from econsim.core import Game
from econsim.core.capabilities import ImageObservation, has
from learners.functional import next_step, td_errors
from learners.nets import ConvNet, MLPNet, Net, NetBuilder, Params, detach, soft_update
from learners.pg import Batch, LinearSchedule, PGAgents, PGConfig, PGTrainer
from learners.registry import register_algorithm

__all__ = ["ACAgents", "ACConfig", "ACTrainer", "ConvNet", "MLPNet", "Net", "NetBuilder",
           "soft_update"]


# ------------------------------------------------------------------------------- config
class ACConfig(PGConfig):
    """Actor-critic hyperparameters (Diss §B.4.2, Table B.5 "AC" 7x7; SPEC §4)."""

    kinds: ClassVar[tuple[str, ...]] = ("ac", "ac-d", "ac-c")
    hidden: Hidden = Field([64, 64], description="policy hidden layer sizes (Cleanup 64, 64)")
    critic_hidden: Hidden | None = Field(
        None, description="value network hidden layer sizes; None = the same as hidden")
    lr: LearningRate = Field(1e-3, description="policy learning rate (plain SGD)")
    lr_critic: LearningRate = Field(1e-3, description="value learning rate (Adam)")
    tau: Fraction = Field(0.01, description="soft target update rate")
    entropy: Coefficient = Field(0.1, description="entropy coefficient beta")
    gamma: Fraction = Field(0.99, description="discount factor")
    epsilon: LinearSchedule = Field(
        LinearSchedule(start=0.5, end=0.05, steps=100),
        description="exploration lower bound eps, decayed linearly per iteration")
    share: bool = Field(False, description="parameter sharing: one policy and critic for all "
                        "agents of a replica")
    conv: bool = Field(False, description="conv(6, 3x3) front end on the image observation "
                       "(Diss §B.4.2); false: the MLP on the flat image")
    td_bootstrap: Literal["target", "online"] = Field(
        "target", description="V(o') in the actors' TD errors: the target network (eq. B.10, "
        "SPEC §4) or the online critic (the reference code); the critic's own TD(0) loss "
        "bootstraps from the target either way")
    bootstrap_time_limit: bool = Field(
        False, description="the game's last step (max_steps) cuts the episode off: the "
        "actor's and the critic's TD errors read V of the observation after it (the "
        "reference code); false: terminal, nothing after it")

    @model_validator(mode="after")
    def _share_needs_one_kind(self):
        if self.share and self.agents and len(set(self.agents)) > 1:
            raise ValueError(f"share=True needs all agents of one kind, got {self.agents}")
        return self


# ------------------------------------------------------------------------------- agents
def conv_builder(game: Game, field: str) -> NetBuilder:
    """``ConvNet`` on ``game``'s image (hidden sizes still to give); a one-line error naming
    ``algorithm.<field>`` for a game without an image observation."""
    if not has(game, ImageObservation):
        raise ValueError(f"algorithm.{field}: {game.name} has no image observation ({field} "
                         "needs a game with image_shape)")
    return functools.partial(ConvNet, image=tuple(game.image_shape))


class ACAgents(PGAgents):
    """Actor-critic agents as a component: ``PGAgents``'s interface with TD(0) weights
    (eq. B.9) and a critic ``V_phi`` with target ``V_phi~`` that ``learn_values`` moves
    (eq. B.10, then the soft target update).

    ``net`` builds policy and value networks (default ``MLPNet``; ``conv = true``:
    ``ConvNet`` on the game's image); ``share`` comes from the config.
    """

    def __init__(self, game: Game, cfg: ACConfig, seeds: list[int], kinds: list[str],
                 give_mode: dict[str, str], *, net: NetBuilder | None = None) -> None:
        if net is None and cfg.conv:
            net = conv_builder(game, "conv")
        self.net = net or MLPNet
        super().__init__(game, cfg, seeds, kinds, give_mode, net=self.net, share=cfg.share)
        self.value_net = self.net(cfg.critic_hidden or cfg.hidden)

    def init_params(self) -> Params:
        """The policy parameters (returned: the trainer holds them), then the critic and its
        target, which this component keeps (``critic``, ``target``, ``critic_opt``)."""
        params = super().init_params()
        self.critic = self.value_net.init(self.obs_dim, 1, self.gens("critic"))
        self.target = {k: v.detach().clone() for k, v in self.critic.items()}
        self.critic_opt = torch.optim.Adam(self.critic.values(), lr=self.cfg.lr_critic)
        return params

    def values(self, critic: Params, obs_m: torch.Tensor) -> torch.Tensor:
        """``V(o)`` of every member: ``[R*N, T, B, D] -> [R*N, T, B]``."""
        flat = obs_m.reshape(obs_m.shape[0], -1, obs_m.shape[-1])
        return self.value_net.apply(self.broadcast(critic), flat).reshape(obs_m.shape[:-1])

    @property
    def wants_final(self) -> bool:
        """Whether batches must record the observation after the last step."""
        return self.cfg.bootstrap_time_limit

    def transitions(self, batch: Batch):
        """Member-layout ``(o_t, o_{t+1}, done_t, mask_t)`` of ``batch``. An episode's last
        recorded step is terminal (``o_{t+1}`` zero, never used), except with
        ``bootstrap_time_limit`` at the game's last step: ``o_{t+1}`` is the observation
        after it."""
        mask = batch.mask
        done = mask * (1 - next_step(mask))
        next_obs = next_step(batch.obs)
        if self.wants_final and mask.shape[0] == self.game.max_steps:
            if "policy_obs" not in batch.final:
                raise ValueError("bootstrap_time_limit needs batches from run_episodes "
                                 "(with the observation after the last step)")
            final = batch.final["policy_obs"]
            done = torch.cat([done[:-1], torch.zeros_like(done[-1:])])
            next_obs = torch.cat([next_obs[:-1], final[None]])
        per_agent = lambda m: self.members(m[..., None].expand(-1, -1, self.N))  # noqa: E731
        return (self.members(batch.obs), self.members(next_obs), per_agent(done),
                per_agent(mask))

    def advantages(self, batch: Batch, rewards: torch.Tensor) -> torch.Tensor:
        """TD errors ``[R*N, T, B]`` with the current critic on ``o`` and the target (or with
        ``td_bootstrap = "online"`` the critic) on ``o'``, as constants (eq. B.9);
        ``rewards [T, RB, N]`` keep their graph (e.g. to incentive parameters)."""
        obs, next_obs, done, mask = self.transitions(batch)
        boot = self.critic if self.cfg.td_bootstrap == "online" else self.target
        with torch.no_grad():
            v, v_next = self.values(self.critic, obs), self.values(boot, next_obs)
        return td_errors(self.members(rewards), v, v_next, done, mask, self.cfg.gamma)

    def weights(self, batch: Batch, rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """TD errors replace the reward-to-go of the policy gradient (eq. B.9)."""
        return self.advantages(batch, rewards)

    def value_loss(self, critic: Params, batch: Batch, rewards: torch.Tensor) -> torch.Tensor:
        """TD(0) loss of every member (eq. B.10), mean over its valid steps: ``[R*N]``."""
        obs, next_obs, done, mask = self.transitions(batch)
        with torch.no_grad():
            v_next = self.values(self.target, next_obs)
        delta = td_errors(self.members(rewards).detach(), self.values(critic, obs), v_next,
                          done, mask, self.cfg.gamma)
        return (delta ** 2).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)

    def critic_step(self, batch: Batch, rewards: torch.Tensor) -> torch.Tensor:
        """One Adam step of every critic on ``batch``; returns the loss before it ``[R*N]``."""
        per_member = self.value_loss(self.critic, batch, rewards)
        total = per_member.sum() / (self.N if self.share else 1)
        self.critic_opt.zero_grad()
        total.backward()
        self.critic_opt.step()
        return per_member.detach()

    def learn_values(self, batch: Batch, rewards: torch.Tensor) -> dict[str, np.ndarray]:
        """The critics' TD(0) Adam step on ``batch`` with ``rewards`` (call it after the
        actor's update, which uses the critic from before), then the target update."""
        vloss = self.critic_step(batch, rewards)
        self.move_target()
        return {"value_loss": vloss.reshape(self.R, -1).mean(1).numpy()}

    def move_target(self, agents: list[int] | None = None) -> None:
        """The soft target update ``phi~ <- tau phi + (1 - tau) phi~``, of every member or of
        ``agents`` only (their rows in every replica; unshared networks)."""
        moved = soft_update(self.target, self.critic, self.cfg.tau)
        if agents is not None:
            rows = torch.tensor([r * self.N + a for r in range(self.R) for a in agents])
            keep = {k: v.clone() for k, v in self.target.items()}
            for k in keep:
                keep[k][rows] = moved[k][rows]
            moved = keep
        self.target = moved

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"critic": {k: v.detach().clone() for k, v in self.critic.items()},
                "target": {k: v.detach().clone() for k, v in self.target.items()},
                "critic_opt": copy.deepcopy(self.critic_opt.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        self.critic = detach(state["critic"])
        self.target = {k: v.detach().clone() for k, v in state["target"].items()}
        self.critic_opt = torch.optim.Adam(self.critic.values(), lr=self.cfg.lr_critic)
        self.critic_opt.load_state_dict(copy.deepcopy(state["critic_opt"]))

    def copy_replica(self, source: PGAgents, r: int) -> None:
        """Replica ``r`` of ``source``'s critic and target (a fresh Adam)."""
        take = lambda d: {k: v[r * self.P:(r + 1) * self.P].detach().clone()  # noqa: E731
                          for k, v in d.items()}
        self.critic, self.target = detach(take(source.critic)), take(source.target)
        self.critic_opt = torch.optim.Adam(self.critic.values(), lr=self.cfg.lr_critic)


# ------------------------------------------------------------------------------ trainer
@register_algorithm("ac", "ac-d", "ac-c", kinds={"ac-d": "ac-d", "ac-c": "ac-c"})
class ACTrainer(PGTrainer):
    """Independent actor-critic agents: the ``PGTrainer`` loop with ``ACAgents`` (one
    iteration: play a batch, actor SGD step, critic Adam step, target update).

    ``net`` (optional keyword) builds the networks instead of ``MLPNet`` / ``ConvNet``."""

    Config = ACConfig
    Agents = ACAgents
    default_kind = "ac"
    give_mode: ClassVar[dict[str, str]] = {"ac-d": "d", "ac-c": "c"}
