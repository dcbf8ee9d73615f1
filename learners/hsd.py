"""HSD: hierarchical multi-agent RL with unsupervised skill discovery (Diss ch. 4, §4.2-4.3,
Algorithm 1; SPEC §8, §8b), on a cooperative team game with a flat global state (capability
``GlobalState``: STS2).

Each agent has two levels, both parameter-shared over the agents and stacked per replica
(``learners.nets``):

* **High level** (§4.2.1, eqs. 4.5-4.6): every ``t_seg`` steps (t = 0, t_seg, 2 t_seg, ...)
  each agent chooses a latent skill ``z^n`` among ``skills`` (K = 4; 8 an option),
  epsilon-greedily from its utility ``Q^n(o^n, .)`` (a 128-128 ReLU MLP on its observation and,
  with ``agent_id``, a one-hot of its index). The utilities are trained by QMIX
  (``learners.qmix.qmix_target``/``qmix_loss``, the mixer ``learners.nets.QMixer`` with
  embedding 64 on the game's ``global_state``) on high-level transitions ``(s_k, o_k, z_k,
  R~_k, s_{k+1}, o_{k+1})``, one per segment, from their own replay ``B_H``. The SMDP reward
  (:func:`smdp_reward`) is ``R~ = gamma^t_seg sum_{i<t_seg} R_{t+i}`` of the team reward
  (Algorithm 1 line 9, SPEC §8b: ``smdp = "scaled"``) or ``sum_i gamma^i R_{t+i}`` (the text of
  §4.2.3: ``"discounted"``); the target is eq. 4.6, ``y = R~ + gamma Q_tot'(s', z')``, the
  next skills the target utilities' argmax, with ``gamma`` per high-level step as written
  there.
* **Low level** (eqs. 4.7-4.8): independent Q-learning (``learners.iql.iql_target`` /
  ``iql_loss``) of ``Q(o^n, z^n, .)`` (64-64, on the observation, the agent's one-hot index
  and the skill's one-hot) over the primitive actions, on agent transitions ``(o, z, a, R_L,
  o')`` from its replay ``B_L``; the target keeps the transition's skill (eq. 4.8).
* **Low-level reward** (eq. 4.3, by the agent kind; ``algorithm.name``):

  - ``hsd``: ``R_L = alpha R_env + (1 - alpha) R_I`` where the intrinsic reward ``R_I`` is the
    decoder's probability ``p(z^n | tau^n)`` of the skill that was used (eq. 4.4; not its log,
    SPEC §8b), paid only on the last step of a complete segment (SPEC §8b: at segment ends;
    Algorithm 1 as printed computes it at the boundary and adds it to the next step, whose
    transition already carries the next skill; the reward for a segment belongs to the skill
    that made it, so it is paid on the segment's own last step). A segment cut short by the
    end of the episode gets no intrinsic reward and is not shown to the decoder (its
    trajectory has fewer than ``t_seg`` steps).
  - ``hsd-ext`` (kind ``ext``): no extrinsic reward, ``alpha = 0`` throughout (Fig. 4.4a).
  - ``hsd-scripted`` (kind ``scripted``): the same hierarchy, but the low level is rewarded by
    a hand-scripted subtask reward of its current skill instead of eq. 4.3 (§4.3.2: "subtask
    1 gets +1 for making a goal ..., subtask 2 gets +1 for stealing possession"). Skill k's
    reward is ``SKILL_REWARDS[k]`` of the agent's own step: 0 ``score`` +1 per goal it scores;
    1 ``steal`` +1 per steal or interception (it takes the puck from the opponents); 2
    ``pass`` +1 per completed pass it makes; 3 ``advance`` the change of its own z / 18
    (towards the attacked net; a run over the rink earns about 2). The Diss uses the first
    two (its scenario: ``skills = 2``); pass and advance are the obvious other parts of an
    attack, so that K = 4 has four distinct subtasks. They are individual rewards, so this
    variant sidesteps the low level's credit assignment (the Diss's "rough indication of the
    maximum possible win rate"). Defined for STS2 only (its events and observation).

* **Skill decoder** (§4.2.2, §4.2.4): a bidirectional LSTM (``learners.nets.BiLSTM``, 128 per
  direction), mean-pooled over time, softmax over the K skills, reading a segment's
  trajectory as :func:`decoder_input`: the agent's observations at the segment's steps
  (before each action), every ``k_skip``-th (2) kept, only the first ``decoder_features``
  (10: STS2's carrier, possession and own position/velocity entries, no other agent), as
  consecutive differences (4 time steps for t_seg 10). Every complete segment of every agent
  goes with its skill into the replica's dataset ``D``; each time a replica's ``D`` holds
  ``decoder_batch`` (1000) segments, the decoder takes one Adam step (lr 1e-4) on the cross
  entropy of those 1000 and they leave ``D`` (``learners.replicas.ReplicaAdam``: a replica
  steps on its own schedule).
* **alpha curriculum** (§4.2.2): alpha starts at 1 and, at each evaluation whose win rate
  (``win_rate``) is at least ``alpha.threshold`` (0.7), drops by ``alpha.step`` (0.01) down to
  ``alpha.floor`` (0.6) (:func:`anneal`), per replica (a game without ``win`` events keeps
  alpha where it starts). The evaluation is HSD's own: every
  ``alpha.every`` iterations it plays ``alpha.episodes`` greedy episodes from the evaluation
  streams of that iteration, which are exactly what ``evaluate`` plays then, so a runner
  evaluating at the same rate and size gets those numbers without playing them again.

Budget in iterations of ``batch`` episodes (as the chapter-3 scenarios; SPEC §8, §8b): the
Diss's 50k episodes are 5000 iterations of 10; "evaluate 20 episodes every 100" is
``eval_every = alpha.every = 10``, ``eval_episodes = alpha.episodes = 20``; epsilon 0.5 ->
0.05 over 1000 episodes after 10 random episodes is ``warmup = 1`` iteration of uniformly
random skills and actions, then ``LinearSchedule(0.5, 0.05, 100)``, the same epsilon at both
levels; "train every 10 steps, minibatches of 256" is ``updates`` low-level minibatches per
iteration, ``batch x episode length / 10`` (episodes end at a goal, about 130-150 steps early
in training: 150) and ``high_updates`` high-level ones, ``batch x segments per episode / 10``
(15). Training happens after each iteration's episodes rather than inside them (the replay
makes the two nearly the same), and the number of updates is fixed per iteration, so that a
seed's run never depends on another seed's episode lengths. Buffers hold 1e5 transitions
(``B_H`` joint high-level steps, ``B_L`` agent steps); targets move softly with tau 0.01
after every minibatch; lr 1e-4; gamma 0.99.

Metrics per replica (``iterate`` and ``evaluate``): per agent ``return`` and the game's events
(``shot``, ``goal``, ``steal``, ..., ``win``), ``skill_k`` (steps spent in skill k per episode);
per world ``collective``, ``team_return``, ``length``, ``win_rate`` / ``lose_rate`` /
``draw_rate``, ``alpha`` (in force after the iteration; 0 for hsd-ext and hsd-scripted, whose
low level takes no team reward), ``decoder_accuracy`` and
``decoder_ce`` (the decoder, before this iteration's steps, on the iteration's complete
segments: a held-out measure), ``intrinsic`` (mean ``p(z|tau)`` of those segments);
training adds ``low_td_loss``, ``high_td_loss``, ``q_tot`` and ``decoder_steps``.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from econsim.bounds import (
    FINITE,
    Count,
    Episodes,
    Fraction,
    Hidden,
    Iterations,
    Kinds,
    LearningRate,
    Minibatches,
    Probability,
    Steps,
    Width,
)
from econsim.core import Game, ReplicaRNG, make_rng, torch_generator
from econsim.core.capabilities import AgentEvents, GlobalState, has
from econsim.envs.sts2 import OBS_OWN_Z
from learners.contract import TrainerConfig, TrainerTraits
from learners.functional import next_step
from learners.iql import iql_loss, iql_target
from learners.multigoal import Replay, global_state, replica_copy, split_agents, team_metrics
from learners.nets import BiLSTM, Params, QMixer, detach, init_mlp, mlp, soft_update
from learners.pg import LinearSchedule
from learners.qmix import epsilon_greedy, qmix_loss, qmix_target, with_agent_ids
from learners.registry import register_algorithm
from learners.replicas import ReplicaAdam, categorical, episode_mean, per_replica
from learners.rollout import Batch, Decision, play

__all__ = ["SKILL_REWARDS", "AlphaSchedule", "HSDConfig", "HSDTrainer", "anneal",
           "decoder_input", "replica_major", "smdp_reward"]

#: the hand-scripted subtask reward of skill k (kind ``scripted``; module docstring)
SKILL_REWARDS = ("score", "steal", "pass", "advance")
_SCRIPTED_EVENTS = ("goal", "steal", "interception", "pass_made")


# ----------------------------------------------------------------------- pure parts
def decoder_input(traj: torch.Tensor, k_skip: int, features: int) -> torch.Tensor:
    """What the decoder reads of a segment (Diss §4.2.4, SPEC §8b): ``traj [..., t_seg, D]``,
    the observations at the segment's steps -> ``[..., L, features]``: every ``k_skip``-th
    observation from the first, its first ``features`` entries, as consecutive differences
    (``L = ceil(t_seg / k_skip) - 1``: 4 for t_seg 10, k_skip 2)."""
    x = traj[..., ::k_skip, :features]
    return x[..., 1:, :] - x[..., :-1, :]


def smdp_reward(team: torch.Tensor, t_seg: int, gamma: float,
                mode: Literal["scaled", "discounted"] = "scaled") -> torch.Tensor:
    """The high level's reward of each segment from the team's rewards ``team [T, ...]`` (zero
    after the episode's end) -> ``[ceil(T / t_seg), ...]``: ``"scaled"`` ``gamma^t_seg sum_i
    R_{t+i}`` (Algorithm 1 line 9, SPEC §8), ``"discounted"`` ``sum_i gamma^i R_{t+i}``
    (§4.2.3's text); ``i`` over the segment's steps."""
    T = team.shape[0]
    S = -(-T // t_seg)
    pad = torch.cat([team, team.new_zeros(S * t_seg - T, *team.shape[1:])])
    r = pad.reshape(S, t_seg, *team.shape[1:])
    total = torch.zeros_like(r[:, 0])
    for i in range(t_seg):  # added step by step: a batched sum over this middle axis rounds
        # differently with the number of worlds beside it (seed independence)
        total = total + (r[:, i] if mode == "scaled" else gamma ** i * r[:, i])
    return gamma ** t_seg * total if mode == "scaled" else total


def anneal(alpha: np.ndarray, win_rate: np.ndarray, schedule: AlphaSchedule) -> np.ndarray:
    """alpha after an evaluation (per replica): ``max(floor, alpha - step)`` where the win rate
    is at least ``threshold``, else unchanged (Diss §4.2.2, Algorithm 1 lines 32-34)."""
    down = np.maximum(schedule.floor, alpha - schedule.step)
    return np.where(np.asarray(win_rate) >= schedule.threshold, down, alpha)


# ------------------------------------------------------------------------------ config
class AlphaSchedule(BaseModel):
    """The automatic curriculum of alpha (Diss §4.2.2; SPEC §8)."""

    model_config = FINITE
    start: Probability = Field(1.0, description="alpha at the start")
    step: Probability = Field(0.01, description="decrease at each evaluation won often enough")
    floor: Probability = Field(0.6, description="lowest alpha (alpha_end)")
    threshold: Probability = Field(0.7, description="least evaluation win rate that lowers alpha")
    every: Iterations = Field(10, description="iterations between HSD's evaluations (the Diss: "
                              "every 100 episodes)")
    episodes: Episodes = Field(20, description="episodes per evaluation (the Diss: 20)")


class HSDConfig(TrainerConfig):
    """HSD hyperparameters (Diss §4.3.2; SPEC §8, §8b), in iterations of ``batch`` episodes
    (module docstring)."""

    kinds: ClassVar[tuple[str, ...]] = ("hsd", "scripted", "ext")
    agents: Kinds | None = Field(None, description="kind of each agent (all the same): hsd, "
                                 "scripted (hand-scripted subtask rewards) or ext (no "
                                 "extrinsic reward at the low level)")
    batch: Episodes = Field(10, description="episodes per replica per iteration")
    skills: int = Field(4, ge=2, le=64, description="latent skills K (the Diss: 4 or 8)")
    t_seg: Steps = Field(10, description="steps each chosen skill is kept")
    k_skip: Steps = Field(2, description="the decoder sees every k_skip-th observation")
    decoder_features: Width = Field(10, description="first observation entries the decoder "
                                    "sees (STS2: 10, none of the other agents)")
    decoder_hidden: Width = Field(128, description="LSTM units per direction")
    decoder_batch: int = Field(1000, ge=1, le=100_000, description="segments per decoder "
                               "step (N_batch)")
    lr_decoder: LearningRate = Field(1e-4, description="decoder learning rate (Adam)")
    high_hidden: Hidden = Field([128, 128], description="hidden layers of the skill utility")
    embed: Width = Field(64, description="mixer embedding dimension")
    hyper_hidden: Hidden = Field([], description="hidden layers of the mixer's weight "
                                 "hypernetworks (none: one linear layer)")
    low_hidden: Hidden = Field([64, 64], description="hidden layers of the low-level Q(o, z, .)")
    lr: LearningRate = Field(1e-4, description="learning rate of both levels' Q functions")
    gamma: Fraction = Field(0.99, description="discount factor (both levels)")
    tau: Fraction = Field(0.01, description="soft target update rate")
    replay_high: Iterations = Field(100_000, description="high-level replay B_H, segments "
                                    "(joint) per replica")
    replay_low: Iterations = Field(100_000, description="low-level replay B_L, agent steps "
                                   "per replica")
    minibatch: Minibatches = Field(256, description="transitions per minibatch (both levels)")
    updates: Minibatches = Field(150, description="low-level minibatches per iteration: batch "
                                 "x episode length / 10")
    high_updates: Minibatches = Field(15, description="high-level minibatches per iteration: "
                                      "batch x segments per episode / 10")
    epsilon: LinearSchedule = Field(
        LinearSchedule(start=0.5, end=0.05, steps=100),
        description="epsilon-greedy exploration at both levels per iteration after the "
        "warm-up (0.5 -> 0.05 over 1000 episodes)")
    warmup: Count = Field(1, description="iterations of uniformly random skills and actions "
                          "first (10 episodes)")
    alpha: AlphaSchedule = Field(AlphaSchedule(), description="the alpha curriculum")
    smdp: Literal["scaled", "discounted"] = Field(
        "scaled", description="SMDP reward: gamma^t_seg x segment sum (Algorithm 1, SPEC) or "
        "the discounted segment sum (§4.2.3's text)")
    agent_id: bool = Field(True, description="both levels also see a one-hot of the agent's "
                           "index (which pass action is a pass to itself)")
    bootstrap_time_limit: bool = Field(
        True, description="the last step (or segment) of an episode cut by the step cap "
        "bootstraps from the state after it; false: it counts as terminal")


# ------------------------------------------------------------------------------ player
class _Skills:
    """A ``learners.rollout.Actor``: skills every ``t_seg`` steps, then primitive actions.

    A fresh one per episode batch (its step counter starts at 0). ``fixed``: agent -> skill
    held throughout (Table 4.1's defensive/offensive agent)."""

    def __init__(self, trainer: HSDTrainer, game: Game, rng: ReplicaRNG | None,
                 act_rng: ReplicaRNG, fixed: dict[int, int] | None = None) -> None:
        self.trainer, self.game, self.rng, self.act_rng = trainer, game, rng, act_rng
        self.R, self.N, self.dtype = trainer.R, game.n_agents, trainer.dtype
        self.fixed = dict(fixed or {})
        self.t, self.z = 0, torch.zeros(0, dtype=torch.long)

    def decide(self, params: dict[str, Params], obs_env: np.ndarray, given_cum: torch.Tensor,
               eps: float, legal: torch.Tensor | None = None) -> Decision:
        tr = self.trainer  # STS2 has no action mask: ``legal`` is not used
        obs = torch.from_numpy(np.ascontiguousarray(obs_env, np.float32)).to(self.dtype)
        RB = obs.shape[0]
        x = obs.reshape(self.R, RB // self.R, self.N, -1)
        if self.t % tr.cfg.t_seg == 0:
            probs = epsilon_greedy(tr.high_q(params["q_hi"], x), eps)
            self.z = categorical(self.act_rng, probs.reshape(RB, self.N, -1))
            for n, k in self.fixed.items():
                self.z[:, n] = k
        z = self.z.reshape(self.R, RB // self.R, self.N)
        probs = epsilon_greedy(tr.low_q(params["q_lo"], x, z), eps)
        actions = categorical(self.act_rng, probs.reshape(RB, self.N, -1))
        self.t += 1
        return Decision(obs, actions, actions, None, torch.zeros(RB, self.N, self.N),
                        {"z": self.z.clone()})

    def add_given(self, given_cum: torch.Tensor, pay: torch.Tensor) -> torch.Tensor:
        return given_cum

    def record_state(self, state: Any) -> dict[str, torch.Tensor]:
        return global_state(self.game, state, self.dtype)


def replica_major(x: torch.Tensor, R: int) -> torch.Tensor:
    """World layout ``[T, R*B, ...]`` -> ``[R, T*B, ...]`` (each replica's rows together)."""
    T, RB = x.shape[:2]
    x = x.reshape(T, R, RB // R, *x.shape[2:]).transpose(0, 1)
    return x.reshape(R, T * (RB // R), *x.shape[3:])


# ----------------------------------------------------------------------------- trainer
@register_algorithm("hsd", "hsd-scripted", "hsd-ext",
                    kinds={"hsd-scripted": "scripted", "hsd-ext": "ext"})
class HSDTrainer(TrainerTraits):
    """HSD and its variants HSD-scripted and HSD-ext (module docstring)."""

    Config = HSDConfig
    default_kind = "hsd"
    shared_policy = False  # a team policy: the skills are a memory across steps
    nets: ClassVar[tuple[str, ...]] = ("q_hi", "q_hi_t", "mixer", "mixer_t", "q_lo", "q_lo_t",
                                       "decoder")

    def __init__(self, game: Game, config: HSDConfig, seeds: list[int]) -> None:
        if not has(game, GlobalState):
            raise ValueError(f"algorithm 'hsd' needs a team game with a global state (sts2), "
                             f"not {game.name!r}")
        self.game, self.cfg, self.seeds = game, config, list(seeds)
        self.R, self.N, self.A = len(self.seeds), game.n_agents, game.action_space.n
        self.D, self.K = game.observation_space.shape[0], config.skills
        self.kinds = list(config.agents or [self.default_kind] * self.N)
        if len(self.kinds) != self.N:
            raise ValueError(f"algorithm.agents lists {len(self.kinds)} agents but {game.name} "
                             f"has {self.N}")
        if len(set(self.kinds)) != 1:
            raise ValueError(f"hsd: all agents share both levels, so they have one kind, got "
                             f"{sorted(set(self.kinds))}")
        self.variant = self.kinds[0]
        if config.k_skip >= config.t_seg:
            raise ValueError(f"hsd: k_skip {config.k_skip} must be below t_seg {config.t_seg} "
                             "(the decoder needs two observations of a segment)")
        if config.decoder_features > self.D:
            raise ValueError(f"hsd: decoder_features {config.decoder_features} exceeds the "
                             f"observation size {self.D}")
        if self.variant == "scripted":
            if config.skills > len(SKILL_REWARDS):
                raise ValueError(f"hsd-scripted: {config.skills} skills but only "
                                 f"{len(SKILL_REWARDS)} scripted subtasks "
                                 f"({', '.join(SKILL_REWARDS)})")
            if game.name != "sts2" or not (has(game, AgentEvents) and set(_SCRIPTED_EVENTS)
                                           <= set(game.agent_info_keys)):
                raise ValueError(f"hsd-scripted: the subtask rewards are STS2's (goals, steals, "
                                 f"passes, position), not {game.name!r}'s")
        self.L = len(range(0, config.t_seg, config.k_skip)) - 1  # decoder time steps
        self.dtype = torch.get_default_dtype()
        self.rng = ReplicaRNG.from_seeds(self.seeds, "env")
        self.act_rng = ReplicaRNG.from_seeds(self.seeds, "act")
        self.train_rng = ReplicaRNG.from_seeds(self.seeds, "train")
        self.iteration = 0
        self.build()
        self.replay_hi = Replay(self.R, config.replay_high)
        self.replay_lo = Replay(self.R, config.replay_low)
        segments = -(-game.max_steps // config.t_seg)  # per episode
        cap = config.decoder_batch + config.batch * segments * self.N
        self.data_tau = torch.zeros(self.R, cap, self.L, config.decoder_features)
        self.data_z = torch.zeros(self.R, cap, dtype=torch.long)
        self.data_n = [0] * self.R
        start = config.alpha.start if self.variant == "hsd" else 0.0
        self.alpha = np.full(self.R, start)
        self._mesa: _Skills | None = None
        self._eval: tuple[tuple, dict[str, np.ndarray]] | None = None

    # ----------------------------------------------------------------------- networks
    def gens(self, role: str) -> list[torch.Generator]:
        return [torch_generator(s, role) for s in self.seeds]

    def build(self) -> None:
        cfg, ids = self.cfg, (self.N if self.cfg.agent_id else 0)
        self.q_hi = init_mlp([self.D + ids, *cfg.high_hidden, self.K], self.gens("hsd/high"))
        self.mixer_shape = QMixer(self.N, self.game.state_size, cfg.embed,
                                  tuple(cfg.hyper_hidden))
        self.mixer = self.mixer_shape.init(self.gens("hsd/mixer"))
        self.q_lo = init_mlp([self.D + ids + self.K, *cfg.low_hidden, self.A],
                             self.gens("hsd/low"))
        self.decoder_shape = BiLSTM(cfg.decoder_features, cfg.decoder_hidden, self.K)
        self.decoder = self.decoder_shape.init(self.gens("hsd/decoder"))
        for main in ("q_hi", "mixer", "q_lo"):
            setattr(self, main + "_t", {k: v.detach().clone()
                                        for k, v in getattr(self, main).items()})
        self.make_optimisers()

    def make_optimisers(self) -> None:
        self.opt_hi = torch.optim.Adam([*self.q_hi.values(), *self.mixer.values()],
                                       lr=self.cfg.lr)
        self.opt_lo = torch.optim.Adam(list(self.q_lo.values()), lr=self.cfg.lr)
        self.opt_dec = ReplicaAdam(self.decoder, self.cfg.lr_decoder)

    @property
    def params(self) -> dict[str, Params]:
        """What acts: the skill utilities and the low-level Q network."""
        return {"q_hi": self.q_hi, "q_lo": self.q_lo}

    def high_q(self, params: Params, obs: torch.Tensor) -> torch.Tensor:
        """Skill utilities ``Q^n(o^n, .)`` ``[R, ..., N, K]`` of observations ``[R, ..., N, D]``."""
        if self.cfg.agent_id:
            obs = with_agent_ids(obs, self.N)
        x = obs.reshape(obs.shape[0], -1, obs.shape[-1])
        return mlp(params, x).reshape(*obs.shape[:-1], self.K)

    def low_q(self, params: Params, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``Q(o^n, z^n, .)`` ``[R, ..., N, A]`` of observations ``[R, ..., N, D]`` and skills
        ``[R, ..., N]``."""
        if self.cfg.agent_id:
            obs = with_agent_ids(obs, self.N)
        x = torch.cat([obs, torch.nn.functional.one_hot(z.long(), self.K).to(obs.dtype)], -1)
        lead = x.shape[:-1]
        return mlp(params, x.reshape(x.shape[0], -1, x.shape[-1])).reshape(*lead, self.A)

    def low_rows(self, params: Params, obs: torch.Tensor, agent: torch.Tensor,
                 z: torch.Tensor) -> torch.Tensor:
        """``Q(o, z, .)`` ``[R, S, A]`` of agent transitions (``obs [R, S, D]``, ``agent``, ``z
        [R, S]``)."""
        parts = [obs]
        if self.cfg.agent_id:
            parts.append(torch.nn.functional.one_hot(agent.long(), self.N).to(obs.dtype))
        parts.append(torch.nn.functional.one_hot(z.long(), self.K).to(obs.dtype))
        return mlp(params, torch.cat(parts, -1))

    def decoder_probs(self, decoder: Params, tau: torch.Tensor) -> torch.Tensor:
        """``p(z | tau)`` ``[R, M, K]`` of decoder inputs ``[R, M, L, F]``."""
        return torch.softmax(self.decoder_shape.apply(decoder, tau), -1)

    # ------------------------------------------------------------------------- acting
    def epsilon(self) -> float:
        return self.cfg.epsilon.after(self.cfg.warmup, self.iteration)

    def play(self, game: Game, eps: float, episodes: int, rng: ReplicaRNG,
             act_rng: ReplicaRNG, fixed: dict[int, int] | None = None) -> Batch:
        """``episodes`` per replica with the current networks (``z [T, RB, N]`` in extra)."""
        return play(_Skills(self, game, rng, act_rng, fixed), self.params, eps, episodes,
                    final=True)

    # ---------------------------------------------------------------------- segments
    def segments(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per segment (world layout ``[S, RB, ...]``): ``start`` (the segment began before
        the episode's end), ``full`` (it ran all ``t_seg`` steps), ``z [S, RB, N]`` its skills,
        ``tau [S, RB, N, L, F]`` the decoder's input, ``p [S, RB, N, K]`` the decoder's
        probabilities (no gradient)."""
        cfg = self.cfg
        T, RB = batch.mask.shape
        S = -(-T // cfg.t_seg)
        pad = S * cfg.t_seg - T
        mask = torch.cat([batch.mask, batch.mask.new_zeros(pad, RB)])
        obs = torch.cat([batch.obs, batch.obs.new_zeros(pad, *batch.obs.shape[1:])])
        starts = torch.arange(S) * cfg.t_seg
        traj = obs.reshape(S, cfg.t_seg, *obs.shape[1:]).permute(0, 2, 3, 1, 4)
        tau = decoder_input(traj, cfg.k_skip, cfg.decoder_features)  # [S, RB, N, L, F]
        with torch.no_grad():
            flat = replica_major(tau, self.R)  # [R, S*B, N, L, F]
            p = self.decoder_probs(self.decoder, flat.reshape(self.R, -1, self.L,
                                                             cfg.decoder_features))
            p = p.reshape(self.R, S, RB // self.R, self.N, self.K).permute(1, 0, 2, 3, 4)
        return {"start": mask[starts], "full": mask[starts + cfg.t_seg - 1],
                "z": batch.extra["z"][starts], "tau": tau,
                "p": p.reshape(S, RB, self.N, self.K)}

    def intrinsic(self, seg: dict[str, torch.Tensor], T: int) -> torch.Tensor:
        """``R_I [T, RB, N]``: ``p(z^n | tau^n)`` of the skill used, on the last step of each
        complete segment, 0 elsewhere (SPEC §8b)."""
        p_true = seg["p"].gather(-1, seg["z"][..., None])[..., 0] * seg["full"][..., None]
        S, RB, N = p_true.shape
        out = p_true.new_zeros(S, self.cfg.t_seg, RB, N)
        out[:, -1] = p_true
        return out.reshape(S * self.cfg.t_seg, RB, N)[:T]

    def scripted_rewards(self, batch: Batch, next_obs: torch.Tensor) -> torch.Tensor:
        """``[T, RB, N]``: each agent's subtask reward of its current skill (kind
        ``scripted``; ``SKILL_REWARDS``), zero after the episode's end."""
        ev = batch.events
        advance = (next_obs[..., OBS_OWN_Z] - batch.obs[..., OBS_OWN_Z]) * batch.mask[..., None]
        parts = {"score": ev["goal"], "steal": ev["steal"] + ev["interception"],
                 "pass": ev["pass_made"], "advance": advance}
        r = torch.stack([parts[SKILL_REWARDS[k]] for k in range(self.K)], -1)
        return r.gather(-1, batch.extra["z"][..., None])[..., 0]

    def low_rewards(self, batch: Batch, seg: dict[str, torch.Tensor],
                    next_obs: torch.Tensor) -> torch.Tensor:
        """``R_L [T, RB, N]`` of the low level by kind (module docstring)."""
        if self.variant == "scripted":
            return self.scripted_rewards(batch, next_obs)
        T, RB = batch.mask.shape
        a = torch.from_numpy(np.repeat(self.alpha, RB // self.R)).to(self.dtype)[:, None]
        return a * batch.env_rewards + (1 - a) * self.intrinsic(seg, T)

    def done_steps(self, mask: torch.Tensor) -> torch.Tensor:
        """``[T, RB]``: the step ended its episode by the game's own termination (the step
        cap's last step counts as cut off with ``bootstrap_time_limit``)."""
        done = mask * (1 - next_step(mask))
        if self.cfg.bootstrap_time_limit:
            done = torch.cat([done[:-1], torch.zeros_like(done[-1:])])
        return done

    # ----------------------------------------------------------------------- training
    def iterate(self) -> dict[str, np.ndarray]:
        """Play ``batch`` episodes per replica, store both levels' transitions, ``updates`` low-
        and ``high_updates`` high-level minibatches, the decoder's steps, and every
        ``alpha.every`` iterations HSD's evaluation and the alpha curriculum."""
        cfg = self.cfg
        batch = self.play(self.game, self.epsilon(), cfg.batch, self.rng, self.act_rng)
        T, RB = batch.mask.shape
        seg = self.segments(batch)
        next_obs = torch.cat([batch.obs[1:], batch.final["obs"][None]])
        done = self.done_steps(batch.mask)

        # low level: one transition per agent and step
        low = {"obs": batch.obs, "z": batch.extra["z"], "actions": batch.actions,
               "rewards": self.low_rewards(batch, seg, next_obs), "next_obs": next_obs,
               "done": done}
        fields = {k: replica_major(v, self.R) for k, v in low.items()}
        self.replay_lo.add(*split_agents(fields, replica_major(batch.mask, self.R) > 0, self.N,
                                         ("obs", "z", "actions", "rewards", "next_obs")))
        # high level: one joint transition per segment that began
        self.replay_hi.add(*self.high_transitions(batch, seg, done))

        learned: dict[str, list[np.ndarray]] = {}
        for _ in range(cfg.updates):
            learned.setdefault("low_td_loss", []).append(self.train_low())
        for _ in range(cfg.high_updates):
            loss, q_tot = self.train_high()
            learned.setdefault("high_td_loss", []).append(loss)
            learned.setdefault("q_tot", []).append(q_tot)
        steps = self.train_decoder(seg)
        out = self.metrics(batch, seg)
        self.iteration += 1
        if self.variant == "hsd" and self.iteration % cfg.alpha.every == 0:
            ev = self.evaluate(cfg.alpha.episodes)  # a game without win events: no change
            self.alpha = anneal(self.alpha, ev.get("win_rate", np.zeros(self.R)), cfg.alpha)
        out.update({k: np.mean(v, 0) for k, v in learned.items()})
        out["decoder_steps"] = steps
        out["alpha"] = self.alpha.copy()
        return out

    def high_transitions(self, batch: Batch, seg: dict[str, torch.Tensor],
                         done: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Replica-major high-level transitions ``[R, S*B, ...]`` and which are valid (the
        segment began before the episode's end): state, observations, skills, SMDP reward,
        next state and observations (``t_seg`` steps later, or after the last step), done
        (the episode ended inside the segment by the game's termination)."""
        cfg = self.cfg
        T, RB = batch.mask.shape
        S = -(-T // cfg.t_seg)
        starts = torch.arange(S) * cfg.t_seg
        after = torch.clamp(starts + cfg.t_seg, max=T)
        obs = torch.cat([batch.obs, batch.final["obs"][None]])
        state = torch.cat([batch.extra["state"], batch.final["state"][None]])
        team = self.game.team_reward(batch.env_rewards)
        pad = S * cfg.t_seg - T
        ended = torch.cat([done, done.new_zeros(pad, RB)]).reshape(S, cfg.t_seg, RB).amax(1)
        fields = {"obs": obs[starts], "state": state[starts], "z": seg["z"],
                  "reward": smdp_reward(team, cfg.t_seg, cfg.gamma, cfg.smdp),
                  "next_obs": obs[after], "next_state": state[after], "done": ended}
        return ({k: replica_major(v, self.R) for k, v in fields.items()},
                replica_major(seg["start"], self.R) > 0)

    def train_low(self) -> np.ndarray:
        """One minibatch of the low level (eqs. 4.7-4.8), then its soft target."""
        mb = self.replay_lo.sample(self.train_rng, self.cfg.minibatch)
        with torch.no_grad():
            y = iql_target(self.low_rows(self.q_lo_t, mb["next_obs"], mb["agent"], mb["z"]),
                           mb["rewards"], mb["done"], self.cfg.gamma)
        loss, _ = iql_loss(self.low_rows(self.q_lo, mb["obs"], mb["agent"], mb["z"]),
                           mb["actions"], y)
        self.opt_lo.zero_grad()
        loss.sum().backward()
        self.opt_lo.step()
        self.q_lo_t = soft_update(self.q_lo_t, self.q_lo, self.cfg.tau)
        return loss.detach().numpy()

    def train_high(self) -> tuple[np.ndarray, np.ndarray]:
        """One QMIX minibatch of the high level (eqs. 4.5-4.6), then its soft targets."""
        mb = self.replay_hi.sample(self.train_rng, self.cfg.minibatch)
        with torch.no_grad():
            y = qmix_target(self.mixer_shape, self.mixer_t, self.high_q(self.q_hi_t,
                                                                        mb["next_obs"]),
                            mb["next_state"], mb["reward"], mb["done"], self.cfg.gamma)
        q = self.high_q(self.q_hi, mb["obs"]).gather(-1, mb["z"][..., None].long())[..., 0]
        loss, q_tot = qmix_loss(self.mixer_shape, self.mixer, q, mb["state"], y)
        self.opt_hi.zero_grad()
        loss.sum().backward()
        self.opt_hi.step()
        self.q_hi_t = soft_update(self.q_hi_t, self.q_hi, self.cfg.tau)
        self.mixer_t = soft_update(self.mixer_t, self.mixer, self.cfg.tau)
        return loss.detach().numpy(), q_tot.detach().mean(1).numpy()

    def train_decoder(self, seg: dict[str, torch.Tensor]) -> np.ndarray:
        """Add the complete segments to each replica's dataset; one Adam step per
        ``decoder_batch`` segments a replica holds, on those, which then leave it. Returns the
        steps taken per replica ``[R]``."""
        nb = self.cfg.decoder_batch
        tau = replica_major(seg["tau"], self.R).flatten(1, 2)  # [R, S*B*N, L, F]
        z = replica_major(seg["z"], self.R).flatten(1, 2)
        full = replica_major(seg["full"][..., None].expand(*seg["z"].shape), self.R)
        full = full.flatten(1, 2) > 0
        for r in range(self.R):
            rows = full[r].nonzero().squeeze(1)
            n, m = self.data_n[r], len(rows)
            self.data_tau[r, n:n + m] = tau[r, rows]
            self.data_z[r, n:n + m] = z[r, rows]
            self.data_n[r] = n + m
        steps = np.zeros(self.R)
        while max(self.data_n) >= nb:
            active = torch.tensor([n >= nb for n in self.data_n])
            self.opt_dec.zero_grad()
            logits = self.decoder_shape.apply(self.decoder, self.data_tau[:, :nb])
            ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1),
                                                   self.data_z[:, :nb].flatten(),
                                                   reduction="none").reshape(self.R, nb)
            ce.mean(1).sum().backward()
            self.opt_dec.step(active)
            self.opt_dec.zero_grad()
            for r in np.flatnonzero(active.numpy()):
                n = self.data_n[r]
                self.data_tau[r, :n - nb] = self.data_tau[r, nb:n].clone()
                self.data_z[r, :n - nb] = self.data_z[r, nb:n].clone()
                self.data_n[r] = n - nb
                steps[r] += 1
        return steps

    # ----------------------------------------------------------------------- metrics
    def metrics(self, batch: Batch, seg: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Per replica means over the batch's episodes (module docstring)."""
        R = self.R
        per = lambda x: episode_mean(x, R)  # noqa: E731
        ret = per(batch.env_rewards)
        out = {"return": ret, "collective": ret.sum(-1), "length": per(batch.mask)}
        for k, v in batch.events.items():
            out[k] = per(v)
        out.update(team_metrics(batch, self.game, R))
        z = torch.nn.functional.one_hot(batch.extra["z"], self.K).to(self.dtype)
        z = z * batch.mask[..., None, None]
        for k in range(self.K):
            out[f"skill_{k}"] = per(z[..., k])
        full = seg["full"][..., None].expand(*seg["z"].shape)
        p_true = seg["p"].gather(-1, seg["z"][..., None])[..., 0]
        right = (seg["p"].argmax(-1) == seg["z"]).to(self.dtype)
        ce = -torch.log(p_true.clamp(min=1e-12))
        sums = {k: per_replica(v * full, R, lambda a: a.sum()) for k, v in
                (("right", right), ("p", p_true), ("ce", ce), ("n", torch.ones_like(p_true)))}
        n = np.maximum(sums["n"], 1.0)
        out.update(decoder_accuracy=sums["right"] / n, intrinsic=sums["p"] / n,
                   decoder_ce=sums["ce"] / n)
        return out

    @torch.no_grad()
    def evaluate(self, episodes: int, game: Game | None = None,
                 fixed_skills: dict[int, int] | None = None) -> dict[str, np.ndarray]:
        """Play ``episodes`` per replica greedily at both levels from the evaluation streams
        of this iteration (training unchanged); ``game``: another game of the same sizes
        (e.g. with scripted teammates, Table 4.1); ``fixed_skills``: agent -> skill it holds
        throughout. Metrics as ``iterate``'s, with ``alpha``."""
        for n, k in (fixed_skills or {}).items():
            if not (0 <= n < self.N and 0 <= k < self.K):
                raise ValueError(f"hsd: fixed skill {k} of agent {n} is out of range (agents "
                                 f"0..{self.N - 1}, skills 0..{self.K - 1})")
        key = (self.iteration, episodes)
        plain = game is None and not fixed_skills
        if plain and self._eval is not None and self._eval[0] == key:
            out = {k: v.copy() for k, v in self._eval[1].items()}
        else:
            rng = ReplicaRNG.from_seeds(self.seeds, "eval/env", self.iteration)
            act = ReplicaRNG.from_seeds(self.seeds, "eval/act", self.iteration)
            batch = self.play(game or self.game, 0.0, episodes, rng, act, fixed_skills)
            out = self.metrics(batch, self.segments(batch))
            if plain:
                self._eval = (key, {k: v.copy() for k, v in out.items()})
        out["alpha"] = self.alpha.copy()
        return out

    # ---------------------------------------------------------------------- mesa face
    def decide(self, params: dict[str, Params], obs_env: np.ndarray, given_cum: Any,
               eps: float, legal: Any = None) -> Decision:
        """One step of a batch-1 world (``learners.brains.TeamPolicy``): skills every
        ``t_seg`` calls since ``start_episode``."""
        if self._mesa is None:
            self._mesa = _Skills(self, self.game, None, self.act_rng)
        return self._mesa.decide(params, obs_env, given_cum, eps)

    def start_episode(self) -> None:
        """A new episode in the Mesa face: skills are chosen at its first step."""
        self._mesa = None

    def add_given(self, given_cum: Any, pay: Any) -> Any:
        return given_cum

    def reseed_actions(self, seed: int) -> None:
        self.act_rng = ReplicaRNG([make_rng(seed, "act")])
        self._mesa = None

    def replica(self, r: int) -> HSDTrainer:
        """A one-replica trainer holding replica ``r`` (its networks, for acting)."""
        one = replica_copy(self, r)
        one.replay_hi = Replay(1, self.cfg.replay_high)
        one.replay_lo = Replay(1, self.cfg.replay_low)
        one.data_tau, one.data_z = self.data_tau[r:r + 1].clone(), self.data_z[r:r + 1].clone()
        one.data_n, one.alpha = [self.data_n[r]], self.alpha[r:r + 1].copy()
        one.opt_hi = one.opt_lo = one.opt_dec = None
        one._mesa, one._eval = None, None
        return one

    # -------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "nets": {n: {k: v.detach().clone() for k, v in getattr(self, n).items()}
                     for n in self.nets},
            "optimisers": {"hi": copy.deepcopy(self.opt_hi.state_dict()),
                           "lo": copy.deepcopy(self.opt_lo.state_dict()),
                           "decoder": self.opt_dec.state_dict()},
            "rng": self.rng.get_state(), "act_rng": self.act_rng.get_state(),
            "train_rng": self.train_rng.get_state(),
            "replay_hi": self.replay_hi.state_dict(), "replay_lo": self.replay_lo.state_dict(),
            "dataset": {"tau": self.data_tau.clone(), "z": self.data_z.clone(),
                        "n": list(self.data_n)},
            "alpha": torch.from_numpy(self.alpha.copy()),
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = state["iteration"]
        for n in self.nets:
            setattr(self, n, detach(state["nets"][n]))
        self.make_optimisers()
        self.opt_hi.load_state_dict(copy.deepcopy(state["optimisers"]["hi"]))
        self.opt_lo.load_state_dict(copy.deepcopy(state["optimisers"]["lo"]))
        self.opt_dec.load_state_dict(state["optimisers"]["decoder"])
        self.rng.set_state(state["rng"])
        self.act_rng.set_state(state["act_rng"])
        self.train_rng.set_state(state["train_rng"])
        self.replay_hi.load_state_dict(state["replay_hi"])
        self.replay_lo.load_state_dict(state["replay_lo"])
        data = state["dataset"]
        self.data_tau, self.data_z = data["tau"].clone(), data["z"].clone()
        self.data_n = list(data["n"])
        self.alpha = state["alpha"].numpy().astype(np.float64).copy()
        self._mesa, self._eval = None, None

