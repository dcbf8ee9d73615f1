"""The game registry: a game module declares itself with ``@register_game(name, Params)``.

``econsim.envs`` imports every module of its package once, so a new game is one new file
there; ``econsim.envs.make`` / ``names`` / ``params_model`` read this registry, and so do
the CLI, ``econsim bench``, the Mesa face, the app, the PettingZoo adapter and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

G = TypeVar("G", bound=type)

#: name -> (game class, pydantic model of its parameters)
GAMES: dict[str, tuple[type, type[BaseModel]]] = {}

_REQUIRED = ("reset", "step", "observe", "describe")


def register_game(name: str, params: type[BaseModel]) -> Callable[[G], G]:
    """Class decorator: register a game class under ``name``; ``params`` validates the
    keyword arguments of ``cls(**params)``. A name is registered once."""

    def decorate(cls: G) -> G:
        missing = [m for m in _REQUIRED if not callable(vars_of(cls).get(m))]
        if missing:
            raise TypeError(f"game {name!r}: {cls.__name__} lacks {', '.join(missing)} "
                            "(the Game protocol, econsim.core.game)")
        if name in GAMES and GAMES[name][0] is not cls:
            raise ValueError(f"game {name!r} is registered twice ({GAMES[name][0].__name__} "
                             f"and {cls.__name__})")
        GAMES[name] = (cls, params)
        return cls

    return decorate


def vars_of(cls: type) -> dict:
    """Members of ``cls`` and its bases (the class dictionaries, most derived first)."""
    out: dict = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass))
    return out
