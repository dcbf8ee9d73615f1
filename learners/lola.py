"""LOLA-d and LOLA-c: opponent-learning-aware agents with give-reward actions (Diss §5.3.2).

The Diss's ER baselines "LOLA-d" and "LOLA-c" are LOLA agents (Foerster et al. 2018,
"Learning with Opponent-Learning Awareness", policy-gradient version) whose action space
is augmented exactly like PG-d and PG-c (``learners.pg``): ``A x {no-op, give}^(N-1)``
(each "give" sends and costs ``give_value`` = R_a) or ``A x [0, r_max]^(N-1)`` with
``a_r = r_max sigmoid(u)``, ``u ~ N(f(o), 1)`` (§B.4.2). Acting, paying and bookkeeping are
the PG agents' and trainer's; only the policy update differs (``LOLAAgents``, the agents
component of ``LOLATrainer``). Diss §B.4.2: LOLA was best with learning rate 0.1 and
R_a = 2.0 and did not benefit from extra exploration (defaults below).

One update on one batch of episodes played with the current policies ``theta``:

1. DiCE values (Foerster et al. 2018, "DiCE: The Infinitely Differentiable Monte-Carlo
   Estimator"): for every agent ``k``,
   ``V_k(theta) = mean_episodes sum_t gamma^t r^k_t MB(sum_{t'<=t} sum_agents log pi(a_t'))``
   with the magic box ``MB(x) = exp(x - stop_grad(x))`` (value 1, derivatives of every order
   are those of the score-function estimator). ``r^k`` is agent k's total reward
   (extrinsic + received - given, eq. 5.1 with charged give actions), ``log pi`` the
   log-probability under the behaviour policy ``(1 - eps) pi + eps/|A|`` of PG, plus for
   continuous givers the Gaussian log-density of the pre-squash sample ``u`` (the sigmoid's
   Jacobian does not depend on the parameters, §B.4.2).
2. Look-ahead (LOLA): every agent ``j`` is modelled as a naive learner taking one
   differentiable step ``theta_j' = theta_j + lr_lookahead grad_{theta_j} V_j(theta)``;
   ``theta_j'`` keeps its graph to every other agent's parameters (second-order DiCE terms).
3. Each LOLA agent ``i`` ascends ``V_i(theta_i, theta_{-i}') + beta H(pi_i)`` w.r.t.
   ``theta_i`` only (one plain-SGD step with ``lr``): the gradient flows directly through
   its own log-probabilities and through the others' look-ahead steps.
   ``V_i(theta_i, theta_{-i}')`` is evaluated on the same batch (as LOLA's policy-gradient
   version does; its value is the batch return, the magic box drops the importance ratio),
   so the step is ``grad_i V_i + sum_j (d theta_j'/d theta_i)^T grad_j V_i|theta'``: LOLA's
   update with its opponent-shaping term ``(grad_i grad_j V_j)^T grad_j V_i lr_lookahead``
   (second-order DiCE estimate); like LOLA it has no ``grad_i grad_j V_i Delta theta_j`` term.

Agents of kind ``pg``/``pg-d``/``pg-c`` in a LOLA team learn by PGAgents' plain REINFORCE
update (``PGAgents.loss``, eq. 5.4) with ``lr_pg`` (default ``lr``); e.g. asymmetric ER with
agents ``["lola-d", "pg"]`` (§B.5.1: LOLA paired with a PG recipient).

Deviation from PG's estimator: the DiCE objective weights step ``t`` by ``gamma^t`` (the
gradient of the discounted return), whereas PGAgents' REINFORCE drops that factor; with
``gamma = 1`` and ``lr_lookahead = 0`` a LOLA agent's step equals the PG step exactly.
No DiCE baseline (variance-reduction) term is used.

Stability: the Gaussian score ``(u - f(o)) grad f`` is unbounded, and the look-ahead
evaluates it at ``theta_j'`` on samples of ``theta_j``; lola-c with the Diss's lr 0.1 (and
PG-c itself at lr 0.1) diverges within a few iterations, and even lr = lr_lookahead = 1e-3
lost 1 of 10 ER(2,1) seeds within 150 iterations. ``clip`` (off by default) bounds each
LOLA agent's gradient norm per replica; with ``clip = 1`` lola-c at lr 0.1 stays finite.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field

from econsim.bounds import LearningRate, PositiveCoefficient, StepSize
from learners.functional import sgd_step
from learners.nets import Params, mlp
from learners.pg import Batch, LinearSchedule, PGAgents, PGConfig, PGTrainer
from learners.registry import register_algorithm

LOLA_KINDS = ("lola-d", "lola-c")


class LOLAConfig(PGConfig):
    """LOLA-d / LOLA-c hyperparameters (Diss §B.4.2, text above Table B.4)."""

    kinds: ClassVar[tuple[str, ...]] = (*LOLA_KINDS, "pg", "pg-d", "pg-c")
    lr: LearningRate = Field(0.1, description="LOLA agents' policy learning rate (plain SGD)")
    epsilon: LinearSchedule = LinearSchedule(start=0.0, end=0.0)
    lr_lookahead: StepSize = Field(
        0.1, ge=0, description="step size of the opponents' look-ahead update theta_j'; "
        "0 = naive learning")
    lr_pg: LearningRate | None = Field(
        None, gt=0, description="learning rate of non-LOLA (pg, pg-d, pg-c) agents; None = lr")
    clip: PositiveCoefficient | None = Field(
        None, description="largest L2 norm of a LOLA agent's gradient (per replica); "
        "None = no clipping (Diss). lola-c's Gaussian head can diverge at lr 0.1 without it")


class LOLAAgents(PGAgents):
    """The agents as a component: ``PGAgents`` (acting, give-reward actions, the PG loss)
    whose ``update`` is LOLA's for agents of a LOLA kind and PG's for the others."""

    def __init__(self, game, cfg: LOLAConfig, seeds: list[int], kinds: list[str],
                 give_mode: dict[str, str]) -> None:
        super().__init__(game, cfg, seeds, kinds, give_mode)
        self.lola = [i for i, k in enumerate(kinds) if k in LOLA_KINDS]

    # ------------------------------------------------------------- per-agent parameters
    def split(self, params: Params) -> list[Params]:
        """Stacked ``[R*N, ...]`` -> one leaf dict ``[R, ...]`` per agent (all replicas)."""
        return [{k: v.detach().reshape(self.R, self.N, *v.shape[1:])[:, j].clone()
                 .requires_grad_(True) for k, v in params.items()} for j in range(self.N)]

    def join(self, agents: list[Params]) -> Params:
        """Inverse of ``split`` (differentiable): per-agent ``[R, ...]`` -> ``[R*N, ...]``."""
        return {k: torch.stack([a[k] for a in agents], 1).reshape(-1, *v.shape[1:])
                for k, v in agents[0].items()}

    # ------------------------------------------------------------------------- DiCE
    def log_probs(self, params: Params, batch: Batch, eps: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(``log pi(a_t, u_t | o_t)`` masked ``[R*N, T, B]``, behaviour probs ``[R*N, T, B, A]``).

        The discrete part is the exploration-bounded behaviour policy of PG; continuous
        givers add ``log N(u; f(o), 1)`` (§B.4.2), like ``PGAgents.loss``.
        """
        obs = self.members(batch.obs)
        mask = self.members(batch.mask[..., None].expand(-1, -1, self.N))
        probs = self.probs(params, obs, eps)
        logp = torch.log(probs.gather(-1, self.members(batch.actions)[..., None]).squeeze(-1)
                         .clamp_min(1e-12))
        if batch.give_u is not None:
            mu = mlp(self.sub(params, "give"), obs.reshape(obs.shape[0], -1, obs.shape[-1]))
            u = self.members(batch.give_u).reshape(mu.shape)
            gauss = (-0.5 * (u - mu) ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
            logp = logp + gauss.reshape(logp.shape) * self.is_c.repeat(self.R)[:, None, None]
        return logp * mask, probs

    def dice(self, params: Params, batch: Batch, rewards: torch.Tensor, eps: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """DiCE values ``V [R, N]`` and policy entropies ``H [R, N]`` (episode means).

        ``V_k = sum_t gamma^t r^k_t MB(sum_{t'<=t} sum_agents log pi)``: every agent's
        actions up to ``t`` are the stochastic nodes that ``r_t`` depends on (DiCE).
        ``H`` = ``sum_t H(pi(.|o_t))`` of the behaviour policy, as in ``policy_loss``.
        """
        logp, probs = self.log_probs(params, batch, eps)
        RN, T, B = logp.shape
        mask = self.members(batch.mask[..., None].expand(-1, -1, self.N))
        deps = logp.reshape(self.R, self.N, T, B).sum(1).cumsum(1)  # [R, T, B]
        magic = torch.exp(deps - deps.detach())
        disc = self.cfg.gamma ** torch.arange(T, dtype=logp.dtype)
        r = (self.members(rewards) * mask).reshape(self.R, self.N, T, B)
        V = (r * (disc[:, None] * magic)[:, None]).sum(2).mean(-1)
        ent = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1) * mask
        return V, ent.reshape(self.R, self.N, T, B).sum(2).mean(-1)

    # ------------------------------------------------------------------------ learning
    def update(self, params: Params, batch: Batch, rewards: torch.Tensor, eps: float) -> Params:
        """One LOLA step of every LOLA agent, one PG step of every other agent."""
        theta = self.split(params)
        new = [dict(t) for t in theta]
        if len(self.lola) < self.N:  # plain PG agents: PGAgents' REINFORCE step
            naive = sgd_step(self.loss, self.join(theta), self.cfg.lr_pg or self.cfg.lr,
                             batch, rewards, eps)
            new = self.split(naive)
        if not self.lola:
            return self.join(new)
        la = self.cfg.lr_lookahead
        prime = list(theta)
        if la > 0:
            V, _ = self.dice(self.join(theta), batch, rewards, eps)
            for j in range(self.N):
                if any(i != j for i in self.lola):  # someone looks ahead at j
                    names = list(theta[j])
                    g = torch.autograd.grad(V[:, j].sum(), [theta[j][k] for k in names],
                                            create_graph=True, allow_unused=True)
                    prime[j] = {k: theta[j][k] + la * gk if gk is not None else theta[j][k]
                                for k, gk in zip(names, g, strict=True)}
        for i in self.lola:
            mixed = [theta[i] if j == i else prime[j] for j in range(self.N)]
            V, H = self.dice(self.join(mixed), batch, rewards, eps)
            objective = (V[:, i] + self.cfg.entropy * H[:, i]).sum()
            names = list(theta[i])
            g = torch.autograd.grad(objective, [theta[i][k] for k in names],
                                    retain_graph=True, allow_unused=True)
            g = self.clip([gk if gk is not None else torch.zeros_like(theta[i][k])
                           for k, gk in zip(names, g, strict=True)])
            new[i] = {k: (theta[i][k] + self.cfg.lr * gk).detach()
                      for k, gk in zip(names, g, strict=True)}
        return {k: v.detach() for k, v in self.join(new).items()}

    def clip(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Scale one agent's gradients ``[R, ...]`` to L2 norm <= ``clip`` per replica."""
        if self.cfg.clip is None:
            return grads
        # [R, n] then a row sum: one replica's norm is summed in the same order for any R
        norm = torch.stack([g.pow(2).flatten(1).sum(1) for g in grads], 1).sum(1).sqrt()
        scale = (self.cfg.clip / norm.clamp_min(1e-12)).clamp(max=1.0)
        return [g * scale.reshape(-1, *[1] * (g.dim() - 1)) for g in grads]


@register_algorithm("lola-d", "lola-c", kinds={"lola-c": "lola-c"})
class LOLATrainer(PGTrainer):
    """LOLA agents (possibly mixed with PG agents) with give-reward actions: the
    ``PGTrainer`` loop with ``LOLAAgents``."""

    Config = LOLAConfig
    Agents = LOLAAgents
    default_kind = "lola-d"
    give_mode: ClassVar[dict[str, str]] = {**PGTrainer.give_mode, "lola-d": "d", "lola-c": "c"}
