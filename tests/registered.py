"""Registered games as pytest parameters for the tests that check every game.

A game that needs optional packages declares them (``requires`` / ``extra``, read by
``econsim.core.registry.unavailable``); where they are missing its cases are skipped with
that reason, never left out silently.
"""

import pytest

from econsim import envs
from econsim.core.registry import unavailable


def why_not(name: str) -> str | None:
    """Why game ``name`` cannot be made here (a missing optional package), or None."""
    return unavailable(envs.game_class(name))


def games() -> list:
    """Every registered game name, as ``pytest.param``; unavailable ones marked skip."""
    return [pytest.param(n, marks=pytest.mark.skipif(why_not(n) is not None,
                                                     reason=why_not(n) or ""))
            for n in envs.names()]
