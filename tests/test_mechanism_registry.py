"""Mechanisms register themselves by name (``mechanisms.registry.register_mechanism``): a new
tax mechanism is one module, and scenarios, the Mesa face and the app see it."""

import numpy as np
import pytest
from pydantic import BaseModel, Field

from econsim.bounds import FINITE
from mechanisms import registry, tax


class _Params(BaseModel):
    model_config = FINITE
    rate: float = Field(0.1, ge=0, le=1)


def test_shipped_mechanisms_are_registered_in_order():
    assert registry.names() == ["us_federal", "free_market", "flat", "custom", "saez"]
    assert set(registry.PARAMS) == set(registry.names())


def test_a_registered_mechanism_is_built_validated_and_listed(monkeypatch):
    monkeypatch.setattr(registry, "MECHANISMS", dict(registry.MECHANISMS))
    monkeypatch.setattr(registry, "PARAMS", dict(registry.PARAMS))

    @registry.register_mechanism("bottom_only", _Params)
    def bottom_only(rate: float = 0.1) -> tax.BracketTax:
        rates = np.zeros(len(tax.US_FEDERAL_CUTOFFS))
        rates[0] = rate
        return tax.BracketTax(tax.US_FEDERAL_CUTOFFS, rates)

    assert "bottom_only" in registry.names()
    mech = registry.build({"name": "bottom_only", "rate": 0.4})
    assert mech.rates()[0] == 0.4 and mech.rates()[1:].sum() == 0
    with pytest.raises(ValueError, match=r"^mechanism.rate: "):
        registry.build({"name": "bottom_only", "rate": 4})
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_mechanism("bottom_only", _Params)(lambda: None)


def test_unknown_mechanism_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"allowed: us_federal, free_market, flat, custom, saez"):
        registry.build({"name": "robin_hood"})


def test_a_mechanism_given_as_a_bare_string_gets_a_table_hint():
    with pytest.raises(ValueError, match=r"^mechanism: expected a table like"):
        registry.build("flat")
