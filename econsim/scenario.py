"""Scenario files: which game, which learners, what budget, which seeds (TOML, pydantic).

A scenario is validated completely before anything runs. A bad file raises
``ScenarioError`` whose message is one line naming the field, the value and what is
allowed, e.g. ``er21_lio.toml: algorithm.lr: -1.0 is not allowed: Input should be greater
than 0``. Every value is finite and bounded (``econsim.bounds``; README "Scenario files"); a
file is read as UTF-8, at most ``MAX_FILE_BYTES``, nested at most ``MAX_DEPTH`` deep, and
these are checked before the TOML parser sees it.

Layout of a file (see ``econsim/scenarios/*.toml``)::

    name = "er21_lio"
    description = "..."
    seeds = [0, 1, 2, 3, 4]

    [env]                 # name + the game's parameters (econsim.envs)
    name = "escape_room"
    n_agents = 2
    n_required = 1

    [algorithm]           # name + the trainer's hyperparameters (learners.registry)
    name = "lio"
    lr = 1e-4

    [mechanism]           # optional: a tax mechanism (economies; mechanisms.registry)
    name = "us_federal"

    [train]               # budget and bookkeeping
    iterations = 50000
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tomli_w
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

import learners
import mechanisms.registry
from econsim import envs
from econsim.bounds import (
    FINITE,
    MAX_DESCRIPTION,
    MAX_EVAL_EPISODES,
    MAX_NAME,
    MAX_SEEDS,
    MAX_WIDTH,
    SEED_LIMIT,
    Count,
    Iterations,
    ScenarioName,
)
from econsim.core import Game
from econsim.core.capabilities import Processes, TaxPeriods, has
from econsim.errors import ScenarioError, one_line, short
from mechanisms.tax import check_fits

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
"""The shipped scenarios: package data (``econsim/scenarios/*.toml``), installed with the wheel."""


MAX_FILE_BYTES = 1_000_000
"""Largest scenario file (shipped ones are well under 2 kB)."""
MAX_DEPTH = 8
"""Deepest nesting of tables and arrays in a scenario (shipped ones: 4)."""
MAX_BATCH_VALUES = 2**30
"""Most observation values one iteration or evaluation may hold: seeds x episodes x steps x
agents x observation size (4 GiB as float32)."""

Seed = Annotated[int, Field(ge=0, lt=SEED_LIMIT)]


class TrainSpec(BaseModel):
    """Training budget and bookkeeping."""

    model_config = FINITE
    iterations: Iterations = Field(1000, description="training iterations (LIO: 2 episodes each)")
    log_every: Iterations = Field(100, description="iterations averaged into one log row")
    eval_every: Iterations = Field(1000, description="iterations between evaluations")
    eval_episodes: int = Field(100, ge=1, le=MAX_EVAL_EPISODES,
                               description="episodes per seed in an evaluation")
    checkpoint_every: Iterations = Field(5000, description="iterations between checkpoints")
    keep_every: Count = Field(
        0, description="also keep the checkpoint of every keep_every-th iteration (a "
        "checkpoint then) as checkpoints/iteration-NNNNNNN.pt, for diagnostics over "
        "training; 0: only the last")


class Scenario(BaseModel):
    """A validated scenario. ``env`` and ``algorithm`` hold ``name`` plus parameters."""

    model_config = FINITE
    name: ScenarioName = Field(description="identifier used in run ids: letters, digits, "
                               "_ . - (starting with a letter or digit, no '..')")
    description: str = Field("", max_length=MAX_DESCRIPTION)
    seeds: list[Seed] = Field([0], min_length=1, max_length=MAX_SEEDS,
                              description="independent replicas, distinct, in [0, 2^32)")
    env: dict[str, Any]
    algorithm: dict[str, Any]
    mechanism: dict[str, Any] | None = None
    train: TrainSpec = TrainSpec()

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds must be distinct (each at most once)")
        return v

    # ------------------------------------------------------------------ derived objects
    @property
    def env_name(self) -> str:
        return self.env["name"]

    @property
    def env_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.env.items() if k != "name"}

    @property
    def algorithm_name(self) -> str:
        return self.algorithm["name"]

    def make_game(self) -> Game:
        return envs.make(self.env_name, **self.env_params)

    def trainer_config(self):
        """The algorithm's pydantic config, agent kinds filled in."""
        cls = learners.trainer_class(self.algorithm_name)
        params = {k: v for k, v in self.algorithm.items() if k != "name"}
        config = cls.Config(**params)
        if config.agents is None:
            n = self.make_game().n_agents
            config = config.model_copy(
                update={"agents": [learners.default_kind(self.algorithm_name)] * n})
        return config

    def make_mechanism(self):
        """A fresh tax mechanism of the ``[mechanism]`` table (None without one)."""
        return mechanisms.registry.build(self.mechanism) if self.mechanism else None

    def make_trainer(self, seeds: list[int] | None = None):
        cls = learners.trainer_class(self.algorithm_name)
        extra = {"mechanism": self.make_mechanism()} if self.mechanism else {}
        return cls(self.make_game(), self.trainer_config(), list(seeds or self.seeds), **extra)

    def resolved(self) -> dict[str, Any]:
        """The scenario with every default written out (what a run saves)."""
        config = self.trainer_config().model_dump(mode="json", exclude_none=True)
        game_params = envs.params_model(self.env_name)(**self.env_params).model_dump(
            mode="json", exclude_none=True)  # TOML has no null: a None default stays implied
        return {
            "name": self.name, "description": self.description, "seeds": self.seeds,
            "env": {"name": self.env_name, **game_params},
            "algorithm": {"name": self.algorithm_name, **config},
            **({"mechanism": dict(self.mechanism)} if self.mechanism else {}),
            "train": self.train.model_dump(mode="json"),
        }

    def to_toml(self) -> str:
        return tomli_w.dumps(self.resolved())


def _check_section(data: dict, section: str, names: list[str]) -> str:
    spec = data.get(section)
    if not isinstance(spec, dict):
        raise ScenarioError(f"{section}: required table is missing (e.g. [{section}] name = ...)")
    name = spec.get("name")
    if name is None:
        raise ScenarioError(f"{section}.name: required field is missing "
                            f"(allowed: {', '.join(names)})")
    if not isinstance(name, str) or name not in names:
        raise ScenarioError(f"{section}.name: {short(repr(name))} is not allowed "
                            f"(allowed: {', '.join(names)})")
    return name


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def check_values(data: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse (one-line ``ScenarioError``) tables and arrays nested more than ``max_depth``
    deep and any NaN or infinite number, naming where it is. Iterative: safe on any depth."""
    stack: list[tuple[tuple, Any, int]] = [((), data, 1)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, dict | list | tuple):
            if depth > max_depth:
                raise ScenarioError(f"{_dotted(path)}: tables or arrays nest more than "
                                    f"{max_depth} deep (allowed: at most {max_depth})")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(((*path, k), v, depth + 1) for k, v in items)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ScenarioError(f"{_dotted(path)}: {value} is not allowed: numbers must be "
                                "finite (no nan or inf)")


def check_size(scenario: Scenario, seeds: list[int] | None = None, game: Game | None = None,
               config: Any = None) -> None:
    """Refuse (one-line ``ScenarioError``) an iteration or evaluation whose observations
    alone exceed ``MAX_BATCH_VALUES`` values (a memory error later, or a machine brought to
    a halt), or that holds more worlds than a game with outside processes plays at once
    (``Processes.max_worlds``), counting the ``seeds`` the run is given (default: the
    scenario's)."""
    game = scenario.make_game() if game is None else game
    config = scenario.trainer_config() if config is None else config
    batch, evals = int(config.batch), scenario.train.eval_episodes
    field, episodes = ("algorithm.batch", batch) if batch >= evals else (
        "train.eval_episodes", evals)
    obs = int(np.prod(game.observation_space.shape))
    seeds = len(scenario.seeds if seeds is None else seeds)
    if has(game, Processes) and seeds * episodes > game.max_worlds:
        raise ScenarioError(
            f"{field}: {episodes} is not allowed: {seeds} seeds x {episodes} episodes = "
            f"{seeds * episodes} worlds at once, and {game.name} plays at most "
            f"{game.max_worlds} (one process each; use fewer episodes or seeds)")
    total = seeds * episodes * game.max_steps * game.n_agents * obs
    if total > MAX_BATCH_VALUES:
        raise ScenarioError(
            f"{field}: {episodes} is not allowed: {seeds} seeds x {episodes} episodes x "
            f"{game.max_steps} steps x {game.n_agents} agents x {obs} observation values = "
            f"{total:,} values at once (allowed: at most {MAX_BATCH_VALUES:,}; use fewer "
            "episodes, seeds or steps)")


def _check_agents(alg_name: str, config: Any, game: Game) -> None:
    """The game's agents suit the algorithm: their number is within what its config takes
    (``min_agents``, ``max_agents``), ``algorithm.agents`` lists one kind per agent, and a
    discrete give-reward agent (``give_mode`` "d": one output per action x give bit for
    each other agent) has at most ``MAX_WIDTH`` policy outputs."""
    n, kinds = game.n_agents, config.agents
    low = config.min_agents
    high = n if config.max_agents is None else config.max_agents
    if not low <= n <= high:
        raise ScenarioError(f"env.n_agents: {n} is not allowed: algorithm {alg_name!r} takes "
                            f"{low} to {high} agents")
    if kinds is not None and len(kinds) != n:
        raise ScenarioError(f"algorithm.agents: lists {len(kinds)} agents but "
                            f"{game.name} has {n}")
    modes = learners.trainer_class(alg_name).give_mode
    discrete = [k for k in kinds or [learners.default_kind(alg_name)] if modes.get(k) == "d"]
    outputs = game.action_space.n * 2 ** (n - 1)
    if discrete and outputs > MAX_WIDTH:
        raise ScenarioError(
            f"env.n_agents: {n} is not allowed: a {discrete[0]} agent chooses among "
            f"{game.action_space.n} actions x 2^{n - 1} give bits = {outputs:,} outputs "
            f"(allowed: at most {MAX_WIDTH:,}; use fewer agents or continuous giving)")


def _check_mechanism(scenario: Scenario, alg_name: str, game: Game) -> None:
    """The ``[mechanism]`` table: allowed with this algorithm and game, valid, and with the
    game's tax brackets (a schedule on other brackets would silently tax the wrong incomes)."""
    if not learners.trainer_class(alg_name).takes_mechanism:
        taking = [a for a in learners.algorithm_names()
                  if learners.trainer_class(a).takes_mechanism]
        raise ScenarioError(f"mechanism: algorithm {alg_name!r} does not take a tax "
                            f"mechanism (allowed with: {', '.join(taking)})")
    if not has(game, TaxPeriods):
        taxed = [n for n in envs.names() if has(envs.game_class(n), TaxPeriods)]
        raise ScenarioError(f"mechanism: env {scenario.env_name!r} has no taxes (allowed: "
                            f"{', '.join(taxed)})")
    try:
        mechanism = mechanisms.registry.build(scenario.mechanism)  # an empty table too
    except ValueError as err:
        raise ScenarioError(str(err)) from None
    try:
        check_fits(mechanism, game.cutoffs)
    except ValueError:  # the scenario's own wording: which field, which env setting
        field = "mechanism.thresholds" if "thresholds" in scenario.mechanism else "mechanism"
        raise ScenarioError(
            f"{field}: brackets {mechanism.cutoffs.tolist()} are not allowed: the schedule "
            f"must use the game's brackets, env.tax_cutoffs = {game.cutoffs.tolist()} (give "
            "both the same bracket edges)") from None


def from_dict(data: dict[str, Any], source: str = "scenario") -> Scenario:
    """Validate a scenario given as a dict; raises ``ScenarioError`` (one line)."""
    prefix = f"{source}: "
    try:
        if not isinstance(data, dict):
            raise ScenarioError(f"a scenario is a table of fields, not {type(data).__name__}")
        check_values(data)
        env_name = _check_section(data, "env", envs.names())
        alg_name = _check_section(data, "algorithm", learners.algorithm_names())
        try:
            scenario = Scenario(**data)
        except ValidationError as err:
            raise ScenarioError(one_line(err, Scenario)) from None
        env_params = {k: v for k, v in scenario.env.items() if k != "name"}
        try:
            envs.params_model(env_name)(**env_params)
        except ValidationError as err:
            raise ScenarioError(one_line(err, envs.params_model(env_name), "env")) from None
        config_cls = learners.trainer_class(alg_name).Config
        try:
            config = config_cls(**{k: v for k, v in scenario.algorithm.items() if k != "name"})
        except ValidationError as err:
            raise ScenarioError(one_line(err, config_cls, "algorithm")) from None
        game = scenario.make_game()
        if scenario.mechanism is not None:
            _check_mechanism(scenario, alg_name, game)
        _check_agents(alg_name, config, game)
        check_size(scenario, game=game, config=config)
    except ScenarioError as err:
        raise ScenarioError(prefix + str(err)) from None
    return scenario


_ITERATIONS = TypeAdapter(Iterations)


def check_iterations(iterations: Any) -> int | None:
    """An ``iterations`` override bounded like ``train.iterations`` (0 is refused with a
    one-line ``ScenarioError``, never replaced); None stays None."""
    if iterations is None:
        return None
    try:
        return _ITERATIONS.validate_python(iterations, strict=True)
    except ValidationError as err:
        raise ScenarioError(one_line(err, prefix="iterations")) from None


def budget(scenario: Scenario, iterations: int | None = None) -> int:
    """Training iterations of a run: the override ``iterations`` when given (see
    :func:`check_iterations`), else the scenario's ``train.iterations``."""
    checked = check_iterations(iterations)
    return scenario.train.iterations if checked is None else checked


_SEEDS = TypeAdapter(Annotated[list[Seed], Field(min_length=1, max_length=MAX_SEEDS)])


def check_seeds(seeds: Any) -> list[int]:
    """``seeds`` given to a run (e.g. ``runner.run(seeds=...)``) bounded like a scenario's:
    1 to ``MAX_SEEDS`` distinct integers in ``[0, 2^32)``; one-line ``ScenarioError``."""
    try:
        value = _SEEDS.validate_python(list(seeds), strict=True)
    except (ValidationError, TypeError) as err:
        detail = one_line(err, prefix="seeds") if isinstance(err, ValidationError) else \
            f"seeds: {seeds!r} is not allowed: a list of integers"
        raise ScenarioError(detail) from None
    if len(set(value)) != len(value):
        raise ScenarioError(f"seeds: {value} is not allowed: seeds must be distinct")
    return value


def find(name_or_path: str | Path) -> Path:
    """A scenario file by path, or by name in the shipped ``econsim/scenarios/`` folder."""
    p = Path(name_or_path)
    candidate = SCENARIO_DIR / f"{p.stem}.toml"
    try:
        if p.is_file():
            return p
        if p.suffix in ("", ".toml") and candidate.is_file() and not p.parent.parts:
            return candidate
    except (OSError, ValueError):  # e.g. a name too long for a file name, a NUL byte
        pass
    known = names()
    close = difflib.get_close_matches(p.stem[:MAX_NAME], known, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ScenarioError(f"{short(str(name_or_path))}: no such scenario file ({hint}"
                        f"`econsim list scenarios` lists the {len(known)} shipped ones)")


def names() -> list[str]:
    """Scenario names shipped in ``econsim/scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


# Tokens that open or close strings, comments and nesting in TOML text (an escape first, so
# an escaped quote never ends a string).
_TOKENS = re.compile(r'\\.|"""|\'\'\'|["\'#\[\]{}\n]', re.S)


def _nesting(text: str, limit: int) -> int:
    """Deepest nesting of arrays and inline tables (``[``, ``{``) outside strings and
    comments; stops counting once it passes ``limit``. Linear in the text, no recursion."""
    depth = deepest = 0
    inside: str | None = None  # the open string's delimiter, or "#" in a comment
    for match in _TOKENS.finditer(text):
        token = match.group()
        if inside is not None:
            if inside in ("'", "'''") and token[0] == "\\":  # no escapes in literal strings
                token = token[1:]
            if (token == inside != "#") or (token == "\n" and len(inside) == 1):
                inside = None
        elif token in ('"""', "'''", '"', "'", "#"):
            inside = token
        elif token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif token in "]}":
            depth = max(depth - 1, 0)
    return deepest


def parse_text(text: str, source: str = "scenario") -> dict[str, Any]:
    """A scenario's TOML text as a dict; one-line ``ScenarioError`` naming ``source`` if it
    is too large, nests deeper than ``MAX_DEPTH`` (checked before parsing) or is not TOML."""
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError(f"{source}: {len(text):,} characters is not allowed (at most "
                            f"{MAX_FILE_BYTES:,}; a scenario is a few hundred)")
    too_deep = (f"{source}: arrays or tables nest more than {MAX_DEPTH} deep (allowed: at "
                f"most {MAX_DEPTH})")
    if _nesting(text, MAX_DEPTH) > MAX_DEPTH:
        raise ScenarioError(too_deep)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{source}: not valid TOML: {err}") from None
    except RecursionError:  # the scan above missed a nesting (it cannot parse all of TOML)
        raise ScenarioError(too_deep) from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise ScenarioError(f"{source}: not valid TOML: {err}") from None


def parse_bytes(raw: bytes, source: str = "scenario") -> dict[str, Any]:
    """A scenario file's bytes as a dict (UTF-8, an optional byte-order mark skipped); a
    one-line ``ScenarioError`` naming ``source`` if too large, not UTF-8 or not TOML."""
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"{source}: a file larger than {MAX_FILE_BYTES:,} bytes is not "
                            "allowed (a scenario is a few hundred)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{source}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                            f"{err.start}); save the file as UTF-8") from None
    return parse_text(text, source)


def read(path: str | Path) -> dict[str, Any]:
    """The TOML table of the file at ``path`` (at most ``MAX_FILE_BYTES`` are read); one-line
    ``ScenarioError`` naming the file if it cannot be read or parsed (see ``parse_bytes``)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ScenarioError(f"{path.name}: cannot be read: {err.strerror or err}") from None
    return parse_bytes(raw, path.name)


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file (or a shipped scenario's name)."""
    p = find(path)
    return from_dict(read(p), source=p.name)
