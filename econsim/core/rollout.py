"""The loop around a game, written once for the trainers and the Mesa face.

* the tax-period protocol (capability ``TaxPeriods``): at the start of each period the
  mechanism's (or planner's) rates are put in force (:func:`period_starts`,
  :func:`start_period`); at its end the mechanism observes the period incomes
  (:func:`end_period`);
* who sees whose current action (:func:`watched`, :func:`seen_actions`, capability
  ``SeesCurrentActions``);
* resetting finished worlds of a batch (:func:`reset_done`).

Incentive transfers between agents are accounted by ``mechanisms.incentives``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from econsim.core.capabilities import SeesCurrentActions, TaxPeriods, has
from econsim.core.game import Game


def period_starts(game: Game, t: int) -> bool:
    """Tax-period protocol: whether step ``t`` of an episode is the first of a tax period
    (capability ``TaxPeriods``; never for a game without taxes)."""
    return has(game, TaxPeriods) and t % game.period_length == 0


def start_period(game: Game, state: Any, rates: np.ndarray) -> tuple[Any, np.ndarray]:
    """Tax-period protocol, start: put this period's ``rates`` (``[K]`` or ``[B, K]``, from
    the mechanism or the planner) in force; returns the state and its new observations."""
    state = game.set_tax_rates(state, rates)
    return state, game.observe(state)


def end_period(mechanism: Any, info: dict[str, np.ndarray], rows: slice = slice(None)) -> None:
    """Tax-period protocol, end: ``mechanism`` observes the period incomes (pre-tax) of the
    worlds ``rows`` whose period ended this step (step ``info``: ``period_end``, ``income``)."""
    if "period_end" not in info:
        return
    done = np.asarray(info["period_end"])[rows]
    if done.any():
        mechanism.observe(np.asarray(info["income"])[rows][done].ravel())


def watched(game: Game) -> tuple[tuple[int, int], ...]:
    """The game's ``(observer, actor)`` pairs (capability ``SeesCurrentActions``), else ()."""
    return tuple(game.sees_current_action) if has(game, SeesCurrentActions) else ()


def seen_action_size(game: Game) -> int:
    """Length of the current-action features ``seen_actions`` appends to each observation."""
    pairs = watched(game)
    if not pairs:
        return 0
    per_observer = max(sum(1 for o, _ in pairs if o == i) for i in range(game.n_agents))
    return per_observer * game.action_space.n


def seen_actions(game: Game, actions: np.ndarray) -> np.ndarray:
    """One-hots of the actions an agent may see before it moves (``sees_current_action``).

    ``actions [B, N]`` -> ``[B, N, seen_action_size(game)]``; rows of agents who see nobody
    are zero. Agents whose actions are seen move first; observers then choose.
    """
    A = game.action_space.n
    out = np.zeros((actions.shape[0], game.n_agents, seen_action_size(game)), np.float32)
    slot = [0] * game.n_agents
    for observer, actor in watched(game):
        k = slot[observer]
        out[np.arange(actions.shape[0]), observer, k * A + actions[:, actor]] = 1.0
        slot[observer] += 1
    return out


def reset_done(game: Game, state, done: np.ndarray, rng: np.random.Generator):
    """Reset the worlds whose episode is ``done`` (fields of a dataclass State), in place."""
    if not done.any():
        return state
    fresh = game.reset(done.shape[0], rng)
    for f in dataclasses.fields(state):
        old, new = getattr(state, f.name), getattr(fresh, f.name)
        mask = done.reshape(done.shape + (1,) * (old.ndim - 1))
        setattr(state, f.name, np.where(mask, new, old))
    return state
