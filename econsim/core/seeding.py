"""Everything random in econsim derives from one integer seed.

``streams(seed)`` splits one seed into independent named streams (environment, learner
initialisation, action sampling) with numpy's SeedSequence, so adding a new consumer of
randomness never shifts the numbers another consumer sees.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


def make_rng(seed: int, stream: str = "env") -> np.random.Generator:
    """A numpy Generator for one named ``stream`` of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _key(stream)]))


def torch_generator(seed: int, stream: str = "torch") -> torch.Generator:
    """A torch CPU Generator for one named ``stream`` of ``seed``."""
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
