"""Central incentive designers as components, and the trainer around agents plus a designer.

A central incentive designer (ID, Diss ch. 6) adds ``mu(s, a)[type of a^i]`` to every
agent's reward (eq. 6.2, ``R^i = r^i_env + mu``), paid by the designer and never charged
to an agent. What every designer shares is written here once:

* ``DesignerView``: what the designer sees and what it pays for. Games may declare it
  (capability ``DesignerView``: ``global_features`` / ``global_size``, ``action_features`` /
  ``action_feature_size``, ``incentive_types`` / ``incentive_type``); otherwise the Escape
  Room defaults apply (agent 0's observation, action one-hots, the action itself).
  Cleanup's are {clean, collect, else} on the global image and who-cleaned one-hots.
* ``DesignerCritic``: the optional designer critic ``V_ID(s)`` (Cleanup, Table C.3): GAE
  (gamma, lambda) advantages of the designer's reward, one TD(0) Adam step per iteration
  against a target moved by ``designer_tau``. Without it the advantages are the
  reward-to-go (REINFORCE, Escape Room).
* ``Designer``: the component base (parameters ``eta`` stacked one member per replica, its
  Adam ``opt``, the view, the critic, checkpoints). ``learners.metagrad.MetaGradDesigner``,
  ``learners.dual_rl.DualRLDDesigner`` / ``DualRLCDesigner`` and
  ``learners.fixed_incentives.FixedDesigner`` say what it offers (``offers``), what it is
  rewarded with (``rewards``) and how it learns.
* ``DesignerTrainer``: ``learners.pg.PGTrainer`` (the agents component ``Agents``, PG or
  actor-critic, and the rollout driver) plus ``Designer``: after the episodes are played the
  designer's incentives for every step are computed in one batched pass (they never change
  what the agents observe or do within an episode), the agents learn from
  ``r_env + incentive``, and the reports add ``extrinsic``, ``incentives`` and
  ``collective = extrinsic - incentives`` (the Diss's evaluation metric, §6.3.2 footnote).

Designer records live in ``batch.extra``: ``des_in [T, RB, D]`` (designer inputs),
``offer [T, RB, K]`` (incentive per type), ``types [T, RB, N]`` (each agent's type) and
``incentive [T, RB, N]`` (what each agent received, 0 after the end); ``batch.transfers``
stays zero (no agent pays anything).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import (
    Coefficient,
    Fraction,
    Hidden,
    LearningRate,
    PositiveCoefficient,
    Probability,
)
from econsim.core import ReplicaRNG, torch_generator
from econsim.core.capabilities import DesignerView as DesignerViewCapability
from econsim.core.capabilities import has
from learners.functional import gae, next_step, reward_to_go, td_errors
from learners.nets import Params, assign, init_mlp, mlp, soft_update
from learners.pg import Batch, LinearSchedule, PGConfig, PGTrainer
from learners.replicas import episode_mean, per_replica


class DesignerConfig(PGConfig):
    """Agents (PG, Table C.1 MetaGrad column) and the designer network shared by ID methods."""

    kinds: ClassVar[tuple[str, ...]] = ("pg",)
    hidden: Hidden = Field([64, 64], description="agents' policy MLP hidden sizes h1, h2")
    lr: LearningRate = Field(9.56e-5, description="agents' learning rate (plain SGD)")
    entropy: Coefficient = Field(0.0166, description="agents' entropy coefficient")
    epsilon: LinearSchedule = Field(LinearSchedule(start=0.0, end=0.0, steps=1),
                                    description="agents' exploration floor (ER: none)")
    observe_given: bool = Field(False, description="agents give nothing, so observe nothing")
    r_max: PositiveCoefficient = Field(2.0, description="incentive = r_max * sigmoid (ER: 2)")
    designer_hidden: Hidden = Field([64, 32], description="designer MLP hidden sizes d1, d2")
    lr_designer: LearningRate = Field(7.93e-4, description="alpha_ID: designer Adam lr")
    designer_critic: bool = Field(
        False, description="advantages from a designer critic with GAE (Cleanup); false: "
        "reward-to-go (Escape Room)")
    lr_designer_critic: LearningRate = Field(2.4e-5,
                                      description="alpha_v,ID: designer critic Adam lr")
    designer_tau: Fraction = Field(0.114,
                                description="designer critic target update rate")
    gae_lambda: Probability = Field(0.99, description="GAE lambda of the designer")


def incentive_types(game) -> tuple[str, ...]:
    """What a designer pays incentives for: the game's ``incentive_types`` (``DesignerView``),
    else its actions."""
    return tuple(game.incentive_types if has(game, DesignerViewCapability)
                 else game.action_names)


class DesignerView:
    """What a designer sees (``state_dim`` + ``N * feat_dim`` inputs) and pays for (``K``
    incentive ``types``), and its stacked network (one member per replica)."""

    def __init__(self, game, R: int, N: int, A: int, dtype: torch.dtype) -> None:
        self.game, self.R, self.N, self.A, self.dtype = game, R, N, A, dtype
        self.types = incentive_types(game)
        self.K = len(self.types)
        self.env_dim = int(np.prod(game.observation_space.shape))
        self.declared = has(game, DesignerViewCapability)
        self.state_dim = int(game.global_size) if self.declared else self.env_dim
        self.feat_dim = int(game.action_feature_size) if self.declared else A
        self.des_dim = self.state_dim + N * self.feat_dim

    def record_state(self, state) -> dict[str, torch.Tensor]:
        """The game's global features each step (kept in ``batch.extra["global"]``)."""
        if not self.declared:
            return {}
        return {"global": torch.from_numpy(self.game.global_features(state)).to(self.dtype)}

    def state_inputs(self, batch: Batch) -> torch.Tensor:
        """The designer's view of the state each step, ``[T, RB, state_dim]``: the game's
        global features, else agent 0's observation (in Escape Room every agent's position
        one-hot in index order, 3N)."""
        if "global" in batch.extra:
            return batch.extra["global"]
        return batch.obs[..., 0, :self.env_dim]

    def action_features(self, env_actions: torch.Tensor) -> torch.Tensor:
        """``[..., N]`` -> ``[..., N, feat_dim]``: the game's features, else action one-hots."""
        if self.declared:
            return torch.from_numpy(self.game.action_features(env_actions.numpy())).to(self.dtype)
        return torch.nn.functional.one_hot(env_actions, self.A).to(self.dtype)

    def action_types(self, batch: Batch) -> torch.Tensor:
        """Each agent's incentive type each step ``[T, RB, N]`` (index into ``types``)."""
        if not self.declared:
            return batch.env_actions
        kind = self.game.incentive_type(batch.env_actions.numpy(), batch.env_rewards.numpy())
        return torch.from_numpy(np.asarray(kind, np.int64))

    def inputs(self, batch: Batch) -> torch.Tensor:
        """``[T, RB, state_dim + N * feat_dim]``: the state, then every agent's action
        features (Escape Room: 3N position one-hots then 3N action one-hots)."""
        feats = self.action_features(batch.env_actions)
        return torch.cat([self.state_inputs(batch), feats.flatten(-2)], -1)

    def net(self, params: Params, inputs: torch.Tensor) -> torch.Tensor:
        """A stacked MLP (one member per replica) on ``[T, RB, D] -> [T, RB, out]``."""
        T, RB, D = inputs.shape
        x = inputs.reshape(T, self.R, RB // self.R, D).transpose(0, 1).reshape(self.R, -1, D)
        out = mlp(params, x)
        return out.reshape(self.R, T, RB // self.R, -1).transpose(0, 1).reshape(T, RB, -1)

    @staticmethod
    def paid(offer: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """Each agent gets the offer for its type: ``[..., K], [..., N] -> [..., N]``."""
        return offer.gather(-1, types)


class DesignerCritic:
    """``V_ID(s)`` on the designer's state view, with a target network (Table C.3)."""

    def __init__(self, view: DesignerView, cfg: DesignerConfig, seeds: list[int]) -> None:
        self.view, self.cfg, self.R = view, cfg, len(seeds)
        gens = [torch_generator(s, "designer_critic") for s in seeds]
        self.phi = init_mlp([view.state_dim, *cfg.designer_hidden, 1], gens)
        self.phi_target = {k: v.detach().clone() for k, v in self.phi.items()}
        self.opt_phi = torch.optim.Adam(self.phi.values(), lr=cfg.lr_designer_critic)

    def advantages(self, rewards: torch.Tensor, batch: Batch) -> torch.Tensor:
        """GAE advantages ``[T, RB]`` of the designer's ``rewards`` (values as constants)."""
        with torch.no_grad():
            v = self.view.net(self.phi, self.view.state_inputs(batch))[..., 0] * batch.mask
        return gae(rewards, v, batch.mask, self.cfg.gamma, self.cfg.gae_lambda)

    def learn(self, rewards: torch.Tensor, batch: Batch) -> dict[str, np.ndarray]:
        """One TD(0) Adam step on ``batch`` with ``rewards``, then the target update."""
        x, mask = self.view.state_inputs(batch), batch.mask
        with torch.no_grad():
            v_next = next_step(self.view.net(self.phi_target, x)[..., 0])
        delta = td_errors(rewards, self.view.net(self.phi, x)[..., 0],
                          v_next, mask * (1 - next_step(mask)), mask, self.cfg.gamma)
        m = mask.reshape(mask.shape[0], self.R, -1)
        per_replica_ = (delta ** 2).reshape(m.shape).sum((0, 2)) / m.sum((0, 2)).clamp_min(1)
        self.opt_phi.zero_grad()
        per_replica_.sum().backward()
        self.opt_phi.step()
        self.phi_target = soft_update(self.phi_target, self.phi, self.cfg.designer_tau)
        return {"designer_value_loss": per_replica_.detach().numpy()}

    def state_dict(self) -> dict:
        return {"phi": {k: v.detach().clone() for k, v in self.phi.items()},
                "phi_target": {k: v.detach().clone() for k, v in self.phi_target.items()},
                "opt_phi": copy.deepcopy(self.opt_phi.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        assign(self.phi, state["phi"])
        self.phi_target = {k: v.detach().clone() for k, v in state["phi_target"].items()}
        self.opt_phi.load_state_dict(state["opt_phi"])


class Designer(ABC):
    """Base of a designer component: parameters ``eta`` (one member per replica) with Adam
    ``opt``, the ``view``, the optional ``critic``; subclasses give ``init_eta``, ``offers``
    and, where it differs, ``rewards``.

    Interface the trainer uses: ``view``, ``eta``, ``offers(inputs, extra, rng)``,
    ``rewards(batch)``, ``advantages(batch)``, ``learn_values(batch)``, ``state_dict`` /
    ``load_state_dict`` / ``copy_replica``.
    """

    def __init__(self, game, cfg: DesignerConfig, seeds: list[int], view: DesignerView) -> None:
        self.game, self.cfg, self.seeds, self.view = game, cfg, list(seeds), view
        self.R = len(seeds)
        self.eta = self.init_eta([torch_generator(s, "designer") for s in self.seeds])
        self.opt = torch.optim.Adam(self.eta.values(), lr=cfg.lr_designer)
        self.critic = DesignerCritic(view, cfg, seeds) if cfg.designer_critic else None

    @abstractmethod
    def init_eta(self, gens: list[torch.Generator]) -> Params:
        """The designer's parameters, one stacked member per replica generator."""

    @abstractmethod
    def offers(self, inputs: torch.Tensor, extra: dict, rng: ReplicaRNG) -> torch.Tensor:
        """Incentive per type ``[T, RB, K]`` for the episodes played (records in ``extra``
        what learning needs, e.g. dual-RL's samples, drawn from ``rng``)."""

    def rewards(self, batch: Batch) -> torch.Tensor:
        """The designer's reward each step ``[T, RB]`` (0 after the end): the agents'
        collective extrinsic reward minus the incentives paid (dual-RL, §6.3.2)."""
        return (batch.env_rewards.sum(-1) - batch.extra["incentive"].sum(-1)) * batch.mask

    def advantages(self, batch: Batch) -> torch.Tensor:
        """Weights of the designer's score function ``[T, RB]``: the reward-to-go of its
        reward, or GAE advantages with the designer critic (constants)."""
        r = self.rewards(batch)
        if self.critic is None:
            return reward_to_go(r, self.cfg.gamma)
        return self.critic.advantages(r, batch)

    def learn_values(self, batch: Batch) -> dict[str, np.ndarray]:
        """The designer critic's step on ``batch`` (the episodes the designer learned from)."""
        return {} if self.critic is None else self.critic.learn(self.rewards(batch), batch)

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = {"eta": {k: v.detach().clone() for k, v in self.eta.items()},
                 "opt": copy.deepcopy(self.opt.state_dict())}
        if self.critic is not None:
            state.update(self.critic.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        assign(self.eta, state["eta"])
        self.opt.load_state_dict(state["opt"])
        if self.critic is not None:
            self.critic.load_state_dict(state)

    def copy_replica(self, source: Designer, r: int) -> None:
        """Take replica ``r`` of ``source``'s designer parameters."""
        assign(self.eta, {k: v[r:r + 1] for k, v in source.eta.items()})


class DesignerTrainer(PGTrainer):
    """Agents (``Agents``: PG or actor-critic) plus a central designer (``Designer``).

    The iteration is the designer algorithm's (``learners.metagrad``, ``learners.dual_rl``);
    by default (fixed incentives) the agents learn under the designer's offers and the
    designer learns nothing.
    """

    Config = DesignerConfig
    Designer: ClassVar[type[Designer]] = Designer
    charge_giver = False  # the designer pays; agents are never charged
    central_designer = True

    def __init__(self, game, config: DesignerConfig, seeds: list[int], **agent_options) -> None:
        super().__init__(game, config, seeds, **agent_options)  # no give-reward kinds
        view = DesignerView(game, self.R, self.N, self.agents.A, self.dtype)
        self.designer = self.Designer(game, config, self.seeds, view)

    # ------------------------------------------------------------------------- playing
    def record_state(self, state) -> dict[str, torch.Tensor]:
        return self.designer.view.record_state(state)

    def transfers(self, obs, actions, env_actions, give_u, extra) -> torch.Tensor:
        return torch.zeros(obs.shape[0], self.N, self.N)  # nobody pays anybody

    @torch.no_grad()
    def run_episodes(self, params: Params, eps: float, batch: int) -> Batch:
        """Play the episodes, then the designer's incentives for every step played."""
        b = super().run_episodes(params, eps, batch)
        view = self.designer.view
        inputs = view.inputs(b)
        offer = self.designer.offers(inputs, b.extra, self.act_rng)
        types = view.action_types(b)
        b.extra.update(des_in=inputs, offer=offer, types=types,
                       incentive=view.paid(offer, types) * b.mask[..., None])
        return b

    def total_rewards(self, batch: Batch, incentive: torch.Tensor | None = None) -> torch.Tensor:
        """``r_env + incentive`` per agent, ``[T, RB, N]``; agents are never charged."""
        inc = batch.extra["incentive"] if incentive is None else incentive
        return batch.env_rewards + inc * batch.mask[..., None]

    # ------------------------------------------------------------------------ reporting
    def metrics(self, batch: Batch) -> dict[str, np.ndarray]:
        """Agents' metrics, with ``received`` = designer incentives, ``extrinsic`` = sum of
        env returns, ``incentives`` = total paid and ``collective = extrinsic - incentives`` (the
        Diss's evaluation metric for an ID, §6.3.2 footnote); ``offer_<type>`` = mean offer
        for that type over the steps played."""
        out = super().metrics(batch)
        mask = batch.mask
        received = episode_mean(batch.extra["incentive"] * mask[..., None], self.R)  # [R, N]
        out["received"] = received
        out["extrinsic"] = out["collective"]
        out["incentives"] = received.sum(-1)
        out["collective"] = out["extrinsic"] - out["incentives"]
        offered = per_replica(batch.extra["offer"] * mask[..., None], self.R,
                              lambda a: a.sum((0, 1)))  # [R, K]
        steps = np.maximum(per_replica(mask, self.R, lambda a: a.sum()), 1.0)  # [R]
        for a, name in enumerate(self.designer.view.types):
            out[f"offer_{name}"] = offered[:, a] / steps
        return out

    def replica(self, r: int) -> DesignerTrainer:
        one = super().replica(r)
        one.designer.copy_replica(self.designer, r)
        return one

    # ------------------------------------------------------------------ replay in Mesa
    def designer_view(self, state, obs_env: np.ndarray) -> torch.Tensor:
        """What the designer sees of a batch-1 world before a step, ``[1, state_dim]`` (the
        game's global features, else agent 0's observation), taken before the kernel steps
        (a step may change the state in place)."""
        view = self.designer.view
        if view.declared:
            return torch.from_numpy(self.game.global_features(state)).to(self.dtype)
        return torch.as_tensor(np.asarray(obs_env)[:, 0, :view.env_dim], dtype=self.dtype)

    @torch.no_grad()
    def designer_pay(self, seen: torch.Tensor, env_actions: np.ndarray,
                     rewards: np.ndarray) -> np.ndarray:
        """What each agent of a batch-1 world receives from the designer for one step (the
        Mesa replay of a one-replica trainer, as in training: offers for the state seen and
        the actions taken, paid by each agent's incentive type): ``[N]``."""
        view = self.designer.view
        acts = torch.as_tensor(np.asarray(env_actions), dtype=torch.int64)  # [1, N]
        inputs = torch.cat([seen, view.action_features(acts).flatten(-2)], -1)[None]
        offer = self.designer.offers(inputs, {}, self.act_rng)  # [1, 1, K]
        if view.declared:
            types = torch.from_numpy(np.asarray(self.game.incentive_type(
                acts.numpy(), np.asarray(rewards)), np.int64))
        else:
            types = acts
        return view.paid(offer[0], types)[0].double().numpy()

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {**super().state_dict(), **self.designer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.designer.load_state_dict(state)
