"""CM3: cooperative multi-goal multi-stage multi-agent RL (Diss ch. 3, Algorithms 4-7).

Three components, all here:

* **Curriculum** (§3.3.3): stage 1 trains an actor ``pi^1(a | o_self, g)`` and a critic
  ``Q^1(s^n, a, g)`` in the game's induced single-agent MDP (capability ``MultiGoal``,
  ``induced()``) for ``stage1.iterations`` iterations, with the N = 1 equivalents of eqs.
  3.4-3.5 (eqs. A.8-A.10): ``y = R + gamma Q^1'(s', a')``, ``a' ~ pi^1'``, and the advantage
  ``Q^1(s, a) - sum_a^ pi^1(a^) Q^1(s, a^)``.
* **Function augmentation** (§3.3.4-3.3.5, Algorithm 4): stage 2 restores the stage-1
  parameters into the bases of the actor ``pi(a | o_self, g, o_others)``, the global Q
  ``Q_n(s, a)`` and the credit function ``Q_n(s, a^m)``; new branches for the other agents'
  inputs join the special hidden layer h* (``learners.nets.AugmentedMLP``): actor branch
  ``o_others``; global Q branch ``(s^{-n}, a^{-n})``; credit branch ``(s^m, s^{-n})``
  (Diss A.8). Targets start equal to the main networks.
* **Credit function and multi-goal policy gradient** (§3.3.1-3.3.2, Algorithm 6): the
  credit function learns by TD (eq. 3.4) with ``y^n = R^n + gamma Q_c'(s', a'^m, g^n)``; the
  global Q by its joint-action analogue; the actor ascends eq. 3.5 with the counterfactual
  advantage of eq. 3.6, ``A_{n,m} = Q_g(s, a, g^n) - sum_a^ pi^m(a^|o^m) Q_c(s, a^, g^n)``,
  summed over all goals n for each agent m. ``taken_value = "credit"`` (an option; the Diss's
  eq. 3.6 is the default) takes the first term from the credit function instead,
  ``Q_c(s, a^m, g^n) - sum_a^ pi^m(a^) Q_c(s, a^, g^n)``: Q_n(s, a^m) is the mean of Q_n(s,
  a) over the other agents' actions (eq. 3.3), so the gradient is the same in expectation,
  without the others' action noise and without the state-dependent gap between two
  separately trained critics, which off-policy samples do not average out.

Variants (the agents' kind; ``algorithm.name``): ``cm3``; ``cm3-direct`` (kind ``direct``:
the stage-2 networks from scratch, no stage 1); ``cm3-qv`` (kind ``qv``: advantage
``Q_n(s, a) - V_n(s)`` with a learned ``V_n``, the credit function unused; ``V`` starts
fresh in stage 2 since stage 1 has none).

One iteration plays ``batch`` episodes; ``updates`` minibatch steps follow (critics first,
then the actor with the updated critics, then the soft target updates). Critic inputs
(Diss A.8): the Q base sees ``(s_env, s^n, g^n, a)`` (plus ``o_self^n`` where it holds an
image, as Checkers' Q does). The credit function ``Q_c(s, a^m, g^n)`` evaluates agent m's
action, so its base reads the acting agent m's ``o_self^m`` (``credit_observation =
"acting"``: the window around the cell that ``a^m`` enters; with ``m = n`` exactly the
stage-1 ``Q^1`` input, which A.8.3 restores; the dissertation does not say whose window
it is for ``m != n``, the reference code reads m's); ``"goal"`` reads goal agent n's, as
econsim did before 2026-12-02. Checkers' images go through A.8.3's convolutions
(``conv``, ``learners.nets.Stem``): the actor's conv(6, 3x3) on the window, then 32 units; the
critics' conv(4, 3x5) on the item grid s_T and conv(6, 3x3) on the window, both flattened
into the first layer (``conv = false``: dense layers on the flat images, econsim before
2026-12-03). The previous action the Checkers actor takes (A.8.3) is part of that game's
``o_self`` (``previous_action``), so the critics see it too.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from econsim.bounds import FINITE, Coefficient, Count, Hidden, Iterations, Minibatches
from econsim.core import Game
from econsim.core.capabilities import MultiGoal, has
from learners.multigoal import (
    MultiGoalConfig,
    MultiGoalTrainer,
    Replay,
    Transitions,
    one_hot,
    others_index,
)
from learners.nets import AugmentedMLP, Params
from learners.pg import LinearSchedule
from learners.registry import register_algorithm
from learners.replicas import categorical

__all__ = ["CM3Config", "CM3Trainer", "Stage1"]


class Stage1(BaseModel):
    """Stage 1 of the curriculum (Diss §3.3.3, A.10; Tables A.3 and A.5 "Stage 1")."""

    model_config = FINITE
    iterations: Count = Field(100, description="iterations of stage 1 (navigation: 1e3 "
                              "episodes at 10 per iteration)")
    epsilon: LinearSchedule = Field(LinearSchedule(start=1.0, end=0.01, steps=100),
                                    description="exploration in stage 1, per iteration")
    minibatch: Minibatches = Field(256, description="transitions per minibatch in stage 1")
    updates: Minibatches = Field(24, description="minibatch updates per stage-1 iteration")
    replay: Iterations | None = Field(None, description="off-policy replay capacity in "
                                      "stage 1 (none: on-policy)")


class CM3Config(MultiGoalConfig):
    """CM3 hyperparameters (Diss Tables A.3, A.5; SPEC §7b). Defaults: navigation."""

    kinds: ClassVar[tuple[str, ...]] = ("cm3", "direct", "qv")
    critic_hidden: Hidden | None = Field(
        None, description="base layers of the global Q, credit function and V (none: hidden; "
        "SUMO: 256, 256, A.8.2)")
    q_branch: Hidden = Field([128], description="layers of the global Q's (s^-n, a^-n) "
                             "branch")
    credit_branch: Hidden = Field([], description="layers of the credit function's "
                                     "(s^m, s^-n) branch (navigation: none, joins h* directly)")
    epsilon: LinearSchedule = Field(LinearSchedule(start=0.5, end=0.05, steps=2000),
                                    description="stage-2 exploration per iteration, counted "
                                    "from the start of stage 2")
    stage1: Stage1 = Field(Stage1(), description="the curriculum's stage 1 (ignored by "
                           "cm3-direct)")
    branch_goals: bool = Field(
        False, description="the global Q's, the credit function's and V's branches also see the "
        "other agents' goals g^-n (Diss A.8.2, SUMO; navigation and Checkers: no)")
    credit_observation: Literal["acting", "goal"] = Field(
        "acting", description="whose o_self the credit function Q_c(s, a^m, g^n) reads where "
        "o_self holds an image (Checkers): the acting agent m's (the cell a^m enters is in "
        "view) or goal agent n's (econsim before 2026-12-02)")
    taken_value: Literal["global", "credit"] = Field(
        "global", description="the first term of eq. 3.6's advantage: the global Q_n(s, a) "
        "(the Diss) or the credit function Q_n(s, a^m) of the action taken, the same network "
        "as the baseline (its conditional mean given a^m, so the same gradient in expectation "
        "without the other agents' action noise and without the gap between two critics); "
        "stage 2 of cm3 and direct only (qv and stage 1 have no credit function)")
    join_std: Coefficient = Field(
        0.01, description="standard deviation of the normal initial weights W^{1:2} that join "
        "a new stage-2 branch into a restored layer (the reference code's 0.01: stage 2 starts "
        "close to the stage-1 functions; 0: exactly them)")
    restored_actor_lr: Coefficient = Field(
        1.0, description="multiplier on lr_actor for the actor's restored stage-1 parameters "
        "in stage 2 (1: the Diss, every parameter learns alike; 0: frozen, only the new "
        "o_others branch and its joining weights learn; an econsim option against stage 2 "
        "unlearning the stage-1 skill); cm3 and qv only (direct restores nothing)")


@register_algorithm("cm3", "cm3-direct", "cm3-qv", kinds={"cm3-direct": "direct",
                                                          "cm3-qv": "qv"})
class CM3Trainer(MultiGoalTrainer):
    """CM3 and its ablations Direct and QV (see the module docstring)."""

    Config = CM3Config
    default_kind = "cm3"
    nets: ClassVar[tuple[str, ...]] = ("actor", "actor_t", "q", "q_t", "qc", "qc_t", "v",
                                       "v_t")
    optimisers: ClassVar[tuple[str, ...]] = ("actor_opt", "q_opt", "qc_opt", "v_opt")

    def __init__(self, game: Game, config: CM3Config, seeds: list[int]) -> None:
        kinds = set(config.agents or [self.default_kind])
        if len(kinds) != 1:
            raise ValueError(f"cm3: all agents share one actor, so they have one kind, got "
                             f"{sorted(kinds)}")
        self.variant = kinds.pop()
        staged = self.variant != "direct" and has(game, MultiGoal)  # else: error below
        self.induced = game.induced() if staged else None
        super().__init__(game, config, seeds)

    # ----------------------------------------------------------------------- stages
    def first_stage(self) -> int:
        return 1 if self.variant != "direct" and self.cfg.stage1.iterations > 0 else 2

    def stage_game(self) -> Game:
        return self.induced if self.stage == 1 else self.game

    def stage_cfg(self):
        return self.cfg.stage1 if self.stage == 1 else self.cfg

    def epsilon(self) -> float:
        if self.stage == 1:
            return self.cfg.stage1.epsilon(self.iteration)
        start = 0 if self.first_stage() == 2 else self.cfg.stage1.iterations
        return self.cfg.epsilon(self.iteration - start)

    def iterate(self) -> dict[str, np.ndarray]:
        if self.stage == 1 and self.iteration >= self.cfg.stage1.iterations:
            self.augment()
        return super().iterate()

    # ----------------------------------------------------------------------- networks
    def shapes(self, game: Game) -> dict[str, AugmentedMLP]:
        """The networks of ``game`` (Diss A.8): actor, global Q, credit function, V."""
        N, K, A = game.n_agents, game.agent_state_size, self.A
        hid = tuple(self.cfg.critic_hidden or self.cfg.hidden)
        seen = game.env_state_size + K + game.goal_size + (
            game.self_size if game.self_image else 0)
        multi = N > 1
        goals = (N - 1) * game.goal_size if self.cfg.branch_goals else 0
        stems = self.grid_stem(game) + self.window_stem(
            game, game.env_state_size + K + game.goal_size)  # A.8.3: s_T and o_self_T
        return {
            "actor": self.actor_net(game),
            "q": AugmentedMLP(seen + A, hid, 1, (N - 1) * (K + A) + goals if multi else 0,
                              tuple(self.cfg.q_branch), stems=stems),
            "qc": AugmentedMLP(seen + A, hid, 1, N * K + goals if multi else 0,
                               tuple(self.cfg.credit_branch), stems=stems),
            "v": AugmentedMLP(seen, hid, 1, (N - 1) * K + goals if multi else 0,
                              tuple(self.cfg.q_branch), stems=stems),
        }

    def build(self, stage: int) -> None:
        """Fresh networks for ``stage`` (stage 1: the bases only; Algorithm 4)."""
        self.shape = self.shapes(self.stage_game())
        for name, net in self.shape.items():
            p = net.init_base(self.gens(f"cm3/{name}")) if stage == 1 else net.init(
                self.gens(f"cm3/{name}"))
            setattr(self, name, p)
            setattr(self, name + "_t", {k: v.detach().clone() for k, v in p.items()})
        self.make_optimisers()

    def augment(self) -> None:
        """Stage 1 -> 2 (Algorithm 4, lines 6-10): restore the stage-1 actor and Q^1 into the
        bases of the actor, the global Q and the credit function (a copy of Q^1), new
        branches; V (QV) starts fresh; targets equal the main networks; fresh optimisers and
        an empty buffer."""
        self.stage = 2
        old = {"actor": self.actor, "q": self.q, "qc": self.q}
        self.shape = self.shapes(self.game)
        for name, net in self.shape.items():
            gens = self.gens(f"cm3/{name}/stage2")
            p = (net.augment(old[name], gens, self.cfg.join_std) if name in old
                 else net.init(gens))
            setattr(self, name, p)
            setattr(self, name + "_t", {k: v.detach().clone() for k, v in p.items()})
        self.make_optimisers()
        self.replay = Replay(self.R, self.capacity())

    def make_optimisers(self) -> None:
        self.actor_opt = self.actor_optimiser()
        self.q_opt = self.adam(self.q, self.cfg.lr_critic)
        self.qc_opt = self.adam(self.qc, self.cfg.lr_critic)
        self.v_opt = self.adam(self.v, self.cfg.lr_critic)

    def actor_optimiser(self) -> torch.optim.Adam:
        """Adam over the actor; in stage 2 after a stage 1, the restored base parameters at
        ``restored_actor_lr`` times the rate of the new branch (a separate parameter group
        only when the multiplier is not 1, so stored optimiser states keep their layout)."""
        lr, scale = self.cfg.lr_actor, self.cfg.restored_actor_lr
        if self.stage == 1 or self.first_stage() == 2 or scale == 1:
            return self.adam(self.actor, lr)
        grown = [v for k, v in self.actor.items() if AugmentedMLP.grown(k)]
        base = [v for k, v in self.actor.items() if not AugmentedMLP.grown(k)]
        return torch.optim.Adam([{"params": grown, "lr": lr},
                                 {"params": base, "lr": lr * scale}])

    def policy(self, params: Params, obs: torch.Tensor, eps: float,
               legal: torch.Tensor | None = None) -> torch.Tensor:
        return self.actor_probs(self.shape["actor"], params, obs, eps, legal)

    # ------------------------------------------------------------------ critic inputs
    def q_inputs(self, mb: Transitions, actions: torch.Tensor, nxt: bool = False):
        """Global Q inputs for every goal n: base ``(s_env, s^n, g^n[, o_self^n], a^n)``,
        branch ``(s^{-n}, a^{-n}[, g^{-n}])``: ``[R, S, N, *]`` each."""
        base, s_ag = self.seen(mb, nxt), mb.parts(nxt)[4]
        act = one_hot(actions, self.A)
        x = torch.cat([base, act], -1)
        if mb.N == 1:
            return x, None
        oth = others_index(mb.N)
        branch = torch.cat([s_ag[:, :, oth].flatten(-2), act[:, :, oth].flatten(-2),
                            *self.other_goals(mb, nxt)], -1)
        return x, branch

    def other_goals(self, mb: Transitions, nxt: bool = False) -> list[torch.Tensor]:
        """``[g^{-n}]`` per goal n, ``[R, S, N, (N-1) G]``, with ``branch_goals``; else []."""
        if not self.cfg.branch_goals:
            return []
        goal = mb.parts(nxt)[1]
        return [goal[:, :, others_index(mb.N)].flatten(-2)]

    def seen(self, mb: Transitions, nxt: bool = False, window: bool = True) -> torch.Tensor:
        """``(s_env, s^n, g^n[, o_self^n])`` per goal n: ``[R, S, N, *]`` (``o_self^n`` where
        it holds an image and ``window``)."""
        o_self, goal, _, s_env, s_ag = mb.parts(nxt)
        parts = [s_env[:, :, None].expand(-1, -1, mb.N, -1), s_ag, goal]
        if window and self.stage_game().self_image:
            parts.append(o_self)
        return torch.cat(parts, -1)

    def credit_values(self, params: Params, mb: Transitions, nxt: bool = False,
                      actions: torch.Tensor | None = None) -> torch.Tensor:
        """``Q_c(s, a^m, g^n)``: for ``actions [R, S, N]`` (agent m's action), ``[R, S, n,
        m]``; for ``None``, every action of every m, ``[R, S, n, m, A]``."""
        N, A = mb.N, self.A
        s_ag = mb.parts(nxt)[4]
        oth = others_index(N)
        # branch (s^m, s^{-n}[, g^{-n}]) [R, S, n, m, *]
        s_m = s_ag[:, :, None].expand(-1, -1, N, -1, -1)
        per_n = torch.cat([s_ag[:, :, oth].flatten(-2), *self.other_goals(mb, nxt)], -1)
        branch = torch.cat([s_m, per_n[:, :, :, None].expand(-1, -1, -1, N, -1)], -1)
        if actions is None:  # every action of every m: the base's rest, each (n, m) once
            rest = self.credit_seen(mb, nxt)
            R, S = rest.shape[:2]
            out = self.shape["qc"].apply_actions(
                params, rest.reshape(R, S * N * N, -1), A, branch.reshape(R, S * N * N, 1, -1))
            return out.reshape(R, S, N, N, A)
        act = one_hot(actions, A)[:, :, None].expand(-1, -1, N, -1, -1)
        return self.shape["qc"].apply(
            params, torch.cat([self.credit_seen(mb, nxt), act], -1), branch)[..., 0]

    def credit_seen(self, mb: Transitions, nxt: bool = False) -> torch.Tensor:
        """The credit function's base input without the action, ``[R, S, n, m, *]``:
        ``(s_env, s^n, g^n[, o_self])`` with ``o_self`` of acting agent m or goal agent n
        (``credit_observation``)."""
        N = mb.N
        if not self.stage_game().self_image or self.cfg.credit_observation == "goal":
            return self.seen(mb, nxt)[:, :, :, None].expand(-1, -1, -1, N, -1)
        per_n = self.seen(mb, nxt, window=False)  # goal agent n's part
        o_self = mb.parts(nxt)[0]  # acting agent m's window
        return torch.cat([per_n[:, :, :, None].expand(-1, -1, -1, N, -1),
                          o_self[:, :, None].expand(-1, -1, N, -1, -1)], -1)

    # ------------------------------------------------------------------------ training
    def train_step(self, mb: Transitions) -> dict[str, np.ndarray]:
        """One minibatch update (Algorithm 6): critics, then the actor, then the targets."""
        gamma, eps = self.cfg.gamma, self.epsilon()
        net = self.shape
        go_on = (1 - mb.done)[:, :, None]  # [R, S, 1]
        with torch.no_grad():  # a' ~ pi' (the target actor)
            p_next = self.policy(self.actor_t, mb.next_obs, eps, mb.legal(True))
            a_next = categorical(self.train_rng, p_next)
        out: dict[str, np.ndarray] = {}

        # global Q_n(s, a) (Q^1 in stage 1): y^n = R^n + gamma Q'(s', a', g^n)
        with torch.no_grad():
            y = mb.rewards + gamma * go_on * net["q"].apply(
                self.q_t, *self.q_inputs(mb, a_next, True))[..., 0]
        x, br = self.q_inputs(mb, mb.actions)
        q_loss = ((y - net["q"].apply(self.q, x, br)[..., 0]) ** 2).mean((1, 2))
        self.descend(self.q_opt, q_loss.sum())
        out["q_loss"] = q_loss.detach().numpy()

        credit = self.stage == 2 and self.variant != "qv"
        if credit:  # credit function (eq. 3.4): y^{n,m} = R^n + gamma Q_c'(s', a'^m, g^n)
            with torch.no_grad():
                yc = mb.rewards[..., None] + gamma * go_on[..., None] * self.credit_values(
                    self.qc_t, mb, True, a_next)
            qc_loss = ((yc - self.credit_values(self.qc, mb, False, mb.actions)) ** 2
                       ).mean((1, 2, 3))
            self.descend(self.qc_opt, qc_loss.sum())
            out["credit_loss"] = qc_loss.detach().numpy()
        if self.stage == 2 and self.variant == "qv":  # V_n(s): y = R^n + gamma V'(s', g^n)
            with torch.no_grad():
                yv = mb.rewards + gamma * go_on * net["v"].apply(
                    self.v_t, self.seen(mb, True), self.v_branch(mb, True))[..., 0]
            v_loss = ((yv - net["v"].apply(self.v, self.seen(mb), self.v_branch(mb))[..., 0])
                      ** 2).mean((1, 2))
            self.descend(self.v_opt, v_loss.sum())
            out["v_loss"] = v_loss.detach().numpy()

        # actor (eq. 3.5 with the advantage of eq. 3.6; stage 1: eq. A.10)
        probs = self.policy(self.actor, mb.obs, eps, mb.legal())  # [R, S, m, A]
        weight = self.advantage(mb, probs.detach())
        self.descend(self.actor_opt, self.actor_loss(probs, mb, weight).sum())
        out["advantage"] = weight.abs().mean((1, 2)).numpy()
        self.soft_targets([("actor_t", "actor"), ("q_t", "q"), ("qc_t", "qc"), ("v_t", "v")])
        return out

    @torch.no_grad()
    def advantage(self, mb: Transitions, pi: torch.Tensor) -> torch.Tensor:
        """Each agent m's weight ``sum_n A_{n,m}`` ``[R, S, m]`` with the current critics and
        behaviour probabilities ``pi [R, S, m, A]``: eq. 3.6 (stage 1: eq. A.10; QV: ``Q_n(s,
        a) - V_n(s)``, the same for every m)."""
        net = self.shape
        if self.stage == 2 and self.variant != "qv":  # eq. 3.6, baseline from Q_c
            q_all = self.credit_values(self.qc, mb)  # [R, S, n, m, A]
            base = (pi[:, :, None] * q_all).sum(-1)  # [R, S, n, m]
            if self.cfg.taken_value == "credit":  # Q_c(s, a^m, g^n) of the action taken
                taken = q_all.gather(-1, mb.actions[:, :, None, :, None].long().expand(
                    -1, -1, mb.N, -1, 1))[..., 0]
            else:  # the global Q_n(s, a)
                taken = net["q"].apply(self.q, *self.q_inputs(mb, mb.actions))[..., 0, None]
            return (taken - base).sum(2)  # summed over the goals n
        q_taken = net["q"].apply(self.q, *self.q_inputs(mb, mb.actions))[..., 0]  # [R, S, n]
        if self.stage == 1:  # N = 1: baseline from Q^1 over the agent's own actions
            rest = self.seen(mb)[:, :, 0]  # [R, S, *]
            q_all = net["q"].apply_actions(self.q, rest, self.A)[:, :, 0, :, 0]  # [R, S, A]
            return q_taken - (pi[:, :, 0] * q_all).sum(-1, keepdim=True)
        v = net["v"].apply(self.v, self.seen(mb), self.v_branch(mb))[..., 0]  # QV
        return (q_taken - v).sum(-1, keepdim=True).expand(-1, -1, mb.N)

    @staticmethod
    def actor_loss(probs: torch.Tensor, mb: Transitions, weight: torch.Tensor) -> torch.Tensor:
        """``-(1/S) sum_i sum_m log pi(a^m_i | o^m_i) weight_{i,m}`` per replica ``[R]``: its
        gradient is minus eq. 3.5's (Algorithm 6, line 14)."""
        logp = torch.log(probs.gather(-1, mb.actions[..., None].long())[..., 0])
        return -(logp * weight).sum(-1).mean(1)

    def v_branch(self, mb: Transitions, nxt: bool = False) -> torch.Tensor:
        """V's branch input ``s^{-n}`` (and ``g^{-n}``) per goal n: ``[R, S, N, *]``."""
        s_ag = mb.parts(nxt)[4]
        return torch.cat([s_ag[:, :, others_index(mb.N)].flatten(-2),
                          *self.other_goals(mb, nxt)], -1)
