"""One base for learned tax planners (MetaGrad-tax, dual-RL-tax) and their mechanism.

A tax planner is a trainer of parameter-shared PPO agents (``learners.ppo``) that also sets
every world's bracket rates at the start of each tax period (``PPOTrainer._schedule``) from a
summary of the world, which includes each agent's income of the last period after tax and
transfer (:meth:`TaxPlannerTrainer.last_income`). It takes no ``[mechanism]`` table: it *is*
the mechanism. :meth:`TaxPlannerTrainer.tax_mechanism` gives a trained replica as a
``mechanisms.tax.TaxMechanism`` (:class:`LearnedTax`) for batch-1 worlds: the Mesa face
(``EconModel.from_run``), what-if runs and the app use it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from econsim.core import Game, ReplicaRNG
from econsim.core.capabilities import PlannerView, TaxPeriods, has
from learners.ppo import PPOConfig, PPOTrainer

__all__ = ["LearnedTax", "TaxPlannerTrainer"]


def require_tax_game(algorithm: str, game: Game, mechanism: Any) -> None:
    """Learned tax planners set the rates themselves, in an economy with tax periods that
    shows them what a planner sees (capabilities ``TaxPeriods`` and ``PlannerView``):
    one-line ValueError otherwise."""
    if mechanism is not None:
        raise ValueError(f"{algorithm}: the learned planner sets the taxes; drop the mechanism")
    if not (has(game, TaxPeriods) and has(game, PlannerView)):
        from econsim import envs

        allowed = [n for n in envs.names()
                   if has(envs.game_class(n), TaxPeriods) and has(envs.game_class(n), PlannerView)]
        raise ValueError(f"{algorithm}: env {game.name!r} has no taxes a planner can set "
                         f"(allowed: {', '.join(allowed)})")


class TaxPlannerTrainer(PPOTrainer, ABC):
    """PPO agents plus a learned tax planner per replica (seed)."""

    takes_mechanism = False  # the planner is the tax mechanism
    plans_taxes = True
    #: the algorithm's name in messages
    algorithm: ClassVar[str] = "tax planner"

    def __init__(self, game: Game, config: PPOConfig, seeds: list[int],
                 mechanism: Any = None) -> None:
        require_tax_game(self.algorithm, game, mechanism)
        super().__init__(game, config, seeds)
        self._mark: np.ndarray | None = None

    def _sets_rates(self) -> bool:
        return True  # the planner sets the rates of every period

    def new_episodes(self) -> None:
        """Hook: the period starting now is the first of new episodes."""

    def last_income(self, state: Any) -> np.ndarray:
        """At a period start of the training worlds: each agent's income of the last period
        after tax and transfer ``[RB, N]`` (0 at an episode start; calls ``new_episodes``)."""
        v = self.game.planner_view(state)  # capability PlannerView
        if int(v["step"][0]) == 0:  # new episodes
            self.new_episodes()
            self._mark = v["coin_last"].copy()
        last_income = v["coin_last"] - self._mark
        self._mark = v["coin_last"].copy()
        return last_income

    @abstractmethod
    def world_rates(self, state: Any, last_income: np.ndarray, mechanism: LearnedTax
                    ) -> np.ndarray:
        """The rates ``[K]`` a one-replica planner sets in the batch-1 world ``state`` at a
        period start (``mechanism`` holds the options and random stream of the mechanism)."""

    def tax_mechanism(self, replica: int = 0, greedy: bool = False) -> LearnedTax:
        """The trained planner of ``replica`` as a tax mechanism for batch-1 worlds (e.g.
        ``EconModel(scenario, mechanism=trainer.tax_mechanism(0))``); ``greedy``: a planner
        that samples its rates takes the most likely ones."""
        return LearnedTax(self.replica(replica), greedy)


class LearnedTax:
    """A :class:`mechanisms.tax.TaxMechanism` whose rates come from a one-replica planner.

    ``rates(state)`` at each period start of a batch-1 world; ``observe`` is ignored (the
    planner learns in training). A planner that samples draws from ``rng`` (its own stream
    of the replica's seed) or, with ``greedy``, takes the most likely rates.
    """

    def __init__(self, trainer: TaxPlannerTrainer, greedy: bool = False) -> None:
        self.trainer, self.greedy = trainer, greedy
        self.cutoffs = trainer.game.cutoffs
        self.rng = ReplicaRNG.from_seeds(trainer.seeds, "mesa/planner")
        self._mark: np.ndarray | None = None
        self._last: np.ndarray | None = None  # the rates it set last

    def reset(self) -> None:
        self._mark = None

    def rates(self, period_state: Any = None) -> np.ndarray:
        s = period_state
        v = self.trainer.game.planner_view(s)
        if self._mark is None or int(v["step"][0]) == 0:
            self._mark = v["coin_last"].copy()
        last_income, self._mark = v["coin_last"] - self._mark, v["coin_last"].copy()
        self._last = np.asarray(self.trainer.world_rates(s, last_income, self), np.float64)
        return self._last

    def schedule(self):
        """The rates it set last (NaN before the first period), one row per bracket."""
        import pandas as pd

        rates = (np.full(len(self.cutoffs), np.nan) if self._last is None
                 else np.asarray(self._last).reshape(-1)[-len(self.cutoffs):])
        return pd.DataFrame({"lower": self.cutoffs, "upper": np.append(self.cutoffs[1:], np.inf),
                             "rate": rates})

    def observe(self, incomes: Any) -> None:
        """Ignored."""

    def state_dict(self) -> dict[str, Any]:
        """Nothing learned here (the planner learns in training; see the trainer's state)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""
