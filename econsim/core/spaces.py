"""Per-agent observation and action spaces (batch-first sampling)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Discrete:
    """``n`` actions numbered ``0..n-1``."""

    n: int

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.integers(0, self.n, size=shape, dtype=np.int64)

    def contains(self, x: np.ndarray) -> bool:
        x = np.asarray(x)
        return bool(np.issubdtype(x.dtype, np.integer) and ((x >= 0) & (x < self.n)).all())


@dataclass(frozen=True)
class Box:
    """Real-valued array of a fixed ``shape`` with elementwise bounds."""

    shape: tuple[int, ...]
    low: float = -np.inf
    high: float = np.inf
    dtype: type = np.float32

    def contains(self, x: np.ndarray) -> bool:
        x = np.asarray(x)
        return x.shape[-len(self.shape):] == self.shape and bool(
            ((x >= self.low) & (x <= self.high)).all()
        )
