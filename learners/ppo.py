"""PPO agents with parameter sharing: the learners of the Gather-Trade-Build economy.

Diss §6.3.1 / App. C.2.1 (after the AI-Economist): all agents of a world share one policy
and one value network (parameter sharing; each agent's steps are samples of the same
network), trained by PPO (clipped surrogate) with GAE(gamma, lambda) advantages and Adam.

One iteration plays ``batch`` episodes per replica (seed), then runs ``epochs`` passes of
``minibatches`` minibatches over the collected steps:

* ``A_t = sum_l (gamma lambda)^l delta_{t+l}``, ``delta_t = r_t + gamma V(o_{t+1}) - V(o_t)``
  (GAE; the value after the last step of an episode is 0), value target ``A_t + V(o_t)``;
* loss ``-min(rho A, clip(rho, 1-c, 1+c) A) + c_v (V - target)^2 - beta H(pi)`` with
  ``rho = pi(a|o) / pi_old(a|o)``; advantages are normalised per replica and minibatch.

Replicas are stacked (``learners.nets``): every weight has a leading replica dimension and
the summed loss gives each replica its own gradient; Adam's statistics are element-wise, so
replicas never mix. Illegal actions (``game.action_mask(state)``, capability ``ActionMask``)
get probability 0. Observations pass through ``symlog(x) = sign(x) log(1 + |x|)``, so coin
and labor in the hundreds and 0/1 map cells share one scale without running statistics.
Mostly-zero observations (GTB's: about 9% non-zero) enter the first layers as
``learners.sparse.SparseRows``: the same numbers as the dense product, the zeros skipped.

Deviation (documented): the Diss's GTB agents use a convolutional front end and an LSTM in
the critic; here both networks are MLPs on the flat observation (``hidden``), which keeps a
CPU iteration fast. Tax mechanisms (``mechanisms.registry``) set each world's bracket rates
at the start of every tax period (``game.set_tax_rates``); a Saez mechanism observes the
period incomes of its own replica's worlds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from econsim.bounds import (
    FINITE,
    Coefficient,
    Episodes,
    Epochs,
    Fraction,
    Hidden,
    Kinds,
    LearningRate,
    Minibatches,
    PositiveCoefficient,
    Probability,
)
from econsim.core import Game, ReplicaRNG, end_period, period_starts, start_period, torch_generator
from econsim.core.capabilities import ActionMask, Economy, TaxPeriods, has
from learners import sparse
from learners.contract import TrainerConfig, TrainerTraits
from learners.functional import gae
from learners.nets import Params, assign, init_mlp, mlp, sub
from learners.registry import register_algorithm
from learners.replicas import categorical, permutations
from learners.rollout import timed_rollout
from mechanisms.tax import TaxMechanism, check_fits


class PPOConfig(TrainerConfig):
    """PPO hyperparameters (AI-Economist agent settings where the Diss gives none)."""

    model_config = FINITE
    kinds: ClassVar[tuple[str, ...]] = ("ppo",)
    agents: Kinds | None = Field(None, description="kind of each agent (all 'ppo')")
    hidden: Hidden = Field([128, 128], description="policy and value MLP hidden sizes")
    lr: LearningRate = Field(3e-4, description="Adam learning rate")
    gamma: Fraction = Field(0.998, description="discount factor")
    gae_lambda: Probability = Field(0.98, description="GAE lambda")
    clip: PositiveCoefficient = Field(0.2, description="PPO ratio clip c")
    epochs: Epochs = Field(4, description="passes over each batch")
    minibatches: Minibatches = Field(4, description="minibatches per pass")
    entropy: Coefficient = Field(0.025, description="entropy coefficient beta")
    value_coef: Coefficient = Field(0.5, description="value loss weight c_v")
    batch: Episodes = Field(4, description="episodes (worlds) per replica per iteration")

    @model_validator(mode="after")
    def _known_kinds(self):
        for k in self.agents or []:
            if k not in self.kinds:
                raise ValueError(f"agent kind {k!r} is not allowed (allowed: ppo)")
        return self

    def epsilon(self, iteration: int) -> float:  # no exploration floor in PPO
        return 0.0


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


@dataclass
class Rollout:
    """Time-major records of ``R*B`` worlds (replica-major rows) and ``N`` agents."""

    obs: torch.Tensor  # [T, RB, N, D] (symlog applied)
    legal: torch.Tensor  # [T, RB, N, A] bool
    actions: torch.Tensor  # [T, RB, N]
    logp: torch.Tensor  # [T, RB, N]
    values: torch.Tensor  # [T, RB, N]
    rewards: torch.Tensor  # [T, RB, N]
    mask: torch.Tensor  # [T, RB] 1 while the episode runs
    info: dict[str, np.ndarray] = field(default_factory=dict)  # [T, RB, ...] from the game
    rates: np.ndarray | None = None  # [T, RB, K] tax rates in force at each step
    state: Any = None  # the final game state (skills etc.)


@register_algorithm("ppo")
class PPOTrainer(TrainerTraits):
    """Parameter-shared PPO agents in ``R`` replicas, optionally under a tax mechanism."""

    Config = PPOConfig
    default_kind = "ppo"
    takes_mechanism = True
    shared_policy = True  # learners.brains.team_brains gives each agent a SharedPolicyBrain

    def __init__(self, game: Game, config: PPOConfig, seeds: list[int],
                 mechanism: TaxMechanism | None = None) -> None:
        self.game, self.cfg, self.seeds = game, config, list(seeds)
        self.R, self.N = len(self.seeds), game.n_agents
        self.kinds = list(config.agents or ["ppo"] * self.N)
        self.A = game.action_space.n
        self.D = int(np.prod(game.observation_space.shape))
        self.iteration = 0
        self.rng = ReplicaRNG.from_seeds(self.seeds, "env")  # the games' draws
        self.act_rng = ReplicaRNG.from_seeds(self.seeds, "act")  # actions, minibatch order
        sizes = [self.D, *config.hidden]
        self.params: Params = {
            **{f"pi.{k}": v for k, v in init_mlp([*sizes, self.A], self._gens("policy")).items()},
            **{f"v.{k}": v for k, v in init_mlp([*sizes, 1], self._gens("value")).items()},
        }
        self.opt = torch.optim.Adam(self.params.values(), lr=config.lr)
        # one mechanism per replica: adaptive ones (Saez) learn from their replica only
        self.use_mechanism(mechanism)

    def _gens(self, role: str) -> list[torch.Generator]:
        return [torch_generator(s, f"ppo/{role}") for s in self.seeds]

    def use_mechanism(self, mechanism: TaxMechanism | None) -> None:
        """Train from now on under ``mechanism`` (a fresh copy per replica; None: no taxes),
        e.g. agents re-learning under another policy in a what-if."""
        if mechanism is not None:
            check_fits(mechanism, self.game.cutoffs)
        self.mechanisms = [copy.deepcopy(mechanism) for _ in self.seeds] if mechanism else None

    def epsilon(self) -> float:
        return 0.0

    # ----------------------------------------------------------------------- layout
    def members(self, x: torch.Tensor) -> torch.Tensor:
        """``[RB, N, ...] -> [R, B*N, ...]`` (replica-major rows)."""
        return x.reshape(self.R, -1, *x.shape[2:])

    def sub(self, prefix: str, params: Params | None = None) -> Params:
        params = self.params if params is None else params
        return sub(params, prefix)

    def logits(self, x: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
        return mlp(self.sub("pi"), x).masked_fill(~legal, float("-inf"))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return mlp(self.sub("v"), x)[..., 0]

    # ----------------------------------------------------------------------- acting
    @torch.no_grad()
    def act_one(self, obs: np.ndarray, legal: np.ndarray, generator: torch.Generator,
                replica: int = 0, agent: int = 0) -> int:
        """One agent's action from its observation ``[D]`` and legal actions ``[A]`` (the
        agent's index is unused: the policy sees the observation only)."""
        x = symlog(torch.as_tensor(obs, dtype=torch.float32).reshape(1, 1, -1))
        params = {k: v[replica:replica + 1] for k, v in self.params.items()}
        logits = mlp(self.sub("pi", params), x).masked_fill(
            ~torch.as_tensor(np.asarray(legal, bool)).reshape(1, 1, -1), float("-inf"))
        probs = torch.softmax(logits[0, 0], -1)
        return int(torch.multinomial(probs, 1, generator=generator))

    def _sets_rates(self) -> bool:
        """Whether ``run_episodes`` calls ``_schedule`` at each period start (hook: a
        subclass whose own planner sets the rates returns True without a mechanism)."""
        return bool(self.mechanisms)

    def _schedule(self, state: Any, batch: int) -> np.ndarray:
        """Rates ``[RB, K]`` for the period starting now, one schedule per replica."""
        rates = [np.asarray(m.rates(state), np.float64) for m in self.mechanisms]
        return np.repeat(np.stack(rates), batch, axis=0)

    def _observe_incomes(self, info: dict[str, np.ndarray], batch: int) -> None:
        """Feed period incomes of worlds whose period ended to their replica's mechanism."""
        for r, m in enumerate(self.mechanisms):
            end_period(m, info, slice(r * batch, (r + 1) * batch))

    @timed_rollout
    @torch.no_grad()
    def run_episodes(self, batch: int, greedy: bool = False) -> Rollout:
        """Play ``batch`` episodes per replica with the current policy."""
        game, RB = self.game, self.R * batch
        state = game.reset(RB, self.rng)
        if self.mechanisms:
            for m in self.mechanisms:
                m.reset()
        obs = game.observe(state)
        taxed = has(game, TaxPeriods)
        has_mask = has(game, ActionMask)
        rec: dict[str, list] = {k: [] for k in ("obs", "legal", "actions", "logp", "values",
                                                "rewards", "mask")}
        info: dict[str, list] = {}
        rates: list[np.ndarray] = []
        alive = torch.ones(RB)
        for t in range(game.max_steps):
            if self._sets_rates() and period_starts(game, t):
                state, obs = start_period(game, state, self._schedule(state, batch))
            x = symlog(torch.from_numpy(obs).reshape(RB, self.N, -1))
            legal = (torch.from_numpy(game.action_mask(state)) if has_mask
                     else torch.ones(RB, self.N, self.A, dtype=torch.bool))
            xm, lm = sparse.rows_of(self.members(x)), self.members(legal)
            logits = self.logits(xm, lm)
            probs = torch.softmax(logits, -1)
            # [R, B*N]: sampled from one stream per replica
            a = probs.argmax(-1) if greedy else categorical(self.act_rng, probs)
            logp = torch.log_softmax(logits, -1).gather(-1, a[..., None])[..., 0]
            v = self.value(xm)
            to_w = lambda y: y.reshape(RB, self.N, *y.shape[2:])  # noqa: E731
            if taxed:
                rates.append(np.array(game.tax_rates(state)))
            step = game.step(state, to_w(a).numpy(), self.rng)
            for k, val in (("obs", x), ("legal", legal), ("actions", to_w(a)),
                           ("logp", to_w(logp)), ("values", to_w(v)), ("mask", alive)):
                rec[k].append(val)
            rec["rewards"].append(torch.from_numpy(step.reward).float() * alive[:, None])
            for k, val in step.info.items():
                info.setdefault(k, []).append(np.array(val))
            if self.mechanisms:
                self._observe_incomes(step.info, batch)
            alive = alive * (1.0 - torch.from_numpy(step.done).float())
            state, obs = step.state, step.obs
        return Rollout(**{k: torch.stack(v) for k, v in rec.items()},
                       info={k: np.stack(v) for k, v in info.items()},
                       rates=np.stack(rates) if rates else None, state=state)

    # ----------------------------------------------------------------------- learning
    def advantages(self, ro: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE advantages and value targets ``[T, RB, N]``."""
        adv = gae(ro.rewards, ro.values, ro.mask, self.cfg.gamma, self.cfg.gae_lambda)
        return adv, adv + ro.values

    def update(self, ro: Rollout) -> dict[str, np.ndarray]:
        """PPO epochs over ``ro``; per replica mean losses ``[R]``."""
        cfg = self.cfg
        adv, target = self.advantages(ro)
        # member layout: [R, S] samples (S = T * B * N), replica-major worlds
        flat = lambda y: y.transpose(0, 1).reshape(self.R, -1, *y.shape[3:])  # noqa: E731
        x, legal, a = sparse.rows_of(flat(ro.obs)), flat(ro.legal), flat(ro.actions)
        old_logp, adv_f, tgt = flat(ro.logp), flat(adv), flat(target)
        valid = flat(ro.mask[..., None].expand(-1, -1, self.N))
        S = x.shape[1]
        size = max(1, S // cfg.minibatches)
        stats = {"policy_loss": [], "value_loss": [], "entropy": []}
        rows = torch.arange(self.R)[:, None]
        for _ in range(cfg.epochs):
            perm = permutations(self.act_rng, S)  # [R, S]: each replica its own order
            for start in range(0, S, size):
                idx = (rows, perm[:, start:start + size])
                w, xi, li = valid[idx], x[idx], legal[idx]  # each gathered once
                n = w.sum(1).clamp_min(1)
                logits = self.logits(xi, li)
                logp_all = torch.log_softmax(logits, -1)
                logp = logp_all.gather(-1, a[idx][..., None])[..., 0]
                probs = logp_all.exp()
                ent = -(probs * logp_all.masked_fill(~li, 0.0)).sum(-1)
                A = adv_f[idx]
                mean = (A * w).sum(1, keepdim=True) / n[:, None]
                std = (((A - mean) ** 2 * w).sum(1, keepdim=True) / n[:, None]).sqrt()
                A = (A - mean) / (std + 1e-8)
                ratio = torch.exp(logp - old_logp[idx])
                surr = torch.minimum(ratio * A, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * A)
                v = self.value(xi)
                pl = -(surr * w).sum(1) / n
                vl = ((v - tgt[idx]) ** 2 * w).sum(1) / n
                el = (ent * w).sum(1) / n
                loss = (pl + cfg.value_coef * vl - cfg.entropy * el).sum()
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                for k, val in (("policy_loss", pl), ("value_loss", vl), ("entropy", el)):
                    stats[k].append(val.detach())
        return {k: torch.stack(v).mean(0).numpy() for k, v in stats.items()}

    def iterate(self) -> dict[str, np.ndarray]:
        ro = self.run_episodes(self.cfg.batch)
        losses = self.update(ro)
        self.iteration += 1
        return {**self.metrics(ro), **losses}

    def evaluate(self, episodes: int) -> dict[str, Any]:
        """Play ``episodes`` per replica from separate random streams (training unchanged).

        Besides the metrics, ``"_tables"`` holds the game's tidy per-period table (if the
        game is an ``Economy``), with a ``replica`` and an ``episode`` column.
        """
        saved = self.rng, self.act_rng, copy.deepcopy(self.mechanisms)
        self.rng = ReplicaRNG.from_seeds(self.seeds, "eval/env", self.iteration)
        self.act_rng = ReplicaRNG.from_seeds(self.seeds, "eval/act", self.iteration)
        try:
            ro = self.run_episodes(episodes)
            out: dict[str, Any] = self.metrics(ro)
            table = self.period_table(ro, episodes)
            if table is not None:
                out["_tables"] = {"periods": table}
            return out
        finally:
            self.rng, self.act_rng, self.mechanisms = saved

    # ----------------------------------------------------------------------- reporting
    def _per_replica(self, x: np.ndarray) -> np.ndarray:
        """``[RB, ...] -> [R, B, ...]``."""
        return x.reshape(self.R, -1, *x.shape[1:])

    def metrics(self, ro: Rollout) -> dict[str, np.ndarray]:
        """Per replica means over episodes: ``[R]`` (per world) or ``[R, N]`` (per agent)."""
        per = lambda x: self._per_replica(np.asarray(x))  # noqa: E731
        rewards = ro.rewards.numpy()
        out: dict[str, np.ndarray] = {
            "return": per(rewards.sum(0)).mean(1),
            "length": per(ro.mask.numpy().sum(0)).mean(1),
        }
        out["collective"] = out["return"].sum(-1)
        if has(self.game, Economy):
            for k, v in self.game.episode_summary(ro.info, ro.state).items():
                out[k] = per(v).mean(1)
        return out

    def period_table(self, ro: Rollout, episodes: int) -> pd.DataFrame | None:
        if not has(self.game, Economy):
            return None
        df = self.game.period_table(ro.info, ro.state, ro.rates)
        world = df.pop("world")
        df.insert(0, "replica", world // episodes)
        df.insert(1, "episode", world % episodes)
        return df

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "params": {k: v.detach().clone() for k, v in self.params.items()},
            "opt": copy.deepcopy(self.opt.state_dict()),
            "rng": self.rng.get_state(),
            "act_rng": self.act_rng.get_state(),
            "mechanisms": [m.state_dict() for m in self.mechanisms or []],
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = state["iteration"]
        assign(self.params, state["params"])
        self.opt.load_state_dict(copy.deepcopy(state["opt"]))
        self.rng.set_state(state["rng"])
        self.act_rng.set_state(state["act_rng"])
        for m, saved in zip(self.mechanisms or [], state["mechanisms"], strict=True):
            m.load_state_dict(saved)

    def replica(self, r: int) -> PPOTrainer:
        """A trainer holding only replica ``r`` (for acting in Mesa)."""
        mech = self.mechanisms[r] if self.mechanisms else None
        one = type(self)(self.game, self.cfg, [self.seeds[r]], mechanism=mech)
        one.iteration = self.iteration
        assign(one.params, {k: v[r:r + 1] for k, v in self.params.items()})
        return one
