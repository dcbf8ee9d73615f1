"""The shipped tax mechanisms, registered by name (``mechanisms.registry``): the fixed
schedules of ``mechanisms.tax`` (``us_federal``, ``free_market``, ``flat``, ``custom``) and the
adaptive Saez planner (``saez``), each with a bounded pydantic model of its parameters (no
NaN or inf); the schedule itself is checked by ``tax.check_schedule``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from econsim.bounds import (
    FINITE,
    MAX_BRACKETS,
    MAX_COIN,
    MAX_ITERATIONS,
    PositiveCoefficient,
)
from mechanisms import tax
from mechanisms.registry import register_mechanism

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


register_mechanism("us_federal", UsFederalParams)(tax.us_federal)
register_mechanism("free_market", FreeMarketParams)(tax.free_market)
register_mechanism("flat", FlatParams)(tax.flat)
register_mechanism("custom", CustomParams)(tax.custom)
register_mechanism("saez", SaezParams)(tax.SaezTax)
