"""Registry of games: ``make(name, **params)`` and ``names()``.

Each game module holds its rules once (numpy, batch-first) and a pydantic ``Params`` model
that validates its parameters; a bad parameter fails with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from econsim.core import Game
from econsim.envs import cleanup, escape_room, gtb, ipd
from econsim.errors import one_line

_REGISTRY: dict[str, tuple[Callable[..., Game], type]] = {
    "ipd": (ipd.IPD, ipd.Params),
    "escape_room": (escape_room.EscapeRoom, escape_room.Params),
    "escape_room_asym": (escape_room.AsymmetricEscapeRoom, escape_room.AsymParams),
    "gtb": (gtb.GTB, gtb.Params),
    "cleanup": (cleanup.Cleanup, cleanup.Params),
}


class UnknownEnvError(ValueError):
    """Raised for an env name that is not registered."""


def names() -> list[str]:
    """Names accepted by ``make``."""
    return sorted(_REGISTRY)


def params_model(name: str) -> type:
    """The pydantic model validating the parameters of env ``name``."""
    if name not in _REGISTRY:
        raise UnknownEnvError(f"unknown env {name!r} (allowed: {', '.join(names())})")
    return _REGISTRY[name][1]


def make(name: str, **params) -> Game:
    """Build game ``name`` with ``params``; ``ValueError`` with a one-line message if bad."""
    cls, model = _REGISTRY.get(name, (None, None))
    if cls is None:
        raise UnknownEnvError(f"unknown env {name!r} (allowed: {', '.join(names())})")
    try:
        model(**params)
    except ValidationError as err:
        raise ValueError(one_line(err, model, prefix=name)) from None
    return cls(**params)
