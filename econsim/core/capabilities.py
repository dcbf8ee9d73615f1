"""Optional capabilities a game declares, beyond the required ``Game`` protocol.

A game class lists the capabilities it has among its base classes, e.g.
``class GTB(TaxPeriods, ActionMask, Grid, AgentEvents, Economy)``; everything else asks
``isinstance(game, TaxPeriods)`` (or :func:`has`), never ``hasattr``. Each capability is a
small abstract class: its abstract members are what the game must then provide, and its
docstring says who uses it. ``econsim list envs`` prints each game's capabilities
(:func:`names_of`).

The capabilities, and who relies on them:

* :class:`TaxPeriods` — income is taxed at the end of fixed-length periods by a bracket
  schedule the game holds per world; a tax rule is installed as a component (the kernel calls
  it at period ends). Tax mechanisms, tax planners, the Mesa face and what-if.
* :class:`ActionMask` — legal actions per state (PPO, the chapter-3 learners through the
  rollout driver, Mesa brains, PettingZoo).
* :class:`Grid` — a rectangular map; ``describe`` reports ``row`` and ``col`` (Mesa grid).
* :class:`NamedPositions` — agents stand on a few named places; ``describe`` reports
  ``position`` (Mesa grid of one cell per place).
* :class:`SeesCurrentActions` — some agents see others' actions of this step before they
  choose (move order in Mesa, observation features in learners).
* :class:`AgentEvents` — named per-agent events of a step shown as agent attributes.
* :class:`EpisodeMetrics` — summary statistics of whole episodes (e.g. mutual cooperation).
* :class:`DesignerView` — what a central incentive designer sees and pays for (global state,
  action features, incentive types).
* :class:`ImageObservation` — observations are flattened images (convolutional learners).
* :class:`Render` — draws a world as an RGB image (what-if replays, the app).
* :class:`Economy` — agents hold coin; whole-episode and per-period outcome tables.
* :class:`PlannerView` — what a learned tax planner (MetaGrad-tax, dual-RL-tax) sees of an
  economy with tax periods at each period start.
* :class:`MultiGoal` — cooperative multi-goal games (Diss ch. 3): every agent has its own
  goal, observations split into own part, goal and the others' part, the global state into
  an environment part and one block per agent, and a single-agent induced MDP for stage 1
  of the CM3 curriculum. CM3 and its baselines (IAC, COMA, QMIX).
* :class:`Processes` — the game runs outside Python (e.g. SUMO workers) and must be closed
  (``close()``): the PettingZoo adapter's ``close`` and trainers that make games call it.
* :class:`Plane` — agents are points in a bounded continuous plane; ``describe`` reports
  ``x`` and ``y`` (Mesa continuous space, replays).
* :class:`GlobalState` — a flat global state vector per world, and the team's reward: what a
  centralised learner conditions on (QMIX mixers, centralised critics) in a cooperative game
  that is not multi-goal (STS2: QMIX, HSD's high level).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

#: ``rule(coin [B, N], income [B, N], cutoffs [K], rates [B, K]) -> (tax, transfer)``, both
#: ``[B, N]``: what each agent pays and receives at a period end (``coin`` is what it can pay)
TaxRule = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                   tuple[np.ndarray, np.ndarray]]


class Capability(ABC):  # noqa: B024 (a marker: subclasses hold the abstract members)
    """Base of every optional capability."""


class TaxPeriods(Capability):
    """Income taxed per period by a bracket schedule (Diss eq. 6.7-6.8).

    The state holds each world's marginal rates ``[B, K]`` of the current period; the
    game's ``cutoffs [K]`` are the brackets' lower edges (the first is 0). On the last step of
    each ``period_length``-step period the kernel calls the installed tax rule (a component:
    ``install_tax``) with each agent's income of the period, and reports ``income``, ``tax``,
    ``transfer`` and ``period_end`` in its step info. Without a rule no tax is enacted.
    """

    period_length: int
    n_periods: int
    cutoffs: np.ndarray  # [K] lower bracket edges, 0 first
    default_rates: np.ndarray  # [K] rates of a fresh state
    n_brackets: int
    tax_rule: TaxRule | None = None

    def install_tax(self, rule: TaxRule | None) -> None:
        """Use ``rule`` to enact tax and redistribution at period ends (None: no tax)."""
        self.tax_rule = rule

    @abstractmethod
    def set_tax_rates(self, state: Any, rates: Any) -> Any:
        """Set this period's rates: ``[K]`` for all worlds or ``[B, K]``, in [0, 1]."""

    @abstractmethod
    def tax_rates(self, state: Any) -> np.ndarray:
        """The rates in force, ``[B, K]``."""

    @abstractmethod
    def period(self, state: Any) -> np.ndarray:
        """Index of the period the next step belongs to, ``[B]``."""


class ActionMask(Capability):
    """Some actions are illegal in some states (they would do nothing)."""

    @abstractmethod
    def action_mask(self, state: Any) -> np.ndarray:
        """Legal actions ``[B, N, A]`` bool; at least one is legal per agent."""


class Grid(Capability):
    """A ``height`` x ``width`` map; ``describe`` reports each agent's ``row`` and ``col``."""

    height: int
    width: int


class NamedPositions(Capability):
    """Agents stand on one of a few named places; ``describe`` reports ``position`` (an index
    into ``position_names``)."""

    position_names: tuple[str, ...]


class SeesCurrentActions(Capability):
    """``sees_current_action``: pairs ``(observer, actor)``: the observer sees the actor's
    action of this step before choosing its own (the actor moves first)."""

    sees_current_action: tuple[tuple[int, int], ...]


class AgentEvents(Capability):
    """``agent_info_keys``: per-agent ``[B, N]`` arrays of the step info shown as agent
    attributes and reporters (e.g. ``income``, ``apples``)."""

    agent_info_keys: tuple[str, ...]


class EpisodeMetrics(Capability):
    """Summary statistics of a batch of episodes, reported next to the returns."""

    @abstractmethod
    def episode_metrics(self, actions: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """``actions [T, B, N]``, ``mask [T, B]`` -> ``{name: [B]}``."""


class DesignerView(Capability):
    """What a central incentive designer sees and pays for.

    ``global_size`` features of the whole world per step (``global_features``), per-agent
    action features (``action_feature_size``, ``action_features``) and the kinds of behaviour
    it may pay for (``incentive_types``; ``incentive_type`` classifies each agent's step).
    Games without it: the designer sees agent 0's observation, one-hot actions, and pays per
    action.
    """

    global_size: int
    action_feature_size: int
    incentive_types: tuple[str, ...]

    @abstractmethod
    def global_features(self, state: Any) -> np.ndarray:
        """``[B, global_size]``."""

    @abstractmethod
    def action_features(self, actions: np.ndarray) -> np.ndarray:
        """``actions [..., N]`` -> ``[..., N, action_feature_size]``."""

    @abstractmethod
    def incentive_type(self, actions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """Index into ``incentive_types`` of each agent's step, same shape as ``actions``."""


class ImageObservation(Capability):
    """Each observation is a flattened ``image_shape`` (rows, cols, channels) image."""

    image_shape: tuple[int, int, int]

    def split_image(self, obs: np.ndarray) -> np.ndarray:
        """``[..., obs_size]`` -> ``[..., *image_shape]``."""
        return obs.reshape(*obs.shape[:-1], *self.image_shape)


class Render(Capability):
    """Draws one world as an RGB image."""

    @abstractmethod
    def render_rgb(self, state: Any, world: int = 0) -> np.ndarray:
        """``[H, W, 3]`` uint8."""


class Economy(Capability):
    """Agents hold coin (``describe`` reports ``coin``); outcome tables of whole episodes.

    ``terrain()`` is the static map (row, col, terrain name) where the economy has one.
    """

    @abstractmethod
    def episode_summary(self, info: dict[str, np.ndarray], state: Any) -> dict[str, np.ndarray]:
        """Per world ``[B]`` / per agent ``[B, N]`` outcomes of whole episodes; ``info`` maps
        step-info keys to ``[T, B, ...]``."""

    @abstractmethod
    def period_table(self, info: dict[str, np.ndarray], state: Any,
                     rates: np.ndarray | None) -> Any:
        """Tidy rows per world x period x agent (a pandas DataFrame)."""

    def terrain(self) -> dict[str, np.ndarray] | None:
        """``{"row", "col", "terrain"}`` per cell of a static map, or None."""
        return None


class PlannerView(Capability):
    """What a learned tax planner sees of a ``TaxPeriods`` economy at a period start.

    ``planner_view(state)`` gives named arrays: ``step [B]`` steps taken this episode,
    ``coin_last [B, N]`` each agent's coin after the last tax enactment, ``holdings [B, N, 3]``
    coin, wood, stone held (available + escrow), ``labor [B, N]``, ``houses [B, N]`` houses
    built, ``skill [B, N]`` build pay per house, ``gather_skill [B, N]`` chance of a bonus
    unit, ``orders [B, 4]`` open market orders per (resource, side).
    """

    @abstractmethod
    def planner_view(self, state: Any) -> dict[str, np.ndarray]:
        """The named arrays above."""


class MultiGoal(Capability):
    """A cooperative multi-goal Markov game (Diss §3.2-3.3; SPEC §7).

    Each agent's flat observation is ``[o_self, goal, o_others]`` in that order, of lengths
    ``self_size``, ``goal_size`` and ``others_size`` (``others_size`` is 0 when the game has
    one agent): ``o_self`` is what the agent sees of itself, ``goal`` its own goal g^n,
    ``o_others`` its egocentric view of the other agents (§3.3.4). Where ``self_image`` is
    set, ``o_self`` starts with a flattened ``(rows, cols, channels)`` image (Checkers' 5x5x3
    window); where ``others_image`` is set, ``o_others`` is a flattened ``(rows, cols,
    channels)`` image (SUMO's 13x9x2 grid around the car).

    The global state decomposes as ``s = (s_env, s^1, ..., s^N)`` (``global_state``):
    ``env_state_size`` features of the environment (0 for navigation; ``env_image`` when they
    are a flattened image) and ``agent_state_size`` features per agent.

    ``induced()`` is the single-agent MDP of the curriculum's stage 1 (§3.3.3, A.7): the same
    sizes of ``o_self``, goal and agent state, one agent, no interaction terms. Per-agent
    rewards are the game's ``reward [B, N]``; the team's objective is their sum.
    """

    self_size: int
    goal_size: int
    others_size: int
    env_state_size: int
    agent_state_size: int
    self_image: tuple[int, int, int] | None = None
    others_image: tuple[int, int, int] | None = None
    env_image: tuple[int, int, int] | None = None

    def split(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``[..., obs_size]`` -> ``(o_self, goal, o_others)`` (views, no copy)."""
        a, b = self.self_size, self.self_size + self.goal_size
        return obs[..., :a], obs[..., a:b], obs[..., b:]

    @abstractmethod
    def global_state(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(s_env [B, env_state_size], s_agents [B, N, agent_state_size])`` float32."""

    @abstractmethod
    def induced(self) -> Any:
        """The stage-1 single-agent game (a ``MultiGoal`` game with one agent)."""


class Processes(Capability):
    """The game holds processes or other resources outside Python; ``close()`` releases them
    (idempotent; the game may also release them on garbage collection). ``max_worlds``: the
    most worlds one ``reset`` may hold (e.g. one outside process each); scenario validation
    refuses an iteration or evaluation of more (all seeds together)."""

    max_worlds: int

    @abstractmethod
    def close(self) -> None:
        """Stop the game's processes."""


class Plane(Capability):
    """Agents (and landmarks) are points of the continuous rectangle ``extent`` =
    ``(x_min, x_max, y_min, y_max)``; ``describe`` reports each agent's ``x`` and ``y``, and
    ``landmarks(state)`` the fixed points of a world (Mesa ``ContinuousSpace``, replays)."""

    extent: tuple[float, float, float, float]

    @abstractmethod
    def landmarks(self, state: Any, world: int = 0) -> np.ndarray:
        """``[L, 2]`` positions of the landmarks of ``world`` (row n: agent n's goal)."""

    def bodies(self, state: Any, world: int = 0) -> dict[str, tuple[float, float]]:
        """Moving things of ``world`` that are not learning players (STS2: the scripted
        opponents and the puck), name -> (x, y): the Mesa face puts them in its space too.
        None by default."""
        return {}


class GlobalState(Capability):
    """A flat global state per world, ``global_state(state) -> [B, state_size]`` float32.

    Who uses it: the mixers of QMIX (``learners.qmix``; HSD's high level, ``learners.hsd``)
    and centralised critics, which see the whole world during training while each agent acts
    on its own observation. A ``MultiGoal`` game has its own, structured global state
    ``(s_env, s^1..s^N)`` and does not declare this one.

    ``shared_reward``: every agent receives the team's reward (``reward [B, N]`` has N equal
    columns, as in STS2); ``team_reward`` is then that reward once, else the sum over agents.
    """

    state_size: int
    shared_reward: bool = False

    @abstractmethod
    def global_state(self, state: Any) -> np.ndarray:
        """``[B, state_size]`` float32."""

    def team_reward(self, reward: Any) -> Any:
        """The team's reward from per-agent rewards ``[..., N]`` (numpy or torch): agent 0's
        column where the reward is shared, else the sum over the agents; ``[...]``."""
        return reward[..., 0] if self.shared_reward else reward.sum(-1)


CAPABILITIES: tuple[type[Capability], ...] = (
    TaxPeriods, ActionMask, Grid, NamedPositions, SeesCurrentActions, AgentEvents,
    EpisodeMetrics, DesignerView, ImageObservation, Render, Economy, PlannerView, MultiGoal,
    Plane, Processes, GlobalState,
)


def has(game: Any, capability: type[Capability]) -> bool:
    """Whether ``game`` (an instance or a class) declares ``capability``."""
    cls = game if isinstance(game, type) else type(game)
    return issubclass(cls, capability)


def names_of(game: Any) -> tuple[str, ...]:
    """Names of the capabilities ``game`` (instance or class) declares, in a fixed order."""
    return tuple(c.__name__ for c in CAPABILITIES if has(game, c))
