"""The learner registry: a trainer class declares its algorithm names with a decorator.

``@register_algorithm("pg", "pg-d", "pg-c", kinds={"pg-d": "pg-d", "pg-c": "pg-c"})`` registers
the class under each name; an algorithm's default agent kind (what ``algorithm.agents`` is
filled with when a scenario lists none) is ``kinds[name]``, else the class's
``default_kind``. ``learners`` imports every module of its package once (on first use of
``algorithm_names`` / ``trainer_class`` / ``default_kind``), so a new learner is one new file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)

#: algorithm name -> (trainer class, default agent kind)
ALGORITHMS: dict[str, tuple[type, str]] = {}


def register_algorithm(*names: str, kinds: dict[str, str] | None = None) -> Callable[[T], T]:
    """Class decorator: register a trainer class under ``names`` (each registered once)."""
    kinds = dict(kinds or {})
    unknown = set(kinds) - set(names)
    if not names or unknown:
        raise ValueError(f"register_algorithm: names {names!r}; kinds of unknown names "
                         f"{sorted(unknown)}")

    def decorate(cls: T) -> T:
        from learners.contract import TrainerConfig, TrainerTraits

        config = getattr(cls, "Config", None)  # the contract is checked here, once
        missing = [f for f in ("agents", "batch")
                   if not (isinstance(config, type) and f in config.model_fields)]
        if not (issubclass(cls, TrainerTraits) and isinstance(config, type)
                and issubclass(config, TrainerConfig)) or missing:
            raise TypeError(f"algorithm {names[0]!r}: {cls.__name__} must derive from "
                            "learners.contract.TrainerTraits and its Config from TrainerConfig "
                            "with the fields agents and batch"
                            + (f" (missing: {', '.join(missing)})" if missing else ""))
        for name in names:
            if name in ALGORITHMS and ALGORITHMS[name][0] is not cls:
                raise ValueError(f"algorithm {name!r} is registered twice "
                                 f"({ALGORITHMS[name][0].__name__} and {cls.__name__})")
            kind = kinds.get(name, cls.default_kind)
            if kind not in cls.Config.kinds:
                raise ValueError(f"algorithm {name!r}: default kind {kind!r} is not one of "
                                 f"{cls.__name__}.Config.kinds {cls.Config.kinds}")
            ALGORITHMS[name] = (cls, kind)
        return cls

    return decorate
