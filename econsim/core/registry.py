"""The game registry: a game module declares itself with ``@register_game(name, Params)``.

``econsim.envs`` imports every module of its package once, so a new game is one new file
there; ``econsim.envs.make`` / ``names`` / ``params_model`` read this registry, and so do
the CLI, ``econsim bench``, the Mesa face, the app, the PettingZoo adapter and the tests.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

G = TypeVar("G", bound=type)

#: name -> (game class, pydantic model of its parameters)
GAMES: dict[str, tuple[type, type[BaseModel]]] = {}

#: the tables whose columns a game may document (``econsim.dictionary``)
GAME_TABLES = ("run_agents", "run_episodes", "steps")

_REQUIRED = ("reset", "step", "observe", "describe")


def register_game(name: str, params: type[BaseModel]) -> Callable[[G], G]:
    """Class decorator: register a game class under ``name``; ``params`` validates the
    keyword arguments of ``cls(**params)``. A name is registered once."""

    def decorate(cls: G) -> G:
        missing = [m for m in _REQUIRED if not callable(vars_of(cls).get(m))]
        if missing:
            raise TypeError(f"game {name!r}: {cls.__name__} lacks {', '.join(missing)} "
                            "(the Game protocol, econsim.core.game)")
        check_columns(name, columns_of(cls))
        if name in GAMES and GAMES[name][0] is not cls:
            raise ValueError(f"game {name!r} is registered twice ({GAMES[name][0].__name__} "
                             f"and {cls.__name__})")
        GAMES[name] = (cls, params)
        return cls

    return decorate


def columns_of(cls: type) -> dict[str, dict[str, tuple[str, str]]]:
    """The game's own columns: ``{table: {column: (unit, meaning)}}`` for the tables in
    :data:`GAME_TABLES` (its per-agent step events in ``run_agents``, its episode metrics in
    ``run_episodes``, its ``describe`` attributes in ``steps``). Declared as the class
    attribute ``columns`` (optional: a game without it writes only shared columns); a
    ``{k}`` in a column name stands for an agent index."""
    return vars_of(cls).get("columns", {})


def bench_of(cls: type) -> tuple[dict[str, dict], tuple[int, ...]]:
    """What ``econsim bench`` measures of a game: ``bench_variants`` (case name -> parameters;
    default: the game's defaults under its own name) and ``bench_batches`` (batch sizes;
    default 4096 worlds), optional class attributes."""
    members = vars_of(cls)
    return dict(members.get("bench_variants", {})), tuple(members.get("bench_batches", (4096,)))


def unavailable(cls: type) -> str | None:
    """Why games of class ``cls`` cannot be made in this Python (one line), or None.

    A game that needs optional packages declares the modules it imports as ``requires`` and
    the pip extra that installs them as ``extra`` (class attributes, e.g. ``sumo_merge``:
    ``("sumo", "libsumo")`` from ``econsim[traffic]``); its module must import without them.
    Tests and ``econsim bench`` skip such a game where its packages are missing."""
    members = vars_of(cls)
    for module in members.get("requires", ()):
        if not importable(module):
            extra = members.get("extra")
            how = f": pip install 'econsim[{extra}]'" if extra else ""
            return f"{members.get('name', cls.__name__)} needs {module}{how}"
    return None


def importable(module: str) -> bool:
    """Whether ``import module`` would find it (without importing it; a module set to None
    in ``sys.modules`` counts as missing)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_columns(name: str, columns: object) -> None:
    """``columns`` is ``{table: {column: (unit, meaning)}}`` with known tables and text."""
    ok = isinstance(columns, dict) and all(
        t in GAME_TABLES and isinstance(cols, dict) and all(
            isinstance(c, str) and isinstance(e, tuple) and len(e) == 2
            and all(isinstance(x, str) and x for x in e) for c, e in cols.items())
        for t, cols in columns.items())
    if not ok:
        raise TypeError(f"game {name!r}: columns must map a table ({', '.join(GAME_TABLES)}) "
                        "to {column: (unit, meaning)} with non-empty texts")


def vars_of(cls: type) -> dict:
    """Members of ``cls`` and its bases (the class dictionaries, most derived first)."""
    out: dict = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass))
    return out
