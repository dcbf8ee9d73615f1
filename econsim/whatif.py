"""What-if runs: play scripted, random or trained agents under tax mechanisms in ``EconModel``.

This is the non-UI logic of the workbench's What-if page (``app.py``); it is plain Python,
usable from a notebook::

    from econsim import whatif

    res = whatif.compare(["us_federal", {"name": "flat", "rate": 0.3}], "gtb_free_market",
                         episodes=2, seeds=[0, 1])
    res.episodes          # one row per mechanism x seed x episode (welfare, productivity, ...)
    res.periods           # one row per mechanism x seed x episode x tax period x agent
    res.steps             # one row per mechanism x seed x episode x step x agent
    res.schedules         # marginal rate per bracket and mechanism
    res.plane             # games in a plane (navigation): each agent's start and goal per episode
    whatif.tax_curve(res.schedules)   # T(z), the tax due at income z

Every table comes from the model's own ``DataCollector`` (per step) and, for economies, from
the game's own tables (``game.period_table`` / ``game.episode_summary``), so the columns and
their meanings are those of the run store; units and meanings: ``econsim.dictionary``
(``res.data_dictionary()``). ``episode`` counts from 0, as in stored runs; ``mechanism`` is
the same label as in stored runs (``flat(rate=0.3)``, ``us_federal``), with
``mechanism_name`` and one ``mechanism_<parameter>`` column beside it.

Brains are ``"scripted"`` (rule-based economic agents, ``learners.gtb_worker``: they gather,
build, trade and weigh income against labour; GTB only), ``"random"`` (uniform random
actions: a null model), ``"noop"`` (every agent idles) or ``"trained:<run_id>"`` (the trained
replica of a stored run, ``EconModel``'s trained brains). The default, ``None``, is
``"scripted"`` where the game has scripted agents and ``"random"`` elsewhere.
A mechanism is ``None`` (the scenario's own, or a trained run's learned planner), a name of
``mechanisms.registry`` (``"us_federal"``), or a spec dict (``{"name": "flat", "rate": 0.3}``,
optionally with a ``"label"`` that replaces the ``mechanism`` label). All mechanisms of a
comparison play the same seeds.

``WhatIfJob`` runs step by step so a caller can show progress and cancel between steps
(``run(progress=..., should_stop=...)``); ``run_whatif`` and ``compare`` wrap it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from econsim import dictionary, metrics, store, uncertainty
from econsim import scenario as scenario_mod
from econsim.core import make_rng
from econsim.core.capabilities import Economy, Plane, Render, TaxPeriods, has
from econsim.distribution import tax_curve  # re-exported: whatif.tax_curve
from econsim.model import EconModel, load_trainer
from econsim.scenario import Scenario
from learners.brains import ConstantBrain, has_workers, scripted_workers, team_brains
from learners.gtb_worker import MAX_LABOUR_AVERSION
from mechanisms import registry
from mechanisms.tax import check_fits

__all__ = ["EPISODE_COLUMNS", "STEP_COLUMNS", "WhatIfJob", "WhatIfResult", "compare",
           "WORLD_COLUMNS", "mechanism_label", "run_whatif", "tax_curve", "terrain"]

BRAINS = ("scripted", "random", "noop", "trained:<run_id>")
#: how a result's agents are described on every chart, export and report
AGENTS = {"scripted": "scripted workers (rule-based)",
          "random": "random actions (a null model)", "noop": "idle (no-op)"}
#: bytes of replay pictures a job keeps (``WhatIfResult.frames``): a 128 x 128 picture per
#: step of navigation is 48 KiB, so long what-ifs keep the pictures of their first episodes
#: only (every episode keeps its rows in the tables)
FRAME_BYTES = 256 * 2**20
MAX_ADAPT = 10_000  # training iterations trained agents may re-learn per mechanism
#: the scenario a what-if opens with (the app's default): the economy under US-federal taxes
DEFAULT_SCENARIO = "gtb_us_federal"
MAX_AVERSION = MAX_LABOUR_AVERSION  # the scripted workers' labour aversion
MAX_EPSILON = 20.0  # inequality aversion of the Atkinson measures
Progress = Callable[[float, str], Any]
ShouldStop = Callable[[], bool]

#: column -> (unit, meaning) of the what-if tables: ``econsim.dictionary`` (one dictionary
#: for every table econsim writes)
EPISODE_COLUMNS = dictionary.EPISODES
STEP_COLUMNS = dictionary.STEPS
WORLD_COLUMNS = dictionary.WORLD
_KEYS = ["mechanism", "seed", "episode"]


# --------------------------------------------------------------------------- inputs


def mechanism_label(spec: Any, scenario: Scenario | None = None, trained: bool = False) -> str:
    """The ``mechanism`` label of a what-if's mechanism (``econsim.dictionary``):
    ``{"name": "flat", "rate": 0.3}`` -> ``flat(rate=0.3)``; ``None`` (the scenario's own)
    -> the scenario's mechanism, the learned planner of a trained run (``trained``:
    ``metagrad`` / ``dual_rl``), or ``none``."""
    return dictionary.mechanism_label(_own(spec, scenario, trained))


def _own(spec: Any, scenario: Scenario | None, trained: bool) -> Any:
    """``spec``, with ``None`` replaced by the scenario's own mechanism (as runs label it)."""
    if spec is not None and spec != "scenario":
        return spec
    if scenario is None:
        return "none"
    own = dictionary.scenario_mechanism(scenario.resolved())
    return own if isinstance(own, dict) or trained else "none"


def _spec(mechanism: Any) -> dict | None:
    """A mechanism as a spec dict without its label (None stays None); validated."""
    if mechanism is None or mechanism == "scenario":
        return None
    if isinstance(mechanism, str):
        spec = {"name": mechanism}
    elif isinstance(mechanism, dict):
        spec = {k: v for k, v in mechanism.items() if k != "label"}
    else:
        raise ValueError(f"mechanism: {mechanism!r} is not allowed (allowed: a name in "
                         f"{', '.join(registry.names())}, a spec dict, or None)")
    registry.build(spec)  # one-line ValueError if bad
    return spec


def _scenario(scenario: Scenario | str | Path | None, brains: str, root: Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if scenario is None:
        if not brains.startswith("trained:"):
            raise ValueError("scenario: required unless the brains are trained:<run_id>")
        run_dir = store.run_dir(brains.removeprefix("trained:"), root)  # one-line if absent
        return scenario_mod.load(store.inside(run_dir, "scenario.toml"))
    return scenario_mod.load(scenario)


def _seeds(seeds: int | Sequence[int]) -> list[int]:
    out = [int(seeds)] if isinstance(seeds, int | np.integer) else [int(s) for s in seeds]
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"seeds: {seeds!r} is not allowed: give distinct integers >= 0")
    return out


# --------------------------------------------------------------------------- result


@dataclass
class WhatIfResult:
    """Tidy tables of a what-if (one or several mechanisms, the same seeds).

    ``steps``: one row per mechanism x seed x episode x step x agent (the model's agent
    reporters, and per-agent events the reporters leave out, e.g. ``trade_volume``);
    ``world``: one row per mechanism x seed x episode x step (model reporters; ``rate_0..``
    the tax schedule in force); ``periods``: economies only, one row
    per mechanism x seed x episode x tax period x agent (as a run's ``periods.parquet``);
    ``episodes``: one row per mechanism x seed x episode (``EPISODE_COLUMNS``);
    ``schedules``: one row per mechanism x bracket (``lower``, ``upper``, mean ``rate`` in
    force). Only whole episodes are kept (a cancelled run keeps those it finished).
    """

    scenario: str
    env: str
    brains: str
    mechanisms: list[str]
    seeds: list[int]
    episodes_requested: int
    steps: pd.DataFrame
    world: pd.DataFrame
    periods: pd.DataFrame
    episodes: pd.DataFrame
    schedules: pd.DataFrame
    terrain: pd.DataFrame | None = None
    #: (mechanism, seed, episode) -> one uint8 RGB image ``[H, W, 3]`` of the whole map per
    #: step, for games that draw themselves (``game.render_rgb``, e.g. Cleanup); whole
    #: episodes, as many as ``FRAME_BYTES`` holds
    frames: dict[tuple[str, int, int], list[np.ndarray]] = field(default_factory=dict)
    #: games in a plane (capability ``Plane``, e.g. navigation): one row per mechanism x seed x
    #: episode x agent with ``start_x, start_y`` (where it began the episode) and ``goal_x,
    #: goal_y`` (its landmark, fixed within an episode), in the plane's coordinates; the
    #: positions at each step are ``x, y`` of ``steps``. None for other games
    plane: pd.DataFrame | None = None
    #: ``(x_min, x_max, y_min, y_max)`` of a ``Plane`` game (``game.extent``), else None
    extent: tuple[float, float, float, float] | None = None
    cancelled: bool = False
    wall_s: float = 0.0
    #: training iterations the trained agents re-learned under each mechanism (0: their
    #: behaviour was held fixed)
    adapted: int = 0
    #: the scenario as TOML, and each mechanism's spec as JSON (``rerun_code``)
    scenario_toml: str = ""
    specs: list[str] = field(default_factory=list)
    #: the runs folder the trained agents came from (``rerun_code``)
    root: str = ""
    #: inequality aversion of the Atkinson columns
    atkinson_epsilon: float = metrics.ATKINSON_EPSILON
    #: the scripted workers' labour aversion (1: labour weighed as the game's utility does)
    labour_aversion: float = 1.0
    #: :meth:`tables`, built on its first call
    _tables: dict[str, pd.DataFrame] | None = field(default=None, init=False, repr=False,
                                                    compare=False)

    @property
    def episodes_done(self) -> int:
        return len(self.episodes)

    def summary(self) -> pd.DataFrame:
        """Mean of the per-episode outcomes by mechanism (in the order they were given)."""
        if self.episodes.empty:
            return pd.DataFrame(columns=["mechanism"])
        keys = [c for c in self.episodes if c == "seed" or c == "episode"
                or str(c).startswith("mechanism_")]
        num = self.episodes.drop(columns=keys).groupby("mechanism", sort=False)
        return num.mean(numeric_only=True).reset_index()

    def rerun_code(self) -> str:
        """Python that plays this what-if again (the same scenario, mechanisms, seeds,
        episodes and agents): ``scenario_toml`` saved as ``<scenario>.toml`` beside it."""
        specs = [json.loads(s) for s in self.specs]
        brains, aversion, epsilon = self.brains, self.labour_aversion, self.atkinson_epsilon
        return (f"from econsim import scenario, whatif\n"
                f"sc = scenario.load({self.scenario + '.toml'!r})\n"
                f"res = whatif.WhatIfJob.create(sc, {specs!r}, episodes="
                f"{self.episodes_requested}, seeds={self.seeds!r}, brains={brains!r}"
                f"{f', root={self.root!r}' if brains.startswith('trained:') else ''}"
                f"{f', adapt={self.adapted}' if self.adapted else ''}"
                f"{f', labour_aversion={aversion!r}' if aversion != 1 else ''}"
                f"{f', atkinson_epsilon={epsilon!r}' if epsilon != 1 else ''}"
                ").run()\n")

    def outcomes(self) -> list[str]:
        """The numeric per-episode outcomes of ``episodes`` (not seed, episode or the
        mechanism's parameters)."""
        keys = {"seed", "episode", "atkinson_epsilon"}
        return [c for c in self.episodes.select_dtypes("number").columns
                if c not in keys and not str(c).startswith("mechanism_")]

    def confidence(self, outcomes: Sequence[str] | None = None,
                   level: float = 0.95) -> pd.DataFrame:
        """Per mechanism and outcome: mean over seeds and its t interval across seeds
        (``econsim.uncertainty.confidence``; seeds are the unit of replication)."""
        return uncertainty.confidence(self.episodes, outcomes or self.outcomes(), "mechanism",
                                      level=level)

    def differences(self, baseline: str | None = None, outcomes: Sequence[str] | None = None,
                    level: float = 0.95) -> pd.DataFrame:
        """Per mechanism other than ``baseline`` (default: the first) and outcome: the mean
        paired difference over seeds and its t interval
        (``econsim.uncertainty.paired_differences``)."""
        return uncertainty.paired_differences(self.episodes, outcomes or self.outcomes(),
                                              baseline or self.mechanisms[0], "mechanism",
                                              level=level)

    def agents_text(self) -> str:
        """Who played, as every chart caption and export says it: e.g. "scripted workers
        (rule-based)", "trained agents of run X (behaviour held fixed)"."""
        if self.brains.startswith("trained:"):
            run = self.brains.removeprefix("trained:")
            return f"trained agents of run {run} " + (
                f"(re-learned {self.adapted} iterations under each mechanism)" if self.adapted
                else "(behaviour held fixed)")
        text = AGENTS.get(self.brains, self.brains)
        if self.brains == "scripted" and self.labour_aversion != 1:
            text += f", labour aversion {self.labour_aversion:g}"
        return text

    def tables(self) -> dict[str, pd.DataFrame]:
        """The exportable tables by name: ``periods``, ``episodes``, ``steps``, ``world``;
        each with the column ``agents`` (:meth:`agents_text`) after the mechanism's. Built
        once (copies of the result's tables); treat them as read-only."""
        if self._tables is None:
            out = {}
            for name, df in (("periods", self.periods), ("episodes", self.episodes),
                             ("steps", self.steps), ("world", self.world)):
                df = df.copy()
                if not df.empty:
                    at = (df.columns.get_loc("mechanism_name") + 1 if "mechanism_name" in df
                          else 0)
                    df.insert(at, "agents", self.agents_text())
                out[name] = df
            self._tables = out
        return self._tables

    def data_dictionary(self) -> pd.DataFrame:
        """``table, column, unit, meaning`` of every column of :meth:`tables`
        (``econsim.dictionary``)."""
        return dictionary.tables_dictionary(self.tables())

    def tax_curve(self, z_max: float | None = None, points: int = 201) -> pd.DataFrame:
        """``T(z)`` of every mechanism's (mean) schedule: see :func:`tax_curve`."""
        return tax_curve(self.schedules, z_max, points)


def terrain(game: Any) -> pd.DataFrame | None:
    """The static map of a grid economy (GTB): one row per cell with ``row``, ``col`` and
    ``terrain`` (``water``, ``wood source``, ``stone source``, ``empty``); None otherwise."""
    cells = game.terrain() if has(game, Economy) else None
    return None if cells is None else pd.DataFrame(cells)


# --------------------------------------------------------------------------- the job


@dataclass
class _Task:
    label: str
    spec: dict | None
    seed: int
    columns: dict[str, Any] = field(default_factory=dict)  # mechanism, mechanism_name, ...


def _number(name: str, value: Any, high: float, hint: str) -> None:
    """A finite number in ``0..high`` (ValueError, one line, naming ``name``)."""
    if isinstance(value, bool) or not isinstance(
            value, int | float | np.integer | np.floating) or not 0 <= value <= high:
        raise ValueError(f"{name}: {value!r} is not allowed: give a number in 0..{high:g} "
                         f"({hint})")


@dataclass
class WhatIfJob:
    """A what-if in progress: ``advance()`` plays steps; ``result()`` at any time gives the
    tables of the episodes finished so far. Holds live Mesa models: keep it in memory (e.g.
    Streamlit's session state), never in a data cache."""

    scenario: Scenario
    tasks: list[_Task]
    episodes: int
    brains: str
    root: Path
    cancelled: bool = False
    #: trained agents go on learning this many iterations under each mechanism first
    adapt: int = 0
    #: scripted workers' weight of labour against the game's labor_weight (1: as the utility)
    labour_aversion: float = 1.0
    #: inequality aversion of the Atkinson columns (``metrics.atkinson``)
    atkinson_epsilon: float = metrics.ATKINSON_EPSILON
    _task: int = 0
    _model: EconModel | None = field(default=None, repr=False)
    _extra: list[dict] = field(default_factory=list, repr=False)
    _parts: list[dict[str, pd.DataFrame]] = field(default_factory=list, repr=False)
    _frames: dict[tuple[str, int, int], list[np.ndarray]] = field(default_factory=dict,
                                                                  repr=False)
    _frame_bytes: int = 0
    _plane: list[pd.DataFrame] = field(default_factory=list, repr=False)
    _trainer: Any = field(default=None, repr=False)
    #: mechanism label -> (trainer re-learning under it, its iteration when it started)
    _adapting: dict[str, tuple[Any, int]] = field(default_factory=dict, repr=False)
    _adapted: dict[str, Any] = field(default_factory=dict, repr=False)
    _wall: float = 0.0

    @classmethod
    def create(cls, scenario: Scenario | str | Path | None, mechanisms: Sequence[Any],
               episodes: int = 1, seeds: int | Sequence[int] = 0, brains: str | None = None,
               root: str | Path | None = None, adapt: int = 0,
               labour_aversion: float = 1.0,
               atkinson_epsilon: float = metrics.ATKINSON_EPSILON) -> WhatIfJob:
        """Validate everything and plan one model per mechanism x seed (ValueError, one line,
        on bad input; nothing runs yet). ``root``: the runs folder of trained brains
        (default: ``$ECONSIM_RUNS`` or ``runs``). ``adapt``: with trained brains, the agents
        first go on learning ``adapt`` iterations under each mechanism (warm-started from the
        run, all its seeds at once); 0 holds their behaviour fixed. ``labour_aversion``: of
        scripted workers (``learners.gtb_worker``; 1 weighs labour as the game's utility
        does, larger values make them work less). ``atkinson_epsilon``: the inequality
        aversion of the tables' Atkinson measures (0: none, 1: the default, larger: more)."""
        root = store.root_path(root)
        _number("labour_aversion", labour_aversion, MAX_AVERSION, "1: as the game's utility")
        _number("atkinson_epsilon", atkinson_epsilon, MAX_EPSILON,
                "0: no inequality aversion, 1: the usual choice")
        if brains is not None and (not isinstance(brains, str) or not (
                brains in ("scripted", "random", "noop") or brains.startswith("trained:"))):
            raise ValueError(f"brains: {brains!r} is not allowed (allowed: "
                             f"{', '.join(BRAINS)})")
        if isinstance(episodes, bool) or not isinstance(episodes, int | np.integer) \
                or episodes < 1:
            raise ValueError(f"episodes: {episodes!r} is not allowed: give an integer >= 1")
        if isinstance(adapt, bool) or not isinstance(adapt, int | np.integer) \
                or not 0 <= adapt <= MAX_ADAPT:
            raise ValueError(f"adapt: {adapt!r} is not allowed: give training iterations in "
                             f"0..{MAX_ADAPT}")
        if adapt and not (isinstance(brains, str) and brains.startswith("trained:")):
            raise ValueError("adapt: only trained agents re-learn (brains trained:<run_id>)")
        sc = _scenario(scenario, brains or "", root)
        game = sc.make_game()
        if brains is None:
            brains = "scripted" if has_workers(game) else "random"
        elif brains == "scripted" and not has_workers(game):
            scripted_workers(game, np.random.default_rng(0))  # the one-line error
        if labour_aversion != 1 and brains != "scripted":
            raise ValueError(f"labour_aversion: only scripted workers have one (the agents "
                             f"here: {brains})")
        seeds = _seeds(seeds)
        mechanisms = list(mechanisms) or [None]
        trained = brains.startswith("trained:")
        labels: list[str] = []
        for m in mechanisms:
            label = mechanism_label(m, sc, trained)
            labels.append(label if label not in labels else f"{label} #{len(labels) + 1}")
        specs = [_spec(m) for m in mechanisms]
        columns = [{**dictionary.mechanism_columns(_own(m, sc, trained)), "mechanism": lb}
                   for m, lb in zip(mechanisms, labels, strict=True)]
        if not has(game, TaxPeriods) and any(s is not None for s in specs):
            raise ValueError(f"mechanism: {game.name} has no taxes (mechanisms need an economy "
                             "such as gtb)")
        for spec in specs:  # a schedule on other brackets than the game's: refused now
            if spec is not None:
                check_fits(registry.build(spec), game.cutoffs)
        job = cls(sc, [_Task(lb, sp, s, cols) for lb, sp, cols
                       in zip(labels, specs, columns, strict=True) for s in seeds],
                  int(episodes), brains, root, adapt=int(adapt),
                  labour_aversion=float(labour_aversion),
                  atkinson_epsilon=float(atkinson_epsilon))
        if brains.startswith("trained:"):
            run_id = brains.removeprefix("trained:")
            job._trainer = load_trainer(run_id, root)
            if job._trainer.game.n_agents != game.n_agents:
                raise ValueError(f"brains: run {run_id!r} has {job._trainer.game.n_agents} "
                                 f"agents but {sc.name} has {game.n_agents}")
            trained = [int(s) for s in job._trainer.seeds]
            missing = [s for s in seeds if s not in trained]
            if missing:
                raise ValueError(f"seeds: {', '.join(map(str, missing))} not trained in run "
                                 f"{run_id!r} (its seeds: {', '.join(map(str, trained))}); "
                                 "a seed picks the trained replica")
            if adapt and any(s is not None for s in specs) \
                    and not job._trainer.takes_mechanism:
                raise ValueError(f"adapt: the agents of run {run_id!r} "
                                 f"({sc.algorithm_name}) cannot learn under another "
                                 "mechanism (agents trained by ppo can); keep them fixed or "
                                 "compare the run's own mechanism")
        return job

    # ------------------------------------------------------------------ progress
    @property
    def done(self) -> bool:
        return self.cancelled or self._task >= len(self.tasks)

    @property
    def fraction(self) -> float:
        """Share of the planned episodes played (0..1)."""
        if self.done:
            return 1.0
        total = len(self.tasks) * self.episodes
        m = self._model
        within = 0.0
        if m is not None:
            length = m.game.max_steps
            within = m.episodes_done + (0.0 if m.episode_over else min(m.t / length, 1.0))
        # re-learning: one training iteration counts as much as one episode
        learning = self.adapt * len({t.label for t in self.tasks})
        learnt = sum(min(self.adapt, tr.iteration - start)
                     for tr, start in self._adapting.values())
        return min((self._task * self.episodes + within + learnt) / (total + learning), 1.0)

    def status(self) -> str:
        if self.cancelled:
            return f"cancelled ({self._episodes_finished()} episodes finished)"
        if self.done:
            return "finished"
        t = self.tasks[self._task]
        if self.adapt and t.label not in self._adapted:
            tr, start = self._adapting.get(t.label, (None, 0))
            done = tr.iteration - start if tr is not None else 0
            return (f"agents re-learning under {t.label}: iteration {done + 1} of "
                    f"{self.adapt} (all seeds)")
        total = len(self.tasks) * self.episodes
        now = min(self._episodes_finished() + 1, total)
        return f"episode {now} of {total}: {t.label}, seed {t.seed}"

    def _episodes_finished(self) -> int:
        done = sum(len(p["episodes"]) for p in self._parts)
        return done + (self._model.episodes_done if self._model is not None else 0)

    # ---------------------------------------------------------------------- play
    def _new_model(self, task: _Task) -> EconModel:
        game_n = self.scenario.make_game().n_agents
        if self.brains == "noop":
            brains = [ConstantBrain(0) for _ in range(game_n)]
        elif self.brains == "scripted":  # their random choices: a stream of the seed's own
            brains = scripted_workers(self.scenario.make_game(), make_rng(task.seed, "workers"),
                                      labour_aversion=self.labour_aversion)
        elif self.brains.startswith("trained:") and self.adapt:
            trainer = self._adapted[task.label]
            if task.spec is None:  # the run's own mechanism or planner, learning went on
                return EconModel.from_trainer(self.scenario, trainer, task.seed, self.episodes)
            brains = team_brains(trainer, [int(s) for s in trainer.seeds].index(task.seed))
        elif self.brains.startswith("trained:"):
            if task.spec is None:  # the run's own mechanism or learned planner
                return EconModel.from_run(self.brains.removeprefix("trained:"), seed=task.seed,
                                          root=self.root, episodes=self.episodes)
            replica = [int(s) for s in self._trainer.seeds].index(task.seed)
            brains = team_brains(self._trainer, replica)
        else:
            brains = None
        return EconModel(self.scenario, brains=brains, seed=task.seed, episodes=self.episodes,
                         mechanism=task.spec)

    def advance(self, max_steps: int | None = None, should_stop: ShouldStop | None = None,
                max_seconds: float | None = None) -> bool:
        """Play up to ``max_steps`` steps (all if None) or ``max_seconds``; ``should_stop()``
        is asked before every step and cancels the job when true. Returns ``done``."""
        t0 = time.perf_counter()
        played = 0
        while not self.done:
            if max_steps is not None and played >= max_steps:
                break
            if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                break
            if should_stop is not None and should_stop():
                self.cancel()
                break
            task = self.tasks[self._task]
            if self._model is None and self.adapt and task.label not in self._adapted:
                self._learn(task)  # one training iteration, then back to the checks
                played += 1
                continue
            if self._model is None:
                self._model, self._extra = self._new_model(task), []
            m = self._model
            m.step()
            played += 1
            self._record_events(m)
            key = (task.label, task.seed, m.episode)
            if has(m.game, Render):  # replayable games: whole episodes within FRAME_BYTES
                if m.t == 1 and self._frame_bytes < FRAME_BYTES:
                    self._frames[key] = []
                if key in self._frames:
                    frame = m.game.render_rgb(m.state)
                    self._frames[key].append(frame)
                    self._frame_bytes += frame.nbytes
            if has(m.game, Plane) and m.t == 1:  # an episode's starts and landmarks
                self._plane.append(_plane_rows(m, task))
            if not m.running:
                self._parts.append(_tables(m, task, self._extra, True, self.atkinson_epsilon))
                self._model = None
                self._task += 1
        self._wall += time.perf_counter() - t0
        return self.done

    def _learn(self, task: _Task) -> None:
        """One training iteration of the agents re-learning under ``task``'s mechanism
        (a fresh copy of the run's trainer, all seeds, warm-started from its checkpoint)."""
        if task.label not in self._adapting:
            trainer = load_trainer(self.brains.removeprefix("trained:"), self.root)
            if task.spec is not None:
                trainer.use_mechanism(registry.build(task.spec))
            self._adapting[task.label] = (trainer, trainer.iteration)
        trainer, start = self._adapting[task.label]
        trainer.iterate()
        if trainer.iteration - start >= self.adapt:
            self._adapted[task.label] = trainer

    def _record_events(self, m: EconModel) -> None:
        """Per-agent events of the step that the DataCollector does not report."""
        reported = set(m.datacollector.agent_reporters)
        for p in m.players:
            extra = {k: v for k, v in p.events.items() if k not in reported
                     and np.ndim(v) == 0}
            self._extra.append({"Step": m.steps, "agent": p.index, **extra})

    def cancel(self) -> None:
        """Stop: the finished episodes of the current model are kept."""
        if self.cancelled or self.done:
            return
        if self._model is not None:
            task = self.tasks[self._task]
            self._parts.append(_tables(self._model, task, self._extra, True,
                                      self.atkinson_epsilon))
            self._model = None
        self.cancelled = True

    def run(self, progress: Progress | None = None, should_stop: ShouldStop | None = None,
            every_s: float = 0.1) -> WhatIfResult:
        """Play to the end (or until ``should_stop()``), calling ``progress(fraction, text)``
        at most every ``every_s`` seconds and once at the end."""
        last = -1.0
        while not self.done:
            self.advance(max_steps=1, should_stop=should_stop)
            now = time.perf_counter()
            if progress is not None and (now - last >= every_s or self.done):
                progress(self.fraction, self.status())
                last = now
        return self.result()

    # ------------------------------------------------------------------- tables
    def result(self) -> WhatIfResult:
        """Tables of the episodes finished so far."""
        def cat(name: str) -> pd.DataFrame:
            frames = [p[name] for p in self._parts if not p[name].empty]
            df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            front = [c for c in df.columns if str(c).startswith("mechanism")]
            return df[front + [c for c in df.columns if c not in front]]

        game = self.scenario.make_game()
        periods = cat("periods")
        labels = list(dict.fromkeys(t.label for t in self.tasks))
        return WhatIfResult(
            scenario=self.scenario.name, env=self.scenario.env_name, brains=self.brains,
            mechanisms=labels, seeds=list(dict.fromkeys(t.seed for t in self.tasks)),
            episodes_requested=self.episodes, steps=cat("steps"), world=cat("world"),
            periods=periods, episodes=cat("episodes"),
            schedules=_schedules(periods, game, labels), terrain=terrain(game),
            frames=self._whole_frames(), plane=self._plane_table(game), extent=(
                tuple(float(v) for v in game.extent) if has(game, Plane) else None),
            cancelled=self.cancelled, wall_s=round(self._wall, 3), adapted=self.adapt,
            scenario_toml=self.scenario.to_toml(), root=str(self.root),
            labour_aversion=self.labour_aversion, atkinson_epsilon=self.atkinson_epsilon,
            specs=list(dict.fromkeys(json.dumps(t.spec, sort_keys=True) for t in self.tasks)))

    def _finished(self) -> set[tuple[str, int, int]]:
        """(mechanism, seed, episode) of the finished episodes."""
        return {(str(m), int(s), int(e)) for p in self._parts if not p["episodes"].empty
                for m, s, e in p["episodes"][_KEYS].itertuples(index=False)}

    def _whole_frames(self) -> dict[tuple[str, int, int], list[np.ndarray]]:
        """The pictures of the finished episodes (as the tables: whole episodes only)."""
        done = self._finished()
        return {k: v for k, v in self._frames.items() if k in done}

    def _plane_table(self, game: Any) -> pd.DataFrame | None:
        """``WhatIfResult.plane`` of the finished episodes (None: not a ``Plane`` game)."""
        if not has(game, Plane):
            return None
        done = [p["episodes"][_KEYS] for p in self._parts if not p["episodes"].empty]
        if not self._plane or not done:
            return pd.DataFrame(columns=["mechanism", "seed", "episode", "agent", "start_x",
                                         "start_y", "goal_x", "goal_y"])
        rows = pd.concat(self._plane, ignore_index=True)  # the finished episodes' rows
        return rows.merge(pd.concat(done), on=_KEYS, how="inner").reset_index(drop=True)


def _tables(m: EconModel, task: _Task, extra: list[dict], whole_only: bool,
            epsilon: float = metrics.ATKINSON_EPSILON) -> dict:
    """Tidy tables of one model from its DataCollector (whole episodes only); ``epsilon``:
    the inequality aversion of the Atkinson measures."""
    game = m.game
    world = m.datacollector.get_model_vars_dataframe().reset_index(names="Step")
    agents = m.datacollector.get_agent_vars_dataframe().reset_index()
    world = world[world["step"] > 0]  # drop the collection at construction
    finished = m.episodes_done
    if whole_only:  # episodes count from 0: the finished ones are 0 .. finished - 1
        world = world[world["episode"] < finished]
    world = world.reset_index(drop=True)
    if "tax_rates" in world:
        rates = world.pop("tax_rates")
        k = max((len(r) for r in rates), default=0)
        for j in range(k):
            world[f"rate_{j}"] = [r[j] if len(r) > j else np.nan for r in rates]
    steps = agents.drop(columns=["AgentID"]).merge(
        world[["Step", "episode", "step"]], on="Step", how="inner")
    if extra:
        steps = steps.merge(pd.DataFrame(extra), on=["Step", "agent"], how="left")
    for c in steps.select_dtypes("object").columns:  # reporters start at 0.0, then bool
        with contextlib.suppress(TypeError, ValueError):  # non-numeric columns stay as are
            steps[c] = steps[c].astype(np.float64)
    front = {**task.columns, "seed": task.seed}
    steps = _front(steps.drop(columns=["Step"]), front,
                   ["episode", "step", "agent"]).sort_values(_KEYS + ["step", "agent"])
    world = _front(world.drop(columns=["Step"]), front, ["episode", "step"])
    periods, episodes = [], []
    for ep, s in steps.groupby("episode", sort=True):
        w = world[world["episode"] == ep]
        row = {**front, "episode": int(ep), "steps": int(w["step"].max()),
               "collective_return": float(w["collective_return"].iloc[-1])}
        if has(game, Economy) and "coin" in s:
            per, summary = _economy_tables(game, s, w, epsilon)
            periods.append(per.assign(episode=int(ep)))
            row.update(summary)
        episodes.append(row)
    per = pd.concat(periods, ignore_index=True) if periods else pd.DataFrame()
    if not per.empty:
        per = _front(per.drop(columns=["world"]), front, ["episode", "period", "agent"])
    return {"steps": steps.reset_index(drop=True), "world": world, "periods": per,
            "episodes": pd.DataFrame(episodes)}


def _plane_rows(m: EconModel, task: _Task) -> pd.DataFrame:
    """Where each agent of ``m``'s current episode started and its landmark (``Plane``):
    one row per agent (row n of ``game.landmarks``: agent n's goal)."""
    start = m.game.describe(m.start_state)
    goals = np.asarray(m.game.landmarks(m.state), np.float64)  # fixed within an episode
    n, k = m.game.n_agents, max(m.game.n_agents, len(goals))
    pad = lambda v, m_: np.append(np.asarray(v, np.float64)[:m_], np.full(k - m_, np.nan))  # noqa: E731
    rows = pd.DataFrame({"episode": m.episode, "agent": np.arange(k),
                         "start_x": pad(start["x"][0], n), "start_y": pad(start["y"][0], n),
                         "goal_x": pad(goals[:, 0], len(goals)),
                         "goal_y": pad(goals[:, 1], len(goals))})
    return _front(rows, {**task.columns, "seed": task.seed}, ["episode", "agent"])


def _front(df: pd.DataFrame, front: dict, keys: list[str]) -> pd.DataFrame:
    """``front`` columns first, then ``keys``, then the rest."""
    df = df.assign(**front)
    order = [*front, *keys]
    return df[order + [c for c in df.columns if c not in order]]


def _economy_tables(game: Any, s: pd.DataFrame, w: pd.DataFrame,
                    epsilon: float = metrics.ATKINSON_EPSILON) -> tuple[pd.DataFrame, dict]:
    """The game's own per-period table and episode summary of one played episode."""
    n = game.n_agents
    s = s.sort_values(["step", "agent"])

    def arr(col: str) -> np.ndarray:  # [T, 1, N]
        if col not in s:
            return np.zeros((len(s) // n, 1, n))
        return s[col].to_numpy(np.float64).reshape(-1, 1, n)

    keys = ("coin", "income", "tax", "transfer", "labor", "utility", "gathered_wood",
            "gathered_stone", "built", "build_income", "trade_income", "trade_volume")
    info = {k: arr(k) for k in keys}
    pay = s.loc[s["step"] == s["step"].min(), "skill"].to_numpy(np.float64)  # coin/house
    state = SimpleNamespace(skill=pay[None, :] / game.params.build_payment)  # the multiplier
    rate_cols = [c for c in w.columns if c.startswith("rate_")]
    rates = w[rate_cols].to_numpy(np.float64)[:, None, :] if rate_cols else None
    per = game.period_table(info, state, rates)
    rate_cols = [c for c in per.columns if c.startswith("rate_")]
    if rate_cols:
        per["top_rate"] = per[rate_cols[-1]]
        per["mean_rate"] = per[rate_cols].mean(axis=1)
    out = game.episode_summary(info, state)
    prod, eq = float(out["productivity"][0]), float(out["equality"][0])
    by_period = per.groupby("period")
    summary = {
        "periods": int(per["period"].nunique()),
        "welfare_sum": float(out["welfare_sum"][0]),
        "welfare_final": prod * eq, "productivity": prod, "equality": eq,
        "tax_revenue": float(out["tax_revenue"][0]),
        "pre_tax_income": float(per["pre_tax_income"].sum()),
        "houses_built": float(out["houses"][0].sum()),
        "wood_gathered": float(out["wood_gathered"][0].sum()),
        "stone_gathered": float(out["stone_gathered"][0].sum()),
        "trade_volume": float(out["trade_volume"][0]),
        "labor": float(out["labor"][0].sum()),
        "mean_utility": float(out["utility"][0].mean()),
        **{k: float(v[0]) for k, v in metrics.welfare_functions(
            out["coin"], out["utility"], epsilon).items()},
        "atkinson_epsilon": float(epsilon),
    }
    if rate_cols:
        summary["top_rate"] = float(by_period["top_rate"].first().mean())
        summary["mean_rate"] = float(by_period["mean_rate"].first().mean())
    return per, summary


def _schedules(periods: pd.DataFrame, game: Any, labels: list[str]) -> pd.DataFrame:
    """Mean marginal rate per bracket in force over the played periods, per mechanism."""
    if periods.empty or not has(game, TaxPeriods):
        return pd.DataFrame(columns=["mechanism", "bracket", "lower", "upper", "rate"])
    cutoffs = game.cutoffs
    rate_cols = [f"rate_{j}" for j in range(len(cutoffs))]
    mean = periods.groupby("mechanism", sort=False)[rate_cols].mean()
    upper = np.append(cutoffs[1:], np.inf)
    rows = [{"mechanism": m, "bracket": j, "lower": float(cutoffs[j]), "upper": float(upper[j]),
             "rate": round(float(mean.loc[m, f"rate_{j}"]), 12)}
            for m in labels if m in mean.index for j in range(len(cutoffs))]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- one call


def run_whatif(scenario: Scenario | str | Path | None, mechanism: Any = None,
               episodes: int = 1, seed: int | Sequence[int] = 0, brains: str | None = None, *,
               progress: Progress | None = None, should_stop: ShouldStop | None = None,
               root: str | Path | None = None, adapt: int = 0,
               labour_aversion: float = 1.0,
               atkinson_epsilon: float = metrics.ATKINSON_EPSILON) -> WhatIfResult:
    """Play ``episodes`` episodes of ``scenario`` under ``mechanism`` for each seed.

    ``seed`` is one seed or a list; ``brains`` ``"random"``, ``"noop"`` or
    ``"trained:<run_id>"`` (a run in ``root``; ``scenario`` may then be None). ``progress``
    is called as ``progress(fraction, text)``; ``should_stop()`` is checked between steps and
    stops the run (the finished episodes are returned, ``cancelled=True``).
    """
    job = WhatIfJob.create(scenario, [mechanism], episodes, seed, brains, root, adapt,
                           labour_aversion, atkinson_epsilon)
    return job.run(progress, should_stop)


def compare(mechanisms: Sequence[Any], scenario: Scenario | str | Path | None = None,
            episodes: int = 1, seeds: int | Sequence[int] = 0, brains: str | None = None, *,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            root: str | Path | None = None, adapt: int = 0,
            labour_aversion: float = 1.0,
            atkinson_epsilon: float = metrics.ATKINSON_EPSILON) -> WhatIfResult:
    """Play the same seeds under each of ``mechanisms`` (two or more), side by side; the
    tables carry a ``mechanism`` column. Arguments as :func:`run_whatif`."""
    mechanisms = list(mechanisms)
    if len(mechanisms) < 2:
        raise ValueError(f"mechanisms: compare needs two or more, got {len(mechanisms)}")
    job = WhatIfJob.create(scenario, mechanisms, episodes, seeds, brains, root, adapt,
                           labour_aversion, atkinson_epsilon)
    return job.run(progress, should_stop)
