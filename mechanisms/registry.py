"""Tax mechanisms by name, as a scenario's ``[mechanism]`` table names them.

``build({"name": "flat", "rate": 0.3})`` -> a ``TaxMechanism`` (``mechanisms.tax``). A
mechanism module registers each mechanism it offers with
``@register_mechanism(name, Params)`` on a factory ``(**params) -> TaxMechanism``; this module
imports every module of the ``mechanisms`` package once, so a new mechanism is one new file
there (the shipped ones: ``mechanisms.schedules``). Designers that learn (MetaGrad, dual-RL)
are algorithms, not mechanisms. Each mechanism's parameters are a bounded pydantic model;
every error is one line naming the field and what is allowed.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

import mechanisms
from econsim.errors import one_line, short

F = TypeVar("F", bound=Callable[..., Any])

#: name -> (factory ``(**params) -> TaxMechanism``, pydantic model of its parameters)
MECHANISMS: dict[str, tuple[Callable[..., Any], type[BaseModel]]] = {}

#: the pydantic model of each mechanism's parameters
PARAMS: dict[str, type[BaseModel]] = {}


def register_mechanism(name: str, params: type[BaseModel]) -> Callable[[F], F]:
    """Register ``factory`` as the mechanism ``name`` (once); ``params`` validates what a
    ``[mechanism]`` table gives it besides ``name``."""

    def decorate(factory: F) -> F:
        if name in MECHANISMS and MECHANISMS[name][0] is not factory:
            raise ValueError(f"mechanism {name!r} is registered twice")
        MECHANISMS[name] = (factory, params)
        PARAMS[name] = params
        return factory

    return decorate


def names() -> list[str]:
    """Registered mechanism names, in registration order."""
    return list(MECHANISMS)


def _checked(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` validated by the mechanism's model (only those given), or a one-line
    ValueError naming the field, the value and what is allowed."""
    model = PARAMS[name]
    try:
        return model(**params).model_dump(exclude_unset=True)
    except ValidationError as err:
        raise ValueError(one_line(err, model, "mechanism")) from None


def build(spec: dict[str, Any]) -> Any:
    """A fresh mechanism from ``{"name": ..., **params}`` (ValueError, one line, if bad)."""
    allowed = ", ".join(names())
    if not isinstance(spec, dict):
        raise ValueError(f"mechanism: expected a table like {{name = \"flat\", rate = 0.3}}, "
                         f"got {short(repr(spec))} (allowed names: {allowed})")
    if "name" not in spec:
        raise ValueError(f"mechanism.name: required field is missing (allowed: {allowed})")
    name = spec["name"]
    params = {k: v for k, v in spec.items() if k != "name"}
    if not isinstance(name, str) or name not in MECHANISMS:
        raise ValueError(f"mechanism.name: {short(repr(name))} is not allowed "
                         f"(allowed: {allowed})")
    params = _checked(name, params)
    try:
        return MECHANISMS[name][0](**params)
    except ValueError as err:
        raise ValueError(f"mechanism: {err}") from None


# the shipped mechanisms first (their order is the app's), then any other module
importlib.import_module("mechanisms.schedules")
for _module in pkgutil.iter_modules(mechanisms.__path__, "mechanisms."):
    if _module.name != __name__:
        importlib.import_module(_module.name)
