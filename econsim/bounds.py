"""Bounds of every scenario value: one place, documented, used by every pydantic model.

A scenario file is user input. Every number in it is finite (no NaN, no inf: each model's
config is :data:`FINITE`) and lies between documented bounds, every list and string has a
maximum length, so a bad value fails at validation with a one-line message (the field, the
value and what is allowed) instead of an all-NaN network, a hang or a memory error::

    algorithm.lr: 1e+308 is not allowed: Input should be less than or equal to 10

The bounds are generous (far beyond the Diss's settings) and sane: a learning rate above
10 or a coefficient above 1e6 only ever diverges. The size of one iteration as a whole
(seeds x episodes x steps x agents x observation size) is bounded by
:data:`MAX_BATCH_VALUES` in ``econsim.scenario``.

The annotated types below carry the bounds, e.g. ``lr: LearningRate = Field(1e-3,
description=...)``; README.md ("Scenario files") lists them.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

FINITE = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
"""``model_config`` of every scenario model: unknown fields and NaN/inf refused, and strict
types (a boolean or text is no number, "yes" no boolean; an integer still counts as a float)."""

MAX_SEEDS = 64
"""Seeds (independent replicas) per run."""
SEED_LIMIT = 2**32
"""Seeds are integers in ``[0, 2^32)`` (numpy's ``SeedSequence`` entropy word)."""
MAX_NAME = 64
"""Characters of a scenario name (it starts every run id and folder name)."""
RUN_ID_MAX = 200
"""Characters of a run id (a run folder's name)."""
MAX_RUN_SUFFIX = RUN_ID_MAX - MAX_NAME
"""Room a run id leaves after the scenario name: ``-<UTC time>-<hex>`` (21 characters) for a
run, ``-sweep-<UTC time>-<hex>-<nn>-<values>`` (at most about 95) for a sweep's run."""
NAME_RULE = ("a plain name: letters, digits and _ . - , starting with a letter or digit, "
             "no '..'")
"""The one rule of scenario names, sweep ids and run ids (lengths aside)."""
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_plain_name(value: object, max_length: int = RUN_ID_MAX) -> bool:
    """Whether ``value`` follows :data:`NAME_RULE` and has at most ``max_length``
    characters (a scenario name, a sweep id, a run id: one rule)."""
    return (isinstance(value, str) and len(value) <= max_length and ".." not in value
            and _PLAIN.fullmatch(value) is not None)


def _scenario_name(value: str) -> str:
    if not is_plain_name(value, MAX_NAME):
        raise ValueError(f"a scenario name is {NAME_RULE}, at most {MAX_NAME} characters "
                         "(it starts every run id)")
    return value
MAX_DESCRIPTION = 2000
"""Characters of a scenario description."""
MAX_TEXT = 256
"""Characters of any other string value (e.g. a map name or path)."""
MAX_AGENTS = 100
"""Agents in a game."""
MAX_STEPS = 1000
"""Steps of one episode (and of a tax period, an order's life): the AI-Economist's episode
length; policy-gradient learners hold a steps x steps discount matrix."""
MAX_BATCH = 4096
"""Episodes (worlds) per update, per replica."""
MAX_EVAL_EPISODES = 10_000
"""Episodes per seed in one evaluation."""
MAX_ITERATIONS = 100_000_000
"""Training iterations, and every interval counted in iterations or episodes."""
MAX_EPOCHS = 100
"""Passes over one batch (PPO epochs, critic steps per iteration)."""
MAX_MINIBATCHES = 1024
"""Minibatches per pass."""
MAX_LAYERS = 8
"""Hidden layers of a network (0 = a linear map)."""
MAX_WIDTH = 4096
"""Units of one hidden layer."""
MAX_LR = 10.0
"""Largest learning rate or step size."""
MAX_COEF = 1e6
"""Largest coefficient, weight, scale or amount (entropy, cost, clip, r_max, labour...)."""
MAX_BRACKETS = 32
"""Brackets of a tax schedule."""
MAX_COIN = 1e9
"""Largest amount of coin in a schedule's bracket edge."""
MAX_LIST = 64
"""Entries of any other list or table (incentive values, incentives per action)."""

# ------------------------------------------------------------------------------ numbers
LearningRate = Annotated[float, Field(gt=0, le=MAX_LR)]
"""A learning rate or step size: ``(0, 10]``."""
StepSize = Annotated[float, Field(ge=0, le=MAX_LR)]
"""A step size that may be 0 (e.g. LOLA's look-ahead; 0 = naive learning): ``[0, 10]``."""
Coefficient = Annotated[float, Field(ge=0, le=MAX_COEF)]
"""A non-negative coefficient, weight or amount: ``[0, 1e6]``."""
PositiveCoefficient = Annotated[float, Field(gt=0, le=MAX_COEF)]
"""A positive coefficient, scale or amount: ``(0, 1e6]``."""
Probability = Annotated[float, Field(ge=0, le=1)]
"""A probability, fraction, rate or discount: ``[0, 1]``."""
Fraction = Annotated[float, Field(gt=0, le=1)]
"""A positive fraction (discount, update rate): ``(0, 1]``."""

# ------------------------------------------------------------------------------ counts
Agents = Annotated[int, Field(ge=1, le=MAX_AGENTS)]
"""Number of agents: ``[1, 100]`` (a game may ask for more, e.g. Escape Room 2)."""
Steps = Annotated[int, Field(ge=1, le=MAX_STEPS)]
"""Steps of an episode or period: ``[1, 1000]``."""
Episodes = Annotated[int, Field(ge=1, le=MAX_BATCH)]
"""Episodes per update: ``[1, 4096]``."""
Iterations = Annotated[int, Field(ge=1, le=MAX_ITERATIONS)]
"""Iterations or an interval counted in iterations: ``[1, 1e8]``."""
Count = Annotated[int, Field(ge=0, le=MAX_ITERATIONS)]
"""A count that may be 0 (e.g. curriculum iterations): ``[0, 1e8]``."""
Epochs = Annotated[int, Field(ge=1, le=MAX_EPOCHS)]
"""Passes over a batch: ``[1, 100]``."""
Minibatches = Annotated[int, Field(ge=1, le=MAX_MINIBATCHES)]
"""Minibatches per pass: ``[1, 1024]``."""
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
"""Units of a hidden layer: ``[1, 4096]``."""
Hidden = Annotated[list[Width], Field(max_length=MAX_LAYERS)]
"""Hidden layer sizes: at most 8 layers of 1 to 4096 units each."""
Kinds = Annotated[list[Annotated[str, Field(max_length=MAX_TEXT)]],
                  Field(max_length=MAX_AGENTS)]
"""Kind of each agent (the learner checks the names)."""
ScenarioName = Annotated[str, Field(max_length=MAX_NAME), AfterValidator(_scenario_name)]
"""A scenario's ``name``: :data:`NAME_RULE`, at most 64 characters, so that every run id made
from it (name + at most :data:`MAX_RUN_SUFFIX` characters) is a valid run id."""
Text = Annotated[str, Field(max_length=MAX_TEXT)]
"""A short string (a name or a path): at most 256 characters."""
