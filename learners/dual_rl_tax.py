"""Dual-RL tax planner for Gather-Trade-Build: the AI-Economist's two-level RL baseline.

Diss §6.3.2 and App. C.2.1-C.2.2 (SPEC §5): "Dual-RL applies standard RL to the ID, whose
action space is a direct product of seven action subspaces (one for each of the B = 7 tax
brackets), each with 21 discrete choices of the marginal tax rate in {0, 0.05, ..., 1.0}".
The agents are the parameter-shared PPO agents of :mod:`learners.ppo` (unchanged); the
planner is a second PPO learner acting once per tax period, at the same time scale.

Planner (one per seed, stacked like the agents: every weight has a leading replica axis):

* **acts** at the start of every tax period (``PPOTrainer._schedule`` hook): observation =
  a compact world summary (:meth:`DualRLTaxTrainer.planner_obs`): per agent coin, wood,
  stone (owned, escrow included), cumulative labor, houses built, last period's income after
  tax and transfer (optionally the build/gather skills, ``planner_skills``); all open bids
  and asks per resource; the rates in force last period; the period index (one-hot); the
  current rate cap. Amounts pass through ``symlog``. The policy is an MLP
  (``planner_hidden``) with ``K x C`` logits = ``K`` categorical heads (one per bracket) of
  ``C = 1/rate_step + 1`` choices; choice ``c`` is the rate ``c * rate_step``. Its own value
  MLP (same input, no shared weights, like the agents' critic). ``log pi`` of the joint
  action is the sum over heads, and so is the entropy (the multi-categorical convention).
* **rate cap** (tax annealing, App. C.2.1 after the AI-Economist): choices above the cap are
  masked out (probability 0), so rates stay on the grid and never exceed the cap. The cap
  rises linearly from ``anneal_start`` (0.1) to 1 over ``anneal_episodes`` episodes per
  seed counted from the start of phase 2 (``0`` = no cap).
* **curriculum** (§6.3.2): for the first ``curriculum_iterations`` iterations (phase 1) the
  economy is a free market (all rates 0) and the planner neither acts nor learns; the agents
  learn as usual. Phase 2 starts the planner (and its annealing).
* **reward** of a period: ``reward_scale x sum_t prod_t * eq_t`` over the period's steps
  (``planner_reward = "welfare"``, default), so the planner's undiscounted return is the
  Diss's objective ``sum_{t<=H} prod_t eq_t`` (§6.3.1) scaled by 0.01 (as the MetaGrad
  designer's per-step reward, SPEC §5). ``"welfare_change"`` instead pays the change of
  ``prod x eq`` over the period (the AI-Economist's per-step ``swf_t - swf_{t-1}``, summed).
  ``econsim.metrics.social_welfare`` computes ``prod x eq``.
* **learns** once per iteration, after the agents' PPO update, on the decisions of the same
  episodes: GAE(``planner_gamma`` per period, ``planner_lambda``) with value 0 after the last
  period, clipped surrogate (``planner_clip``), value loss (``planner_value_coef``), entropy
  bonus (``planner_entropy``), advantages normalised per replica and minibatch,
  ``planner_epochs`` x ``planner_minibatches``, Adam (``planner_lr`` for the policy,
  ``planner_value_lr`` for the value). Its sampling and minibatch order use its own torch
  generator, so the agents' streams are those of plain PPO.
* **evaluation** samples the planner's rates like the agents' actions (``evaluate`` of PPO
  samples too); ``planner_greedy_eval = true`` takes each head's argmax instead.

Metrics add, per replica ``[R]``: ``rate_0..rate_{K-1}`` (mean rate in force over the
rollout's steps), ``tax_cap`` (0 in phase 1), ``planner_reward`` (mean per-episode sum of the
planner's rewards) and the planner's ``planner_policy_loss``/``planner_value_loss``/
``planner_entropy`` (0 while it does not learn). The rates reach ``Rollout.rates`` through
``game.set_tax_rates``, so evaluation's per-period table (``periods.parquet``) shows them.

Deviations (documented): the Diss's planner has the agents' conv front end on a 14x14x8
world image + 112-vector (and an LSTM with curriculum); here an MLP on the compact summary
above (no map image, no LSTM). The Diss's planner does not see skills (C.2.1); the flag
``planner_skills`` adds them. No target value network (``c_v``) and no exploration floor
(``epsilon_start/end``, Table C.4) for the planner. Hyperparameters are this repo's PPO
defaults at its budget, not Tables C.4/C.5, which were tuned for ~10^5 episodes. In
particular the planner's entropy coefficient: with this loss (advantages normalised, entropy
summed over the 7 heads, max 7 ln 21 = 21.3) the Diss's 0.203 (Table C.4) keeps the planner
uniform for the whole budget (gtb_dualrl, 200 iterations: entropy 20.7 -> 21.1, mean rates
0.5), whereas 0.01 lets it learn (entropy 20.2 -> 15.8 by iteration 160, with higher rates
on the low brackets, as the Diss reports for dual-RL).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from econsim import metrics as econ_metrics
from econsim.bounds import (
    Coefficient,
    Count,
    Epochs,
    Fraction,
    Hidden,
    LearningRate,
    Minibatches,
    PositiveCoefficient,
    Probability,
)
from econsim.core import Game, ReplicaRNG, torch_generator
from learners.nets import Params, init_mlp, mlp
from learners.ppo import PPOConfig, Rollout
from learners.registry import register_algorithm
from learners.replicas import categorical, permutations
from learners.tax_planner import LearnedTax, TaxPlannerTrainer


class DualRLTaxConfig(PPOConfig):
    """Agents: :class:`learners.ppo.PPOConfig`; planner: the ``planner_*`` fields."""

    kinds: ClassVar[tuple[str, ...]] = ("ppo",)
    planner_hidden: Hidden = Field([256, 256], description="planner policy/value MLP sizes "
                                      "(the Diss's dual-RL FC layers: 256, 256)")
    planner_lr: LearningRate = Field(3e-4, description="planner policy Adam lr (alpha_ID)")
    planner_value_lr: LearningRate = Field(3e-4, description="planner value Adam lr")
    planner_entropy: Coefficient = Field(0.01, description="planner entropy coefficient "
                                   "(on the sum over the bracket heads; see the docstring)")
    planner_clip: PositiveCoefficient = Field(0.2, description="planner PPO ratio clip")
    planner_value_coef: Coefficient = Field(0.5, description="planner value loss weight")
    planner_gamma: Fraction = Field(0.99, description="planner discount per period")
    planner_lambda: Probability = Field(0.98, description="planner GAE lambda")
    planner_epochs: Epochs = Field(4, description="planner passes over each batch")
    planner_minibatches: Minibatches = Field(1, description="planner minibatches per pass")
    planner_reward: Literal["welfare", "welfare_change"] = Field(
        "welfare", description="per period: sum_t prod_t eq_t, or its change over the period")
    reward_scale: PositiveCoefficient = Field(0.01, description="planner reward multiplier")
    planner_skills: bool = Field(False, description="planner observes the agents' skills "
                                 "(the Diss's planner does not)")
    planner_greedy_eval: bool = Field(False, description="evaluate with each head's argmax "
                                      "rate instead of sampling")
    rate_step: Fraction = Field(0.05, description="grid of rate choices (1/step "
                             "must be an integer)")
    curriculum_iterations: Count = Field(0, description="phase 1: free-market iterations "
                                       "before the planner acts (0 = no curriculum)")
    anneal_episodes: Count = Field(0, description="episodes per seed of phase 2 over "
                                 "which the rate cap rises to 1 (0 = no cap)")
    anneal_start: Fraction = Field(0.1, description="rate cap at the start of phase 2")

    @field_validator("rate_step")
    @classmethod
    def _divides_one(cls, v: float) -> float:
        if abs(1.0 / v - round(1.0 / v)) > 1e-6:
            raise ValueError(f"1 / rate_step must be an integer (e.g. 0.05), got {v}")
        return v

    @property
    def n_choices(self) -> int:
        return int(round(1.0 / self.rate_step)) + 1


@register_algorithm("dual-rl-tax")
class DualRLTaxTrainer(TaxPlannerTrainer):
    """Parameter-shared PPO agents plus a PPO tax planner per replica (seed)."""

    Config = DualRLTaxConfig
    default_kind = "ppo"
    algorithm = "dual-rl-tax"

    def __init__(self, game: Game, config: DualRLTaxConfig, seeds: list[int],
                 mechanism: Any = None) -> None:
        super().__init__(game, config, seeds, mechanism)
        self.K, self.C = game.n_brackets, config.n_choices
        self.P = game.n_periods
        self.grid = np.arange(self.C) / (self.C - 1)  # [C] rate of each choice (step apart)
        self.DP = len(self.planner_obs(game.reset(1, np.random.default_rng(0)),
                                       np.zeros((1, self.N)), 1.0)[0])
        sizes = [self.DP, *config.planner_hidden]
        gens = lambda role: [torch_generator(s, f"dual_rl_tax/{role}")  # noqa: E731
                             for s in self.seeds]
        self.pparams: Params = {
            **{f"pi.{k}": v for k, v in init_mlp([*sizes, self.K * self.C],
                                                 gens("policy")).items()},
            **{f"v.{k}": v for k, v in init_mlp([*sizes, 1], gens("value")).items()},
        }
        self.popt = torch.optim.Adam([
            {"params": list(self.sub("pi", self.pparams).values()), "lr": config.planner_lr},
            {"params": list(self.sub("v", self.pparams).values()), "lr": config.planner_value_lr},
        ])
        self.planner_rng = ReplicaRNG.from_seeds(self.seeds, "planner")
        self.greedy_planner = False
        self._buf: dict[str, list] = {}

    # ----------------------------------------------------------------------- schedule
    def planner_active(self) -> bool:
        """Phase 2 (the planner sets the rates) from ``curriculum_iterations`` on."""
        return self.iteration >= self.cfg.curriculum_iterations

    def tax_cap(self) -> float:
        """Maximum rate the planner may choose in this iteration (0 in phase 1)."""
        cfg = self.cfg
        if not self.planner_active():
            return 0.0
        if cfg.anneal_episodes <= 0:
            return 1.0
        done = (self.iteration - cfg.curriculum_iterations) * cfg.batch
        return min(1.0, cfg.anneal_start + (1.0 - cfg.anneal_start) * done / cfg.anneal_episodes)

    def planner_obs(self, state: Any, last_income: np.ndarray, cap: float) -> np.ndarray:
        """World summary ``[B, DP]`` at a period start (see the module docstring)."""
        g = self.game
        v = g.planner_view(state)  # capability PlannerView
        B = v["step"].shape[0]
        agent = [v["holdings"], v["labor"][..., None], v["houses"][..., None].astype(np.float64),
                 last_income[..., None]]
        if self.cfg.planner_skills:
            agent += [v["skill"][..., None], v["gather_skill"][..., None]]
        amounts = np.concatenate([np.concatenate(agent, -1).reshape(B, -1), v["orders"]], -1)
        period = np.eye(g.n_periods)[g.period(state)]
        return np.concatenate([np.sign(amounts) * np.log1p(np.abs(amounts)),
                               g.tax_rates(state), period, np.full((B, 1), cap)],
                              -1).astype(np.float32)

    def legal_choices(self, cap: float, rows: int) -> torch.Tensor:
        """``[rows, K, C]`` bool: choices whose rate is at most ``cap``."""
        ok = torch.as_tensor(self.grid <= cap + 1e-9)
        return ok.expand(rows, self.K, self.C).clone()

    def planner_logits(self, params: Params, x: torch.Tensor, legal: torch.Tensor
                       ) -> torch.Tensor:
        """``x [R, S, DP] -> [R, S, K, C]`` logits, illegal choices at ``-inf``."""
        out = mlp(self.sub("pi", params), x)
        return out.reshape(*out.shape[:-1], self.K, self.C).masked_fill(~legal, float("-inf"))

    @torch.no_grad()
    def plan(self, obs: np.ndarray, cap: float, greedy: bool = False,
             params: Params | None = None, rng: ReplicaRNG | None = None
             ) -> dict[str, torch.Tensor]:
        """Choose every world's rates: ``obs [R*B, DP]`` (replica-major) -> choice ``[RB, K]``,
        log-prob and value ``[RB]``, legal mask ``[RB, K, C]``, rates ``[RB, K]``."""
        params = self.pparams if params is None else params
        R = next(iter(params.values())).shape[0]
        x = torch.from_numpy(obs).reshape(R, -1, self.DP)
        legal = self.legal_choices(cap, obs.shape[0]).reshape(R, -1, self.K, self.C)
        logits = self.planner_logits(params, x, legal)
        if greedy:
            choice = logits.argmax(-1)
        else:
            choice = categorical(rng or self.planner_rng, torch.softmax(logits, -1))
        logp = torch.log_softmax(logits, -1).gather(-1, choice[..., None])[..., 0].sum(-1)
        value = mlp(self.sub("v", params), x)[..., 0]
        flat = lambda y: y.reshape(obs.shape[0], *y.shape[2:])  # noqa: E731
        choice = flat(choice)
        return {"obs": torch.from_numpy(obs), "legal": flat(legal), "choice": choice,
                "logp": flat(logp), "value": flat(value),
                "rates": torch.from_numpy(self.grid)[choice]}

    def new_episodes(self) -> None:
        self._buf = {k: [] for k in ("obs", "legal", "choice", "logp", "value")}

    def _schedule(self, state: Any, batch: int) -> np.ndarray:
        """The planner's rates ``[RB, K]`` for the period starting now (records the decision);
        phase 1 sets the free market explicitly."""
        last_income = self.last_income(state)
        if not self.planner_active():
            return np.zeros((self.R * batch, self.K))
        cap = self.tax_cap()
        d = self.plan(self.planner_obs(state, last_income, cap), cap, self.greedy_planner)
        for k in self._buf:
            self._buf[k].append(d[k])
        return d["rates"].numpy()

    # ----------------------------------------------------------------------- learning
    def planner_rewards(self, info: dict[str, np.ndarray]) -> np.ndarray:
        """Planner reward of every period ``[P, RB]`` from the rollout's per-step coin."""
        coin = info["coin"]  # [T, RB, N]
        L = self.game.period_length
        P = coin.shape[0] // L
        w = econ_metrics.social_welfare(coin[:P * L])  # [T, RB] prod_t * eq_t
        if self.cfg.planner_reward == "welfare":
            r = w.reshape(P, L, -1).sum(1)
        else:
            end = w[L - 1::L]
            start0 = econ_metrics.social_welfare(
                np.full(coin.shape[1:], self.game.params.start_coin))
            r = end - np.concatenate([start0[None], end[:-1]])
        return r * self.cfg.reward_scale

    def update_planner(self, ro: Rollout) -> dict[str, np.ndarray]:
        """Clipped PPO on the planner's decisions of ``ro``; per replica losses ``[R]``."""
        cfg, R = self.cfg, self.R
        zeros = np.zeros(R)
        if not self._buf.get("obs"):
            return {"planner_policy_loss": zeros, "planner_value_loss": zeros,
                    "planner_entropy": zeros}
        buf = {k: torch.stack(v) for k, v in self._buf.items()}  # [P, RB, ...]
        P = buf["obs"].shape[0]
        rewards = torch.as_tensor(self.planner_rewards(ro.info)[:P], dtype=torch.float32)
        values = buf["value"]
        adv = torch.zeros_like(rewards)
        running = torch.zeros_like(rewards[0])
        for p in range(P - 1, -1, -1):
            v_next = values[p + 1] if p + 1 < P else torch.zeros_like(values[p])
            delta = rewards[p] + cfg.planner_gamma * v_next - values[p]
            running = delta + cfg.planner_gamma * cfg.planner_lambda * running
            adv[p] = running
        target = adv + values
        flat = lambda y: y.transpose(0, 1).reshape(R, -1, *y.shape[2:])  # noqa: E731
        x, legal, choice = flat(buf["obs"]), flat(buf["legal"]), flat(buf["choice"])
        old_logp, adv_f, tgt = flat(buf["logp"]), flat(adv), flat(target)
        S = x.shape[1]
        size = max(1, S // cfg.planner_minibatches)
        stats: dict[str, list] = {"planner_policy_loss": [], "planner_value_loss": [],
                                  "planner_entropy": []}
        rows = torch.arange(R)[:, None]
        for _ in range(cfg.planner_epochs):
            perm = permutations(self.planner_rng, S)  # [R, S]: each replica its own order
            for start in range(0, S, size):
                idx = (rows, perm[:, start:start + size])
                lg = legal[idx]
                logp_all = torch.log_softmax(self.planner_logits(self.pparams, x[idx], lg), -1)
                logp = logp_all.gather(-1, choice[idx][..., None])[..., 0].sum(-1)
                ent = -(logp_all.exp() * logp_all.masked_fill(~lg, 0.0)).sum((-1, -2))
                A = adv_f[idx]
                A = (A - A.mean(1, keepdim=True)) / (A.std(1, keepdim=True, unbiased=False)
                                                      + 1e-8)
                ratio = torch.exp(logp - old_logp[idx])
                surr = torch.minimum(ratio * A, ratio.clamp(1 - cfg.planner_clip,
                                                            1 + cfg.planner_clip) * A)
                v = mlp(self.sub("v", self.pparams), x[idx])[..., 0]
                pl, vl = -surr.mean(1), ((v - tgt[idx]) ** 2).mean(1)
                el = ent.mean(1)
                loss = (pl + cfg.planner_value_coef * vl - cfg.planner_entropy * el).sum()
                self.popt.zero_grad()
                loss.backward()
                self.popt.step()
                for k, val in zip(stats, (pl, vl, el), strict=True):
                    stats[k].append(val.detach())
        return {k: torch.stack(v).mean(0).numpy() for k, v in stats.items()}

    def iterate(self) -> dict[str, np.ndarray]:
        ro = self.run_episodes(self.cfg.batch)
        out = self.metrics(ro)  # before the updates: the cap of this iteration's rollout
        losses = self.update(ro)
        planner = self.update_planner(ro)
        self.iteration += 1
        return {**out, **losses, **planner}

    def evaluate(self, episodes: int) -> dict[str, Any]:
        """PPO's evaluation with the planner acting (sampled, or greedy if configured) from
        its own separate stream; training state unchanged."""
        saved = self.planner_rng, self._buf, self._mark
        self.planner_rng = ReplicaRNG.from_seeds(self.seeds, "eval/planner", self.iteration)
        self.greedy_planner = self.cfg.planner_greedy_eval
        try:
            return super().evaluate(episodes)
        finally:
            self.greedy_planner = False
            self.planner_rng, self._buf, self._mark = saved

    # ----------------------------------------------------------------------- reporting
    def metrics(self, ro: Rollout) -> dict[str, np.ndarray]:
        out = super().metrics(ro)
        RB = ro.mask.shape[1]
        rates = ro.rates if ro.rates is not None else np.zeros((1, RB, self.K))
        per = rates.mean(0).reshape(self.R, -1, self.K).mean(1)  # [R, K]
        for k in range(self.K):
            out[f"rate_{k}"] = per[:, k]
        out["tax_cap"] = np.full(self.R, self.tax_cap())
        out["planner_reward"] = self.planner_rewards(ro.info).sum(0).reshape(
            self.R, -1).mean(1)
        return out

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "planner": {k: v.detach().clone() for k, v in self.pparams.items()},
            "planner_opt": copy.deepcopy(self.popt.state_dict()),
            "planner_rng": self.planner_rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            for k, v in state["planner"].items():
                self.pparams[k].copy_(v)
        self.popt.load_state_dict(copy.deepcopy(state["planner_opt"]))
        self.planner_rng.set_state(state["planner_rng"])

    def replica(self, r: int) -> DualRLTaxTrainer:
        """A trainer holding only replica ``r`` (agents and planner)."""
        one = super().replica(r)
        with torch.no_grad():
            for k, v in self.pparams.items():
                one.pparams[k].copy_(v[r:r + 1])
        return one

    def world_rates(self, state: Any, last_income: np.ndarray, mechanism: LearnedTax
                    ) -> np.ndarray:
        """The planner's rates ``[K]`` in a batch-1 world, with the cap of the current
        iteration, sampled from the mechanism's stream (or greedy)."""
        if not self.planner_active():
            return np.zeros(self.K)
        cap = self.tax_cap()
        d = self.plan(self.planner_obs(state, last_income, cap), cap, mechanism.greedy,
                      rng=mechanism.rng)
        return d["rates"].numpy()[0]
