"""Shared parts of the chapter-3 learners (CM3, its ablations, IAC, COMA, QMIX) and of the
flat chapter-4 baselines (QMIX, IQL on STS2).

The games are cooperative multi-goal Markov games (capability ``MultiGoal``): each agent
``n`` has its own goal ``g^n`` and reward ``R^n``, observes ``[o_self, g^n, o_others]``, and a
central critic may see the global state ``s = (s_env, s^1, ..., s^N)``. All learners here
share one actor over the agents (parameter sharing with the goal as input, Diss §3.3.5), one
member per replica (seed) in the stacked networks of ``learners.nets``. A learner that also
plays a cooperative game with a flat global state (capability ``GlobalState``, e.g. STS2's
34 numbers; QMIX, IQL) lists it in ``games``: the harness then records ``state [B, D]`` each
step instead of ``(s_env, s_ag)``, and the metrics add the team's return and, where the game
reports ``win``/``lose``/``draw`` events, the rates of each outcome (:func:`team_metrics`).

What lives here, used by every learner of the chapter:

* :class:`MultiGoalConfig`, the shared hyperparameters (Tables A.3 and A.5): episodes per
  iteration, minibatch updates per iteration, replay (on-policy: the iteration's episodes,
  cleared after training; off-policy: a ring buffer), learning rates, ``gamma``, ``tau`` and
  the exploration schedule of ``pi_eps = (1 - eps) pi + eps/|A|`` (Diss A.8);
* :class:`Replay`, transitions per replica (a replica samples only its own);
* :class:`Transitions`, named fields of a minibatch and the critics' input builders;
* :class:`MultiGoalTrainer`, the harness: acting through the rollout driver
  (``learners.rollout.play``) with the global state recorded each step, minibatches, target
  networks, evaluation, metrics, checkpoints, and acting in the Mesa face (``act_one``).
  A learner supplies its networks and its ``train_step``.

Exploration is annealed per iteration (``epsilon``: ``LinearSchedule`` over iterations);
Tables A.3-A.5 give ``eps_div`` in episodes, which is ``steps * batch``.

In a game with an action mask (capability ``ActionMask``, e.g. SUMO with ``ttc_mask``) the
rollout driver hands each step's legal actions to the actor and records them: behaviour
probabilities are 0 outside them, ``pi_eps = (1 - eps) pi + eps / |legal|`` over the
allowed actions with ``pi`` renormalised over them, the updates use the same masked policy,
and Q-learners' targets take the best allowed next action. Rows where the mask allows every
action keep the numbers of a game without a mask (``where_masked``).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from econsim.bounds import (
    Episodes,
    Fraction,
    Hidden,
    Iterations,
    Kinds,
    LearningRate,
    Minibatches,
)
from econsim.core import Game, ReplicaRNG, make_rng
from econsim.core.capabilities import Capability, GlobalState, MultiGoal, has
from learners.contract import TrainerConfig, TrainerTraits
from learners.functional import behaviour_probs, next_step
from learners.nets import AugmentedMLP, Params, Stem, detach, soft_update
from learners.pg import LinearSchedule
from learners.replicas import categorical, episode_mean
from learners.rollout import Batch, Decision, play

__all__ = ["MultiGoalConfig", "MultiGoalTrainer", "Replay", "Transitions", "one_hot",
           "others_index", "replica_copy", "split_agents", "team_metrics"]

#: names of the global-state records of a step: a multi-goal game's parts, or a flat state
STATE_KEYS = ("s_env", "s_ag", "state")
#: the transitions' action masks (a game with capability ``ActionMask``)
MASKS = ("legal", "next_legal")
#: Diss A.8.3's convolutions (filters, (kh, kw)): on the observation window o_self_T (actor,
#: critics, IAC's V; the actor's then into ``WINDOW_DENSE`` units) and on the item grid s_T
WINDOW_CONV, GRID_CONV, WINDOW_DENSE = (6, (3, 3)), (4, (3, 5)), 32
#: per-agent episode-outcome events (1 for every agent of the team on the last step)
OUTCOMES = ("win", "lose", "draw")


def _shapes(params: Params) -> dict[str, tuple[int, ...]]:
    """Each parameter's shape, by name (a network's layout)."""
    return {k: tuple(v.shape) for k, v in params.items()}


def where_masked(legal: torch.Tensor | None, plain: torch.Tensor,
                 masked: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Behaviour probabilities under a game's action mask ``legal [..., A]``: ``masked()``
    in the rows where the mask forbids an action, ``plain`` (those without a mask) where it
    allows all, so that such rows, and a replica whose mask never bites, get the very numbers
    of a game without a mask, whatever other rows hold."""
    if legal is None or bool(legal.all()):  # the same numbers as torch.where would give
        return plain
    return torch.where(legal.all(-1, keepdim=True), plain, masked())


def one_hot(a: torch.Tensor, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer actions ``[...]`` -> one-hots ``[..., n]``."""
    return torch.nn.functional.one_hot(a.long(), n).to(dtype)


# ------------------------------------------------------------------------------ config
class MultiGoalConfig(TrainerConfig):
    """Hyperparameters shared by the chapter-3 learners (Diss Tables A.3, A.5; SPEC §7b).

    Defaults are cooperative navigation's (Table A.3); Checkers scenarios set theirs.
    """

    agents: Kinds | None = Field(None, description="kind of each agent (all the same)")
    batch: Episodes = Field(10, description="episodes per replica per iteration (Diss: "
                            "episodes per train, 10)")
    updates: Minibatches = Field(24, description="minibatch updates per iteration (on-policy: "
                                 "the Diss's epochs, 24; off-policy: episode steps / 10)")
    minibatch: Minibatches = Field(128, description="transitions per minibatch")
    replay: Iterations | None = Field(
        None, description="off-policy replay capacity in transitions per replica (Checkers: "
        "1e4); none: on-policy, the iteration's episodes, cleared after training")
    hidden: Hidden = Field([64, 64], description="base layers of actor and critics (the last "
                           "is the special layer h* that augmentation joins)")
    branch: Hidden = Field([128], description="layers of the actor's o_others branch")
    lr_actor: LearningRate = Field(1e-4, description="actor learning rate (Adam)")
    lr_critic: LearningRate = Field(1e-3, description="critic learning rate (Adam)")
    gamma: Fraction = Field(0.99, description="discount factor")
    tau: Fraction = Field(0.01, description="soft target update rate")
    epsilon: LinearSchedule = Field(
        LinearSchedule(start=1.0, end=0.05, steps=8000),
        description="exploration lower bound eps per iteration (Diss A.8, Table A.3)")
    bootstrap_time_limit: bool = Field(
        True, description="the last step of an episode cut by the step cap bootstraps from the "
        "state after it, as Algorithm 6's targets always do; false: it counts as terminal")
    conv: bool = Field(
        True, description="where the game's observation window and item grid are images "
        "(Checkers), the convolutions of Diss A.8.3 (stride 1, no padding): the actor's "
        "conv(6, 3x3) on the window then a 32-unit layer, CM3's critics' conv(4, 3x5) on the "
        "grid s_T and conv(6, 3x3) on the window, IAC's V's conv(6, 3x3) on the window (COMA's "
        "Q and QMIX stay dense); false: dense layers on the flat images (econsim before "
        "2026-12-03)")


# ------------------------------------------------------------------------------ replay
class Replay:
    """Transitions per replica: ``fields [R, capacity, ...]`` written as a ring.

    ``add`` takes each replica's valid transitions of a batch; ``sample`` draws each
    replica's minibatch uniformly from its own transitions with its own stream, so a
    replica's samples never depend on another's.
    """

    def __init__(self, R: int, capacity: int) -> None:
        self.R, self.capacity = R, capacity
        self.data: dict[str, torch.Tensor] = {}
        self.size = [0] * R
        self.ptr = [0] * R

    def clear(self) -> None:
        self.size, self.ptr = [0] * self.R, [0] * self.R

    def add(self, fields: dict[str, torch.Tensor], valid: torch.Tensor) -> None:
        """``fields [R, M, ...]``, ``valid [R, M]`` bool: append each replica's valid rows."""
        if not self.data:
            self.data = {k: torch.zeros(self.R, self.capacity, *v.shape[2:], dtype=v.dtype)
                         for k, v in fields.items()}
        for k in MASKS:  # transitions stored before the game had a mask allowed everything
            if k in fields and k not in self.data:
                self.data[k] = torch.ones(self.R, self.capacity, *fields[k].shape[2:],
                                          dtype=torch.bool)
        for r in range(self.R):
            rows = valid[r].nonzero().squeeze(1)[-self.capacity:]
            n = len(rows)
            at = (self.ptr[r] + torch.arange(n)) % self.capacity
            for k, v in fields.items():
                self.data[k][r, at] = v[r, rows]
            self.ptr[r] = (self.ptr[r] + n) % self.capacity
            self.size[r] = min(self.size[r] + n, self.capacity)

    def sample(self, rng: ReplicaRNG, n: int) -> dict[str, torch.Tensor]:
        """``n`` transitions per replica, ``[R, n, ...]``."""
        u = torch.from_numpy(rng.random((self.R * n,))).reshape(self.R, n)
        idx = (u * torch.tensor(self.size, dtype=torch.float64)[:, None]).long()
        idx = idx.clamp(max=self.capacity - 1)
        rows = torch.arange(self.R)[:, None]
        return {k: v[rows, idx] for k, v in self.data.items()}

    def state_dict(self) -> dict:
        return {"data": {k: v.clone() for k, v in self.data.items()},
                "size": list(self.size), "ptr": list(self.ptr)}

    def load_state_dict(self, state: dict) -> None:
        self.data = {k: v.clone() for k, v in state["data"].items()}
        self.size, self.ptr = list(state["size"]), list(state["ptr"])


# ------------------------------------------------------------------------- transitions
@dataclass
class Transitions:
    """A minibatch ``[R, S, ...]`` of one game's transitions, with the input builders of the
    critics (Diss A.8). ``obs``/``next_obs [R, S, N, D]``, ``s_env [R, S, E]``, ``s_ag [R, S,
    N, K]`` (and ``next_*``), ``actions [R, S, N]``, ``rewards [R, S, N]``, ``done [R, S]``."""

    game: Any
    data: dict[str, torch.Tensor]

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self.__dict__["data"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def N(self) -> int:
        return self.data["actions"].shape[-1]

    def parts(self, nxt: bool = False) -> tuple[torch.Tensor, ...]:
        """``(o_self, goal, o_others, s_env, s_ag)`` of the states or next states (a
        ``MultiGoal`` game)."""
        p = "next_" if nxt else ""
        obs = self.data[p + "obs"]
        o_self, goal, others = self.game.split(obs)
        return o_self, goal, others, self.data[p + "s_env"], self.data[p + "s_ag"]

    def state(self, nxt: bool = False) -> torch.Tensor:
        """The flat global state ``[R, S, state_size]`` of the states or next states (a
        ``GlobalState`` game)."""
        return self.data[("next_" if nxt else "") + "state"]

    def legal(self, nxt: bool = False) -> torch.Tensor | None:
        """The actions each agent was allowed in the states or next states, ``[R, S, N, A]``
        bool (IQL's agent transitions: ``[R, S, A]``), in a game with an action mask
        (capability ``ActionMask``), else None."""
        return self.data.get(("next_" if nxt else "") + "legal")


def split_agents(fields: dict[str, torch.Tensor], valid: torch.Tensor, N: int,
                 per_agent: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Joint transitions ``[R, M, ...]`` as one transition per agent ``[R, M*N, ...]`` (row
    ``m*N + n``: agent ``n`` of joint row ``m``), for independent learners. Fields in
    ``per_agent`` are ``[R, M, N, ...]`` and are split; the others (``done``) are the same for
    every agent and repeated; ``agent [R, M*N]`` is the agent's index."""
    R, M = valid.shape
    out = {k: (v.reshape(R, M * N, *v.shape[3:]) if k in per_agent
               else v.repeat_interleave(N, 1)) for k, v in fields.items()}
    out["agent"] = torch.arange(N).repeat(R, M)
    return out, valid.repeat_interleave(N, 1)


def others_index(N: int) -> torch.Tensor:
    """``[N, N-1]``: row n lists the agents other than n in index order."""
    return torch.tensor([[j for j in range(N) if j != n] for n in range(N)],
                        dtype=torch.long).reshape(N, N - 1)


# ------------------------------------------------------------------------------ player
class _Player:
    """An ``learners.rollout.Actor`` playing one game with a trainer's actor network."""

    def __init__(self, trainer: MultiGoalTrainer, game: Game, rng: ReplicaRNG,
                 act_rng: ReplicaRNG) -> None:
        self.trainer, self.game, self.rng, self.act_rng = trainer, game, rng, act_rng
        self.R, self.N, self.dtype = trainer.R, game.n_agents, trainer.dtype

    def decide(self, params: Params, obs_env: np.ndarray, given_cum: torch.Tensor,
               eps: float, legal: torch.Tensor | None = None) -> Decision:
        obs = torch.from_numpy(np.ascontiguousarray(obs_env, np.float32)).to(self.dtype)
        RB = obs.shape[0]
        probs = self.trainer.policy(
            params, obs.reshape(self.R, RB // self.R, self.N, -1), eps,
            None if legal is None else legal.reshape(self.R, RB // self.R, self.N, -1))
        actions = categorical(self.act_rng, probs.reshape(RB, self.N, -1))
        return Decision(obs, actions, actions, None, torch.zeros(RB, self.N, self.N), {})

    def add_given(self, given_cum: torch.Tensor, pay: torch.Tensor) -> torch.Tensor:
        return given_cum

    def record_state(self, state: Any) -> dict[str, torch.Tensor]:
        return global_state(self.game, state, self.dtype)


def global_state(game: Game, state: Any, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The global-state records of a step: ``s_env``, ``s_ag`` of a ``MultiGoal`` game, else
    ``state`` (capability ``GlobalState``)."""
    if has(game, MultiGoal):
        s_env, s_ag = game.global_state(state)
        return {"s_env": torch.from_numpy(np.asarray(s_env, np.float32)).to(dtype),
                "s_ag": torch.from_numpy(np.asarray(s_ag, np.float32)).to(dtype)}
    return {"state": torch.from_numpy(np.asarray(game.global_state(state), np.float32)).to(dtype)}


def team_metrics(batch: Batch, game: Game, R: int) -> dict[str, np.ndarray]:
    """Per replica ``[R]`` metrics of a team game (``GlobalState``): ``team_return``, the
    team's reward per episode (``game.team_reward``), and for each outcome event the game
    reports (``win``, ``lose``, ``draw``: 1 for every agent of the team on the last step)
    ``<outcome>_rate``, the share of episodes ending so (mean over the agents). Empty for
    other games."""
    if not has(game, GlobalState):
        return {}
    out = {"team_return": episode_mean(game.team_reward(batch.env_rewards), R)}
    for k in OUTCOMES:
        if k in batch.events:
            out[f"{k}_rate"] = episode_mean(batch.events[k], R).mean(-1)
    return out


def replica_copy(trainer: Any, r: int) -> Any:
    """A shallow copy of ``trainer`` holding replica ``r`` only: its networks (the parameter
    dicts named in ``trainer.nets``, sliced and detached) and fresh env, act and train
    streams of seed ``seeds[r]``; what else a one-replica trainer needs is the caller's."""
    one = copy.copy(trainer)
    one.seeds, one.R = [trainer.seeds[r]], 1
    for name in trainer.nets:
        setattr(one, name, detach({k: v[r:r + 1] for k, v in getattr(trainer, name).items()}))
    seed = trainer.seeds[r]
    one.rng = ReplicaRNG([make_rng(seed, "env")])
    one.act_rng = ReplicaRNG([make_rng(seed, "act")])
    one.train_rng = ReplicaRNG([make_rng(seed, "train")])
    return one


# ----------------------------------------------------------------------------- trainer
class MultiGoalTrainer(TrainerTraits, ABC):
    """The harness of the chapter-3 learners (see the module docstring).

    A learner sets ``Config`` and implements ``build(stage)`` (its networks, optimisers and
    targets for the game of that stage), ``train_step(batch)`` (one minibatch update of
    everything it learns; returns metrics ``{name: [R]}``) and ``policy`` (the behaviour
    probabilities of its actor), and lists in ``nets`` the parameter dicts it keeps (for
    checkpoints and ``replica``). ``stage_game()`` is the game being trained on now (CM3's
    stage 1 plays the induced single-agent game).
    """

    Config: ClassVar[type[MultiGoalConfig]] = MultiGoalConfig
    shared_policy = True
    #: names of the parameter dicts of the learner (each ``{name: [R, ...]}``), with targets
    nets: ClassVar[tuple[str, ...]] = ()
    #: names of its torch optimisers
    optimisers: ClassVar[tuple[str, ...]] = ()
    #: the capabilities of the games it plays (one of them): ``MultiGoal`` and, for a learner
    #: that needs no goals, ``GlobalState``
    games: ClassVar[tuple[type[Capability], ...]] = (MultiGoal,)

    def __init__(self, game: Game, config: MultiGoalConfig, seeds: list[int]) -> None:
        if not any(has(game, c) for c in self.games):
            what = "a cooperative multi-goal game (navigation, checkers)" + (
                " or a team game with a global state (sts2)" if GlobalState in self.games
                else "")
            raise ValueError(f"algorithm {self.default_kind!r} needs {what}, not "
                             f"{game.name!r}")
        self.game, self.cfg, self.seeds = game, config, list(seeds)
        self.R, self.N, self.A = len(self.seeds), game.n_agents, game.action_space.n
        self.kinds = list(config.agents or [self.default_kind] * self.N)
        if len(self.kinds) != self.N:
            raise ValueError(f"algorithm.agents lists {len(self.kinds)} agents but {game.name} "
                             f"has {self.N}")
        self.dtype = torch.get_default_dtype()
        self.rng = ReplicaRNG.from_seeds(self.seeds, "env")
        self.act_rng = ReplicaRNG.from_seeds(self.seeds, "act")
        self.train_rng = ReplicaRNG.from_seeds(self.seeds, "train")
        self.iteration = 0
        self.stage = self.first_stage()
        self.build(self.stage)
        self.replay = Replay(self.R, self.capacity())

    # -------------------------------------------------------------------- learner hooks
    def first_stage(self) -> int:
        return 2

    def stage_game(self) -> Game:
        return self.game

    @abstractmethod
    def build(self, stage: int) -> None:
        """Fresh networks, targets and optimisers for ``stage`` of ``stage_game()``."""

    @abstractmethod
    def train_step(self, batch: Transitions) -> dict[str, np.ndarray]:
        """One minibatch update of everything the learner learns; metrics ``{name: [R]}``."""

    @abstractmethod
    def policy(self, params: Params, obs: torch.Tensor, eps: float,
               legal: torch.Tensor | None = None) -> torch.Tensor:
        """Behaviour probabilities ``[R, ..., A]`` for observations ``[R, ..., D]``, zero
        outside ``legal [R, ..., A]`` (a game's action mask; None: every action)."""

    # ------------------------------------------------------------------------- helpers
    def gens(self, role: str) -> list[torch.Generator]:
        from econsim.core import torch_generator

        return [torch_generator(s, role) for s in self.seeds]

    def stage_cfg(self) -> Any:
        """Where ``updates``, ``minibatch`` and ``replay`` of the current stage are read
        (the config; CM3's stage 1 has its own)."""
        return self.cfg

    def capacity(self) -> int:
        """Transitions a replica's buffer holds: the replay size, or one iteration's steps."""
        return self.stage_cfg().replay or self.cfg.batch * self.stage_game().max_steps

    def actor_net(self, game: Game) -> AugmentedMLP:
        """The actor ``pi(a | o_self, g)`` with the o_others branch (Diss A.8; A.8.3: the
        window through conv(6, 3x3) and a 32-unit layer)."""
        return AugmentedMLP(game.self_size + game.goal_size, tuple(self.cfg.hidden), self.A,
                            game.others_size if game.n_agents > 1 else 0,
                            tuple(self.cfg.branch),
                            stems=self.window_stem(game, 0, dense=WINDOW_DENSE))

    def window_stem(self, game: Game, start: int, dense: int = 0) -> tuple[Stem, ...]:
        """A.8.3's conv(6, 3x3) on the observation window ``o_self_T`` found at ``start`` of a
        network's input, with ``conv`` and a game whose ``o_self`` holds an image; else none."""
        if not (self.cfg.conv and game.self_image):
            return ()
        return (Stem(start, tuple(game.self_image), *WINDOW_CONV, dense),)

    def grid_stem(self, game: Game) -> tuple[Stem, ...]:
        """A.8.3's conv(4, 3x5) on the state's item grid ``s_T`` at the start of a critic's
        input, with ``conv`` and a game whose ``s_env`` is an image; else none."""
        if not (self.cfg.conv and game.env_image):
            return ()
        return (Stem(0, tuple(game.env_image), *GRID_CONV),)

    def actor_probs(self, net: AugmentedMLP, params: Params, obs: torch.Tensor,
                    eps: float, legal: torch.Tensor | None = None) -> torch.Tensor:
        """``pi_eps(. | o)`` of the augmented actor for observations ``[R, ..., D]``
        (``legal``: renormalised over the allowed actions, eps spread over them)."""
        o_self, goal, others = self.game.split(obs)
        base = torch.cat([o_self, goal], -1)
        logits = net.apply(params, base, others if "join" in params else None)
        return where_masked(legal, behaviour_probs(logits, eps),
                            lambda: behaviour_probs(logits, eps, legal))

    @staticmethod
    def adam(params: Params, lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(list(params.values()), lr=lr)

    @staticmethod
    def descend(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        opt.zero_grad()
        loss.backward()
        opt.step()

    def soft_targets(self, pairs: list[tuple[str, str]]) -> None:
        """``target <- tau main + (1 - tau) target`` for each ``(target, main)`` name pair."""
        for tgt, main in pairs:
            setattr(self, tgt, soft_update(getattr(self, tgt), getattr(self, main),
                                           self.cfg.tau))

    # ------------------------------------------------------------------------ acting
    def epsilon(self) -> float:
        return self.cfg.epsilon(self.iteration)

    def play(self, game: Game, params: Params, eps: float, episodes: int,
             rng: ReplicaRNG, act_rng: ReplicaRNG) -> Batch:
        return play(_Player(self, game, rng, act_rng), params, eps, episodes, final=True)

    def transitions(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Replica-major transitions ``[R, T*B, ...]`` of a batch and which are valid.

        ``done`` marks a step that ended its episode by the game's own termination; the last
        step of the step cap (index ``T - 1``, the rollout always plays ``max_steps`` steps)
        bootstraps from the state after it (``bootstrap_time_limit``; time is not part of the
        state, so a cut-off is not a terminal state). An episode whose natural end falls on
        the cap's last step is taken as cut off."""
        mask, final = batch.mask, batch.final

        def after(x: torch.Tensor, key: str) -> torch.Tensor:  # x one step later
            return torch.cat([x[1:], final[key][None]]) if key in final else next_step(x)

        done = mask * (1 - next_step(mask))
        if self.cfg.bootstrap_time_limit:
            done = torch.cat([done[:-1], torch.zeros_like(done[-1:])])
        states = [k for k in STATE_KEYS if k in batch.extra]
        fields = {"obs": batch.obs, "actions": batch.actions, "rewards": batch.env_rewards,
                  **{k: batch.extra[k] for k in states}, "next_obs": after(batch.obs, "obs"),
                  **{f"next_{k}": after(batch.extra[k], k) for k in states}, "done": done}
        if batch.legal is not None:  # a game with an action mask
            fields.update(legal=batch.legal, next_legal=after(batch.legal, "legal"))
        T, RB = mask.shape

        def rep(x: torch.Tensor) -> torch.Tensor:
            x = x.reshape(T, self.R, RB // self.R, *x.shape[2:]).transpose(0, 1)
            return x.reshape(self.R, T * (RB // self.R), *x.shape[3:])

        return {k: rep(v) for k, v in fields.items()}, rep(mask) > 0

    def iterate(self) -> dict[str, np.ndarray]:
        """Play ``batch`` episodes per replica, store them, ``updates`` minibatch updates
        (Diss Algorithms 5-7); on-policy learners clear the buffer afterwards."""
        game, eps, cfg = self.stage_game(), self.epsilon(), self.stage_cfg()
        batch = self.play(game, self.params, eps, self.cfg.batch, self.rng, self.act_rng)
        self.replay.add(*self.transitions(batch))
        learned: dict[str, list[np.ndarray]] = {}
        for _ in range(cfg.updates):
            mb = Transitions(game, self.replay.sample(self.train_rng, cfg.minibatch))
            for k, v in self.train_step(mb).items():
                learned.setdefault(k, []).append(v)
        if cfg.replay is None:
            self.replay.clear()
        self.iteration += 1
        out = self.metrics(batch, game)
        out.update({k: np.mean(v, 0) for k, v in learned.items()})
        return out

    @torch.no_grad()
    def evaluate(self, episodes: int, chunk: int | None = None,
                 game: Game | None = None) -> dict[str, np.ndarray]:
        """Play ``episodes`` per replica of the multi-agent game without the exploration floor,
        from evaluation streams of this iteration (training unchanged); ``chunk``: at most
        that many worlds per replica at once (a game of heavy worlds, e.g. SUMO), each chunk
        from its own streams, the metrics averaged over all episodes; ``game``: another game
        of the same sizes instead of the training game (e.g. STS2 with scripted teammates,
        Diss Table 4.1)."""
        game = game or self.game
        chunk = min(chunk or episodes, episodes)
        parts, sizes = [], []
        for k, start in enumerate(range(0, episodes, chunk)):
            n = min(chunk, episodes - start)
            parts.append(self.metrics(self.evaluation_batch(n, k, game), game))
            sizes.append(n)
        if len(parts) == 1:
            return parts[0]
        return {k: sum(p[k] * n for p, n in zip(parts, sizes, strict=True)) / episodes
                for k in parts[0]}

    def evaluation_batch(self, episodes: int, chunk: int = 0,
                         game: Game | None = None) -> Batch:
        """Chunk ``chunk`` of this iteration's evaluation: ``episodes`` greedy episodes per
        replica from its own streams (chunk 0: the plain ones)."""
        key = (self.iteration, chunk) if chunk else (self.iteration,)
        return self.play(game or self.game, self.params, 0.0, episodes,
                         ReplicaRNG.from_seeds(self.seeds, "eval/env", *key),
                         ReplicaRNG.from_seeds(self.seeds, "eval/act", *key))

    def metrics(self, batch: Batch, game: Game) -> dict[str, np.ndarray]:
        """Per replica means over the batch's episodes (``[R]`` / ``[R, N]``). A stage-1
        batch (one agent in the induced game) reports its learner's return for every
        agent; ``stage`` says which stage the numbers come from."""
        per = lambda x: episode_mean(x, self.R)  # noqa: E731
        ret = per(batch.env_rewards)
        widen = (lambda x: np.repeat(x, self.N, 1)) if game.n_agents != self.N else (
            lambda x: x)
        out = {"return": widen(ret), "collective": ret.sum(-1), "length": per(batch.mask),
               "stage": np.full(self.R, float(self.stage))}
        for k, v in batch.events.items():
            out[k] = widen(per(v))
        out.update(team_metrics(batch, game, self.R))
        return out

    # ---------------------------------------------------------------------- mesa face
    @torch.no_grad()
    def act_one(self, obs: np.ndarray, legal: np.ndarray, generator: torch.Generator,
                replica: int = 0, agent: int = 0) -> int:
        """One agent's action from its observation ``[D]`` (the multi-agent game's; the
        agent's index is unused: the goal in the observation tells the agents apart)."""
        params = {k: v[replica:replica + 1] for k, v in self.params.items()}
        x = torch.as_tensor(np.asarray(obs, np.float32)).reshape(1, 1, -1)
        probs = self.policy(params, x, 0.0, torch.as_tensor(np.asarray(legal, bool))[None, None])
        return int(torch.multinomial(probs[0, 0], 1, generator=generator))

    def replica(self, r: int) -> MultiGoalTrainer:
        """A one-replica trainer holding replica ``r`` (its networks, for acting)."""
        one = replica_copy(self, r)
        one.replay = Replay(1, self.capacity())
        for name in self.optimisers:
            setattr(one, name, None)
        return one

    def reseed_actions(self, seed: int) -> None:
        self.act_rng = ReplicaRNG([make_rng(seed, "act")])

    @property
    def params(self) -> Params:
        """The actor's parameters (what acts), ``[R, ...]`` per tensor."""
        return self.actor

    # ---------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration, "stage": self.stage,
            "nets": {n: {k: v.detach().clone() for k, v in getattr(self, n).items()}
                     for n in self.nets},
            "optimisers": {n: copy.deepcopy(getattr(self, n).state_dict())
                           for n in self.optimisers},
            "rng": self.rng.get_state(), "act_rng": self.act_rng.get_state(),
            "train_rng": self.train_rng.get_state(), "replay": self.replay.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = state["iteration"]
        if state["stage"] != self.stage:
            self.stage = state["stage"]
            self.build(self.stage)
            self.replay = Replay(self.R, self.capacity())
        for n in self.nets:
            mine, stored = getattr(self, n), state["nets"][n]
            if isinstance(mine, dict) and _shapes(mine) != _shapes(stored):
                raise ValueError(
                    f"network {n} was stored with other layers than the scenario builds "
                    f"({sorted(set(stored) ^ set(mine)) or 'other sizes'}); a Checkers run "
                    "stored before 2026-12-03 needs conv = false in [algorithm]")
            setattr(self, n, detach(stored))
        self.make_optimisers()
        for n in self.optimisers:
            getattr(self, n).load_state_dict(copy.deepcopy(state["optimisers"][n]))
        self.rng.set_state(state["rng"])
        self.act_rng.set_state(state["act_rng"])
        self.train_rng.set_state(state["train_rng"])
        self.replay.load_state_dict(state["replay"])

    @abstractmethod
    def make_optimisers(self) -> None:
        """(Re)create the optimisers over the current parameter dicts."""

