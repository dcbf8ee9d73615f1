"""Agent brains: networks, differentiable updates, and the learning algorithms of the Diss.

Each trainer class registers the scenario ``algorithm.name`` values it implements with
``@learners.registry.register_algorithm``; this package imports all of its modules once, on
first use of the functions below, so adding a learner is adding one module. A trainer is
built as ``Trainer(game, Trainer.Config(**params), seeds)``; what callers may use on it is
the contract in ``learners.contract``.
"""

from __future__ import annotations

import importlib
import pkgutil

from learners.registry import ALGORITHMS

_loaded = False


def _discover() -> None:
    """Import every module of this package once (each registers its algorithms)."""
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__, f"{__name__}."):
            importlib.import_module(module.name)
        _loaded = True


def algorithm_names() -> list[str]:
    """Names a scenario's ``algorithm.name`` may take."""
    _discover()
    return sorted(ALGORITHMS)


def trainer_class(name: str) -> type:
    """The trainer class registered for algorithm ``name`` (ValueError naming the allowed)."""
    _discover()
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r} (allowed: {', '.join(algorithm_names())})")
    return ALGORITHMS[name][0]


def default_kind(name: str) -> str:
    """The agent kind of algorithm ``name`` when a scenario lists none."""
    _discover()
    return ALGORITHMS[name][1]
