"""The rollout driver: the one loop that plays a game with learners' choices.

Every trainer built on it (``learners.pg.PGTrainer`` and its family; the multi-goal learners
of chapter 3, ``learners.multigoal``) plays its episodes through :func:`play`, so the loop
around a game (exploration, incentive transfers, masks after an episode ends, per-agent
events) is written once. What a trainer supplies is an :class:`Actor`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from econsim.core import Game, ReplicaRNG
from econsim.core.capabilities import ActionMask, has
from econsim.core.timing import outermost

F = TypeVar("F", bound=Callable[..., Any])
_RECORDERS: list[dict[str, float]] = []  # active ``recording()`` contexts
_DEPTH = [0]  # rollouts in progress (a rollout inside another counts once)


@contextlib.contextmanager
def recording() -> Iterator[dict[str, float]]:
    """While inside, the rollouts (functions marked :func:`timed_rollout`) add their wall time
    to the yielded ``{"rollout_s": ...}`` (games and inference together); ``econsim bench
    --train`` separates inference from the update with it. Costs nothing outside."""
    rec = {"rollout_s": 0.0}
    _RECORDERS.append(rec)
    try:
        yield rec
    finally:
        _RECORDERS.remove(rec)


def timed_rollout(fn: F) -> F:
    """Mark a trainer's rollout (the loop that plays episodes) for :func:`recording`; nested
    rollouts count once."""

    def record(seconds: float, args: tuple) -> None:
        for rec in _RECORDERS:
            rec["rollout_s"] += seconds

    timed = outermost(fn, _DEPTH, record)

    @functools.wraps(fn)
    def marked(*args: Any, **kwargs: Any) -> Any:
        return (timed if _RECORDERS else fn)(*args, **kwargs)

    return marked  # type: ignore[return-value]


@dataclass
class Batch:
    """A batch of episodes in world layout ``[T, R*B, N, ...]`` (torch)."""

    obs: torch.Tensor  # [T, RB, N, D] policy observations (augmented)
    actions: torch.Tensor  # [T, RB, N] policy action index (joint with give bits for pg-d)
    env_actions: torch.Tensor  # [T, RB, N]
    give_u: torch.Tensor | None  # [T, RB, N, N-1] pre-squash samples of pg-c agents
    env_rewards: torch.Tensor  # [T, RB, N] extrinsic rewards (0 after the end)
    transfers: torch.Tensor  # [T, RB, N, N] incentives paid i -> j (0 after the end)
    mask: torch.Tensor  # [T, RB]
    extra: dict[str, torch.Tensor]  # algorithm-specific per-step records
    #: per-agent game events from ``info`` (numeric/bool ``[RB, N]`` arrays), ``[T, RB, N]``,
    #: zero after the end; summed per episode into the metrics (e.g. Cleanup's apples)
    events: dict[str, torch.Tensor] = field(default_factory=dict)
    #: with ``play(..., final=True)``: the observation (``"obs"``, ``[RB, N, D]``), the
    #: incentives given in the episode (``"given"``, ``[RB, N, N-1]``) and the state records
    #: after the last step, what a learner bootstraps from at the time limit (and
    #: ``"legal"``, the actions allowed then, in a game with an action mask)
    final: dict[str, torch.Tensor] = field(default_factory=dict)
    #: the actions each agent was allowed (``[T, RB, N, A]`` bool) in a game with an action
    #: mask (capability ``ActionMask``), else None
    legal: torch.Tensor | None = None


@dataclass
class Decision:
    """Every agent's choice in one step (world layout ``[RB, N, ...]``)."""

    obs: torch.Tensor  # policy observations the actions were chosen from
    actions: torch.Tensor  # policy action index
    env_actions: torch.Tensor  # the game's action
    give_u: torch.Tensor | None  # pre-squash continuous incentives (pg-c)
    pay: torch.Tensor  # [RB, N, N] incentives paid i -> j this step
    extra: dict[str, torch.Tensor]  # algorithm-specific records


class Actor(Protocol):
    """What :func:`play` calls on a trainer."""

    game: Game
    R: int  #: replicas (seeds) side by side
    N: int  #: agents per world
    dtype: torch.dtype
    rng: ReplicaRNG  #: the games' draws

    def decide(self, params: Any, obs_env: np.ndarray, given_cum: torch.Tensor,
               eps: float, legal: torch.Tensor | None = None) -> Decision:
        """One step's choices in ``R*B`` worlds; ``legal [RB, N, A]`` bool, the actions the
        game allows this step (capability ``ActionMask``; None: all), which an actor that
        honours masks never picks outside of."""
        ...

    def add_given(self, given_cum: torch.Tensor, pay: torch.Tensor) -> torch.Tensor:
        """Incentives given so far this episode after paying ``pay``."""
        ...

    def record_state(self, state: Any) -> dict[str, torch.Tensor]:
        """Records of the game state before the agents act (``batch.extra``)."""
        ...


@timed_rollout
@torch.no_grad()
def play(actor: Actor, params: Any, eps: float, batch: int, final: bool = False) -> Batch:
    """Play ``batch`` episodes per replica with ``params``; world-layout records (``final``:
    also the observation and state records after the last step, ``Batch.final``).

    Always ``max_steps`` steps (finished worlds are masked): stopping when every world is
    done would make one replica's draws depend on its neighbours' episode lengths. In a game
    with an action mask the actor is told each step's legal actions, and they are recorded
    (``Batch.legal``)."""

    game, RB = actor.game, actor.R * batch
    masked = has(game, ActionMask)
    state = game.reset(RB, actor.rng)
    obs_env = game.observe(state)
    given_cum = torch.zeros(RB, actor.N, actor.N - 1)
    alive = torch.ones(RB)
    rows: dict[str, list] = {k: [] for k in
                             ("obs", "actions", "env_actions", "give_u", "env_rewards",
                              "transfers", "mask", "legal")}
    extra: dict[str, list] = {}
    events: dict[str, list] = {}
    for _ in range(game.max_steps):
        for k, v in actor.record_state(state).items():
            extra.setdefault(k, []).append(v)
        legal = torch.from_numpy(game.action_mask(state)) if masked else None
        d = (actor.decide(params, obs_env, given_cum, eps, legal=legal) if masked
             else actor.decide(params, obs_env, given_cum, eps))
        step = game.step(state, d.env_actions.numpy(), actor.rng)
        pay = d.pay * alive[:, None, None]
        given_cum = actor.add_given(given_cum, pay)
        for k, v in (("obs", d.obs), ("actions", d.actions), ("env_actions", d.env_actions),
                     ("give_u", d.give_u), ("transfers", pay), ("mask", alive),
                     ("legal", legal)):
            rows[k].append(v)
        reward = torch.from_numpy(step.reward).to(actor.dtype)
        rows["env_rewards"].append(reward * alive[:, None])
        for k, v in d.extra.items():
            extra.setdefault(k, []).append(v)
        for k, v in (step.info or {}).items():  # per-agent events, e.g. apples collected
            if (isinstance(v, np.ndarray) and v.shape == (RB, actor.N)
                    and (v.dtype.kind in "biuf")):
                events.setdefault(k, []).append(
                    torch.from_numpy(v.astype(np.float32)) * alive[:, None])
        alive = alive * (1.0 - torch.from_numpy(step.done).to(actor.dtype))
        state, obs_env = step.state, step.obs
    stacked = {k: (torch.stack(v) if v[0] is not None else None) for k, v in rows.items()}
    last = ({"obs": torch.from_numpy(np.asarray(obs_env, np.float32)).to(actor.dtype),
             "given": given_cum, **actor.record_state(state)} if final else {})
    if final and masked:
        last["legal"] = torch.from_numpy(game.action_mask(state))
    return Batch(extra={k: torch.stack(v) for k, v in extra.items()},
                 events={k: torch.stack(v) for k, v in events.items()
                         if len(v) == len(rows["mask"])}, final=last, **stacked)

