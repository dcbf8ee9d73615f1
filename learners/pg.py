"""Independent policy-gradient agents, optionally with give-reward actions (PG, PG-d, PG-c).

Diss §5.3.2 and §B.4.2. Every agent learns its own softmax policy by REINFORCE with the
discounted reward-to-go (eq. 5.4), an entropy bonus, and the exploration lower bound
``(1 - eps) pi + eps/|A|`` with ``eps`` decaying linearly; the update is one plain-SGD step
per iteration on a batch of episodes (``batch = 1`` is the Diss's setting).

Baselines that learn to incentivise with ordinary RL augment the action space:

* ``pg-d``: ``A x {no-op, give}^(N-1)``, one softmax over the joint choice; "give" sends
  ``give_value`` to that agent and costs the giver the same.
* ``pg-c``: ``pi(a_d, a_r | o) = pi(a_d | o) pi(a_r | o)`` with ``a_r = r_max sigmoid(u)``,
  ``u ~ N(f(o), 1)``; the log-density uses the change of variables (§B.4.2).

All agents of all replicas (seeds) are evaluated together as one stacked population
(``learners.nets``).

Two building blocks live here, used by every learner of chapters 5 and 6:

* ``PGAgents``, the agents' learner as a component (sampling, the loss, the update; its
  interface is written in its docstring). ``learners.ac.ACAgents`` (a TD(0) critic) and
  ``learners.lola.LOLAAgents`` (the LOLA update) offer the same interface.
* ``PGTrainer``, the trainer around an agents component: the rollout driver
  (``run_episodes``), the rewards the agents learn from (eq. 5.1), the iteration (play a
  batch, one update, the agents' value step), reporting and checkpoints. A trainer picks its
  agents with the class attribute ``Agents``; incentive designers (``learners.designer``) and
  LIO (``learners.lio``) extend it with their incentive component.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, model_validator

from econsim.bounds import (
    FINITE,
    Coefficient,
    Episodes,
    Fraction,
    Hidden,
    Iterations,
    Kinds,
    LearningRate,
    PositiveCoefficient,
    Probability,
)
from econsim.core import (
    Game,
    ReplicaRNG,
    make_rng,
    seen_action_size,
    seen_actions,
    torch_generator,
    watched,
)
from econsim.core.capabilities import EpisodeMetrics, has
from learners.contract import TrainerConfig, TrainerTraits
from learners.functional import behaviour_probs, policy_loss, reward_to_go, sgd_step, sigmoid
from learners.nets import MLPNet, NetBuilder, Params, detach, init_mlp, mlp, sub
from learners.registry import register_algorithm
from learners.replicas import categorical, episode_mean, normal, per_replica
from learners.rollout import Batch, Decision, play
from mechanisms.incentives import apply_transfers, others

PGKind = Literal["pg", "pg-d", "pg-c"]


class LinearSchedule(BaseModel):
    """``eps`` from ``start`` to ``end`` linearly over ``steps`` iterations, then flat."""

    model_config = FINITE
    start: Probability = Field(0.5)
    end: Probability = Field(0.05)
    steps: Iterations = Field(1000)

    def __call__(self, it: int) -> float:
        return self.start + min(it / self.steps, 1.0) * (self.end - self.start)

    def after(self, warmup: int, it: int) -> float:
        """1.0 (uniformly random actions) for the first ``warmup`` iterations, then the
        schedule counted from there."""
        return 1.0 if it < warmup else self(it - warmup)


class PGConfig(TrainerConfig):
    """Hyperparameters of independent policy-gradient agents (Tables B.3, B.4)."""

    model_config = FINITE
    agents: Kinds | None = Field(None, description="kind of each agent; default all the same")
    hidden: Hidden = Field([64, 32], description="policy MLP hidden layer sizes")
    lr: LearningRate = Field(1e-4, description="policy learning rate (plain SGD)")
    entropy: Coefficient = Field(0.01, description="entropy coefficient beta")
    gamma: Fraction = Field(0.99)
    epsilon: LinearSchedule = LinearSchedule()
    batch: Episodes = Field(1, description="episodes per update (Diss: 1)")
    give_value: PositiveCoefficient = Field(2.0, description="R_a of a discrete give-reward "
                                            "action")
    r_max: PositiveCoefficient = Field(2.0, description="largest continuous incentive")
    observe_given: bool = Field(True, description="observe incentives given this episode")

    kinds: ClassVar[tuple[str, ...]] = ("pg", "pg-d", "pg-c")
    #: agents a trainer of this config takes (give-reward actions are coded as int64 bits)
    min_agents: ClassVar[int] = 1
    max_agents: ClassVar[int] = 63

    @model_validator(mode="after")
    def _known_kinds(self):
        for k in self.agents or []:
            if k not in self.kinds:
                allowed = ", ".join(self.kinds)
                raise ValueError(f"agent kind {k!r} is not allowed (allowed: {allowed})")
        return self


class PGAgents:
    """The agents' learner as a component: independent softmax policies, REINFORCE.

    Interface (what trainers, designers and incentive functions use; ``ACAgents`` and
    ``LOLAAgents`` offer the same):

    * sizes: ``R`` replicas, ``N`` agents, ``P`` policy members per replica (``N``, or 1 with
      parameter sharing), ``A`` game actions, ``A_max`` policy outputs, ``obs_dim``;
      give-reward kinds ``is_d`` / ``is_c`` / ``gives`` (``[N]``);
    * ``init_params()``: the policy parameters, which the trainer holds (``trainer.params``);
    * layouts: ``members`` (world ``[T, R*B, N, ...]`` -> member ``[R*N, T, B, ...]``),
      ``world`` (back), ``sub(params, prefix)``, ``broadcast`` (shared -> per agent);
    * acting: ``act(params, obs_env, given_cum, eps, rng) -> (obs, actions, give_u)``,
      ``probs(params, obs_m, eps)``, ``decode(actions)``, ``give_pay(actions, give_u)``;
    * learning: ``loss(params, batch, rewards, eps)`` and its differentiable one-step
      ``update`` (eq. 5.3; rewards may carry a graph to incentive parameters),
      ``advantages(batch, rewards)`` (each step's weight with any value function as a
      constant: here the reward-to-go of masked rewards, eq. 5.4);
    * values: ``learn_values(batch, rewards) -> metrics`` (nothing to learn here);
      ``wants_final``: whether batches must record what follows the last step (not here;
      then ``run_episodes`` adds ``final["policy_obs"]``, the policy's view of it);
    * state: ``state_dict()`` / ``load_state_dict(state)`` (entries beside ``params``; none
      here) and ``copy_replica(source, r)`` (replica ``r`` of ``source``'s value state).

    ``net`` builds the policy network (default ``MLPNet(hidden)``); ``share`` gives each
    replica one policy broadcast over its agents (``learners.ac`` uses it).
    """

    wants_final: bool = False

    def __init__(self, game: Game, cfg: PGConfig, seeds: list[int], kinds: list[str],
                 give_mode: dict[str, str], *, net: NetBuilder = MLPNet,
                 share: bool = False) -> None:
        self.game, self.cfg, self.seeds, self.kinds = game, cfg, list(seeds), kinds
        self.R, self.N = len(seeds), game.n_agents
        self.share = share
        self.P = 1 if share else self.N
        self.policy_net = net(cfg.hidden)
        self.A = game.action_space.n
        mode = [give_mode.get(k) for k in kinds]
        self.is_d = torch.tensor([m == "d" for m in mode])  # [N] discrete give-reward actions
        self.is_c = torch.tensor([m == "c" for m in mode])  # [N] continuous give-reward actions
        self.gives = [m is not None for m in mode]
        observers = {o for o, _ in watched(game)}
        self.is_observer = torch.tensor([i in observers for i in range(self.N)])  # [N]
        self.dtype = torch.get_default_dtype()  # float32 unless a test asks for float64
        self.others = torch.as_tensor(others(self.N))
        n_act = [self.A * 2 ** (self.N - 1) if d else self.A for d in self.is_d.tolist()]
        self.A_max = max(n_act)
        valid = torch.arange(self.A_max)[None, :] < torch.tensor(n_act)[:, None]  # [N, A_max]
        self.valid = valid.repeat(self.R, 1)[:, None, :]  # [R*N, 1, A_max]
        self.obs_dim = (int(np.prod(game.observation_space.shape)) + seen_action_size(game)
                        + (self.N - 1 if cfg.observe_given else 0))

    # ----------------------------------------------------------------------------- set-up
    def gens(self, role: str) -> list[torch.Generator]:
        """One generator per member: per (replica, agent), or per replica when shared."""
        if self.share:
            return [torch_generator(s, f"{role}/shared") for s in self.seeds]
        return [torch_generator(s, f"{role}/{i}") for s in self.seeds for i in range(self.N)]

    def init_params(self) -> Params:
        """Policy ``pi.*`` (and the Gaussian give head ``give.*`` of continuous givers)."""
        pi = self.policy_net.init(self.obs_dim, self.A_max, self.gens("policy"))
        params = {f"pi.{k}": v for k, v in pi.items()}
        if self.is_c.any():
            head = init_mlp([self.obs_dim, *self.cfg.hidden, self.N - 1], self.gens("give"))
            params.update({f"give.{k}": v for k, v in head.items()})
        return params

    # ------------------------------------------------------------------ layout conversions
    def members(self, x: torch.Tensor, agents: list[int] | None = None) -> torch.Tensor:
        """World layout ``[T, R*B, N, *F]`` -> member layout ``[R*K, T, B, *F]``."""
        if agents is not None:
            x = x[:, :, agents]
        T, RB, K = x.shape[:3]
        feat = x.shape[3:]
        x = x.reshape(T, self.R, RB // self.R, K, *feat)
        return x.permute(1, 3, 0, 2, *range(4, 4 + len(feat))).reshape(
            self.R * K, T, RB // self.R, *feat).contiguous()

    def world(self, x: torch.Tensor) -> torch.Tensor:
        """Member layout ``[R*K, T, B, *F]`` -> world layout ``[T, R*B, K, *F]``."""
        RK, T, B = x.shape[:3]
        feat = x.shape[3:]
        x = x.reshape(self.R, RK // self.R, T, B, *feat)
        return x.permute(2, 0, 3, 1, *range(4, 4 + len(feat))).reshape(
            T, self.R * B, RK // self.R, *feat).contiguous()

    @staticmethod
    def sub(params: Params, prefix: str) -> Params:
        return sub(params, prefix)

    def broadcast(self, params: Params) -> Params:
        """Shared parameters ``[R, ...]`` -> one member per agent ``[R*N, ...]`` (no-op
        without sharing); gradients flow back to the shared tensors."""
        if not self.share:
            return params
        return {k: v.repeat_interleave(self.N, 0) if v.shape[0] == self.R else v
                for k, v in params.items()}

    # ------------------------------------------------------------------------- acting
    def probs(self, params: Params, obs_m: torch.Tensor, eps: float) -> torch.Tensor:
        """Behaviour probabilities ``[P, ..., A_max]`` for member-layout observations."""
        params = self.broadcast(params)
        lead = obs_m.shape[1:-1]
        flat = obs_m.reshape(obs_m.shape[0], -1, obs_m.shape[-1])
        logits = self.policy_net.apply(self.sub(params, "pi"), flat)
        valid = self.valid.reshape(self.valid.shape[0], *([1] * len(lead)), -1)
        return behaviour_probs(logits.reshape(*obs_m.shape[:-1], -1), eps, valid)

    def decode(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy actions ``[..., N]`` -> (env actions, give bits ``[..., N, N-1]``)."""
        bits = 2 ** (self.N - 1)
        env = torch.where(self.is_d, actions // bits, actions)
        code = torch.where(self.is_d, actions % bits, torch.zeros_like(actions))
        give = (code[..., None] >> torch.arange(self.N - 1)) & 1
        return env, give

    def augment(self, obs_env: np.ndarray, env_actions: np.ndarray | None,
                given_cum: torch.Tensor) -> torch.Tensor:
        """Policy observation = env obs ++ seen current actions ++ incentives given so far."""
        parts = [torch.from_numpy(obs_env.reshape(obs_env.shape[0], self.N, -1)).to(self.dtype)]
        if seen_action_size(self.game):
            seen = seen_actions(self.game, env_actions if env_actions is not None
                                else np.zeros(obs_env.shape[:2], np.int64))
            parts.append(torch.from_numpy(seen).to(self.dtype))
        if self.cfg.observe_given:
            parts.append(given_cum)
        return torch.cat(parts, -1)

    def act(self, params: Params, obs_env: np.ndarray, given_cum: torch.Tensor, eps: float,
            rng: ReplicaRNG):
        """Choose every agent's action in ``R*B`` worlds, drawing from ``rng``; returns
        (obs, actions, give_u)."""
        params = self.broadcast(params)
        obs = self.augment(obs_env, None, given_cum)
        to_m = lambda x: self.members(x[None])[:, 0]  # noqa: E731  [RB, N, F] -> [RN, B, F]
        to_w = lambda x: self.world(x[:, None])[0]  # noqa: E731
        actions = to_w(categorical(rng, self.probs(params, to_m(obs), eps)))
        if seen_action_size(self.game):  # observers choose after seeing the actors' actions
            env, _ = self.decode(actions)
            obs = self.augment(obs_env, env.numpy(), given_cum)
            second = to_w(categorical(rng, self.probs(params, to_m(obs), eps)))
            actions = torch.where(self.is_observer, second, actions)  # actors keep theirs
        give_u = None
        if self.is_c.any():
            mu = mlp(self.sub(params, "give"), to_m(obs))
            give_u = to_w(mu + normal(rng, mu.shape, mu.dtype))
        return obs, actions, give_u

    def give_pay(self, actions: torch.Tensor, give_u: torch.Tensor | None) -> torch.Tensor:
        """Incentives paid this step by give-reward actions: ``[RB, N, N]``."""
        RB = actions.shape[0]
        out = torch.zeros(RB, self.N, self.N)
        _, bits = self.decode(actions)
        amount = bits.to(self.dtype) * self.cfg.give_value
        if give_u is not None:
            cont = self.is_c[None, :, None]
            amount = torch.where(cont, self.cfg.r_max * sigmoid(give_u), amount)
        gives = torch.tensor(self.gives)[None, :, None]
        out.scatter_(2, self.others[None].expand(RB, -1, -1), amount * gives)
        return out

    # ------------------------------------------------------------------------ learning
    def advantages(self, batch: Batch, rewards: torch.Tensor) -> torch.Tensor:
        """Each step's weight ``[R*N, T, B]`` for masked ``rewards [T, RB, N]``: the
        reward-to-go (eq. 5.4); LIO's outer loss uses it with extrinsic rewards."""
        return reward_to_go(self.members(rewards), self.cfg.gamma)

    def weights(self, batch: Batch, rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-step weights of the score function, ``[R*N, T, B]``: the reward-to-go of
        eq. 5.4 (``ACAgents``: TD errors)."""
        return reward_to_go(self.members(rewards) * mask, self.cfg.gamma)

    def loss(self, params: Params, batch: Batch, rewards: torch.Tensor, eps: float) -> torch.Tensor:
        """Policy-gradient loss of all members (eq. 5.4 with entropy bonus), summed over them
        (averaged over agents when they share parameters)."""
        params = self.broadcast(params)
        obs, mask = self.members(batch.obs), self.members(batch.mask[..., None].expand(
            -1, -1, self.N))
        w = self.weights(batch, rewards, mask)
        probs = self.probs(params, obs, eps)
        loss = policy_loss(probs, self.members(batch.actions), w, mask, self.cfg.entropy)
        if batch.give_u is not None:  # pg-c: Gaussian factor, log N(u; mu, 1) (§B.4.2)
            mu = mlp(self.sub(params, "give"), obs.reshape(obs.shape[0], -1, obs.shape[-1]))
            u = self.members(batch.give_u).reshape(mu.shape)
            logp = (-0.5 * (u - mu) ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
            is_c = self.is_c.repeat(self.R)[:, None, None]
            per_step = logp.reshape(mask.shape) * w * mask * is_c
            loss = loss - per_step.sum(1).mean(-1).sum()
        return loss / self.N if self.share else loss

    def update(self, params: Params, batch: Batch, rewards: torch.Tensor, eps: float) -> Params:
        """One differentiable SGD step of every agent's policy (eq. 5.3)."""
        return sgd_step(self.loss, params, self.cfg.lr, batch, rewards, eps)

    def learn_values(self, batch: Batch, rewards: torch.Tensor) -> dict[str, np.ndarray]:
        """Value functions' step on ``batch``; PG agents have none."""
        return {}

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """State beside the policy parameters (none)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def copy_replica(self, source: PGAgents, r: int) -> None:
        """Take replica ``r`` of ``source``'s state beside the policy (none)."""


@register_algorithm("pg", "pg-d", "pg-c", kinds={"pg-d": "pg-d", "pg-c": "pg-c"})
class PGTrainer(TrainerTraits):
    """A trainer around an agents component (``Agents``, default ``PGAgents``): PG, PG-d and
    PG-c on any discrete-action ``Game``.

    ``seeds`` are independent replicas trained side by side (vectorised); replica ``r``'s
    networks, worlds and action draws come from ``seeds[r]`` alone (``ReplicaRNG``), so a
    seed trains the same alone or beside others. ``agent_options`` go to ``Agents`` (e.g.
    ``net=`` for actor-critic agents).
    """

    Config = PGConfig
    Agents: ClassVar[type[PGAgents]] = PGAgents
    default_kind = "pg"
    charge_giver = True  # give-reward actions cost the giver its reward
    #: agent kind -> give-reward mode: "d" discrete actions, "c" continuous
    give_mode: ClassVar[dict[str, str]] = {"pg-d": "d", "pg-c": "c"}

    def __init__(self, game: Game, config: PGConfig, seeds: list[int], **agent_options) -> None:
        self.game, self.cfg, self.seeds = game, config, list(seeds)
        self.R, self.N = len(seeds), game.n_agents
        self.kinds = list(config.agents or [self.default_kind] * self.N)
        if len(self.kinds) != self.N:
            raise ValueError(
                f"algorithm.agents lists {len(self.kinds)} agents but {game.name} has {self.N}"
            )
        self.agent_options = agent_options
        self.agents = self.Agents(game, config, self.seeds, self.kinds, self.give_mode,
                                  **agent_options)
        self.dtype = self.agents.dtype
        self.params = self.agents.init_params()
        self.rng = ReplicaRNG.from_seeds(self.seeds, "env")  # the games' draws
        self.act_rng = ReplicaRNG.from_seeds(self.seeds, "act")  # actions and noise
        self.iteration = 0

    # ------------------------------------------------------------------------- acting
    def transfers(self, obs: torch.Tensor, actions: torch.Tensor, env_actions: torch.Tensor,
                  give_u: torch.Tensor | None, extra: dict) -> torch.Tensor:
        """Incentives paid this step, ``[RB, N, N]``: by give-reward actions (an incentive
        component replaces this; it may record in ``extra`` what learning needs)."""
        return self.agents.give_pay(actions, give_u)

    def decide(self, params: Params, obs_env: np.ndarray, given_cum: torch.Tensor,
               eps: float, legal: torch.Tensor | None = None) -> Decision:
        """One step's choices in ``R*B`` worlds: actions and the incentives they pay.
        These learners do not apply a game's action mask (``legal`` is not used): in a game
        with one they may pick actions it forbids, which the game then treats as its rules
        say (GTB: no-ops; its learner is PPO, which applies the mask)."""
        obs, actions, give_u = self.agents.act(params, obs_env, given_cum, eps, self.act_rng)
        env_actions, _ = self.agents.decode(actions)
        extra: dict[str, torch.Tensor] = {}
        pay = self.transfers(obs, actions, env_actions, give_u, extra)
        return Decision(obs, actions, env_actions, give_u, pay, extra)

    def add_given(self, given_cum: torch.Tensor, pay: torch.Tensor) -> torch.Tensor:
        """Incentives given so far this episode, to each other agent: ``[RB, N, N-1]``."""
        others_ = self.agents.others
        return given_cum + torch.gather(pay, 2, others_[None].expand(pay.shape[0], -1, -1))

    def record_state(self, state) -> dict[str, torch.Tensor]:
        """Records of the game state each step, before the agents act, kept in
        ``batch.extra`` (``[RB, ...]`` each); none here (a central designer keeps its view)."""
        return {}

    def run_episodes(self, params: Params, eps: float, batch: int) -> Batch:
        """Play ``batch`` episodes per replica with ``params`` (``learners.rollout.play``, the
        rollout driver); world-layout records."""
        b = play(self, params, eps, batch, final=self.agents.wants_final)
        if self.agents.wants_final:  # what the policy would see after the last step
            b.final["policy_obs"] = self.agents.augment(b.final["obs"].numpy(), None,
                                                        b.final["given"])
        return b

    def replica(self, r: int) -> PGTrainer:
        """A trainer holding only replica ``r`` (seed ``seeds[r]``): for acting in Mesa."""
        one = type(self)(self.game, self.cfg, [self.seeds[r]], **self.agent_options)
        one.iteration = self.iteration
        P = self.agents.P
        one.params = detach({k: v[r * P:(r + 1) * P] for k, v in self.params.items()})
        one.agents.copy_replica(self.agents, r)
        return one

    # ------------------------------------------------------------------------ learning
    def total_rewards(self, batch: Batch, transfers: torch.Tensor | None = None) -> torch.Tensor:
        """Rewards each policy learns from, ``[T, RB, N]`` (eq. 5.1)."""
        pay = batch.transfers if transfers is None else transfers
        return apply_transfers(batch.env_rewards, pay, self.charge_giver)

    def epsilon(self) -> float:
        return self.cfg.epsilon(self.iteration)

    def iterate(self) -> dict[str, np.ndarray]:
        """One training iteration: play a batch of episodes, one policy update (with the
        values from before this iteration), then the agents' value step, if any."""
        eps = self.epsilon()
        batch = self.run_episodes(self.params, eps, self.cfg.batch)
        rewards = self.total_rewards(batch)
        new = self.agents.update(detach(self.params), batch, rewards, eps)
        values = self.agents.learn_values(batch, rewards)
        self.params = detach(new)
        self.iteration += 1
        return {**self.metrics(batch), **values}

    @torch.no_grad()
    def evaluate(self, episodes: int) -> dict[str, np.ndarray]:
        """Play ``episodes`` per replica with the learned policies (no exploration floor).

        Evaluation draws from its own random streams, so when and how often a run evaluates
        never changes its training.
        """
        saved = self.rng, self.act_rng
        self.rng = ReplicaRNG.from_seeds(self.seeds, "eval/env", self.iteration)
        self.act_rng = ReplicaRNG.from_seeds(self.seeds, "eval/act", self.iteration)
        try:
            return self.metrics(self.run_episodes(self.params, 0.0, episodes))
        finally:
            self.rng, self.act_rng = saved

    def reseed_actions(self, seed: int) -> None:
        """Draw actions from a fresh stream of ``seed`` (a one-replica trainer acting in a
        Mesa model takes its model's seed this way)."""
        if self.R != 1:
            raise ValueError(f"reseed_actions: needs a one-replica trainer, not {self.R}")
        self.act_rng = ReplicaRNG([make_rng(seed, "act")])

    # ------------------------------------------------------------------------- reporting
    def metrics(self, batch: Batch) -> dict[str, np.ndarray]:
        """Per replica means over the batch's episodes: ``[R]`` or ``[R, N]`` float64 arrays,
        each reduced from its own replica's records only (``learners.replicas``)."""
        per = lambda x: episode_mean(x, self.R)  # noqa: E731
        out = {
            "return": per(batch.env_rewards),
            "received": per_replica(batch.transfers, self.R, lambda a: a.sum(0).sum(1).mean(0)),
            "given": per_replica(batch.transfers, self.R, lambda a: a.sum(0).sum(2).mean(0)),
            "length": per(batch.mask),
        }
        alive = batch.mask[..., None]
        for a, name in enumerate(self.game.action_names):
            out[f"n_{name}"] = per((batch.env_actions == a).to(alive.dtype) * alive)
        out["collective"] = out["return"].sum(-1)
        for k, v in batch.events.items():  # per-agent event counts per episode ([R, N])
            out.setdefault(k, per(v))
        if has(self.game, EpisodeMetrics):
            extra = self.game.episode_metrics(batch.env_actions.numpy(), batch.mask.numpy())
            out.update({k: v.reshape(self.R, -1).mean(1) for k, v in extra.items()})
        return out

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "params": {k: v.detach().clone() for k, v in self.params.items()},
            "rng": self.rng.get_state(),
            "act_rng": self.act_rng.get_state(),
            **self.agents.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = state["iteration"]
        self.params = detach(state["params"])
        self.rng.set_state(state["rng"])
        self.act_rng.set_state(state["act_rng"])
        self.agents.load_state_dict(state)
