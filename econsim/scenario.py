"""Scenario files: which game, which learners, what budget, which seeds (TOML, pydantic).

A scenario is validated completely before anything runs. A bad file raises
``ScenarioError`` whose message is one line naming the field, the value and what is
allowed, e.g. ``er21_lio.toml: algorithm.lr: -1.0 is not allowed: Input should be greater
than 0``.

Layout of a file (see ``scenarios/*.toml``)::

    name = "er21_lio"
    description = "..."
    seeds = [0, 1, 2, 3, 4]

    [env]                 # name + the game's parameters (econsim.envs)
    name = "escape_room"
    n_agents = 2
    n_required = 1

    [algorithm]           # name + the trainer's hyperparameters (learners.ALGORITHMS)
    name = "lio"
    lr = 1e-4

    [mechanism]           # optional: a tax mechanism (economies; mechanisms.registry)
    name = "us_federal"

    [train]               # budget and bookkeeping
    iterations = 50000
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import learners
import mechanisms.registry
from econsim import envs
from econsim.core import Game
from econsim.errors import ScenarioError, one_line

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"


class TrainSpec(BaseModel):
    """Training budget and bookkeeping."""

    model_config = ConfigDict(extra="forbid")
    iterations: int = Field(1000, ge=1, description="training iterations (LIO: 2 episodes each)")
    log_every: int = Field(100, ge=1, description="iterations averaged into one log row")
    eval_every: int = Field(1000, ge=1, description="iterations between evaluations")
    eval_episodes: int = Field(100, ge=1, description="episodes per seed in an evaluation")
    checkpoint_every: int = Field(5000, ge=1, description="iterations between checkpoints")


class Scenario(BaseModel):
    """A validated scenario. ``env`` and ``algorithm`` hold ``name`` plus parameters."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="identifier used in run ids")
    description: str = ""
    seeds: list[int] = Field([0], min_length=1, description="independent replicas")
    env: dict[str, Any]
    algorithm: dict[str, Any]
    mechanism: dict[str, Any] | None = None
    train: TrainSpec = TrainSpec()

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError("seeds must be distinct non-negative integers")
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
        game_params = envs.params_model(self.env_name)(**self.env_params).model_dump(mode="json")
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
    if name not in names:
        raise ScenarioError(f"{section}.name: {name!r} is not allowed "
                            f"(allowed: {', '.join(names)})")
    return name


def from_dict(data: dict[str, Any], source: str = "scenario") -> Scenario:
    """Validate a scenario given as a dict; raises ``ScenarioError`` (one line)."""
    prefix = f"{source}: "
    try:
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
        if scenario.mechanism is not None:
            if not getattr(learners.trainer_class(alg_name), "takes_mechanism", False):
                raise ScenarioError(f"mechanism: algorithm {alg_name!r} does not take a tax "
                                    "mechanism (allowed with: ppo)")
            if not hasattr(scenario.make_game(), "set_tax_rates"):
                raise ScenarioError(f"mechanism: env {env_name!r} has no taxes (allowed: gtb)")
            try:
                scenario.make_mechanism()
            except ValueError as err:
                raise ScenarioError(str(err)) from None
        n = scenario.make_game().n_agents
        if config.agents is not None and len(config.agents) != n:
            raise ScenarioError(f"algorithm.agents: lists {len(config.agents)} agents but "
                                f"{env_name} has {n}")
    except ScenarioError as err:
        raise ScenarioError(prefix + str(err)) from None
    return scenario


def find(name_or_path: str | Path) -> Path:
    """A scenario file by path, or by name in the ``scenarios/`` folder."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    candidate = SCENARIO_DIR / f"{p.stem}.toml"
    if p.suffix in ("", ".toml") and candidate.is_file() and not p.parent.parts:
        return candidate
    known = ", ".join(names()) or "none"
    raise ScenarioError(f"{name_or_path}: no such scenario file (known scenarios: {known})")


def names() -> list[str]:
    """Scenario names shipped in ``scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file (or a shipped scenario's name)."""
    p = find(path)
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{p.name}: not valid TOML: {err}") from None
    return from_dict(data, source=p.name)
