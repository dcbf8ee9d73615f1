"""The Trainer contract: what the rest of econsim may call on a trainer, written once.

Callers, and what they use:

* ``econsim.scenario`` (building and validating a scenario): ``Config`` (its fields, and the
  config traits ``kinds``, ``min_agents``, ``max_agents``, ``batch``, ``agents``), the class
  traits ``give_mode`` and ``takes_mechanism``, and the constructor
  ``Trainer(game, config, seeds[, mechanism=...])``;
* ``econsim.runner`` (training): ``iterate``, ``evaluate``, ``epsilon``, ``iteration``,
  ``kinds``, ``game``, ``cfg.batch``, ``state_dict``;
* ``econsim.checkpoint`` (resume, trained runs): ``state_dict``, ``load_state_dict``,
  ``iteration``;
* ``learners.brains`` (trained brains in the Mesa face): ``seeds``, ``replica``, ``N``,
  ``kinds``, ``params``, ``shared_policy``, ``charge_giver``, and either ``decide`` /
  ``add_given`` / ``reseed_actions`` / ``start_episode`` (team policies) or ``act_one`` (a
  parameter-shared policy);
* ``econsim.model`` (``EconModel.from_run``) and ``econsim.whatif``: ``seeds``, ``game``,
  ``plans_taxes`` and ``tax_mechanism`` (a learned tax planner as the model's mechanism);
* the app (``econsim.app_pages``): ``Config`` fields and the traits ``takes_mechanism``,
  ``central_designer`` and ``plans_taxes``;
* the benchmarks (budgets in episodes, as the Diss counts them): ``episodes_per_iteration``.

Every trainer class derives from :class:`TrainerTraits` (the traits and their defaults, in
this one place) and its ``Config`` from :class:`TrainerConfig`; callers read the traits
directly, never with ``getattr``. :class:`Trainer` is the structural contract (a
``typing.Protocol``) for type checkers and readers.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel

from econsim.bounds import FINITE

__all__ = ["Trainer", "TrainerConfig", "TrainerTraits"]


class TrainerConfig(BaseModel):
    """Base of every trainer's pydantic ``Config``: the config traits with their defaults.

    Besides these class-level traits every config has the fields ``agents`` (one agent kind
    per agent, or None for ``learners.default_kind`` of the algorithm) and ``batch`` (episodes
    per replica per iteration; ``econsim.scenario.check_size`` bounds the memory of one).
    """

    model_config = FINITE
    #: the agent kinds ``agents`` may list
    kinds: ClassVar[tuple[str, ...]] = ()
    #: fewest agents a trainer of this config takes
    min_agents: ClassVar[int] = 1
    #: most agents it takes (None: no bound of its own)
    max_agents: ClassVar[int | None] = None


class TrainerTraits:
    """Declared traits of a trainer class, with their defaults (one place for all).

    A trainer class overrides what differs; callers read them directly.
    """

    #: agent kind of ``agents`` when the config lists none (per class; the registry may
    #: give an algorithm name its own, ``learners.default_kind``)
    default_kind: ClassVar[str] = ""
    #: the trainer accepts a ``[mechanism]`` table (a tax mechanism: ``mechanism=`` keyword)
    #: and ``use_mechanism(mechanism)`` to go on training under another one
    takes_mechanism: ClassVar[bool] = False
    #: all agents act with one parameter-shared policy (``act_one``; brains:
    #: ``SharedPolicyBrain``), else a joint ``decide`` per step (``TeamPolicy``)
    shared_policy: ClassVar[bool] = False
    #: what an agent pays in incentives is subtracted from its own reward
    charge_giver: ClassVar[bool] = True
    #: agent kind -> give-reward mode: "d" discrete give actions, "c" continuous
    give_mode: ClassVar[dict[str, str]] = {}
    #: a central designer pays the agents incentives (MetaGrad, dual-RL, fixed incentives)
    central_designer: ClassVar[bool] = False
    #: the trainer learns a tax planner that sets the rates (``tax_mechanism``)
    plans_taxes: ClassVar[bool] = False

    def tax_mechanism(self, replica: int = 0) -> Any:
        """The learned tax planner of ``replica`` as a ``mechanisms.tax.TaxMechanism`` for a
        batch-1 world (``EconModel(..., mechanism=...)``); None unless ``plans_taxes``."""
        return None

    def start_episode(self) -> None:
        """A new episode begins in the Mesa face (``learners.brains.TeamPolicy.reset``): a
        team policy with a memory across steps (HSD's skills) forgets it. Nothing here."""

    def episodes_per_iteration(self) -> int:
        """Training episodes each replica plays per iteration (after the first, where a
        pipelined trainer such as MetaGrad also plays its first tau): ``batch`` (LIO's
        validation episodes tau-hat add as many again), for budgets counted in episodes as
        the Diss's."""
        return self.cfg.batch


class Trainer(Protocol):
    """What callers outside a learner module may use on a trainer (see the module docstring).

    A trainer is built as ``cls(game, cls.Config(**params), seeds)`` (plus
    ``mechanism=`` when ``takes_mechanism``); ``seeds`` are independent replicas trained side
    by side, and every metric is a numpy array with one row per replica.
    """

    # ------------------------------------------------------------------ class-level
    Config: ClassVar[type[TrainerConfig]]
    default_kind: ClassVar[str]
    takes_mechanism: ClassVar[bool]
    shared_policy: ClassVar[bool]
    charge_giver: ClassVar[bool]
    give_mode: ClassVar[dict[str, str]]
    central_designer: ClassVar[bool]
    plans_taxes: ClassVar[bool]

    # ------------------------------------------------------------------ state
    game: Any  #: the ``econsim.core.Game`` it trains on (many worlds per replica)
    cfg: Any  #: its ``Config`` instance
    seeds: list[int]  #: one replica per seed
    kinds: list[str]  #: agent kind of each agent
    N: int  #: number of agents
    iteration: int  #: training iterations done (a whole number >= 0)
    params: Any  #: the agents' policy parameters (stacked per replica)

    # ------------------------------------------------------------------ training
    def iterate(self) -> dict[str, np.ndarray]:
        """One training iteration; metrics per replica (``[R]`` or ``[R, N]`` arrays)."""
        ...

    def evaluate(self, episodes: int) -> dict[str, Any]:
        """Play ``episodes`` per replica from separate random streams (training unchanged);
        metrics per replica, and optionally ``"_tables"``: name -> tidy DataFrame."""
        ...

    def epsilon(self) -> float:
        """The exploration floor of the current iteration (0 where there is none)."""
        ...

    def episodes_per_iteration(self) -> int:
        """Training episodes each replica plays per iteration."""
        ...

    def state_dict(self) -> dict:
        """Everything training needs to resume bit for bit (tensors, arrays, plain data)."""
        ...

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` of a trainer built from the same scenario and seeds."""
        ...

    # ------------------------------------------------------------------ acting in Mesa
    def replica(self, r: int) -> Trainer:
        """A one-replica trainer holding replica ``r`` (seed ``seeds[r]``)."""
        ...

    def tax_mechanism(self, replica: int = 0) -> Any:
        """The learned tax planner as a tax mechanism (None unless ``plans_taxes``)."""
        ...

    # team policies (``shared_policy`` False): one joint decision per step
    def decide(self, params: Any, obs_env: np.ndarray, given_cum: Any, eps: float,
               legal: Any = None) -> Any:
        """Every agent's choice in a batch of worlds: a ``learners.pg.Decision`` (actions,
        the game's actions, the incentives ``pay [B, N, N]`` paid this step); ``legal [B, N,
        A]``: the actions the game allows (capability ``ActionMask``), None: all."""
        ...

    # central designers (``central_designer`` True): the Mesa replay of their payments
    def designer_view(self, state: Any, obs_env: np.ndarray) -> Any:
        """What the designer sees of a batch-1 world before a step."""
        ...

    def designer_pay(self, seen: Any, env_actions: np.ndarray, rewards: np.ndarray) -> Any:
        """Each agent's incentive from the designer for the step, ``[N]``."""
        ...

    def add_given(self, given_cum: Any, pay: Any) -> Any:
        """Incentives given so far this episode after paying ``pay``."""
        ...

    def reseed_actions(self, seed: int) -> None:
        """Draw actions from a fresh stream of ``seed`` (one-replica trainers)."""
        ...

    def start_episode(self) -> None:
        """A new episode begins in the Mesa face (team policies with a memory, e.g. HSD)."""
        ...

    # parameter-shared policies (``shared_policy`` True): one agent at a time
    def act_one(self, obs: np.ndarray, legal: np.ndarray, generator: Any,
                replica: int = 0, agent: int = 0) -> int:
        """One agent's action from its observation and legal actions (``agent``: its index,
        for a shared network that is told which agent it acts for)."""
        ...
