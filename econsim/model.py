"""The Mesa face: ``EconModel``, a ``mesa.Model`` hosting any registered game with batch = 1.

The model drives the game's own kernel (``reset`` / ``step`` / ``observe`` / ``describe``);
no rule of any game is written here. Each player is a ``PlayerAgent`` whose ``brain``
(``learners.brains``) chooses its action; agents choose in the order the game requires
(an agent that observes another's current action, ``game.sees_current_action``, moves after
it), the joint action is validated with ``econsim.core.check_actions`` and the kernel takes
one step. Incentives paid by trained brains are added to rewards with
``mechanisms.incentives.apply_transfers``, exactly as in training.

Games with ``NamedPositions`` (Escape Room) get a ``mesa.discrete_space.OrthogonalMooreGrid``
with one cell per named place (lever, start, door) and agents placed on the cell of their
position; games with a ``Grid`` (GTB, Cleanup) get one cell per map cell; games with a
``Plane`` (navigation) get a ``mesa.space.ContinuousSpace`` over the game's ``extent``, agents at
their ``describe`` x, y (clipped into the extent for display: the game's plane is unbounded),
with the game's other moving things (``Plane.bodies``: STS2's opponents and puck) as
``BodyAgent``s;
the others (the IPD) have no space. What the model shows is what the game declares
(``econsim.core.capabilities``).
A ``mesa.DataCollector`` records model- and agent-level reporters after every step (and once
at the start, as Mesa's ``batch_run`` expects).

Mesa's ``seed=``, ``batch_run``, ``DataCollector`` and ``mesa.space`` change in Mesa 4; they
are used only in this module.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd
from mesa.discrete_space import CellAgent, OrthogonalMooreGrid
from mesa.space import ContinuousSpace

from econsim import checkpoint, metrics, store
from econsim import scenario as scenario_mod
from econsim.core import (
    Game,
    check_actions,
    end_period,
    period_starts,
    seen_actions,
    start_period,
    watched,
)
from econsim.core.capabilities import (
    AgentEvents,
    Economy,
    Grid,
    NamedPositions,
    Plane,
    TaxPeriods,
    has,
)
from econsim.scenario import Scenario
from learners.brains import Brain, PaysIncentives, RandomBrain, team_brains
from mechanisms import registry
from mechanisms.incentives import apply_transfers, given, received
from mechanisms.tax import TaxMechanism, check_fits

__all__ = ["EconModel", "PlayerAgent", "load_trainer", "move_order"]

def move_order(game: Game) -> list[int]:
    """Agent indices in the order they choose: an agent observed by another moves first."""
    pairs = watched(game)
    n = game.n_agents
    order: list[int] = []
    while len(order) < n:
        ready = [i for i in range(n) if i not in order
                 and all(actor in order for observer, actor in pairs if observer == i)]
        if not ready:
            raise ValueError(f"{game.name}: sees_current_action {pairs} has a cycle")
        order += ready
    return order


class PlayerAgent(CellAgent):
    """One player of the game. Attributes are refreshed from the game after every step.

    ``observation`` own observation (what the brain reads); ``seen`` one-hot current actions
    of the agents it observes (games with ``sees_current_action``, else empty);
    ``action`` / ``action_name`` (-1 / "" before the first step); ``reward`` extrinsic reward
    of the step; ``incentive_received`` / ``incentive_given``; ``total_reward`` = reward +
    received - (given if charged); ``return_so_far`` / ``total_return_so_far`` this episode;
    ``events`` this agent's per-step info from the kernel (e.g. ``lever``, ``exit``); plus one
    attribute per array of ``game.describe(state)`` (e.g. ``position``, ``last_action``);
    ``pos`` its place in the model's ``space`` (games with a ``Plane``).
    """

    def __init__(self, model: EconModel, index: int, brain: Brain) -> None:
        super().__init__(model)
        self.index = index
        self.brain = brain
        self.observation = np.zeros(0, np.float32)
        self.seen = np.zeros(0, np.float32)
        self.action, self.action_name = -1, ""
        self.reward = self.incentive_received = self.incentive_given = 0.0
        self.total_reward = self.return_so_far = self.total_return_so_far = 0.0
        self.events: dict[str, Any] = {}

    def step(self) -> None:
        """Choose this step's action with the brain (stored in ``action``)."""
        action = self.brain.act(self)
        n = self.model.game.action_space.n
        if isinstance(action, bool) or not isinstance(action, int | np.integer) \
                or not 0 <= action < n:
            raise ValueError(f"{self.model.game.name}: brain {self.brain!r} of agent "
                             f"{self.index} chose {action!r}; actions are integers in 0..{n - 1}")
        self.action = int(action)
        self.action_name = self.model.game.action_names[self.action]

    def __repr__(self) -> str:
        return f"PlayerAgent({self.index}, action={self.action_name!r}, brain={self.brain!r})"


class BodyAgent(mesa.Agent):
    """A thing in a ``Plane`` game's space that is not a player (``Plane.bodies``: STS2's
    scripted opponents and the puck): ``name``, ``x``, ``y`` (the game's coordinates) and
    ``pos`` (clipped into the extent), refreshed after every step. It takes no action and
    has no agent-level reporters (the ``DataCollector``'s agent table holds the players)."""

    def __init__(self, model: EconModel, name: str) -> None:
        super().__init__(model)
        self.name = name
        self.x = self.y = 0.0

    def __repr__(self) -> str:
        return f"BodyAgent({self.name!r}, x={self.x:.2f}, y={self.y:.2f})"


class _PlayerCollector(mesa.DataCollector):
    """A ``mesa.DataCollector`` whose agent reporters read the players only (in player
    order), not the ``BodyAgent``s that share the space (they have none of the players'
    attributes). Overrides Mesa 3.3's ``_record_agents``."""

    def _record_agents(self, model: EconModel):
        reps = list(self.agent_reporters.values())
        return ((model.steps, p.unique_id, *(rep(p) for rep in reps)) for p in model.players)


def _value(x: Any) -> Any:
    """A numpy scalar as a plain Python value; arrays stay arrays."""
    return x.item() if np.ndim(x) == 0 else np.asarray(x)


def _as_game(scenario: Scenario | str | Path | Game) -> tuple[Scenario | None, Game]:
    if isinstance(scenario, Scenario):
        return scenario, scenario.make_game()
    if isinstance(scenario, str | Path):
        sc = scenario_mod.load(scenario)
        return sc, sc.make_game()
    if isinstance(scenario, Game):
        return None, scenario
    raise ValueError(f"scenario: expected a Scenario, a scenario name or path, or a Game; "
                     f"got {type(scenario).__name__}")


#: model-level reporters of games with coin (economies)
ECONOMY_REPORTERS = ("productivity", "equality", "welfare", "tax_revenue", "tax_rates")


def _events(game: Game) -> tuple[str, ...]:
    """Per-agent step events shown as agent attributes (capability ``AgentEvents``)."""
    return tuple(game.agent_info_keys) if has(game, AgentEvents) else ()


def _grid_shape(game: Game) -> tuple[int, int] | None:
    """One cell per named place or per map cell (``NamedPositions`` / ``Grid``), else None."""
    if has(game, NamedPositions):
        return (len(game.position_names), 1)
    if has(game, Grid):
        return (game.height, game.width)
    return None


def _plane(game: Game) -> ContinuousSpace | None:
    """A continuous space over the game's ``extent`` (capability ``Plane``), else None."""
    if not has(game, Plane):
        return None
    x_min, x_max, y_min, y_max = (float(v) for v in game.extent)
    return ContinuousSpace(x_max, y_max, torus=False, x_min=x_min, y_min=y_min)


def _in_extent(space: ContinuousSpace, x: float, y: float) -> tuple[float, float]:
    """``(x, y)`` clipped into the space (its upper edges are open in Mesa)."""
    return (float(np.clip(x, space.x_min, np.nextafter(space.x_max, space.x_min))),
            float(np.clip(y, space.y_min, np.nextafter(space.y_max, space.y_min))))


def _as_mechanism(mechanism: Any, scenario: Scenario | None, game: Game) -> Any:
    """A tax mechanism from an object, a name, a spec dict, or the scenario's table."""
    if mechanism is None:
        own = scenario.make_mechanism() if scenario is not None else None
        return check_fits(own, game.cutoffs) if own is not None else None
    if not has(game, TaxPeriods):
        raise ValueError(f"mechanism: {game.name} has no taxes (mechanisms need an economy "
                         "such as gtb)")
    if isinstance(mechanism, str):
        mechanism = {"name": mechanism}
    if isinstance(mechanism, dict):
        return check_fits(registry.build(mechanism), game.cutoffs)
    if not isinstance(mechanism, TaxMechanism):
        raise ValueError(f"mechanism: {mechanism!r} is not a tax mechanism (allowed: a name "
                         f"in {', '.join(registry.names())}, a spec dict, or a TaxMechanism)")
    return check_fits(mechanism, game.cutoffs)


class EconModel(mesa.Model):
    """A Mesa model playing one world (batch = 1) of a scenario's game.

    Args:
        scenario: a ``Scenario``, a scenario file path or shipped scenario name
            (``econsim.scenario.load``), or a ``Game`` instance.
        brains: one ``Brain`` per player, in player order; default ``RandomBrain`` drawing
            from the model's ``rng``.
        seed: seeds the model's ``rng`` / ``random`` (the kernel and random brains use them).
        episodes: ``running`` turns False after this many episodes.

    When the kernel says an episode is done, the next ``step()`` starts a new one (the game
    is reset and every brain's ``reset()`` is called), so after a step the model shows the
    state that step produced.
    """

    def __init__(self, scenario: Scenario | str | Path | Game,
                 brains: Sequence[Brain] | None = None, seed: int | None = None,
                 episodes: int = 1, mechanism: TaxMechanism | str | dict | None = None) -> None:
        super().__init__(rng=seed)
        if not isinstance(episodes, int | np.integer) or episodes < 1:
            raise ValueError(f"episodes: must be an integer >= 1, got {episodes!r}")
        self.scenario, self.game = _as_game(scenario)
        game, n = self.game, self.game.n_agents
        self.mechanism = _as_mechanism(mechanism, self.scenario, game)
        if brains is None:
            brains = [RandomBrain(game.action_space.n, self.rng) for _ in range(n)]
        brains = list(brains)
        if len(brains) != n:
            raise ValueError(f"brains: got {len(brains)} brain(s) but {game.name} has {n} players")
        for i, b in enumerate(brains):
            if not isinstance(b, Brain):
                raise ValueError(f"brains[{i}]: {b!r} is not a Brain (needs reset() and "
                                 f"act(agent))")
        self.episodes = int(episodes)
        self.order = move_order(game)
        self.observers = {o for o, _ in watched(game)}
        self.players = [PlayerAgent(self, i, b) for i, b in enumerate(brains)]
        self.position_names = game.position_names if has(game, NamedPositions) else None
        self.grid_shape = _grid_shape(game)
        self.grid = (OrthogonalMooreGrid(self.grid_shape, torus=False, random=self.random)
                     if self.grid_shape else None)
        #: games with a ``Plane``: agents at their (x, y), clipped into ``game.extent``
        self.space = _plane(game)
        #: the space's other things (``Plane.bodies``), by name
        self.bodies: dict[str, BodyAgent] = {}
        self.productivity = self.equality = self.welfare = self.tax_revenue = 0.0
        self.tax_rates: list[float] = []
        self.episode = 0  # current episode, 0-based (as in every table econsim writes)
        self.episodes_done = 0
        self.t = 0  # steps taken in the current episode
        self.collective_reward = self.collective_return = self.incentives_paid = 0.0
        #: a trained central designer (``trainer.central_designer``, set by ``from_run``): pays
        #: each agent its incentive after every step (``designer_pay``), charging nobody
        self.designer: Any = None
        self.designer_paid = np.zeros(n)
        self.pay = np.zeros((n, n))  # incentives paid i -> j in the last step
        self.info: dict[str, Any] = {}  # world-level info of the last step (e.g. door_open)
        self.economy = has(game, Economy)
        for p in self.players:
            for k in _events(game):
                setattr(p, k, 0.0)
        self._start_episode()
        agent_reporters = {
            "agent": "index", "action": "action", "reward": "reward",
            "incentive_received": "incentive_received", "incentive_given": "incentive_given",
            "total_reward": "total_reward", "return_so_far": "return_so_far",
            **{k: k for k in game.describe(self.state)},
        }
        model_reporters = {
            "episode": "episode", "step": "t", "collective_reward": "collective_reward",
            "collective_return": "collective_return", "incentives_paid": "incentives_paid",
        }
        agent_reporters.update({k: k for k in _events(game)})  # per-agent step events
        if self.economy:  # games with coin: the social metrics of Diss §6.3.1
            model_reporters.update({k: k for k in ECONOMY_REPORTERS})
        self.datacollector = _PlayerCollector(model_reporters=model_reporters,
                                              agent_reporters=agent_reporters)
        self.datacollector.collect(self)

    # ------------------------------------------------------------------------ episodes
    def _start_episode(self) -> None:
        self.state = self.game.reset(1, self.rng)
        #: a copy of the state this episode began from (kernels may update a state in place)
        self.start_state = copy.deepcopy(self.state)
        if self.mechanism is not None:
            self.mechanism.reset()
        self.obs = self.game.observe(self.state)  # [1, N, *obs]
        self.episode = self.episodes_done
        self.t = 0
        self.episode_over = False
        self.collective_return = 0.0
        for p in self.players:
            p.return_so_far = p.total_return_so_far = 0.0
            p.brain.reset()
        self._refresh_state()

    def _refresh_state(self) -> None:
        """Observation, ``describe`` attributes and grid cell of every player."""
        described = self.game.describe(self.state)
        for p in self.players:
            p.observation = self.obs[0, p.index]
            for k, v in described.items():
                setattr(p, k, _value(v[0, p.index]))
            if self.grid is not None:
                at = ((int(p.position), 0) if self.position_names else (int(p.row), int(p.col)))
                cell = self.grid[at]
                if p.cell is not cell:
                    p.cell = cell
            if self.space is not None:
                at = _in_extent(self.space, p.x, p.y)
                self._put(p, at)
        if self.space is not None:
            for name, (x, y) in self.game.bodies(self.state).items():
                body = self.bodies.get(name) or self.bodies.setdefault(name,
                                                                       BodyAgent(self, name))
                body.x, body.y = float(x), float(y)
                self._put(body, _in_extent(self.space, body.x, body.y))
        if self.economy:
            coin = np.asarray(described["coin"][0], np.float64)
            self.productivity = float(metrics.productivity(coin))
            self.equality = float(metrics.equality(coin))
            self.welfare = self.productivity * self.equality
        if has(self.game, TaxPeriods):
            self.tax_rates = np.asarray(self.game.tax_rates(self.state)[0]).tolist()

    def _put(self, agent: mesa.Agent, at: tuple[float, float]) -> None:
        """Place ``agent`` in the continuous space, or move it there."""
        if agent.pos is None:
            self.space.place_agent(agent, at)
        else:
            self.space.move_agent(agent, at)

    # ---------------------------------------------------------------------------- step
    def step(self) -> None:
        """Every player chooses (in the game's order), then the kernel takes one step."""
        if self.episode_over:
            self._start_episode()
        game, n = self.game, self.game.n_agents
        if self.mechanism is not None and period_starts(game, self.t):
            rates = np.asarray(self.mechanism.rates(self.state), np.float64)[None]
            self.state, self.obs = start_period(game, self.state, rates)
            self._refresh_state()
        chosen = np.zeros((1, n), np.int64)
        for i in self.order:
            player = self.players[i]
            if i in self.observers:
                player.seen = seen_actions(game, chosen)[0, i]
            player.step()
            chosen[0, i] = player.action
        actions = check_actions(game, chosen, 1)
        seen = (self.designer.designer_view(self.state, self.obs)
                if self.designer is not None else None)  # before the kernel steps
        out = game.step(self.state, actions, self.rng)
        self.pay, charged = self._transfers()
        reward = out.reward[0].astype(np.float64)
        total = apply_transfers(reward, self.pay, charged)
        got, gave = received(self.pay), given(self.pay)
        self.designer_paid = np.zeros(n)
        if self.designer is not None:  # a central designer pays; nobody is charged
            self.designer_paid = self.designer.designer_pay(seen, actions, out.reward)
            total, got = total + self.designer_paid, got + self.designer_paid
        self.state, self.obs, self.t = out.state, out.obs, self.t + 1
        for p in self.players:
            i = p.index
            p.reward, p.total_reward = float(reward[i]), float(total[i])
            p.incentive_received, p.incentive_given = float(got[i]), float(gave[i])
            p.return_so_far += p.reward
            p.total_return_so_far += p.total_reward
        per_agent = {k: v[0] for k, v in out.info.items() if np.ndim(v) == 2 and
                     np.shape(v)[1] == n}
        for p in self.players:
            p.events = {k: _value(v[p.index]) for k, v in per_agent.items()}
            for k in _events(game):
                setattr(p, k, p.events.get(k, 0.0))
        if self.mechanism is not None:
            end_period(self.mechanism, out.info)
        self.tax_revenue = float(np.asarray(out.info.get("tax", np.zeros((1, n))))[0].sum())
        self.info = {k: np.asarray(v[0]).tolist() for k, v in out.info.items()
                     if k not in per_agent}
        self._refresh_state()
        self.collective_reward = float(reward.sum())
        self.collective_return += self.collective_reward
        self.incentives_paid = float(self.pay.sum() + self.designer_paid.sum())
        if bool(out.done[0]):
            self.episode_over = True
            self.episodes_done += 1
            if self.episodes_done >= self.episodes:
                self.running = False
        self.datacollector.collect(self)

    def _transfers(self) -> tuple[np.ndarray, np.ndarray]:
        """This step's incentives ``pay [N, N]`` from the brains, and who is charged."""
        n = self.game.n_agents
        pay, charged = np.zeros((n, n)), np.zeros(n, bool)
        for p in self.players:
            if isinstance(p.brain, PaysIncentives):
                pay[p.index] = np.asarray(p.brain.incentives(p), np.float64)
                charged[p.index] = bool(p.brain.charge_giver)
        return pay, charged

    # ----------------------------------------------------------------------- reporting
    def agent_rows(self) -> list[dict[str, Any]]:
        """One tidy row per player describing the last step."""
        described = list(self.game.describe(self.state))
        return [{"episode": self.episode, "step": self.t, "agent": p.index, "brain": repr(p.brain),
                 "action": p.action, "action_name": p.action_name, "reward": p.reward,
                 "incentive_received": p.incentive_received,
                 "incentive_given": p.incentive_given, "total_reward": p.total_reward,
                 "return_so_far": p.return_so_far,
                 "total_return_so_far": p.total_return_so_far,
                 **{k: getattr(p, k) for k in described}}
                for p in self.players]

    def run_episodes(self, n: int) -> pd.DataFrame:
        """Play ``n`` more episodes; tidy table, one row per step x agent.

        Called mid-episode, the current episode is finished first and counts as one.
        """
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"run_episodes: n must be an integer >= 1, got {n!r}")
        target = self.episodes_done + int(n)
        self.episodes = max(self.episodes, target)
        self.running = True
        rows: list[dict[str, Any]] = []
        while self.episodes_done < target:
            self.step()
            rows.extend(self.agent_rows())
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------- trained runs
    @classmethod
    def from_run(cls, run_id: str, seed: int | None = None, root: str | Path | None = None,
                 episodes: int = 1) -> EconModel:
        """A model whose brains are the trained replica of ``seed`` in run ``run_id``.

        ``seed`` picks the replica (default: the run's first seed) and also seeds the model.
        A run whose algorithm learned a tax planner (MetaGrad, dual-RL) brings that planner
        as the model's mechanism; otherwise the scenario's ``[mechanism]`` applies. A run
        with a central incentive designer (MetaGrad, dual-RL, fixed incentives) brings the
        designer, whose payments show as ``incentive_received`` and ``incentives_paid``.
        """
        scenario, trainer = _load(run_id, root)
        return cls.from_trainer(scenario, trainer, seed, episodes, f"run {run_id!r}")

    @classmethod
    def from_trainer(cls, scenario: Scenario, trainer: Any, seed: int | None = None,
                     episodes: int = 1, what: str = "trainer") -> EconModel:
        """A model whose brains are ``trainer``'s replica of ``seed`` (as :meth:`from_run`,
        for a trainer in memory, e.g. one that went on learning under another mechanism)."""
        seeds = [int(s) for s in trainer.seeds]
        seed = seeds[0] if seed is None else seed
        if seed not in seeds:
            raise ValueError(f"{what}: seed {seed!r} is not one of its seeds {seeds}")
        r = seeds.index(seed)
        planner = trainer.tax_mechanism(r) if trainer.plans_taxes else None  # learned
        model = cls(scenario, brains=team_brains(trainer, r), seed=seed, episodes=episodes,
                    mechanism=planner)
        if trainer.central_designer:  # its incentives are paid in the replay, as in training
            model.designer = trainer.replica(r)
        return model

    def __repr__(self) -> str:
        return (f"EconModel({self.game.name}, players={len(self.players)}, "
                f"episode={self.episode}, step={self.t})")


def _run_dir(run_id: str, root: str | Path | None) -> Path:
    """The folder of stored run ``run_id`` in ``root`` (default: ``$ECONSIM_RUNS`` or
    ``runs``): a plain run id, never a path (``econsim.store.run_dir``)."""
    path = store.run_dir(run_id, root)
    if not store.inside(path, "scenario.toml").is_file():
        raise ValueError(f"run {run_id!r}: has no scenario.toml in {path}/")
    return path


def _load(run_id: str, root: str | Path | None,
          iteration: int | None = None) -> tuple[Scenario, Any]:
    path = _run_dir(run_id, root)
    name = "last.pt" if iteration is None else store.kept_name(iteration)
    ckpt_path = store.inside(path, "checkpoints", name)
    if not ckpt_path.is_file():
        raise ValueError(f"run {str(run_id)!r}: has no checkpoint yet ({ckpt_path} is missing)")
    scenario = scenario_mod.load(store.inside(path, "scenario.toml"))
    info = json.loads(store.inside(path, "run.json").read_text())  # a usable run has one
    seeds = info.get("seeds") or scenario.seeds
    try:
        seeds = scenario_mod.check_seeds(seeds)
    except ValueError as err:
        raise ValueError(f"run {str(run_id)!r}: run.json: {err}") from None
    trainer = scenario.make_trainer(seeds)
    checkpoint.restore_file(trainer, ckpt_path)
    return scenario, trainer


def load_trainer(run_id: str, root: str | Path | None = None,
                 iteration: int | None = None) -> Any:
    """The trainer of a stored run, restored from ``checkpoints/last.pt`` (all its seeds), or
    from the checkpoint it kept at ``iteration`` (``train.keep_every``).

    ``run_id`` is a plain run id naming a folder in ``root`` (default: ``$ECONSIM_RUNS`` or
    ``runs``); paths are refused.
    """
    return _load(run_id, root, iteration)[1]
