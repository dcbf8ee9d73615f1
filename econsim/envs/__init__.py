"""The games: ``make(name, **params)``, ``names()``, ``params_model(name)``, ``game_class``.

Every module (or sub-package) of this package is imported once, and each game in it
registers itself with ``@econsim.core.registry.register_game(name, Params)``: adding a game is
adding one file here. A game module holds its rules once (numpy, batch-first) and a pydantic
``Params`` model that validates its parameters; a bad parameter fails with a one-line
message. Importing this package loads neither torch nor pandas.

``make`` composes a game with its default components: a game with ``TaxPeriods`` gets
``mechanisms.tax.enact`` as its tax rule (Diss eq. 6.7-6.8).
"""

from __future__ import annotations

import importlib
import pkgutil

from pydantic import ValidationError

from econsim.core import Game
from econsim.core.capabilities import TaxPeriods, has
from econsim.core.registry import GAMES
from econsim.errors import one_line

for _module in pkgutil.iter_modules(__path__, f"{__name__}."):
    importlib.import_module(_module.name)


class UnknownEnvError(ValueError):
    """Raised for an env name that is not registered."""


def names() -> list[str]:
    """Names accepted by ``make``."""
    return sorted(GAMES)


def _entry(name: str) -> tuple[type, type]:
    if not isinstance(name, str) or name not in GAMES:
        raise UnknownEnvError(f"unknown env {name!r} (allowed: {', '.join(names())})")
    return GAMES[name]


def params_model(name: str) -> type:
    """The pydantic model validating the parameters of env ``name``."""
    return _entry(name)[1]


def game_class(name: str) -> type:
    """The class of env ``name`` (its capabilities: ``econsim.core.capabilities.names_of``)."""
    return _entry(name)[0]


def make(name: str, **params) -> Game:
    """Build game ``name`` with ``params``; ``ValueError`` with a one-line message if bad."""
    cls, model = _entry(name)
    try:
        model(**params)
    except ValidationError as err:
        raise ValueError(one_line(err, model, prefix=name)) from None
    game = cls(**params)
    if has(game, TaxPeriods):
        from mechanisms.tax import enact

        game.install_tax(enact)
    return game
