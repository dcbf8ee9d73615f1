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
(target on ``s'``, online on ``s``) for both, as SPEC §4 states. The reward is the total
reward (extrinsic + incentives received, minus give-reward payments for AC-d/AC-c); the
last recorded step of an episode counts as terminal (the games end at ``max_steps``).

``share=True`` is parameter sharing: one policy and one critic per replica, broadcast over
the agents; every agent's episodes are then extra samples of the same network, so the
losses are averaged over agents. The network is a parameter (``net``, default ``MLPNet``);
``conv = true`` plugs in the Diss's convolutional front end for image games (``ConvNet``,
§B.4.2) without touching the algorithm.
Rollouts, give-reward actions, layout helpers and reporting come from ``PGTrainer``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import torch
from pydantic import Field, model_validator

from econsim.bounds import Coefficient, Fraction, Hidden, LearningRate
from econsim.core import Game, torch_generator
from econsim.core.capabilities import ImageObservation, has
from learners.functional import behaviour_probs, next_step, td_errors
from learners.nets import Params, conv, detach, init_conv, init_mlp, mlp
from learners.pg import Batch, LinearSchedule, PGConfig, PGTrainer
from learners.registry import register_algorithm


# ----------------------------------------------------------------------------- networks
class Net(Protocol):
    """A stacked network: ``init(in_dim, out_dim, gens)`` and ``apply(params, x)``.

    ``x`` is ``[P, B, in_dim]`` (flat observations; an image network reshapes them itself)
    and the output ``[P, B, out_dim]``; one member per generator in ``gens``.
    """

    def init(self, in_dim: int, out_dim: int, gens: Sequence[torch.Generator]) -> Params: ...

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor: ...


#: hidden layer sizes -> network (``MLPNet`` itself is one; ``ConvNet`` with its image bound)
NetBuilder = Callable[[Sequence[int]], Net]


@dataclass(frozen=True)
class MLPNet:
    """Stacked ReLU MLP with the given hidden sizes (``learners.nets.init_mlp``/``mlp``)."""

    hidden: Sequence[int]

    def init(self, in_dim: int, out_dim: int, gens: Sequence[torch.Generator]) -> Params:
        return init_mlp([in_dim, *self.hidden, out_dim], gens)

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        return mlp(params, x)


@dataclass(frozen=True)
class ConvNet:
    """The Cleanup network of Diss §B.4.2: conv(``filters``, 3x3, stride 1, same, ReLU) on the
    image, flattened, then a ReLU MLP with the given hidden sizes (64, 64).

    The flat input starts with the channel-last image ``image = (H, W, C)``; anything after
    it (e.g. observed incentives) joins the flattened conv output before the MLP.
    """

    hidden: Sequence[int]
    image: tuple[int, int, int]
    filters: int = 6
    kernel: int = 3

    def init(self, in_dim: int, out_dim: int, gens: Sequence[torch.Generator]) -> Params:
        H, W, C = self.image
        rest = in_dim - H * W * C
        if rest < 0:
            raise ValueError(f"ConvNet: input of {in_dim} values is smaller than the image "
                             f"{self.image}")
        head = init_mlp([self.filters * H * W + rest, *self.hidden, out_dim], gens)
        body = init_conv(C, self.filters, self.kernel, gens)
        return {**{f"conv.{k}": v for k, v in body.items()}, **head}

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        H, W, C = self.image
        P, B, _ = x.shape
        img = x[..., :H * W * C].reshape(P, B, H, W, C).permute(0, 1, 4, 2, 3)
        body = {k[5:]: v for k, v in params.items() if k.startswith("conv.")}
        feats = conv(body, img).reshape(P, B, -1)
        head = {k: v for k, v in params.items() if not k.startswith("conv.")}
        return mlp(head, torch.cat([feats, x[..., H * W * C:]], -1))


def soft_update(target: Params, source: Params, tau: float) -> Params:
    """Target-network update ``phi~ <- tau phi + (1 - tau) phi~`` (Diss §B.4.2); new tensors."""
    return {k: (tau * source[k].detach() + (1 - tau) * target[k]).detach() for k in target}


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

    @model_validator(mode="after")
    def _share_needs_one_kind(self):
        if self.share and self.agents and len(set(self.agents)) > 1:
            raise ValueError(f"share=True needs all agents of one kind, got {self.agents}")
        return self


# ------------------------------------------------------------------------------ trainer
@register_algorithm("ac", "ac-d", "ac-c", kinds={"ac-d": "ac-d", "ac-c": "ac-c"})
class ACTrainer(PGTrainer):
    """Independent actor-critic agents; the ``PGTrainer`` interface with a TD(0) critic."""

    Config = ACConfig
    default_kind = "ac"
    give_mode: ClassVar[dict[str, str]] = {"ac-d": "d", "ac-c": "c"}
    network: ClassVar[NetBuilder] = MLPNet  # default network builder

    def __init__(self, game: Game, config: ACConfig, seeds: list[int],
                 net: NetBuilder | None = None) -> None:
        if net is None and config.conv:
            if not has(game, ImageObservation):
                raise ValueError(f"algorithm.conv: {game.name} has no image observation "
                                 "(conv needs a game with image_shape)")
            net = functools.partial(ConvNet, image=tuple(game.image_shape))
        self.net = net or self.network
        self.share = config.share
        self.policy_net = self.net(config.hidden)
        self.value_net = self.net(config.critic_hidden or config.hidden)
        super().__init__(game, config, seeds)
        self.gives = [self.give_mode.get(k) is not None for k in self.kinds]
        self.critic = self.value_net.init(self.obs_dim, 1, self._gens("critic"))
        self.target = {k: v.detach().clone() for k, v in self.critic.items()}
        self.critic_opt = torch.optim.Adam(self.critic.values(), lr=config.lr_critic)

    # ----------------------------------------------------------------------------- set-up
    def _gens(self, role: str) -> list[torch.Generator]:
        if self.share:  # one member per replica
            return [torch_generator(s, f"{role}/shared") for s in self.seeds]
        return super()._gens(role)

    def _init_policy(self) -> Params:
        pi = self.policy_net.init(self.obs_dim, self.A_max, self._gens("policy"))
        params = {f"pi.{k}": v for k, v in pi.items()}
        if self.is_c.any():
            head = init_mlp([self.obs_dim, *self.cfg.hidden, self.N - 1], self._gens("give"))
            params.update({f"give.{k}": v for k, v in head.items()})
        return params

    def broadcast(self, params: Params) -> Params:
        """Shared parameters ``[R, ...]`` -> one member per agent ``[R*N, ...]`` (no-op
        without sharing); gradients flow back to the shared tensors."""
        if not self.share:
            return params
        return {k: v.repeat_interleave(self.N, 0) if v.shape[0] == self.R else v
                for k, v in params.items()}

    # ------------------------------------------------------------------------- acting
    def probs(self, params: Params, obs_m: torch.Tensor, eps: float) -> torch.Tensor:
        params = self.broadcast(params)
        lead = obs_m.shape[1:-1]
        flat = obs_m.reshape(obs_m.shape[0], -1, obs_m.shape[-1])
        logits = self.policy_net.apply(self.sub(params, "pi"), flat)
        valid = self.valid.reshape(self.valid.shape[0], *([1] * len(lead)), -1)
        return behaviour_probs(logits.reshape(*obs_m.shape[:-1], -1), eps, valid)

    def act(self, params: Params, obs_env: np.ndarray, given_cum: torch.Tensor, eps: float):
        return super().act(self.broadcast(params), obs_env, given_cum, eps)

    def values(self, critic: Params, obs_m: torch.Tensor) -> torch.Tensor:
        """``V(o)`` of every member: ``[R*N, T, B, D] -> [R*N, T, B]``."""
        flat = obs_m.reshape(obs_m.shape[0], -1, obs_m.shape[-1])
        return self.value_net.apply(self.broadcast(critic), flat).reshape(obs_m.shape[:-1])

    # ------------------------------------------------------------------------ learning
    def transitions(self, batch: Batch):
        """Member-layout ``(o_t, o_{t+1}, done_t, mask_t)`` of ``batch``; ``o_{t+1}`` is zero
        after the last recorded step (always terminal, so never used)."""
        mask = batch.mask
        done = mask * (1 - next_step(mask))
        next_obs = next_step(batch.obs)
        per_agent = lambda m: self.members(m[..., None].expand(-1, -1, self.N))  # noqa: E731
        return (self.members(batch.obs), self.members(next_obs), per_agent(done),
                per_agent(mask))

    def advantages(self, batch: Batch, rewards: torch.Tensor) -> torch.Tensor:
        """TD errors ``[R*N, T, B]`` with the current critic and target as constants
        (eq. B.9); ``rewards [T, RB, N]`` keep their graph (e.g. to incentive parameters)."""
        obs, next_obs, done, mask = self.transitions(batch)
        with torch.no_grad():
            v, v_next = self.values(self.critic, obs), self.values(self.target, next_obs)
        return td_errors(self.members(rewards), v, v_next, done, mask, self.cfg.gamma)

    def weights(self, batch: Batch, rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """TD errors replace the reward-to-go of the policy gradient (eq. B.9)."""
        return self.advantages(batch, rewards)

    def loss(self, params: Params, batch: Batch, rewards: torch.Tensor, eps: float) -> torch.Tensor:
        """Actor loss of all members (eq. B.9 with entropy bonus), summed over members
        (averaged over agents when they share parameters)."""
        loss = super().loss(self.broadcast(params), batch, rewards, eps)
        return loss / self.N if self.share else loss

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

    def iterate(self) -> dict[str, np.ndarray]:
        """One iteration: play a batch, actor SGD step, critic Adam step, target update."""
        eps = self.epsilon()
        batch = self.run_episodes(self.params, eps, self.cfg.batch)
        rewards = self.total_rewards(batch)
        new = self.update(detach(self.params), batch, rewards, eps)  # uses the old critic
        vloss = self.critic_step(batch, rewards)
        self.params = detach(new)
        self.target = soft_update(self.target, self.critic, self.cfg.tau)
        self.iteration += 1
        out = self.metrics(batch)
        out["value_loss"] = vloss.reshape(self.R, self.N).mean(1).numpy()
        return out

    def replica(self, r: int) -> ACTrainer:
        """A trainer holding only replica ``r`` (policy, critic and target)."""
        one = type(self)(self.game, self.cfg, [self.seeds[r]], net=self.net)
        one.iteration = self.iteration
        P = 1 if self.share else self.N
        take = lambda d: {k: v[r * P:(r + 1) * P].detach().clone() for k, v in d.items()}  # noqa: E731
        one.params, one.critic, one.target = detach(take(self.params)), detach(
            take(self.critic)), take(self.target)
        one.critic_opt = torch.optim.Adam(one.critic.values(), lr=self.cfg.lr_critic)
        return one

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = super().state_dict()
        state["critic"] = {k: v.detach().clone() for k, v in self.critic.items()}
        state["target"] = {k: v.detach().clone() for k, v in self.target.items()}
        state["critic_opt"] = copy.deepcopy(self.critic_opt.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.critic = detach(state["critic"])
        self.target = {k: v.detach().clone() for k, v in state["target"].items()}
        self.critic_opt = torch.optim.Adam(self.critic.values(), lr=self.cfg.lr_critic)
        self.critic_opt.load_state_dict(copy.deepcopy(state["critic_opt"]))
