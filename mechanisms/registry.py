"""Tax mechanisms by name, as a scenario's ``[mechanism]`` table names them.

``build({"name": "flat", "rate": 0.3})`` -> a ``TaxMechanism`` (``mechanisms.tax``). Fixed
schedules (``free_market``, ``us_federal``, ``flat``, ``custom``) and the adaptive Saez planner
(``saez``) are built here; designers that learn (MetaGrad, dual-RL) are algorithms, not
mechanisms. Every error is one line naming the field and what is allowed.
"""

from __future__ import annotations

import inspect
from typing import Any

from mechanisms import tax

FIXED = tuple(tax.PRESETS)  # free_market, us_federal, flat, custom
NAMES = (*FIXED, "saez")


def names() -> list[str]:
    return list(NAMES)


def build(spec: dict[str, Any]) -> tax.TaxMechanism:
    """A fresh mechanism from ``{"name": ..., **params}`` (ValueError, one line, if bad)."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"mechanism.name: required field is missing (allowed: {', '.join(NAMES)})")
    name = spec["name"]
    params = {k: v for k, v in spec.items() if k != "name"}
    if name in FIXED:
        try:
            return tax.preset(name, **params)
        except ValueError as err:
            raise ValueError(f"mechanism: {err}") from None
    if name == "saez":
        allowed = [p for p in inspect.signature(tax.SaezTax).parameters]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"mechanism.{unknown[0]}: unknown field for 'saez' "
                             f"(allowed: {', '.join(allowed)})")
        try:
            return tax.SaezTax(**params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"mechanism (saez): {err}") from None
    raise ValueError(f"mechanism.name: {name!r} is not allowed (allowed: {', '.join(NAMES)})")
