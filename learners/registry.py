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
