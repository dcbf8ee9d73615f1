"""Everything random in econsim derives from one integer seed.

``make_rng(seed, stream, *extra)`` splits one seed into independent named streams
(environment, learner initialisation, action sampling, evaluation at iteration k) with
numpy's SeedSequence, so adding a new consumer of randomness never shifts the numbers another
consumer sees.

Trainers run several seeds side by side as stacked replicas. ``ReplicaRNG`` keeps one
Generator per replica and splits every draw along its leading axis, so replica ``r``'s
numbers come from ``seeds[r]`` alone: a seed gives the same run alone or beside other seeds.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


def make_rng(seed: int, stream: str = "env", *extra: int) -> np.random.Generator:
    """A numpy Generator for one named ``stream`` of ``seed`` (``extra`` integers, e.g. an
    iteration, give further independent streams)."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), _key(stream), *(int(x) for x in extra)]))


class ReplicaRNG:
    """Draws for ``R`` replicas stacked on the leading axis, each from its own Generator.

    A draw of ``size = (R * k, ...)`` takes rows ``r*k .. (r+1)*k`` from generator ``r``, so a
    replica's numbers never depend on how many replicas run beside it. It offers the
    Generator methods games and learners use (``random``, ``integers``, ``pareto``,
    ``standard_normal``); every draw must have a leading (replica-major batch) axis.
    """

    def __init__(self, generators: list[np.random.Generator]) -> None:
        if not generators:
            raise ValueError("ReplicaRNG needs at least one generator")
        self.generators = list(generators)

    @classmethod
    def from_seeds(cls, seeds: list[int], stream: str, *extra: int) -> ReplicaRNG:
        """One ``make_rng(seed, stream, *extra)`` per seed."""
        return cls([make_rng(s, stream, *extra) for s in seeds])

    def __len__(self) -> int:
        return len(self.generators)

    def _draw(self, method: str, size, *args, **kwargs) -> np.ndarray:
        shape = (size,) if isinstance(size, int | np.integer) else tuple(size or ())
        R = len(self.generators)
        if not shape or shape[0] % R:
            raise ValueError(f"ReplicaRNG.{method}: size {shape} has no leading axis that "
                             f"splits into {R} replica(s)")
        part = (shape[0] // R, *shape[1:])
        draws = [getattr(g, method)(*args, size=part, **kwargs) for g in self.generators]
        return draws[0] if R == 1 else np.concatenate(draws)

    def random(self, size, dtype=np.float64) -> np.ndarray:
        return self._draw("random", size, dtype=dtype)

    def standard_normal(self, size, dtype=np.float64) -> np.ndarray:
        return self._draw("standard_normal", size, dtype=dtype)

    def pareto(self, a: float, size) -> np.ndarray:
        return self._draw("pareto", size, a)

    def integers(self, low, high=None, size=None, dtype=np.int64,
                 endpoint: bool = False) -> np.ndarray:
        return self._draw("integers", size, low, high, dtype=dtype, endpoint=endpoint)

    def permutations(self, n: int) -> np.ndarray:
        """One permutation of ``range(n)`` per replica: ``[R, n]``."""
        return np.stack([g.permutation(n) for g in self.generators])

    def get_state(self) -> list[dict]:
        """Plain data (a list of bit-generator states) for checkpoints."""
        return [g.bit_generator.state for g in self.generators]

    def set_state(self, state: list[dict]) -> None:
        if len(state) != len(self.generators):
            raise ValueError(f"ReplicaRNG.set_state: {len(state)} states for "
                             f"{len(self.generators)} replicas")
        for g, st in zip(self.generators, state, strict=True):
            g.bit_generator.state = st


def torch_generator(seed: int, stream: str = "torch") -> torch.Generator:
    """A torch CPU Generator for one named ``stream`` of ``seed`` (torch is imported here, so
    that the game kernels, which use this module, load no torch)."""
    import torch

    g = torch.Generator()
    state = np.random.SeedSequence([int(seed), _key(stream)]).generate_state(2, dtype=np.uint32)
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def counter_uniforms(key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Uniforms in [0, 1) from a counter-based stream: the SplitMix64 finaliser of
    ``key [B, 1] + counter [B, K] * golden`` (uint64). Each world keeps its own ``key``, so a
    world's draws do not depend on the batch it is stepped in (GTB, Cleanup kernels)."""
    z = key + counter * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)) * (1.0 / 9007199254740992.0)
