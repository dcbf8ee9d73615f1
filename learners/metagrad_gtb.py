"""MetaGrad tax planner for Gather-Trade-Build (Diss §6.2, §6.3.1-6.3.2, Algorithm 3; SPEC §5).

The agents are the parameter-shared PPO agents of :mod:`learners.ppo` (unchanged). A central
incentive designer ("ID", one per seed, stacked like the agents) sets the 7 bracket rates of
every tax period and learns them by meta-gradients through the agents' learning step.

Designer (incentive function ``mu_eta``). At the start of every tax period
(``PPOTrainer._schedule`` hook) it maps a compact world summary (:meth:`designer_obs`: per
agent coin, wood, stone owned (escrow included), cumulative labor, houses built, last
period's income after tax and transfer; the open bids and asks per resource; the rates in
force last period; the period one-hot; amounts through ``symlog``; no skills: the Diss's ID
does not see them, App. C.2.1) by an MLP
(``designer_hidden``, ReLU) to ``K = 7`` sigmoid outputs without bias = that period's rates
(App. C.2.2: "output layer has sigmoid activation ... size 7"). The rates are deterministic
(the designer is not sampled) and never capped (SPEC §5). They reach the agents'
observations and ``Rollout.rates`` (hence the ``rate_0..rate_6`` columns of
``periods.parquet``) through ``game.set_tax_rates``.

Designer objective (eq. 6.1): the return ``sum_t gamma_D^t R^ID_t`` with
``R^ID_t = reward_scale x prod_t x eq_t`` (0.01 x productivity x equality of the coin after
step t; SPEC §5, §6.3.1); no incentive cost (psi = 0: taxes are budget balanced).

Why the meta-gradient is tractable (App. C.2.2: "replicating the chain of calculations from
tax T(z) to the agents' final instantaneous reward r_t^i"). Given the agents' actions, rates
change an agent's reward only through each period's tax and transfer: a period's income is
the coin earned within it (independent of the rates), ``tax_p = min(T(z_p; rates_p), coin
available at enactment)`` (eq. 6.7 with the kernel's cap), ``transfer_p = mean_i tax_p``
(eq. 6.8), ``coin_t = coin_t(untaxed) + sum of past (transfer - tax)``,
``u_t = crra(coin_t) - labor_weight labor_t`` (eq. C.17) and ``r_t = u_t - u_{t-1}`` (eq.
C.16). :meth:`recompute` rebuilds exactly the kernel's rewards of a trajectory in torch as a
function of the rates, hence of eta. (The kernel does not record escrow, so the coin
available at an enactment is known only where the cap bound; elsewhere the cap is slack,
and it stays so for rates near the used ones: the recomputation is exact at the used rates
and has the right derivative around them.)

One iteration (Algorithm 3, ``M = 1``, pipelined as in §6.3.2):

1. (first iteration only) play tau with the agents' theta and the designer's eta;
2. line 5, the agents update on tau: **the primes are the agents' real PPO update**
   (``PPOTrainer.update``: epochs x minibatches of clipped PPO with Adam, from the rewards the
   agents received). Algorithm 3 plays tau_hat with the updated theta_hat and makes it the
   next theta (line 8), so the policy that plays tau_hat must be the agents' real learner;
   eq. 6.4 computes ``grad_eta theta_hat`` "using a replica of the theta update step", which
   here is **one differentiable Adam step** (:meth:`copy_step`; current moments and step
   count, bias correction; SPEC §5) of the shared policy on all of tau as one batch, on the
   PPO loss whose ratio is 1 at theta: ``-sum log pi_theta(a|o) A(eta) / n - beta H``, with
   GAE advantages ``A(eta)`` of the recomputed rewards ``r(eta)`` (values from the rollout,
   constants), normalised per replica like ``update``. It is built with ``torch.func.grad``
   so theta_hat keeps its graph to eta;
3. line 6, play tau_hat with the primes (rates from the same eta);
4. line 7, the designer step: the PPO-form outer objective (eq. 6.5) has the ratio
   ``pi_theta_hat(eta) / stop_grad(pi_theta_hat(eta)) = 1`` (clipping never binds), so its
   gradient is the policy gradient through theta_hat(eta):
   ``grad_eta sum_i sum_t log pi_theta_hat(eta)(a^i_t|o^i_t) A^ID_t`` on tau_hat (sum over
   steps and agents, mean over episodes), ``A^ID`` = GAE(``designer_gamma``,
   ``designer_lambda`` = 0.98) of ``R^ID`` from a designer critic. With ``outer_params =
   "prime"`` (default) ``grad_theta`` is evaluated at the primes that actually played
   tau_hat and chained with the copy's Jacobian (``(d theta_copy / d eta)^T grad_theta``,
   eq. 6.4); ``"copy"`` evaluates the outer loss at the copy's parameters instead. Adam on eta
   (``designer_lr``); the critic (MLP on a per-step world summary, :meth:`critic_obs`)
   regresses on the GAE lambda-returns (``designer_value_epochs`` full-batch Adam steps);
5. line 8, the primes are the agents' parameters already; tau <- tau_hat.

Each iteration plays one batch of episodes (as PPO), except the first (two). The first
iteration's designer step is skipped: the agents' Adam has no moments yet, so the copy is
Adam's first step ``lr g / (|g| + eps)`` (bias-corrected), a sign step whose derivative in
``g`` is ``~ lr / eps`` for gradients of order ``eps`` and ~0 otherwise; that one huge,
uninformative meta-gradient would dominate the designer's Adam statistics for ~10^3 steps.

Metrics add, per replica ``[R]``: ``rate_0..rate_{K-1}`` (mean rate in force over the
rollout's steps), ``designer_return`` (sum of ``R^ID`` per episode) and, in training,
``designer_loss`` (outer loss), ``designer_value_loss`` and ``meta_grad_norm``.
:meth:`~learners.tax_planner.TaxPlannerTrainer.tax_mechanism` gives a trained designer as a tax
mechanism for the Mesa face (``EconModel(..., mechanism=trainer.tax_mechanism(r))``).

Deviations (documented): the Diss's designer has conv layers on a 14x14x8 world image + a
112-vector (App. C.2.1-C.2.2; 256, 256 FC layers); here an MLP on the compact summary above
(no map image). Agents' observations contain the rates as constants: the meta-gradient
flows only through the rewards (as in App. C.2.2), not through what the agents see. In the
pipelined scheme tau was played under the previous eta; the copy recomputes its rewards
under the current eta (the agents' real update uses the rewards they received). The
designer critic has no target network (``c_v``) and its input is a compact per-step summary.
No exploration floor for the agents (as the repo's PPO baselines; Table C.4 uses 0.5 ->
0.05). ``direct = true`` adds the pathwise dependence of the designer's return on the rates
on tau_hat (actions fixed), which eq. 6.4-6.5 do not include (off by default).
Hyperparameters: Table C.4 (no curriculum) for the designer where they apply
(``designer_lr`` 1.82e-5, value lr 8.64e-4, gamma 0.99, lambda 0.98); the shipped scenario
raises ``designer_lr`` for its ~10^3-episode budget (the Diss trained ~2 x 10^5 episodes).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch.func import grad

from econsim import metrics as econ_metrics
from econsim.bounds import Epochs, Fraction, Hidden, LearningRate, PositiveCoefficient, Probability
from econsim.core import Game, torch_generator
from econsim.envs.gtb.game import utility as gtb_utility
from learners.functional import gae, sigmoid
from learners.nets import Params, init_mlp, mlp
from learners.ppo import PPOConfig, Rollout
from learners.registry import register_algorithm
from learners.replicas import episode_mean
from learners.tax_planner import LearnedTax, TaxPlannerTrainer
from mechanisms.tax import bracket_tax, redistribute


class MetaGradTaxConfig(PPOConfig):
    """Agents: :class:`learners.ppo.PPOConfig`; designer: the ``designer_*`` fields."""

    kinds: ClassVar[tuple[str, ...]] = ("ppo",)
    designer_hidden: Hidden = Field([256, 256], description="designer MLP hidden sizes "
                                       "(the Diss's FC layers: 256, 256)")
    designer_lr: LearningRate = Field(1.82e-5, description="alpha_ID: designer Adam lr "
                               "(Table C.4)")
    designer_value_hidden: Hidden = Field([256, 256], description="designer critic MLP")
    designer_value_lr: LearningRate = Field(8.64e-4, description="alpha_v,ID: critic Adam lr "
                                     "(Table C.4)")
    designer_value_epochs: Epochs = Field(4, description="critic full-batch Adam steps per "
                                       "iteration")
    designer_gamma: Fraction = Field(0.99, description="designer discount per step")
    designer_lambda: Probability = Field(0.98, description="designer GAE lambda")
    reward_scale: PositiveCoefficient = Field(0.01, description="R^ID = scale x productivity x "
                                "equality")
    outer_params: Literal["prime", "copy"] = Field(
        "prime", description="where the outer policy gradient is evaluated: the primes that "
        "played tau_hat (chained with the copy's Jacobian) or the one-step copy itself")
    direct: bool = Field(False, description="add the direct dependence of the designer's "
                         "return on the rates on tau_hat (not in eq. 6.4-6.5)")


@dataclasses.dataclass
class AdamMoments:
    """Adam's state of the policy parameters before an update: step count and moments."""

    step: float
    m: Params
    v: Params
    lr: float
    betas: tuple[float, float]
    eps: float


@register_algorithm("metagrad-tax")
class MetaGradTaxTrainer(TaxPlannerTrainer):
    """Parameter-shared PPO agents plus a MetaGrad tax designer per replica (seed)."""

    Config = MetaGradTaxConfig
    default_kind = "ppo"
    algorithm = "metagrad-tax"

    def __init__(self, game: Game, config: MetaGradTaxConfig, seeds: list[int],
                 mechanism: Any = None) -> None:
        super().__init__(game, config, seeds, mechanism)
        self.K, self.P, self.L = game.n_brackets, game.n_periods, game.period_length
        probe = game.reset(1, np.random.default_rng(0))
        self.DD = self.designer_obs(probe, np.zeros((1, self.N))).shape[-1]
        self.DC = 6 * self.N + self.K + 2
        gens = lambda role: [torch_generator(s, f"metagrad_tax/{role}")  # noqa: E731
                             for s in self.seeds]
        self.eta: Params = init_mlp([self.DD, *config.designer_hidden, self.K],
                                    gens("designer"), out_bias=False)
        self.phi: Params = init_mlp([self.DC, *config.designer_value_hidden, 1],
                                    gens("designer_value"))
        self.opt_eta = torch.optim.Adam(self.eta.values(), lr=config.designer_lr)
        self.opt_phi = torch.optim.Adam(self.phi.values(), lr=config.designer_value_lr)
        self.tau: Rollout | None = None  # pipelined trajectory (tau_hat of the last iteration)
        self._des: list[np.ndarray] = []

    # ----------------------------------------------------------------------- designer
    def designer_obs(self, state: Any, last_income: np.ndarray) -> np.ndarray:
        """World summary ``[B, DD]`` at a period start (see the module docstring)."""
        g = self.game
        v = g.planner_view(state)  # capability PlannerView
        B = v["step"].shape[0]
        agent = np.concatenate([v["holdings"], v["labor"][..., None],
                                v["houses"][..., None].astype(np.float64),
                                last_income[..., None]], -1).reshape(B, -1)
        amounts = np.concatenate([agent, v["orders"]], -1)
        period = np.eye(self.P)[g.period(state)]
        return np.concatenate([np.sign(amounts) * np.log1p(np.abs(amounts)),
                               g.tax_rates(state), period], -1).astype(np.float32)

    def _members(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """A stacked per-replica net: ``[..., RB, D]`` (replica-major rows) -> ``[..., RB, o]``."""
        R = next(iter(params.values())).shape[0]
        lead, (RB, D) = x.shape[:-2], x.shape[-2:]
        y = x.reshape(-1, R, RB // R, D).transpose(0, 1).reshape(R, -1, D)
        out = mlp(params, y)
        return out.reshape(R, -1, RB // R, out.shape[-1]).transpose(0, 1).reshape(
            *lead, RB, -1)

    def designer_rates(self, eta: Params, obs: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``mu_eta``: rates ``[..., RB, K]`` in (0, 1) from designer inputs ``[..., RB, DD]``."""
        w = next(iter(eta.values()))
        x = torch.as_tensor(obs).to(w.dtype)
        return sigmoid(self._members(eta, x))

    def new_episodes(self) -> None:
        self._des = []

    def _schedule(self, state: Any, batch: int) -> np.ndarray:
        """The designer's rates ``[RB, K]`` for the period starting now (records its input)."""
        obs = self.designer_obs(state, self.last_income(state))
        self._des.append(obs)
        with torch.no_grad():
            rates = self.designer_rates(self.eta, obs)
        return rates.double().numpy()

    def run_episodes(self, batch: int, greedy: bool = False) -> Rollout:
        """PPO's rollout; ``info["designer_obs"]`` ``[P, RB, DD]`` keeps the designer's inputs."""
        ro = super().run_episodes(batch, greedy)
        ro.info["designer_obs"] = np.stack(self._des)
        return ro

    # ----------------------------------------------------------------------- rewards(eta)
    def recompute(self, ro: Rollout, rates: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rollout's taxes, coin, utility and rewards (float64 ``[T, RB, N]``) under the
        period rates ``rates [P, RB, K]`` (differentiable in them), actions held fixed.

        With the rates that were used (``ro.rates[::L]``) it reproduces the kernel.
        """
        info, L, P = ro.info, self.L, self.P
        T = info["coin"].shape[0]
        if T != P * L:
            raise ValueError(f"metagrad-tax: needs whole episodes ({P * L} steps), got {T}")
        f64 = lambda k: torch.as_tensor(np.asarray(info[k], np.float64))  # noqa: E731
        coin_rec, labor = f64("coin"), f64("labor")
        net_rec = f64("transfer") - f64("tax")
        coin_pre = coin_rec - net_rec.cumsum(0)  # coin had no tax ever been enacted
        ends = slice(L - 1, T, L)
        income = f64("income")[ends]  # [P, RB, N] pre-tax income of each period
        cutoffs = self.game.cutoffs
        used = np.asarray(ro.rates[::L], np.float64)
        due_used = bracket_tax(income.numpy(), cutoffs, used)
        tax_end = f64("tax")[ends]
        # the cap (coin available at enactment) bound where less than the due tax was paid
        capped = tax_end.numpy() < due_used - 1e-9 * (1.0 + np.abs(due_used))
        cap0 = torch.where(torch.as_tensor(capped), tax_end, torch.full_like(tax_end, np.inf))
        due = bracket_tax(income, cutoffs, rates.to(torch.float64))
        net_end_rec = net_rec[ends]
        drift = torch.zeros_like(income[0])  # past (transfer - tax): now minus recorded
        nets, taxes = [], []
        for p in range(P):
            tax = torch.minimum(due[p], (cap0[p] + drift).clamp(min=0.0))
            net = redistribute(torch.zeros_like(tax), tax)  # eq. 6.8: transfer - tax
            drift = drift + net - net_end_rec[p]
            nets.append(net)
            taxes.append(tax)
        shape = income.shape[1:]
        zeros = torch.zeros(P, L - 1, *shape, dtype=torch.float64)
        steps = torch.cat([zeros, torch.stack(nets)[:, None]], 1).reshape(T, *shape)
        coin = coin_pre + steps.cumsum(0)
        params = self.game.params
        utility = gtb_utility(coin, labor, params)
        u0 = gtb_utility(torch.full_like(coin[:1], params.start_coin), 0.0, params)
        rewards = utility - torch.cat([u0, utility[:-1]])
        return {"coin": coin, "utility": utility, "rewards": rewards,
                "tax": torch.stack(taxes)}

    def rewards_of(self, eta: Params, ro: Rollout) -> torch.Tensor:
        """Agents' rewards ``[T, RB, N]`` of ``ro`` with the rates ``mu_eta`` would set."""
        rates = self.designer_rates(eta, ro.info["designer_obs"])
        return self.recompute(ro, rates)["rewards"]

    # ----------------------------------------------------------------------- agents' copy
    def _flat(self, y: torch.Tensor) -> torch.Tensor:
        """``[T, RB, N, ...] -> [R, T*B*N, ...]`` (the layout of ``PPOTrainer.update``)."""
        return y.transpose(0, 1).reshape(self.R, -1, *y.shape[3:])

    def policy_moments(self) -> AdamMoments:
        """Adam's current step count and moments of the policy parameters (zeros if none)."""
        group = self.opt.param_groups[0]
        m, v, step = {}, {}, 0.0
        for k, p in self.sub("pi").items():
            st = self.opt.state.get(p, {})
            m[k] = st["exp_avg"].detach().clone() if st else torch.zeros_like(p)
            v[k] = st["exp_avg_sq"].detach().clone() if st else torch.zeros_like(p)
            step = float(st["step"]) if st else 0.0
        return AdamMoments(step, m, v, group["lr"], tuple(group["betas"]), group["eps"])

    def copy_step(self, theta: Params, moments: AdamMoments, rewards: torch.Tensor,
                  ro: Rollout) -> Params:
        """theta_hat(eta): one differentiable Adam step of the shared policy ``theta`` on the
        PPO loss of ``ro`` with ``rewards`` (which carry the graph to eta), all of ``ro`` as
        one batch (ratio 1 at theta); advantages normalised per replica as in ``update``."""
        cfg = self.cfg
        dtype = next(iter(theta.values())).dtype
        adv, _ = self.advantages(dataclasses.replace(ro, rewards=rewards.to(dtype)))
        A, w = self._flat(adv), self._flat(ro.mask[..., None].expand(-1, -1, self.N)).to(dtype)
        n = w.sum(1, keepdim=True).clamp_min(1)
        mean = (A * w).sum(1, keepdim=True) / n
        std = (((A - mean) ** 2 * w).sum(1, keepdim=True) / n).sqrt()
        A = (A - mean) / (std + 1e-8)
        x, legal, a = self._flat(ro.obs).to(dtype), self._flat(ro.legal), self._flat(ro.actions)

        def loss(params: Params) -> torch.Tensor:
            logp_all = torch.log_softmax(mlp(params, x).masked_fill(~legal, float("-inf")), -1)
            logp = logp_all.gather(-1, a[..., None])[..., 0]
            ent = -(logp_all.exp() * logp_all.masked_fill(~legal, 0.0)).sum(-1)
            pl = -(logp * A * w).sum(1) / n[:, 0]
            el = (ent * w).sum(1) / n[:, 0]
            return (pl - cfg.entropy * el).sum()

        g = grad(loss)(theta)
        (b1, b2), t = moments.betas, moments.step + 1
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        out = {}
        for k, p in theta.items():
            m = b1 * moments.m[k].to(dtype) + (1 - b1) * g[k]
            v = b2 * moments.v[k].to(dtype) + (1 - b2) * g[k] ** 2
            denom = (v + 1e-30).sqrt() / bc2 ** 0.5 + moments.eps  # +1e-30: finite d/dg at 0
            out[k] = p - (moments.lr / bc1) * m / denom
        return out

    # ----------------------------------------------------------------------- designer loss
    def outer_loss(self, theta: Params, ro: Rollout, adv: torch.Tensor) -> torch.Tensor:
        """``-sum_t sum_i log pi_theta(a|o) A^ID_t`` on ``ro``, mean over episodes, per replica
        ``[R]`` (eq. 6.5 at ratio 1). ``adv`` is ``[T, RB]``."""
        dtype = next(iter(theta.values())).dtype
        x, legal, a = self._flat(ro.obs).to(dtype), self._flat(ro.legal), self._flat(ro.actions)
        w = self._flat(ro.mask[..., None].expand(-1, -1, self.N)).to(dtype)
        A = self._flat(adv[..., None].expand(-1, -1, self.N)).to(dtype)
        logp = torch.log_softmax(mlp(theta, x).masked_fill(~legal, float("-inf")), -1)
        logp = logp.gather(-1, a[..., None])[..., 0]
        episodes = ro.mask.shape[1] // self.R
        return -(logp * A * w).sum(1) / episodes

    def welfare(self, coin: torch.Tensor) -> torch.Tensor:
        """``prod x eq`` per world (torch, differentiable): ``sum x - sum_ij |x_i - x_j| /
        (2 (n - 1))`` (the normalised Gini of ``econsim.metrics`` times the total)."""
        n = coin.shape[-1]
        prod = coin.sum(-1)
        if n == 1:
            return prod
        pair = (coin[..., :, None] - coin[..., None, :]).abs().sum((-1, -2))
        return prod - pair / (2 * (n - 1))

    def direct_return(self, eta: Params, ro: Rollout) -> torch.Tensor:
        """Designer's return on ``ro`` per replica ``[R]`` as a function of the rates (actions
        fixed): ``sum_t gamma_D^t scale prod_t eq_t``, mean over episodes."""
        cfg = self.cfg
        coin = self.recompute(ro, self.designer_rates(eta, ro.info["designer_obs"]))["coin"]
        w = self.welfare(coin) * cfg.reward_scale * ro.mask.to(coin.dtype)  # [T, RB]
        disc = cfg.designer_gamma ** torch.arange(w.shape[0], dtype=coin.dtype)
        return (disc[:, None] * w).sum(0).reshape(self.R, -1).mean(1)

    def meta_gradient(self, eta: Params, theta: Params, moments: AdamMoments, tau: Rollout,
                      tau_hat: Rollout, adv_hat: torch.Tensor,
                      prime: Params | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``d(designer loss)/d eta`` and the loss per replica ``[R]``.

        ``theta`` (policy parameters that played tau) and ``moments`` define the copy
        ``theta_hat(eta)``. ``prime`` = the policy that played tau_hat: the outer gradient is
        evaluated there and chained with the copy's Jacobian; ``None`` evaluates the outer
        loss at the copy itself (then this is the exact gradient of a function of eta).
        """
        names = list(eta)
        copy_ = self.copy_step(theta, moments, self.rewards_of(eta, tau), tau)
        if prime is None:
            loss = self.outer_loss(copy_, tau_hat, adv_hat)
            grads = torch.autograd.grad(loss.sum(), [eta[k] for k in names], allow_unused=True)
        else:
            base = {k: v.detach().requires_grad_(True) for k, v in prime.items()}
            loss = self.outer_loss(base, tau_hat, adv_hat)
            g_out = torch.autograd.grad(loss.sum(), list(base.values()))
            grads = torch.autograd.grad(list(copy_.values()), [eta[k] for k in names],
                                        grad_outputs=list(g_out), allow_unused=True)
        grads = [torch.zeros_like(eta[k]) if g is None else g for k, g in zip(names, grads,
                                                                            strict=True)]
        if self.cfg.direct:
            ret = self.direct_return(eta, tau_hat)
            direct = torch.autograd.grad(-ret.sum(), [eta[k] for k in names], allow_unused=True)
            grads = [g if d is None else g + d.to(g.dtype) for g, d in zip(grads, direct,
                                                                             strict=True)]
            loss = loss - ret.to(loss.dtype)
        return grads, loss.detach()

    # ----------------------------------------------------------------------- designer critic
    def critic_obs(self, ro: Rollout) -> torch.Tensor:
        """Per-step world summary ``[T, RB, DC]`` of the state before each step: per agent
        coin, wood, stone, labor, houses, income so far this period (symlog), the rates in
        force, the period and episode progress."""
        info, p = ro.info, self.game.params
        T, RB, N = info["coin"].shape
        houses = np.cumsum(info["built"], 0)
        income = np.where(info["period_end"][..., None], 0.0, info["income"])
        after = np.stack([info["coin"], info["wood"], info["stone"], info["labor"], houses,
                          income], -1)  # [T, RB, N, 6] after each step
        first = np.zeros((1, RB, N, 6))
        first[..., 0] = p.start_coin
        before = np.concatenate([first, after[:-1]]).reshape(T, RB, -1)
        t = np.arange(T)
        clock = np.broadcast_to(np.stack([t / self.game.max_steps, (t % self.L) / self.L],
                                         -1)[:, None], (T, RB, 2))
        x = np.concatenate([np.sign(before) * np.log1p(np.abs(before)), ro.rates, clock], -1)
        return torch.as_tensor(x, dtype=torch.float32)

    def designer_rewards(self, ro: Rollout) -> torch.Tensor:
        """``R^ID_t = scale x prod_t x eq_t`` of the coin after each step, ``[T, RB]``."""
        w = econ_metrics.social_welfare(ro.info["coin"]) * self.cfg.reward_scale
        return torch.as_tensor(w, dtype=torch.float32) * ro.mask

    @torch.no_grad()
    def designer_advantages(self, ro: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE(gamma_D, lambda_D) advantages of ``R^ID`` and value targets ``[T, RB]``."""
        cfg = self.cfg
        values = self._members(self.phi, self.critic_obs(ro))[..., 0] * ro.mask
        adv = gae(self.designer_rewards(ro), values, ro.mask, cfg.designer_gamma,
                  cfg.designer_lambda)
        return adv, adv + values

    def update_critic(self, ro: Rollout, target: torch.Tensor) -> np.ndarray:
        """Regress the designer critic on ``target [T, RB]``; mean squared error ``[R]``."""
        x = self.critic_obs(ro)
        w = ro.mask.reshape(ro.mask.shape[0], self.R, -1)
        losses = []
        for _ in range(self.cfg.designer_value_epochs):
            v = self._members(self.phi, x)[..., 0]
            err = ((v - target) ** 2).reshape(w.shape) * w
            loss = err.sum((0, 2)) / w.sum((0, 2)).clamp_min(1)
            self.opt_phi.zero_grad()
            loss.sum().backward()
            self.opt_phi.step()
            losses.append(loss.detach())
        return torch.stack(losses).mean(0).numpy()

    # ----------------------------------------------------------------------- iteration
    def iterate(self) -> dict[str, np.ndarray]:
        cfg = self.cfg
        if self.tau is None:
            self.tau = self.run_episodes(cfg.batch)
        tau = self.tau
        theta = {k: v.detach().clone() for k, v in self.sub("pi").items()}
        moments = self.policy_moments()
        losses = self.update(tau)  # the agents' real PPO update: the primes
        tau_hat = self.run_episodes(cfg.batch)
        adv_hat, target = self.designer_advantages(tau_hat)
        prime = ({k: v.detach() for k, v in self.sub("pi").items()}
                 if cfg.outer_params == "prime" else None)
        grads, dloss = self.meta_gradient(self.eta, theta, moments, tau, tau_hat, adv_hat,
                                          prime)
        if moments.step > 0:  # see the module docstring: no step through Adam's first step
            for p, g in zip(self.eta.values(), grads, strict=True):
                p.grad = g
            self.opt_eta.step()
            self.opt_eta.zero_grad()
        vloss = self.update_critic(tau_hat, target)
        self.tau = tau_hat
        self.iteration += 1
        norm = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads], 1).sum(1).sqrt()  # [R]
        return {**self.metrics(tau_hat), **losses, "designer_loss": dloss.numpy(),
                "designer_value_loss": vloss, "meta_grad_norm": norm.numpy()}

    # ----------------------------------------------------------------------- reporting
    def metrics(self, ro: Rollout) -> dict[str, np.ndarray]:
        """PPO's metrics plus ``rate_0..rate_{K-1}`` (mean rate in force over the steps) and
        ``designer_return`` (sum over steps of ``R^ID``), per replica ``[R]``."""
        out = super().metrics(ro)
        per = np.asarray(ro.rates).mean(0).reshape(self.R, -1, self.K).mean(1)
        for k in range(self.K):
            out[f"rate_{k}"] = per[:, k]
        out["designer_return"] = episode_mean(self.designer_rewards(ro), self.R)
        return out

    # ----------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        tau = None if self.tau is None else {
            f.name: copy.deepcopy(getattr(self.tau, f.name)) for f in dataclasses.fields(Rollout)}
        if tau is not None and tau["state"] is not None:  # the game state as plain data
            tau["state"] = {f.name: getattr(self.tau.state, f.name)
                            for f in dataclasses.fields(self.tau.state)}
        return {
            **super().state_dict(),
            "eta": {k: v.detach().clone() for k, v in self.eta.items()},
            "phi": {k: v.detach().clone() for k, v in self.phi.items()},
            "opt_eta": copy.deepcopy(self.opt_eta.state_dict()),
            "opt_phi": copy.deepcopy(self.opt_phi.state_dict()),
            "tau": tau,
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            for name in ("eta", "phi"):
                for k, v in state[name].items():
                    getattr(self, name)[k].copy_(v)
        self.opt_eta.load_state_dict(copy.deepcopy(state["opt_eta"]))
        self.opt_phi.load_state_dict(copy.deepcopy(state["opt_phi"]))
        tau = copy.deepcopy(state["tau"])
        if tau is not None and tau["state"] is not None:
            kind = type(self.game.reset(1, np.random.default_rng(0)))  # the game's State
            tau["state"] = kind(**tau["state"])
        self.tau = None if tau is None else Rollout(**tau)

    def replica(self, r: int) -> MetaGradTaxTrainer:
        """A trainer holding only replica ``r`` (agents, designer and its critic)."""
        one = super().replica(r)
        with torch.no_grad():
            for name in ("eta", "phi"):
                for k, v in getattr(self, name).items():
                    getattr(one, name)[k].copy_(v[r:r + 1])
        return one

    def world_rates(self, state: Any, last_income: np.ndarray, mechanism: LearnedTax
                    ) -> np.ndarray:
        """The designer's rates ``[K]`` in a batch-1 world (deterministic)."""
        with torch.no_grad():
            return self.designer_rates(self.eta, self.designer_obs(state, last_income)
                                       ).double().numpy()[0]
