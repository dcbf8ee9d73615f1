"""Tax mechanisms by name, as a scenario's ``[mechanism]`` table names them.

``build({"name": "flat", "rate": 0.3})`` -> a ``TaxMechanism`` (``mechanisms.tax``). Fixed
schedules (``free_market``, ``us_federal``, ``flat``, ``custom``) and the adaptive Saez planner
(``saez``) are built here; designers that learn (MetaGrad, dual-RL) are algorithms, not
mechanisms. Each mechanism's parameters are a bounded pydantic model (``PARAMS``; no NaN or
inf), the schedule is checked by ``tax.check_schedule``; every error is one line naming the
field and what is allowed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from econsim.bounds import (
    FINITE,
    MAX_BRACKETS,
    MAX_COIN,
    MAX_ITERATIONS,
    PositiveCoefficient,
)
from econsim.errors import one_line, short
from mechanisms import tax

FIXED = tuple(tax.PRESETS)  # free_market, us_federal, flat, custom
NAMES = (*FIXED, "saez")


Thresholds = Annotated[list[Annotated[float, Field(ge=0, le=MAX_COIN)]],
                       Field(min_length=1, max_length=MAX_BRACKETS)]
"""Bracket lower edges in coin (``tax.check_schedule`` checks their order, the scenario that
they are the game's brackets)."""
Rates = Annotated[list[float], Field(min_length=1, max_length=MAX_BRACKETS)]
"""One marginal rate per bracket (finite; ``tax.check_schedule`` checks each is in [0, 1])."""


class UsFederalParams(BaseModel):
    """``us_federal`` takes no parameters."""

    model_config = FINITE


class FreeMarketParams(BaseModel):
    """Parameters of ``free_market`` (every rate 0)."""

    model_config = FINITE
    thresholds: Thresholds = Field(list(tax.US_FEDERAL_CUTOFFS), description="bracket edges")


class FlatParams(FreeMarketParams):
    """Parameters of ``flat`` (one rate on every bracket)."""

    rate: float = Field(0.3, description="the rate of every bracket, in [0, 1] (checked by "
                        "tax.check_schedule, whose message the app and sweeps show)")


class CustomParams(BaseModel):
    """Parameters of ``custom`` (any schedule)."""

    model_config = FINITE
    thresholds: Thresholds = Field(description="bracket lower edges, first 0, increasing")
    rates: Rates = Field(description="one marginal rate per bracket")


class SaezParams(BaseModel):
    """Parameters of the ``saez`` mechanism (``mechanisms.tax.SaezTax``), bounded."""

    model_config = FINITE
    thresholds: Thresholds = Field(list(tax.US_FEDERAL_CUTOFFS), description="bracket edges")
    elasticity: PositiveCoefficient | None = Field(None, description="fixed elasticity; None: "
                                                   "estimated from the incomes")
    default_elasticity: PositiveCoefficient = Field(0.5, description="used until an estimate")
    elasticity_bounds: tuple[PositiveCoefficient, PositiveCoefficient] = Field(
        (0.05, 3.0), description="the estimate is clipped to [low, high]")
    welfare: Literal[tax.WELFARE_WEIGHTS] = Field("inverse_income",  # type: ignore[valid-type]
                                                  description="social welfare weights")
    buffer_size: int = Field(10_000, ge=1, le=MAX_ITERATIONS,
                             description="(income, rate) pairs kept")
    min_samples: int = Field(20, ge=0, le=MAX_ITERATIONS, description="pairs for an estimate")
    min_tail: int = Field(2, ge=0, le=MAX_ITERATIONS, description="incomes above a cutoff for "
                          "its own rate")
    initial_rates: Rates | None = Field(None, description="rates before any income")


def names() -> list[str]:
    return list(NAMES)


PARAMS: dict[str, type[BaseModel]] = {
    "us_federal": UsFederalParams, "free_market": FreeMarketParams, "flat": FlatParams,
    "custom": CustomParams, "saez": SaezParams,
}
"""The pydantic model of each mechanism's parameters."""


def _checked(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` validated by ``PARAMS[name]`` (only those given), or a one-line ValueError
    naming the field, the value and what is allowed."""
    model = PARAMS[name]
    try:
        return model(**params).model_dump(exclude_unset=True)
    except ValidationError as err:
        raise ValueError(one_line(err, model, "mechanism")) from None


def build(spec: dict[str, Any]) -> tax.TaxMechanism:
    """A fresh mechanism from ``{"name": ..., **params}`` (ValueError, one line, if bad)."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"mechanism.name: required field is missing (allowed: {', '.join(NAMES)})")
    name = spec["name"]
    params = {k: v for k, v in spec.items() if k != "name"}
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"mechanism.name: {short(repr(name))} is not allowed "
                         f"(allowed: {', '.join(NAMES)})")
    params = _checked(name, params)
    if name in FIXED:
        try:
            return tax.preset(name, **params)
        except ValueError as err:
            raise ValueError(f"mechanism: {err}") from None
    try:
        return tax.SaezTax(**params)
    except ValueError as err:
        raise ValueError(f"mechanism (saez): {err}") from None
