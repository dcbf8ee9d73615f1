"""Time the outermost of nested calls: the one wrapper behind ``econsim bench --train``'s
split of training time (the games' methods, ``econsim.bench.timed_games``; the rollouts,
``learners.rollout.timed_rollout``)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any


def outermost(fn: Callable[..., Any], depth: list[int],
              record: Callable[[float, tuple], None]) -> Callable[..., Any]:
    """``fn`` wrapped: a call made while no other call sharing ``depth`` is in progress
    passes its wall time and its positional arguments to ``record(seconds, args)``; nested
    calls run untimed."""

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if depth[0]:
            return fn(*args, **kwargs)
        depth[0] += 1
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            depth[0] -= 1
            record(time.perf_counter() - t0, args)

    return timed
